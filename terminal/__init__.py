"""possim: terminal."""
