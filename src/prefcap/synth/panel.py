"""Simulated annotators as people differ: noise, ties, position and length biases — over any way of reading.

A panel is a `Listener` (how a caption of a clip is read and scored: its quality) plus a group of annotators who
share it and differ in what people differ in: how much each kind of fault weighs (jittered weights), how noisy
their verdicts are (Bradley–Terry logistic or Thurstone Gaussian noise), when they call a tie, whether they
favour the caption shown first, and the longer one. The training panel's and the evaluation panel's listeners are
written separately (`judge.py`, `eval_judge/`); only this machinery is shared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from prefcap.data.records import Choice, Clip


class Listener(Protocol):
    """How a panel reads captions: a caption's quality for a clip under some weights, and its length."""

    def quality(self, text: str, clip: Clip, weights: Any) -> float: ...

    def n_words(self, text: str) -> int: ...


def stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass(frozen=True)
class SimulatedAnnotator:
    """One simulated listener. The same question always gets the same answer (seeded by its content)."""

    name: str
    listener: Listener
    weights: Any  # the listener's weights dataclass, with this annotator's jitter
    noise: str = "logistic"  # "logistic" (Bradley–Terry) or "gaussian" (Thurstone)
    temperature: float = 0.3
    tie_threshold: float = 0.2
    position_bias: float = 0.0  # added to the caption shown first (a)
    length_preference: float = 0.0  # added per word that a is longer than b
    seed: int = 0

    def margin(self, clip: Clip, caption_a: str, caption_b: str, position: bool = True) -> float:
        """How much better a looks than b to this annotator, before noise (`position=False`: without the bias
        for the caption shown first, i.e. as if the order were balanced)."""
        quality_a = self.listener.quality(caption_a, clip, self.weights)
        quality_b = self.listener.quality(caption_b, clip, self.weights)
        length_gap = self.listener.n_words(caption_a) - self.listener.n_words(caption_b)
        return quality_a - quality_b + self.position_bias * position + self.length_preference * length_gap

    def prefer(self, clip: Clip, caption_a: str, caption_b: str) -> Choice:
        rng = np.random.default_rng(stable_seed(self.name, self.seed, clip.id, caption_a, caption_b))
        noise = rng.logistic() if self.noise == "logistic" else rng.standard_normal()
        margin = self.margin(clip, caption_a, caption_b) + self.temperature * noise
        if abs(margin) < self.tie_threshold:
            return "tie"
        return "a" if margin > 0 else "b"


@dataclass(frozen=True)
class PanelSpec:
    """How to build a panel: its listener, mean weights, and the spread of each annotator's traits."""

    name: str
    size: int
    listener: Listener
    weights: Any
    jittered: tuple[str, ...]  # the weights each annotator scales by exp(N(0, weight_jitter))
    weight_jitter: float
    noise: str
    temperature: tuple[float, float]
    tie_threshold: tuple[float, float]
    position_bias_sd: float
    length_preference_sd: float


@dataclass
class Panel:
    name: str
    annotators: list[SimulatedAnnotator] = field(default_factory=list)

    def votes(self, clip: Clip, caption_a: str, caption_b: str) -> list[Choice]:
        return [annotator.prefer(clip, caption_a, caption_b) for annotator in self.annotators]

    def majority(self, clip: Clip, caption_a: str, caption_b: str) -> Choice:
        """The panel's verdict: the sign of the vote sum (a = +1, b = -1, tie = 0), as in FENSE."""
        return majority(self.votes(clip, caption_a, caption_b))

    def noise_free_margin(self, clip: Clip, caption_a: str, caption_b: str) -> float:
        """The annotators' mean margin without noise or position bias: what the panel means, not what it says."""
        return float(np.mean([a.margin(clip, caption_a, caption_b, position=False) for a in self.annotators]))


def majority(votes: list[Choice]) -> Choice:
    total = sum({"a": 1, "b": -1, "tie": 0}[v] for v in votes)
    return "a" if total > 0 else "b" if total < 0 else "tie"


def build_panel(spec: PanelSpec, seed: int = 0) -> Panel:
    rng = np.random.default_rng(stable_seed("panel", spec.name, seed))
    panel = Panel(spec.name)
    for k in range(spec.size):
        scaled = {w: getattr(spec.weights, w) * float(np.exp(rng.normal(0, spec.weight_jitter)))
                  for w in spec.jittered}
        panel.annotators.append(
            SimulatedAnnotator(
                name=f"{spec.name}-{k}",
                listener=spec.listener,
                weights=replace(spec.weights, **scaled),
                noise=spec.noise,
                temperature=float(rng.uniform(*spec.temperature)),
                tie_threshold=float(rng.uniform(*spec.tie_threshold)),
                position_bias=float(rng.normal(0, spec.position_bias_sd)),
                length_preference=float(rng.normal(0, spec.length_preference_sd)),
                seed=seed,
            )
        )
    return panel
