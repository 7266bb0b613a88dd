"""Preference rounds: how the judgment budget and RL's steps are split over them, each later round's judgments,
and the choice of RLHF's final policy among the rounds' (on `val`, by the last reward model)."""


from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from prefcap.captioners.base import Decoding
from prefcap.captioners.infer import caption_clips
from prefcap.captioners.load import load_captioner
from prefcap.data.records import Clip, read_clips
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.prefs.agreement import agreement_report
from prefcap.prefs.pairs import PairsConfig, build_pairs
from prefcap.prefs.simulate import simulate
from prefcap.prefs.store import Store
from prefcap.reward.data import PreferencePair
from prefcap.reward.model import RewardModel
from prefcap.rl.rewards import CaptionReward, RewardTerms

ROUNDS = 2
# With R rounds, round 1 takes FIRST_ROUND_SHARE of the pairs (the same mix) and the later rounds split the rest:
# pairs of the current RL policy's and its predecessor's captions, with LATER_CONTRAST_FRACTION of them contrast
# pairs of those captions.
FIRST_ROUND_SHARE = 0.6
LATER_CONTRAST_FRACTION = 0.2


def round_stage(kind: str, r: int) -> str:
    """A round's stage name: round 1's are plain ("rl"), later ones carry the round ("rl_round_2")."""
    return kind if r == 1 else f"{kind}_round_{r}"


def round_dir(out: Path, r: int) -> Path:
    """Where round r's prefs/, reward/ and rl/ live: the run folder for round 1, round-R/ after it."""
    return out if r == 1 else out / f"round-{r}"


def round_budgets(pairs: PairsConfig, rounds: int) -> list[PairsConfig]:
    """The pairs config of each round: one round spends the whole budget; with more, round 1 spends
    FIRST_ROUND_SHARE of it and the later rounds split the rest evenly (the total never changes)."""
    if rounds == 1:
        return [pairs]
    first = round(FIRST_ROUND_SHARE * pairs.num_pairs)
    later = [len(part) for part in np.array_split(np.arange(pairs.num_pairs - first), rounds - 1)]
    return [replace(pairs, num_pairs=first),
            *(replace(pairs, num_pairs=n, contrast_fraction=LATER_CONTRAST_FRACTION, seed=pairs.seed + 1000 * r)
              for r, n in enumerate(later, start=2))]


def round_steps(total: int, rounds: int) -> list[int]:
    """RL's optimizer steps per round: the total split evenly, so more rounds never mean more RL."""
    return [len(part) for part in np.array_split(np.arange(total), rounds)]



def write_preference_summary(store: Store, tmp: Path, counts: dict) -> None:
    """summary.json of a preference stage: its counts and the agreement of every judgment in the store so far."""
    quality = agreement_report(store.judgment_rows())
    store.close()
    summary = {**counts, "fleiss_kappa": quality["fleiss_kappa"],
               "mean_cohen_kappa": float(np.mean([a["mean_cohen_kappa"] for a in quality["annotators"]]))}
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2))


def round_policy_name(out: Path, r: int) -> tuple[str, Path]:
    """(system name, captioner folder) of the policy round r leaves: the baseline for r = 0."""
    if r == 0:
        return "baseline", out / "captioner-baseline"
    return f"rlhf-round-{r}", round_dir(out, r) / "rl" / "captioner"


def collect_round_preferences(out: Path, tmp: Path, r: int, pairs_config: PairsConfig, overlap: int,
                              clips: list[Clip], seed: int, progress: bool, device: str) -> None:
    """Round r's judgments: every earlier judgment (the previous store, copied whole), then pairs of the captions
    of the policy round r − 1 left and of its predecessor on the same `prefs` clips — within one policy and across
    the two — judged by the training panel through the store, as in round 1."""
    copy_store(round_dir(out, r - 1) / "prefs" / "prefs.sqlite", tmp / "prefs.sqlite")
    captioners = dict(round_policy_name(out, k) for k in (r - 1, r - 2))
    store = Store(tmp / "prefs.sqlite", create=False)
    pairs = build_pairs(store, {name: load_captioner(folder, device=device) for name, folder in captioners.items()},
                        clips, pairs_config, progress=progress)
    judged = simulate(store, "train", seed=seed, overlap=overlap, progress=progress)
    write_preference_summary(store, tmp, {**pairs, **judged, "overlap": overlap, "round": r,
                                          "systems": list(captioners)})


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite judgment store (the backup API: the write-ahead log included)."""
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    original.close()
    copy.close()


def pair_key(pair: PreferencePair) -> tuple[str, str, str]:
    return (pair.clip_id, *sorted((pair.caption_a, pair.caption_b)))


def select_policy(out: Path, tmp: Path, rounds: int, reward_dir: Path, terms: RewardTerms, progress: bool,
                  device: str) -> None:
    """RLHF's final checkpoint, chosen among the rounds' policies by the last round's reward (its guards included)
    on the greedy captions of every target `val` clip — never by a panel or on test — as supervised fine-tuning's
    is chosen by its validation loss."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    target = read_clips(out / "data" / "target" / "clips.jsonl")
    clips = [c for c in target if c.split == "val"]
    cache = EmbeddingCache(out / "cache", encoder)
    reward = CaptionReward(RewardModel.load(reward_dir, encoder=encoder), encoder, terms,
                           clip_pool=cache.embed_clips([c for c in target if c.split == "rl"], progress=False))
    audio = cache.embed_clips(clips, progress=False)
    scores = {}
    for r in range(1, rounds + 1):
        name, folder = round_policy_name(out, r)
        written, _ = caption_clips(load_captioner(folder, device=device), clips, name,
                                   decoding=Decoding(mode="greedy"), progress=progress)
        texts = [c.text for c in written]
        total, parts = reward(audio, texts, torch.zeros(len(texts), dtype=torch.bool))
        scores[str(folder.parent.relative_to(out))] = {"round": r, "reward": float(total.mean()),
                                                       "rm": float(parts["rm"].mean())}
    selected = max(scores, key=lambda folder: scores[folder]["reward"])
    (tmp / "selection.json").write_text(json.dumps({"selected": selected, "clips": len(clips), "scores": scores},
                                                   indent=2))


