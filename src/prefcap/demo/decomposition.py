"""--decomposition: the gap to supervised taken apart by diagnostic systems (never the method): RL with the
training panel's own noise-free score as the reward (what a perfect reward model would give), RL against the
paper's frozen-embedding head trained on the same judgments, and supervised fine-tuning on the references of
the first N `rl` clips (a learning curve; `supervised` is the one on all of them)."""


from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from prefcap.captioners.base import Decoding
from prefcap.captioners.infer import caption_clips
from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import SFTConfig, train_captioner
from prefcap.data.records import Clip, read_captions, read_clips, references_by_clip
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.errors import PrefcapError
from prefcap.eval.metrics import compute_metrics
from prefcap.eval.systems import caption_systems, pair_outcomes, pairwise_records, write_captions
from prefcap.prefs.store import Store
from prefcap.reward.jobs import train_from_store
from prefcap.reward.model import RewardConfig, RewardModel
from prefcap.rl.jobs import run_rl
from prefcap.rl.rewards import CaptionReward, RewardTerms
from prefcap.rl.trainer import RLConfig
from prefcap.synth import panels
from prefcap.synth.independence import (
    events_named,
)
from prefcap.synth.panel import Panel


class PanelReward(CaptionReward):
    """rlhf-oracle's reward (a diagnostic): the training panel's own noise-free score of a caption for its clip —
    each annotator's quality over their noise temperature, the scale of a Bradley–Terry logit, averaged — in place
    of the reward model's, times `scale`, with every other term (CLAP, guards) as RL has them. What RL reaches with
    it bounds what a better reward model could give; the rest of the gap to supervised is RL's and exploration's."""

    def __init__(self, panel: Panel, clips: dict[str, Clip], encoder: ClapEncoder, terms: RewardTerms,
                 scale: float = 1.0) -> None:
        self.panel, self.clips, self.scale = panel, clips, scale
        self.model, self.encoder, self.terms, self.labelled_max = None, encoder, terms, None

    def panel_scores(self, captions: Sequence[str], clip_ids: Sequence[str]) -> torch.Tensor:
        return torch.tensor([np.mean([a.listener.quality(caption, self.clips[clip_id], a.weights) / a.temperature
                                      for a in self.panel.annotators])
                             for caption, clip_id in zip(captions, clip_ids, strict=True)], dtype=torch.float32)

    def preference_scores(self, audio: torch.Tensor, text: torch.Tensor, captions: Sequence[str],
                          clip_ids: Sequence[str] | None,
                          group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the panel's scaled score, no spread, no caption prior: the panel's score is already the clip's)."""
        if clip_ids is None:
            raise PrefcapError("the panel's score needs the clip of every caption")
        none = torch.zeros(len(captions))
        return self.scale * self.panel_scores(captions, clip_ids), none, none


def align_with_oracle(out: Path, tmp: Path, config: RLConfig, reward_dir: Path, eval_clips: int, seed: int,
                      progress: bool, device: str) -> None:
    """rlhf-oracle: RL from the baseline for all of RLHF's steps with PanelReward, scaled so that its spread over
    the baseline's greedy captions of the `val` clips is the last reward model's there (the other terms then weigh
    what they weigh in RLHF)."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    target = out / "data" / "target" / "clips.jsonl"
    clips = read_clips(target)
    val = [c for c in clips if c.split == "val"]
    written, _ = caption_clips(load_captioner(out / "captioner-baseline", device=device), val, "baseline",
                               decoding=Decoding(mode="greedy"), progress=False)
    texts = [c.text for c in written]
    cache = EmbeddingCache(out / "cache", encoder)
    model = CaptionReward(RewardModel.load(reward_dir, encoder=encoder), encoder, config.reward_terms,
                          clip_pool=cache.embed_clips([c for c in clips if c.split == "rl"], progress=False))
    audio = cache.embed_clips(val, progress=False)
    learned = model.preference_scores(audio, encoder.embed_text(texts), texts, None, 1)[0]
    oracle = PanelReward(panels.build("train", seed), {c.id: c for c in clips}, encoder, config.reward_terms)
    scale = float(learned.std() / oracle.panel_scores(texts, [c.clip_id for c in written]).std())
    oracle.scale = scale
    run_rl(out / "captioner-baseline", oracle, encoder, target, tmp / "rl", config, split="rl", eval_split="val",
           eval_clips=eval_clips, cache_root=out / "cache", progress=progress, device=device)
    (tmp / "oracle.json").write_text(json.dumps({"scale": scale, "scaled_on": len(texts)}, indent=2))


def align_with_paper_head(out: Path, tmp: Path, config: RLConfig, paper: RewardConfig, store_file: Path,
                          eval_clips: int, progress: bool, device: str) -> None:
    """rlhf-paper: the paper's head (frozen CLAP embeddings, [audio; text] MLP) trained on every judgment of every
    round, then RL from the baseline against it for all of RLHF's steps (one round: it never sees its own
    policy's captions judged)."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    store = Store(store_file, create=False)
    train_from_store(store, encoder, tmp / "reward", paper, cache_root=out / "cache", progress=progress)
    store.close()
    run_rl(out / "captioner-baseline", tmp / "reward", encoder, out / "data" / "target" / "clips.jsonl", tmp / "rl",
           config, split="rl", eval_split="val", eval_clips=eval_clips, cache_root=out / "cache", progress=progress,
           device=device)


def train_supervised_on(out: Path, tmp: Path, n: int, config: SFTConfig, seed: int, progress: bool,
                        device: str) -> None:
    """`supervised` on the references of n `rl` clips (drawn with the seed): one point of the learning curve."""
    target = out / "data" / "target"
    clips = read_clips(target / "clips.jsonl")
    pool = [c for c in clips if c.split == "rl"]
    chosen = [pool[k] for k in sorted(np.random.default_rng([seed, n]).choice(len(pool), n, replace=False))]
    captions = read_captions(target / "captions.jsonl")
    train_captioner(load_captioner(out / "captioner-baseline", device=device), chosen, captions,
                    [c for c in clips if c.split == "val"], captions, tmp / "captioner", config, progress,
                    device=device)


def diagnostic_systems(curve: Sequence[int]) -> dict[str, str]:
    """{diagnostic system: its captioner's folder under decomposition/<system>/}."""
    return {"rlhf-oracle": "rl/captioner", "rlhf-paper": "rl/captioner",
            **{f"supervised-{n}": "captioner" for n in curve}}


def evaluate_diagnostics(out: Path, tmp: Path, curve: Sequence[int], seed: int, progress: bool,
                         device: str) -> None:
    """The diagnostic systems on the test clips, by the evaluation panel: each against the baseline, against
    `supervised` and against RLHF (their captions as the eval stage wrote them), with their CIDEr-D and the sounds
    they name — and the supervised learning curve, so that RLHF's judgments can be set against a number of
    reference-captioned clips. Captioned and compared by eval/systems.py, as in `prefcap eval`."""
    clips = [c for c in read_clips(out / "data" / "target" / "clips.jsonl") if c.split == "test"]
    judge = panels.build("eval", seed).majority
    named = json.loads((out / "eval" / "metrics.json").read_text())["events_named"]
    references = references_by_clip(read_captions(out / "data" / "target" / "captions.jsonl"), source=None)
    shown = caption_systems({name: out / "eval" / f"captions-{name}.jsonl" for name in ("baseline", "rlhf",
                                                                                          "supervised")}, clips)
    diagnostics = caption_systems({name: out / "decomposition" / name / folder
                                   for name, folder in diagnostic_systems(curve).items()}, clips, device=device,
                                  progress=progress)
    write_captions(tmp, diagnostics)
    pairs = [(name, other) for name in diagnostics for other in shown]
    verdicts = {(r["a"], r["b"]): r for r in pairwise_records(pair_outcomes(clips, {**diagnostics, **shown}, pairs,
                                                                             {"eval": judge}, seed))}
    systems = {}
    for name, texts in diagnostics.items():
        metrics = compute_metrics(texts, {c.id: references[c.id] for c in clips}, spice=False)
        systems[name] = {**{f"vs_{other}": verdicts[(name, other)] for other in shown}, "cider_d": metrics["cider_d"],
                         "mean_words": metrics["mean_words"],
                         "events_named": events_named(clips, texts, set(named["rare_classes"]))}
    points = [{"clips": n, **systems[f"supervised-{n}"]} for n in curve]
    (tmp / "metrics.json").write_text(json.dumps({"systems": systems, "supervised_curve": points}, indent=2))
