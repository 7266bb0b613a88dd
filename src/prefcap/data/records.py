"""The three record types every stage exchanges, and their JSONL manifests.

Audio paths in a manifest are stored relative to the manifest's folder when the audio lies under it
(so a run directory can be moved), absolute otherwise; `read_clips` resolves them back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prefcap.errors import ManifestError
from prefcap.io import atomic_write


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Clip(_Record):
    """One audio clip. Audio fields are optional: some preference data has references but no audio."""

    id: str = Field(min_length=1)
    audio_path: str | None = None
    duration: float | None = Field(default=None, gt=0)
    sample_rate: int | None = Field(default=None, gt=0)
    split: str = "all"
    domain: str = "unknown"
    metadata: dict[str, Any] = Field(default_factory=dict)


class Caption(_Record):
    """A caption of a clip; `source` is "reference" or the name of the system that wrote it."""

    clip_id: str = Field(min_length=1)
    text: str
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _reference_not_blank(self) -> Caption:
        # a system may really write nothing (an immediate end-of-sequence); a blank reference is a data error
        if self.source == "reference" and not self.text.strip():
            raise ValueError("reference caption text is blank")
        return self


Choice = Literal["a", "b", "tie"]


class Judgment(_Record):
    """One annotator's verdict on a pair of captions of one clip."""

    clip_id: str = Field(min_length=1)
    caption_a: str = Field(min_length=1)
    caption_b: str = Field(min_length=1)
    choice: Choice
    annotator: str = Field(min_length=1)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))


class CaptionPair(_Record):
    """Two captions of one clip to compare (what `prefcap judge` reads); other fields are allowed and ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    clip_id: str = Field(min_length=1)
    a: str
    b: str


RecordT = TypeVar("RecordT", bound=_Record)


def read_jsonl(path: str | os.PathLike, record_type: type[RecordT]) -> list[RecordT]:
    """Read and validate every line; the first bad line raises ManifestError naming file and line."""
    return [record for _, record in read_jsonl_lines(path, record_type)]


def read_jsonl_lines(path: str | os.PathLike, record_type: type[RecordT]) -> list[tuple[str, RecordT]]:
    """As `read_jsonl`, each record with "FILE:LINE", for errors found later that must name the line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    records = []
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ManifestError(f"{path}:{line_number}: not UTF-8 text ({error.reason} at byte "
                                    f"{error.start})") from None
            if not line.strip():
                continue
            try:
                records.append((f"{path}:{line_number}", record_type.model_validate_json(line)))
            except ValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in error.errors()
                )
                raise ManifestError(f"{path}:{line_number}: invalid {record_type.__name__}: {problems}") from None
    return records


def write_jsonl(path: str | os.PathLike, records: Iterable[_Record]) -> None:
    """Write records one per line, atomically. Keys keep model order, so output is byte-stable."""
    with atomic_write(path) as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")


def read_clips(path: str | os.PathLike) -> list[Clip]:
    """Read a clip manifest and resolve relative audio paths against the manifest's folder."""
    base = Path(path).parent
    return [
        clip.model_copy(update={"audio_path": str(base / clip.audio_path)})
        if clip.audio_path and not os.path.isabs(clip.audio_path)
        else clip
        for clip in read_jsonl(path, Clip)
    ]


def write_clips(path: str | os.PathLike, clips: Iterable[Clip]) -> None:
    """Write a clip manifest, storing audio paths under the manifest's folder as relative paths."""
    base = Path(path).parent.resolve()

    def relative(clip: Clip) -> Clip:
        if not clip.audio_path:
            return clip
        audio = Path(clip.audio_path).resolve()
        if audio.is_relative_to(base):
            return clip.model_copy(update={"audio_path": audio.relative_to(base).as_posix()})
        return clip.model_copy(update={"audio_path": str(audio)})

    write_jsonl(path, (relative(clip) for clip in clips))


def read_captions(path: str | os.PathLike) -> list[Caption]:
    return read_jsonl(path, Caption)


def references_by_clip(captions: Iterable[Caption], source: str | None = "reference") -> dict[str, list[str]]:
    """Each clip's caption texts, in order: those whose source is `source` (None: every caption)."""
    references: dict[str, list[str]] = {}
    for caption in captions:
        if source is None or caption.source == source:
            references.setdefault(caption.clip_id, []).append(caption.text)
    return references


def first_caption_by_clip(captions: Iterable[Caption], source: str | None = None) -> dict[str, str]:
    """Each clip's first caption text (of `source`; None: of any): a system's one caption per clip."""
    return {clip_id: texts[0] for clip_id, texts in references_by_clip(captions, source).items()}
