"""Several captioning systems on the same test clips: metrics per system, and blind pairwise preference.

Per system (DESIGN.md's `systems` record): reference metrics where references exist (CIDEr-D, SBERT similarity),
the reward model's mean raw score `rm_score`, the CLAP audio–text cosine `clap_score`, and the degeneration
statistics. Per pair of systems and judge: one outcome per clip (eval/pairwise.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from prefcap.data.records import Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.eval.metrics import compute_metrics
from prefcap.eval.pairwise import Judge, bradley_terry, clip_outcomes, summarise
from prefcap.reward.features import fluency_features
from prefcap.reward.model import RewardModel
from prefcap.text import diversity_stats

SYSTEM_FIELDS = ("cider_d", "sbert_sim", "rm_score", "clap_score", "repetition_rate", "truncated_ending_rate",
                 "distinct_2", "mean_words")


def system_scores(clips: Sequence[Clip], captions: Mapping[str, str], references: Mapping[str, list[str]] | None,
                  encoder: AudioTextEncoder | None, audio: torch.Tensor | None,
                  reward: RewardModel | None) -> dict[str, float | None]:
    """The DESIGN.md fields (plus BLEU/METEOR/ROUGE-L/distinct-1) for one system; `audio[k]` embeds clips[k] (by
    `encoder`). A field that cannot be computed (no references, no encoder, no reward model) is None."""
    texts = [captions[c.id] for c in clips]
    scores: dict[str, float | None] = {}
    if references:
        scores.update(compute_metrics({c.id: captions[c.id] for c in clips}, {c.id: references[c.id] for c in clips},
                                      spice=False))
    else:
        scores.update(diversity_stats(texts))
        scores.update(cider_d=None, sbert_sim=None)
    if encoder is None:
        return {**scores, "clap_score": None, "rm_score": None}
    text = encoder.embed_text(texts)
    scores["clap_score"] = float((audio * text).sum(dim=-1).mean())
    if reward is not None:
        reward.check_encoder(encoder.id)
        extra = fluency_features(texts) if reward.config.fluency_features else torch.zeros(len(texts), 0)
        scores["rm_score"] = float(reward.rewards(audio, text, extra, captions=texts)[0].mean())
    else:
        scores["rm_score"] = None
    return scores


def compare_systems(clips: Sequence[Clip], systems: Mapping[str, Mapping[str, str]],
                    pairs: Sequence[tuple[str, str]], judges: Mapping[str, Judge],
                    seed: int = 0) -> tuple[list[dict], list[dict]]:
    """A `pairwise` record for every (a, b) in `pairs` and every judge, and the Bradley–Terry `ranking` of the
    systems by the first judge's outcomes (the one that decides; the others are shown beside it)."""
    outcomes = {(a, b, name): clip_outcomes(clips, systems[a], systems[b], judge, seed)
                for a, b in pairs for name, judge in judges.items()}
    records = [summarise(o, a=a, b=b, judge_name=name) for (a, b, name), o in outcomes.items()]
    deciding = next(iter(judges))
    ranking = bradley_terry([(a, b, o) for (a, b, name), o in outcomes.items() if name == deciding], list(systems),
                            seed=seed)
    return records, ranking
