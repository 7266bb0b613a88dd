"""How good is a reward model: agreement with people on held-out pairs, calibration, and how much data it needs.

One labelling rule throughout (FENSE's): a pair's label is the sign of its vote sum; zero-sum pairs are left out
of accuracy. "Close" pairs are the labelled pairs the annotators did not judge unanimously; the single-annotator
agreement is how often one annotator agrees with the majority of the others on the same pairs (how consistent the
people are, not a ceiling for the model, which is scored against the majority of all votes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from prefcap.prefs.pairs import certainty
from prefcap.reward.data import PreferencePair, preference_targets
from prefcap.reward.features import PairFeatures
from prefcap.reward.model import RewardConfig, RewardModel


def single_annotator_agreement(pairs: Sequence[PreferencePair]) -> float | None:
    """Share of votes that agree with the sign of the other votes on the pair (leave-one-out); votes whose
    others cancel out are skipped. A tie vote never agrees with a decided majority."""
    agree = total = 0
    for pair in pairs:
        vote_sum = pair.votes_a - pair.votes_b
        for value, count in ((1, pair.votes_a), (-1, pair.votes_b), (0, pair.votes_tie)):
            if count == 0:
                continue
            others = np.sign(vote_sum - value)
            if others == 0:
                continue
            total += count
            agree += count * (value == others)
    return agree / total if total else None


def expected_calibration_error(probability: np.ndarray, outcome: np.ndarray, bins: int = 10) -> float:
    """Binned |mean outcome − mean predicted probability| of P(a ≻ b), weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(outcome[mask].mean() - probability[mask].mean())
    return float(error)


def reliability_plot(probability: np.ndarray, outcome: np.ndarray, path: str | Path, bins: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    centres = [(probability[which == b].mean(), outcome[which == b].mean(), (which == b).sum())
               for b in range(bins) if (which == b).any()]
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    axis.plot([c[0] for c in centres], [c[1] for c in centres], marker="o", label="reward model")
    axis.set_xlabel("predicted P(a preferred)")
    axis.set_ylabel("observed share preferring a")
    axis.set_title(f"reliability ({len(probability)} labelled pairs)")
    axis.legend(loc="upper left")
    figure.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    tmp.replace(path)


def evaluate_reward(model: RewardModel, pairs: Sequence[PreferencePair], features: PairFeatures,
                    plot: str | Path | None = None) -> dict:
    """`preference_metrics` of the model's P(a ≻ b) on `pairs` (rows of `features`)."""
    return preference_metrics(model.preference(features).numpy(), pairs, plot)


def preference_metrics(probability: np.ndarray, pairs: Sequence[PreferencePair],
                       plot: str | Path | None = None) -> dict:
    """Accuracy (FENSE rule), NLL of the vote shares, ECE, per-category and close-pair accuracy, the ceiling."""
    labels = np.array([p.label for p in pairs])
    labelled = labels != 0
    correct = (probability > 0.5) == (labels > 0)
    kept, soft = preference_targets(pairs, "soft", "half")
    keep = np.array([p.n_votes > 0 for p in pairs])
    p_kept = np.clip(probability[keep], 1e-7, 1 - 1e-7)
    nll = float(-np.mean(soft * np.log(p_kept) + (1 - soft) * np.log(1 - p_kept))) if len(kept) else None
    close = labelled & np.array([not p.unanimous for p in pairs])
    outcome = (labels[labelled] > 0).astype(float)

    def accuracy(mask: np.ndarray) -> float | None:
        return float(correct[mask].mean()) if mask.any() else None

    categories = sorted({p.category for p in pairs if p.category is not None})
    per_category = {c: accuracy(labelled & np.array([p.category == c for p in pairs])) for c in categories}
    if plot is not None and labelled.any():
        reliability_plot(probability[labelled], outcome, plot)
    return {
        "accuracy": accuracy(labelled),
        "pairs": len(pairs),
        "labelled_pairs": int(labelled.sum()),
        "nll": nll,
        "ece": expected_calibration_error(probability[labelled], outcome) if labelled.any() else None,
        "per_category": per_category,
        "close_pairs": int(close.sum()),
        "close_pair_accuracy": accuracy(close),
        "single_annotator_agreement": single_annotator_agreement(pairs),
    }


Trainer = Callable[[list[PreferencePair], PairFeatures, RewardConfig], RewardModel]


def learning_curve(train_pairs: list[PreferencePair], train_features: PairFeatures,
                   test_pairs: Sequence[PreferencePair], test_features: PairFeatures, config: RewardConfig,
                   trainer: Trainer, budgets: Sequence[int], seed: int = 0, ensemble: int = 4,
                   repeats: int = 3) -> list[dict]:
    """Held-out accuracy against the number of training pairs, for random and for uncertain (active) selection,
    as the mean over `repeats` random orders (one order's curve is noisy at these sizes).

    `random`: a random subset of each size. `uncertain`: start from the first budget's random subset, then grow
    it to each next budget with the pool pairs an ensemble of `ensemble` heads trained on the current subset is
    least sure about (smallest |mean margin| / spread) — the strategy of `prefcap pairs --strategy uncertain`.
    The pairs already carry votes, so this replays active collection on data judged in advance.
    """
    budgets = sorted({min(b, len(train_pairs)) for b in budgets})
    labels = np.array([p.label for p in test_pairs])
    scout = RewardConfig(**{**config.__dict__, "ensemble": ensemble, "bootstrap": True})

    def accuracy_with(rows: np.ndarray) -> float:
        model = trainer([train_pairs[k] for k in rows], train_features.select(rows), config)
        predicted = model.preference(test_features).numpy() > 0.5
        return float((predicted == (labels > 0))[labels != 0].mean())

    runs: dict[tuple[str, int], list[float]] = {}
    for repeat in range(repeats):
        order = np.random.default_rng([seed, repeat]).permutation(len(train_pairs))
        for budget in budgets:
            runs.setdefault(("random", budget), []).append(accuracy_with(order[:budget]))
        chosen = order[: budgets[0]]
        runs.setdefault(("uncertain", budgets[0]), []).append(runs[("random", budgets[0])][-1])
        for budget in budgets[1:]:
            pool = np.setdiff1d(np.arange(len(train_pairs)), chosen)
            scouts = trainer([train_pairs[k] for k in chosen], train_features.select(chosen), scout)
            margins = scouts.member_margins(train_features.select(pool)).numpy()
            ranked = pool[np.argsort(certainty(margins), kind="stable")]
            chosen = np.concatenate([chosen, ranked[: budget - len(chosen)]])
            runs.setdefault(("uncertain", budget), []).append(accuracy_with(chosen))
    return [{"strategy": strategy, "pairs": budget, "accuracy": float(np.mean(values)), "runs": values}
            for (strategy, budget), values in runs.items()]
