"""The demo's evaluation stages: the baseline on held-out source and target clips, and every system on the
held-out target test clips — captioned, scored and compared by the same functions as `prefcap eval`
(eval/systems.py), with the demo's extras around them: each round's policy, the two panels' independence, what
each system's captions exploit and the sounds each system names."""


from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from prefcap.captioners.base import Decoding
from prefcap.captioners.infer import caption_clips
from prefcap.captioners.load import load_captioner
from prefcap.data.records import Clip, read_captions, read_clips, references_by_clip, write_jsonl
from prefcap.encoders.base import AudioTextEncoder
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.eval.metrics import compute_metrics
from prefcap.eval.systems import caption_systems, evaluate_systems, pair_outcomes, pairwise_records, write_captions
from prefcap.reward.model import RewardModel
from prefcap.synth import panels
from prefcap.synth.agreement import pairwise_agreement
from prefcap.synth.independence import (
    events_named,
    exploit_rates,
    panel_independence,
    rare_classes,
    system_output_pairs,
)

# the systems the demo compares on the held-out target test clips, and which pairs the panels judge
# (rlhf: the policy of the round the select stage chose on `val`; rl/ is round 1's)
SYSTEMS = {"baseline": "captioner-baseline", "rlhf": "rl/captioner", "supervised": "supervised/captioner",
           "dpo": "dpo/captioner"}


# an event class is rare when fewer than this share of `source` clips hold it (what the baseline learnt from)
RARE_SHARE = 0.05
COMPARISONS = (("rlhf", "baseline"), ("rlhf", "supervised"), ("supervised", "baseline"), ("dpo", "baseline"),
               ("rlhf", "dpo"))


def evaluate_baseline(out: Path, tmp: Path, seed: int, progress: bool, device: str) -> None:
    """The baseline on held-out source and target clips: caption metrics, how the simulated annotators rate
    its captions against target references, and how much they agree on pairs of its own sampled captions."""
    captioner = load_captioner(out / "captioner-baseline", device=device)
    metrics: dict = {}
    judges = {name: panels.build(name, seed) for name in panels.PANELS}
    rng = np.random.default_rng(seed)
    for domain in ("source", "target"):
        folder = out / "data" / domain
        test = [c for c in read_clips(folder / "clips.jsonl") if c.split == "test"]
        references = references_by_clip(read_captions(folder / "captions.jsonl"), source=None)
        captions, _ = caption_clips(captioner, test, "baseline", decoding=Decoding(mode="greedy"), progress=progress)
        write_jsonl(tmp / f"captions-{domain}-test.jsonl", captions)
        greedy = [caption.text for caption in captions]
        scores = compute_metrics({c.id: t for c, t in zip(test, greedy, strict=True)},
                                 {c.id: references[c.id] for c in test}, spice=False)
        # a reference vs the baseline's caption, judged by each panel's majority (ties reported, not counted)
        verdicts = {}
        for name, panel in judges.items():
            outcomes = [panel.majority(clip, references[clip.id][int(rng.integers(5))], caption)
                        for clip, caption in zip(test, greedy, strict=True)]
            wins, losses = outcomes.count("a"), outcomes.count("b")
            verdicts[name] = {"reference_wins": wins, "baseline_wins": losses, "ties": outcomes.count("tie"),
                              "reference_win_rate": wins / max(1, wins + losses)}
        metrics[domain] = {"clips": len(test), "metrics": scores, "reference_vs_baseline": verdicts}
        if domain == "target":
            sampled, _ = caption_clips(captioner, test, "baseline", n=2, progress=progress,
                                       decoding=Decoding(mode="sample", temperature=1.0))
            pairs = [(clip, sampled[2 * k].text, sampled[2 * k + 1].text) for k, clip in enumerate(test)
                     if sampled[2 * k].text != sampled[2 * k + 1].text]
            metrics["annotator_agreement_on_baseline_samples"] = {
                "pairs": len(pairs), **{name: pairwise_agreement(p.annotators, pairs) for name, p in judges.items()}}
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))


def evaluate_demo_systems(out: Path, tmp: Path, systems: dict[str, str], rounds: dict[str, str], reward_dir: Path,
                          seed: int, progress: bool, device: str) -> None:
    """Every system's and every round's policy's greedy captions of the held-out target test clips (kept as
    captions-<name>.jsonl), scored against the target references (never seen by RL) with the last round's reward
    model and CLAP: `demo_metrics`."""
    clips = [c for c in read_clips(out / "data" / "target" / "clips.jsonl") if c.split == "test"]
    references = references_by_clip(read_captions(out / "data" / "target" / "captions.jsonl"), source=None)
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    audio = EmbeddingCache(out / "cache", encoder).embed_clips(clips, progress=False)
    reward = RewardModel.load(reward_dir, encoder=encoder)
    captions = caption_systems({name: out / folder for name, folder in {**systems, **rounds}.items()}, clips,
                               device=device, progress=progress)
    write_captions(tmp, captions)
    rare = rare_classes(read_clips(out / "data" / "source" / "clips.jsonl"), RARE_SHARE)
    metrics = demo_metrics(clips, captions, list(systems), list(rounds), references, rare, encoder=encoder,
                           audio=audio, reward=reward, seed=seed)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))


def demo_metrics(clips: Sequence[Clip], captions: Mapping[str, Mapping[str, str]], systems: Sequence[str],
                 rounds: Sequence[str], references: Mapping[str, list[str]], rare: set[str], *,
                 encoder: AudioTextEncoder | None = None, audio: torch.Tensor | None = None,
                 reward: RewardModel | None = None, seed: int = 0) -> dict:
    """The eval stage's record from every system's and round's captions: `evaluate_systems` (as `prefcap eval`)
    on the systems with both simulated panels — the evaluation panel decides; the training panel is shown beside
    it — then each round's policy against the baseline by the evaluation panel (for the record: nothing is chosen
    by it), the panels' independence on the systems' outputs, exploit rates, and the share of each clip's sounds
    each system names (`rare` classes and common ones apart)."""
    outputs = {name: captions[name] for name in systems}
    built = {name: panels.build(name, seed) for name in ("eval", "train")}
    summary = evaluate_systems(clips, outputs, COMPARISONS, {n: p.majority for n, p in built.items()},
                               references=references, encoder=encoder, audio=audio, reward=reward, seed=seed)
    per_round = pairwise_records(pair_outcomes(clips, captions, [(name, "baseline") for name in rounds],
                                               {"eval": built["eval"].majority}, seed))
    judges = {"system_outputs": panel_independence(built["train"], built["eval"],
                                                   system_output_pairs(clips, outputs, COMPARISONS), examples=5),
              "exploit_rates": {name: exploit_rates(clips, texts) for name, texts in outputs.items()}}
    named = {name: events_named(clips, texts, rare) for name, texts in outputs.items()}
    named["references"] = events_named(clips, {c.id: references[c.id][0] for c in clips}, rare)
    return {"clips": len(clips), **summary, "judges": judges, "rounds": per_round,
            "events_named": {"rare_classes": sorted(rare), "rare_share": RARE_SHARE, "systems": named}}
