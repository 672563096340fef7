"""CLI command modules; each defines ``register(app)`` and is picked up by :mod:`aidgraph.core.app.cli`."""
