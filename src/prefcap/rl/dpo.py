"""`prefcap dpo`: direct preference optimisation of a captioner on the stored judgments — no reward model, no
sampling. The second alignment route, compared with RL in the evaluation.

For a clip x with a preferred caption y_w and a dispreferred y_l (the sign of the pair's vote sum; pairs whose
votes cancel out are left out, as everywhere), with log π(y | x) summed over the caption's tokens, end-of-sequence
included:

    margin = [log π(y_w|x) − log π_ref(y_w|x)] − [log π(y_l|x) − log π_ref(y_l|x)]
    loss   = −(1 − label_smoothing) log σ(β margin) − label_smoothing log σ(−β margin)

π_ref is a frozen copy of the starting captioner. Names as in TRL's DPOConfig (`beta`, `label_smoothing`,
`learning_rate`). As in RL, the policy runs without dropout. Validation pairs are a clip-grouped share of the
judgments; the weights with the best validation loss are kept.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from prefcap.captioners.base import Captioner, check_captioner_destination, save_captioner
from prefcap.data.audio import load_audio
from prefcap.early_stopping import BestWeights
from prefcap.errors import PrefcapError
from prefcap.prefs.store import Store
from prefcap.reward.data import pairs_from_rows, split_by_clip

METRICS_FILE = "dpo_metrics.json"


@dataclass(frozen=True)
class DPOConfig:
    beta: float = field(default=0.1, metadata={"help": "β: strength of the implicit KL to the reference captioner"})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "assumed share of flipped preference labels (conservative DPO), in [0, 0.5)"})
    learning_rate: float = field(default=1e-5, metadata={"help": "peak learning rate"})
    batch_size: int = field(default=16, metadata={"help": "preference pairs per step"})
    num_train_epochs: int = field(default=2, metadata={"help": "passes over the training pairs"})
    max_steps: int | None = field(default=None, metadata={"help": "replaces num_train_epochs when set"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of the steps with linear learning-rate warmup"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    val_fraction: float = field(default=0.1, metadata={"help": "share of the pairs held out for validation"})
    eval_every: int = field(default=50, metadata={"help": "optimizer steps between validations"})
    patience: int | None = field(default=3, metadata={
        "help": "validations without a new best before stopping; None: never stop early"})
    seed: int = field(default=0, metadata={"help": "random seed"})

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.learning_rate <= 0 or not 0 <= self.label_smoothing < 0.5:
            raise PrefcapError("beta and learning_rate must be > 0 and 0 <= label_smoothing < 0.5")
        if min(self.batch_size, self.eval_every) < 1 or not 0 < self.val_fraction < 1:
            raise PrefcapError("batch_size and eval_every must be >= 1, and 0 < val_fraction < 1")


@dataclass(frozen=True)
class Preference:
    audio: np.ndarray
    chosen: str
    rejected: str


def dpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
             beta: float, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, [n] margins) from [n] sequence log-probabilities under the policy and the reference."""
    margin = (chosen - ref_chosen) - (rejected - ref_rejected)
    loss = -(1 - label_smoothing) * F.logsigmoid(beta * margin) - label_smoothing * F.logsigmoid(-beta * margin)
    return loss.mean(), margin.detach()


def preferences_from_store(store: Store, sample_rate: int) -> tuple[list, list[Preference]]:
    """(the store's preference pairs with a non-zero vote sum, and each as audio + chosen + rejected)."""
    pairs = [p for p in pairs_from_rows(store.judgment_rows()) if p.label != 0]
    if not pairs:
        raise PrefcapError(f"{store.url}: no judged pair with a majority; DPO needs preferences")
    audio: dict[str, np.ndarray] = {}
    for clip_id in sorted({p.clip_id for p in pairs}):
        clip = store.clip(clip_id)
        if not clip.audio_path:
            raise PrefcapError(f"clip {clip_id!r} has no audio: DPO trains a captioner on audio")
        audio[clip_id] = load_audio(clip.audio_path, sample_rate)
    examples = [Preference(audio[p.clip_id], *((p.caption_a, p.caption_b) if p.label > 0 else
                                                (p.caption_b, p.caption_a))) for p in pairs]
    return pairs, examples


def sequence_log_prob_pairs(captioner: Captioner, batch: Sequence[Preference]) -> tuple[torch.Tensor, torch.Tensor]:
    """([n] log π(chosen), [n] log π(rejected)), both summed over tokens: one forward pass, two rows per clip."""
    texts = [text for example in batch for text in (example.chosen, example.rejected)]
    token_ids, mask = captioner.tokenize_completions(texts)
    per_token = captioner.sequence_log_probs([e.audio for e in batch], captioner.sample_rate, token_ids, mask)
    totals = per_token.sum(dim=1).view(-1, 2)
    return totals[:, 0], totals[:, 1]


def train_dpo(policy: Captioner, store: Store, out_dir: str, config: DPOConfig = DPOConfig(),  # noqa: B008
              progress: bool = True) -> dict:
    """Train `policy` in place on the store's judgments; save the best weights and `dpo_metrics.json`."""
    check_captioner_destination(out_dir)  # before training, not after it
    set_seed(config.seed)
    pairs, examples = preferences_from_store(store, policy.sample_rate)
    train_pairs, val_pairs = split_by_clip(pairs, config.val_fraction, seed=config.seed)
    index = {id(p): k for k, p in enumerate(pairs)}
    train = [examples[index[id(p)]] for p in train_pairs]
    val = [examples[index[id(p)]] for p in val_pairs]
    policy.model.eval()
    reference = copy.deepcopy(policy)
    reference.model.requires_grad_(False)

    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = config.max_steps or config.num_train_epochs * steps_per_epoch
    parameters = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps)
    rng = np.random.default_rng(config.seed)

    @torch.no_grad()
    def validate() -> tuple[float, float]:
        losses, margins = [], []
        for start in range(0, len(val), config.batch_size):
            batch = val[start:start + config.batch_size]
            loss, margin = dpo_loss(*sequence_log_prob_pairs(policy, batch), *sequence_log_prob_pairs(reference, batch),
                                    config.beta, config.label_smoothing)
            losses.append(float(loss) * len(batch))
            margins.append(margin)
        return sum(losses) / len(val), float((torch.cat(margins) > 0).float().mean())

    start = time.perf_counter()
    history, train_loss = [], []
    start_loss, start_accuracy = validate()
    history.append({"step": 0, "val_loss": start_loss, "val_accuracy": start_accuracy})
    best = BestWeights(config.patience)
    best.update(start_loss, 0, policy.model)
    order = iter(())
    bar = tqdm(total=total_steps, desc="dpo", unit="step", disable=not progress)
    for step in range(1, total_steps + 1):
        rows = [next(order, None) for _ in range(config.batch_size)]
        if rows[0] is None:
            order = iter(rng.permutation(len(train)).tolist())
            rows = [next(order, None) for _ in range(config.batch_size)]
        batch = [train[k] for k in rows if k is not None]
        with torch.no_grad():
            ref_chosen, ref_rejected = sequence_log_prob_pairs(reference, batch)
        loss, _ = dpo_loss(*sequence_log_prob_pairs(policy, batch), ref_chosen, ref_rejected, config.beta,
                           config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        schedule.step()
        train_loss.append(loss.item())
        bar.update()
        if step % config.eval_every and step != total_steps:
            continue
        val_loss, val_accuracy = validate()
        history.append({"step": step, "val_loss": val_loss, "val_accuracy": val_accuracy})
        bar.set_postfix(loss=f"{np.mean(train_loss[-config.eval_every:]):.3f}", val=f"{val_loss:.3f}",
                        acc=f"{val_accuracy:.3f}")
        if best.update(val_loss, step, policy.model):
            break
    bar.close()
    policy.model.load_state_dict(best.weights)
    metrics = {"train_pairs": len(train), "val_pairs": len(val), "steps": len(train_loss), "best_step": best.step,
               "best_val_loss": best.loss, "validation": history, "train_loss": train_loss,
               "seconds": time.perf_counter() - start, "config": asdict(config)}
    save_captioner(policy, out_dir, {METRICS_FILE: metrics})
    return metrics
