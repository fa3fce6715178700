"""Targeted adversarial k-space noise (projected gradient ascent) and its random baseline.

Threat model (Morshuis et al. 2022): additive complex noise ``z`` on the *acquired* k-space,
restricted to the acquired columns ``padding_left..padding_right`` and bounded per coil::

    ||z_i||_2 <= eps * ||k_i||_2     (k_i: fully sampled k-space of coil i)

The undersampling mask is applied *after* adding the noise, ``y = M (k + z)``, and the
attacker maximises the MSE between ``recon(y)`` and the clean fully sampled RSS target inside
the pathology box. PGA step (reference: 10 steps, step 0.5): per coil,
``z_i <- P(z_i + alpha * r_i * g_i / ||g_i||)`` with ``r_i = eps ||k_i||`` and ``P`` the
projection onto the ball of radius ``r_i``; i.e. the step is ``alpha`` times the budget, along
the per-coil normalised gradient. Options: restarts from random points in the ball, momentum
(MI-FGSM style, on normalised gradients), SSIM or MSE+SSIM losses, whole-image loss.

The random control (:func:`control_noise`) is complex Gaussian noise matched to the adversarial ``z`` coil
by coil *after the mask*: on the sampled columns it has ``||M z_i||``, on the acquired columns the mask
discards ``||(1 - M) z_i||`` (zero for the PGA of ``update: ours``, whose gradient vanishes there). Both thus
deliver the same energy to the network and have the same total norm; each results row records both
perturbations' energy fraction on the sampled columns (``adv_sampled_fraction``, ``random_sampled_fraction``).
(Until issue 21 the control was drawn over every acquired column with ``z``'s total norms, so only about
1/acceleration of its energy reached the network.)

All functions are batched: item ``n`` of a batch has its own slice, box and eps.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from fastmri.data.subsample import MaskFunc
from torch.profiler import record_function

from advmri.attacks.apgd import apgd, coil_norms, input_grad, project, real_view
from advmri.attacks.common import TARGETS, TargetBatch, box_weights, objective, ssim_weights
from advmri.core.boxes import Box
from advmri.core.masks import sample_mask
from advmri.data.dataset import SliceSample
from advmri.models.networks import Reconstructor
from advmri.util.errors import ParameterError, check_choice, check_range
from advmri.util.schema import option

EPS_GRID = (0.0, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025)
LOSSES = ("mse", "ssim", "mse+ssim")
UPDATES = ("ours", "reference", "apgd")


@dataclass
class NoiseConfig:
    """Noise attack parameters. Defaults = the paper's reference settings."""

    eps: tuple[float, ...] = option(
        EPS_GRID, "per-coil budgets eps: ||z_i|| <= eps ||k_i|| (0 = clean)", lo=0.0, many=True
    )
    steps: int = option(10, "PGA steps", lo=1)
    step_size: float = option(0.5, "step per PGA iteration, as a fraction of the per-coil budget", lo=0.0)
    loss: str = option("mse", "attack objective on the box (or image) against the target", choices=LOSSES)
    region: str = option("box", "where the objective is measured", choices=("box", "image"))
    restarts: int = option(0, "extra random starts; the strongest (largest loss) is kept", lo=0)
    momentum: float = option(0.0, "MI-FGSM momentum on the normalised gradients (0: plain PGA)", lo=0.0, hi=1.0)
    random_draws: int = option(
        5, "draws of the random control (noise) / random angles (rotation) per target and setting", lo=0
    )
    seed: int = option(0, "seed of the random starts, mask draws and random controls", lo=0)
    update: str = option(
        "ours",
        "PGA update: ours | reference (the authors' update, reproduced; see reference_step) | apgd (Auto-PGD: "
        "step-size schedule with checkpoints, momentum, the best point kept; random starts)",
        choices=UPDATES,
    )
    target: str = option(
        "clean",
        "clean: away from the clean target | healthy: toward the lesion-free twin "
        "(erasure) | lesion: the twin toward the lesion (hallucination)",
        choices=TARGETS,
    )
    mask_draws: int = option(
        0, "0: the attacker knows the mask (paper); N: expectation over N random masks per step", lo=0
    )

    def __post_init__(self) -> None:
        self.eps = tuple(self.eps) if isinstance(self.eps, (list, tuple)) else self.eps
        if not isinstance(self.eps, tuple) or not self.eps:
            raise ParameterError(f"eps: must be a non-empty list of budgets, got {self.eps!r}")
        for e in self.eps:
            check_range("eps", e, lo=0.0)
        if len(set(self.eps)) != len(self.eps):
            raise ParameterError(f"eps: repeated values in {list(self.eps)}")
        check_range("steps", self.steps, lo=1, integer=True)
        check_range("step_size", self.step_size, lo=0.0, lo_open=True)
        check_choice("loss", self.loss, LOSSES)
        check_choice("region", self.region, ("box", "image"))
        check_range("restarts", self.restarts, lo=0, integer=True)
        check_range("momentum", self.momentum, lo=0.0, hi=1.0)
        check_range("random_draws", self.random_draws, lo=0, integer=True)
        check_range("seed", self.seed, lo=0, integer=True)
        check_choice("update", self.update, UPDATES)
        check_choice("target", self.target, TARGETS)
        check_range("mask_draws", self.mask_draws, lo=0, integer=True)
        if self.update == "apgd" and self.momentum:
            raise ParameterError(f"momentum: apgd has its own momentum (0.75); got momentum={self.momentum}")
        if self.update == "reference" and (self.restarts or self.momentum or self.mask_draws):
            raise ParameterError(
                "update: the reference update has no restarts, momentum or mask_draws "
                f"(got restarts={self.restarts}, momentum={self.momentum}, mask_draws={self.mask_draws})"
            )

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (``eps`` a tuple)."""
        return asdict(self)


def budget(kspace: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-coil radius ``eps * ||k_i||`` ``(B, C)`` for fully sampled ``kspace`` and ``eps`` ``(B,)``."""
    return eps[:, None] * coil_norms(kspace)


def random_in_ball(
    shape: Sequence[int],
    acquired: torch.Tensor,
    radius: torch.Tensor,
    generator: torch.Generator,
    on_sphere: bool = True,
) -> torch.Tensor:
    """Complex Gaussian noise on the acquired columns scaled to per-coil norm ``radius`` (or inside it)."""
    dev = acquired.device
    g = torch.randn(*shape, 2, generator=generator).to(dev)  # (B, C, R, Cols, 2) real
    z = torch.view_as_complex(g) * acquired[:, None, None, :]  # (B, C, R, Cols) complex
    n = coil_norms(z).clamp_min(1e-30)
    r = radius if on_sphere else radius * torch.rand(radius.shape, generator=generator).to(dev)
    return z * (r / n)[..., None, None]


def recon_with_noise(model: Reconstructor, tb: TargetBatch, z: torch.Tensor) -> torch.Tensor:
    """``recon(M (k + z))`` for a batch; ``z`` ``(B, C, R, Cols)`` complex -> ``(B, H, W)``."""
    y = (tb.kspace + z) * tb.mask[:, None, None, :].to(tb.kspace.real.dtype)  # (B, C, R, Cols) complex
    return model(y, tb.mask, tb.num_low, tb.crop)


def mask_draw_batch(tb: TargetBatch, func: MaskFunc, draws: int, key: str) -> TargetBatch:
    """``tb`` with each item repeated ``draws`` times (item-major), each copy with its own random mask of
    ``func`` (same type, acceleration and centre fraction as the true one) on the item's acquired columns,
    seeded per (file, slice, ``key``, draw): the same masks however the items are batched."""
    rep = tb.repeat(draws)
    masks, lows = [], []
    for i, s in enumerate(rep.samples):
        cols = rep.acquired[i].nonzero().flatten()
        seed = zlib.crc32(f"{s.fname}:{s.slice_idx}:{key}:{i % draws}".encode()) & 0x7FFFFFFF
        m, nl = sample_mask(func, (rep.kspace.shape[-2], rep.kspace.shape[-1]), (int(cols[0]), int(cols[-1]) + 1), seed)
        masks.append(m)
        lows.append(nl)
    rep.mask = torch.stack(masks).to(tb.mask.device)  # (B * draws, cols) bool
    rep.num_low = torch.tensor(lows, dtype=tb.num_low.dtype, device=tb.num_low.device)
    return rep


def expected_objective(
    model: Reconstructor,
    tb: TargetBatch,
    z: torch.Tensor,
    wb: torch.Tensor,
    ws: torch.Tensor | None,
    cfg: NoiseConfig,
    mask_func: MaskFunc | None,
    key: str,
) -> torch.Tensor:
    """The objective ``(B,)`` of noise ``z``: on the true mask, or with ``cfg.mask_draws`` its mean over that
    many random masks (expectation over transformations: the attacker does not know the mask)."""
    if not cfg.mask_draws:
        return objective(recon_with_noise(model, tb, z), tb, wb, ws, cfg.loss, cfg.target)
    if mask_func is None:
        raise ValueError("mask_draws needs the run's mask function (mask_func)")
    n = cfg.mask_draws
    rep = mask_draw_batch(tb, mask_func, n, key)

    def rw(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(n, dim=0)  # (B * n, ...), item-major as ``rep``

    obj = objective(
        recon_with_noise(model, rep, rw(z)), rep, rw(wb), None if ws is None else rw(ws), cfg.loss, cfg.target
    )
    return obj.view(len(tb), n).mean(1)


def adversarial_noise(
    model: Reconstructor,
    tb: TargetBatch,
    eps: torch.Tensor,
    cfg: NoiseConfig,
    on_step: Callable[[int, int], None] | None = None,
    mask_func: MaskFunc | None = None,
) -> torch.Tensor:
    """PGA noise for every item of ``tb`` (item ``n`` with budget ``eps[n]``). Returns ``z`` complex.

    ``on_step(done, total)`` is called after every PGA step (progress bars of interactive use).
    ``mask_func`` (needed with ``cfg.mask_draws``): the run's mask function, from which the attacker draws
    the masks it averages over; the returned noise is then scored by the caller on the true mask.

    The model must be frozen (:meth:`Reconstructor.freeze`): gradients flow to ``z`` only.
    Items with ``eps == 0`` get ``z = 0`` without entering the PGA (their budget is zero).
    """
    zero = eps == 0  # (B,) bool
    if bool(zero.any()):
        z = torch.zeros_like(tb.kspace)  # (B, C, R, Cols) complex
        if not bool(zero.all()):
            live = (~zero).nonzero().flatten()
            z[live] = adversarial_noise(model, tb.select(live.tolist()), eps[live], cfg, on_step, mask_func)
        return z
    radius = budget(tb.kspace, eps)  # (B, C)
    acq = tb.acquired[:, None, None, :].to(tb.kspace.real.dtype)  # (B, 1, 1, Cols) real
    wb, ws = _loss_weights(tb, cfg)
    if cfg.update == "reference":
        return _reference_pga(model, tb, eps, cfg, radius, acq, wb, ws, on_step)
    if cfg.update == "apgd":
        return _apgd_noise(model, tb, cfg, radius, acq, wb, ws, mask_func, on_step)
    gen = torch.Generator().manual_seed(cfg.seed)
    best_z, best_loss = torch.zeros_like(tb.kspace), torch.full((len(tb),), -float("inf"), device=eps.device)
    for start in range(cfg.restarts + 1):
        z = (
            torch.zeros_like(tb.kspace)
            if start == 0
            else random_in_ball(tb.kspace.shape, tb.acquired, radius, gen, on_sphere=False)
        )
        z = _pga_start(model, tb, z, radius, acq, wb, ws, cfg, mask_func, start, on_step)
        if cfg.restarts == 0:
            return z  # one start: nothing to compare, skip the extra forward pass
        with torch.inference_mode():  # restarts compared as the attacker sees them (expected over masks)
            final = expected_objective(model, tb, z, wb, ws, cfg, mask_func, f"{cfg.seed}:{start}:final")
            better = final > best_loss
            best_z = torch.where(better[:, None, None, None], z, best_z)
            best_loss = torch.where(better, final, best_loss)
    return best_z.detach()


def _apgd_noise(
    model: Reconstructor,
    tb: TargetBatch,
    cfg: NoiseConfig,
    radius: torch.Tensor,
    acq: torch.Tensor,
    wb: torch.Tensor,
    ws: torch.Tensor | None,
    mask_func: MaskFunc | None,
    on_step: Callable[[int, int], None] | None,
) -> torch.Tensor:
    """Auto-PGD (:mod:`advmri.attacks.apgd`) from ``restarts + 1`` random starts at half the budget (seeded by
    ``cfg.seed``); each start's best point is compared by its loss and the strongest kept per item."""
    gen = torch.Generator().manual_seed(cfg.seed)
    best_z, best_loss = torch.zeros_like(tb.kspace), torch.full((len(tb),), -float("inf"), device=radius.device)
    total = (cfg.restarts + 1) * cfg.steps
    for start in range(cfg.restarts + 1):
        calls = [0]  # with mask_draws: fresh masks at every evaluation (expectation over transformations)

        def loss_fn(z: torch.Tensor, start: int = start, calls: list[int] = calls) -> torch.Tensor:
            calls[0] += 1
            return expected_objective(model, tb, z, wb, ws, cfg, mask_func, f"{cfg.seed}:apgd{start}:{calls[0]}")

        z0 = random_in_ball(tb.kspace.shape, tb.acquired, radius / 2, gen, on_sphere=True)
        step = None if on_step is None else (lambda k, s=start: on_step(s * cfg.steps + k + 1, total))
        z, loss = apgd(loss_fn, z0, radius, acq, cfg.steps, step)
        better = loss > best_loss
        best_z = torch.where(better[:, None, None, None], z, best_z)
        best_loss = torch.where(better, loss, best_loss)
    return best_z


def _loss_weights(tb: TargetBatch, cfg: NoiseConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The objective's weights: box ``(B, H, W)``, SSIM map ``(B, H-6, W-6)`` or None; ones for the image."""
    wb = box_weights(tb.boxes, tb.crop, tb.target.device)
    if cfg.region == "image":
        wb = torch.ones_like(wb)
    ws = ssim_weights(tb.boxes, tb.crop, tb.target.device) if cfg.loss != "mse" else None
    if cfg.region == "image" and ws is not None:
        ws = torch.ones_like(ws)
    return wb, ws


def _pga_start(
    model: Reconstructor,
    tb: TargetBatch,
    z: torch.Tensor,
    radius: torch.Tensor,
    acq: torch.Tensor,
    wb: torch.Tensor,
    ws: torch.Tensor | None,
    cfg: NoiseConfig,
    mask_func: MaskFunc | None,
    start: int,
    on_step: Callable[[int, int], None] | None,
) -> torch.Tensor:
    """``cfg.steps`` PGA steps (update ``ours``) of restart ``start`` from ``z`` ``(B, C, R, Cols)`` complex."""
    vel = torch.zeros_like(z)  # (B, C, R, Cols) complex, momentum
    for it in range(cfg.steps):
        z = z.detach().requires_grad_(True)
        with record_function("noise.forward"):
            loss = expected_objective(model, tb, z, wb, ws, cfg, mask_func, f"{cfg.seed}:{start}:{it}")
        with record_function("noise.backward"):
            g = input_grad(loss, z)
        with record_function("noise.step+project"):
            g = g * acq  # torch's complex grad of a real loss = dL/dRe + i dL/dIm (ascent direction)
            g = g / coil_norms(g).clamp_min(1e-30)[..., None, None]
            vel = cfg.momentum * vel + g if cfg.momentum else g
            step = vel / coil_norms(vel).clamp_min(1e-30)[..., None, None]
            z = project(z.detach() + cfg.step_size * radius[..., None, None] * step, radius)
        if on_step is not None:
            on_step(start * cfg.steps + it + 1, (cfg.restarts + 1) * cfg.steps)
    return z.detach()


def _item_norms(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each item over all coils ``(B,)``."""
    return cast(torch.Tensor, torch.linalg.vector_norm(real_view(x).flatten(1), dim=1))


def reference_step(
    z: torch.Tensor, g: torch.Tensor, radius: torch.Tensor, acq: torch.Tensor, step_size: float
) -> torch.Tensor:
    """The authors' update (AdvRec ``KSpaceNoise.optimize_parameters``), per item: normalise the noise and
    the gradient each by its *global* norm over all coils, add them (``step_size`` on the gradient), zero
    the unacquired columns, then per coil divide by the coil's norm *only where it exceeds 1* and scale by
    the coil's budget ``radius``. As the global normalisation leaves each coil a norm well below 1, the
    result sits inside the budget: about ``1/sqrt(coils)``-ish of it, not on its boundary."""
    p = (
        z / _item_norms(z).clamp_min(1e-30)[:, None, None, None]
        + step_size * g / _item_norms(g).clamp_min(1e-30)[:, None, None, None]
    )
    p = p * acq
    n = coil_norms(p)
    return p / torch.where(n > 1, n, torch.ones_like(n))[..., None, None] * radius[..., None, None]


def _reference_pga(
    model: Reconstructor,
    tb: TargetBatch,
    eps: torch.Tensor,
    cfg: NoiseConfig,
    radius: torch.Tensor,
    acq: torch.Tensor,
    wb: torch.Tensor,
    ws: torch.Tensor | None,
    on_step: Callable[[int, int], None] | None,
) -> torch.Tensor:
    """Random start on the budget sphere (per-item seed), then ``steps`` reference updates."""
    z = random_items(tb, radius, eps, cfg.seed, draw=-1)  # (B, C, R, Cols) complex, on the budget sphere
    for it in range(cfg.steps):
        z = z.detach().requires_grad_(True)
        loss = objective(recon_with_noise(model, tb, z), tb, wb, ws, cfg.loss, cfg.target)
        g = input_grad(loss, z)
        z = reference_step(z.detach(), g, radius, acq, cfg.step_size)
        if on_step is not None:
            on_step(it + 1, cfg.steps)
    return z.detach()


def budget_fraction(z: torch.Tensor, kspace: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Attained fraction of the per-coil budget, mean over coils ``(B,)`` (0 where eps = 0)."""
    r = budget(kspace, eps)
    return torch.where(r > 0, coil_norms(z) / r.clamp_min(1e-30), torch.zeros_like(r)).mean(1)


def adversarial_noise_looped(
    model: Reconstructor, tb: TargetBatch, eps: torch.Tensor, cfg: NoiseConfig
) -> torch.Tensor:
    """Straightforward reference: one (box, eps) item per PGA (for benchmarks/tests)."""
    return torch.cat([adversarial_noise(model, tb.select([i]), eps[i : i + 1], cfg) for i in range(len(tb))])


def sampled_columns(tb: TargetBatch) -> torch.Tensor:
    """``(B, cols)`` bool: the acquired columns the undersampling mask keeps (the only ones the network sees)."""
    return tb.mask & tb.acquired


def split_norms(z: torch.Tensor, tb: TargetBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coil norms ``(B, C)`` of ``z`` ``(B, C, R, Cols)`` complex on the sampled columns (what reaches the
    network, ``||M z_i||``) and on the acquired columns the mask discards."""
    s = sampled_columns(tb)[:, None, None, :]
    u = (tb.acquired & ~tb.mask)[:, None, None, :]
    return coil_norms(z * s), coil_norms(z * u)


def sampled_fraction(z: torch.Tensor, tb: TargetBatch) -> torch.Tensor:
    """Fraction of ``z``'s energy on the sampled columns, ``||M z_i||^2 / ||z_i||^2`` averaged over coils ``(B,)``
    (NaN for an item without energy, e.g. eps = 0)."""
    ns, nu = split_norms(z, tb)
    tot = ns.pow(2) + nu.pow(2)
    frac = torch.where(tot > 0, ns.pow(2) / tot.clamp_min(1e-30), torch.full_like(tot, float("nan")))
    return frac.mean(1)


def _scaled(g: torch.Tensor, cols: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """``g`` ``(B, C, R, Cols)`` restricted to ``cols`` ``(B, Cols)``, each coil scaled to ``norms`` ``(B, C)``."""
    x = g * cols[:, None, None, :]
    return x * (norms / coil_norms(x).clamp_min(1e-30))[..., None, None]


def control_noise(g: torch.Tensor, tb: TargetBatch, sampled: torch.Tensor, unsampled: torch.Tensor) -> torch.Tensor:
    """The random control from complex Gaussian ``g`` ``(B, C, R, Cols)``: on the sampled columns with per-coil norms
    ``sampled`` ``(B, C)``, on the acquired columns the mask discards with norms ``unsampled``. Matched to an
    adversarial ``z`` by :func:`split_norms`, it delivers exactly ``z``'s energy to the network, coil by coil, and
    has ``z``'s total norm and sampled fraction (the PGA of ``update: ours`` puts none on discarded columns)."""
    return _scaled(g, sampled_columns(tb), sampled) + _scaled(g, tb.acquired & ~tb.mask, unsampled)


def random_noise_like(z: torch.Tensor, tb: TargetBatch, generator: torch.Generator) -> torch.Tensor:
    """Random control of ``z`` (:func:`control_noise`, one generator for the batch)."""
    g = torch.view_as_complex(torch.randn(*z.shape, 2, generator=generator)).to(z.device)
    return control_noise(g, tb, *split_norms(z, tb))


def item_seed(seed: int, fname: str, slice_idx: int, box: tuple[int, ...], eps: float, draw: int) -> int:
    """A random draw's own seed, from what identifies it (not from its place in a batch or a shard)."""
    return zlib.crc32(f"{seed}:{fname}:{slice_idx}:{tuple(box)}:{float(eps):.8g}:{draw}".encode()) & 0x7FFFFFFF


def _box(s: SliceSample) -> Box:
    """The box of an attack target (every sample of a :class:`TargetBatch` has one)."""
    if s.box is None:
        raise ValueError(f"{s.fname} slice {s.slice_idx}: an attack target without a box")
    return s.box


def item_gaussians(tb: TargetBatch, eps: torch.Tensor, seed: int, draw: int) -> torch.Tensor:
    """Complex Gaussian ``(B, C, R, Cols)``, one generator per item (:func:`item_seed`): the same draw for a
    (box, eps, draw) however the items are batched, chunked or sharded."""
    shape = tb.kspace.shape[1:]
    return torch.cat(
        [
            torch.view_as_complex(
                torch.randn(
                    1,
                    *shape,
                    2,
                    generator=torch.Generator().manual_seed(
                        item_seed(seed, s.fname, s.slice_idx, _box(s).as_tuple(), float(eps[i]), draw)
                    ),
                )
            )
            for i, s in enumerate(tb.samples)
        ]
    ).to(tb.kspace.device)


def random_items(tb: TargetBatch, norms: torch.Tensor, eps: torch.Tensor, seed: int, draw: int) -> torch.Tensor:
    """Complex Gaussian noise on each item's acquired columns with per-coil norms ``norms`` ``(B, C)``, one generator
    per item (:func:`item_seed`; the reference update's random start)."""
    return torch.cat(
        [
            random_in_ball(
                tb.kspace[i : i + 1].shape,
                tb.acquired[i : i + 1],
                norms[i : i + 1],
                torch.Generator().manual_seed(
                    item_seed(seed, s.fname, s.slice_idx, _box(s).as_tuple(), float(eps[i]), draw)
                ),
            )
            for i, s in enumerate(tb.samples)
        ]
    )


def control_items(
    tb: TargetBatch, sampled: torch.Tensor, unsampled: torch.Tensor, eps: torch.Tensor, seed: int, draw: int
) -> torch.Tensor:
    """The random control (:func:`control_noise`) of per-coil norms ``sampled`` / ``unsampled`` ``(B, C)``, seeded
    per item."""
    return control_noise(item_gaussians(tb, eps, seed, draw), tb, sampled, unsampled)


def random_noise_items(z: torch.Tensor, tb: TargetBatch, eps: torch.Tensor, seed: int, draw: int) -> torch.Tensor:
    """The random control of ``z`` (:func:`control_noise`: ``z``'s per-coil energy on the sampled columns, and on the
    discarded ones), seeded per item."""
    return control_items(tb, *split_norms(z, tb), eps, seed, draw)
