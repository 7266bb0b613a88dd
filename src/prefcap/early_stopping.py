"""Early stopping on a validation loss, shared by the trainers that keep their best weights (SFT, DPO)."""

from __future__ import annotations

import math

import torch


class BestWeights:
    """Remembers the weights of the lowest finite validation loss seen, and says when `patience` validations in a
    row brought no new best (None: never)."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.loss: float | None = None
        self.step: int | None = None
        self.weights: dict[str, torch.Tensor] | None = None
        self._since_best = 0

    def update(self, loss: float, step: int, model: torch.nn.Module) -> bool:
        """Record a validation; True when training should stop."""
        if math.isfinite(loss) and (self.loss is None or loss < self.loss):
            self.loss, self.step = loss, step
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            self._since_best = 0
            return False
        self._since_best += 1
        return self.patience is not None and self._since_best >= self.patience
