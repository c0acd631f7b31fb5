"""possim: wallet_app."""
