"""How good is an audio–text encoder on the synthetic corpus: zero-shot event detection and retrieval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from prefcap.data.records import Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.synth.grammar import keyword_caption
from prefcap.synth.judge import scene_of
from prefcap.synth.lexicon import CLASSES


def zero_shot_event_map(encoder: AudioTextEncoder, clips: Sequence[Clip], audio_embeddings: torch.Tensor) -> dict:
    """Mean average precision over event classes, scoring each clip by cosine with "the sound of a <event>"."""
    classes = sorted(CLASSES)
    text = encoder.embed_text([keyword_caption([c]) for c in classes])
    scores = (audio_embeddings @ text.T).numpy()
    present = np.array([[c in scene_of(clip).classes for c in classes] for clip in clips])
    per_class = {c: float(average_precision_score(present[:, k], scores[:, k]))
                 for k, c in enumerate(classes) if present[:, k].any()}
    return {"map": float(np.mean(list(per_class.values()))), "per_class": per_class}


def text_to_audio_recall(audio_embeddings: torch.Tensor, text_embeddings: torch.Tensor,
                         ks: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """Caption i should retrieve clip i: R@k over all clips."""
    similarity = text_embeddings @ audio_embeddings.T
    rank = (similarity > similarity.diagonal().unsqueeze(1)).sum(1)
    return {f"r@{k}": float((rank < k).float().mean()) for k in ks}
