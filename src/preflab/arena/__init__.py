"""preflab.arena."""
