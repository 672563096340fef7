"""Render the rule register (docs/rules/register.toml) into docs/RULES.md.

Why: the register is the machine-readable list of every checkable rule of the five source documents; people
read RULES.md. tests/rules/test_register.py fails when RULES.md differs from what this script renders, so run
``python docs/rules/render.py`` after editing the register.
"""

from __future__ import annotations

import sys
import tomllib
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGISTER = HERE / "register.toml"
RULES_MD = HERE.parent / "RULES.md"
VERDICTS = ("implemented-and-tested", "not-computable", "not-yet")
SOURCES = {
    "GD-2021": "Guangdong implementation plan on reforming social assistance, Jul 2021 (seeds/003)",
    "GD-2022": "Guangdong civil affairs notice on basic-living guarantees, 2022 (seeds/002)",
    "GD-2024": "Guangdong 27 measures, press conference of Dec 2024 (seeds/000)",
    "FJ-2021": "Fujian civil affairs 2021 summary, partly mis-encoded (seeds/001)",
    "GS-2024": "Gansu press conference on the implementation opinions, Jan 2024 (seeds/004)",
    "ISSUE-11": "the platform's own correctness rules (issue 11)",
}


def load(path: Path = REGISTER) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(register: dict) -> str:
    rules = register["rule"]
    counts = Counter(r["verdict"] for r in rules)
    lines = [
        "# Rule register",
        "",
        "Every checkable rule of the five source documents (`/work/shared/seeds/`), one row each, with the source's",
        "own words, where the platform implements it and the test that checks it with the source's figures.",
        "Generated from `docs/rules/register.toml` by `python docs/rules/render.py`: edit the register, not this file.",
        "",
        f"**{len(rules)} rules**: {counts['implemented-and-tested']} implemented and tested, "
        f"{counts['not-computable']} not computable, {counts['not-yet']} not yet.",
        "",
        "| source | rules | implemented and tested | not computable | not yet |",
        "|---|---|---|---|---|",
    ]
    for key in SOURCES:
        mine = [r for r in rules if r["source"] == key]
        c = Counter(r["verdict"] for r in mine)
        lines.append(f"| {key} | {len(mine)} | {c['implemented-and-tested']} | {c['not-computable']} | {c['not-yet']} |")
    lines += ["", "Sources: " + "; ".join(f"**{k}** {v}" for k, v in SOURCES.items()) + ".", ""]
    for key in SOURCES:
        mine = [r for r in rules if r["source"] == key]
        if not mine:
            continue
        lines += [f"## {key}", "", "| id | province | quote | verdict | where | tests | note |", "|---|---|---|---|---|---|---|"]
        for r in mine:
            where = "; ".join(x for x in (r.get("plugin", ""), ", ".join(f"`{p}`" for p in r.get("parameters", []))) if x)
            tests = "<br>".join(f"`{t}`" for t in r.get("tests", []))
            lines.append("| " + " | ".join(_cell(x) for x in (
                r["id"], r["province"], r["quote"], r["verdict"], where, tests, r.get("note", ""))) + " |")
        lines.append("")
    unread = register.get("unread_parameters", {})
    if unread:
        lines += ["## Parameters stored but not yet applied", "",
                  "Declared by a plugin, read by no rule, amount or API (the register test keeps this list exact):", ""]
        lines += [f"- `{k}`: {v}" for k, v in sorted(unread.items())]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    RULES_MD.write_text(render(load()), encoding="utf-8")
    print(f"wrote {RULES_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
