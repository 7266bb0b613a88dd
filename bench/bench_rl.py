"""Benchmark: RL throughput and the anatomy of a step, on the demo's trained models (run `make demo` first).

Runs `--steps` RL steps of the demo's configuration (no held-out evaluation, no checkpoints) `--repeats` times,
each from the baseline, and reports the median captions sampled and scored per second and the share of the step
spent generating, scoring (reward model + guards), scoring with the reference policy, and updating the policy.
Then it times each irreducible part of a step alone on the same batches the runs drew (generate, reward scoring,
reference log-probs, one policy forward + backward, the optimizer step) and reports
`rl_overhead_ratio` = (RL step time) / (sum of those parts): what the loop itself adds (logging, bookkeeping,
the one checkpoint at the end). The same RL steps with the paper's reward head (`reward/variants/`, saved by the
demo) give `rl_step_ratio_vs_paper_head`: what the default reward model (a fine-tuned text side) costs a step.
Merges its figures into bench/results.json under "rl".
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from record import record

from prefcap.captioners.base import Decoding
from prefcap.captioners.load import load_captioner
from prefcap.data.records import read_clips
from prefcap.demo import PAPER_VARIANT, RL, variant_slug
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.provenance import machine
from prefcap.reward.model import RewardModel
from prefcap.rl.data import load_rl_audio
from prefcap.rl.jobs import run_rl
from prefcap.rl.rewards import CaptionReward
from prefcap.rl.trainer import RLConfig, advantages, batch_indices, kl_shaped_rewards, policy_loss


def time_parts_alone(run: Path, encoder: ClapEncoder, config: RLConfig) -> dict[str, float]:
    """Mean seconds per batch of each irreducible part of an RL step, each timed on its own, over the batches the
    RL runs drew (steps 1..max_steps of `batch_indices`), starting from the baseline as they do."""
    clips = [c for c in read_clips(run / "data" / "target" / "clips.jsonl") if c.split == "rl"]
    policy = load_captioner(run / "captioner-baseline", device="cpu")
    reference = load_captioner(run / "captioner-baseline", device="cpu")
    policy.model.eval()
    audio_all = load_rl_audio(clips, policy.sample_rate, progress=False)
    embeddings = EmbeddingCache(run / "cache", encoder).embed_clips(clips, progress=False)
    reward = CaptionReward(RewardModel.load(run / "reward", encoder=encoder), encoder, config.reward_terms,
                           clip_pool=embeddings)
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
    sampling = Decoding(mode="sample", temperature=config.temperature, top_p=1.0,
                        max_new_tokens=config.max_new_tokens)
    sr, k = policy.sample_rate, config.num_generations
    seconds = {"generate": 0.0, "reward": 0.0, "reference": 0.0, "forward_backward": 0.0, "optimizer": 0.0}

    @contextlib.contextmanager
    def timer(part: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        seconds[part] += time.perf_counter() - start

    for step in range(1, config.max_steps + 1):
        mine = batch_indices(step, len(clips), config.batch_size, config.seed)
        audio = [audio_all[i].waveform for i in mine]
        with timer("generate"), torch.no_grad():
            samples = policy.generate(audio, sr, k, sampling)
        texts = [text for per_clip in samples.texts for text in per_clip]
        clip_embeddings = embeddings[torch.as_tensor(mine)].repeat_interleave(k, dim=0)
        with timer("reward"):
            rewards, _ = reward(clip_embeddings, texts, samples.truncated)
        with timer("reference"), torch.no_grad():
            ref_log_probs = reference.sequence_log_probs(audio, sr, samples.token_ids, samples.mask,
                                                         config.temperature)
            shaped, _ = kl_shaped_rewards(rewards, samples.log_probs, ref_log_probs, samples.mask, config.beta)
            advantage = advantages(shaped.view(-1, k), config.algorithm, None, config.scale_rewards).reshape(-1)
        weights = samples.mask.clone()
        weights[samples.truncated] = 0.0
        with timer("forward_backward"):
            log_probs, entropy = policy.sequence_scores(audio, sr, samples.token_ids, samples.mask, config.temperature)
            loss, _ = policy_loss(log_probs, samples.log_probs, entropy, advantage, weights,
                                  float(weights.sum().clamp(min=1.0)), config.epsilon, config.entropy_coef)
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
        with timer("optimizer"):
            torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
    return {part: total / config.max_steps for part, total in seconds.items()}


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
    paper_head = args.run / "reward" / "variants" / variant_slug(PAPER_VARIANT)
    if not paper_head.is_dir():
        raise SystemExit(f"{paper_head} is missing: run `make demo` again (it saves the paper's head since 2026-11-30)")

    def rl_runs(reward_dir: Path) -> list[dict]:
        runs = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(run_rl(args.run / "captioner-baseline", reward_dir, encoder,
                                   args.run / "data" / "target" / "clips.jsonl", tmp, config, eval_split=None,
                                   cache_root=args.run / "cache", progress=False, device="cpu"))
        return runs

    runs, paper_runs = rl_runs(args.run / "reward"), rl_runs(paper_head)
    speeds = [r["captions_per_second"] for r in runs]
    shares = {part: statistics.median(r["time_share"][part] for r in runs) for part in runs[0]["time_share"]}
    figures = {"rl_steps": args.steps, "rl_repeats": args.repeats, "rl_batch_clips": config.batch_size,
               "rl_num_generations": config.num_generations, "rl_captions_per_second": statistics.median(speeds),
               "rl_captions_per_second_range": [min(speeds), max(speeds)],
               "rl_seconds_per_step": statistics.median(r["seconds"] / args.steps for r in runs),
               "rl_time_share": shares, "machine": machine()}
    figures["rl_seconds_per_step_paper_head"] = statistics.median(r["seconds"] / args.steps for r in paper_runs)
    figures["rl_step_ratio_vs_paper_head"] = figures["rl_seconds_per_step"] / figures["rl_seconds_per_step_paper_head"]
    parts = time_parts_alone(args.run, encoder, config)
    figures["rl_parts_alone_seconds_per_step"] = parts
    figures["rl_overhead_ratio"] = figures["rl_seconds_per_step"] / sum(parts.values())
    record(args.results, "rl", figures)
    print(f"RL ({config.algorithm}, {config.batch_size} clips x {config.num_generations} samples per step): "
          f"{figures['rl_captions_per_second']:.0f} captions/s (median of {args.repeats}; range "
          f"{min(speeds):.0f}-{max(speeds):.0f}), {figures['rl_seconds_per_step']:.2f} s/step; time share "
          + ", ".join(f"{part} {share:.0%}" for part, share in shares.items()) + f"; {figures['machine']}")
    print(f"RL overhead ratio {figures['rl_overhead_ratio']:.2f} (step {figures['rl_seconds_per_step']:.3f} s / "
          f"parts alone {sum(parts.values()):.3f} s: " + ", ".join(f"{p} {s:.3f}" for p, s in parts.items()) + ")")
    print(f"RL step with the default reward model {figures['rl_seconds_per_step']:.3f} s, with the paper's head "
          f"{figures['rl_seconds_per_step_paper_head']:.3f} s: ratio {figures['rl_step_ratio_vs_paper_head']:.2f}")


if __name__ == "__main__":
    main()
