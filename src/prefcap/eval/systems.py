"""Several captioning systems on the same test clips: metrics per system, and blind pairwise preference — the one
evaluation path that `prefcap eval` (eval/run.py) and the demo's evaluation stages both go through.

Per system (DESIGN.md's `systems` record): reference metrics where references exist (CIDEr-D, SBERT similarity),
the reward model's mean raw score `rm_score`, the CLAP audio–text cosine `clap_score`, and the degeneration
statistics. Per pair of systems and judge: one outcome per clip (eval/pairwise.py); with more than two systems, a
Bradley–Terry ranking by the first judge (the one that decides; the others are shown beside it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from prefcap.captioners.base import Decoding
from prefcap.captioners.infer import caption_clips
from prefcap.captioners.load import load_captioner
from prefcap.data.records import Caption, Choice, Clip, first_caption_by_clip, read_captions, write_jsonl
from prefcap.encoders.base import AudioTextEncoder
from prefcap.errors import PrefcapError
from prefcap.eval.metrics import compute_metrics
from prefcap.eval.pairwise import Judge, bradley_terry, clip_outcomes, summarise
from prefcap.reward.features import fluency_features
from prefcap.reward.model import RewardModel
from prefcap.text import diversity_stats

SYSTEM_FIELDS = ("cider_d", "sbert_sim", "rm_score", "clap_score", "repetition_rate", "truncated_ending_rate",
                 "distinct_2", "mean_words")

Outcomes = dict[tuple[str, str, str], list[Choice]]  # (a, b, judge name) -> one outcome per clip, from a's side


def caption_systems(sources: Mapping[str, str | Path], clips: Sequence[Clip], *, device: str | None = None,
                    progress: bool = True) -> dict[str, dict[str, str]]:
    """{name: captioner folder / hub id, or a captions .jsonl (each clip's first caption)} -> {name: {clip id:
    caption}} in clip order: every system captioned greedily the same way, and none missing a clip (a comparison
    on fewer clips would not be the same test)."""
    systems: dict[str, dict[str, str]] = {}
    for name, source in sources.items():
        if str(source).endswith(".jsonl"):
            captions = first_caption_by_clip(read_captions(source))
        else:
            written, rejected = caption_clips(load_captioner(source, device=device), clips, name,
                                              decoding=Decoding(mode="greedy"), progress=progress)
            if rejected:
                raise PrefcapError(f"system {name!r}: {len(rejected)} clips could not be captioned: "
                                   f"{rejected[0]['message']}")
            captions = {c.clip_id: c.text for c in written}
        missing = [c.id for c in clips if c.id not in captions]
        if missing:
            raise PrefcapError(f"system {name!r} has no caption for {len(missing)} of the clips (e.g. {missing[0]!r})")
        systems[name] = {c.id: captions[c.id] for c in clips}
    return systems


def write_captions(folder: str | Path, systems: Mapping[str, Mapping[str, str]]) -> None:
    """Each system's captions to folder/captions-<name>.jsonl (what the report and later stages read back)."""
    for name, captions in systems.items():
        write_jsonl(Path(folder) / f"captions-{name}.jsonl",
                    [Caption(clip_id=clip_id, text=text, source=name) for clip_id, text in captions.items()])


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


def pair_outcomes(clips: Sequence[Clip], systems: Mapping[str, Mapping[str, str]], pairs: Sequence[tuple[str, str]],
                  judges: Mapping[str, Judge], seed: int = 0) -> Outcomes:
    """Every (a, b) in `pairs` judged on every clip by every judge (pairs outer, judges inner: the order of the
    `pairwise` records)."""
    return {(a, b, name): clip_outcomes(clips, systems[a], systems[b], judge, seed)
            for a, b in pairs for name, judge in judges.items()}


def pairwise_records(outcomes: Outcomes) -> list[dict]:
    """A `pairwise` record for each (a, b, judge) outcome list, in its order."""
    return [summarise(o, a=a, b=b, judge_name=name) for (a, b, name), o in outcomes.items()]


def summarise_systems(clips: Sequence[Clip], systems: Mapping[str, Mapping[str, str]], outcomes: Outcomes, *,
                      references: Mapping[str, list[str]] | None = None, encoder: AudioTextEncoder | None = None,
                      audio: torch.Tensor | None = None, reward: RewardModel | None = None,
                      seed: int = 0) -> dict:
    """{"systems": each system's scores, "pairwise": a record per outcome list, "ranking": Bradley–Terry by the
    first outcome list's judge (with more than two systems and some outcomes; else [])}."""
    scores = {name: system_scores(clips, captions, references, encoder, audio, reward)
              for name, captions in systems.items()}
    deciding = next(iter(outcomes))[2] if outcomes else None
    ranked = [(a, b, o) for (a, b, name), o in outcomes.items() if name == deciding and o]
    ranking = bradley_terry(ranked, list(systems), seed=seed) if len(systems) > 2 and ranked else []
    return {"systems": scores, "pairwise": pairwise_records(outcomes), "ranking": ranking}


def evaluate_systems(clips: Sequence[Clip], systems: Mapping[str, Mapping[str, str]],
                     pairs: Sequence[tuple[str, str]], judges: Mapping[str, Judge], *,
                     references: Mapping[str, list[str]] | None = None, encoder: AudioTextEncoder | None = None,
                     audio: torch.Tensor | None = None, reward: RewardModel | None = None, seed: int = 0) -> dict:
    """Systems' captions of the same clips -> {"systems", "pairwise", "ranking"}: every pair by every judge, ranked
    by the first judge (`prefcap eval` and the demo both report this)."""
    if not judges:
        raise PrefcapError("no judge to compare the systems with")
    return summarise_systems(clips, systems, pair_outcomes(clips, systems, pairs, judges, seed),
                             references=references, encoder=encoder, audio=audio, reward=reward, seed=seed)
