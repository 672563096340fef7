"""App floor: what runs the platform: the HTTP server, the ``aidgraph`` command line and demo data.

The roof: it may import every floor below, the API included, and never a built-in plugin directly.
"""
