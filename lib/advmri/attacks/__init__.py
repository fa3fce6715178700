"""Attacks: targeted adversarial k-space noise and its energy-matched random control (noise), Auto-PGD for the
per-coil budget (apgd), a gradient-free random search in the same threat model (search), checks for gradient
masking with the adaptive attack that answers them (masking), adversarial rotation over an angle grid (rotation) of
the coil images or, with fixed coil sensitivities, of the object (motion),
and the shared target batches and box scores (common); all batched over boxes, epsilons and angles."""

__all__ = ["apgd", "common", "masking", "motion", "noise", "rotation", "search"]
