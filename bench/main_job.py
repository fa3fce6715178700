"""Time the main job and the tests as a new user meets them: a fresh clone, then the README's two commands.

    python3 bench/main_job.py [--skip-tests] [--keep DIR]

Clones this checkout (its HEAD) into a temporary folder, runs ``python3 tasks.py setup``, ``python3 tasks.py all``
and ``python3 tasks.py test`` there (the virtual environment of this checkout is copied in first when
``--reuse-venv`` is given, so the set-up measures pip's checks only), reads the main job's own summary (each step's
seconds) and pytest's ``--durations`` lines, and writes the section between the markers in ``bench/RESULTS.md``.
Not a timed test: it measures this machine, whatever else runs on it (the load average is recorded).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- main-job:start -->", "<!-- main-job:end -->"


def timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, str, int]:
    t = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - t, log.read_text(), rc


def _cpu() -> str:
    """The CPU model and whether it has bfloat16 units (the bf16 runs' verification depends on it)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU unknown"
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    bf16 = any(f in info for f in (" avx512_bf16", " amx_bf16"))
    return f"{model}, {'with' if bf16 else 'without'} bfloat16 units"


def section(rows: list[tuple[str, float, str]], steps: str, slowest: list[str], load: str) -> str:
    lines = [
        START,
        f"## Main job and tests from a fresh clone ({date.today().isoformat()}, `python3 bench/main_job.py`)",
        "",
        f"{os.cpu_count()}-core CPU machine ({_cpu()}), load average before the start {load}.",
        "",
        "| command | seconds | result |",
        "|---|---|---|",
    ]
    lines += [f"| `{c}` | {s:.0f} | {r} |" for c, s, r in rows]
    lines += ["", "The main job's own summary:", "", "```text", steps.strip(), "```", ""]
    if slowest:
        lines += ["The slowest tests of the fast tier (pytest `--durations`):", "", "```text", *slowest, "```", ""]
    return "\n".join(lines + [END])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--reuse-venv", action="store_true", help="copy this checkout's .venv into the clone first")
    ap.add_argument("--keep", default=None, help="clone into this folder and keep it")
    ap.add_argument("--force", action="store_true", help="write bench/RESULTS.md even when a command failed")
    a = ap.parse_args()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    work = Path(a.keep or tempfile.mkdtemp(prefix="advmri-bench-"))
    clone = work / "advmri"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if a.reuse_venv and (ROOT / ".venv").is_dir():
        shutil.copytree(ROOT / ".venv", clone / ".venv", symlinks=True)
        (clone / ".venv" / ".advmri-installed").unlink(missing_ok=True)  # set-up re-runs: advmri from the clone
    rows = []
    for cmd in (["python3", "tasks.py", "setup"], ["python3", "tasks.py", "all"]) + (
        () if a.skip_tests else (["python3", "tasks.py", "test"],)
    ):
        sec, out, rc = timed(cmd, clone, work / f"{cmd[-1]}.log")
        result = "ok" if rc == 0 else f"exit {rc}"
        if cmd[-1] == "test":
            m = re.findall(r"(\d+ passed.*?) in ", out)
            result = m[-1] if m else result
        rows.append((" ".join(cmd), sec, result))
        print(f"{' '.join(cmd)}: {sec:.0f} s ({result})", flush=True)
    all_log = (work / "all.log").read_text()
    steps = all_log[all_log.rfind("== summary") :] if "== summary" in all_log else "(no summary)"
    test_log = (work / "test.log").read_text() if (work / "test.log").is_file() else ""
    slowest = [ln for ln in test_log.splitlines() if re.match(r"^\d+\.\d+s (call|setup|teardown)", ln)][:10]
    res = ROOT / "bench" / "RESULTS.md"
    text = res.read_text()
    new = section(rows, steps, slowest, load)
    failed = [c for c, _, r in rows if r.startswith("exit")]
    if failed and not a.force:  # a failed job's timings must not replace the measured ones
        (work / "RESULTS-failed.md").write_text(new + "\n")
        print(
            f"bench/main_job.py: {', '.join(failed)} failed (logs in {work}); bench/RESULTS.md left as it was "
            "(--force writes it anyway)",
            file=sys.stderr,
        )
        return 1
    text = (
        re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: new, text, flags=re.S)
        if START in text
        else text.rstrip() + "\n\n" + new + "\n"
    )
    res.write_text(text)
    print(f"-> {res}")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
