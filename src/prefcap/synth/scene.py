"""Acoustic scenes with exact metadata, and the two domains they are drawn from.

A scene has 1-3 events: foreground *steps* that happen one after another (events within a step overlap)
and at most one soft background event that lasts the whole clip. The `source` domain is what the
baseline captioner is trained on; `target` is where alignment happens. They differ on purpose: events
that are rare in source are common in target, and co-occurrences that are habits in source (rain with
wind, a siren with an engine) are independent in target — so a source-trained captioner misses rare
events and hallucinates habitual partners there. A third, `general` domain covers all classes and
layouts evenly; the offline CLAP is trained on it, as LAION's CLAP is trained on broad data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from prefcap.synth.lexicon import CLASS_NAMES, CLASSES


@dataclass(frozen=True)
class Event:
    cls: str
    attributes: dict[str, str]  # loudness always; pitch / rate where the class has them
    onset: float
    offset: float
    background: bool = False


@dataclass(frozen=True)
class Scene:
    events: tuple[Event, ...]
    steps: tuple[tuple[int, ...], ...]  # foreground event indices, in time order
    background: int | None
    duration: float

    def to_dict(self) -> dict:
        return {
            "events": [asdict(e) for e in self.events],
            "steps": [list(s) for s in self.steps],
            "background": self.background,
            "duration": self.duration,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        return cls(
            events=tuple(Event(**e) for e in data["events"]),
            steps=tuple(tuple(s) for s in data["steps"]),
            background=data["background"],
            duration=data["duration"],
        )

    @property
    def classes(self) -> set[str]:
        return {e.cls for e in self.events}

    def step_of(self, cls: str) -> int | None:
        """Index of the foreground step holding `cls`; None for the background or an absent class."""
        for position, step in enumerate(self.steps):
            if any(self.events[i].cls == cls for i in step):
                return position
        return None


# (foreground step sizes, has background) -> the scene layouts.
STRUCTURES: dict[str, tuple[tuple[int, ...], bool]] = {
    "single": ((1,), False),
    "sequence": ((1, 1), False),
    "overlap": ((2,), False),
    "background": ((1,), True),
    "sequence3": ((1, 1, 1), False),
    "overlap_then": ((2, 1), False),
    "then_overlap": ((1, 2), False),
    "sequence_background": ((1, 1), True),
    "overlap_background": ((2,), True),
}


@dataclass(frozen=True)
class Domain:
    name: str
    class_weights: dict[str, float]
    structure_weights: dict[str, float]
    # class -> (partner, probability): when `class` is in a scene, the next free slot takes `partner`.
    habits: dict[str, tuple[str, float]] = field(default_factory=dict)
    loud_prob: float = 0.5
    high_prob: float = 0.5
    fast_prob: float = 0.5


_RARE_IN_SOURCE = ("beeping", "bell", "whistle", "piano", "alarm")

DOMAINS: dict[str, Domain] = {
    "source": Domain(
        name="source",
        class_weights={c: (0.35 if c in _RARE_IN_SOURCE else 2.5) for c in CLASS_NAMES},
        structure_weights={"single": 0.3, "sequence": 0.12, "overlap": 0.15, "background": 0.28,
                           "sequence3": 0.02, "overlap_then": 0.03, "then_overlap": 0.02,
                           "sequence_background": 0.04, "overlap_background": 0.04},
        habits={"rain": ("wind", 0.75), "siren": ("engine", 0.7), "footsteps": ("knocking", 0.6),
                "birds": ("wind", 0.5), "drum": ("piano", 0.5), "clock": ("footsteps", 0.5)},
        loud_prob=0.7, high_prob=0.65, fast_prob=0.4,
    ),
    # Broad, even coverage: what the offline CLAP is trained on, standing in for LAION-scale pretraining.
    "general": Domain(
        name="general",
        class_weights={c: 1.0 for c in CLASS_NAMES},
        structure_weights={name: 1.0 for name in STRUCTURES},
    ),
    "target": Domain(
        name="target",
        class_weights={c: (2.5 if c in _RARE_IN_SOURCE else 1.0) for c in CLASS_NAMES},
        structure_weights={"single": 0.12, "sequence": 0.25, "overlap": 0.1, "background": 0.13,
                           "sequence3": 0.1, "overlap_then": 0.06, "then_overlap": 0.06,
                           "sequence_background": 0.1, "overlap_background": 0.08},
        loud_prob=0.5, high_prob=0.4, fast_prob=0.55,
    ),
}

_MARGIN, _GAP = 0.15, 0.25


def _weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = sorted(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _fill_slot(rng: np.random.Generator, domain: Domain, chosen: list[str], background: bool) -> str:
    def fits(name: str) -> bool:
        return name not in chosen and (not background or CLASSES[name].can_be_background)

    for present in chosen:
        partner, probability = domain.habits.get(present, (None, 0.0))
        if partner and fits(partner) and rng.random() < probability:
            return partner
    return _weighted_choice(rng, {c: w for c, w in domain.class_weights.items() if fits(c)})


def _attributes(rng: np.random.Generator, domain: Domain, cls: str, background: bool) -> dict[str, str]:
    event_class = CLASSES[cls]
    loud = not background and rng.random() < domain.loud_prob
    attributes = {"loudness": "loud" if loud else "soft"}
    if event_class.has_pitch:
        attributes["pitch"] = "high" if rng.random() < domain.high_prob else "low"
    if event_class.has_rate:
        attributes["rate"] = "fast" if rng.random() < domain.fast_prob else "slow"
    return attributes


def sample_scene(rng: np.random.Generator, domain: str | Domain) -> Scene:
    """Draw one scene: its layout, classes (with the domain's habits), attributes and timing."""
    domain = DOMAINS[domain] if isinstance(domain, str) else domain
    step_sizes, has_background = STRUCTURES[_weighted_choice(rng, domain.structure_weights)]
    duration = round(float(rng.uniform(4.0, 5.0)), 3)

    chosen: list[str] = []
    for _ in range(sum(step_sizes)):
        chosen.append(_fill_slot(rng, domain, chosen, background=False))
    if has_background:
        chosen.append(_fill_slot(rng, domain, chosen, background=True))

    slot = (duration - 2 * _MARGIN - (len(step_sizes) - 1) * _GAP) / len(step_sizes)
    events, steps, index = [], [], 0
    for position, size in enumerate(step_sizes):
        start = _MARGIN + position * (slot + _GAP)
        members = []
        for _ in range(size):
            onset = start + float(rng.uniform(0, 0.15 * slot))
            offset = start + slot - float(rng.uniform(0, 0.15 * slot))
            cls = chosen[index]
            events.append(Event(cls, _attributes(rng, domain, cls, False), round(onset, 3), round(offset, 3)))
            members.append(index)
            index += 1
        steps.append(tuple(members))
    background = None
    if has_background:
        cls = chosen[index]
        events.append(Event(cls, _attributes(rng, domain, cls, True), 0.0, duration, background=True))
        background = index
    return Scene(tuple(events), tuple(steps), background, duration)
