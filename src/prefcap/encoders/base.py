"""The `AudioTextEncoder` interface: the seam where a user plugs in their own audio–text model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch


class AudioTextEncoder(ABC):
    """Maps audio and text into one joint space; outputs are L2-normalised rows.

    `id` names the model *and* its preprocessing: embeddings are cached under it, and a reward model
    trained on one id refuses embeddings from another.
    """

    id: str
    dim: int
    sample_rate: int  # the rate the model expects; embed_audio resamples other rates itself

    @abstractmethod
    def embed_audio(self, waveforms: Sequence[np.ndarray], sr: int) -> torch.Tensor:
        """[n, dim] embeddings of mono float waveforms sampled at `sr`. Deterministic: a clip gives the same
        vector alone or in a batch."""

    @abstractmethod
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """[n, dim] embeddings of captions."""
