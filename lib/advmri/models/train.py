"""Train fastMRI VarNet / UNet on fastMRI-format data (real or synthetic).

``python -m advmri.models.train --model varnet|unet --config small --data DIR --out CKPT [--device cuda]``

* masks: fastMRI random masks mixing 4x/0.08 and 8x/0.04 (fastMRI's ``MaskFunc`` choice);
* loss: fastMRI's ``SSIMLoss`` for VarNet (as the E2E-VarNet paper), L1 for UNet (as fastMRI's
  U-Net baseline);
* validation split by volume (every ``val_every_nth`` volume, sorted by name), validation SSIM
  at 8x with fixed per-slice masks;
* deterministic: all randomness of step ``i`` is drawn from ``SeedSequence([seed, i])``, so a
  resumed run continues exactly as an uninterrupted one;
* checkpoints: ``CKPT`` (model + config, sha256 beside it) and ``CKPT.resume.pt`` (optimizer,
  step, history) every ``--save-every`` steps; ``--resume`` continues from them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastmri.data import SliceDataset
from fastmri.data.subsample import MaskFunc
from fastmri.losses import SSIMLoss
from torch.optim.lr_scheduler import LRScheduler
from tqdm.auto import tqdm

from advmri.core import metrics as M
from advmri.core.masks import mask_func, sample_mask, slice_seed
from advmri.data.fastmri_h5 import read_info
from advmri.models.networks import CONFIGS, Reconstructor, build, load_checkpoint, save_checkpoint
from advmri.util.atomic import atomic_path, check_writable
from advmri.util.errors import ParameterError, UserError, check_choice, check_range, cli, prog
from advmri.util.locks import exclusive
from advmri.util.paths import project_path


def h5_folder(data: str | Path) -> Path:
    """The folder holding a data set's ``.h5`` files (``DIR/multicoil`` when present, else ``DIR``)."""
    data = project_path(data)
    return data / "multicoil" if (data / "multicoil").is_dir() else data


def split_files(data: str | Path, val_every_nth: int = 5) -> tuple[list[str], list[str]]:
    """Split volumes (sorted by name) into train / validation: every n-th volume validates."""
    names = sorted(p.stem for p in h5_folder(data).glob("*.h5"))
    val = [n for i, n in enumerate(names) if i % val_every_nth == val_every_nth - 1]
    return [n for n in names if n not in val], val


class SliceCache:
    """All slices of some volumes in memory: k-space ``(coils, rows, cols)`` complex, target, padding, max."""

    def __init__(self, data: str | Path, files: list[str]) -> None:
        folder = h5_folder(data)
        for f in files:
            read_info(folder / f"{f}.h5")
        ds = SliceDataset(folder, challenge="multicoil")
        keep = set(files)
        # (k-space (coils, rows, cols) complex, target (H, W) float, padding, max, file name, slice)
        self.items: list[tuple[torch.Tensor, torch.Tensor, tuple[int, int], float, str, int]] = []
        for i, s in enumerate(ds.raw_samples):
            if s.fname.stem not in keep:
                continue
            k, _, tgt, attrs, fname, sl = ds[i]
            pad = (int(attrs["padding_left"]), int(attrs["padding_right"]))
            self.items.append((torch.from_numpy(k), torch.from_numpy(tgt), pad, float(attrs["max"]), fname, sl))
        shapes: dict[tuple[tuple[int, ...], tuple[int, ...]], str] = {}
        for k, t, _, _, fname, _ in self.items:  # batches stack slices: one geometry per training folder
            shapes.setdefault((tuple(k.shape), tuple(t.shape)), fname)
        if len(shapes) > 1:
            (a, fa), (b, fb) = list(shapes.items())[:2]
            raise UserError(
                f"{data}: volumes of different geometry cannot be trained together: {fa} has k-space "
                f"{a[0]} and target {a[1]}, {fb} has {b[0]} and {b[1]} (coils, rows, cols); train on "
                "a folder of one geometry"
            )

    def __len__(self) -> int:
        return len(self.items)

    def batch(
        self, idx: Sequence[int], func: MaskFunc, seeds: Sequence[int], device: str | torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Items ``idx`` under masks of ``func`` seeded by ``seeds``: masked k-space ``(b, coils, rows, cols)``
        complex, masks ``(b, cols)`` bool, low-frequency counts ``(b,)``, targets ``(b, H, W)``, maxima ``(b,)``."""
        ks: list[torch.Tensor] = []
        ms: list[torch.Tensor] = []
        nl: list[int] = []
        tg: list[torch.Tensor] = []
        mx: list[float] = []
        for i, sd in zip(idx, seeds, strict=True):
            k, t, pad, mxv, _, _ = self.items[i]
            m, n = sample_mask(func, (k.shape[-2], k.shape[-1]), pad, sd)
            ks.append(k * m.to(k.real.dtype))
            ms.append(m)
            nl.append(n)
            tg.append(t)
            mx.append(mxv)
        return (
            torch.stack(ks).to(device),
            torch.stack(ms).to(device),
            torch.tensor(nl, device=device),
            torch.stack(tg).to(device),
            torch.tensor(mx, device=device),
        )


@torch.no_grad()
def validate(
    model: Reconstructor, cache: SliceCache, device: str | torch.device, acceleration: int = 8, chunk: int = 8
) -> float:
    """Mean whole-image SSIM of ``model`` on the cached validation slices at ``acceleration`` (seeded masks),
    ``chunk`` slices per forward pass (each slice keeps its own mask and centre width: the same numbers as one
    at a time)."""
    model.eval()
    precision = getattr(model, "precision", "fp32")
    if precision != "fp32":
        model.set_precision("fp32")  # the learning curve is measured as the model will be used
    func = mask_func("random", (acceleration,))
    vals: list[float] = []
    for lo in range(0, len(cache), chunk):
        idx = list(range(lo, min(lo + chunk, len(cache))))
        seeds = [slice_seed(cache.items[i][4], cache.items[i][5]) for i in idx]
        k, m, n, t, mx = cache.batch(idx, func, seeds, device)
        out = model(k, m, n, tuple(t.shape[-2:]))  # (chunk, H, W)
        vals.extend(M.ssim(out, t, mx).tolist())
    model.train()
    if precision != "fp32":
        model.set_precision(precision)
    return float(np.mean(vals))


def train(
    model_kind: str,
    config: str,
    data: str | Path,
    out: str | Path,
    steps: int = 600,
    batch: int | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    val_interval: int = 100,
    save_every: int = 100,
    resume: bool = False,
    val_every_nth: int = 5,
    progress: bool = True,
    stop_at: int | None = None,
    force: bool = False,
    init: str | Path | None = None,
    plateau: float | None = None,
    precision: str = "fp32",
    wait: float = 0.0,
    smooth: int = 1,
    cooldown: float = 0.0,
) -> dict[str, Any]:
    """Train and checkpoint; returns the history dict (also stored in the checkpoint's ``extra``).

    Intermediate state (weights, optimiser, schedule, history) goes only to ``out.resume.pt``;
    ``out`` and its ``.sha256`` are written once, when all ``steps`` are done, so an interrupted run
    never leaves a partly trained model at the final path. ``stop_at`` ends this call early at that
    step of a ``steps``-long schedule; ``resume=True`` later continues exactly where it stopped.
    An existing ``out`` is never replaced unless ``force``.

    ``init``: warm start from the weights of an advmri checkpoint (sha256-verified); its learning curve
    is kept and step numbers continue from its final step, so ``steps`` counts the *total* (for
    example init at 700 and ``steps=4000`` trains up to 3300 more). ``plateau``: train at a constant
    learning rate and stop at the first validation step ``s`` (with ``s/2`` validated in this run or
    after ``init``) where ``val(s) - val(s/2) < plateau``: the gain over the last doubling of steps;
    ``steps`` is then the maximum. ``precision="bf16"``: the convolution blocks run under bfloat16
    autocast (:meth:`Reconstructor.set_precision`); weights, optimiser and validation stay float32.
    ``smooth``: the plateau test compares the mean of the last ``smooth`` validations ending at ``s`` with the
    mean of those ending at ``s/2`` (a constant learning rate leaves the curve noisy). ``cooldown``: once
    plateaued at ``s``, the learning rate decays linearly to 0 over ``cooldown * s`` more steps (a
    warmup-stable-decay schedule) before the checkpoint is written; the run still ends at ``steps``.
    """
    _check_args(model_kind, steps, wait, lr, val_interval, save_every, batch, stop_at, plateau)
    check_choice("config", config, sorted(CONFIGS[model_kind]))  # before any data is read
    check_range("smooth", smooth, lo=1, integer=True)
    check_range("cooldown", cooldown, lo=0.0, hi=1.0)
    batch = batch or (1 if model_kind == "varnet" else 4)  # fastMRI's defaults: 1 slice (VarNet), 4 (U-Net)
    job = _Job(model_kind, config, data, project_path(out), init, precision, device, resume, force, progress)
    sch = _Schedule(steps, batch, lr, seed, plateau, stop_at, val_interval, save_every, val_every_nth, smooth, cooldown)
    # one trainer per checkpoint: a second one with the same out (and so the same resume file) stops at once
    with exclusive(
        job.out,
        "training (python -m advmri.models.train)",
        wait=wait,
        hint="wait for it (--wait SECONDS), or train into another --out",
    ):
        return _train(job, sch)


def _check_args(
    model_kind: str,
    steps: int,
    wait: float,
    lr: float,
    val_interval: int,
    save_every: int,
    batch: int | None,
    stop_at: int | None,
    plateau: float | None,
) -> None:
    """Refuse invalid :func:`train` parameters (one line naming the first bad one)."""
    check_choice("model", model_kind, ("varnet", "unet"))
    check_range("steps", steps, lo=1, integer=True)
    check_range("wait", wait, lo=0.0)  # seconds for another trainer of the same out (0: stop at once)
    check_range("lr", lr, lo=0.0, lo_open=True)
    check_range("val_interval", val_interval, lo=1, integer=True)
    check_range("save_every", save_every, lo=1, integer=True)
    if batch is not None:
        check_range("batch", batch, lo=1, integer=True)
    if stop_at is not None:
        check_range("stop_at", stop_at, lo=1, hi=steps, integer=True)
    if plateau is not None:
        check_range("plateau", plateau, lo=0.0, lo_open=True)


@dataclass(frozen=True)
class _Job:
    """What :func:`train` trains and where: the model, the data, the checkpoint ``out`` and how to treat it."""

    model_kind: str
    config: str
    data: str | Path
    out: Path
    init: str | Path | None
    precision: str
    device: str
    resume: bool
    force: bool
    progress: bool

    @property
    def name(self) -> str:
        """``kind/config``, as the resume file records the model."""
        return f"{self.model_kind}/{self.config}"


@dataclass(frozen=True)
class _Schedule:
    """How :func:`train` trains: steps, batch size, learning rate and seed, when to stop, validate and save, and
    which volumes validate."""

    steps: int
    batch: int
    lr: float
    seed: int
    plateau: float | None
    stop_at: int | None
    val_interval: int
    save_every: int
    val_every_nth: int
    smooth: int = 1
    cooldown: float = 0.0

    def cooldown_end(self, hist: dict[str, Any]) -> int | None:
        """The last step of the cooldown once the run has plateaued (``hist["plateau_step"]``), else None."""
        if "plateau_step" not in hist:
            return None
        s = int(hist["plateau_step"])
        return min(self.steps, s + max(1, round(self.cooldown * s)))

    def lr_at(self, step: int, hist: dict[str, Any]) -> float:
        """The learning rate of ``step`` in plateau mode: constant, then linear to 0 over the cooldown."""
        end = self.cooldown_end(hist)
        if end is None or step < int(hist["plateau_step"]):
            return self.lr
        s = int(hist["plateau_step"])
        return self.lr * max(0.0, (end - step) / max(1, end - s))


def _check_paths(out: Path, resume_file: Path, resume: bool, force: bool) -> None:
    """Refuse a ``resume`` without a resume file and an existing ``out`` without ``force`` (or ``resume``)."""
    if resume and not resume_file.is_file():
        raise UserError(
            f"{resume_file}: nothing to resume (no resume file); train without --resume"
            + (f", and --force to replace {out}" if out.exists() else "")
        )
    if out.exists() and not resume and not force:
        raise FileExistsError(
            f"{out}: checkpoint exists; pass --force to train a new one over it "
            "(or --resume to continue an interrupted run)"
        )
    check_writable(resume_file, "resume file")


def _warm_start(
    model: Reconstructor, init: str | Path | None, resume: bool, model_kind: str, config: str, steps: int
) -> tuple[dict[str, Any], int, dict[str, Any] | None]:
    """Load ``init``'s weights into ``model`` (unless ``resume``: the resume file has them). Returns the history
    to continue (``init``'s learning curve, else empty), the first step and the ``init`` record of the meta."""
    hist: dict[str, Any] = dict(step=[], loss=[], val_step=[], val_ssim=[], seconds=0.0)
    start = 0
    init_info: dict[str, Any] | None = None
    if init is not None and not resume:
        src, extra = load_checkpoint(init)
        if (src.kind, src.config) != (model_kind, config):
            raise UserError(f"{init}: a {src.kind}/{src.config} checkpoint, not {model_kind}/{config}")
        model.net.load_state_dict(src.net.state_dict())
        h0 = extra.get("history") or {}
        start = int(extra.get("step", len(h0.get("step", []))))
        if start >= steps:
            raise ParameterError(f"steps: {steps} is not beyond the {start} steps of {init}")
        hist = dict(
            step=list(h0.get("step", [])),
            loss=list(h0.get("loss", [])),
            val_step=list(h0.get("val_step", [])),
            val_ssim=list(h0.get("val_ssim", [])),
            seconds=float(h0.get("seconds", 0.0)),
        )
        init_info = dict(path=str(init), sha256=src.sha256, step=start)
    elif init is not None:
        init_info = dict(path=str(init))
    return hist, start, init_info


def _load_resume(
    resume_file: Path, model: Reconstructor, opt: torch.optim.Optimizer, sched: LRScheduler, steps: int, name: str
) -> tuple[dict[str, Any], int, int]:
    """Restore weights, optimiser and schedule from ``resume_file`` (of the model ``name`` = ``kind/config``
    with ``steps`` steps). Returns the history, the step to continue from and the run's first step."""
    try:
        st = torch.load(resume_file, map_location="cpu", weights_only=True)
        if st.get("steps", steps) != steps or st.get("model") not in (None, name):
            raise UserError(
                f"{resume_file}: a resume file of {st.get('model')} with {st.get('steps')} steps, "
                f"not {name} with {steps}"
            )
        model.net.load_state_dict(st["model_state"])
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{resume_file}: not a usable resume file ({e.__class__.__name__}: {e})") from e
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    return st["history"], int(st["step"]), int(st.get("init_step", 0))


def _plateaued(hist: dict[str, Any], plateau: float | None, init_step: int, smooth: int = 1) -> bool:
    """Whether the last validation step ``s`` gained less than ``plateau`` over ``s/2`` (validated after
    ``init_step``), each side the mean of the ``smooth`` validations ending there; each such gain is appended
    to ``hist["doubling_gain"]`` as ``[s, gain]``."""
    if plateau is None or not hist["val_step"]:
        return False
    steps, vals = hist["val_step"], hist["val_ssim"]
    s = steps[-1]
    if s % 2 or s // 2 < max(init_step, 1) or s // 2 not in steps:
        return False
    half = steps.index(s // 2)
    if half + 1 < smooth or half - smooth + 1 < 0 or steps[half - smooth + 1] < init_step:
        return False
    gain = float(np.mean(vals[-smooth:]) - np.mean(vals[half - smooth + 1 : half + 1]))
    hist.setdefault("doubling_gain", []).append([s, gain])
    return gain < plateau


def _optimise(
    model: Reconstructor,
    model_kind: str,
    tr: SliceCache,
    func: MaskFunc,
    loss_ssim: SSIMLoss,
    opt: torch.optim.Optimizer,
    sched: LRScheduler,
    seed: int,
    step: int,
    batch: int,
    device: str | torch.device,
) -> torch.Tensor:
    """One optimisation step on a batch drawn from ``SeedSequence([seed, step])``; returns the loss."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, step]))
    idx = rng.integers(0, len(tr), batch).tolist()
    seeds = rng.integers(0, 2**31 - 1, batch).tolist()
    k, m, n, t, mx = tr.batch(idx, func, seeds, device)
    pred = model(k, m, n, tuple(t.shape[-2:]))
    if model_kind == "varnet":
        loss = loss_ssim(pred.unsqueeze(1), t.unsqueeze(1), data_range=mx)
    else:
        loss = torch.nn.functional.l1_loss(pred, t)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss


def _scheduler(opt: torch.optim.Optimizer, sch: _Schedule) -> LRScheduler:
    """Cosine annealing to 5% of ``lr`` over ``steps``; with ``plateau`` a constant learning rate."""
    if sch.plateau is None:
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=sch.steps, eta_min=sch.lr * 0.05)
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


def _meta(
    job: _Job, sch: _Schedule, train_files: list[str], val_files: list[str], init_info: dict[str, Any] | None
) -> dict[str, Any]:
    """The record of the run that goes into the checkpoint's ``extra`` (with the history)."""
    return dict(
        model=job.model_kind,
        config=job.config,
        data=str(job.data),
        steps=sch.steps,
        batch=sch.batch,
        lr=sch.lr,
        seed=sch.seed,
        train_files=train_files,
        val_files=val_files,
        precision=job.precision,
        schedule="cosine"
        if sch.plateau is None
        else f"constant, stop when val gain over the last doubling < {sch.plateau}"
        + (f" (means of {sch.smooth} validations)" if sch.smooth > 1 else "")
        + (f", then linear decay to 0 over {sch.cooldown:g} x the steps" if sch.cooldown else ""),
        init=init_info,
    )


def _train(job: _Job, sch: _Schedule) -> dict[str, Any]:
    """:func:`train` under its lock: load the volumes, build (warm-start, resume) the model, then :func:`_fit`."""
    torch.manual_seed(sch.seed)
    resume_file = Path(str(job.out) + ".resume.pt")
    _check_paths(job.out, resume_file, job.resume, job.force)
    train_files, val_files = split_files(job.data, sch.val_every_nth)
    if not train_files:
        raise UserError(
            f"{h5_folder(job.data)}: no training volumes (.h5 files) there; make them with `advmri data --set "
            "train-large` or pass --data FOLDER"
        )
    tr = SliceCache(job.data, train_files)
    va = SliceCache(job.data, val_files) if val_files else None
    model = build(job.model_kind, job.config)
    hist, start, init_info = _warm_start(model, job.init, job.resume, job.model_kind, job.config, sch.steps)
    init_step = start
    model = model.to(job.device).set_precision(job.precision)
    opt = torch.optim.Adam(model.parameters(), lr=sch.lr)
    sched = _scheduler(opt, sch)
    if job.resume:
        hist, start, init_step = _load_resume(resume_file, model, opt, sched, sch.steps, job.name)
    meta = _meta(job, sch, train_files, val_files, init_info)
    run = _Session(job, sch, model, opt, sched, hist, meta, resume_file, init_step)
    return _fit(run, tr, va, start)


@dataclass
class _Session:
    """A training run in progress: the model, its optimiser and schedule, the history (extended in place), the
    ``meta`` for the checkpoint, and ``t0``, the clock reading the history's ``seconds`` count from."""

    job: _Job
    sch: _Schedule
    model: Reconstructor
    opt: torch.optim.Optimizer
    sched: LRScheduler
    hist: dict[str, Any]
    meta: dict[str, Any]
    resume_file: Path
    init_step: int
    t0: float = 0.0

    def save(self, step: int, done: bool = False) -> None:
        """Write the resume file at ``step``; once complete (``done``: plateaued, or the last step) also ``out``."""
        self.hist["seconds"] = time.perf_counter() - self.t0
        state = dict(
            model_state=self.model.net.state_dict(),
            optimizer=self.opt.state_dict(),
            scheduler=self.sched.state_dict(),
            history=self.hist,
            step=step,
            steps=self.sch.steps,
            model=self.job.name,
            init_step=self.init_step,
        )
        with atomic_path(self.resume_file) as tmp:
            torch.save(state, tmp)
        if done or step == self.sch.steps:  # complete: only now does the final path change
            self.model.set_precision("fp32")
            extra = dict(self.meta, history=self.hist, step=step, plateau_reached=done)
            save_checkpoint(self.job.out, self.model, extra=extra)
            self.model.set_precision(self.job.precision)


def _fit(run: _Session, tr: SliceCache, va: SliceCache | None, start: int) -> dict[str, Any]:
    """The training loop of :func:`_train` from step ``start`` (``run.hist`` is extended in place): validate every
    ``val_interval`` steps, save the resume file every ``save_every`` steps and ``out`` once all ``steps`` are
    done or the validation SSIM plateaued (and its cooldown ended; ``run.meta`` goes into its ``extra``).
    Returns the history."""
    job, sch, hist = run.job, run.sch, run.hist
    func = mask_func("random", (4, 8), (0.08, 0.04))
    loss_ssim = SSIMLoss().to(job.device)
    run.model.train()
    run.t0 = time.perf_counter() - hist["seconds"]
    bar = tqdm(
        range(start, sch.steps), desc=f"train {job.name}", disable=not job.progress, initial=start, total=sch.steps
    )
    for step in bar:
        if sch.plateau is not None:
            for group in run.opt.param_groups:
                group["lr"] = sch.lr_at(step, hist)
        loss = _optimise(
            run.model, job.model_kind, tr, func, loss_ssim, run.opt, run.sched, sch.seed, step, sch.batch, job.device
        )
        hist["step"].append(step)
        hist["loss"].append(float(loss.detach()))
        bar.set_postfix(loss=f"{hist['loss'][-1]:.4f}")
        if _after_step(run, va, step + 1, bar):
            break
    if start >= sch.steps and job.init is None:
        run.save(sch.steps)
    return hist


def _after_step(run: _Session, va: SliceCache | None, done: int, bar: Any) -> bool:
    """Validate, test for the plateau (or the end of its cooldown) and save after ``done`` steps; True: stop."""
    job, sch, hist = run.job, run.sch, run.hist
    last = done == sch.steps
    end = sch.cooldown_end(hist)
    if va is not None and (done % sch.val_interval == 0 or last or done == end):
        hist["val_step"].append(done)
        hist["val_ssim"].append(validate(run.model, va, job.device))
        bar.write(f"step {done}: val SSIM {hist['val_ssim'][-1]:.4f}")
        if end is None and _plateaued(hist, sch.plateau, run.init_step, sch.smooth):
            if not sch.cooldown:
                run.save(done, done=True)
                return True
            hist["plateau_step"] = done
            bar.write(f"step {done}: plateau; cooling down to step {sch.cooldown_end(hist)}")
        elif end is not None and done == end:
            run.save(done, done=True)
            return True
    if done % sch.save_every == 0 or last or done == sch.stop_at:
        run.save(done)
    return done == sch.stop_at


def _parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    ap = argparse.ArgumentParser(prog=prog("advmri.models.train"), description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["varnet", "unet"], required=True)
    ap.add_argument("--config", default="small")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--val-interval", type=int, default=100)
    ap.add_argument("--resume", action="store_true", help="continue from OUT.resume.pt")
    ap.add_argument(
        "--init", default=None, help="warm start from this checkpoint (its steps and learning curve continue)"
    )
    ap.add_argument(
        "--plateau",
        type=float,
        default=None,
        help="constant lr; stop when val SSIM gains less than this over the last doubling of steps",
    )
    ap.add_argument("--smooth", type=int, default=1, help="plateau test on means of this many validations")
    ap.add_argument(
        "--cooldown", type=float, default=0.0, help="after the plateau at s, decay lr to 0 over this x s steps"
    )
    ap.add_argument("--save-every", type=int, default=100, help="write the resume file every this many steps")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--force", action="store_true", help="replace an existing OUT when training completes")
    ap.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="if another training writes OUT, wait up to this long for it (default: stop at once)",
    )
    ap.add_argument("--stop-at", type=int, default=None, help="end this call at that step (--resume continues)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar (validations are still printed)")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    return ap


@cli
def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    h = train(
        a.model,
        a.config,
        a.data,
        a.out,
        a.steps,
        a.batch,
        a.lr,
        a.seed,
        a.device,
        a.val_interval,
        resume=a.resume,
        force=a.force,
        init=a.init,
        plateau=a.plateau,
        precision=a.precision,
        wait=a.wait,
        smooth=a.smooth,
        cooldown=a.cooldown,
        save_every=a.save_every,
        progress=not a.quiet,
        stop_at=a.stop_at,
    )
    print(
        f"trained {a.model}/{a.config}: {h['seconds']:.0f} s, final loss {np.mean(h['loss'][-20:]):.4f}, "
        f"val SSIM {h['val_ssim'][-1] if h['val_ssim'] else float('nan'):.4f} -> {a.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
