"""Checks for gradient masking and the adaptive k-space noise attack that answers them (Carlini et al. 2019;
AutoAttack's ``checks.py``; Athalye et al. 2018), made for reconstruction.

:func:`diagnose` looks at a model the way a reviewer would before believing a robust number:

- **randomised output**: two forward passes on one input differ -> the attack averages the reconstruction over
  ``EOT_SAMPLES`` passes (expectation over transformation, :class:`EOT`);
- **input gradients**: the gradient of the box loss with respect to the k-space noise is missing (the output does
  not depend on the input in autograd, e.g. computed under ``torch.no_grad``), NaN, or zero for some box (a
  quantiser, a ``round``/``sign``/``floor`` step) -> the attack replaces such steps by the identity in the
  backward pass (BPDA, :func:`straight_through`), and adds a transfer attack from a differentiable surrogate
  (the zero-filled reconstruction) and the gradient-free random search (:mod:`advmri.attacks.search`).

:func:`adaptive_noise` runs those and keeps, per box, the strongest noise as the *model itself* scores it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from advmri.attacks.common import TargetBatch, objective
from advmri.attacks.noise import (
    NoiseConfig,
    _loss_weights,
    adversarial_noise,
    budget,
    random_in_ball,
    recon_with_noise,
)
from advmri.attacks.search import random_search
from advmri.models.networks import Reconstructor, zero_filled

__all__ = [
    "EOT",
    "EOT_SAMPLES",
    "Adaptive",
    "Diagnosis",
    "ThroughZeroFilled",
    "adaptive_noise",
    "diagnose",
    "straight_through",
]

EOT_SAMPLES = 8  # forward passes averaged per evaluation of a randomised model
SEARCH_ITERS = 100  # forward passes of the gradient-free attack
FD_STEP = 0.01  # the finite-difference step of the gradient check, as a fraction of the budget
FD_RATIO = (0.5, 2.0)  # measured / predicted loss change within which a gradient counts as consistent


@dataclass
class Diagnosis:
    """What :func:`diagnose` found. ``gradient``: ``ok``, ``zero`` (some box has an all-zero gradient), ``nan``,
    ``missing`` or ``inconsistent`` (a step along it does not change the loss as it predicts); ``bpda_gradient``:
    the same with non-differentiable steps replaced by the identity backward."""

    randomised: bool
    gradient: str
    bpda_gradient: str
    notes: list[str] = field(default_factory=list)

    @property
    def masked(self) -> bool:
        """Whether plain gradient attacks cannot be trusted on this model."""
        return self.randomised or self.gradient != "ok"

    def as_dict(self) -> dict[str, Any]:
        return dict(
            randomised=self.randomised,
            gradient=self.gradient,
            bpda_gradient=self.bpda_gradient,
            masked=self.masked,
            notes=list(self.notes),
        )


_STEPS = (
    torch.round,
    torch.floor,
    torch.ceil,
    torch.trunc,
    torch.sign,
    torch.Tensor.round,
    torch.Tensor.floor,
    torch.Tensor.ceil,
    torch.Tensor.trunc,
    torch.Tensor.sign,
    torch.Tensor.round_,
    torch.Tensor.floor_,
    torch.Tensor.ceil_,
    torch.Tensor.trunc_,
    torch.Tensor.sign_,
)


class _StraightThrough(TorchFunctionMode):
    """``round``, ``floor``, ``ceil``, ``trunc`` and ``sign`` (functions, methods and in-place) computed as usual
    in the forward pass and as the identity in the backward pass: ``x + (f(x) - x).detach()``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _STEPS and args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
            x = args[0]
            name = func.__name__.rstrip("_")
            stepped = getattr(torch, name)(x.detach(), *args[1:], **kwargs)
            out = x + (stepped - x).detach()
            if func.__name__.endswith("_"):  # in place: keep the caller's tensor in the graph
                with torch.no_grad():
                    x.copy_(stepped)
                return out
            return out
        return func(*args, **kwargs)


@contextlib.contextmanager
def straight_through() -> Iterator[None]:
    """BPDA (Athalye et al. 2018): inside, the non-differentiable steps of any model get an identity backward."""
    with _StraightThrough():
        yield


class EOT(nn.Module):
    """A randomised :class:`Reconstructor` averaged over ``samples`` forward passes (same call)."""

    def __init__(self, model: Reconstructor, samples: int = EOT_SAMPLES) -> None:
        super().__init__()
        self.model, self.samples = model, samples

    def forward(self, *args: Any) -> torch.Tensor:
        return torch.stack([self.model(*args) for _ in range(self.samples)]).mean(0)


class ZeroFilled(nn.Module):
    """The differentiable surrogate of transfer attacks: fastMRI's zero-filled RSS reconstruction."""

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low: Any, crop: Any) -> torch.Tensor:
        return zero_filled(masked_kspace, crop)


def _loss_fn(
    model: Callable[..., torch.Tensor], tb: TargetBatch, cfg: NoiseConfig
) -> Callable[[torch.Tensor], torch.Tensor]:
    wb, ws = _loss_weights(tb, cfg)
    return lambda z: objective(recon_with_noise(model, tb, z), tb, wb, ws, cfg.loss, cfg.target)  # type: ignore


def _gradient(model: Callable[..., torch.Tensor], tb: TargetBatch, eps: torch.Tensor, cfg: NoiseConfig) -> str:
    gen = torch.Generator().manual_seed(cfg.seed)
    z = random_in_ball(tb.kspace.shape, tb.acquired, budget(tb.kspace, eps) / 2, gen).requires_grad_(True)
    try:
        loss = _loss_fn(model, tb, cfg)(z)
        if not loss.requires_grad:
            return "missing"
        (g,) = torch.autograd.grad(loss.sum(), z, allow_unused=True)
    except RuntimeError as e:
        if "does not require grad" in str(e) or "does not have a grad_fn" in str(e):
            return "missing"
        raise
    if g is None:
        return "missing"
    if not bool(torch.isfinite(torch.view_as_real(g)).all()):
        return "nan"
    per_item = torch.linalg.vector_norm(torch.view_as_real(g).flatten(1), dim=1)
    if bool((per_item == 0).any()):
        return "zero"
    return "ok" if _consistent(model, tb, cfg, z.detach(), loss.detach(), g, per_item) else "inconsistent"


def _consistent(model, tb, cfg, z, loss, g, gnorm) -> bool:  # type: ignore[no-untyped-def]
    """Does the gradient predict the loss? A step of ``FD_STEP`` of the budget along ``g`` should change the loss by
    about ``h ||g||``; a quantiser or a detached path (whose gradient only sees the input normalisation) does not."""
    radius = torch.linalg.vector_norm(torch.view_as_real(z).flatten(1), dim=1) * 2  # the start is at half the budget
    h = FD_STEP * radius  # (B,)
    d = g / gnorm[:, None, None, None]
    with torch.no_grad():
        after = _loss_fn(model, tb, cfg)(z + h[:, None, None, None] * d)
    ratio = (after - loss) / (h * gnorm)
    return bool(((ratio > FD_RATIO[0]) & (ratio < FD_RATIO[1])).all())


def diagnose(model: Reconstructor, tb: TargetBatch, eps: torch.Tensor, cfg: NoiseConfig) -> Diagnosis:
    """Look for randomised outputs and for missing, NaN, zero or inconsistent input gradients (module docstring)."""
    with torch.no_grad():
        y = (tb.kspace * tb.mask[:, None, None, :]).to(tb.kspace.dtype)
        a, b = model(y, tb.mask, tb.num_low, tb.crop), model(y, tb.mask, tb.num_low, tb.crop)
    randomised = not torch.equal(a, b)
    probe = EOT(model, 2) if randomised else model
    grad = _gradient(probe, tb, eps, cfg)
    with straight_through():
        bpda = _gradient(probe, tb, eps, cfg) if grad != "ok" else grad
    notes = []
    if randomised:
        notes.append(f"two forward passes on one input differ: the attack averages {EOT_SAMPLES} passes (EOT)")
    if grad != "ok":
        notes.append(
            f"input gradient {grad}"
            + (f"; with an identity backward for round/floor/ceil/sign: {bpda}" if bpda != grad else "")
        )
    return Diagnosis(randomised, grad, bpda, notes)


class ThroughZeroFilled(nn.Module):
    """BPDA with a surrogate backward: the model's reconstruction in the forward pass, the zero-filled
    reconstruction's gradient in the backward pass (the loss still sees the model's own output)."""

    def __init__(self, model: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model = model

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low: Any, crop: Any) -> torch.Tensor:
        surrogate = zero_filled(masked_kspace, crop)
        with torch.no_grad():
            out = self.model(masked_kspace, mask, num_low, crop)
        return surrogate + (out - surrogate).detach()


@dataclass
class Adaptive:
    """The result of :func:`adaptive_noise`: the strongest noise per box, the attacks run, which attack won each
    box, and ``beaten``: whether an attack that needs no gradient of the model beat the white-box one on a box."""

    z: torch.Tensor  # (B, C, R, Cols) complex
    attacks: list[str]
    winner: list[str]
    beaten: bool
    candidates: dict[str, torch.Tensor]  # every attack's noise, by name


def adaptive_noise(
    model: Reconstructor, tb: TargetBatch, eps: torch.Tensor, cfg: NoiseConfig, diag: Diagnosis
) -> Adaptive:
    """The white-box attack (with EOT when randomised) and a transfer attack from the zero-filled reconstruction;
    when the gradient is not trustworthy or the transfer attack beats the white-box one on any box, also BPDA
    (identity backward of non-differentiable steps), BPDA through the zero-filled reconstruction and the
    gradient-free random search. Every candidate is scored by the model itself (averaged over ``EOT_SAMPLES``
    passes when randomised) and the strongest kept per box."""
    target: Any = EOT(model) if diag.randomised else model
    radius, acq = budget(tb.kspace, eps), tb.acquired[:, None, None, :].to(tb.kspace.real.dtype)
    score = _loss_fn(target, tb, cfg)
    cand: dict[str, torch.Tensor] = {}
    if diag.gradient == "ok":
        cand["white-box" + (" + EOT" if diag.randomised else "")] = adversarial_noise(target, tb, eps, cfg)
    cand["transfer from zero-filled"] = adversarial_noise(ZeroFilled(), tb, eps, cfg)  # type: ignore[arg-type]
    with torch.no_grad():
        losses = {k: score(z) for k, z in cand.items()}
    white = next((k for k in cand if k.startswith("white-box")), None)
    beaten = white is not None and bool((losses["transfer from zero-filled"] > losses[white]).any())
    if diag.gradient != "ok" or beaten:
        with straight_through():
            cand["BPDA"] = adversarial_noise(target, tb, eps, cfg)
        cand["BPDA through zero-filled"] = adversarial_noise(ThroughZeroFilled(target), tb, eps, cfg)  # type: ignore
        cand["random search"], _ = random_search(score, radius, acq, tuple(tb.kspace.shape), SEARCH_ITERS, cfg.seed)
        with torch.no_grad():
            losses.update({k: score(cand[k]) for k in cand if k not in losses})
    names = list(cand)
    best = torch.stack([losses[k] for k in names]).argmax(0)  # (B,)
    z = torch.stack([cand[k] for k in names])[best, torch.arange(len(tb))]
    return Adaptive(z, names, [names[int(i)] for i in best], beaten, cand)
