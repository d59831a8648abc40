"""preflab.generate."""
