"""CLI: ``advmri replay CARD [--model SPEC]``: check a robustness card from its stored perturbations, in seconds.

Recomputes every adversarial row of the card's noise runs from the card's ``ledger.npz`` (no attack: one forward
pass per batch, :func:`advmri.experiments.ledger.replay`) and says whether the card holds: bit-exact on the machine
that made it, within the ledger's tolerance elsewhere. A changed perturbation file, a changed table value or
another model is reported in one line (exit status 1; bad input: 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advmri.experiments.ledger import TOLERANCE, replay
from advmri.util.errors import cli, prog
from advmri.util.paths import project_path

__all__ = ["main"]


def parser(name: str = "advmri.app.replay") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog(name), description=__doc__.split("\n\n")[0])
    ap.add_argument("card", help="a card folder (with card.json, ledger.json, ledger.npz, runs/) or its card.json")
    ap.add_argument("--model", default=None, help="the model to replay with (default: the card's own spec)")
    return ap


@cli
def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    folder = project_path(a.card)
    folder = folder.parent if folder.name == "card.json" else folder
    r = replay(Path(folder), a.model)
    how = "bit-exact (the machine that made it)" if r.exact else f"within rtol {TOLERANCE['rtol']:g} (another machine)"
    if r.holds:
        print(
            f"card holds: {r.rows} rows replayed {how}, largest relative difference {r.max_rel_diff:.1e}, "
            f"{r.seconds:.1f} s"
        )
        return 0
    print(f"card does not hold: {len(r.bad)} of {r.rows * 3} values differ ({how}); first: {r.bad[0]}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
