"""The aidgraph platform, in floors: each imports only the floors below it (``tests/test_layers.py`` checks).

From the ground up:

1. :mod:`.storage`: settings, errors, the SQLAlchemy models, engines, bulk writes, migrations;
2. :mod:`.access`: who is asking (actor, authentication, users) and what they may see and do (scope, Casbin);
3. :mod:`.graph`: households, persons, relations, economics, regions, ID numbers, privacy, the aid chain,
   the audit log, the outbox and the scoped reads;
4. :mod:`.policy`: the plugin contract (hookspecs and the types they name), dated parameters, province
   loading, the plugin host and the policy engine (eligibility over the household frame);
5. :mod:`.workflow`, :mod:`.monitoring`, :mod:`.search`: the enrolment state machine, dynamic monitoring
   and department feeds, the search index; siblings that do not import each other;
6. ``aidgraph.schema``: the GraphQL API (outside this folder, the product's ``schema/``);
7. :mod:`.app`: the server, the command line and demo data.

The core never imports a built-in plugin: plugins, the core's own default workflow plugin included, are
registered through the ``aidgraph`` entry-point group by :mod:`.policy.host`.
"""
