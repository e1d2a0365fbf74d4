"""pushprov."""
