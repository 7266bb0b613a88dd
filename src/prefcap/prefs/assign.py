"""Who judges what: every pair reaches its number of judgments, loads stay balanced, gold items are mixed in.

Assignment is incremental: run it again after adding pairs or annotators and it only tops up what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prefcap.errors import PrefcapError
from prefcap.prefs.store import Annotator, Store


@dataclass(frozen=True)
class AssignConfig:
    overlap: int = field(default=3, metadata={
        "help": "judgments per pair, so agreement between annotators can be measured"})
    gold_share: float = field(default=0.0, metadata={
        "help": "share of each annotator's queue taken by gold (known-answer) items"})
    seed: int = field(default=0, metadata={"help": "random seed"})


def plan_assignments(pairs: dict[int, set[int]], gold_pairs: list[int], annotators: list[int],
                     load: dict[int, int], config: AssignConfig) -> list[tuple[int, int, bool]]:
    """(pair, annotator, a_on_left) items to add. Each pair goes to the least-loaded annotators who lack it."""
    if config.overlap < 1:
        raise PrefcapError(f"overlap must be at least 1, got {config.overlap}")
    if not 0 <= config.gold_share < 1:
        raise PrefcapError(f"gold_share must be in [0, 1), got {config.gold_share}")
    if config.overlap > len(annotators):
        raise PrefcapError(f"overlap {config.overlap} needs at least that many annotators; there are {len(annotators)}")
    rng = np.random.default_rng(config.seed)
    load = {a: load.get(a, 0) for a in annotators}
    tie_break = {a: float(rng.random()) for a in annotators}
    plan: list[tuple[int, int, bool]] = []
    added: dict[int, int] = dict.fromkeys(annotators, 0)
    for pair in rng.permutation(sorted(pairs)).tolist():
        missing = config.overlap - len(pairs[pair])
        candidates = sorted((a for a in annotators if a not in pairs[pair]), key=lambda a: (load[a], tie_break[a]))
        for annotator in candidates[: max(missing, 0)]:
            plan.append((pair, annotator, bool(rng.random() < 0.5)))
            load[annotator] += 1
            added[annotator] += 1
    if config.gold_share and not gold_pairs:
        raise PrefcapError("gold_share > 0 but the store holds no gold pairs (pairs with a known answer)")
    for annotator in annotators if config.gold_share else []:
        wanted = round(added[annotator] * config.gold_share / (1 - config.gold_share))
        fresh = [p for p in rng.permutation(gold_pairs).tolist() if annotator not in pairs.get(p, set())]
        plan.extend((pair, annotator, bool(rng.random() < 0.5)) for pair in fresh[:wanted])
    # interleave: gold items must not be recognisable by their place in the queue
    order = rng.permutation(len(plan))
    return [plan[k] for k in order]


def assign(store: Store, config: AssignConfig, annotators: list[Annotator] | None = None) -> dict[str, int]:
    """Top up every non-gold pair to `overlap` judgments among `annotators` (default: every annotator)."""
    annotators = annotators if annotators is not None else store.annotators()
    if not annotators:
        raise PrefcapError("no annotators: add some with 'prefcap annotators add NAME'")
    state = store.assignment_counts()
    regular = {p: who for p, who in state["assigned"].items() if state["gold"][p] is None}
    gold = [p for p, answer in state["gold"].items() if answer is not None]
    load: dict[int, int] = {}
    for who in state["assigned"].values():
        for annotator in who:
            load[annotator] = load.get(annotator, 0) + 1
    ids = [a.id for a in annotators]
    plan = plan_assignments(regular, gold, ids, load, config)
    added = store.add_assignments(plan)
    gold_set = set(gold)
    return {"assignments": added, "gold_assignments": sum(p in gold_set for p, _, _ in plan),
            "annotators": len(ids), "pairs": len(regular)}
