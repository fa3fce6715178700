"""Run a sweep on a SLURM cluster through dask-jobqueue (an example to adapt; needs a SLURM site).

    .venv/bin/python sweeps/slurm.py sweeps/paper.yaml --jobs 4 --partition gpu

Each SLURM job starts one Dask worker with one GPU (``--resources GPU=1``); every sweep run is one
papermill task that asks for that resource, so runs never share a GPU. The sweep's folder, lock and
resume work as on one machine (the results folder must be on a file system all nodes see).
"""

import argparse
import sys

from dask_jobqueue import SLURMCluster

from advmri.sweep import run_sweep


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--jobs", type=int, default=4, help="SLURM jobs = GPU workers")
    ap.add_argument("--partition", default="gpu")
    ap.add_argument("--walltime", default="04:00:00")
    a = ap.parse_args()
    cluster = SLURMCluster(
        queue=a.partition, cores=8, processes=1, memory="64GB", walltime=a.walltime,
        job_extra_directives=["--gres=gpu:1"], worker_extra_args=["--resources", "GPU=1"],
        python=sys.executable,  # this project's venv on the shared file system
    )
    cluster.scale(jobs=a.jobs)
    print(cluster.job_script())
    try:
        st = run_sweep(a.config, engine="dask", scheduler=cluster.scheduler_address,
                       overrides={"device": "cuda"})
    finally:
        cluster.close()
    return 1 if any(v["status"] == "failed" for v in st.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
