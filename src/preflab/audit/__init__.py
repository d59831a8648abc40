"""preflab.audit."""
