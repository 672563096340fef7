"""The rule register (docs/rules/register.toml, rendered into docs/RULES.md) stays true to the code and sources.

Fails when: a row names a test that does not exist; RULES.md is out of date with the register; a row is
malformed (unknown source or verdict, a verdict without its test or its reason, an undeclared parameter); a
quote is not found in its source document; a parameter a plugin declares (``aidgraph_parameter_schemas``) is
read by no rule, amount or API anywhere in core/, plugins/ or schema/ ("stored, never applied") without being
listed as a known gap, or a listed gap has since been closed.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

from aidgraph.core.policy.host import build_plugin_manager, call_each

ROOT = Path(__file__).resolve().parents[2]
SEEDS = Path("/work/shared/seeds")
SEED_FILES = {"GD-2024": "000_abe1e4a99e99e14a.txt", "FJ-2021": "001_eb3828712267317a.txt",
              "GD-2022": "002_d2ff2f95e9a1b203.txt", "GD-2021": "003_4cd3071f016e1d81.txt",
              "GS-2024": "004_c1267a67a7523bf8.txt"}


def _renderer():
    spec = importlib.util.spec_from_file_location("rules_render", ROOT / "docs" / "rules" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _renderer()
REGISTER = render.load()
RULES = REGISTER["rule"]


def _declared() -> dict[str, str]:
    declared: dict[str, str] = {}
    for plugin, specs in call_each(build_plugin_manager(), "aidgraph_parameter_schemas"):
        for spec in specs or []:
            declared[spec.key] = plugin
    return declared


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_named_test_exists():
    missing = []
    for rule in RULES:
        for node in rule.get("tests", []):
            path, _, name = node.partition("::")
            name = name.split("[", 1)[0]
            file = ROOT / path
            if not file.is_file() or not name.startswith("test_") or name not in _test_functions(file):
                missing.append(f"{rule['id']}: {node}")
    assert missing == []


def test_rows_are_well_formed():
    ids = [r["id"] for r in RULES]
    assert len(ids) == len(set(ids)), "duplicate ids"
    declared = _declared()
    problems = []
    for r in RULES:
        if r["source"] not in render.SOURCES:
            problems.append(f"{r['id']}: unknown source {r['source']}")
        if r["verdict"] not in render.VERDICTS:
            problems.append(f"{r['id']}: unknown verdict {r['verdict']}")
        if r["province"] not in ("44", "35", "62", "all"):
            problems.append(f"{r['id']}: unknown province {r['province']}")
        if r["verdict"] == "implemented-and-tested" and not r.get("tests"):
            problems.append(f"{r['id']}: implemented-and-tested names no test")
        if r["verdict"] != "implemented-and-tested" and not r.get("note"):
            problems.append(f"{r['id']}: {r['verdict']} without the reason")
        for key in r.get("parameters", []):
            if key not in declared:
                problems.append(f"{r['id']}: parameter {key} is declared by no plugin")
    assert problems == []


def test_rules_md_is_up_to_date():
    assert (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8") == render.render(REGISTER), \
        "docs/RULES.md is out of date: run python docs/rules/render.py"


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the source documents are not on this machine")
def test_quotes_are_the_sources_words():
    texts = {k: (SEEDS / f).read_text(encoding="utf-8") for k, f in SEED_FILES.items()}
    missing = []
    for r in RULES:
        if r["source"] not in texts:
            continue
        text = _plain(texts[r["source"]])
        # the quote's fragments around an ellipsis (…) and the lost character (?) of FJ-2021
        for fragment in re.split(r"[…?]", _plain(r["quote"])):
            if len(fragment) >= 4 and fragment not in text:
                missing.append(f"{r['id']}: {fragment}")
    assert missing == []


PUNCTUATION = str.maketrans({"，": ",", "（": "(", "）": ")", "：": ":", "；": ";", "！": "!"})


PINYIN = re.compile(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+\)")


def _plain(text: str) -> str:
    """Whitespace and commas removed, full-width punctuation folded (GD-2022 is typed with ASCII commas), and
    the pinyin glosses FJ-2021's mis-encoding inserted after some characters (資產(chǎn)) dropped."""
    return PINYIN.sub("", re.sub(r"\s", "", text).translate(PUNCTUATION)).replace(",", "")


def _reads() -> tuple[set[str], set[str], set[str]]:
    """String constants in core/, plugins/ and schema/ other than a ParamSpec's key (reads), and the leading
    and trailing constant parts of f-strings and concatenations (key prefixes and suffixes)."""
    reads, prefixes, suffixes = set(), set(), set()
    for folder in ("core", "plugins", "schema"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            declarations = {id(node.args[0]) for node in ast.walk(tree)
                            if isinstance(node, ast.Call) and node.args
                            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "ParamSpec"}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in declarations:
                    reads.add(node.value)
                    if node.value.startswith("."):
                        suffixes.add(node.value)
                if isinstance(node, ast.JoinedStr) and node.values:
                    first, last = node.values[0], node.values[-1]
                    if isinstance(first, ast.Constant) and str(first.value).endswith("."):
                        prefixes.add(first.value)
                    if isinstance(last, ast.Constant) and str(last.value).startswith("."):
                        suffixes.add(last.value)
    return reads, prefixes, suffixes


def _unread(keys) -> set[str]:
    reads, prefixes, suffixes = _reads()
    return {key for key in keys
            if key not in reads and not any(key.startswith(p) for p in prefixes)
            and not any(key.endswith(s) for s in suffixes)}


def test_every_declared_parameter_is_applied_somewhere():
    unread = _unread(_declared())
    known = set(REGISTER.get("unread_parameters", {}))
    assert unread - known == set(), "stored, never applied (read by no rule, amount or API)"
    assert known - unread == set(), "listed as unread in the register but read now: remove it from the list"


def test_the_scan_reports_a_parameter_nobody_reads():
    """The detector itself: a declared key that only its declaration names is reported, a read one is not, and
    keys read through an f-string prefix (monitoring.weights.<indicator>) or suffix (<program>.gradual_exit_months)
    count as read."""
    assert _unread(["nobody.reads_this_key", "dibao.urban_standard", "monitoring.weights.income_drop",
                    "dibao.gradual_exit_months"]) == {"nobody.reads_this_key"}
