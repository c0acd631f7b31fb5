"""possim: hardware."""
