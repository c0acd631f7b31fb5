"""possim: payment_core."""
