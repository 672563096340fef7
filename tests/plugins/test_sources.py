"""The registry of policy source documents: every key a parameter cites is registered, and a source naming no
registered document is a load error naming the file and the parameter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aidgraph.core.policy.parameters import ParameterError
from aidgraph.core.policy.provinces import load_province
from aidgraph.core.policy.sources import SOURCE_KEY, SOURCES, source_problem, unknown_source_keys
from tests.plugins.conftest import CONFIGS

SEEDS = Path("/work/shared/seeds")


def test_registry_documents_have_title_issuer_and_date():
    assert {"GD-2021", "GD-2022", "GD-2024", "FJ-2021", "GS-2024"} <= set(SOURCES)
    for key, doc in SOURCES.items():
        assert doc.key == key and SOURCE_KEY.fullmatch(key)
        assert doc.title and doc.issuer and re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", doc.date)
        assert doc.date.startswith(key[-4:])  # the key's year is the document's


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the shared seed texts are not on this machine")
def test_registry_points_at_the_seed_texts():
    for doc in SOURCES.values():
        assert (SEEDS / doc.seed).is_file(), doc


def test_every_shipped_citation_is_registered():
    cited = set()
    for path in CONFIGS.glob("*/parameters/*.toml"):
        for source in re.findall(r'source = "([^"]*)"', path.read_text(encoding="utf-8")):
            assert unknown_source_keys(source) == [], (path, source)
            cited.update(SOURCE_KEY.findall(source))
    assert cited <= set(SOURCES) and cited  # the configs do cite documents


def test_source_problem_rules():
    assert source_problem("GD-2021 (yearly)") is None
    assert source_problem("GD-2022, GD-2024 (coverage extended)") is None
    assert source_problem("illustrative (no source gives it)") is None
    assert source_problem("illustrative (GD-2021's six months)") is None
    assert "GD-2019" in source_problem("GD-2019 (a document nobody registered)")
    assert "GX-2024" in source_problem("illustrative (GX-2024 says otherwise)")  # keys inside illustrative too
    assert "names no document" in source_problem("the 2021 plan")


@pytest.mark.parametrize("where", ["entry", "value"])
def test_unregistered_source_is_a_load_error_naming_file_and_key(copy_settings, configs, pm, where):
    path = configs / "44" / "parameters" / "dibao.toml"
    text = path.read_text(encoding="utf-8")
    if where == "entry":
        old = 'source = "GD-2022, GD-2024 (coverage extended to permanent residents)"'
        new = 'source = "GD-2022, GD-2025 (coverage extended to permanent residents)"'
    else:
        old = "  { from = 2021-01-01, value = 1400, region = \"4401\" },\n]\n\n[\"dibao.rural_standard\"]"
        new = ("  { from = 2021-01-01, value = 1400, region = \"4401\", source = \"GZ-2021 (a city notice)\" },\n]\n\n"
               "[\"dibao.rural_standard\"]")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ParameterError) as err:
        load_province("44", copy_settings, pm)
    assert err.value.file == str(path)
    assert err.value.key == ("dibao.covers_non_hukou_residents" if where == "entry" else "dibao.urban_standard")
    assert ("GD-2025" if where == "entry" else "GZ-2021") in err.value.message
    assert "names no registered document" in err.value.message
