"""`prefcap rl`: fine-tune any captioner to maximise the learned reward, on audio without captions.

One step, for a batch of clips:
  1. sample `num_generations` captions per clip from the policy with plain temperature sampling (no top-k /
     top-p / minimum length: the log-probabilities, and so the ratios and the KL, must be those of the
     distribution that was sampled);
  2. score them (rewards.py: reward model + extras − guards); captions that never emitted end-of-sequence are
     penalised there and, with `mask_truncated_completions`, left out of the loss;
  3. fold the KL to the reference policy into the reward (k1, as PPO-RLHF and TRL's RLOO do; `kl_shaped_rewards`):
       kl_i = Σ_t [log π_sampled(y_t) − log π_ref(y_t)]   over caption i's tokens, end-of-sequence included
       r̃_i  = r_i − β kl_i                                 (kl_i is a number: no gradient flows through it)
     E_π[kl_i] = KL(π ‖ π_ref) per caption, and through the score-function gradient of step 5 the expected
     gradient of the penalty is exactly β ∇KL(π ‖ π_ref) (a per-clip baseline, greedy or leave-one-out, leaves
     the expectation unchanged; whitening and grpo's group std rescale it together with the reward's). Adding
     k3 = e^(log π_ref − log π) − (log π_ref − log π) − 1 to the loss instead, as LOSS_VERSION 1 did, estimates
     the same value but its on-policy gradient is that of KL(π_ref ‖ π): the wrong direction;
  4. advantages of the shaped reward, per algorithm:
       scst  A = r̃ − r(greedy caption of the same clip)           (self-critical; the greedy reward is not shaped)
       rloo  A_i = r̃_i − mean of the other k − 1 samples' r̃       (leave-one-out)
       grpo  A_i = (r̃_i − mean of the group) / std of the group    (group-normalised)
     with `scale_rewards` the scst / rloo advantages are divided by their batch std (whitening);
  5. `num_iterations` optimisation passes over the batch, each minimising the whole loss (`policy_loss`)
       L = (1 / N) Σ_{scored tokens t} [ −min(ρ_t A, clip(ρ_t, 1 − ε, 1 + ε) A) − entropy_coef H_t ],
       ρ_t = π(y_t) / π_sampled(y_t), N = scored tokens of the whole batch (not per sequence: no bias towards
       short captions); β enters only through A (step 3).
     The end-of-sequence token is scored and learned like any other, so "when to stop" is learned too.
  6. optionally adapt β towards `target_kl` (Ziegler et al.'s proportional controller, on the mean kl_i).

Every `eval_every` steps the policy's greedy captions of the held-out clips are scored. With `collapse_guard`, the
run stops as soon as they show a collapse onto a few high-reward strings (`collapse_signs`: too few distinct
captions, a reward-model score above the highest it gave any labelled caption, or captions shorter than
`min_words`), and keeps the weights of the last evaluation that showed none. With `load_best_model_at_end` (the
name transformers' Trainer uses), the saved captioner is the evaluation with the highest held-out total reward
among those without a collapse — the checkpoint is chosen on the held-out clips, never on test.

The policy runs in eval mode throughout: no dropout, so the first ratio of a batch is exactly 1, and the audio
normalisation statistics stay those of supervised training. The reference policy is a frozen copy of the start.
Config names follow TRL (`beta`, `num_generations`, `epsilon`, `temperature`, `max_new_tokens`,
`learning_rate`, `num_iterations`, `scale_rewards`, `mask_truncated_completions`); TRL's own trainers concatenate
prompt and completion and take neither encoder–decoder policies nor audio, which is why this loop is ours.

Data parallelism: `accelerate launch` starts one process per device; each step's clips are split over them and
the gradients averaged (an all-reduce) before every optimizer step, so every process holds the same weights.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object, set_seed
from tqdm import tqdm
from transformers import get_scheduler

from prefcap.captioners.base import Captioner, Decoding, save_captioner
from prefcap.errors import PrefcapError
from prefcap.io import atomic_write
from prefcap.rl.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from prefcap.rl.config import ALGORITHMS, RLConfig  # noqa: F401 (RLConfig is imported from here too)
from prefcap.rl.data import AudioOnlyClip
from prefcap.rl.rewards import CaptionReward
from prefcap.text import diversity_stats

LOSS_VERSION = 2  # bump when the RL objective changes: stage caches key on it
LOG_FILE = "log.jsonl"
METRICS_FILE = "rl_metrics.json"


def advantages(rewards: torch.Tensor, algorithm: str, greedy_rewards: torch.Tensor | None = None,
               scale_rewards: bool = True) -> torch.Tensor:
    """[clips, k] rewards -> [clips, k] advantages (see the module docstring)."""
    k = rewards.shape[1]
    if algorithm == "scst":
        advantage = rewards - greedy_rewards.unsqueeze(1)
    elif algorithm == "rloo":
        advantage = rewards - (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
    elif algorithm == "grpo":
        advantage = rewards - rewards.mean(dim=1, keepdim=True)
        return advantage / (rewards.std(dim=1, keepdim=True) + 1e-4) if scale_rewards else advantage
    else:
        raise PrefcapError(f"unknown algorithm {algorithm!r}")
    return advantage / (advantage.std() + 1e-4) if scale_rewards and advantage.numel() > 1 else advantage


@torch.no_grad()
def kl_shaped_rewards(rewards: torch.Tensor, sampled_log_probs: torch.Tensor, ref_log_probs: torch.Tensor,
                      mask: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(r − β kl, kl) per caption: `rewards` [rows]; `sampled_log_probs` (the sampling-time log π), `ref_log_probs`
    and `mask` (1 for the caption's tokens) [rows, T]. kl_i = Σ_t (log π_sampled − log π_ref) is the k1 estimate
    of KL(π ‖ π_ref) for caption i; the result lives on `rewards`' device."""
    kl = ((sampled_log_probs - ref_log_probs) * mask).sum(dim=1).to(rewards.device)
    return rewards - beta * kl, kl


def policy_loss(log_probs: torch.Tensor, sampled_log_probs: torch.Tensor, entropy: torch.Tensor,
                advantage: torch.Tensor, weights: torch.Tensor, normaliser: float, epsilon: float,
                entropy_coef: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The whole RL loss, per token ([rows, T] tensors; `advantage` [rows]; `weights` 1 for scored tokens),
    summed and divided by `normaliser` (the number of scored tokens in the whole batch, over all processes):
    the clipped surrogate minus the entropy bonus. The KL penalty is in the advantage (`kl_shaped_rewards`)."""
    ratio = torch.exp(log_probs - sampled_log_probs)
    surrogate = torch.min(ratio * advantage.unsqueeze(1),
                          torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * advantage.unsqueeze(1))
    per_token = -surrogate - entropy_coef * entropy
    loss = (per_token * weights).sum() / normaliser
    with torch.no_grad():
        scored = weights.sum().clamp(min=1)
        stats = {"entropy": float((entropy * weights).sum() / scored),
                 "clip_fraction": float((((ratio - 1).abs() > epsilon).float() * weights).sum() / scored)}
    return loss, stats


def collapse_signs(record: dict[str, float], start: dict[str, float], labelled_max: float | None,
                   config: RLConfig) -> list[str]:
    """Why a held-out evaluation (`record`; `start` is step 0's) looks like a collapse onto a few high-reward
    strings — the failure that guards and reward models miss when the policy finds a string they overrate:
    distinct captions below `min_distinct_ratio` of the start's, a mean reward-model score above the highest the
    reward model gave any caption it was trained on (`labelled_max`), or a mean length that moved by more than
    `max_length_change` of the start's."""
    signs = []
    if record["distinct_captions"] < config.min_distinct_ratio * start["distinct_captions"]:
        signs.append(f"{record['distinct_captions']:.0%} distinct captions (start {start['distinct_captions']:.0%})")
    if labelled_max is not None and record["rm"] > labelled_max:
        signs.append(f"mean reward-model score {record['rm']:.2f} above any labelled caption's ({labelled_max:.2f})")
    if abs(record["mean_words"] - start["mean_words"]) > config.max_length_change * max(start["mean_words"], 1.0):
        signs.append(f"{record['mean_words']:.1f} words per caption (start {start['mean_words']:.1f})")
    return signs


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> np.ndarray:
    """The clips of global step `step` (1-based): epochs are fresh permutations, a function of (seed, epoch), so
    a resumed run draws exactly the batches the uninterrupted one would have."""
    positions = (step - 1) * batch_size + np.arange(batch_size)
    epochs = positions // n
    orders = {int(e): np.random.default_rng([seed, int(e)]).permutation(n) for e in np.unique(epochs)}
    return np.array([orders[int(e)][p % n] for e, p in zip(epochs, positions, strict=True)])


def train_rl(policy: Captioner, reward: CaptionReward, clips: Sequence[AudioOnlyClip], audio_embeddings: torch.Tensor,
             out_dir: str | Path, config: RLConfig = RLConfig(), *,  # noqa: B008 (frozen)
             eval_clips: Sequence[AudioOnlyClip] = (), eval_embeddings: torch.Tensor | None = None,
             reference: Captioner | None = None, resume: bool = False, progress: bool = True,
             device: str | None = None) -> dict[str, Any]:
    """Train `policy` in place; write `log.jsonl`, `checkpoints/`, the final `captioner/`, `rl_metrics.json` and
    `curves.png` to `out_dir`. `audio_embeddings[k]` is clip k's (the reward model's encoder, from the cache).
    The KL is taken to `reference` (default: a frozen copy of `policy` as given); a later preference round that
    continues from an RL policy passes the original baseline, so the anchor stays where round one put it.
    `device` "cpu" keeps the run off a GPU; None takes the GPU when there is one.

    Long on purpose (as CleanRL's and nanoGPT's loops): sampling, scoring, the KL, the advantages and the update
    of one step read top to bottom in one place; the maths lives in the small functions above."""
    out = Path(out_dir)
    if len(audio_embeddings) != len(clips) or (eval_clips and len(eval_embeddings) != len(eval_clips)):
        raise PrefcapError("one audio embedding per clip is needed")
    if (out / LOG_FILE).exists() and not resume:
        raise PrefcapError(f"{out} already holds an RL run: pass --resume to continue it, or choose another --out")
    # cpu=True where there is no GPU: accelerate then runs `accelerate launch` / torchrun processes over gloo
    accelerator = Accelerator(mixed_precision=config.mixed_precision,
                              cpu=device == "cpu" or not torch.cuda.is_available())
    rank, world = accelerator.process_index, accelerator.num_processes
    if config.batch_size % world:
        raise PrefcapError(f"batch_size {config.batch_size} does not split over {world} processes")
    set_seed(config.seed, device_specific=True)
    policy.model.to(accelerator.device).eval()
    reference = copy.deepcopy(policy if reference is None else reference)
    reference.model.to(accelerator.device).eval().requires_grad_(False)
    sr = policy.sample_rate
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
    scheduler = get_scheduler(config.lr_scheduler_type, optimizer, num_warmup_steps=config.warmup_steps,
                              num_training_steps=config.max_steps)
    sampling = Decoding(mode="sample", temperature=config.temperature, top_p=1.0,
                        max_new_tokens=config.max_new_tokens)
    greedy = Decoding(mode="greedy", max_new_tokens=config.max_new_tokens)

    start_step, beta, saved = 0, config.beta, {}
    checkpoint = latest_checkpoint(out / "checkpoints") if resume else None
    if checkpoint is not None:
        state = saved = load_checkpoint(checkpoint)
        if len(state["rng"]) != world:
            raise PrefcapError(f"{checkpoint} was written by {len(state['rng'])} processes; resume it with as many "
                               f"(this run has {world})")
        policy.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step, beta = state["step"], state["beta"]
        set_rng_state(state["rng"][rank])
        if accelerator.is_main_process:
            _truncate_log(out / LOG_FILE, start_step)
    elif accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / LOG_FILE).unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    writer = _tensorboard(out, config) if accelerator.is_main_process else None
    log = LogWriter(out / LOG_FILE, writer) if accelerator.is_main_process else None

    def evaluate(step: int) -> dict[str, float]:
        """Greedy captions of the held-out clips: their reward terms and diversity (main process only)."""
        texts: list[str] = []
        no_eos: list[torch.Tensor] = []
        for start in range(0, len(eval_clips), 64):
            generation = policy.generate([c.waveform for c in eval_clips[start:start + 64]], sr, 1, greedy)
            texts += [t[0] for t in generation.texts]
            no_eos.append(generation.truncated)
        total, terms = reward(eval_embeddings, texts, torch.cat(no_eos), clip_ids=[c.id for c in eval_clips])
        record = {"step": step, "split": "heldout", "reward": float(total.mean()),
                  **{f"{name}": float(value.mean()) for name, value in terms.items()},
                  **_diversity(texts), "distinct_captions": len(set(texts)) / max(1, len(texts))}
        log.write(record)
        return record

    # a reward that knows the highest score it gave a labelled caption (CaptionReward) lets the guard compare to it
    guard = HeldOutGuard(config, getattr(reward, "labelled_max", None), saved.get("guard"))
    if accelerator.is_main_process and eval_clips and start_step == 0:
        guard.observe(evaluate(0), policy)
    bar = tqdm(total=config.max_steps, initial=start_step, desc=f"rl ({config.algorithm})", unit="step",
               disable=not (progress and accelerator.is_main_process))
    timings = {"generate": 0.0, "reward": 0.0, "reference": 0.0, "update": 0.0}
    captions_scored, run_start = 0, time.perf_counter()
    for step in range(start_step + 1, config.max_steps + 1):
        mine = batch_indices(step, len(clips), config.batch_size, config.seed)[rank::world]
        audio = [clips[i].waveform for i in mine]
        k = config.num_generations

        tick = time.perf_counter()
        with torch.no_grad(), accelerator.autocast():
            samples = policy.generate(audio, sr, k, sampling)
            greedy_samples = policy.generate(audio, sr, 1, greedy) if config.algorithm == "scst" else None
        timings["generate"] += (tock := time.perf_counter()) - tick

        texts = [text for per_clip in samples.texts for text in per_clip]
        clip_embeddings = audio_embeddings[torch.as_tensor(mine)]
        ids = [clips[i].id for i in mine]
        rewards, terms = reward(clip_embeddings.repeat_interleave(k, dim=0), texts, samples.truncated,
                                group_size=k, clip_ids=[clip_id for clip_id in ids for _ in range(k)])
        greedy_rewards = None
        if greedy_samples is not None:
            greedy_rewards = reward(clip_embeddings, [t[0] for t in greedy_samples.texts], greedy_samples.truncated,
                                    clip_ids=ids)[0]
        timings["reward"] += (tick := time.perf_counter()) - tock
        captions_scored += len(texts)

        with torch.no_grad(), accelerator.autocast():
            ref_log_probs = reference.sequence_log_probs(audio, sr, samples.token_ids, samples.mask,
                                                         config.temperature)
        # Each process shapes its own samples' rewards (the kl of a caption needs only that caption).
        # scst: the greedy baseline reward is left unshaped; any per-clip baseline keeps the gradient unbiased,
        # so it need not include the KL.
        shaped, kl = kl_shaped_rewards(rewards, samples.log_probs, ref_log_probs, samples.mask, beta)
        advantage = advantages(shaped.view(-1, k), config.algorithm, greedy_rewards, config.scale_rewards)
        advantage = advantage.reshape(-1).to(accelerator.device)
        timings["reference"] += (tock := time.perf_counter()) - tick

        weights = samples.mask.clone()
        if config.mask_truncated_completions:
            weights[samples.truncated] = 0.0
        normaliser = float(accelerator.reduce(weights.sum().reshape(1), "sum").clamp(min=1.0)) / world
        for _ in range(config.num_iterations):
            with accelerator.autocast():
                log_probs, entropy = policy.sequence_scores(audio, sr, samples.token_ids, samples.mask,
                                                            config.temperature)
                loss, stats = policy_loss(log_probs, samples.log_probs, entropy, advantage, weights, normaliser,
                                          config.epsilon, config.entropy_coef)
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            _average_gradients(parameters, accelerator)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm))
            optimizer.step()
        scheduler.step()
        timings["update"] += time.perf_counter() - tock

        kl_stats = {"kl_per_caption": float(kl.mean()),  # what the target_kl controller steers
                    "kl_per_token": float(kl.sum()) / max(1.0, float(samples.mask.sum())),
                    "kl_penalty": beta * float(kl.mean()), "reward_shaped": float(shaped.mean())}
        stats = _mean_over_processes(accelerator, {**stats, **kl_stats, "reward": float(rewards.mean()),  # unshaped
                                                   "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
                                                   **{n: float(v.mean()) for n, v in terms.items()},
                                                   "frac_reward_zero_std": _zero_std_share(rewards.view(-1, k)),
                                                   "truncated": float(samples.truncated.float().mean()),
                                                   "mean_tokens": float(samples.mask.sum(dim=1).mean())})
        if config.target_kl is not None:
            error = float(np.clip(stats["kl_per_caption"] / config.target_kl - 1, -0.2, 0.2))
            beta *= 1 + error * len(mine) * world / (config.batch_size * config.kl_horizon)
        stop = False
        if accelerator.is_main_process:
            log.write({"step": step, "split": "train", "beta": beta, "loss": loss.item(), "grad_norm": grad_norm,
                       "learning_rate": scheduler.get_last_lr()[0], **stats, **_diversity(texts)})
            if eval_clips and (step % config.eval_every == 0 or step == config.max_steps):
                stop = guard.observe(evaluate(step), policy)
                if stop:
                    log.write({"step": step, "split": "stopped", "signs": guard.signs, "kept_step": guard.kept_step})
        bar.update()
        bar.set_postfix(reward=f"{stats['reward']:.3f}", kl=f"{stats['kl_per_caption']:.3f}")
        if world > 1:
            stop = broadcast_object_list([stop])[0]
        if stop:
            break
        if step % config.save_steps == 0 or step == config.max_steps:
            _save(accelerator, out, step, beta, policy, optimizer, scheduler, config.save_total_limit, guard.state())
    bar.close()
    seconds = time.perf_counter() - run_start
    if writer is not None:
        writer.close()
    if not accelerator.is_main_process:
        return {}
    last_step = step if config.max_steps > start_step else start_step
    if guard.kept is not None and ((guard.signs and config.collapse_guard) or config.load_best_model_at_end):
        policy.model.load_state_dict(guard.kept)
    save_captioner(policy, out / "captioner")
    metrics = {"config": asdict(config), "steps": last_step, "steps_this_run": last_step - start_step,
               "kept_step": guard.kept_step if guard.kept is not None else last_step, "collapse": guard.signs,
               "resumed_from": start_step or None, "processes": world, "seconds": seconds,
               "captions_per_second": captions_scored * world / seconds if seconds else None,
               "time_share": {name: t / max(1e-9, sum(timings.values())) for name, t in timings.items()},
               "heldout": [r for r in read_log(out / LOG_FILE) if r["split"] == "heldout"]}
    with atomic_write(out / METRICS_FILE) as handle:
        json.dump(metrics, handle, indent=2)
    plot_curves(read_log(out / LOG_FILE), out / "curves.png")
    return metrics


class HeldOutGuard:
    """Watches the held-out evaluations (main process): remembers the weights to keep — the last sound
    evaluation's, or with `load_best_model_at_end` the best one's by total reward — and says when to stop."""

    def __init__(self, config: RLConfig, labelled_max: float | None, resumed: dict | None = None) -> None:
        self.config, self.labelled_max = config, labelled_max
        resumed = resumed or {}
        self.start: dict | None = resumed.get("start")
        self.kept: dict[str, torch.Tensor] | None = resumed.get("kept")
        self.kept_step: int | None = resumed.get("kept_step")
        self.kept_reward: float = resumed.get("kept_reward", -float("inf"))
        self.signs: list[str] = []

    def observe(self, record: dict[str, float], policy: Captioner) -> bool:
        """Take one held-out evaluation; True when the run should stop (a collapse, with collapse_guard)."""
        if self.start is None:
            self.start = record
        self.signs = collapse_signs(record, self.start, self.labelled_max, self.config)
        if self.signs:
            return self.config.collapse_guard
        if not self.config.load_best_model_at_end or record["reward"] > self.kept_reward:
            self.kept = {name: t.detach().to("cpu", copy=True) for name, t in policy.model.state_dict().items()}
            self.kept_step, self.kept_reward = record["step"], record["reward"]
        return False

    def state(self) -> dict:
        return {"start": self.start, "kept": self.kept, "kept_step": self.kept_step, "kept_reward": self.kept_reward}


class LogWriter:
    """One JSON object per line, flushed as written (a killed run keeps every finished step's line)."""

    def __init__(self, path: Path, tensorboard: Any = None) -> None:
        self.path, self.tensorboard = path, tensorboard

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for name, value in record.items():
                if name not in ("step", "split") and isinstance(value, int | float):
                    self.tensorboard.add_scalar(f"{record['split']}/{name}", value, record["step"])


def read_log(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(records: list[dict[str, Any]], path: Path) -> None:
    """Reward (train and held-out), KL and caption length against the step, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r["split"] == "train"]
    heldout = [r for r in records if r["split"] == "heldout"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot([r["step"] for r in train], [r["rm"] for r in train], alpha=0.5, label="reward model, samples")
    axes[0].plot([r["step"] for r in heldout], [r["rm"] for r in heldout], "o-", label="reward model, held-out greedy")
    axes[0].plot([r["step"] for r in heldout], [r["reward"] for r in heldout], "s--", label="total reward, held-out")
    axes[0].set_title("reward")
    axes[0].legend(fontsize=8)
    axes[1].plot([r["step"] for r in train], [r["kl_per_caption"] for r in train])
    axes[1].set_title("KL to the reference policy (per caption)")
    axes[2].plot([r["step"] for r in train], [r["mean_words"] for r in train], alpha=0.5, label="samples")
    axes[2].plot([r["step"] for r in heldout], [r["mean_words"] for r in heldout], "o-", label="held-out greedy")
    axes[2].set_title("mean words per caption")
    axes[2].legend(fontsize=8)
    for axis in axes:
        axis.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _diversity(texts: list[str]) -> dict[str, float]:
    stats = diversity_stats(texts)
    return {name: stats[name] for name in ("distinct_2", "repetition_rate", "truncated_ending_rate", "mean_words")}


def _zero_std_share(group_rewards: torch.Tensor) -> float:
    """Share of clips whose k samples all got the same reward: they give no gradient."""
    spread = group_rewards.max(dim=1).values - group_rewards.min(dim=1).values
    return float((spread < 1e-6).float().mean())


def _average_gradients(parameters: list[torch.nn.Parameter], accelerator: Accelerator) -> None:
    """Mean of every process's gradients, in one all-reduce: the processes then take identical steps."""
    if accelerator.num_processes == 1:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in parameters])
    flat = accelerator.reduce(flat, "mean")
    offset = 0
    for p in parameters:
        p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
        offset += p.numel()


def _mean_over_processes(accelerator: Accelerator, stats: dict[str, float]) -> dict[str, float]:
    if accelerator.num_processes == 1:
        return stats
    values = accelerator.reduce(torch.tensor(list(stats.values()), device=accelerator.device), "mean")
    return dict(zip(stats, values.tolist(), strict=True))


def _save(accelerator: Accelerator, out: Path, step: int, beta: float, policy: Captioner,
          optimizer: torch.optim.Optimizer, scheduler: Any, keep: int, guard: dict) -> None:
    states = gather_object([rng_state()]) if accelerator.num_processes > 1 else [rng_state()]
    if accelerator.is_main_process:
        save_checkpoint(out / "checkpoints", step, {
            "step": step, "beta": beta, "model": policy.model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": states, "guard": guard}, keep)
    accelerator.wait_for_everyone()


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log lines of steps up to the checkpoint's: the steps after it are about to be redone."""
    if not path.exists():
        return
    kept = [r for r in read_log(path) if r["step"] <= step]
    with atomic_write(path) as handle:
        handle.writelines(json.dumps(r) + "\n" for r in kept)


def _tensorboard(out: Path, config: RLConfig) -> Any:
    if config.report_to != "tensorboard":
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise PrefcapError("report_to=tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))
