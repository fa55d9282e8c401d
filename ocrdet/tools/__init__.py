"""Command-line tools beside training (checkpoint surgery)."""
