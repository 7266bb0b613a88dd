"""`prefcap synth`: write a synthetic corpus (audio, clip manifest, 5 references per clip) to a folder.

Clip k of (domain, seed) is drawn from its own random stream, so a corpus is byte-for-byte reproducible
and any clip can be regenerated alone. Each clip's exact scene is kept in `metadata["scene"]`: the
simulated annotators judge captions against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from prefcap.data.audio import write_wav
from prefcap.data.records import Caption, Clip, write_clips, write_jsonl
from prefcap.errors import PrefcapError
from prefcap.synth.grammar import reference_captions
from prefcap.synth.render import render_scene
from prefcap.synth.scene import DOMAINS, sample_scene

DEFAULT_SPLITS: dict[str, dict[str, float]] = {
    # source trains the baseline; target is split as the demo uses it (see DESIGN.md).
    "source": {"train": 0.8, "val": 0.1, "test": 0.1},
    "target": {"prefs": 0.35, "rl": 0.35, "val": 0.1, "test": 0.2},
    "general": {"train": 0.9, "val": 0.1},
}
_DOMAIN_STREAM = {"source": 1, "target": 2, "general": 3}
_PREFIX = {"source": "src", "target": "tgt", "general": "gen"}


@dataclass(frozen=True)
class SynthConfig:
    n: int = field(default=200, metadata={"help": "number of clips"})
    domain: str = field(default="target", metadata={"help": "source, target or general"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    sample_rate: int = field(default=16_000, metadata={"help": "audio sample rate (Hz)"})
    splits: dict[str, float] | None = field(default=None, metadata={
        "help": "split fractions, e.g. {\"train\": 0.8, ...}; None: DEFAULT_SPLITS[domain]"})


def parse_splits(text: str) -> dict[str, float]:
    """'train=0.8,val=0.1,test=0.1' -> {'train': 0.8, ...}; fractions must be positive and sum to 1."""
    splits: dict[str, float] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            splits[name.strip()] = float(value)
        except ValueError:
            raise PrefcapError(f"bad split {item!r}: expected NAME=FRACTION, e.g. train=0.8") from None
    return splits


def assign_splits(n: int, splits: dict[str, float], rng: np.random.Generator) -> list[str]:
    """Exact split sizes (largest remainders), shuffled, so every split is a random sample."""
    if (not isinstance(splits, dict) or not splits
            or not all(isinstance(f, int | float) and not isinstance(f, bool) and 0 < f <= 1 for f in splits.values())
            or abs(sum(splits.values()) - 1) > 1e-6):
        raise PrefcapError(f"split fractions must be positive and sum to 1, got {splits}")
    names = list(splits)
    exact = np.array([splits[name] * n for name in names])
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts))[: n - counts.sum()]:
        counts[i] += 1
    labels = np.repeat(names, counts)
    return [str(label) for label in rng.permutation(labels)]


def synthesize(out_dir: str | Path, config: SynthConfig, progress: bool = True) -> list[Clip]:
    """Write `out_dir/audio/*.wav`, `out_dir/clips.jsonl` and `out_dir/captions.jsonl`."""
    if config.domain not in DOMAINS:
        raise PrefcapError(f"unknown domain {config.domain!r}; expected one of {sorted(DOMAINS)}")
    if config.n < 1:
        raise PrefcapError(f"--n must be at least 1, got {config.n}")
    if config.sample_rate not in (16_000, 48_000):
        raise PrefcapError(f"sample rate must be 16000 or 48000, got {config.sample_rate}")
    out_dir = Path(out_dir)
    stream = _DOMAIN_STREAM[config.domain]
    splits = assign_splits(
        config.n, config.splits or DEFAULT_SPLITS[config.domain], np.random.default_rng([config.seed, stream])
    )
    prefix = _PREFIX[config.domain]
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)  # an unusable --out fails here, before any work
    clips, captions = [], []
    for k in tqdm(range(config.n), desc=f"synth {config.domain}", unit="clip", disable=not progress):
        rng = np.random.default_rng([config.seed, stream, k])
        scene = sample_scene(rng, config.domain)
        clip_id = f"{prefix}-s{config.seed}-{k:06d}"
        audio_path = out_dir / "audio" / f"{clip_id}.wav"
        write_wav(audio_path, render_scene(scene, config.sample_rate, rng), config.sample_rate)
        clips.append(
            Clip(
                id=clip_id,
                audio_path=str(audio_path),
                duration=scene.duration,
                sample_rate=config.sample_rate,
                split=splits[k],
                domain=config.domain,
                metadata={"scene": scene.to_dict()},
            )
        )
        captions.extend(
            Caption(clip_id=clip_id, text=text, source="reference")
            for text in reference_captions(scene, seed=int(rng.integers(2**31)))
        )
    write_clips(out_dir / "clips.jsonl", clips)
    write_jsonl(out_dir / "captions.jsonl", captions)
    return clips
