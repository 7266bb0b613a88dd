"""Audio I/O on soundfile + soxr, with one set of checks shared by loading and by ingestion.

Every way a file can be unusable raises a typed `AudioError` naming the file, so ingestion can skip it and
record why, and training never meets a NaN or an empty clip.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from prefcap.errors import (
    AudioError,
    EmptyAudioError,
    NonFiniteAudioError,
    SilentAudioError,
    TooLongAudioError,
    TooManyChannelsError,
    UnreadableAudioError,
)
from prefcap.io import atomic_write

# Peak amplitude under which a file counts as silent: -120 dBFS, below one 16-bit step (~3e-5).
SILENCE_PEAK = 1e-6
# Frames per block when streaming a file through the checks: memory stays flat however long the file.
BLOCK_FRAMES = 1 << 16

# libsndfile trims a WAV whose header declares more data than the file holds and only logs it, as
# "data : <declared> (should be <present>)"; a truncated download would otherwise pass as a short clip.
_SHORT_DATA_CHUNK = re.compile(r"^\s*data\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)
# The size that writers which cannot seek back (pipes) leave in the header: not a truncation.
_STREAMED_DATA_SIZE = 0xFFFFFFFF

LONGEST_AUDIO = 600.0  # seconds: the default limit of every loader (a longer file is refused as too_long)


class AudioInfo(NamedTuple):
    """A file that passed every check, with its decoded duration in seconds and its sample rate."""

    path: Path
    duration: float
    sample_rate: int


def load_audio(
    path: str | os.PathLike,
    target_sr: int | None = None,
    *,
    max_seconds: float = LONGEST_AUDIO,
    max_channels: int = 8,
) -> np.ndarray:
    """Decode a file to float32 mono (channel mean), resampled to `target_sr` when given and different.

    Raises the `AudioError` subclass that says why a file is unusable; the length and channel limits are
    checked from the header, before anything is decoded.
    """
    if target_sr is not None and target_sr <= 0:
        raise ValueError(f"target_sr must be positive, got {target_sr}")
    path = Path(path)
    with _open_checked(path, max_seconds, max_channels) as audio:
        sample_rate = audio.samplerate
        data = np.concatenate(list(_checked_blocks(audio, path, block_frames=audio.frames)))
    mono = data.mean(axis=1, dtype=np.float32)
    if target_sr is not None and target_sr != sample_rate:
        mono = resample(mono, sample_rate, target_sr)
    return mono


def audio_info(path: str | os.PathLike, *, max_seconds: float = LONGEST_AUDIO, max_channels: int = 8) -> AudioInfo:
    """Validate a file as `load_audio` would, streaming it in blocks so that memory stays flat."""
    path = Path(path)
    with _open_checked(path, max_seconds, max_channels) as audio:
        frames = sum(len(block) for block in _checked_blocks(audio, path, block_frames=BLOCK_FRAMES))
        return AudioInfo(path, frames / audio.samplerate, audio.samplerate)


@contextlib.contextmanager
def _open_checked(path: Path, max_seconds: float, max_channels: int) -> Iterator[sf.SoundFile]:
    """Open a file whose header passes the checks; nothing is decoded yet."""
    if not path.exists():
        raise UnreadableAudioError(path, "no such file")
    if not path.is_file():
        raise UnreadableAudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyAudioError(path, "0-byte file")
    try:
        audio = sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError, OSError) as error:
        raise UnreadableAudioError(path, getattr(error, "error_string", str(error))) from None
    with audio:
        _check_header(audio, path, max_seconds, max_channels)
        yield audio


def _check_header(audio: sf.SoundFile, path: Path, max_seconds: float, max_channels: int) -> None:
    short = _SHORT_DATA_CHUNK.search(audio.extra_info)
    if short and int(short[1]) != _STREAMED_DATA_SIZE:
        detail = f"truncated: header declares {short[1]} data bytes, file holds {short[2]}"
        raise UnreadableAudioError(path, detail)
    if audio.channels > max_channels:
        raise TooManyChannelsError(path, f"{audio.channels} channels, limit {max_channels}")
    if audio.frames == 0:
        raise EmptyAudioError(path, "0 frames")
    duration = audio.frames / audio.samplerate
    if duration > max_seconds:
        raise TooLongAudioError(path, f"{duration:.1f} s, limit {max_seconds:g} s")


def _checked_blocks(audio: sf.SoundFile, path: Path, *, block_frames: int) -> Iterator[np.ndarray]:
    """Yield float32 [frames, channels] blocks; raise at a decode error, at the first non-finite block, or
    (at the end) when no sample reached SILENCE_PEAK."""
    peak = 0.0
    frames = 0
    try:
        for block in audio.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
            finite = np.isfinite(block)
            if not finite.all():
                first = frames + int(np.argmin(finite.all(axis=1)))
                raise NonFiniteAudioError(path, f"NaN or Inf from frame {first}")
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
            frames += len(block)
            yield block
    except (sf.SoundFileError, RuntimeError) as error:
        detail = getattr(error, "error_string", str(error))
        raise UnreadableAudioError(path, f"decoding failed: {detail}") from None
    if peak < SILENCE_PEAK:
        raise SilentAudioError(path, "all samples zero" if peak == 0 else f"peak {peak:.1e}")


def resample(x: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality); float32 mono out. A no-op when the rates match."""
    if sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    return soxr.resample(np.asarray(x, dtype=np.float32), sr, target_sr).astype(np.float32, copy=False)


def pad_or_trim(x: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut or zero-pad the last axis to exactly `n_samples`, so clips batch into one array."""
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    length = x.shape[-1]
    if length >= n_samples:
        return x[..., :n_samples]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n_samples - length)])


def chunk(x: np.ndarray, window: int, hop: int | None = None) -> np.ndarray:
    """Split a 1-D signal into [n_windows, window] frames `hop` apart (default: no overlap).

    Windows cover every sample; the last is zero-padded, and a clip shorter than `window` gives one window.
    """
    hop = window if hop is None else hop
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got window={window}, hop={hop}")
    if x.ndim != 1:
        raise ValueError(f"chunk expects a 1-D signal, got shape {x.shape}")
    n_windows = 1 + max(0, math.ceil((len(x) - window) / hop))
    padded = pad_or_trim(x, (n_windows - 1) * hop + window)
    return np.lib.stride_tricks.sliding_window_view(padded, window)[::hop].copy()


def write_wav(path: str | os.PathLike, x: np.ndarray, sr: int) -> None:
    """Write 16-bit PCM WAV atomically; the same samples always give the same bytes.

    `x` is [frames] or [frames, channels] in [-1, 1]; libsndfile clips louder samples to full scale.
    """
    x = np.asarray(x)
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: refusing to write NaN or Inf samples")
    with atomic_write(path, "wb") as handle:
        sf.write(handle, x, sr, format="WAV", subtype="PCM_16")


def validate_many(
    paths: Iterable[str | os.PathLike],
    *,
    max_seconds: float = LONGEST_AUDIO,
    max_channels: int = 8,
    desc: str = "checking audio",
) -> tuple[list[AudioInfo], list[dict[str, str]]]:
    """Check many files, collecting the unusable ones instead of stopping at the first.

    Returns (good, rejected); a rejected entry is {"path", "reason", "message"}, reason the error code.
    """
    good: list[AudioInfo] = []
    rejected: list[dict[str, str]] = []
    paths = list(paths)
    for path in tqdm(paths, desc=desc, unit="file", disable=None):
        try:
            good.append(audio_info(path, max_seconds=max_seconds, max_channels=max_channels))
        except AudioError as error:
            rejected.append({"path": error.path, "reason": error.reason, "message": str(error)})
    return good, rejected


def write_rejected(path: str | os.PathLike, rejected: Iterable[Mapping[str, str]]) -> None:
    """Write rejected files as JSONL (path, reason, message), atomically, so a run can be audited later."""
    with atomic_write(path) as handle:
        for entry in rejected:
            record = {key: entry[key] for key in ("path", "reason", "message")}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
