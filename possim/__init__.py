"""possim: possim."""
