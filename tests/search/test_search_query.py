"""The Search operation against osmem-server: matching, scoping inside the query, facets, paging, bad input."""

from __future__ import annotations

import pytest

from aidgraph.core.storage.errors import DomainError
from aidgraph.core.search.client import SearchUnavailable, make_client
from aidgraph.core.search.query import MAX_QUERY_LENGTH, SearchRequest, search


def names(page) -> list[str]:
    return sorted(h.source.get("name") for h in page.hits if h.kind == "PERSON")


def facet(page, name: str) -> dict[str, int]:
    return {b.key: b.count for f in page.facets if f.field == name for b in f.buckets}


def test_partial_chinese_names(search_env, system):
    assert names(search_env.search(system, "张", kinds=["PERSON"])) == ["张三丰", "张丽", "张伟", "赵张三"]
    # Precision of multi-character queries differs in the emulator (see the emulator_difference test):
    # here only what both engines do is asserted, the full match found and ranked first.
    for query in ("三丰", "张三丰", "张三"):
        page = search_env.search(system, query, kinds=["PERSON"])
        assert page.hits[0].source["name"] in ("张三丰", "赵张三") and "张三丰" in names(page)
    assert names(search_env.search(system, "张三", kinds=["PERSON"])) == ["张三丰", "赵张三"]  # not 张丽
    assert names(search_env.search(system, "王五", kinds=["PERSON"])) == ["王五"]
    assert names(search_env.search(system, "李四", kinds=["PERSON"])) == []
    page = search_env.search(system, "欧阳", kinds=["PERSON"])
    assert names(page) == ["欧阳明"]
    assert page.hits[0].highlights == ["<em>欧阳</em>明"] or all("<em>" in f for f in page.hits[0].highlights)


def test_best_match_ranks_first(search_env, system):
    page = search_env.search(system, "张三丰", kinds=["PERSON"])
    assert page.hits[0].source["name"] == "张三丰"


def test_full_id_number_finds_the_person_and_a_fragment_does_not(search_env, graph, system):
    number = graph.id_numbers["李秀英"]
    page = search_env.search(system, number)
    assert [(h.kind, h.entity_id) for h in page.hits] == [("PERSON", graph.persons["李秀英"])]
    assert page.id_number_searched == number
    assert search_env.search(system, number[:10]).total == 0
    assert search_env.search(system, " " + number.lower() + " ").total == 1


def test_household_number_finds_household_alert_and_enrollment(search_env, graph, system):
    page = search_env.search(system, graph.numbers["wushan"])
    found = {(h.kind, h.entity_id) for h in page.hits}
    assert found == {("HOUSEHOLD", graph.households["wushan"]), ("ALERT", graph.alerts["wushan"]),
                     ("ENROLLMENT", graph.enrollments["wushan"])}
    assert search_env.search(system, graph.numbers["wushan"].lower()).total == 3


def test_address_parts(search_env, graph, system):
    page = search_env.search(system, "五山路", kinds=["HOUSEHOLD"])
    assert [h.entity_id for h in page.hits] == [graph.households["wushan"]]
    assert any("<em>" in f for f in page.hits[0].highlights)


def test_highlights_are_html_escaped(search_env, graph, system):
    page = search_env.search(system, "天河路", kinds=["HOUSEHOLD"])
    hit = next(h for h in page.hits if h.entity_id == graph.households["markup"])
    text = " ".join(hit.highlights)
    assert "<b>" not in text and "&lt;b&gt;" in text and "<em>" in text


def test_scope_limits_hits_totals_and_facets(search_env, graph):
    caseworker = search_env.actor("township_caseworker", "440106001")
    page = search_env.search(caseworker, "", first=100)
    assert page.total == len(page.hits)
    assert all(h.source["region_code"].startswith("440106001") for h in page.hits)
    assert sum(facet(page, "kind").values()) == page.total
    assert all(k.startswith("440106001") for k in facet(page, "region"))
    assert names(search_env.search(caseworker, "张", kinds=["PERSON"])) == ["张三丰"]
    assert facet(search_env.search(caseworker, "张"), "kind") == {"PERSON": 1}

    admin44 = search_env.actor("province_admin", "44")
    page = search_env.search(admin44, "张", kinds=["PERSON"])
    assert names(page) == ["张三丰", "张丽", "赵张三"]
    assert facet(page, "region") == {"4401": 2, "4403": 1}
    # Gansu's record exists, but not for a Guangdong administrator: not in hits, totals or facets.
    assert search_env.search(admin44, graph.numbers["lanzhou"]).total == 0


def test_region_argument_narrows_and_out_of_scope_region_finds_nothing(search_env, graph):
    caseworker = search_env.actor("township_caseworker", "440106001")
    outside = search_env.search(caseworker, "张", region_code="440305")
    assert outside.total == 0 and outside.hits == [] and facet(outside, "kind") == {}
    wider = search_env.search(caseworker, "", region_code="4401", first=100)
    assert wider.total == search_env.search(caseworker, "", first=100).total
    admin44 = search_env.actor("province_admin", "44")
    page = search_env.search(admin44, "张", region_code="440106")
    assert names(page) == ["张三丰", "张丽"]
    assert facet(page, "region") == {"440106001": 1, "440106002": 1}


def test_kind_and_warning_level_filters_and_facets(search_env, graph, system):
    alerts = search_env.search(system, "", kinds=["ALERT"])
    assert {h.kind for h in alerts.hits} == {"ALERT"}
    assert facet(alerts, "warningLevel") == {"RED": 1, "ORANGE": 1, "BLUE": 1}
    red = search_env.search(system, "", warning_levels=["RED"])
    assert {(h.kind, h.entity_id) for h in red.hits} == {("ALERT", graph.alerts["wushan"]),
                                                         ("HOUSEHOLD", graph.households["wushan"])}
    households = search_env.search(system, "", kinds=["HOUSEHOLD"])
    assert facet(households, "warningLevel") == {"RED": 1, "ORANGE": 1, "BLUE": 1}
    everything = search_env.search(system, "")
    assert set(facet(everything, "kind")) == {"PERSON", "HOUSEHOLD", "ALERT", "ENROLLMENT"}
    assert sum(facet(everything, "kind").values()) == everything.total


def test_paging_with_search_after_visits_every_hit_once(search_env, graph, system):
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = search_env.search(system, "陈", kinds=["PERSON"], first=20, after=after)
        pages += 1
        assert page.total == 45
        seen += [h.source["name"] for h in page.hits]
        if not page.has_next_page:
            break
        after = page.end_cursor
        body = search_env.search(system, "陈", kinds=["PERSON"], first=20, after=after).body
        assert "search_after" in body if search_env.quirks.score_search_after else body["from"] == 20 * pages
    assert pages == 3
    assert sorted(seen) == sorted(graph.paging_names) and len(seen) == len(set(seen))
    assert search_env.search(system, "陈", first=0).hits == []


def test_paging_without_text_uses_search_after_on_uid(search_env, system):
    seen: list[str] = []
    after = None
    while True:
        page = search_env.search(system, "", kinds=["PERSON"], first=7, after=after)
        assert "from" not in page.body and (after is None or "search_after" in page.body)
        seen += [h.source["uid"] for h in page.hits]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert len(seen) == page.total == 52 and seen == sorted(set(seen))
    text_cursor = search_env.search(system, "陈", first=1).end_cursor
    with pytest.raises(DomainError, match="different query"):
        search_env.search(system, "", after=text_cursor)


@pytest.mark.parametrize("text", ['"', "*", "?", ":", "\\", "/", '张"三', "张*", "张?", "name:张", "a\\b",
                                  "/.*/", "(张", "张 AND 李", "[]{}~^!", "&&||"])
def test_query_syntax_characters_are_plain_text(search_env, system, text):
    page = search_env.search(system, text)
    assert page.total >= 0
    if text.startswith("张") and len(text) == 2:
        assert "张三丰" in names(search_env.search(system, text, kinds=["PERSON"]))


def test_empty_query_lists_everything_in_scope(search_env, system):
    everything = search_env.search(system, "")
    assert everything.total == search_env.search(system, "   ").total
    assert everything.total == 7 + 45 + 5 + 3 + 3  # persons + paging persons + households + alerts + enrolments


def test_bad_input_names_the_field(search_env, system):
    with pytest.raises(DomainError) as e:
        search_env.search(system, "张" * (MAX_QUERY_LENGTH + 1))
    assert e.value.errors[0].field == "query" and e.value.errors[0].code.value == "VALIDATION"
    assert search_env.search(system, "张" * MAX_QUERY_LENGTH).total == 0
    with pytest.raises(DomainError) as e:
        search_env.search(system, "张", kinds=["PAYMENT"])
    assert e.value.errors[0].field == "kinds" and "PAYMENT" in e.value.errors[0].message
    for bad_region in ("44x", "4401061", ""):
        with pytest.raises(DomainError) as e:
            search_env.search(system, "张", region_code=bad_region)
        assert e.value.errors[0].field == "regionCode"
    with pytest.raises(DomainError) as e:
        search_env.search(system, "张", first=101)
    assert e.value.errors[0].field == "first"
    for cursor in ("not-a-cursor", "WzEsMl0=", "W10="):
        with pytest.raises(DomainError) as e:
            search_env.search(system, "张", after=cursor)
        assert e.value.errors[0].field == "after"


def test_sensitive_fields_are_not_returned_to_roles_without_permission(search_env, graph):
    number = graph.id_numbers["张三丰"]
    assistant = search_env.actor("village_assistant", "440106001")
    page = search_env.search(assistant, number)
    assert [h.entity_id for h in page.hits] == [graph.persons["张三丰"]]  # matched on the full number...
    assert "id_number" not in page.hits[0].source  # ...but the number is not handed back
    assert all(number not in f for f in page.hits[0].highlights)
    assert page.sensitive_returned is False
    caseworker = search_env.actor("township_caseworker", "440106001")
    page = search_env.search(caseworker, number)
    # the index holds no ID number at all (only its blind index): who may read it gets it from the database
    assert page.sensitive_returned and not any(number in str(v) for v in page.hits[0].source.values())


def test_engine_unreachable_is_search_unavailable(osmem_server, system):
    clone = osmem_server.clone()
    url = clone.url
    clone.close()
    client = make_client(url)
    from aidgraph.core.search.mapping import build_layout

    with pytest.raises(SearchUnavailable):
        search(client, "aidgraph", build_layout(), system, SearchRequest(query="张"))


def test_missing_index_is_search_unavailable(osmem_clone, system):
    from aidgraph.core.search.mapping import build_layout

    with pytest.raises(SearchUnavailable, match="not built"):
        search(make_client(osmem_clone.url), "aidgraph", build_layout(), system, SearchRequest(query="张"))


@pytest.mark.emulator_difference
def test_operator_and_requires_every_part_of_the_name(search_env, system):
    """OpenSearch: ``match`` with ``operator: and`` needs every n-gram of 张三 (张, 张三, 三), so 张丽 does not
    match. osmem-server 0.1.6 ignores ``operator`` and matches any n-gram (张丽 shares 张). The Search query
    keeps ``operator: and`` and also says ``minimum_should_match: 100%`` (the same requirement in OpenSearch),
    which the emulator honours; this test sends ``operator: and`` alone, as OpenSearch documents it."""
    body = {"query": {"bool": {"must": {"match": {"name": {"query": "张三", "operator": "and"}}},
                               "filter": {"term": {"kind": "PERSON"}}}}, "size": 100}
    hits = search_env.client.search(index=search_env.alias, body=body)["hits"]["hits"]
    found = {h["_source"]["name"] for h in hits}
    assert {"张三丰", "赵张三"} <= found
    if "张丽" in found:
        pytest.xfail("osmem-server ignores match operator 'and' (OpenSearch would not return 张丽)")
    assert found == {"张三丰", "赵张三"}
    assert names(search_env.search(system, "张三", kinds=["PERSON"])) == ["张三丰", "赵张三"]


@pytest.mark.emulator_difference
def test_search_after_with_score_in_the_sort(search_env, system):
    """OpenSearch pages a relevance-sorted search with ``search_after: [score, uid]``. osmem-server 0.1.6 does
    not (it answers the first page again, or nothing), so on that engine the Search operation pages a text
    search by the position its cursor carries; this test sends the OpenSearch query as documented."""
    body = {"query": {"match": {"name": "陈"}}, "sort": [{"_score": {"order": "desc"}}, {"uid": {"order": "asc"}}],
            "size": 5, "_source": ["uid"]}
    first = search_env.client.search(index=search_env.alias, body=body)["hits"]["hits"]
    second = search_env.client.search(index=search_env.alias, body={**body, "search_after": first[-1]["sort"]})
    second_ids = [h["_id"] for h in second["hits"]["hits"]]
    if not search_env.quirks.score_search_after:
        if set(second_ids) & {h["_id"] for h in first} or not second_ids:
            pytest.xfail("osmem-server ignores search_after when the sort includes _score")
    assert len(second_ids) == 5 and not set(second_ids) & {h["_id"] for h in first}


def test_each_kind_is_limited_by_its_own_scope(search_env, graph):
    """A village assistant in 440106001 who is also a department analyst in Shenzhen (4403, persons only)."""
    from aidgraph.core.access.actor import Actor, RoleGrant
    from aidgraph.core.access.authz import authorizer_for

    actor = authorizer_for(search_env.db_url).bind(Actor(
        username="two-hats", display_name="two hats",
        grants=(RoleGrant("village_assistant", "440106001"), RoleGrant("department_analyst", "4403"))))
    page = search_env.search(actor, "", first=100)
    found = {(h.kind, h.source["region_code"][:4]) for h in page.hits}
    assert ("PERSON", "4403") in found and ("HOUSEHOLD", "4403") not in found and ("ALERT", "4403") not in found
    assert ("HOUSEHOLD", "4401") in found
    assert page.total == len(page.hits) and sum(facet(page, "kind").values()) == page.total
    assert "should" in str(page.body["query"]["bool"]["filter"])  # two scopes: one clause per scope
