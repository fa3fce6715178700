"""One attack run: parameters -> result table. The single source of truth for run parameters.

:class:`AttackRun` holds every parameter of a run (model checkpoint, data, acceleration,
attack settings, targets, device, seed); notebooks build it from their papermill parameters
cell, the CLI from its arguments, the sweep from its YAML grid. :func:`execute` returns the
tidy result table (schema :data:`RESULT_COLUMNS`), one row per target x setting x kind (x draw).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from advmri.attacks.common import TargetBatch, box_scores, geometry_groups, make_batch
from advmri.attacks.noise import (
    NoiseConfig,
    adversarial_noise,
    budget,
    budget_fraction,
    control_items,
    recon_with_noise,
    sampled_fraction,
    split_norms,
)
from advmri.attacks.rotation import RotationConfig, random_angles, rotated_recon, sweep_angles, worst_case
from advmri.core.masks import CENTER_FRACTIONS
from advmri.data.annotations import AnnotationError
from advmri.data.dataset import AnnotatedSlices, SliceSample
from advmri.data.fastmri_h5 import DataFileError
from advmri.experiments import record
from advmri.experiments.record import CONTROL_COLUMNS as CONTROL_COLUMNS
from advmri.experiments.record import METRICS as METRICS
from advmri.experiments.record import RESULT_COLUMNS as RESULT_COLUMNS
from advmri.experiments.record import TABLE_SUFFIXES as TABLE_SUFFIXES
from advmri.experiments.record import check_table_path as check_table_path
from advmri.experiments.record import meta_path as meta_path
from advmri.experiments.record import read_table as read_table
from advmri.experiments.record import write_table as write_table
from advmri.models.classical import parse_spec
from advmri.models.networks import OFFICIAL, PRECISIONS, CheckpointError, Reconstructor, load_checkpoint, load_official
from advmri.models.usermodel import is_user_spec, load_user_model, parse_user_spec, refuse_bare_file
from advmri.util.errors import ParameterError, check_choice, check_range, unknown_keys
from advmri.util.paths import project_path
from advmri.util.perf import cuda_chunk, default_chunk, keep_freed_memory, run_chunked
from advmri.util.provenance import code_version, run_id
from advmri.util.schema import cli_fields, option

ADDED_DEFAULTS = {
    "target": "clean",
    "mask_draws": 0,
    "frame": "coils",  # the rotation's frame and maps (attacks.motion, 2026-12-08)
    "maps": "synthetic",
}  # attack parameters added after results were committed: (name, default)
# the notebooks' parameter cells (03 noise, 04 rotation) name schema fields (``data`` as ``data_dir``), these
# notebook-only ones, and differ from the schema's defaults only here (tests/test_params.py)
NOTEBOOK_ONLY = ("out", "smoke")  # the result table; the tiny smoke configuration
NOTEBOOK_DEFAULTS = {"threads": 2}  # a notebook uses both cores of the reference machine; a CLI run or sweep job 1


@dataclass
class AttackRun:
    model: str = option(
        "models/varnet-small.pt",
        "checkpoint .pt, official:varnet|unet[:PATH], classical:<method> or file.py:factory[:kspace|image]",
    )
    data: str = option("data/synthetic/small/test", "folder of fastMRI-format .h5 files (or its multicoil/ parent)")
    annotations: str | None = option(None, "fastMRI+ CSV (default: knee.csv beside the .h5 folder)")
    attack: str = option("noise", "threat model", choices=("noise", "rotation"))
    acceleration: int = option(
        8, "undersampling factor (centre fraction 0.04 at 8x, 0.08 at 4x)", choices=tuple(sorted(CENTER_FRACTIONS))
    )
    mask_type: str = option("random", "fastMRI mask function", choices=("random", "equispaced", "equispaced_fraction"))
    max_targets: int = option(8, "boxes attacked, evenly spaced over the sorted boxes; 0 = all", lo=0)
    shard: int = option(0, "attack shard SHARD of SHARDS contiguous parts of the selected boxes", lo=0)
    shards: int = option(1, "number of shards", lo=1)
    labels: tuple[str, ...] | None = option(None, "attack only boxes with these fastMRI+ labels", many=True)
    device: str = option("cpu", "torch device (cpu, cuda, cuda:1, ...)")
    chunk: int | None = option(
        None,
        "items per forward/backward pass (default: advmri.util.perf.default_chunk: 4 "
        "on CPU, measured from free memory on CUDA)",
        lo=1,
    )
    precision: str = option("fp32", "fp32 | bf16 (autocast of the networks' convolution blocks)", choices=PRECISIONS)
    threads: int = option(1, "CPU threads of the run (torch.set_num_threads; float32 rounding depends on it)", lo=1)
    noise: NoiseConfig = field(default_factory=NoiseConfig, metadata=dict(cli=False))
    rotation: RotationConfig = field(default_factory=RotationConfig, metadata=dict(cli=False))

    def __post_init__(self):
        check_choice("attack", self.attack, ("noise", "rotation"))
        if self.chunk is not None:
            check_range("chunk (items per forward pass)", self.chunk, lo=1, integer=True)
        check_choice("acceleration", self.acceleration, sorted(CENTER_FRACTIONS))
        check_choice("mask_type", self.mask_type, ("random", "equispaced", "equispaced_fraction"))
        check_range("max_targets", self.max_targets, lo=0, integer=True)
        check_range("shards", self.shards, lo=1, integer=True)
        check_range("shard", self.shard, lo=0, hi=self.shards - 1, integer=True)
        check_choice("precision", self.precision, PRECISIONS)
        check_range("threads", self.threads, lo=1, integer=True)
        if self.labels is not None:
            self.labels = (self.labels,) if isinstance(self.labels, str) else tuple(self.labels)
        if not isinstance(self.model, str) or not self.model:
            raise ParameterError(
                f"model: must be a checkpoint path, official:<kind>[:path] or classical:<method>, got {self.model!r}"
            )
        if self.model.startswith("official:"):
            check_choice("model (official:<kind>)", self.model.split(":", 2)[1], sorted(OFFICIAL))
        if is_user_spec(self.model):
            parse_user_spec(self.model)  # file and factory name checked; imported when the run starts
        if self.model.startswith("classical:"):
            parse_spec(self.model)
            if self.precision != "fp32":
                raise ParameterError(
                    f"precision: {self.precision!r} has no effect on {self.model} (a classical method, "
                    "no network to autocast); use precision: fp32"
                )
        try:
            dev = torch.device(self.device)
        except (RuntimeError, TypeError) as e:
            raise ParameterError(f"device: {self.device!r} is not a torch device ({e})") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ParameterError(f"device: {self.device!r} requested but CUDA is not available here")

    @classmethod
    def from_params(cls, attack: str, **p) -> AttackRun:
        """The run of notebook 03 (noise) / 04 (rotation) from its papermill parameters (the sweep
        validates its configs through this too). Unknown names are rejected with the closest valid one."""
        check_choice("attack", attack, ("noise", "rotation"))
        own = {f.name for f in fields(NoiseConfig if attack == "noise" else RotationConfig)}  # incl. SHARED
        common = (set(cli_fields(cls)) - {"attack", "data"}) | {"data_dir"}
        unknown_keys(p, common | own, f"{attack} parameters")
        sub = {k: p.pop(k) for k in own if k in p}
        if attack == "noise":
            noise, rotation = NoiseConfig(**sub), RotationConfig()
        else:
            noise, rotation = NoiseConfig(), RotationConfig(**sub)
        if "data_dir" in p:
            p["data"] = p.pop("data_dir")
        return cls(attack=attack, noise=noise, rotation=rotation, **p)

    def check_inputs(self) -> None:
        """The model file and data folder exist (cheap; before any work starts)."""
        refuse_bare_file(self.model)
        if is_user_spec(self.model):
            parse_user_spec(self.model)
        elif not self.model.startswith(("official:", "classical:")) and not project_path(self.model).is_file():
            raise CheckpointError(f"{project_path(self.model)}: checkpoint not found (model)")
        if not project_path(self.data).is_dir():
            raise DataFileError(f"{project_path(self.data)}: data directory not found (data)")
        if self.annotations is not None and not project_path(self.annotations).is_file():
            raise AnnotationError(f"{project_path(self.annotations)}: annotation file not found (annotations)")

    def items_per_pass(self, item_numel: int | None = None) -> int:
        """``chunk``, or :func:`advmri.util.perf.default_chunk` for this device and k-space size per item."""
        return self.chunk or default_chunk(self.device, item_numel)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["noise" if self.attack == "rotation" else "rotation"] = None
        for cfg in (d["noise"], d["rotation"]):  # parameters added later are left out at their default, so
            for k, default in ADDED_DEFAULTS.items():  # the ids (and run folders) of earlier runs stay valid
                if cfg is not None and cfg.get(k) == default:
                    del cfg[k]
        return d

    @property
    def target(self) -> str:
        return (self.noise if self.attack == "noise" else self.rotation).target

    @property
    def id(self) -> str:
        return run_id(self.as_dict())


def load_model(spec: str, device: str = "cpu") -> Reconstructor:
    """``path.pt`` (advmri checkpoint), ``official:<varnet|unet>[:path]`` (fastMRI weights),
    ``classical:<cg-sense|l1-wavelet|zero-filled>`` (:mod:`advmri.models.classical`, no weights) or
    ``path.py:factory[:kind]`` (any model, :mod:`advmri.models.usermodel`)."""
    model: Reconstructor
    refuse_bare_file(spec)
    if is_user_spec(spec):
        model = load_user_model(spec)
    elif spec.startswith("classical:"):
        model = parse_spec(spec)
    elif spec.startswith("official:"):
        parts = spec.split(":", 2)
        model = load_official(parts[1], parts[2] if len(parts) > 2 else None)
    else:
        model, _ = load_checkpoint(spec)
    return model.to(device).freeze()


def select_targets(ds: AnnotatedSlices, n: int, shard: int = 0, shards: int = 1) -> list[int]:
    """``n`` evenly spaced item indices (all when ``n <= 0`` or ``n >= len``); with ``shards > 1`` the
    ``shard``-th of that many contiguous, near-equal parts (their union is the unsharded list)."""
    idx = (
        list(range(len(ds)))
        if n <= 0 or n >= len(ds)
        else sorted({int(round(x)) for x in np.linspace(0, len(ds) - 1, n)})
    )
    return [int(i) for i in np.array_split(np.asarray(idx, dtype=int), shards)[shard]]


def _rows(
    run: AttackRun,
    model: Reconstructor,
    tb: TargetBatch,
    scores: dict,
    attack: str,
    param,
    kind: str,
    draw: int,
    angle=None,
    version: str = "",
) -> list[dict]:
    rows = []
    for i, s in enumerate(tb.samples):
        b = s.box
        assert b is not None, "an attacked target has a box"
        rows.append(
            dict(
                run_id=run.id,
                file=s.fname,
                slice=s.slice_idx,
                label=s.label,
                bx=b.x,
                by=b.y,
                bw=b.w,
                bh=b.h,
                model=model.kind,
                config=model.config,
                acceleration=run.acceleration,
                attack=attack,
                param=round(float(param[i]) if hasattr(param, "__len__") else float(param), 6),
                angle=None if angle is None else float(angle[i] if hasattr(angle, "__len__") else angle),
                kind=kind,
                draw=draw,
                seed=run.noise.seed if attack == "noise" else run.rotation.seed,
                **{m: float(scores[m][i]) if m in scores else float("nan") for m in METRICS},
                code_version=version,
            )
        )
    return rows


BOUNDARY = 1 - 5e-6  # an item whose adversarial noise attains this mean budget fraction is on the budget sphere


@dataclass
class Reuse:
    """Adversarial rows of an earlier table of the *same* run (same parameters, seed, batches and threads), reused
    when only the random control changed (:mod:`advmri.experiments.recontrol`).

    A pass is reused when its noise is known without the PGA: ``update: ours`` without restarts or mask draws
    (the noise starts at 0 and its gradient is exactly 0 on the columns the mask discards, so all of it lies on
    the sampled columns), every item on its budget sphere (recorded ``budget_fraction >= BOUNDARY``, so coil
    ``i`` has norm ``eps ||k_i||`` within float32 rounding), and rows computed from a clean tree. Every other
    pass is recomputed in full; its adversarial rows are kept in ``recomputed_rows`` for comparison."""

    table: pd.DataFrame
    reused: int = 0
    recomputed: int = 0
    recomputed_rows: list = field(default_factory=list)

    def __post_init__(self):
        t = self.table[self.table["kind"] == "adversarial"]
        self.rows = {_row_key(r): r for r in t.to_dict("records")}

    def rows_for(self, sub: TargetBatch, eps: torch.Tensor, cfg: NoiseConfig) -> list[dict] | None:
        """The table's adversarial rows of this pass when it can be reused, else None."""
        if cfg.update != "ours" or cfg.restarts or cfg.mask_draws:
            return None
        keys = [_sample_key(s, float(e)) for s, e in zip(sub.samples, eps.tolist(), strict=True)]
        found = [self.rows.get(k) for k in keys]
        got = [r for r in found if r is not None and "dirty" not in str(r["code_version"])]
        if len(got) < len(found):  # a row missing, or computed from a dirty tree
            return None
        if any(float(e) > 0 and not r["budget_fraction"] >= BOUNDARY for r, e in zip(got, eps.tolist(), strict=True)):
            return None
        return [dict(r) for r in got]

    def compare(self, new_rows: list[dict]) -> None:
        """Keep recomputed adversarial rows, to be compared with the table's
        (:func:`advmri.experiments.verify.compare`)."""
        self.recomputed_rows += [r for r in new_rows if r["kind"] == "adversarial"]

    def report(self) -> dict:
        return dict(passes_reused=self.reused, passes_recomputed=self.recomputed)


def _row_key(r: dict) -> tuple:
    return (
        str(r["file"]),
        int(r["slice"]),
        int(r["bx"]),
        int(r["by"]),
        int(r["bw"]),
        int(r["bh"]),
        round(float(r["param"]), 6),
    )


def _sample_key(s, eps: float) -> tuple:
    b = s.box
    return (str(s.fname), int(s.slice_idx), int(b.x), int(b.y), int(b.w), int(b.h), round(eps, 6))


def _pga_noise(model: Reconstructor, sub: TargetBatch, eps: torch.Tensor, cfg: NoiseConfig, mask_func) -> torch.Tensor:
    """The adversarial noise of the items of ``sub`` (zero where ``eps`` is 0: no PGA needed)."""
    live = [j for j in range(len(sub)) if float(eps[j]) > 0]  # eps = 0: z = 0, no PGA needed
    z = torch.zeros_like(sub.kspace)  # (items, coils, rows, cols) complex
    if live:
        z[live] = adversarial_noise(model, sub.select(live), eps[live], cfg, mask_func=mask_func)
    return z


def _noise_fractions(
    sub: TargetBatch, eps: torch.Tensor, z: torch.Tensor | None, old: list[dict] | None
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]:
    """``(per-coil norms (sampled, discarded), sampled fraction, budget fraction)`` of the adversarial noise ``z``;
    for reused rows ``old`` (``z`` None) from the budget: all of the noise on the sampled columns, each coil on its
    sphere."""
    if z is not None:
        return split_norms(z, sub), sampled_fraction(z, sub), budget_fraction(z, sub.kspace, eps)
    assert old is not None, "reused rows when no noise was computed"
    zero = torch.zeros(len(sub), sub.kspace.shape[1], device=eps.device)
    norms, adv_frac = (budget(sub.kspace, eps), zero), torch.where(eps > 0, 1.0, float("nan"))
    return norms, adv_frac, torch.tensor([float(r["budget_fraction"]) for r in old])


def _control_draws(
    model: Reconstructor,
    sub: TargetBatch,
    norms: tuple[torch.Tensor, torch.Tensor],
    eps: torch.Tensor,
    cfg: NoiseConfig,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The reconstructions and sampled fractions of the ``random_draws`` draws of the random control."""
    randoms, rnd_frac = [], []
    for d in range(cfg.random_draws):  # each (box, eps, draw) has its own seed
        zr = control_items(sub, *norms, eps.cpu(), cfg.seed, d)
        randoms.append(recon_with_noise(model, sub, zr))
        rnd_frac.append(sampled_fraction(zr, sub))
    return randoms, rnd_frac


def _noise_rows(
    run: AttackRun,
    model: Reconstructor,
    sub: TargetBatch,
    rec: torch.Tensor,
    eps: torch.Tensor,
    kind: str,
    draw: int,
    fractions: dict,
    version: str,
) -> list[dict]:
    """The rows of one reconstruction of the noise attack (``kind`` adversarial or random, draw ``draw``)."""
    return _rows(
        run, model, sub, dict(box_scores(rec, sub), **fractions), "noise", eps.cpu(), kind, draw, version=version
    )


def _noise_pass(
    run: AttackRun,
    model: Reconstructor,
    sub: TargetBatch,
    eps: torch.Tensor,
    keys: list[tuple],
    mask_func,
    version: str,
    reuse: Reuse | None,
    noise: dict | None = None,
) -> tuple[list[dict], dict]:
    """One pass of the noise attack on the items of ``sub`` (item ``j``: budget ``eps[j]``, image key ``keys[j]``):
    the adversarial rows, then ``random_draws`` rows of the random control, and their reconstructions.

    The control (:func:`advmri.attacks.noise.control_items`) has, coil by coil, the adversarial noise's energy on
    the sampled columns and on the discarded ones: both deliver the same energy to the network. ``noise``: a dict
    that receives, per computed item with ``eps > 0``, ``(sampled columns, z on them)`` (the mask discards the rest
    of ``z``, so these reproduce the reconstruction exactly: :mod:`advmri.experiments.ledger`)."""
    cfg = run.noise
    old = reuse.rows_for(sub, eps, cfg) if reuse is not None else None
    images: dict = {}
    z = _pga_noise(model, sub, eps, cfg, mask_func) if old is None else None
    with torch.inference_mode():
        norms, adv_frac, frac = _noise_fractions(sub, eps, z, old)
        randoms, rnd_frac = _control_draws(model, sub, norms, eps, cfg)
        mean_rnd = torch.stack(rnd_frac).mean(0) if rnd_frac else torch.full_like(adv_frac, float("nan"))
        if old is not None and reuse is not None:
            reuse.reused += 1
            rows = [
                dict(
                    r,
                    run_id=run.id,
                    adv_sampled_fraction=float(adv_frac[j]),
                    random_sampled_fraction=float(mean_rnd[j]),
                )
                for j, r in enumerate(old)
            ]
        else:
            assert z is not None, "the adversarial noise is computed when no rows are reused"
            rec = recon_with_noise(model, sub, z)
            fractions = dict(budget_fraction=frac, adv_sampled_fraction=adv_frac, random_sampled_fraction=mean_rnd)
            rows = _noise_rows(run, model, sub, rec, eps, "adversarial", 0, fractions, version)
            if reuse is not None:
                reuse.recomputed += 1
                reuse.compare(rows)
            images.update({(*k, "adversarial"): rec[j].cpu() for j, k in enumerate(keys)})
            if noise is not None:
                for j, k in enumerate(keys):
                    if float(eps[j]) > 0:
                        cols = sub.mask[j].nonzero().flatten().cpu()
                        noise[k] = (cols, z[j][..., cols.to(z.device)].cpu())
        for d, rr in enumerate(randoms):
            fractions = dict(budget_fraction=frac, adv_sampled_fraction=adv_frac, random_sampled_fraction=rnd_frac[d])
            rows += _noise_rows(run, model, sub, rr, eps, "random", d, fractions, version)
        if randoms:
            images.update({(*k, "random"): randoms[0][j].cpu() for j, k in enumerate(keys)})
    return rows, images


def _auto_chunk(run: AttackRun, model: Reconstructor, tb: TargetBatch, one_pass) -> int:
    """Items per pass when ``run.chunk`` is None: on CUDA measured from one item's peak memory
    (:func:`advmri.util.perf.cuda_chunk`), on CPU :func:`advmri.util.perf.default_chunk`."""
    if torch.device(run.device).type == "cuda":
        return cuda_chunk(lambda: one_pass(tb.select([0])), run.device, log=tqdm.write)
    return run.items_per_pass(tb.kspace[0].numel())


def execute(
    run: AttackRun,
    progress: bool = True,
    keep_images: bool = False,
    subset: Sequence[int] | None = None,
    reuse: Reuse | None = None,
    recorded: pd.DataFrame | None = None,
    keep_noise: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Run the attack; returns ``(table, extras)``. ``extras['images']`` (with ``keep_images``)
    maps ``(target index, param, kind)`` -> reconstruction ``(H, W)`` for figures and widgets.

    ``subset`` (for :mod:`advmri.experiments.verify`): compute only these passes of the noise attack (numbered
    over the run, ``extras['passes']`` says how many there are) or these targets of the rotation
    attack (positions in the run's target list), with exactly the batches of the full run, so their
    rows reproduce the full run's rows.

    ``reuse`` (noise; :mod:`advmri.experiments.recontrol`): an earlier table of this run whose adversarial rows are
    taken over where they cannot have changed (see :class:`Reuse`); only the random control is then computed.

    ``recorded`` (rotation, with ``subset``; :mod:`advmri.experiments.verify`): the run's table; each target's bounds
    are recomputed at their recorded worst angles only (:func:`_rotation_target`).

    ``keep_noise`` (noise): ``extras['noise']`` maps ``(target index, eps)`` -> the adversarial noise on the sampled
    columns (for the replayable cards of :mod:`advmri.experiments.ledger`)."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(run.threads)  # pinned per run: per-box results depend on it (float32 rounding)
    try:
        subset_ = None if subset is None else set(subset)
        return _execute(run, progress, keep_images, t0, subset_, reuse, recorded, keep_noise)
    finally:
        torch.set_num_threads(threads_before)


def run_dataset(run: AttackRun) -> AnnotatedSlices:
    """The run's annotated slices, checked: some boxes, and the lesion-free twins its ``target`` needs."""
    ds = AnnotatedSlices(
        run.data,
        run.annotations,
        acceleration=run.acceleration,
        mask_type=run.mask_type,
        labels=run.labels,
        lesion_free=run.target == "lesion",
    )  # lesion: the twins are attacked
    if not len(ds):
        raise ds.no_boxes_error()
    if run.target in ("healthy", "lesion"):
        need = "has_healthy" if run.target == "healthy" else "has_healthy_kspace"
        lacking = [i.path for i in ds.infos.values() if not getattr(i, need)]
        if lacking:
            what = (
                "pulls the box toward the lesion-free twin"
                if run.target == "healthy"
                else "attacks the lesion-free twin toward the lesion"
            )
            field_ = "reconstruction_rss_healthy" if run.target == "healthy" else "kspace_healthy"
            raise ParameterError(
                f"target: {run.target!r} {what}, which {lacking[0]} lacks ({field_!r}; real fastMRI "
                "data has none): use target: clean"
            )
    return ds


def shard_sizes(run: AttackRun) -> list[int]:
    """Targets in each of the run's ``shards`` (cheap: reads annotations and file headers only)."""
    ds = run_dataset(run)
    return [len(select_targets(ds, run.max_targets, k, run.shards)) for k in range(run.shards)]


def _recorded_angles(recorded: pd.DataFrame | None, s, angles: Sequence[float], bounds) -> dict[float, int] | None:
    """Grid index of the recorded worst angle of each bound for sample ``s`` (None: not all recorded on the grid)."""
    if recorded is None:
        return None
    b = s.box
    r = recorded[
        (recorded.kind == "adversarial")
        & (recorded.file == s.fname)
        & (recorded.slice == s.slice_idx)
        & (recorded.bx == b.x)
        & (recorded.by == b.y)
        & (recorded.bw == b.w)
        & (recorded.bh == b.h)
    ]
    grid = np.asarray(angles, dtype=float)
    out = {}
    for bound in bounds:
        a = r[np.isclose(r.param, bound)].angle
        if len(a) != 1:
            return None
        hit = np.nonzero(np.isclose(grid, float(a.iloc[0]), atol=1e-6))[0]
        if len(hit) != 1:
            return None
        out[float(bound)] = int(hit[0])
    return out


def _worst_angles(grid_sc: dict, cfg: RotationConfig, known: dict[float, int] | None) -> list[dict]:
    """The worst angle of each bound on the grid (``item, bound, angle`` and the scores there): searched, or at the
    ``known`` recorded grid indices."""
    if known is None:
        return worst_case(grid_sc, cfg.angles, cfg.bounds, cfg.target)
    return [
        dict(item=0, bound=b, angle=float(cfg.angles[j]), **{k: float(v[0, j]) for k, v in grid_sc.items()})
        for b, j in known.items()
    ]


def _rotation_target(
    run: AttackRun,
    model: Reconstructor,
    sub: TargetBatch,
    rnd: list,
    per_pass: int,
    version: str,
    recorded: pd.DataFrame | None = None,
) -> tuple[list[dict], dict, list[dict]]:
    """The rows of one rotation target: clean, the worst angle of each bound, the random angles.

    With ``recorded`` (verification: the run's table) only the passes holding the recorded worst angles and the
    random angles are recomputed, in exactly the run's batches of ``per_pass`` angles (so they reproduce bit for
    bit), and each bound's row is taken at its recorded angle; the search over the grid is not repeated."""
    cfg = run.rotation
    angles = cfg.angles
    all_angles = list(angles) + [a for _, a in rnd]
    known = _recorded_angles(recorded, sub.samples[0], angles, cfg.bounds)
    need = None if known is None else set(known.values()) | set(range(len(angles), len(all_angles)))
    sc = sweep_angles(model, sub, all_angles, chunk=per_pass, interpolation=cfg.interpolation, only=need)
    with torch.inference_mode():  # the reference row: the clean, un-rotated reconstruction
        clean = box_scores(recon_with_noise(model, sub, torch.zeros_like(sub.kspace)), sub)
        rows = _rows(run, model, sub, clean, "rotation", 0.0, "clean", 0, version=version)
    worst = _worst_angles({k: v[:, : len(angles)] for k, v in sc.items()}, cfg, known)
    for w in worst:
        at_worst = {k: [w[k]] for k in sc}
        rows += _rows(
            run, model, sub, at_worst, "rotation", w["bound"], "adversarial", 0, angle=w["angle"], version=version
        )
    for d, (b, a) in enumerate(rnd):
        at_random = {k: v[:, len(angles) + d] for k, v in sc.items()}
        rows += _rows(
            run, model, sub, at_random, "rotation", b, "random", d % cfg.random_draws, angle=a, version=version
        )
    return rows, sc, worst


@dataclass
class _Setup:
    """A run's loaded inputs: the model, the annotated slices, the selected targets (indices, samples), the code."""

    run: AttackRun
    model: Reconstructor
    ds: AnnotatedSlices
    idx: list[int]
    samples: list[SliceSample]
    version: str


@dataclass
class _Collected:
    """What the passes of a run produced: rows, reconstructions, and the eps values each noise pass covers."""

    rows: list[dict] = field(default_factory=list)
    images: dict = field(default_factory=dict)
    keep_noise: bool = False  # collect the adversarial noise of every computed item into ``noise``
    noise: dict = field(default_factory=dict)  # (target index, eps) -> (columns (n,), z (coils, rows, n) complex)
    noise_passes: list[list[tuple]] = field(default_factory=list)  # the (target index, eps) of each pass, in order
    pass_params: list[list[float]] = field(default_factory=list)  # verification picks noise passes by them


def _setup(run: AttackRun) -> _Setup:
    """Load the run's model and data and select its targets (an empty shard is an error)."""
    if torch.device(run.device).type == "cpu":
        keep_freed_memory()
    model = load_model(run.model, run.device).set_precision(run.precision)
    ds = run_dataset(run)
    idx = select_targets(ds, run.max_targets, run.shard, run.shards)
    if not idx:
        raise ParameterError(
            f"shards: shard {run.shard} of {run.shards} is empty ({len(select_targets(ds, run.max_targets))} "
            "targets); use fewer shards"
        )
    return _Setup(run, model, ds, idx, [ds[i] for i in idx], code_version())


def _noise_group(
    setup: _Setup,
    pos: list[int],
    out: _Collected,
    progress: bool,
    keep_images: bool,
    subset: set[int] | None,
    reuse: Reuse | None,
) -> None:
    """The noise attack on one geometry group (positions ``pos`` of the targets), pass by pass (passes numbered
    over the run: ``len(out.pass_params)``), into ``out``."""
    run, model, ds, idx = setup.run, setup.model, setup.ds, setup.idx
    cfg = run.noise
    E = len(cfg.eps)
    # item n is (target pos[n // E], eps n % E), item-major; a pass stacks only its own items (the same values as
    # slicing one stack of every item: stacking and indexing copy, they do not compute)
    eps_all = torch.tensor(cfg.eps, dtype=torch.float32).repeat(len(pos))
    n_items = len(pos) * E

    twins = all(setup.samples[i].healthy is not None for i in pos)  # as in one stack of the group: all or none

    def items(ids: list[int]) -> TargetBatch:
        tb = make_batch([setup.samples[pos[n // E]] for n in ids])
        return (tb if twins else replace(tb, healthy=None)).to(run.device)

    bar = tqdm(total=n_items, desc=f"noise {model.kind}", disable=not progress)

    def step(lo: int, hi: int) -> None:
        out.pass_params.append(sorted({float(cfg.eps[n % E]) for n in range(lo, hi)}))
        if subset is None or len(out.pass_params) - 1 in subset:
            ids = list(range(lo, hi))
            keys = [(idx[pos[n // E]], cfg.eps[n % E]) for n in ids]  # (target index, eps) of each item
            new_rows, new_images = _noise_pass(
                run,
                model,
                items(ids),
                eps_all[ids].to(run.device),
                keys,
                ds.mask_func,
                setup.version,
                reuse,
                out.noise if out.keep_noise else None,
            )
            out.rows.extend(new_rows)  # a pass commits only when it completed (out-of-memory retries)
            if out.keep_noise:
                out.noise_passes.append(keys)
            if keep_images:
                out.images.update(new_images)
        bar.update(hi - lo)

    per_pass = run.chunk or _auto_chunk(
        run,
        model,
        items([0]),
        lambda one: adversarial_noise(
            model, one, torch.full((1,), max(cfg.eps), device=run.device), replace(cfg, steps=1), mask_func=ds.mask_func
        ),
    )
    run_chunked(n_items, per_pass, step, log=tqdm.write, device=run.device)
    bar.close()


def _with_frame(setup: _Setup, sub: TargetBatch) -> TargetBatch:
    """``sub`` carrying its fixed coil sensitivities when the run rotates the object (``frame="object"``)."""
    from advmri.attacks.motion import with_frame

    return with_frame(sub, setup.run.rotation.frame, setup.run.rotation.maps)


def _rotation_targets(
    setup: _Setup,
    out: _Collected,
    progress: bool,
    keep_images: bool,
    subset: set[int] | None,
    recorded: pd.DataFrame | None,
) -> None:
    """The rotation attack on each target (positions in ``subset`` only, when given), into ``out``."""
    run, model, idx = setup.run, setup.model, setup.idx
    cfg = run.rotation
    rnd = random_angles(cfg.bounds, cfg.random_draws, cfg.seed)
    per_pass = None
    for t in tqdm(range(len(setup.samples)), desc=f"rotation {model.kind}", disable=not progress):
        if subset is not None and t not in subset:
            continue
        sub = _with_frame(setup, make_batch([setup.samples[t]])).to(run.device)
        if t == 0 or per_pass is None:
            per_pass = run.chunk or _auto_chunk(
                run,
                model,
                sub,
                lambda one: rotated_recon(model, one, torch.zeros(1, device=run.device), cfg.interpolation),
            )
        new_rows, sc, worst = _rotation_target(run, model, sub, rnd, per_pass, setup.version, recorded)
        out.rows += new_rows
        if keep_images:
            for w in worst:
                with torch.no_grad():
                    out.images[(idx[t], w["bound"], "adversarial")] = rotated_recon(
                        model, sub, torch.tensor([w["angle"]], device=run.device), cfg.interpolation
                    )[0].cpu()
        out.images.setdefault("_scores", {})[idx[t]] = {k: v[0, : len(cfg.angles)].numpy() for k, v in sc.items()}


def _execute(
    run: AttackRun,
    progress: bool,
    keep_images: bool,
    t0: float,
    subset: set[int] | None,
    reuse: Reuse | None = None,
    recorded: pd.DataFrame | None = None,
    keep_noise: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """:func:`execute` once the run's thread count is pinned: load, attack every pass or target, tabulate."""
    setup = _setup(run)
    out = _Collected(keep_noise=keep_noise)
    if run.attack == "noise":
        for pos in geometry_groups(setup.samples):  # one group unless the volumes differ in coils / columns
            _noise_group(setup, pos, out, progress, keep_images, subset, reuse)
        passes = len(out.pass_params)
    elif run.attack == "rotation":
        _rotation_targets(setup, out, progress, keep_images, subset, recorded)
        passes = len(setup.samples)
    else:
        raise ValueError(f"unknown attack {run.attack!r} (noise | rotation)")
    df = pd.DataFrame(out.rows, columns=RESULT_COLUMNS)
    extras = dict(
        images=out.images,
        targets=setup.idx,
        samples=setup.samples,
        seconds=time.perf_counter() - t0,
        passes=passes,
        pass_params=out.pass_params or None,
        angles=list(run.rotation.angles),
        annotations=setup.ds.report,
        model_sha256=setup.model.sha256,
        noise=out.noise,
        noise_passes=out.noise_passes,
    )
    return df, extras


def _meta(run: AttackRun, extras: dict) -> dict:
    """The metadata of a run's table (:func:`advmri.experiments.record.write_results`): its parameters, id, code
    version, the sha256 of the weights loaded, the annotation accounting, targets and run time."""
    return dict(
        run=run.as_dict(),
        run_id=run.id,
        code_version=code_version(),
        model_sha256=extras["model_sha256"],
        annotations=extras["annotations"],
        targets=len(extras["targets"]),
        seconds=round(extras["seconds"], 2),
    )


def write_meta(table: str | os.PathLike, run: AttackRun, extras: dict) -> Path:
    """``<table stem>.meta.json`` beside a result table: the run's parameters, the sha256 of the weights
    actually loaded, the annotation accounting (rows kept / dropped by reason) and the run time."""
    return record.write_meta(table, _meta(run, extras))


def write_results(df: pd.DataFrame, table: str | os.PathLike, run: AttackRun, extras: dict) -> Path:
    """The result table and its metadata together or not at all (:func:`advmri.experiments.record.write_results`);
    returns the table."""
    return record.write_results(df, table, _meta(run, extras))
