"""The `Captioner` interface, and the token bookkeeping every backend shares.

RL and DPO depend on one invariant: the per-token log-probabilities `generate` reports for a sampled
sequence are exactly those `sequence_log_probs` computes for it later (same masking, same temperature).
Both go through `token_log_probs` and `completion_mask` below so the backends cannot drift apart.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from transformers import GenerationConfig, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from prefcap.errors import PrefcapError
from prefcap.io import write_checksums

# Written by every backend's `save`: {"backend": ...} and whatever else that backend needs to load itself.
META_FILE = "prefcap_captioner.json"


DecodingMode = Literal["greedy", "beam", "sample"]
DECODING_MODES: tuple[str, ...] = get_args(DecodingMode)


@dataclass(frozen=True)
class Decoding:
    """How to decode. For RL sampling use mode="sample" with top_p=1.0 (plain temperature sampling)."""

    mode: DecodingMode = field(default="greedy", metadata={"help": "greedy, beam or sample"})
    num_beams: int = field(default=4, metadata={"help": "beams of beam search"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (1.0: plain temperature sampling)"})
    max_new_tokens: int = field(default=32, metadata={"help": "longest caption, in tokens"})

    def __post_init__(self) -> None:
        if self.mode not in DECODING_MODES:
            raise PrefcapError(f"unknown decoding mode {self.mode!r}; expected one of {', '.join(DECODING_MODES)}")
        if self.num_beams < 1 or self.max_new_tokens < 1:
            raise PrefcapError(f"num_beams and max_new_tokens must be at least 1, got {self.num_beams} and "
                               f"{self.max_new_tokens}")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise PrefcapError(f"decoding needs temperature > 0 and 0 < top_p <= 1, got {self.temperature} and "
                               f"{self.top_p}")


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
    return token_scores(logits, token_ids, mask, temperature)[0]


def token_scores(logits: torch.Tensor, token_ids: torch.Tensor, mask: torch.Tensor,
                 temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, T] log-probabilities of `token_ids`, [B, T] entropy of each step's distribution), both at
    `temperature` and 0 where masked: one log-softmax serves both."""
    log_probs = torch.log_softmax(logits.float() / temperature, dim=-1)
    chosen = log_probs.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1) * mask
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1) * mask
    return chosen, entropy


def returned_per_clip(n: int, decoding: Decoding) -> int:
    """How many sequences per clip `generate` must return: 1 for greedy (repeated n times after), else n."""
    if n < 1:
        raise PrefcapError(f"n must be >= 1, got {n}")
    if decoding.mode == "beam" and n > decoding.num_beams:
        raise PrefcapError(f"beam search returns at most num_beams={decoding.num_beams} captions, asked for {n}")
    return 1 if decoding.mode == "greedy" else n


def decoding_config(decoding: Decoding, num_return_sequences: int, *, decoder_start_token_id: int,
                    eos_token_id: int, pad_token_id: int) -> GenerationConfig:
    """A generation config built from `decoding` alone (no repetition penalties, suppressed tokens, top-k...)."""
    common = dict(decoder_start_token_id=decoder_start_token_id, eos_token_id=eos_token_id,
                  pad_token_id=pad_token_id, max_new_tokens=decoding.max_new_tokens,
                  num_return_sequences=num_return_sequences, return_dict_in_generate=True)
    if decoding.mode == "greedy":
        return GenerationConfig(**common, do_sample=False, num_beams=1, output_logits=True)
    if decoding.mode == "beam":
        return GenerationConfig(**common, do_sample=False, num_beams=decoding.num_beams)
    if decoding.mode == "sample":
        return GenerationConfig(**common, do_sample=True, num_beams=1, temperature=decoding.temperature,
                                top_p=decoding.top_p, top_k=0, output_logits=True)
    raise ValueError(f"unknown decoding mode {decoding.mode!r}")


def completions_from_labels(labels: torch.Tensor, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(token_ids, mask) from `completion_labels`' output: -100 padding becomes the pad token, masked out."""
    mask = (labels != -100).float()
    return labels.clamp(min=0).masked_fill(labels == -100, pad_token_id), mask


def completion_labels(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], eos_token_id: int,
                      max_tokens: int) -> torch.Tensor:
    """[B, T] the completions `generate` would produce for `texts` (their tokens, at most `max_tokens` with EOS,
    then EOS), padded with -100 (ignored by the cross-entropy): the targets of teacher-forced training."""
    rows = [ids[:max_tokens - 1] + [eos_token_id] for ids in tokenizer(list(texts), add_special_tokens=False).input_ids]
    labels = torch.full((len(rows), max(map(len, rows))), -100, dtype=torch.long)
    for row, ids in zip(labels, rows, strict=True):
        row[:len(ids)] = torch.tensor(ids)
    return labels


def clip_major_generation(tokenizer: PreTrainedTokenizerBase, n: int, returned: int, token_ids: torch.Tensor,
                          mask: torch.Tensor, log_probs: torch.Tensor, truncated: torch.Tensor) -> Generation:
    """A `Generation` of n rows per clip from `returned` decoded rows per clip (1 when greedy: repeated n times),
    with the texts decoded up to EOS."""
    if returned != n:
        token_ids, mask, log_probs, truncated = (
            x.repeat_interleave(n, dim=0) for x in (token_ids, mask, log_probs, truncated))
    lengths = mask.sum(dim=1).long().tolist()
    rows = [row[:length] for row, length in zip(token_ids.tolist(), lengths, strict=True)]
    texts = [text.strip() for text in tokenizer.batch_decode(rows, skip_special_tokens=True)]
    return Generation(texts=[texts[i:i + n] for i in range(0, len(texts), n)], token_ids=token_ids, mask=mask,
                      log_probs=log_probs, truncated=truncated)


@contextlib.contextmanager
def model_generation_config(model: PreTrainedModel, config: GenerationConfig) -> Iterator[None]:
    """Stand `config` in for the model's own generation config while generating.

    `generate` fills every field the given config leaves unset (None) from `model.generation_config`, so a saved
    config's `suppress_tokens`, `begin_suppress_tokens`, `no_repeat_ngram_size`, `top_k`... would otherwise leak
    into decoding; they cannot be unset by passing None.
    """
    saved = model.generation_config
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = saved


def drop_words(decoder_input_ids: torch.Tensor, rate: float, replacement_id: int, keep_first: int = 1) -> torch.Tensor:
    """Teacher forcing with word dropout: replace a share of the decoder's input tokens (never the first
    `keep_first`: start token and forced prompt). A small captioner trained from scratch otherwise learns the
    caption language first and ignores the audio for a long time (one caption for every clip); with its own
    previous words unreliable, it has to listen. Targets are untouched."""
    if rate <= 0:
        return decoder_input_ids
    dropped = torch.rand(decoder_input_ids.shape, device=decoder_input_ids.device) < rate
    dropped[:, :keep_first] = False
    return decoder_input_ids.masked_fill(dropped, replacement_id)


class Captioner(ABC):
    """Writes captions for audio. `sample_rate` is the rate it expects; other rates are resampled. `model` is the
    trainable network whose parameters SFT, RL and DPO optimise."""

    sample_rate: int
    name: str
    model: torch.nn.Module
    max_seconds: float | None = None  # the longest clip it takes (None: no limit); longer clips are refused by name

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
    def sequence_scores(self, waveforms: Sequence[np.ndarray], sr: int, token_ids: torch.Tensor,
                        mask: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """As `sequence_log_probs`, plus the [B, T] entropy of each step's distribution (for RL's entropy bonus
        and logs), from the same forward pass."""

    @abstractmethod
    def tokenize_completions(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(token_ids, mask) of the completions `generate` would produce for `texts` (tokens, then EOS), on the
        model's device: what DPO scores stored captions with."""

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Save in Hugging Face format (`save_pretrained`), loadable with `load_captioner(path)`."""


def check_captioner_destination(folder: str | Path) -> None:
    """A captioner is saved into a new or empty folder, or over an earlier saved captioner. Anything else (a
    data folder given as `--out` by mistake) is refused: saving replaces the folder whole."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise PrefcapError(f"{folder} is a file; a captioner is saved as a folder: choose another --out")
    if any(folder.iterdir()) and not (folder / META_FILE).is_file():
        raise PrefcapError(f"{folder} exists and is not a saved captioner; saving would replace it, so choose "
                           "another --out (or remove the folder)")


def save_captioner(captioner: Captioner, folder: str | Path, extra_json: dict[str, object] | None = None) -> None:
    """Save `captioner` (and JSON files named by `extra_json`'s keys) beside `folder`, then rename: `folder` is
    complete or absent, never half-written."""
    folder = Path(folder)
    check_captioner_destination(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        captioner.save(tmp)
        for name, payload in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(payload, indent=2), encoding="utf-8")
        write_checksums(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
