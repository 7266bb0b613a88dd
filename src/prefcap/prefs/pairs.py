"""Candidate pairs for preference collection: sample varied captions per clip, de-duplicate, choose pairs.

Each captioner writes several candidates per clip under varied decoding (greedy, beam, temperatures, top-p), so a
pair can compare two systems or two decodings of one system. Candidates that differ only in case, spacing or final
punctuation are one candidate: annotators cannot prefer one of them for a reason. The first one seen is kept with
its original text (annotators judge what a system really wrote); captioners go in the order given, then decodings,
then references.

Pairs are chosen by a strategy within a budget of N pairs over M clips, spread evenly over the clips:
`random` (any two candidates), `cross-system` (two systems) and `uncertain` (the pairs the reward ensemble is least
sure about: the most information per judgment). A `contrast_fraction` of the budget goes to contrast pairs: a
candidate against a damaged copy of itself (`prefs/perturb.py`), stored with origin `contrast:<kind>`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from prefcap.captioners.base import Captioner, Decoding
from prefcap.captioners.infer import caption_clips
from prefcap.data.records import Caption, Clip
from prefcap.errors import PrefcapError
from prefcap.prefs.perturb import perturb
from prefcap.prefs.store import NewPair, Store

STRATEGIES = ("random", "cross-system", "uncertain")
REFERENCE = "reference"

# The system's best guess, its beams, and samples from sharp to loose.
DEFAULT_DECODINGS = (
    Decoding(),
    Decoding(mode="beam", num_beams=4),
    Decoding(mode="sample", temperature=0.7),
    Decoding(mode="sample", temperature=1.0),
    Decoding(mode="sample", temperature=1.0, top_p=0.9),
)

# (clip, candidate texts) -> [n_members, len(texts)] scores of a reward model ensemble.
Scorer = Callable[[Clip, list[str]], np.ndarray]

_TRAILING = ".,;:!?\u2026"
_EPS = 1e-6


@dataclass(frozen=True)
class PairsConfig:
    num_pairs: int = field(metadata={"help": "N, the budget of pairs"})
    num_clips: int | None = field(default=None, metadata={
        "help": "M, clips drawn from those given (None: all of them)"})
    strategy: str = field(default="random", metadata={"help": "how pairs are chosen: " + ", ".join(STRATEGIES)})
    decodings: tuple[Decoding, ...] = field(default=DEFAULT_DECODINGS, metadata={
        "help": 'how candidates are decoded, a JSON list of Decoding objects, e.g. [{"mode": "beam"}]'})
    samples_per_decoding: int = field(default=2, metadata={
        "help": "captions per clip of a sampled decoding (beam: at most num_beams; greedy: 1)"})
    include_references: bool = field(default=False, metadata={
        "help": "references become candidates too (system 'reference')"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    batch_size: int = field(default=32, metadata={"help": "clips captioned per batch"})
    contrast_fraction: float = field(default=0.0, metadata={
        "help": "share of the N pairs that set a candidate against a damaged copy of itself"})

    def __post_init__(self) -> None:
        if not 0 <= self.contrast_fraction < 1:
            raise PrefcapError(f"contrast_fraction must be in [0, 1), got {self.contrast_fraction}")
        if self.strategy not in STRATEGIES:
            raise PrefcapError(f"unknown pair strategy {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")
        for name in ("num_pairs", "samples_per_decoding", "batch_size"):
            if getattr(self, name) < 1:
                raise PrefcapError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_clips is not None and self.num_clips < 1:
            raise PrefcapError(f"num_clips must be at least 1 (or None for all clips), got {self.num_clips}")
        if not self.decodings:
            raise PrefcapError("no decodings: give at least one")


@dataclass(frozen=True)
class Candidate:
    """One caption of a clip, with the system and decoding settings (None for a reference) that produced it."""

    text: str
    system: str
    decoding: dict | None = None


def normalise(text: str) -> str:
    """The de-duplication key: lower case, single spaces, no surrounding spaces or final punctuation."""
    return re.sub(r"\s+", " ", text).strip().lower().rstrip(_TRAILING + " ")


def choose_clips(clips: Sequence[Clip], config: PairsConfig) -> list[Clip]:
    """The M clips of the budget, drawn with the seed and kept in their given order (so choosing twice is a no-op)."""
    if config.num_clips is None or config.num_clips >= len(clips):
        return list(clips)
    rng = np.random.default_rng([config.seed, 0])
    return [clips[k] for k in sorted(rng.choice(len(clips), config.num_clips, replace=False).tolist())]


def sample_candidates(captioners: Mapping[str, Captioner], clips: Sequence[Clip], config: PairsConfig, *,
                      references: Iterable[Caption] | None = None,
                      progress: bool = True) -> dict[str, list[Candidate]]:
    """Distinct non-empty candidates per clip id. A clip whose audio is unusable gets an empty list.

    Seeds torch with `config.seed` so that sampling repeats (on the same device and library versions).
    """
    if not captioners and not config.include_references:
        raise PrefcapError("no captioners to sample candidates from")
    candidates: dict[str, list[Candidate]] = {clip.id: [] for clip in clips}
    seen: dict[str, set[str]] = {clip.id: set() for clip in clips}

    def add(clip_id: str, candidate: Candidate) -> None:
        key = normalise(candidate.text)
        if key and key not in seen[clip_id]:
            seen[clip_id].add(key)
            candidates[clip_id].append(candidate)

    torch.manual_seed(config.seed)
    for system, captioner in captioners.items():
        for decoding in config.decodings:
            captions, _rejected = caption_clips(captioner, clips, system, _per_clip(decoding, config),
                                                decoding, config.batch_size, progress)
            for caption in captions:
                add(caption.clip_id, Candidate(caption.text, system, asdict(decoding)))
    if config.include_references:
        given = [caption for caption in references or () if caption.source == REFERENCE]
        if not given:
            raise PrefcapError("include_references is set but no reference captions were given")
        for caption in given:
            if caption.clip_id in candidates:
                add(caption.clip_id, Candidate(caption.text, REFERENCE))
    return candidates


def select_pairs(clips: Sequence[Clip], candidates: Mapping[str, Sequence[Candidate]], config: PairsConfig,
                 scorer: Scorer | None = None) -> list[NewPair]:
    """Up to N pairs over the M chosen clips, spread evenly; fewer when the candidates allow no more.

    Every clip gets an equal share (some one more); a clip with fewer possible pairs than its share gives the rest
    to the others. Which caption is a and which is b is drawn at random. Deterministic for a seed.
    """
    _check_scorer(config, scorer)
    chosen = choose_clips(clips, config)
    possible = [_possible_pairs(candidates.get(clip.id, []), config.strategy) for clip in chosen]
    if not any(possible):
        needs = "candidates of two systems" if config.strategy == "cross-system" else "two distinct candidates"
        raise PrefcapError(f"no pairs to make: none of the {len(chosen)} clips has {needs}")
    rng = np.random.default_rng([config.seed, 1])
    shares = _shares([len(pairs) for pairs in possible], config.num_pairs, rng)
    selected: list[NewPair] = []
    for clip, pairs, share in zip(chosen, possible, shares, strict=True):
        if not share:
            continue
        options = candidates[clip.id]
        ranked = [pairs[k] for k in rng.permutation(len(pairs))]
        if config.strategy == "uncertain":
            ranked = _least_certain_first(ranked, _scores(scorer, clip, options))
        for i, j in ranked[:share]:
            first, second = (options[i], options[j]) if rng.random() < 0.5 else (options[j], options[i])
            selected.append(NewPair(
                clip=clip, caption_a=Caption(clip_id=clip.id, text=first.text, source=first.system),
                caption_b=Caption(clip_id=clip.id, text=second.text, source=second.system),
                decoding_a=first.decoding, decoding_b=second.decoding))
    return selected


def build_pairs(store: Store, captioners: Mapping[str, Captioner], clips: Sequence[Clip], config: PairsConfig,
                scorer: Scorer | None = None, *, references: Iterable[Caption] | None = None,
                progress: bool = True) -> dict[str, int]:
    """Sample candidates for the M chosen clips only, select N pairs and store them; returns counts.

    `pairs_added` falls short of `pairs_requested` when the candidates allow fewer pairs (`pairs_selected`) or some
    selected pairs were already stored.
    """
    _check_scorer(config, scorer)  # before the sampling, which takes long
    chosen = choose_clips(clips, config)
    candidates = sample_candidates(captioners, chosen, config, references=references, progress=progress)
    n_contrast = round(config.contrast_fraction * config.num_pairs)
    pairs = select_pairs(chosen, candidates, replace(config, num_pairs=config.num_pairs - n_contrast), scorer)
    contrast = contrast_pairs(chosen, candidates, n_contrast, config.seed)
    return {
        "clips": len(chosen),
        "clips_without_candidates": sum(not found for found in candidates.values()),
        "candidates": sum(map(len, candidates.values())),
        "pairs_requested": config.num_pairs,
        "pairs_selected": len(pairs) + len(contrast),
        "contrast_pairs": len(contrast),
        "pairs_added": store.add_pairs([*pairs, *contrast], origin=config.strategy),
    }


def contrast_pairs(clips: Sequence[Clip], candidates: Mapping[str, Sequence[Candidate]], n: int,
                   seed: int) -> list[NewPair]:
    """n pairs of one candidate against a damaged copy (system and origin `contrast:<kind>`), spread over the clips
    round robin; the damaged side is a or b at random."""
    rng = np.random.default_rng([seed, 2])
    usable = [clip for clip in clips if candidates.get(clip.id)]
    texts = [c.text for clip in usable for c in candidates[clip.id]]
    pairs: list[NewPair] = []
    attempts = 0
    while len(pairs) < n and usable and attempts < 10 * n:
        clip = usable[attempts % len(usable)]
        attempts += 1
        options = candidates[clip.id]
        original = options[int(rng.integers(len(options)))]
        own = {c.text for c in options}
        damaged = perturb(original.text, [t for t in rng.choice(texts, min(8, len(texts))) if t not in own], rng)
        if damaged is None:
            continue
        kind, text = damaged
        sides = [Caption(clip_id=clip.id, text=original.text, source=original.system),
                 Caption(clip_id=clip.id, text=text, source=f"contrast:{kind}")]
        decodings = [original.decoding, None]
        if rng.random() < 0.5:
            sides.reverse()
            decodings.reverse()
        pairs.append(NewPair(clip=clip, caption_a=sides[0], caption_b=sides[1], decoding_a=decodings[0],
                             decoding_b=decodings[1], origin=f"contrast:{kind}"))
    return pairs


def _check_scorer(config: PairsConfig, scorer: Scorer | None) -> None:
    if config.strategy == "uncertain" and scorer is None:
        raise PrefcapError("strategy 'uncertain' needs a reward model (an ensemble scorer) to tell which pairs it is "
                           "least sure about; use 'random' or 'cross-system' to collect a first round")


def _per_clip(decoding: Decoding, config: PairsConfig) -> int:
    # greedy repeats one caption; beam search cannot return more captions than it has beams
    if decoding.mode == "greedy":
        return 1
    if decoding.mode == "beam":
        return min(config.samples_per_decoding, decoding.num_beams)
    return config.samples_per_decoding


def _possible_pairs(candidates: Sequence[Candidate], strategy: str) -> list[tuple[int, int]]:
    return [(i, j) for i, j in itertools.combinations(range(len(candidates)), 2)
            if strategy != "cross-system" or candidates[i].system != candidates[j].system]


def _shares(capacities: list[int], budget: int, rng: np.random.Generator) -> list[int]:
    """Round robin in a random clip order: one pair per clip per round, skipping clips that are out of pairs."""
    order = rng.permutation(len(capacities)).tolist()
    slots = sorted((turn, place) for place, clip in enumerate(order) for turn in range(capacities[clip]))[:budget]
    shares = [0] * len(capacities)
    for _turn, place in slots:
        shares[order[place]] += 1
    return shares


def _scores(scorer: Scorer, clip: Clip, candidates: Sequence[Candidate]) -> np.ndarray:
    scores = np.atleast_2d(np.asarray(scorer(clip, [c.text for c in candidates]), dtype=float))
    if scores.ndim != 2 or scores.shape[1] != len(candidates):
        raise PrefcapError(f"clip {clip.id!r}: the scorer returned shape {scores.shape} for {len(candidates)} "
                           "captions; expected [ensemble members, captions]")
    return scores


def _least_certain_first(pairs: list[tuple[int, int]], scores: np.ndarray) -> list[tuple[int, int]]:
    """Sort by |mean margin| / std of the margin across members: the closest to a coin flip first (stable, so
    the random order given breaks ties)."""
    first, second = np.array(pairs).T
    return [pairs[k] for k in np.argsort(certainty(scores[:, first] - scores[:, second]), kind="stable")]


def certainty(margins: np.ndarray) -> np.ndarray:
    """How sure an ensemble is of each pair, from its [members, pairs] margins r(a) − r(b): |mean| / spread.
    Small is a coin flip, where a judgment teaches the most."""
    return np.abs(margins.mean(axis=0)) / (margins.std(axis=0) + _EPS)
