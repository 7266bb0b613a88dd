"""Pairwise evaluation: Wilson intervals and sign tests against known values, blind order, one outcome per clip."""

from __future__ import annotations

import pytest

from prefcap.data.records import Clip
from prefcap.eval.pairwise import bradley_terry, clip_outcomes, sign_test, summarise, wilson_interval


def test_wilson_interval_and_sign_test_match_published_values():
    low, high = wilson_interval(65, 100)
    assert (low, high) == pytest.approx((0.5525, 0.7364), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    # all wins or all losses: the rate lies inside its interval exactly (rounding once left it a hair outside)
    assert all(low <= wins / n <= high for n in range(1, 300) for wins in (0, n)
               for low, high in [wilson_interval(wins, n)])
    assert sign_test(65, 35) == pytest.approx(0.00352, abs=1e-4)
    assert sign_test(0, 0) == 1.0


def test_compare_counts_from_a_s_side_whatever_the_order_shown():
    clips = [Clip(id=f"c{k}") for k in range(200)]
    a = {c.id: f"a long caption number {k}" for k, c in enumerate(clips)}
    b = {c.id: "short" for c in clips}
    b["c0"] = a["c0"]  # identical captions: a tie without asking

    def prefers_longer(clip, first, second):
        return "a" if len(first) > len(second) else "b"

    result = summarise(clip_outcomes(clips, a, b, prefers_longer), a="long", b="short", judge_name="toy")
    assert (result["wins"], result["losses"], result["ties"], result["clips"]) == (199, 0, 1, 200)
    assert result["win_rate"] == 1.0

    shown_first = []

    def prefers_left(clip, first, second):
        shown_first.append(first == a[clip.id])
        return "a"

    blind = summarise(clip_outcomes(clips, a, b, prefers_left, seed=3), a="long", b="short", judge_name="toy")
    assert 70 < sum(shown_first) < 130  # order randomised per clip
    assert blind["wins"] == sum(shown_first) and blind["losses"] == len(shown_first) - sum(shown_first)


def test_bradley_terry_orders_systems_and_brackets_its_scores():
    outcomes = {("a", "b"): ["a"] * 80 + ["b"] * 20, ("b", "c"): ["a"] * 70 + ["b"] * 30,
                ("a", "c"): ["a"] * 90 + ["tie"] * 10}
    ranking = bradley_terry([(a, b, o) for (a, b), o in outcomes.items()], ["c", "b", "a"], bootstrap=100)
    assert [row["system"] for row in ranking] == ["a", "b", "c"]
    assert sum(row["bt_score"] for row in ranking) == pytest.approx(0.0, abs=1e-6)
    for row in ranking:
        assert row["ci_low"] <= row["bt_score"] <= row["ci_high"]
    # 80 % wins of a over b: a Bradley–Terry gap near log(4) between them
    gap = ranking[0]["bt_score"] - ranking[1]["bt_score"]
    assert 0.8 < gap < 2.2
