"""Blind pairwise preference between two systems, one outcome per clip, with honest intervals.

Each clip's two captions go to the judge in a random left/right order (so a judge's position bias cannot favour
either system); the judge's answer for the clip — for a panel, its majority, the sign of the vote sum — is one
outcome: win, loss or tie from system a's side. Identical captions are a tie without asking. The win rate is
wins / (wins + losses); ties are reported, not counted. The interval is Wilson's 95 % score interval and the test
a two-sided sign test (exact binomial on the non-tie clips).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.stats import binomtest

from prefcap.data.records import Choice, Clip

Judge = Callable[[Clip, str, str], Choice]


def wilson_interval(wins: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided p-value that a and b are preferred equally often (1.0 without non-tie clips)."""
    return float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0


def compare(clips: Sequence[Clip], captions_a: Mapping[str, str], captions_b: Mapping[str, str], judge: Judge, *,
            a: str, b: str, judge_name: str, seed: int = 0) -> dict:
    """One outcome per clip for system a against system b (DESIGN.md's `pairwise` record)."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for clip in clips:
        text_a, text_b = captions_a[clip.id], captions_b[clip.id]
        if text_a.strip().lower() == text_b.strip().lower():
            outcomes.append("tie")
            continue
        a_first = bool(rng.integers(2))
        verdict = judge(clip, text_a, text_b) if a_first else judge(clip, text_b, text_a)
        outcomes.append(verdict if a_first or verdict == "tie" else {"a": "b", "b": "a"}[verdict])
    wins, losses, ties = outcomes.count("a"), outcomes.count("b"), outcomes.count("tie")
    low, high = wilson_interval(wins, wins + losses)
    return {"a": a, "b": b, "judge": judge_name, "clips": len(clips), "wins": wins, "losses": losses, "ties": ties,
            "win_rate": wins / (wins + losses) if wins + losses else None, "ci_low": low, "ci_high": high,
            "sign_test_p": sign_test(wins, losses)}
