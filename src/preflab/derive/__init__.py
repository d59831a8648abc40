"""preflab.derive."""
