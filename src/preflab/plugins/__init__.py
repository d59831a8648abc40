"""preflab.plugins."""
