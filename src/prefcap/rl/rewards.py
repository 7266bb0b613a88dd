"""The reward RL maximises, term by term: the reward model's score, optional extras, and guards against hacking.

    total = r_RM(audio, caption)                       the learned preference score (pre-sigmoid)
          - clip_relative_coef * mean_x' r_RM(x', caption)   its caption prior: the mean score of the same caption
                                                        for `clip_relative_clips` other clips x' (fixed, drawn
                                                        once from the RL clips), so that naming a sound pays
                                                        where it is heard, not because captions that name it
                                                        scored well in general
          - uncertainty_coef * std over ensemble heads  distrust captions the reward model is unsure about
                                                        (within the clip's group: see RewardModel.rewards)
          + clap_coef * cos(audio, caption)             optional CLAP audio–text agreement
          - repetition_coef * repeated n-grams          "a dog barks while a dog growls"
          - truncation_penalty * [bad or missing end]   "... followed by", or no end-of-sequence token
          - length_penalty * words outside [min_words, max_words]

Every term is returned separately so RL can log each one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from prefcap.encoders.base import AudioTextEncoder
from prefcap.errors import PrefcapError
from prefcap.reward.features import fluency_features
from prefcap.reward.model import RewardModel
from prefcap.text import FILLER_WORDS, caption_words, has_truncated_ending


@dataclass(frozen=True)
class RewardTerms:
    """The reward's terms besides the reward model's score, and the guards (the module docstring's formula)."""

    uncertainty_coef: float = field(default=0.0, metadata={
        "help": "subtract this × the ensemble heads' spread (distrust captions the reward model is unsure about)"})
    clip_relative_coef: float = field(default=0.0, metadata={
        "help": "λ: subtract λ × the caption's mean reward-model score over other clips (its caption prior)"})
    clip_relative_clips: int = field(default=16, metadata={
        "help": "how many other clips (drawn once from the RL clips) that mean is taken over"})
    clap_coef: float = field(default=0.0, metadata={"help": "add this × the CLAP audio–text cosine similarity"})
    repetition_coef: float = field(default=1.0, metadata={
        "help": "subtracted per word n-gram that already occurred in the caption"})
    repetition_ngram: int = field(default=1, metadata={
        "help": "n of those n-grams; 1: content words (filler words such as 'a', 'is', 'heard' may repeat)"})
    truncation_penalty: float = field(default=1.0, metadata={
        "help": "subtracted for a dangling last word or no end-of-sequence within max_new_tokens"})
    min_words: int = field(default=3, metadata={"help": "shortest caption length (words) not penalised"})
    max_words: int = field(default=25, metadata={"help": "longest caption length (words) not penalised"})
    length_penalty: float = field(default=0.2, metadata={"help": "subtracted per word outside [min_words, max_words]"})

    def __post_init__(self) -> None:
        if self.clip_relative_coef < 0 or self.clip_relative_clips < 1:
            raise PrefcapError(f"clip_relative_coef must be >= 0 and clip_relative_clips >= 1, got "
                               f"{self.clip_relative_coef} and {self.clip_relative_clips}")


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

    def __init__(self, model: RewardModel, encoder: AudioTextEncoder, terms: RewardTerms = RewardTerms(),  # noqa: B008
                 clip_pool: torch.Tensor | None = None) -> None:
        """`clip_pool`: audio embeddings of the clips RL trains on; `clip_relative_clips` of them, drawn once with a
        fixed generator, are the other clips of the clip-relative term (needed when clip_relative_coef > 0)."""
        model.check_encoder(encoder.id)
        if model.metrics.get("mode", "audio") != "audio":
            raise PrefcapError("RL needs an audio-conditioned reward model; this one represents clips by references")
        self.model, self.encoder, self.terms = model, encoder, terms
        self.other_clips = None
        if terms.clip_relative_coef:
            if clip_pool is None or len(clip_pool) < 2:
                raise PrefcapError("clip_relative_coef needs the audio embeddings of the RL clips (clip_pool)")
            order = torch.randperm(len(clip_pool), generator=torch.Generator().manual_seed(0))
            self.other_clips = clip_pool[order[:terms.clip_relative_clips]]
        # the highest score the reward model gave a caption it was trained on: RL's collapse guard compares to it
        self.labelled_max: float | None = model.metrics.get("labelled_reward_max")

    def preference_scores(self, audio: torch.Tensor, text: torch.Tensor, captions: Sequence[str],
                          clip_ids: Sequence[str] | None,
                          group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the learned score r_RM [n], the ensemble's group-relative spread [n], the caption prior
        mean_x' r_RM(x', caption) over the other clips [n]: zeros when the clip-relative term is off), from one
        reading of the captions: the terms a diagnostic run may replace (e.g. by a simulated panel's own score, to
        measure what the reward model costs)."""
        extra = self._extra(captions)
        readings = self.model.read_captions(text, list(captions))
        rm, spread = self.model.rewards(audio, text, extra, group_size, readings=readings)
        if self.other_clips is None:
            return rm, spread, torch.zeros(len(captions))
        return rm, spread, self.model.caption_prior(self.other_clips.to(audio.device), text, extra, readings=readings)

    def _extra(self, captions: Sequence[str]) -> torch.Tensor:
        return fluency_features(captions) if self.model.config.fluency_features else torch.zeros(len(captions), 0)

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor, captions: Sequence[str], no_eos: torch.Tensor, group_size: int = 1,
                 clip_ids: Sequence[str] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total [n], {term: [n]}) for caption k of the clip whose audio embedding is audio[k] (and id clip_ids[k]);
        rows in consecutive groups of `group_size` captions of one clip get the group-relative ensemble spread."""
        t = self.terms
        text = self.encoder.embed_text(list(captions))
        audio = audio.to(text.device)
        rm, spread, prior = self.preference_scores(audio, text, captions, clip_ids, group_size)
        words = torch.tensor([len(caption_words(c)) for c in captions], dtype=torch.float32)
        terms = {
            "rm": rm,
            "caption_prior": prior,
            "uncertainty": spread,
            "clap": (audio * text).sum(dim=-1),
            "repeated_ngrams": torch.tensor([float(repeated_ngrams(c, t.repetition_ngram)) for c in captions]),
            "bad_ending": torch.tensor([float(has_truncated_ending(c)) for c in captions]).maximum(
                no_eos.float().cpu()),
            "words_out_of_bounds": (t.min_words - words).clamp(min=0) + (words - t.max_words).clamp(min=0),
        }
        total = (terms["rm"] - t.clip_relative_coef * terms["caption_prior"] - t.uncertainty_coef * terms["uncertainty"]
                 + t.clap_coef * terms["clap"]
                 - t.repetition_coef * terms["repeated_ngrams"] - t.truncation_penalty * terms["bad_ending"]
                 - t.length_penalty * terms["words_out_of_bounds"])
        return total, terms
