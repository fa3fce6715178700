"""The committed leaderboard: a robustness card for each of advmri's own models, then the ranked table.

    .venv/bin/python bench/leaderboard.py            # resumes: models whose card exists are skipped
    .venv/bin/python bench/leaderboard.py --force    # recompute every card

Cards go to ``results/leaderboard/cards/<model>/``, the table to ``results/leaderboard/`` (standard profile at 8x,
the embedded test set, seed 0; ``advmri benchmark`` with its defaults).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "varnet-small": "models/varnet-small.pt",
    "unet-small": "models/unet-small.pt",
    "cg-sense": "classical:cg-sense",
    "l1-wavelet": "classical:l1-wavelet",
    "zero-filled": "classical:zero-filled",  # the reference row of the ranking rule
}


def main(argv: list[str] | None = None) -> int:
    from advmri.app.benchmark import main as benchmark
    from advmri.report.leaderboard import main as leaderboard

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--only", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    a = ap.parse_args(argv)
    out = ROOT / "results" / "leaderboard"
    for name in a.only:
        card = out / "cards" / name
        if (card / "card.json").is_file() and not a.force:
            print(f"{name}: card exists, kept ({card / 'card.json'})", flush=True)
            continue
        t = time.perf_counter()
        code = benchmark(
            ["--model", MODELS[name], "--out", str(card), "--threads", "1", "--acceleration", "8"]
            + (["--force"] if a.force else [])
        )
        print(f"{name}: {time.perf_counter() - t:.0f} s (exit {code})", flush=True)
        if code:
            return code
    cards = [str(out / "cards" / n) for n in sorted(MODELS) if (out / "cards" / n / "card.json").is_file()]
    return leaderboard([*cards, "--out", str(out)])


if __name__ == "__main__":
    sys.exit(main())
