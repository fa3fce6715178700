"""Run records: the one owner of a run's files, their names, layout, digests and atomic writes.

A run folder (``results/<sweep>/<run-id>/``, see :mod:`advmri.experiments.sweep`) holds::

    params.json            the papermill parameters (json, indent 1, sorted keys)
    notebook.ipynb         the executed notebook
    results.csv            the result table (schema :data:`RESULT_COLUMNS`); written last: its presence means done
    results.meta.json      the run's resolved parameters, weights sha256, annotation accounting, run time
    results.recons.h5      the stored reconstructions of a noise run (:mod:`advmri.experiments.recons`)
    status.json            ok / failed, error, seconds, code version, machine and the sha256 and rows of the
                           table as written (a table changed since is not the run's)

A result table elsewhere (``--out``) has its metadata and store beside it the same way (:func:`meta_path`,
:func:`store_path`). No other module spells these names; they go through :class:`RunRecord` or the functions here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advmri.util.atomic import atomic_path, check_writable, write_text, write_together
from advmri.util.errors import ParameterError
from advmri.util.paths import project_path

if TYPE_CHECKING:
    import pandas as pd

TABLE = "results.csv"
PARAMS = "params.json"
STATUS = "status.json"
NOTEBOOK = "notebook.ipynb"
REJECTED = "results.recontrol-rejected.csv"  # a recomputed table that :mod:`advmri.experiments.recontrol` refused
META_SUFFIX = ".meta.json"  # <table stem>.meta.json
STORE_SUFFIX = ".recons.h5"  # <table stem>.recons.h5
TABLE_SUFFIXES = (".csv", ".parquet")

METRICS = [
    "box_ssim",
    "box_psnr",
    "box_mse",
    "img_ssim",
    "img_psnr",
    "img_mse",
    "lesion_retained",
    "healthy_closer",
    "budget_fraction",
    "adv_sampled_fraction",
    "random_sampled_fraction",
]
# energy fractions on the sampled columns (advmri.attacks.noise.sampled_fraction): noise tables only; a rotation
# table written before they existed reads with NaN, a noise table without them predates the fair control
CONTROL_COLUMNS = ("adv_sampled_fraction", "random_sampled_fraction")
RESULT_COLUMNS = [
    "run_id",
    "file",
    "slice",
    "label",
    "bx",
    "by",
    "bw",
    "bh",
    "model",
    "config",
    "acceleration",
    "attack",
    "param",
    "angle",
    "kind",
    "draw",
    "seed",
    *METRICS,
    "code_version",
]  # the run's parameters are stored once per run (results.meta.json / the sweep's params.json), not per row


def _beside(table: Path, suffix: str) -> Path:
    """``<table stem><suffix>`` in the table's folder."""
    return table.with_name(table.stem + suffix)


def meta_path(table: str | os.PathLike) -> Path:
    """``<table stem>.meta.json`` beside a result table."""
    return _beside(project_path(table), META_SUFFIX)


def store_path(table: str | os.PathLike) -> Path:
    """The reconstruction store beside a result table: ``results.csv`` -> ``results.recons.h5``."""
    return _beside(project_path(table), STORE_SUFFIX)


def table_digest(path: Path) -> tuple[str, int]:
    """``(sha256, data rows)`` of a result table file."""
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), max(0, data.count(b"\n") - 1)


def check_table_path(path: str | os.PathLike, overwrite: bool = True, inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Validate a result-table path before any work: suffix, not one of the run's ``inputs``, not an
    existing file unless ``overwrite``, writable."""
    path = project_path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise ParameterError(
            f"out: {path}: a result table must end in .csv or .parquet, not {path.suffix or '(none)'!r}"
        )
    for i in inputs:
        if i is not None and project_path(i).resolve() == path.resolve():
            raise ParameterError(f"out: {path} is an input of the run; refusing to overwrite it")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; pass --force to overwrite it")
    return check_writable(path, "out")


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a result table atomically (``.csv`` or ``.parquet`` by suffix; a writer-unique temp file)."""
    path = check_table_path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def _table_bytes(df: pd.DataFrame, path: Path) -> bytes:
    """The bytes :func:`write_table` writes for ``df`` at ``path`` (``.csv`` or ``.parquet`` by suffix)."""
    if path.suffix == ".parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    return df.to_csv(index=False).encode()


def _meta_text(meta: dict) -> str:
    """A metadata file's text (json, indent 1; paths and other objects as strings)."""
    return json.dumps(meta, indent=1, default=str)


def write_meta(table: str | os.PathLike, meta: dict) -> Path:
    """Write ``<table stem>.meta.json`` beside a result table atomically; returns its path."""
    return write_text(meta_path(table), _meta_text(meta))


def write_results(df: pd.DataFrame, table: str | os.PathLike, meta: dict) -> Path:
    """The result table and its metadata together or not at all (:func:`advmri.util.atomic.write_together`: space
    for both checked first; the metadata renamed into place first, the table last); returns the table."""
    path = check_table_path(table)
    write_together({meta_path(path): _meta_text(meta).encode(), path: _table_bytes(df, path)})
    return path


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A result table (``.csv`` / ``.parquet``) as written by :func:`write_results`; the control columns of old
    rotation tables filled with NaN."""
    import pandas as pd

    path = project_path(path)
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if len(df) and (df["attack"] == "rotation").all():
        for c in CONTROL_COLUMNS:
            df[c] = df[c] if c in df.columns else float("nan")
    elif "attack" in df.columns and not all(c in df.columns for c in CONTROL_COLUMNS):
        raise ValueError(
            f"{path}: a noise table without {' / '.join(CONTROL_COLUMNS)}: computed before the random "
            "control was drawn on the sampled columns; recompute it (python -m advmri.experiments.recontrol)"
        )
    missing = [c for c in RESULT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not an advmri result table, missing columns {missing}")
    return df


@dataclass(frozen=True)
class RunRecord:
    """The files of one run folder: where they are, how they are read and written."""

    folder: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))

    @property
    def table(self) -> Path:
        """The result table (``results.csv``)."""
        return self.folder / TABLE

    @property
    def meta(self) -> Path:
        """The table's metadata (``results.meta.json``)."""
        return _beside(self.table, META_SUFFIX)

    @property
    def params_path(self) -> Path:
        """The papermill parameters (``params.json``)."""
        return self.folder / PARAMS

    @property
    def status_path(self) -> Path:
        """The run's status (``status.json``)."""
        return self.folder / STATUS

    @property
    def notebook(self) -> Path:
        """The executed notebook (``notebook.ipynb``)."""
        return self.folder / NOTEBOOK

    @property
    def store(self) -> Path:
        """The reconstruction store (``results.recons.h5``)."""
        return _beside(self.table, STORE_SUFFIX)

    @property
    def rejected(self) -> Path:
        """A recomputed table :mod:`advmri.experiments.recontrol` refused (``results.recontrol-rejected.csv``)."""
        return self.folder / REJECTED

    def read_status(self) -> dict | None:
        """The run's ``status.json``, or None when missing or unreadable (a truncated file means not done)."""
        try:
            st = json.loads(self.status_path.read_text())
            return st if isinstance(st, dict) else None
        except (OSError, ValueError):
            return None

    def write_status(self, status: dict) -> None:
        """Write ``status.json`` atomically (json, indent 1)."""
        write_text(self.status_path, json.dumps(status, indent=1))

    def clear_status(self) -> None:
        """Remove ``status.json`` (a stale "ok" must not outlive a re-run)."""
        self.status_path.unlink(missing_ok=True)

    def read_params(self) -> dict[str, Any]:
        """The run's ``params.json`` (raises when missing or unreadable)."""
        params: dict[str, Any] = json.loads(self.params_path.read_text())
        return params

    def write_params(self, params: dict) -> None:
        """Write ``params.json`` atomically (json, indent 1, sorted keys)."""
        write_text(self.params_path, json.dumps(params, indent=1, sort_keys=True))

    def read_meta(self, *, required: bool = False) -> dict[str, Any]:
        """The table's metadata; ``{}`` when the run wrote none, unless ``required`` (then ``FileNotFoundError``);
        raises when present but unreadable."""
        if not required and not self.meta.is_file():
            return {}
        meta: dict[str, Any] = json.loads(self.meta.read_text())
        return meta

    def write_meta(self, meta: dict) -> Path:
        """Write the table's metadata atomically (json, indent 1)."""
        return write_text(self.meta, _meta_text(meta))

    def read_table(self) -> pd.DataFrame:
        """The run's result table (:func:`read_table`)."""
        return read_table(self.table)

    def why_not_done(self) -> str | None:
        """None when the run is complete and its ``results.csv`` is the one it wrote; else why not."""
        st = self.read_status()
        if st is None:
            return f"no readable {STATUS}"
        if st.get("status") != "ok":
            return f"status {st.get('status')!r}"
        if not self.table.is_file():
            return f"{TABLE} missing"
        if "results_sha256" in st:
            sha, rows = table_digest(self.table)
            if sha != st["results_sha256"]:
                return (
                    f"{TABLE} changed since the run (sha256 {sha[:12]} != recorded {st['results_sha256'][:12]}, "
                    f"{rows} rows, recorded {st.get('results_rows')})"
                )
        return None

    def record_table(self) -> dict[str, Any]:
        """``{"results_sha256": ..., "results_rows": ...}`` of the table as it is now (for ``status.json``)."""
        sha, rows = table_digest(self.table)
        return dict(results_sha256=sha, results_rows=rows)

    @staticmethod
    def in_sweep(sweep_dir: str | os.PathLike) -> list[RunRecord]:
        """The run folders of a sweep folder that have a ``status.json``, sorted by folder."""
        return [RunRecord(st.parent) for st in sorted(Path(sweep_dir).glob(f"*/{STATUS}"))]
