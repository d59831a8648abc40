"""Alembic migrations of the preflab store (run through :mod:`preflab.store.migrate`)."""
