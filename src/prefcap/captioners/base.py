"""The `Captioner` interface, and the token bookkeeping every backend shares.

RL and DPO depend on one invariant: the per-token log-probabilities `generate` reports for a sampled
sequence are exactly those `sequence_log_probs` computes for it later (same masking, same temperature).
Both go through `token_log_probs` and `completion_mask` below so the backends cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch


@dataclass(frozen=True)
class Decoding:
    """How to decode. For RL sampling use mode="sample" with top_p=1.0 (plain temperature sampling)."""

    mode: Literal["greedy", "beam", "sample"] = "greedy"
    num_beams: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32


@dataclass
class Generation:
    """What `generate` returns for B clips x n captions each (rows are clip-major: clip 0's n, then clip 1's).

    token_ids: [B*n, T] the generated tokens only (no decoder start token, no forced prompt), including the
        end-of-sequence token, then padding.
    mask: [B*n, T] 1.0 for real tokens up to and including end-of-sequence, 0.0 after.
    log_probs: [B*n, T] log p(token | audio, prefix) at temperature `Decoding.temperature`, 0 where masked.
    truncated: [B*n] True where no end-of-sequence token was produced within max_new_tokens.
    """

    texts: list[list[str]]
    token_ids: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    truncated: torch.Tensor


def completion_mask(token_ids: torch.Tensor, eos_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, truncated): mask is 1 up to and including the first EOS of each row, 0 after it."""
    is_eos = token_ids == eos_token_id
    seen_before = torch.cumsum(is_eos.int(), dim=1) - is_eos.int()
    mask = (seen_before == 0).float()
    return mask, ~is_eos.any(dim=1)


def token_log_probs(
    logits: torch.Tensor, token_ids: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Per-token log-probabilities of `token_ids` under `logits` / temperature ([B, T, V] -> [B, T])."""
    log_probs = torch.log_softmax(logits.float() / temperature, dim=-1)
    return log_probs.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1) * mask


class Captioner(ABC):
    """Writes captions for audio. `sample_rate` is the rate it expects; other rates are resampled."""

    sample_rate: int
    name: str

    @abstractmethod
    def generate(self, waveforms: Sequence[np.ndarray], sr: int, n: int = 1,
                 decoding: Decoding = Decoding()) -> Generation:
        """n captions per clip, batched; no Python loop over tokens."""

    @abstractmethod
    def sequence_log_probs(self, waveforms: Sequence[np.ndarray], sr: int, token_ids: torch.Tensor,
                           mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """[B, T] log-probabilities of given completions (as `Generation.token_ids`), with gradients.
        B = len(waveforms) * k rows are allowed: each clip's rows are consecutive (clip-major, as generate)."""

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Save in Hugging Face format (`save_pretrained`), loadable with `load_captioner(path)`."""
