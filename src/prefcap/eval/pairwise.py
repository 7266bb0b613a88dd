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
    # the interval holds p in exact arithmetic; rounding can leave p a hair outside it at 0 or 1 (then plotted
    # error bars would be negative)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided p-value that a and b are preferred equally often (1.0 without non-tie clips)."""
    return float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0


def clip_outcomes(clips: Sequence[Clip], captions_a: Mapping[str, str], captions_b: Mapping[str, str], judge: Judge,
                  seed: int = 0) -> list[Choice]:
    """The judge's verdict per clip, from system a's side, each clip shown in a random order."""
    rng = np.random.default_rng(seed)
    outcomes: list[Choice] = []
    for clip in clips:
        text_a, text_b = captions_a[clip.id], captions_b[clip.id]
        if text_a.strip().lower() == text_b.strip().lower():
            outcomes.append("tie")
            continue
        a_first = bool(rng.integers(2))
        verdict = judge(clip, text_a, text_b) if a_first else judge(clip, text_b, text_a)
        outcomes.append(verdict if a_first or verdict == "tie" else {"a": "b", "b": "a"}[verdict])
    return outcomes


def summarise(outcomes: Sequence[Choice], *, a: str, b: str, judge_name: str) -> dict:
    """DESIGN.md's `pairwise` record from per-clip outcomes."""
    wins, losses, ties = outcomes.count("a"), outcomes.count("b"), outcomes.count("tie")
    low, high = wilson_interval(wins, wins + losses)
    return {"a": a, "b": b, "judge": judge_name, "clips": len(outcomes), "wins": wins, "losses": losses, "ties": ties,
            "win_rate": wins / (wins + losses) if wins + losses else None, "ci_low": low, "ci_high": high,
            "sign_test_p": sign_test(wins, losses)}


def bradley_terry(records: Sequence[tuple[str, str, Sequence[Choice]]], systems: Sequence[str],
                  bootstrap: int = 200, seed: int = 0) -> list[dict]:
    """A Bradley–Terry ranking from per-clip outcomes of (a, b, outcomes) comparisons: log-strengths (mean 0, a
    tie counts half a win each way) with 95 % percentile intervals from resampling clips (the same clips for
    every comparison when they all judged the same clip list); best first."""
    index = {name: k for k, name in enumerate(systems)}

    def fit(rows: Sequence[tuple[str, str, Sequence[Choice]]]) -> np.ndarray:
        wins = np.full((len(systems), len(systems)), 0.1)  # a tiny prior keeps unbeaten systems finite
        np.fill_diagonal(wins, 0.0)
        for a, b, outcomes in rows:
            for outcome in outcomes:
                score = {"a": 1.0, "b": 0.0, "tie": 0.5}[outcome]
                wins[index[a], index[b]] += score
                wins[index[b], index[a]] += 1 - score
        games = wins + wins.T
        strength = np.ones(len(systems))
        for _ in range(500):  # Zermelo / MM iterations
            denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
            strength = wins.sum(axis=1) / denominator
            strength /= np.exp(np.log(strength).mean())
        return np.log(strength)

    point = fit(records)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        lengths = {len(outcomes) for _, _, outcomes in records}
        shared = rng.integers(min(lengths), size=min(lengths)) if len(lengths) == 1 else None
        resampled = []
        for a, b, outcomes in records:
            picks = shared if shared is not None else rng.integers(len(outcomes), size=len(outcomes))
            resampled.append((a, b, [outcomes[k] for k in picks]))
        samples.append(fit(resampled))
    low, high = np.percentile(np.array(samples), [2.5, 97.5], axis=0) if samples else (point, point)
    ranking = [{"system": name, "bt_score": float(point[k]), "ci_low": float(low[k]), "ci_high": float(high[k])}
               for name, k in index.items()]
    return sorted(ranking, key=lambda row: -row["bt_score"])
