"""Benchmark: RL throughput and the anatomy of a step, on the demo's trained models (run `make demo` first).

Runs `--steps` RL steps of the demo's configuration (no held-out evaluation, no checkpoints) `--repeats` times,
each from the baseline, and reports the median captions sampled and scored per second and the share of the step
spent generating, scoring (reward model + guards), scoring with the reference policy, and updating the policy.
Merges its figures into bench/results.json under "rl".
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from record import record

from prefcap.demo import RL
from prefcap.encoders.clap import ClapEncoder
from prefcap.provenance import machine
from prefcap.rl.recipes import run_rl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=Path("runs/demo"), help="a finished demo run folder")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    if not (args.run / "reward" / "reward_config.json").is_file():
        raise SystemExit(f"{args.run} holds no finished demo (its reward model is missing): run `make demo` first")
    torch.set_num_threads(2)
    config = replace(RL["demo"], max_steps=args.steps, save_steps=args.steps, warmup_steps=0)
    encoder = ClapEncoder.from_pretrained(args.run / "encoder", device="cpu")
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run_rl(args.run / "captioner-baseline", args.run / "reward", encoder,
                               args.run / "data" / "target" / "clips.jsonl", tmp, config, eval_split=None,
                               cache_root=args.run / "cache", progress=False, device="cpu"))
    speeds = [r["captions_per_second"] for r in runs]
    shares = {part: statistics.median(r["time_share"][part] for r in runs) for part in runs[0]["time_share"]}
    figures = {"rl_steps": args.steps, "rl_repeats": args.repeats, "rl_batch_clips": config.batch_size,
               "rl_num_generations": config.num_generations, "rl_captions_per_second": statistics.median(speeds),
               "rl_captions_per_second_range": [min(speeds), max(speeds)],
               "rl_seconds_per_step": statistics.median(r["seconds"] / args.steps for r in runs),
               "rl_time_share": shares, "machine": machine()}
    record(args.results, "rl", figures)
    print(f"RL ({config.algorithm}, {config.batch_size} clips x {config.num_generations} samples per step): "
          f"{figures['rl_captions_per_second']:.0f} captions/s (median of {args.repeats}; range "
          f"{min(speeds):.0f}-{max(speeds):.0f}), {figures['rl_seconds_per_step']:.2f} s/step; time share "
          + ", ".join(f"{part} {share:.0%}" for part, share in shares.items()) + f"; {figures['machine']}")


if __name__ == "__main__":
    main()
