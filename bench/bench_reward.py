"""Benchmark: reward scoring, on the demo's models (run `make demo` first).

Scores the four systems' captions of the 300 target test clips (1,200 captions, from `eval/`) with the RL reward
(the reward model + CLAP term + guards, the demo's RL settings). A pass = embed the clips' audio through the
embedding cache, then score every caption. The first pass starts from an empty cache, the second reuses it;
`--repeats` fresh caches, medians reported. Then the scoring alone, with cached audio embeddings, for each reward
model the demo saved: the one RL uses (`reward/`) and each variant (`reward/variants/*`, e.g. the paper's head).
Merges its figures into bench/results.json under "reward".
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from record import record

from prefcap.data.records import read_captions, read_clips
from prefcap.demo import RL, SYSTEMS
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.provenance import machine
from prefcap.reward.model import RewardModel
from prefcap.rl.rewards import CaptionReward


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a finished demo run folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    if not (args.run / "eval" / "metrics.json").is_file():
        raise SystemExit(f"{args.run} holds no finished demo: run `make demo` first")
    torch.set_num_threads(2)
    encoder = ClapEncoder.from_pretrained(args.run / "encoder", device="cpu")
    target = read_clips(args.run / "data" / "target" / "clips.jsonl")
    # the RL clips: the clip-relative term's other clips come from them, as in RL
    pool = EmbeddingCache(args.run / "cache", encoder).embed_clips([c for c in target if c.split == "rl"],
                                                                  progress=False)
    terms = RL["demo"].reward_terms
    reward = CaptionReward(RewardModel.load(args.run / "reward", encoder=encoder), encoder, terms, clip_pool=pool)
    clips = {c.id: c for c in target if c.split == "test"}
    captions = [c for name in SYSTEMS for c in read_captions(args.run / "eval" / f"captions-{name}.jsonl")]
    owners = [clips[c.clip_id] for c in captions]
    texts = [c.text for c in captions]
    unique = list({c.id: c for c in owners}.values())
    row = {c.id: k for k, c in enumerate(unique)}
    no_truncation = torch.zeros(len(texts), dtype=torch.bool)

    def one_pass(cache: EmbeddingCache, scorer: CaptionReward = reward) -> tuple[float, float]:
        start = time.perf_counter()
        audio = cache.embed_clips(unique, progress=False)
        embedded = time.perf_counter()
        scorer(audio[torch.as_tensor([row[c.id] for c in owners])], texts, no_truncation)
        return time.perf_counter() - start, time.perf_counter() - embedded

    first, second, scoring = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache = EmbeddingCache(Path(tmp), encoder)
            total, score = one_pass(cache)
            first.append(total)
            total, score = one_pass(cache)
            second.append(total)
            scoring.append(score)
    figures = {"clips": len(unique), "captions": len(texts), "repeats": args.repeats,
               "first_pass_seconds": statistics.median(first), "second_pass_seconds": statistics.median(second),
               "cache_speedup": statistics.median(first) / statistics.median(second),
               "captions_scored_per_second": len(texts) / statistics.median(scoring), "machine": machine()}
    heads = {"default": args.run / "reward",
             **{folder.name: folder for folder in sorted((args.run / "reward" / "variants").glob("*"))}}
    per_head = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp), encoder)
        cache.embed_clips(unique, progress=False)
        for name, folder in heads.items():
            scorer = CaptionReward(RewardModel.load(folder, encoder=encoder), encoder, terms, clip_pool=pool)
            seconds = statistics.median(one_pass(cache, scorer)[1] for _ in range(args.repeats))
            per_head[name] = len(texts) / seconds
    figures["captions_scored_per_second_by_head"] = per_head
    record(args.results, "reward", figures)
    print(f"reward scoring ({len(texts)} captions of {len(unique)} clips; median of {args.repeats}): "
          f"{figures['captions_scored_per_second']:.0f} captions/s with cached audio embeddings; a pass (embed audio + "
          f"score) {figures['first_pass_seconds']:.2f} s with an empty cache, {figures['second_pass_seconds']:.2f} s "
          f"with it filled ({figures['cache_speedup']:.1f}x); {figures['machine']}")
    print("captions scored per second, by reward model: "
          + ", ".join(f"{name} {speed:.0f}" for name, speed in per_head.items()))


if __name__ == "__main__":
    main()
