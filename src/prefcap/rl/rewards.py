"""The reward RL maximises, term by term: the reward model's score, optional extras, and guards against hacking.

    total = r_RM(audio, caption)                       the learned preference score (pre-sigmoid)
          - uncertainty_coef * std over ensemble heads  distrust captions the reward model is unsure about
                                                        (within the clip's group: see RewardModel.rewards)
          + clap_coef * cos(audio, caption)             optional CLAP audio–text agreement
          - repetition_penalty * repeated n-grams       "a dog barks while a dog growls"
          - truncation_penalty * [bad or missing end]   "... followed by", or no end-of-sequence token
          - length_penalty * words outside [min_words, max_words]

Every term is returned separately so RL can log each one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from prefcap.encoders.base import AudioTextEncoder
from prefcap.errors import PrefcapError
from prefcap.eval.metrics import FILLER_WORDS, caption_words, has_truncated_ending
from prefcap.reward.features import fluency_features
from prefcap.reward.model import RewardModel


@dataclass(frozen=True)
class RewardTerms:
    uncertainty_coef: float = 0.0
    clap_coef: float = 0.0
    repetition_penalty: float = 1.0  # per word n-gram that already occurred in the caption
    repetition_ngram: int = 1  # 1: content words (filler words such as "a", "is", "heard" may repeat)
    truncation_penalty: float = 1.0  # a dangling last word or no end-of-sequence within max_new_tokens
    min_words: int = 3
    max_words: int = 25
    length_penalty: float = 0.2  # per word outside [min_words, max_words]


def repeated_ngrams(caption: str, n: int) -> int:
    """How many word n-grams of the caption already occurred earlier in it; for n = 1, content words only ("a
    piano plays with a piano in the background" names one thing twice)."""
    words = caption_words(caption)
    if n == 1:
        words = [w for w in words if w not in FILLER_WORDS]
    grams = [tuple(words[k:k + n]) for k in range(len(words) - n + 1)]
    return len(grams) - len(set(grams))


class CaptionReward:
    """Scores captions of clips whose audio embeddings are given (from the cache): see the module docstring."""

    def __init__(self, model: RewardModel, encoder: AudioTextEncoder, terms: RewardTerms = RewardTerms()) -> None:  # noqa: B008
        model.check_encoder(encoder.id)
        if model.metrics.get("mode", "audio") != "audio":
            raise PrefcapError("RL needs an audio-conditioned reward model; this one represents clips by references")
        self.model, self.encoder, self.terms = model, encoder, terms

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor, captions: Sequence[str],
                 no_eos: torch.Tensor, group_size: int = 1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total [n], {term: [n]}) for caption k of the clip whose audio embedding is audio[k]; rows in
        consecutive groups of `group_size` captions of one clip get the group-relative ensemble spread."""
        t = self.terms
        text = self.encoder.embed_text(list(captions))
        audio = audio.to(text.device)
        extra = fluency_features(captions) if self.model.config.fluency_features else torch.zeros(len(captions), 0)
        rm, spread = self.model.rewards(audio, text, extra, group_size, captions=list(captions))
        words = torch.tensor([len(caption_words(c)) for c in captions], dtype=torch.float32)
        terms = {
            "rm": rm,
            "uncertainty": spread,
            "clap": (audio * text).sum(dim=-1),
            "repeated_ngrams": torch.tensor([float(repeated_ngrams(c, t.repetition_ngram)) for c in captions]),
            "bad_ending": torch.tensor([float(has_truncated_ending(c)) for c in captions]).maximum(
                no_eos.float().cpu()),
            "words_out_of_bounds": (t.min_words - words).clamp(min=0) + (words - t.max_words).clamp(min=0),
        }
        total = (terms["rm"] - t.uncertainty_coef * terms["uncertainty"] + t.clap_coef * terms["clap"]
                 - t.repetition_penalty * terms["repeated_ngrams"] - t.truncation_penalty * terms["bad_ending"]
                 - t.length_penalty * terms["words_out_of_bounds"])
        return total, terms
