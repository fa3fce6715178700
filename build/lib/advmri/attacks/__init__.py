"""Attacks: targeted adversarial k-space noise and adversarial rotation (batched)."""
