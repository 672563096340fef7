"""mypy over the whole package, as configured in pyproject.toml ([tool.mypy]): any error fails the suite.

Runs ``python -m mypy -p aidgraph`` from the repository root, the command the README gives, so CI checks the
types on every run (strict on the storage floor, the hook contract and the parameter model; the defaults
elsewhere). The incremental cache lives in the system's temporary directory, not in the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_clean_on_the_whole_package():
    cache = Path(tempfile.gettempdir()) / "aidgraph-mypy-cache"
    result = subprocess.run([sys.executable, "-m", "mypy", "-p", "aidgraph", "--cache-dir", str(cache)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"mypy found errors:\n{result.stdout[-20000:]}{result.stderr[-4000:]}"
    assert "Success: no issues found" in result.stdout
