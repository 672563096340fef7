"""GraphQL schema assembly (strawberry): the core's types and operations, plus what plugins contribute.

``schema/schema.graphql`` is the committed SDL the frontends code against; a test fails when the live schema
differs from it (regenerate with ``aidgraph export-schema``).
"""
