"""The committed SDL (schema/schema.graphql) is the live schema: the frontends code against the file."""

from __future__ import annotations

from pathlib import Path

from aidgraph.core.storage.config import load_settings
from aidgraph.core.app.server import default_components
from aidgraph.schema.build import schema_sdl

SDL = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"


def test_committed_schema_matches_live_schema():
    live = schema_sdl(default_components(load_settings({})).schema)
    assert SDL.read_text(encoding="utf-8") == live, (
        "schema/schema.graphql differs from the live schema: run `aidgraph export-schema` and commit the result")
