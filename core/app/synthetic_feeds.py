"""Synthetic department feeds (合成部门数据): one month of the files departments send, for a seeded province.

The monitoring cycle needs feeds to score: the demo (``aidgraph demo``) imports one month of them so that the
Alerts a frontend queries exist, and the monitoring benchmark imports them at province scale. The files are
drawn from the persons and last month's income the database holds (``aidgraph.core.app.seed``), in the formats of
``docs/FEED_FORMATS.md``, with realistic monthly volumes:

* 医保 hospitalisation of 3% of persons, 卫健 chronic (0.6%) and major (0.1%) disease certifications, 残联
  disability registrations (0.2%), 教育 college admissions (0.3%), 人社 new unemployment registrations (1%),
  公安 deaths (0.05%) and other household events (0.1%);
* the month's income records of every earner of last month, with noise, 2% of earning households losing most
  of it (收入骤减), and medical expenditure for 1% of persons (支出骤增);
* compound hardship (因病致贫) in 0.1% of earning households: a member hospitalised and certified with a
  major disease in the month the household's income falls.

Every rate and amount here is an illustrative synthetic-data setting (:data:`RATES`), not a policy figure.
Deterministic: the same persons, last month's income, month and seed give the same files (importing a month's
files changes neither), so running it again for the month stores nothing new.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import Engine, Float, and_, cast, or_, select

from aidgraph.core.storage.bulk import read_frame
from aidgraph.core.storage.encrypted import ID_NUMBER, open_values
from aidgraph.core.monitoring.feeds import FEEDS
from aidgraph.core.storage.models import EconomicItem, Membership, Person
from aidgraph.core.access.scope import Scope

RATES = {  # share of persons (households for the *_households keys) with a record in the month; illustrative
    "hospitalisation": 0.03, "unemployment": 0.01, "chronic": 0.006, "major": 0.001, "disability": 0.002,
    "college_admission": 0.003, "death": 0.0005, "household_event": 0.001, "medical_expenditure": 0.01,
    "income_drop_households": 0.02, "compound_households": 0.001,
}
INCOME_DROP_FACTOR = 0.2
"""What a household whose income drops still earns, as a share of last month."""


def synthetic_feeds(engine: Engine, province: str, month_start: dt.date, directory: Path, seed: int,
                    last_day: dt.date | None = None) -> dict[str, Path]:
    """Write one CSV per feed kind for ``month_start``'s month into ``directory``; event dates are no later
    than ``last_day`` (default: the month's 28th). Returns the paths by kind."""
    month_index = month_start.year * 12 + month_start.month
    rng = np.random.default_rng([seed, int(province), month_index])
    # Days come from their own stream: who is drawn must not depend on how many days of the month have passed.
    day_rng = np.random.default_rng([seed, int(province), month_index, 1])
    previous = month_start - dt.timedelta(days=1)
    with engine.connect() as conn:
        persons = read_frame(conn, select(Person.id, Person.id_number, Membership.household_id)
                             .join(Membership, and_(Membership.person_id == Person.id, Membership.valid_to.is_(None)))
                             .where(Scope.of([province]).predicate(Person.region_code),
                                    or_(Person.death_date.is_(None), Person.death_date >= month_start))
                             .order_by(Person.id),
                             {"id": pl.Int64, "id_number": pl.Utf8, "household_id": pl.Int64})
        persons = persons.with_columns(pl.Series("id_number", open_values(persons["id_number"].to_list(), ID_NUMBER),
                                                 dtype=pl.Utf8))
        income = read_frame(conn, select(EconomicItem.person_id, EconomicItem.household_id, EconomicItem.kind,
                                         EconomicItem.source, cast(EconomicItem.amount, Float))
                            .where(EconomicItem.period_start == previous.replace(day=1),
                                   EconomicItem.period_end == previous,
                                   EconomicItem.kind.in_(["WAGE", "PENSION", "TRANSFER"]),
                                   EconomicItem.person_id.is_not(None))
                            .order_by(EconomicItem.id),
                            {"person_id": pl.Int64, "household_id": pl.Int64, "kind": pl.Utf8, "source": pl.Utf8,
                             "amount": pl.Float64})
    n = persons.height
    if n == 0:
        raise ValueError(f"province {province} has no persons to draw feeds from: seed it first")
    span = 28 if last_day is None else max(1, min(28, (last_day - month_start).days + 1))

    def days(k: int) -> list[str]:
        return [(month_start + dt.timedelta(days=int(d))).isoformat() for d in day_rng.integers(0, span, k)]

    def sample(rate: float) -> pl.DataFrame:
        return persons[np.sort(rng.choice(n, size=max(1, int(n * rate)), replace=False))]

    # Compound hardship: one earner of the household falls ill; the household's income drops the same month.
    earners = income.join(persons.select(pl.col("id").alias("person_id"), "id_number"), on="person_id")
    earning_households = earners["household_id"].unique().sort().to_numpy()
    compound = rng.choice(earning_households, replace=False, size=min(
        len(earning_households), max(1, int(len(earning_households) * RATES["compound_households"]))))
    ill = (earners.filter(pl.col("household_id").is_in(compound.tolist()))
           .unique("household_id", keep="first", maintain_order=True).select("id_number"))
    dropping = np.union1d(compound, rng.choice(earning_households, replace=False,
                                               size=int(len(earning_households) * RATES["income_drop_households"])))

    files: dict[str, pl.DataFrame] = {}
    h = pl.concat([sample(RATES["hospitalisation"]).select("id_number"), ill])
    total = np.round(rng.lognormal(np.log(8000), 0.8, h.height), 2)
    files["hospitalisation"] = pl.DataFrame({
        "id_number": h["id_number"], "name": [""] * h.height, "admission_date": days(h.height),
        "discharge_date": [""] * h.height, "hospital": ["市人民医院"] * h.height, "diagnosis": ["肺炎"] * h.height,
        "total_cost": total, "compliant_cost": np.round(total * 0.85, 2), "insurance_paid": np.round(total * 0.6, 2)})
    c = sample(RATES["chronic"] + RATES["major"]).select("id_number")
    kinds = np.where(rng.random(c.height) < RATES["major"] / (RATES["chronic"] + RATES["major"]), "MAJOR", "CHRONIC")
    c = pl.concat([c.with_columns(pl.Series("disease_kind", kinds)),
                   ill.with_columns(pl.lit("MAJOR").alias("disease_kind"))])
    files["disease"] = pl.DataFrame({"id_number": c["id_number"], "name": [""] * c.height,
                                     "disease_kind": c["disease_kind"],
                                     "diagnosis": np.where(c["disease_kind"].to_numpy() == "MAJOR", "恶性肿瘤", "糖尿病"),
                                     "certified_date": days(c.height)})
    u = sample(RATES["unemployment"])
    files["unemployment"] = pl.DataFrame({"id_number": u["id_number"], "name": [""] * u.height,
                                          "registered_date": days(u.height), "status": ["REGISTERED"] * u.height})
    d = sample(RATES["disability"])
    files["disability"] = pl.DataFrame({
        "id_number": d["id_number"], "name": [""] * d.height,
        "disability_category": rng.choice(["PHYSICAL", "VISUAL", "HEARING", "INTELLECTUAL"], d.height),
        "disability_level": rng.integers(1, 5, d.height), "certified_date": days(d.height)})
    col = sample(RATES["college_admission"])
    files["college_admission"] = pl.DataFrame({
        "id_number": col["id_number"], "name": [""] * col.height, "admission_year": [month_start.year] * col.height,
        "institution": ["省属高校"] * col.height, "stage": rng.choice(["UNDERGRADUATE", "JUNIOR_COLLEGE"], col.height),
        "annual_tuition": np.round(rng.uniform(3000, 9000, col.height), 2)})
    ev = sample(RATES["death"] + RATES["household_event"])
    events = np.where(rng.random(ev.height) < RATES["death"] / (RATES["death"] + RATES["household_event"]), "DEATH",
                      rng.choice(["BIRTH", "MOVE_IN", "MARRIAGE", "DIVORCE"], ev.height))
    files["household_event"] = pl.DataFrame({"id_number": ev["id_number"], "event": events,
                                             "event_date": days(ev.height), "household_number": [""] * ev.height})
    factor = np.where(earners["household_id"].is_in(dropping.tolist()).to_numpy(), INCOME_DROP_FACTOR,
                      rng.uniform(0.95, 1.05, earners.height))
    period = month_start.strftime("%Y-%m")
    med = sample(RATES["medical_expenditure"])
    files["income"] = pl.concat([
        pl.DataFrame({"id_number": earners["id_number"], "period": [period] * earners.height,
                      "kind": earners["kind"], "amount": np.round(earners["amount"].to_numpy() * factor, 2),
                      "source": earners["source"]}),
        pl.DataFrame({"id_number": med["id_number"], "period": [period] * med.height,
                      "kind": ["EXPENDITURE_MEDICAL"] * med.height,
                      "amount": np.round(rng.lognormal(np.log(6000), 0.7, med.height), 2),
                      "source": ["MEDICAL_INSURANCE"] * med.height}),
    ])
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, frame in files.items():
        path = directory / f"{kind}.csv"
        frame.select(FEEDS[kind].names).write_csv(path)
        paths[kind] = path
    return paths
