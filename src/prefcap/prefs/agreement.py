"""Quality of the collected judgments: agreement with gold items and between annotators, time per judgment.

This is what the admin page shows and what a team watches while collecting: an annotator far below the others
on gold or on kappa is clicking at random or has misread the guidelines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import combinations
from statistics import median

import numpy as np
from sklearn.metrics import cohen_kappa_score

CATEGORIES = ("a", "b", "tie")


def fleiss_kappa(ratings: list[list[str]]) -> float | None:
    """Fleiss' kappa over items each rated by the same number (≥ 2) of raters; None when undefined."""
    items = [r for r in ratings if len(r) >= 2]
    if not items:
        return None
    raters = min(len(r) for r in items)
    counts = np.array([[r[:raters].count(c) for c in CATEGORIES] for r in items], dtype=float)
    per_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares**2).sum())
    if expected >= 1.0:
        return None  # everyone always gave the same answer: agreement beyond chance is undefined
    return float((per_item.mean() - expected) / (1 - expected))


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    if len(first) < 2 or len(set(first) | set(second)) < 2:
        return None
    value = cohen_kappa_score(first, second, labels=list(CATEGORIES))
    return None if np.isnan(value) else float(value)


def agreement_report(rows: Iterable[Mapping]) -> dict:
    """Per-annotator and overall figures from `Store.judgment_rows()` (or its stream)."""
    by_pair: dict[int, dict[str, str]] = defaultdict(dict)
    per_annotator: dict[str, dict] = defaultdict(lambda: {"judgments": 0, "gold_items": 0, "gold_correct": 0,
                                                          "seconds": []})
    for row in rows:
        stats = per_annotator[row["annotator"]]
        stats["judgments"] += 1
        if row["seconds"] is not None:
            stats["seconds"].append(row["seconds"])
        if row["gold"] is not None:
            stats["gold_items"] += 1
            stats["gold_correct"] += row["choice"] == row["gold"]
        else:
            by_pair[row["pair_id"]][row["annotator"]] = row["choice"]

    names = sorted(per_annotator)
    # the verdicts each two annotators gave on the pairs they both judged, in one pass over the pairs
    shared: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for votes in by_pair.values():
        for first, second in combinations(sorted(votes), 2):
            shared[first, second][0].append(votes[first])
            shared[first, second][1].append(votes[second])
    pairwise: dict[str, dict[str, float | None]] = {name: {} for name in names}
    for first, second in combinations(names, 2):
        pairwise[first][second] = pairwise[second][first] = cohen_kappa(*shared.get((first, second), ([], [])))

    annotators = []
    for name in names:
        stats = per_annotator[name]
        kappas = [k for k in pairwise[name].values() if k is not None]
        annotators.append({
            "annotator": name,
            "judgments": stats["judgments"],
            "gold_items": stats["gold_items"],
            "gold_accuracy": stats["gold_correct"] / stats["gold_items"] if stats["gold_items"] else None,
            "mean_cohen_kappa": float(np.mean(kappas)) if kappas else None,
            "median_seconds": median(stats["seconds"]) if stats["seconds"] else None,
        })
    all_seconds = [s for stats in per_annotator.values() for s in stats["seconds"]]
    return {
        "annotators": annotators,
        "cohen_kappa": pairwise,
        "fleiss_kappa": fleiss_kappa([list(votes.values()) for votes in by_pair.values()]),
        "pairs_with_two_or_more": sum(len(votes) >= 2 for votes in by_pair.values()),
        "median_seconds": median(all_seconds) if all_seconds else None,
    }
