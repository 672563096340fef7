"""The one scope predicate: the SQL ranges select exactly the codes the plain prefix check accepts, on both
engines, over the real region table; the OpenSearch filter names the same prefixes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from core.models import Region
from core.scope import Scope


@pytest.fixture(scope="module")
def codes(sync_engine):
    with sync_engine.connect() as c:
        return sorted(c.execute(select(Region.code).where(Region.code >= "4401", Region.code < "4402")).scalars())


@pytest.fixture(scope="module")
def check(sync_engine, codes):
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def prop(data):
        # Prefixes at every level, often neighbours (so ranges merge), sometimes outside the data.
        picked = data.draw(st.lists(st.sampled_from(codes), min_size=0, max_size=12))
        widths = data.draw(st.lists(st.sampled_from([2, 4, 6, 9, 12]), min_size=len(picked), max_size=len(picked)))
        prefixes = {c[:w] for c, w in zip(picked, widths) if w <= len(c)} | set(
            data.draw(st.lists(st.sampled_from(["35", "4403", "440199", "999999"]), max_size=2)))
        scope = Scope.of(prefixes)
        with sync_engine.connect() as c:
            selected = set(c.execute(select(Region.code).where(
                Region.code >= "4401", Region.code < "4402", scope.predicate(Region.code))).scalars())
        assert selected == {code for code in codes if scope.contains(code)}
        assert {q["prefix"]["region_code"] for q in scope.opensearch_filter()["bool"]["should"]} == set(
            scope.prefixes) if scope.prefixes else True

    return prop


def test_predicate_equals_prefix_check(check):
    check()


def test_neighbouring_regions_merge_into_one_range():
    guangzhou = ["440103", "440104", "440105", "440106", "440111", "440112", "440113", "440114", "440115",
                 "440117", "440118"]
    assert Scope.of(guangzhou).ranges() == [("440103", "440107"), ("440111", "440116"), ("440117", "440119")]
    assert Scope.of(["440199", "440200"]).ranges() == [("440199", "4402"), ("440200", "440201")]
    assert Scope.everything().contains("44") and Scope.nothing().empty
