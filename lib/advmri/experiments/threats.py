"""Threat models as objects: compose them in Python, perturb a batch, or turn them into runs.

* :class:`KspaceNoise`: targeted adversarial k-space noise, per-coil budget ``||z_i|| <= eps ||k_i||`` on the
  acquired columns, the undersampling mask applied after the noise, projected gradient ascent on the box
  loss (:func:`advmri.attacks.noise.adversarial_noise`).
* :class:`RandomNoise`: its control, complex Gaussian noise delivering the adversarial noise's energy to the
  network coil by coil (:func:`advmri.attacks.noise.control_items`).
* :class:`Rotation`: the worst in-plane rotation of the object within a bound, searched on an angle grid
  (:func:`advmri.attacks.rotation.sweep_angles` / :func:`~advmri.attacks.rotation.worst_case`).

Each has ``perturb(model, batch, ...)`` (batched; ``batch`` a :class:`advmri.attacks.common.TargetBatch`,
``model`` any :class:`advmri.models.networks.Reconstructor`), ``describe()`` (the dictionary a robustness card
prints) and ``run(model, data, acceleration, ...)`` (an :class:`advmri.experiments.run.AttackRun` with the same
parameters, for :func:`advmri.experiments.run.execute`, the sweeps and :mod:`advmri.app.benchmark`)::

    from advmri.experiments.threats import KspaceNoise, Rotation
    noise = KspaceNoise(eps=(0.0, 0.01), steps=5)
    z = noise.perturb(model, batch, eps=0.01)            # (batch, coils, rows, cols) complex
    recon = noise.reconstruct(model, batch, z)           # (batch, H, W)
    table, extras = execute(noise.run("models/varnet-small.pt", "data/synthetic/small/test", 8))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from advmri.attacks.common import TargetBatch, box_scores
from advmri.attacks.motion import with_frame
from advmri.attacks.noise import NoiseConfig, adversarial_noise, control_items, recon_with_noise, split_norms
from advmri.attacks.rotation import RotationConfig, rotated_recon, sweep_angles, worst_case
from advmri.models.networks import Reconstructor

__all__ = ["KspaceNoise", "RandomNoise", "Rotation", "THREATS"]


def _eps_tensor(eps: float | torch.Tensor, n: int, device) -> torch.Tensor:
    e = torch.as_tensor(eps, dtype=torch.float32, device=device)
    return e.expand(n).clone() if e.dim() == 0 else e  # (batch,)


@dataclass(frozen=True)
class KspaceNoise:
    """Adversarial k-space noise. ``mask_known=False``: the attacker averages its loss over ``mask_draws``
    random masks of the run's mask function instead of knowing the mask (the paper assumes it knows it)."""

    eps: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02)  # relative per-coil budgets; 0 = the clean reconstruction
    steps: int = 10
    step_size: float = 0.5  # fraction of the budget per step
    update: str = "ours"  # ours | reference (the authors' update)
    restarts: int = 0
    loss: str = "mse"  # mse | ssim | mse+ssim
    mask_known: bool = True
    mask_draws: int = 4  # used when mask_known is False
    target: str = "clean"  # clean | healthy (erasure) | lesion (hallucination, on the lesion-free twins)
    random_draws: int = 3  # draws of the random control per (box, eps)
    seed: int = 0

    name = "noise"

    def config(self) -> NoiseConfig:
        """The :class:`~advmri.attacks.noise.NoiseConfig` of these parameters (validated there)."""
        return NoiseConfig(
            eps=tuple(self.eps),
            steps=self.steps,
            step_size=self.step_size,
            update=self.update,
            restarts=self.restarts,
            loss=self.loss,
            target=self.target,
            mask_draws=0 if self.mask_known else self.mask_draws,
            random_draws=self.random_draws,
            seed=self.seed,
        )

    def perturb(
        self, model: Reconstructor, batch: TargetBatch, eps: float | torch.Tensor, mask_func=None
    ) -> torch.Tensor:
        """The adversarial noise ``z`` ``(batch, coils, rows, cols)`` complex for budget(s) ``eps``
        (a float, or one per item). ``mask_func`` is needed when ``mask_known`` is False."""
        e = _eps_tensor(eps, len(batch), batch.kspace.device)
        return adversarial_noise(model, batch, e, self.config(), mask_func=mask_func)

    @staticmethod
    def reconstruct(model: Reconstructor, batch: TargetBatch, z: torch.Tensor) -> torch.Tensor:
        """``recon(M (k + z))`` ``(batch, H, W)``: the mask applied after the noise."""
        with torch.no_grad():
            return recon_with_noise(model, batch, z)

    def control(self) -> RandomNoise:
        return RandomNoise(seed=self.seed, draws=self.random_draws)

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            threat=self.name,
            budget="per coil ||z_i|| <= eps ||k_i||, mask applied after the noise",
            objective=f"maximise box {self.loss} against the {self.target} target",
        )
        return d

    def run(self, model: str, data: str, acceleration: int, **common: Any):
        """An :class:`advmri.experiments.run.AttackRun` of this threat (``common``: max_targets, device, chunk, ...)."""
        from advmri.experiments.run import (
            AttackRun,
        )  # advmri.experiments.run builds on this module's lower layers, not on it

        return AttackRun(
            model=model, data=data, attack="noise", acceleration=acceleration, noise=self.config(), **common
        )


@dataclass(frozen=True)
class RandomNoise:
    """The random control of an adversarial noise ``z``: Gaussian noise with ``z``'s per-coil energy on the
    sampled columns and on the discarded ones, seeded per (box, eps, draw)."""

    seed: int = 0
    draws: int = 3

    name = "random-noise"

    def perturb(self, batch: TargetBatch, z: torch.Tensor, eps: float | torch.Tensor, draw: int = 0) -> torch.Tensor:
        e = _eps_tensor(eps, len(batch), "cpu")
        return control_items(batch, *split_norms(z, batch), e, self.seed, draw)

    def describe(self) -> dict[str, Any]:
        return dict(
            threat=self.name,
            seed=self.seed,
            draws=self.draws,
            matched="per coil, the adversarial noise's energy on the sampled and on the discarded columns",
        )


@dataclass(frozen=True)
class Rotation:
    """Adversarial rotation: for each bound, the grid angle ``|theta| <= bound`` with the largest box MSE."""

    bounds: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # degrees
    max_angle: float = 4.9
    angle_step: float = 0.1
    interpolation: str = "reference"  # reference | antialias | fourier
    target: str = "clean"
    random_draws: int = 3  # uniform random angles in [-bound, bound]
    seed: int = 0
    frame: str = "coils"  # coils: the paper's (maps turn with the knee) | object: fixed coils (attacks.motion)
    maps: str = "synthetic"  # frame=object: the generator's maps | espirit

    name = "rotation"

    def config(self) -> RotationConfig:
        return RotationConfig(
            max_angle=self.max_angle,
            angle_step=self.angle_step,
            bounds=tuple(self.bounds),
            interpolation=self.interpolation,
            target=self.target,
            random_draws=self.random_draws,
            seed=self.seed,
            frame=self.frame,
            maps=self.maps,
        )

    def perturb(
        self, model: Reconstructor, batch: TargetBatch, bound: float, chunk: int = 16
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(angles (batch,), reconstructions (batch, H, W))`` at each item's worst angle within ``bound``."""
        cfg = self.config()
        grid = cfg.angles
        batch = with_frame(batch, cfg.frame, cfg.maps)
        worst = worst_case(sweep_angles(model, batch, grid, chunk, cfg.interpolation), grid, [bound], cfg.target)
        angles = torch.tensor([w["angle"] for w in worst], dtype=torch.float32, device=batch.kspace.device)
        with torch.no_grad():
            return angles, rotated_recon(model, batch, angles, cfg.interpolation)

    @staticmethod
    def scores(recon: torch.Tensor, batch: TargetBatch) -> dict[str, torch.Tensor]:
        return box_scores(recon, batch)

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            threat=self.name,
            grid=f"-{self.max_angle:g}..{self.max_angle:g} deg in {self.angle_step:g} deg steps",
            objective=f"the angle with the largest box MSE against the {self.target} target",
        )
        return d

    def run(self, model: str, data: str, acceleration: int, **common: Any):
        from advmri.experiments.run import AttackRun

        return AttackRun(
            model=model, data=data, attack="rotation", acceleration=acceleration, rotation=self.config(), **common
        )


THREATS = {"noise": KspaceNoise, "rotation": Rotation}
