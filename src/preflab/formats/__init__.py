"""preflab.formats."""
