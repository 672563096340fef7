"""The registry of policy source documents (政策依据) that parameter values cite by key.

A province parameter's ``source`` names the document its value comes from (``GD-2021``, ``GS-2024 (70%)``,
``GD-2022, GD-2024 (...)``) or says ``illustrative ...`` where no source gives a number. Loading validates every
key such a text names against this registry (:func:`unknown_source_keys`): a typo or a document nobody
registered is a load error naming the file and the parameter, so a cited value can always be traced to a
document. The texts are kept under ``/work/shared/seeds``; ``POLICY_FACTS.md`` digests them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceDocument:
    """One policy document: what it is, who issued it and when (as precisely as the text itself says)."""

    key: str
    title: str
    issuer: str
    date: str
    """ISO date, or year-month / year where the text gives no day."""
    seed: str
    """The file of the text in the shared seeds."""


SOURCES: dict[str, SourceDocument] = {d.key: d for d in (
    SourceDocument("GD-2021", "关于改革完善社会救助制度的实施方案 (Guangdong implementation plan for reforming and "
                   "improving the social assistance system)", "中共广东省委办公厅、广东省人民政府办公厅", "2021-07-26",
                   "003_4cd3071f016e1d81.txt"),
    SourceDocument("GD-2022", "困难群众兜底保障等工作的通知 (Guangdong civil affairs notice to the prefecture-level "
                   "civil affairs bureaus on the basic guarantee of people in difficulty, after 民发〔2022〕19号)",
                   "广东省民政厅", "2022", "002_d2ff2f95e9a1b203.txt"),
    SourceDocument("GD-2024", "关于改革创新体制机制健全社会救助体系的若干措施 (Guangdong's 27 measures for a sound "
                   "social assistance system)", "广东省人民政府 (announced by its press office)", "2024-12-26",
                   "000_abe1e4a99e99e14a.txt"),
    SourceDocument("FJ-2021", "完善救助体系 兜牢民生底线 推动新时代社会救助高质量发展 (Fujian's 2021 review of social "
                   "assistance; the text is partly mis-encoded)", "福建省民政厅", "2021", "001_eb3828712267317a.txt"),
    SourceDocument("GS-2024", "加强低收入人口动态监测做好分层分类社会救助工作的实施意见 (Gansu implementation opinions "
                   "on monitoring low-income people and tiered social assistance; press conference)",
                   "甘肃省人民政府新闻办公室、甘肃省民政厅", "2024-01-31", "004_c1267a67a7523bf8.txt"),
)}

SOURCE_KEY = re.compile(r"\b[A-Z]{2}-\d{4}\b")
"""How a source text names a document: a province prefix and a year (``GD-2021``)."""


def unknown_source_keys(source: str) -> list[str]:
    """The document keys ``source`` names that are not registered, in the order they appear."""
    return [key for key in SOURCE_KEY.findall(source) if key not in SOURCES]


def is_illustrative(source: str) -> bool:
    """``illustrative ...``: a value no source gives (the reasons mark it so)."""
    return source.strip().lower().startswith("illustrative")


def source_problem(source: str) -> str | None:
    """Why ``source`` does not cite a registered document (None: it does, or it is marked illustrative)."""
    unknown = unknown_source_keys(source)
    if unknown:
        return (f"source {source!r} names no registered document: {', '.join(unknown)} (registered: "
                f"{', '.join(SOURCES)}; see aidgraph.core.policy.sources)")
    if not is_illustrative(source) and not SOURCE_KEY.search(source):
        return (f"source {source!r} names no document: start with a registered key ({', '.join(SOURCES)}) or "
                f"'illustrative'")
    return None
