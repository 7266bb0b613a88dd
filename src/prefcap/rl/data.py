"""What RL may see of the clips it trains on: an id and the waveform, nothing else.

The method's claim is that RL improves captions of audio that has *no* ground truth, so the RL loader drops
every other field of a clip on the way in: no reference captions (it never opens a captions file), and no
metadata either (the synthetic corpus's metadata is the exact scene — ground truth by another name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from prefcap.data.audio import load_audio
from prefcap.data.records import Clip
from prefcap.errors import PrefcapError


@dataclass(frozen=True)
class AudioOnlyClip:
    id: str
    waveform: np.ndarray  # mono, at the policy's sample rate


def load_rl_audio(clips: Sequence[Clip], sample_rate: int, progress: bool = True) -> list[AudioOnlyClip]:
    """The clips' audio at `sample_rate`, keyed by clip id. Anything but a `Clip` with audio is refused."""
    loaded = []
    for clip in tqdm(clips, desc="loading RL audio", unit="clip", disable=not progress):
        if not isinstance(clip, Clip):
            raise PrefcapError(f"RL takes audio clips only, got a {type(clip).__name__}")
        if not clip.audio_path:
            raise PrefcapError(f"clip {clip.id!r} has no audio: RL learns from audio")
        loaded.append(AudioOnlyClip(clip.id, load_audio(clip.audio_path, sample_rate)))
    if not loaded:
        raise PrefcapError("no clips to train on")
    return loaded
