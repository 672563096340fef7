"""The PIPIA draft is generated from the classification, the policies and the retention periods."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aidgraph.core.graph.classification import Kind, sensitive_entries

DOC = Path(__file__).resolve().parents[2] / "docs" / "PIPIA.md"


def test_draft_names_every_sensitive_column_and_field_who_sees_it_and_how_long(tmp_path):
    from aidgraph.core.app.cli import app

    out = tmp_path / "PIPIA.md"
    r = CliRunner().invoke(app, ["pipia", "-o", str(out), "--today", "2026-12-01"])
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    for kind, where in sensitive_entries().items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {kind.value} |"))
        for name in where["columns"] + where["fields"]:
            assert f"`{name}`" in row, (kind, name)
    identity = next(line for line in text.splitlines() if line.startswith(f"| {Kind.ID_NUMBER.value} |"))
    assert "right `read_sensitive` on `person`" in identity and "44: " in identity and "province_admin" in identity
    assert "village_assistant" not in identity  # a role without the right is not listed
    audit = next(line for line in text.splitlines() if line.startswith("| audit |"))
    assert audit.count("| 36 ") == 3  # the shipped periods of the three provinces
    assert "Encryption at rest: ID numbers and phones" in text and "Not yet in place: encryption" not in text


def test_committed_draft_exists_and_covers_every_kind():
    text = DOC.read_text(encoding="utf-8")
    assert text.startswith("# 个人信息保护影响评估 (PIPIA)")
    assert all(f"| {k.value} |" in text for k in Kind)
