"""``pip install .`` and ``pip install -e .`` give a working ``tcm`` console script.

Offline and fast: the package (pyproject.toml and tcm_core/ only, so nothing else of the repo is
needed) is installed with ``--no-deps --no-build-isolation --no-index`` into throwaway virtual
environments. Their python is this venv's base interpreter, so ``--system-site-packages`` alone
would not show this venv's packages: a ``.pth`` file adds this venv's site-packages (torch, numpy,
setuptools, pip, ...) after the environment's own, where the installed tcm_core comes first.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, clustered


def _run(cmd, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300, check=False, **kw)


def _source_copy(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(ROOT / "tcm_core", src / "tcm_core", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", src)
    return src


def _venv(tmp: Path, name: str) -> Path:
    env = tmp / name
    out = _run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", env], tmp)
    assert out.returncode == 0, out.stderr
    purelib = Path(_run([env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_tcm_test_parent.pth").write_text("\n".join(sorted(ours)) + "\n")
    return env


def _pip_install(env: Path, *args, cwd):
    out = _run([env / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                "--disable-pip-version-check", "-q", *args], cwd)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    x, y = clustered(51, n=120, classes=6, dim=5)
    np.savez(tmp / "e.npz", embeddings=x, labels=y)
    (tmp / "elsewhere").mkdir()
    return tmp, _source_copy(tmp)


def test_pip_install_gives_tcm(workdir):
    tmp, src = workdir
    env = _venv(tmp, "env")
    _pip_install(env, src, cwd=tmp)
    elsewhere = tmp / "elsewhere"  # not the repo: only the installed package can be imported
    out = _run([env / "bin" / "tcm", "evaluate", tmp / "e.npz", "--json"], elsewhere)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["n"] == 120 and got["n_classes"] == 6 and 0 < got["opis"]
    code = ("import tcm_core, importlib.metadata as m; print(tcm_core.__file__); "
            "print(m.version('tcm-explorer')); print(m.requires('tcm-explorer'))")
    out = _run([env / "bin" / "python", "-c", code], elsewhere)
    where, version, requires = out.stdout.splitlines()
    assert Path(where).is_relative_to(env) and version == "0.1.0", out.stderr
    assert "torch" in requires and "pytorch-metric-learning" in requires
    # bad input: one error line, exit 2, as `python -m tcm_core`
    out = _run([env / "bin" / "tcm", "evaluate", tmp / "missing.npz"], elsewhere)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [f"error: file not found: {tmp / 'missing.npz'}"]


def test_pip_install_editable(workdir):
    tmp, src = workdir
    env = _venv(tmp, "env-editable")
    _pip_install(env, "-e", src, cwd=tmp)
    out = _run([env / "bin" / "tcm", "evaluate", "--help"], tmp / "elsewhere")
    assert out.returncode == 0 and "--far-range" in out.stdout, out.stderr
    out = _run([env / "bin" / "python", "-c", "import tcm_core; print(tcm_core.__file__)"], tmp / "elsewhere")
    assert Path(out.stdout.strip()).is_relative_to(src), out.stdout + out.stderr


def test_project_metadata_lists_requirements():
    """Every runtime requirement of requirements.txt is a dependency (test tools excluded)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {d.split(">=")[0].split("==")[0].lower() for d in project["dependencies"]}
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    required = {line.split("==")[0].lower() for line in lines if line} - {"pytest", "playwright"}
    assert declared == required
    assert project["scripts"]["tcm"] == "tcm_core.cli:main"
