"""The built wheel works outside the checkout: one import name, package data found, no top-level squatting.

Builds a wheel of the working tree (copied to a temporary directory, so the build writes nothing into the
checkout), checks its contents, installs it (not editable) into a fresh virtual environment outside the
checkout and runs ``aidgraph demo --no-serve`` from an unrelated directory. The new environment sees the test
environment's packages (the dependencies, and the PyPI distribution ``schema`` from the ``test`` extra) through
a path file, so nothing is downloaded; aidgraph itself must come from the installed wheel, and ``import
schema`` must be the PyPI module, not aidgraph's API folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                     ".mypy_cache", "tests", "bench")

pytestmark = pytest.mark.slow


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{args}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=COPY_IGNORE)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "dist"),
          str(source)])
    (built,) = (work / "dist").glob("aidgraph-*.whl")
    return built


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"aidgraph", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, top
    for name in ("core", "plugins", "schema", "province_configs"):
        assert name not in top  # only aidgraph.<name>, never a top-level package of that name
    for province in ("35", "44", "62"):
        assert f"aidgraph/province_configs/{province}/province.toml" in names
        assert f"aidgraph/province_configs/{province}/policy.csv" in names
        assert any(n.startswith(f"aidgraph/province_configs/{province}/parameters/") and n.endswith(".toml")
                   for n in names)
    assert any(n.startswith("aidgraph/core/graph/data/divisions/") and n.endswith(".csv") for n in names)
    assert "aidgraph/core/storage/migrations/env.py" in names
    assert "aidgraph/core/storage/migrations/script.py.mako" in names
    assert any(n.startswith("aidgraph/core/storage/migrations/versions/0001") for n in names)
    assert "aidgraph/schema/schema.graphql" in names
    assert "aidgraph/core/access/authz_model.conf" in names
    assert "aidgraph/py.typed" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "aidgraph = aidgraph.core.app.cli:main" in text and "[aidgraph]" in text


def test_installed_wheel_runs_the_demo_outside_the_checkout(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # The test environment's packages after the new environment's own (a plain path line: .pth files there,
    # such as the editable install's finder for the checkout, are not processed).
    (site / "_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          "--force-reinstall", str(wheel)])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDGRAPH_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(AIDGRAPH_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}", AIDGRAPH_STATE_DIR=str(tmp_path / "state"),
               PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    probe = _run([str(python), "-c",
                  "import aidgraph, aidgraph.core.storage.config as c, schema; "
                  "print(aidgraph.__file__); print(c.builtin_province_configs()); print(schema.__file__); "
                  "print(hasattr(schema, 'Schema') and hasattr(schema, 'SchemaError'))"], cwd=elsewhere, env=env)
    package, configs, schema_file, is_pypi_schema = probe.stdout.split("\n")[:4]
    assert Path(package).is_relative_to(site), package  # the installed wheel, not the checkout
    assert not Path(package).resolve().is_relative_to(ROOT)
    assert Path(configs).is_relative_to(site) and (Path(configs) / "44" / "province.toml").is_file()
    assert not Path(schema_file).resolve().is_relative_to((ROOT / "schema").resolve()), schema_file
    assert is_pypi_schema == "True"  # PyPI's schema module, untouched by aidgraph

    demo = _run([str(env_dir / "bin" / "aidgraph"), "demo", "--no-serve", "--households", "40"], cwd=elsewhere, env=env)
    assert (tmp_path / "demo.db").is_file()
    assert list(elsewhere.iterdir()) == [], "the demo wrote into the working directory"
    counts = _run([str(python), "-c",
                   "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                   "print(c.execute('select count(*) from household').fetchone()[0]); "
                   "print(c.execute('select count(*) from region').fetchone()[0])", str(tmp_path / "demo.db")],
                  cwd=elsewhere, env=env)
    households, regions = (int(x) for x in counts.stdout.split())
    assert households >= 40 and regions > 1000, (households, regions, demo.stdout[-2000:])
