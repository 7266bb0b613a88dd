"""What the reward head reads: a clip vector and a caption vector per side of each pair.

Two ways to represent the clip, everything else equal:
- "audio": the frozen encoder's audio embedding (the paper's model);
- "reference": the mean text embedding of the clip's reference captions, for data with references but no audio
  (in CLAP's joint space, and for a sentence encoder, it stands in for "what the clip is"). The caption being
  judged is always removed from the references that represent its clip, as FENSE does; otherwise the model only
  learns "is this caption one of the references".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from prefcap.errors import PrefcapError
from prefcap.reward.data import PreferencePair
from prefcap.text import FLUENCY_FEATURES, fluency_profile

N_FLUENCY = len(FLUENCY_FEATURES)


class TextEncoder(Protocol):
    id: str

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor: ...


@dataclass
class PairFeatures:
    """Row k holds pair k: clip and caption vectors of side a and side b, optional caption-only features, and
    the captions themselves (what a reward model with a fine-tuned text side reads)."""

    clip_a: torch.Tensor
    text_a: torch.Tensor
    clip_b: torch.Tensor
    text_b: torch.Tensor
    extra_a: torch.Tensor  # [n, N_FLUENCY] or [n, 0]
    extra_b: torch.Tensor
    captions_a: list[str] | None = None
    captions_b: list[str] | None = None

    def __len__(self) -> int:
        return self.text_a.shape[0]

    def select(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> PairFeatures:
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        rows = torch.as_tensor(index)
        tensors = (getattr(self, f)[rows] for f in _TENSORS)
        captions = ([None if c is None else [c[k] for k in index] for c in (self.captions_a, self.captions_b)])
        return PairFeatures(*tensors, *captions)

    def for_model(self, fluency_features: bool) -> PairFeatures:
        """These features as a model reads them: features computed with fluency columns serve a model without
        them too (the columns are dropped), so one embedding pass serves every variant."""
        if fluency_features or self.extra_a.shape[1] == 0:
            return self
        return replace(self, extra_a=self.extra_a[:, :0], extra_b=self.extra_b[:, :0])

    def swapped(self) -> PairFeatures:
        return PairFeatures(self.clip_b, self.text_b, self.clip_a, self.text_a, self.extra_b, self.extra_a,
                            self.captions_b, self.captions_a)


_TENSORS = ("clip_a", "text_a", "clip_b", "text_b", "extra_a", "extra_b")


def _normalised(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def fluency_features(texts: Sequence[str]) -> torch.Tensor:
    """[n, N_FLUENCY]: `fluency_profile` of each caption."""
    return torch.tensor([fluency_profile(t) for t in texts], dtype=torch.float32).reshape(len(texts), N_FLUENCY)


def embed_texts(encoder: TextEncoder, texts: Sequence[str], batch_size: int = 256) -> dict[str, torch.Tensor]:
    unique = sorted(set(texts))
    rows = [encoder.embed_text(unique[k : k + batch_size]) for k in range(0, len(unique), batch_size)]
    table = torch.cat(rows) if rows else torch.empty(0)
    return {text: table[k] for k, text in enumerate(unique)}


def pair_features(pairs: Sequence[PreferencePair], text_encoder: TextEncoder, *,
                  audio: Mapping[str, torch.Tensor] | None = None,
                  references: Mapping[str, Sequence[str]] | None = None, fluency: bool = False) -> PairFeatures:
    """Features of every pair: clip vectors from `audio` (clip id -> embedding) or, when it is None, from the
    clip's `references` minus the judged caption."""
    if (audio is None) == (references is None):
        raise PrefcapError("give either audio embeddings or references to represent the clips, not both")
    texts = [p.caption_a for p in pairs] + [p.caption_b for p in pairs]
    if references is not None:
        texts += [r for p in pairs for r in references.get(p.clip_id, ())]
    table = embed_texts(text_encoder, texts)

    def clip_vector(clip_id: str, caption: str) -> torch.Tensor:
        if audio is not None:
            if clip_id not in audio:
                raise PrefcapError(f"no audio embedding for clip {clip_id!r}")
            return audio[clip_id]
        judged = _normalised(caption)
        others = [r for r in references.get(clip_id, ()) if _normalised(r) != judged]
        if not others:
            raise PrefcapError(f"clip {clip_id!r} has no reference left once the judged caption is removed")
        mean = torch.stack([table[r] for r in others]).mean(dim=0)
        return mean / mean.norm().clamp_min(1e-8)

    def side(captions: list[str], clip_ids: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        clips = torch.stack([clip_vector(c, t) for c, t in zip(clip_ids, captions, strict=True)])
        text = torch.stack([table[t] for t in captions])
        extra = fluency_features(captions) if fluency else torch.zeros(len(captions), 0)
        return clips, text, extra

    if not pairs:
        raise PrefcapError("no preference pairs to featurise")
    clip_ids = [p.clip_id for p in pairs]
    captions_a, captions_b = [p.caption_a for p in pairs], [p.caption_b for p in pairs]
    clip_a, text_a, extra_a = side(captions_a, clip_ids)
    clip_b, text_b, extra_b = side(captions_b, clip_ids)
    return PairFeatures(clip_a, text_a, clip_b, text_b, extra_a, extra_b, captions_a, captions_b)
