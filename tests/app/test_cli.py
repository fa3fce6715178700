"""advmri.app.cli: the ``advmri`` console script dispatches to every command; the wheel installs into a fresh venv
and the installed ``advmri`` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def test_console_script_dispatches_to_every_command(capsys):
    from advmri.app.cli import COMMANDS, main

    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("advmri 0.1.0")
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in COMMANDS)
    for name in ("attack", "benchmark", "leaderboard", "sweep", "verify"):
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: advmri {name}")
    assert main(["benchmrk"]) == 2
    assert "did you mean 'benchmark'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs(tmp_path, tiny_data):
    """``python -m pip wheel .`` -> a fresh venv (its dependencies from this one, by a .pth line) -> ``advmri``."""
    import shutil
    import site
    import sysconfig

    src, dist = tmp_path / "src", tmp_path / "dist"  # built from a copy: setuptools writes build/ beside the sources
    for name in ("lib", "pyproject.toml", "README.md"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("advmri-0.1.0-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    assert here in site.getsitepackages() or here
    Path(purelib, "deps-from-advmri-venv.pth").write_text(here + "\n")  # appended: the wheel's own files win
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.run(
        [str(py), "-c", "import advmri; print(advmri.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(purelib), where  # the installed wheel, not this checkout's lib/
    for args, expect in (
        (["--version"], "advmri 0.1.0"),
        (["--help"], "benchmark"),
        (["benchmark", "--help"], "usage: advmri benchmark"),
    ):
        r = subprocess.run(
            [str(venv / "bin" / "advmri"), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )
        assert r.returncode == 0 and expect in r.stdout, r.stderr
    # the installed tool on a model file and data given relative to the working directory
    rel_data = os.path.relpath(tiny_data, ROOT)
    r = subprocess.run(
        [
            str(venv / "bin" / "advmri"),
            "benchmark",
            "--model",
            "examples/zero_filled.py:make",
            "--data",
            rel_data,
            "--smoke",
            "--acceleration",
            "8",
            "--threats",
            "noise",
            "--out",
            str(tmp_path / "card"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "card" / "card.json").read_text())
    assert card["model"]["name"] == "zero_filled:make" and card["model"]["parameters"] == 0
