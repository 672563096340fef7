"""aidgraph core: the shared household and person graph over the real administrative divisions.

The core owns storage, the region tree, identity validation, the data-scope predicate and the
services every aid-domain plugin builds on. It never imports from ``plugins`` or ``province_configs``:
plugins reach the core through the hookspecs and the public functions of these modules.
"""

__version__ = "0.1.0"
