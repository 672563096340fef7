"""Build household frames (the engine's input schema) by hand, for rule tests that use the sources' figures.

The frame-building SQL is tested separately against SQLite and PostgreSQL (test_eligibility_db.py); these
frames let a rule test state exactly the household the source describes.
"""

from __future__ import annotations

import polars as pl

from aidgraph.core.policy.engine import FRAME_SCHEMA, MEMBER_SCHEMA

MEMBER_DEFAULTS = {"person_id": 0, "age": 40, "sex": "MALE", "relation_to_head": "SELF", "disability_level": None,
                   "disability_category": None, "chronic_disease": False, "major_disease": False,
                   "hospitalised": False, "labour_capacity": "FULL", "employment_status": None, "student_stage": None,
                   "local_hukou": True, "able_obligors": 0, "own_monthly_income": 0.0, "school_hardship_tier": None,
                   "school_year": None, "veteran_student": False, "employment_difficulty_level": None,
                   "business_registered_on": None, "special_category": None, "diagnosis": None}


def household_frame(members: list[dict], region: str = "440106001001", *, household_id: int = 1,
                    rural: bool = False, monthly_income: float = 0.0, monthly_earned_income: float = 0.0,
                    monthly_rigid_expenditure: float = 0.0, financial_assets: float = 0.0,
                    receiving: list[str] = (), enrolled: list[str] | None = None, income_verified: bool = True,
                    assets_verified: bool = True, housing_need: bool = False,
                    emergencies: list[dict] = (), deceased: list[dict] = ()) -> pl.DataFrame:
    people = [{**MEMBER_DEFAULTS, "person_id": i + 1, **m} for i, m in enumerate(members)]
    n = len(people)
    row = {
        "household_id": household_id, "household_number": f"H{household_id:06d}", "region_code": region,
        "province_code": region[:2], "rural": rural, "member_count": n, "members": people,
        "monthly_income": float(monthly_income), "monthly_earned_income": float(monthly_earned_income),
        "monthly_rigid_expenditure": float(monthly_rigid_expenditure), "financial_assets": float(financial_assets),
        "per_capita_financial_assets": float(financial_assets) / max(n, 1),
        "enrolled": list(enrolled if enrolled is not None else receiving), "receiving": list(receiving),
        "income_verified": income_verified, "assets_verified": assets_verified, "housing_need": housing_need,
        "emergencies": [{"kind": e["kind"], "region_code": e.get("region_code", region),
                         "occurred_on": e["occurred_on"], "explanation_due": e.get("explanation_due"),
                         "explained_on": e.get("explained_on"), "rural": e.get("rural", rural)} for e in emergencies],
        "deceased": [{"person_id": d.get("person_id", 100 + i), "death_date": d["death_date"],
                      "aided": list(d.get("aided", receiving))} for i, d in enumerate(deceased)],
    }
    schema = dict(FRAME_SCHEMA)
    schema["members"] = pl.List(pl.Struct(MEMBER_SCHEMA))
    return pl.DataFrame([row], schema=schema)


def frames(*rows: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(rows)
