"""Captioning many clips: batched, with progress, and unusable audio listed instead of crashing the job."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from prefcap.captioners.base import Captioner, Decoding
from prefcap.data.audio import LONGEST_AUDIO, load_audio
from prefcap.data.records import Caption, Clip
from prefcap.errors import AudioError


def caption_clips(captioner: Captioner, clips: Sequence[Clip], system: str, n: int = 1,
                  decoding: Decoding = Decoding(), batch_size: int = 32,  # noqa: B008 (frozen)
                  progress: bool = True) -> tuple[list[Caption], list[dict[str, str]]]:
    """(n captions per usable clip, in clip order; rejected clips as {path, reason, message})."""
    captions: list[Caption] = []
    rejected: list[dict[str, str]] = []
    # a clip longer than the captioner takes is rejected as too_long (a captioner that states no limit: 600 s)
    limit = min(getattr(captioner, "max_seconds", None) or LONGEST_AUDIO, LONGEST_AUDIO)
    with tqdm(total=len(clips), desc=f"caption ({system})", unit="clip", disable=not progress) as bar:
        for start in range(0, len(clips), batch_size):
            usable: list[Clip] = []
            audio: list[np.ndarray] = []
            for clip in clips[start : start + batch_size]:
                try:
                    if not clip.audio_path:
                        raise AudioError(clip.id, "the clip has no audio file")
                    audio.append(load_audio(clip.audio_path, captioner.sample_rate, max_seconds=limit))
                    usable.append(clip)
                except AudioError as error:
                    rejected.append({"path": error.path, "reason": error.reason, "message": str(error)})
            if usable:
                generation = captioner.generate(audio, captioner.sample_rate, n, decoding)
                captions.extend(Caption(clip_id=clip.id, text=text, source=system)
                                for clip, texts in zip(usable, generation.texts, strict=True) for text in texts)
            bar.update(len(clips[start : start + batch_size]))
    return captions, rejected
