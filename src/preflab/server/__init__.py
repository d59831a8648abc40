"""preflab.server."""
