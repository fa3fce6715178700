"""Attacks: targeted adversarial k-space noise and its energy-matched random control (noise), adversarial
rotation over an angle grid (rotation), and the shared target batches and box scores (common); all batched over
boxes, epsilons and angles."""

__all__ = ["common", "noise", "rotation"]
