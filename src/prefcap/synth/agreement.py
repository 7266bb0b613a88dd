"""Agreement statistics of the simulated annotators on constructed pairs (prefcap.synth.faults): how they are
checked before they label anything."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from prefcap.data.records import Clip
from prefcap.synth import panels
from prefcap.synth.faults import SINGLE_FAULTS, Pair, machine_like_pairs, single_fault_pair
from prefcap.synth.independence import panel_independence
from prefcap.synth.judge import scene_of
from prefcap.synth.panel import Panel, SimulatedAnnotator


def win_rate(annotators: Sequence[SimulatedAnnotator], pairs: Sequence[Pair]) -> float:
    """Share of (annotator, pair) judgments that prefer caption a (ties count as not winning)."""
    verdicts = [annotator.prefer(clip, a, b) for clip, a, b in pairs for annotator in annotators]
    return sum(v == "a" for v in verdicts) / len(verdicts)


def pairwise_agreement(annotators: Sequence[SimulatedAnnotator], pairs: Sequence[Pair]) -> float:
    """Mean over annotator pairs of the share of items both label the same (a, b or tie)."""
    labels = [[annotator.prefer(clip, a, b) for clip, a, b in pairs] for annotator in annotators]
    rates = [np.mean([x == y for x, y in zip(p, q, strict=True)]) for p, q in itertools.combinations(labels, 2)]
    return float(np.mean(rates))


def panel_agreement(first: Panel, second: Panel, pairs: Sequence[Pair]) -> float:
    """Share of items on which the two panels' majority verdicts are the same."""
    return float(np.mean([first.majority(*pair) == second.majority(*pair) for pair in pairs]))


def annotator_report(clips: Sequence[Clip], seed: int = 0, n_pairs: int = 600) -> dict:
    """The annotator checks in one place: reference-vs-fault win rates, agreement within each panel on
    machine-like pairs, and agreement and independence between the training and the evaluation panel."""
    rng = np.random.default_rng(seed)
    built = {name: panels.build(name, seed) for name in panels.PANELS}
    report: dict = {"clips": len(clips), "machine_like_pairs": n_pairs, "reference_win_rate": {}}
    multi_event = [c for c in clips if len(scene_of(c).events) > 1]
    for fault in SINGLE_FAULTS:
        pool = multi_event if fault == "drop" else clips
        pairs = [(clip, *single_fault_pair(clip, fault, rng)) for clip in pool]
        report["reference_win_rate"][fault] = {name: win_rate(p.annotators, pairs) for name, p in built.items()}
    machine_pairs = machine_like_pairs(clips, rng, n_pairs)
    report["within_panel_agreement"] = {
        name: pairwise_agreement(p.annotators, machine_pairs) for name, p in built.items()
    }
    report["between_panel_agreement"] = panel_agreement(built["train"], built["eval"], machine_pairs)
    report["independence"] = panel_independence(built["train"], built["eval"], machine_pairs, examples=5)
    return report
