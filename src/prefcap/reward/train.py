"""Training the reward model on cached embeddings: seconds on a CPU for a few thousand pairs.

The whole objective, for a pair (a, b) with target t = P(a ≻ b) from the votes:

    loss = −[t · log σ(r_a − r_b) + (1 − t) · log σ(r_b − r_a)]  +  λ · Σ‖W‖²  +  μ · (r_a + r_b)²

The Bradley–Terry term depends on r_a − r_b only, so the model is antisymmetric by construction: showing a pair
as (b, a) with target 1 − t gives exactly the same loss, and left/right position cannot matter. It also leaves
each clip's reward level free; the last term (TRL's `center_rewards_coefficient`, μ) pins it near 0 on the data,
so ensemble heads agree on levels where they have seen data and disagree where they have not.

With `text_encoder="fine-tune"` the same loss also trains each head's copy of the encoder's text side, at its own
small step (`text_learning_rate`); λ applies to the head only, and early stopping on clip-grouped validation
pairs keeps the epoch before the text side starts to memorise the training captions.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from prefcap.errors import PrefcapError
from prefcap.reward.data import PreferencePair, preference_targets, split_by_clip
from prefcap.reward.features import PairFeatures
from prefcap.reward.model import RewardConfig, RewardHead, RewardModel


def bradley_terry_loss(reward_a: torch.Tensor, reward_b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the targets under P(a ≻ b) = σ(r_a − r_b)."""
    return F.binary_cross_entropy_with_logits(reward_a - reward_b, target)


def l2_penalty(head: RewardHead) -> torch.Tensor:
    return sum((p**2).sum() for name, p in head.mlp.named_parameters() if name.endswith("weight"))


def pair_rewards(head: RewardHead, features: PairFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    return (head(features.clip_a, features.text_a, features.extra_a, features.captions_a),
            head(features.clip_b, features.text_b, features.extra_b, features.captions_b))


def head_loss(head: RewardHead, features: PairFeatures, target: torch.Tensor, config: RewardConfig) -> torch.Tensor:
    reward_a, reward_b = pair_rewards(head, features)
    return (bradley_terry_loss(reward_a, reward_b, target)
            + config.l2 * l2_penalty(head)
            + config.center_rewards_coefficient * ((reward_a + reward_b) ** 2).mean())


def train_head(head: RewardHead, features: PairFeatures, target: torch.Tensor, config: RewardConfig,
               seed: int, val: tuple[PairFeatures, torch.Tensor] | None = None, progress: bool = False) -> dict:
    """Adam on mini-batches; with `val`, keep the weights of the epoch with the lowest validation NLL."""
    generator = torch.Generator().manual_seed(seed)
    groups = [{"params": head.mlp.parameters(), "lr": config.learning_rate}]
    if head.tower is not None:
        groups.append({"params": [p for p in head.tower.parameters() if p.requires_grad],
                       "lr": config.text_learning_rate})
    optimizer = torch.optim.Adam(groups)
    best, best_state, stale, epochs_run = float("inf"), None, 0, 0
    for epochs_run in tqdm(range(1, config.epochs + 1), desc="reward epochs", disable=not progress):  # noqa: B007
        head.train()
        for batch in torch.randperm(len(features), generator=generator).split(config.batch_size):
            loss = head_loss(head, features.select(batch), target[batch], config)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if val is None:
            continue
        head.eval()
        with torch.no_grad():
            val_features, val_target = val
            val_nll = bradley_terry_loss(*pair_rewards(head, val_features), val_target).item()
        if val_nll < best - 1e-4:
            best, best_state, stale = val_nll, head.trainable_state(), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        head.load_trainable_state(best_state)
    return {"epochs": epochs_run, "best_val_nll": best if best_state is not None else None}


def train_reward(pairs: list[PreferencePair], features: PairFeatures, config: RewardConfig, encoder_id: str,
                 progress: bool = True, encoder: object | None = None,
                 val_clips: Collection[str] | None = None) -> RewardModel:
    """Train every head of a new model on `pairs` (rows of `features` in the same order); `encoder` (the one
    named by `encoder_id`) is needed when the model fine-tunes its text side. The pairs of `val_clips` (by default
    a clip-grouped `val_fraction` of the clips, drawn with the seed) are held out for early stopping."""
    if len(pairs) != len(features):
        raise PrefcapError(f"{len(pairs)} pairs but {len(features)} feature rows")
    kept, target = preference_targets(pairs, config.target, config.ties)
    if not kept:
        raise PrefcapError("no pair has a usable target (all ties, and ties='drop'?)")
    index = {id(p): k for k, p in enumerate(pairs)}
    rows = np.array([index[id(p)] for p in kept])
    train_rows, val = rows, None
    if val_clips is None and config.val_fraction > 0 and len({p.clip_id for p in kept}) >= 10:
        val_clips = {p.clip_id for p in split_by_clip(kept, config.val_fraction, seed=config.seed)[1]}
    if val_clips:
        is_val = np.array([p.clip_id in val_clips for p in kept])
        if is_val.all() or not is_val.any():
            raise PrefcapError("the validation clips must hold some of the pairs, not all of them")
        train_rows = rows[~is_val]
        val = (features.select(rows[is_val]), torch.from_numpy(target[is_val]))
        target = target[~is_val]
    model = RewardModel.new(config, encoder_id, features.text_a.shape[1], encoder)
    rng = np.random.default_rng(config.seed)
    member_stats = []
    for k, head in enumerate(tqdm(model.heads, desc="reward heads", disable=not progress or config.ensemble == 1)):
        sample = np.arange(len(train_rows))
        if config.ensemble > 1 and config.bootstrap:
            sample = rng.integers(0, len(train_rows), len(train_rows))
        member_stats.append(train_head(head, features.select(train_rows[sample]),
                                       torch.from_numpy(target[sample]), config, config.seed + k, val,
                                       progress=progress and config.fine_tunes_text))
    trained_on = features.select(train_rows)
    labelled = torch.cat([model.rewards(trained_on.clip_a, trained_on.text_a, trained_on.extra_a,
                                        captions=trained_on.captions_a)[0],
                          model.rewards(trained_on.clip_b, trained_on.text_b, trained_on.extra_b,
                                        captions=trained_on.captions_b)[0]])
    model.metrics = {"train_pairs": len(train_rows), "val_pairs": 0 if val is None else len(val[1]),
                     "heads": member_stats, "labelled_reward_max": float(labelled.max())}
    return model
