"""Policy floor: the plugin contract, dated parameters, province loading, the plugin host and the engine.

:mod:`.parameters` is the pure parameter model; :mod:`.contract` holds the types the hooks name;
:mod:`.hookspecs` the hooks themselves (a leaf: neither imports the engine); :mod:`.host` builds the plugin
manager from the ``aidgraph`` entry points; :mod:`.provinces` loads ``province_configs/``; :mod:`.engine`
decides every program for a frame of households (one household is a one-row frame).
"""
