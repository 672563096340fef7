"""Storage floor: settings, domain errors, the SQLAlchemy models, engines, bulk frame writes and migrations.

The ground floor: it imports nothing else of aidgraph. Everything that touches rows goes through these models
and engines (SQLite by default, PostgreSQL through ``AIDGRAPH_DATABASE_URL``).
"""
