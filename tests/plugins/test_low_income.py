"""The low-income categories the medical, education, housing and employment rules read are the programs' own
declarations (``Program.category``), the same table the core's program catalogue gives the read side."""

from __future__ import annotations

from aidgraph.core.policy import host
from aidgraph.plugins import education, employment, housing, medical
from aidgraph.plugins.relapse_monitoring import indicators as relapse_indicators
from aidgraph.plugins.low_income import CATEGORY_OF_PROGRAM, LOW_INCOME_PROGRAMS, category_expr
from aidgraph.plugins.medical import claims
from tests.plugins.frames import frames, household_frame


def test_the_table_is_the_catalogue_of_declared_categories(engine):
    assert CATEGORY_OF_PROGRAM == engine.catalogue().category_programs()
    assert list(CATEGORY_OF_PROGRAM) == list(LOW_INCOME_PROGRAMS)
    assert LOW_INCOME_PROGRAMS[0] == "tekun"  # the most supportive category counts first


def test_no_plugin_keeps_a_copy():
    for module in (education, employment, housing, medical, claims, relapse_indicators):
        assert getattr(module, "CATEGORY_OF_PROGRAM", CATEGORY_OF_PROGRAM) is CATEGORY_OF_PROGRAM
        assert not hasattr(module, "LOW_INCOME") and not hasattr(module, "CATEGORY_ORDER")
        assert not hasattr(module, "LOW_INCOME_PROGRAMS") or module.LOW_INCOME_PROGRAMS is LOW_INCOME_PROGRAMS
    # the monitoring run's table (the identity overlay reads it): the same declarations, collected by the core
    assert host.category_programs(host.build_plugin_manager()) == CATEGORY_OF_PROGRAM
    assert set(housing.COVERABLE) <= set(LOW_INCOME_PROGRAMS)


def test_category_is_the_first_received_in_order_of_precedence():
    frame = frames(household_frame([{}], household_id=1, receiving=["dibao_edge", "tekun"]),
                   household_frame([{}], household_id=2, receiving=["relapse_monitoring"]),
                   household_frame([{}], household_id=3, receiving=["temporary"]))
    assert frame.select(category_expr().alias("c"))["c"].to_list() == ["TEKUN", "RELAPSE_MONITORING", None]
    assert frame.select(category_expr(housing.COVERABLE).alias("c"))["c"].to_list() == ["TEKUN", None, None]
