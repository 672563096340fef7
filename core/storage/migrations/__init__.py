"""Alembic migrations of the aidgraph schema (the only way tables are created outside tests)."""
