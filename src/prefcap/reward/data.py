"""Preference data as the reward model sees it: one record per distinct pair with its votes, then targets and
clip-grouped splits.

Real judgments are messy. The rules here are the ones used everywhere in prefcap:
- the same two captions of a clip judged twice (in either order, by anyone) are one pair with merged votes;
- a pair's label is the sign of its vote sum (a = +1, b = -1, tie = 0), as in FENSE; zero-sum pairs carry
  no label and are left out of accuracy;
- splits are by clip, never by pair, so no clip's audio is on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from prefcap.errors import PrefcapError


@dataclass(frozen=True)
class PreferencePair:
    clip_id: str
    caption_a: str
    caption_b: str
    votes_a: int
    votes_b: int
    votes_tie: int
    category: str | None = None  # e.g. FENSE's HC / HI / HM / MM

    @property
    def n_votes(self) -> int:
        return self.votes_a + self.votes_b + self.votes_tie

    @property
    def label(self) -> int:
        """+1 when a is preferred, -1 when b is, 0 when the votes cancel out (FENSE's rule)."""
        return int(np.sign(self.votes_a - self.votes_b))

    @property
    def unanimous(self) -> bool:
        return max(self.votes_a, self.votes_b, self.votes_tie) == self.n_votes

    def swapped(self) -> PreferencePair:
        return PreferencePair(self.clip_id, self.caption_b, self.caption_a, self.votes_b, self.votes_a,
                              self.votes_tie, self.category)


def category_of(origin: str | None) -> str | None:
    """'fense:MM_2' -> 'MM'; origins without a ':' (pair strategies) carry no category."""
    if not origin or ":" not in origin:
        return None
    return re.sub(r"_\d+$", "", origin.split(":", 1)[1])


def pairs_from_rows(rows: Iterable[Mapping], include_gold: bool = False) -> list[PreferencePair]:
    """Merge `Store.judgment_rows()` into one record per (clip, unordered caption pair), in first-seen order."""
    merged: dict[tuple[str, str, str], list] = {}
    for row in rows:
        if row["gold"] is not None and not include_gold:
            continue
        a, b = row["caption_a"], row["caption_b"]
        key = (row["clip_id"], *sorted((a, b)))
        if key not in merged:
            merged[key] = [row["clip_id"], a, b, 0, 0, 0, category_of(row.get("origin"))]
        record = merged[key]
        choice = row["choice"]
        if choice != "tie" and a != record[1]:  # stored the other way round: the same verdict, other letter
            choice = {"a": "b", "b": "a"}[choice]
        record[{"a": 3, "b": 4, "tie": 5}[choice]] += 1
    return [PreferencePair(*record) for record in merged.values()]


def preference_targets(pairs: Sequence[PreferencePair], target: str = "soft",
                       ties: str = "half") -> tuple[list[PreferencePair], np.ndarray]:
    """The pairs a model trains on and P(a ≻ b) targets for them.

    target="soft": the share of votes for a (a tie vote counts half with ties="half", not at all with "drop");
    target="majority": 1 / 0 by the sign of the vote sum; a zero-sum pair is 0.5 ("half") or dropped ("drop").
    A tie is never counted as a win for either side.
    """
    if target not in ("soft", "majority"):
        raise PrefcapError(f"target must be 'soft' or 'majority', got {target!r}")
    if ties not in ("half", "drop"):
        raise PrefcapError(f"ties must be 'half' or 'drop', got {ties!r}")
    kept, values = [], []
    for pair in pairs:
        if target == "soft":
            tie_weight = 0.5 if ties == "half" else 0.0
            total = pair.votes_a + pair.votes_b + (pair.votes_tie if ties == "half" else 0)
            if total == 0:
                continue
            value = (pair.votes_a + tie_weight * pair.votes_tie) / total
        else:
            if pair.label == 0 and ties == "drop":
                continue
            value = {1: 1.0, -1: 0.0, 0: 0.5}[pair.label]
        kept.append(pair)
        values.append(value)
    return kept, np.asarray(values, dtype=np.float32)


def clip_folds(pairs: Sequence[PreferencePair], k: int, seed: int = 0) -> list[list[int]]:
    """k disjoint groups of pair indices, split by clip (every pair of a clip in one fold), sizes balanced."""
    if k < 2:
        raise PrefcapError(f"need at least 2 folds, got {k}")
    clips = sorted({p.clip_id for p in pairs})
    if len(clips) < k:
        raise PrefcapError(f"{len(clips)} clips cannot make {k} clip-disjoint folds")
    order = np.random.default_rng(seed).permutation(len(clips))
    fold_of = {clips[index]: rank % k for rank, index in enumerate(order)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for index, pair in enumerate(pairs):
        folds[fold_of[pair.clip_id]].append(index)
    return folds


def split_by_clip(pairs: Sequence[PreferencePair], test_fraction: float,
                  seed: int = 0) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, test) with about `test_fraction` of the clips held out, all their pairs with them."""
    if not 0 < test_fraction < 1:
        raise PrefcapError(f"test_fraction must be in (0, 1), got {test_fraction}")
    clips = sorted({p.clip_id for p in pairs})
    if len(clips) < 2:
        raise PrefcapError(f"a clip-grouped split needs at least 2 clips, got {len(clips)}")
    rng = np.random.default_rng(seed)
    n_test = min(len(clips) - 1, max(1, round(test_fraction * len(clips))))
    held_out = set(rng.choice(clips, n_test, replace=False).tolist())
    return [p for p in pairs if p.clip_id not in held_out], [p for p in pairs if p.clip_id in held_out]
