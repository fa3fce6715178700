"""Experiments: one attack run's parameters and execution (run), sweeps over grids (sweep, on threads, Dask or SLURM),
bit-for-bit verification (verify), reconstruction stores (recons), the random-control recomputation (recontrol),
cached quality tables (quality, evaluate), threat-model objects (threats), the smoke set-up (smoke).
"""

__all__ = ["evaluate", "quality", "recons", "recontrol", "run", "slurm", "smoke", "sweep", "threats", "verify"]
