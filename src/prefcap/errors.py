"""Typed errors. The CLI turns any `PrefcapError` into a one-line message and a non-zero exit."""

from __future__ import annotations


class PrefcapError(Exception):
    """An error a user can act on: bad arguments, paths, or input files."""


class ManifestError(PrefcapError):
    """A malformed JSONL manifest line; the message names the file and line number."""


class DatasetLayoutError(PrefcapError):
    """A dataset folder that does not have the expected layout."""


class AudioError(PrefcapError):
    """An audio file that cannot be used. `reason` is a short machine-readable code."""

    reason = "unusable"

    def __init__(self, path: str, detail: str = ""):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {self.reason}" + (f" ({detail})" if detail else ""))


class UnreadableAudioError(AudioError):
    reason = "unreadable"


class EmptyAudioError(AudioError):
    reason = "empty"


class SilentAudioError(AudioError):
    reason = "silent"


class NonFiniteAudioError(AudioError):
    reason = "non_finite"


class TooLongAudioError(AudioError):
    reason = "too_long"


class TooManyChannelsError(AudioError):
    reason = "too_many_channels"
