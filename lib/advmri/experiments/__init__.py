"""Experiments: one attack run's parameters and execution (run), the files of a run (record: names, layout,
digests, status, atomic writes), sweeps over grids (sweep, on threads, Dask or SLURM), bit-for-bit verification
(verify), reconstruction stores (recons), the random-control recomputation (recontrol), cached quality tables
(quality, evaluate), threat-model objects (threats), the smoke set-up (smoke), the checks a card carries (audit),
replayable card ledgers (ledger) and the attack convergence study (convergence).
"""

__all__ = [
    "audit",
    "convergence",
    "evaluate",
    "ledger",
    "quality",
    "recons",
    "recontrol",
    "record",
    "run",
    "slurm",
    "smoke",
    "sweep",
    "threats",
    "verify",
]
