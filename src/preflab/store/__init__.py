"""preflab.store."""
