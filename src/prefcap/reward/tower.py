"""The caption tower: a trainable copy of an encoder's text side, so the reward model can read the caption.

A frozen sentence or CLAP embedding says what a caption is about, not whether it is well written: "a dog barks
and barks and" and "a dog barks." land close together. The standard RLHF reward model fine-tunes the language
model that reads the response; here that is the encoder's text side (MiniLM for text-only / reference-conditioned
data, CLAP's text tower beside the frozen audio embedding), trained with the head on the Bradley–Terry loss.

The tower starts from the encoder's own weights, so its vectors start in the encoder's space (where the frozen
clip vectors live) and training moves them only as far as the preferences ask. Only the text side's parameters
are trained and saved: a CLAP's audio tower stays as it is and is never written twice.
"""

from __future__ import annotations

import copy
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from prefcap.encoders.clap import ClapEncoder, _pooled, clap_tokens
from prefcap.errors import PrefcapError

EVAL_BATCH = 256  # captions per forward pass when no gradient is needed
_LAYER_INDEX = re.compile(r"\blayers?\.(\d+)\.")


class CaptionTower(nn.Module, ABC):
    """captions -> [n, dim] L2-normalised vectors, differentiable."""

    def __init__(self, model: nn.Module, frozen_layers: int = 0):
        super().__init__()
        self.model = model
        self.text_parameters = self._find_text_parameters()
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_(name in self.text_parameters and not _is_lower(name, frozen_layers))

    @abstractmethod
    def tokens(self, captions: Sequence[str]) -> dict: ...

    @abstractmethod
    def pooled(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self._embed(captions)
        return torch.cat([self._embed(captions[k:k + EVAL_BATCH]) for k in range(0, len(captions), EVAL_BATCH)])

    def _embed(self, captions: Sequence[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tokens = {key: value.to(device) if isinstance(value, torch.Tensor) else value  # e.g. sbert's "modality"
                  for key, value in self.tokens(list(captions)).items()}
        return F.normalize(self.pooled(tokens), dim=-1)

    def _find_text_parameters(self) -> set[str]:
        """The parameters a caption's vector depends on: found by a gradient, so any CLAP-like model works."""
        for parameter in self.model.parameters():
            parameter.requires_grad_(True)
            parameter.grad = None
        training = self.model.training
        self.model.eval()
        with torch.enable_grad():
            self._embed(["a dog barks"]).sum().backward()
        self.model.train(training)
        found = {name for name, p in self.model.named_parameters() if p.grad is not None}
        self.model.zero_grad(set_to_none=True)
        return found

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The text side's weights: what a saved reward model stores for its tower."""
        return {name: p.detach() for name, p in self.model.named_parameters() if name in self.text_parameters}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != self.text_parameters:
            missing, unknown = sorted(self.text_parameters - set(state)), sorted(set(state) - self.text_parameters)
            raise RuntimeError(f"caption tower weights do not fit: missing {missing[:3]}, unknown {unknown[:3]}")
        parameters = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                parameters[name].copy_(value)


def _is_lower(name: str, frozen_layers: int) -> bool:
    """Embeddings and the first `frozen_layers` transformer layers (0: nothing is frozen)."""
    if frozen_layers <= 0:
        return False
    match = _LAYER_INDEX.search(name)
    return "embedding" in name or (match is not None and int(match.group(1)) < frozen_layers)


class SentenceTower(CaptionTower):
    """A sentence-transformers model (e.g. all-MiniLM-L6-v2): mean-pooled, normalised sentence embeddings."""

    def tokens(self, captions: Sequence[str]) -> dict:
        return self.model.preprocess(list(captions))

    def pooled(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(tokens)["sentence_embedding"]


class ClapTextTower(CaptionTower):
    """A CLAP's text tower and projection, tokenised exactly as `ClapEncoder.tokenize` does."""

    def __init__(self, encoder: ClapEncoder, frozen_layers: int = 0):
        self.tokenizer, self.max_tokens = encoder.tokenizer, encoder.max_text_tokens
        super().__init__(copy.deepcopy(encoder.model), frozen_layers)

    def tokens(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        return clap_tokens(self.tokenizer, captions, self.max_tokens)

    def pooled(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return _pooled(self.model.get_text_features(**tokens))


def caption_tower(encoder: object, frozen_layers: int = 0) -> CaptionTower:
    """A fresh trainable copy of `encoder`'s text side."""
    from prefcap.encoders.sentence import SentenceEncoder

    if isinstance(encoder, SentenceEncoder):
        return SentenceTower(copy.deepcopy(encoder.model), frozen_layers)
    if isinstance(encoder, ClapEncoder):
        return ClapTextTower(encoder, frozen_layers)
    raise PrefcapError(f"cannot fine-tune the text side of a {type(encoder).__name__}: text_encoder='fine-tune' "
                       "needs a sentence-transformers encoder or a CLAP")
