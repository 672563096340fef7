"""Built-in aidgraph plugins: one package per aid domain and one per province policy variant.

Plugins reach the core only through the hookspecs in :mod:`aidgraph.core.policy.hookspecs` and the core's public functions.
"""
