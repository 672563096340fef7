"""aidgraph: a GraphQL data platform for running a province's social assistance (社会救助).

One import name for the whole product. The repository keeps the product's folders at its top (``core/``,
``plugins/``, ``schema/``, ``province_configs/``); this package maps them under one name so that installing
aidgraph never claims a top-level name another distribution owns (``schema`` is a popular one):

* :mod:`aidgraph.core`: the platform, in floors that import only downward (see its docstring);
* :mod:`aidgraph.schema`: the GraphQL API (strawberry), the ``api`` floor;
* :mod:`aidgraph.plugin`: the one module plugin authors import;
* :mod:`aidgraph.plugins`: the built-in aid-domain and province plugins, registered through entry points;
* ``aidgraph/province_configs``: the built-in province configurations, shipped as package data.
"""

__version__ = "0.1.0"
