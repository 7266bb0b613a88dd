"""Turn a dataset folder (Clotho, AudioCaps, or plain audio files) into clip and caption manifests.

Every audio file is validated before it enters a manifest: a bad or missing file is skipped and listed in
`rejected.jsonl` with its reason, so one broken download does not stop ingestion of a whole dataset.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prefcap.data.audio import validate_many, write_rejected
from prefcap.data.records import Caption, Clip, write_clips, write_jsonl
from prefcap.errors import DatasetLayoutError, PrefcapError

KINDS = ("auto", "clotho", "audiocaps", "folder")
# what libsndfile reads: WAV, FLAC, Ogg (Vorbis or Opus; ".oga" is Xiph's name for Ogg audio), MP3, AIFF
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")

CLOTHO_DIR = "CLOTHO_v2.1"
CLOTHO_COLUMNS = ("file_name", "caption_1", "caption_2", "caption_3", "caption_4", "caption_5")
AUDIOCAPS_DIR = "AUDIOCAPS"
AUDIOCAPS_COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")


@dataclass(frozen=True)
class IngestReport:
    """What an ingestion wrote. rejected.jsonl holds n_rejected + n_missing lines."""

    kind: str
    n_clips: int
    n_captions: int
    n_rejected: int  # audio files present but unusable (reason codes from prefcap.errors, or "duplicate_id")
    n_missing: int  # audio files listed in a CSV but not on disk
    missing: tuple[str, ...]  # their expected paths


@dataclass
class _Listed:
    """A clip as the dataset lists it, before its audio is checked."""

    id: str
    path: Path
    split: str
    listed_in: Path
    captions: list[str] = field(default_factory=list)


def ingest(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    kind: str = "auto",
    *,
    max_seconds: float = 600.0,
    max_channels: int = 8,
) -> IngestReport:
    """Write out_dir/{clips,captions,rejected}.jsonl for a dataset folder; outputs are sorted by clip id.

    `kind` is one of KINDS; "auto" recognises the aac-datasets Clotho and AudioCaps layouts (from `source`
    or from the CLOTHO_v2.1 / AUDIOCAPS folder itself) and otherwise takes any folder holding audio files.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not max_seconds > 0 or max_channels < 1:
        raise PrefcapError(f"max_seconds must be > 0 and max_channels >= 1, got {max_seconds} and {max_channels}")
    source = Path(source).resolve()
    if not source.is_dir():
        raise DatasetLayoutError(f"{source}: no such folder")
    if kind == "auto":
        kind = _detect(source)
    listed, rejected = _READERS[kind](source)

    present = [item for item in listed if item.path.is_file()]
    missing = sorted((item for item in listed if not item.path.is_file()), key=lambda item: str(item.path))
    good, bad = validate_many(
        [item.path for item in present],
        max_seconds=max_seconds,
        max_channels=max_channels,
        desc=f"{kind} audio",
    )
    rejected += bad
    checked = {info.path: info for info in good}

    clips: list[Clip] = []
    captions: list[Caption] = []
    for item in sorted(present, key=lambda item: item.id):
        info = checked.get(item.path)
        if info is None:
            continue
        clips.append(
            Clip(
                id=item.id,
                audio_path=str(item.path),
                duration=info.duration,
                sample_rate=info.sample_rate,
                split=item.split,
                domain=kind,
            )
        )
        captions += [Caption(clip_id=item.id, text=text, source="reference") for text in item.captions]

    missing_entries = [
        {
            "path": str(item.path),
            "reason": "missing",
            "message": f"{item.path}: missing (listed in {item.listed_in})",
        }
        for item in missing
    ]
    out_dir = Path(out_dir)
    write_clips(out_dir / "clips.jsonl", clips)
    write_jsonl(out_dir / "captions.jsonl", captions)
    write_rejected(
        out_dir / "rejected.jsonl",
        sorted(rejected + missing_entries, key=lambda entry: (entry["path"], entry["reason"])),
    )
    return IngestReport(
        kind,
        len(clips),
        len(captions),
        len(rejected),
        len(missing),
        tuple(str(item.path) for item in missing),
    )


def _detect(source: Path) -> str:
    found = [
        kind
        for kind, marker in (("clotho", CLOTHO_DIR), ("audiocaps", AUDIOCAPS_DIR))
        if _dataset_root(source, marker)
    ]
    if len(found) > 1:
        raise DatasetLayoutError(
            f"{source}: holds both {CLOTHO_DIR} and {AUDIOCAPS_DIR}; name the kind to ingest"
        )
    if found:
        return found[0]
    if any(_audio_files(source)):
        return "folder"
    raise DatasetLayoutError(
        f"{source}: not a dataset folder; expected {CLOTHO_DIR}/ (Clotho), {AUDIOCAPS_DIR}/ (AudioCaps), "
        f"either of those folders itself, or audio files ({', '.join(AUDIO_SUFFIXES)})"
    )


def _dataset_root(source: Path, marker: str) -> Path | None:
    """The dataset folder: `source` itself when it is named `marker`, else `source/marker` if present."""
    if source.name == marker:
        return source
    return source / marker if (source / marker).is_dir() else None


def _require_root(source: Path, marker: str) -> Path:
    root = _dataset_root(source, marker)
    if root is None:
        raise DatasetLayoutError(
            f"{source}: no {marker} folder (pass the folder holding it, or the folder itself)"
        )
    return root


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a dataset CSV, checked for `required` columns.

    UTF-8 is tried first; Clotho's CSVs are ISO-8859-1, which decodes any bytes, so it is the fallback.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    absent = [column for column in required if column not in (reader.fieldnames or [])]
    if absent:
        raise DatasetLayoutError(
            f"{path}: missing column(s) {', '.join(absent)}; expected columns {', '.join(required)}"
        )
    rows = []
    for row in reader:
        short = [column for column in required if row[column] is None]
        if short:
            raise DatasetLayoutError(f"{path}:{reader.line_num}: the row has no value for {', '.join(short)} "
                                     f"(fewer fields than the header)")
        rows.append(row)
    return rows


def _csv_files(folder: Path, pattern: str) -> list[Path]:
    files = sorted(folder.glob(pattern))
    if not files:
        raise DatasetLayoutError(f"{folder}: no caption files matching {pattern}")
    return files


def _merge(listed: dict[str, _Listed], item: _Listed, texts: list[str | None]) -> None:
    """Add a CSV row's captions to its clip; a clip may span several rows (AudioCaps has one per caption)."""
    kept = listed.setdefault(item.id, item)
    kept.captions += [text.strip() for text in texts if text and text.strip()]


def _clotho(source: Path) -> tuple[list[_Listed], list[dict[str, str]]]:
    """<root>/clotho_csv_files/clotho_captions_<split>.csv naming <root>/clotho_audio_files/<split>/<file>."""
    root = _require_root(source, CLOTHO_DIR)
    listed: dict[str, _Listed] = {}
    for csv_path in _csv_files(root / "clotho_csv_files", "clotho_captions_*.csv"):
        split = csv_path.stem.removeprefix("clotho_captions_")
        for row in _read_csv(csv_path, CLOTHO_COLUMNS):
            name = row["file_name"]
            item = _Listed(
                f"clotho/{split}/{Path(name).stem}",
                root / "clotho_audio_files" / split / name,
                split,
                csv_path,
            )
            _merge(listed, item, [row[column] for column in CLOTHO_COLUMNS[1:]])
    return list(listed.values()), []


def _audiocaps(source: Path) -> tuple[list[_Listed], list[dict[str, str]]]:
    """<root>/csv_files_v1/<split>.csv, one row per caption, naming
    <root>/audio_32000Hz/<split>/<youtube_id>_<start_time>.flac."""
    root = _require_root(source, AUDIOCAPS_DIR)
    listed: dict[str, _Listed] = {}
    for csv_path in _csv_files(root / "csv_files_v1", "*.csv"):
        split = csv_path.stem
        for row in _read_csv(csv_path, AUDIOCAPS_COLUMNS):
            stem = f"{row['youtube_id'].strip()}_{row['start_time'].strip()}"
            item = _Listed(
                f"audiocaps/{split}/{stem}", root / "audio_32000Hz" / split / f"{stem}.flac", split, csv_path
            )
            _merge(listed, item, [row["caption"]])
    return list(listed.values()), []


def _audio_files(folder: Path) -> Iterator[Path]:
    """Audio files below `folder`, symlinked folders followed (a dataset is often linked in), each real folder
    once (a link back up the tree would otherwise loop)."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
                yield path


def _folder(source: Path) -> tuple[list[_Listed], list[dict[str, str]]]:
    """Every audio file under `source`, id = relative path without extension; no captions."""
    listed: dict[str, _Listed] = {}
    duplicates: list[dict[str, str]] = []
    for path in sorted(_audio_files(source)):
        clip_id = path.relative_to(source).with_suffix("").as_posix()
        if clip_id in listed:
            message = f"{path}: duplicate_id ({clip_id!r} is already {listed[clip_id].path.name})"
            duplicates.append({"path": str(path), "reason": "duplicate_id", "message": message})
        else:
            listed[clip_id] = _Listed(clip_id, path, "all", source)
    if not listed:
        raise DatasetLayoutError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return list(listed.values()), duplicates


_READERS: dict[str, Callable[[Path], tuple[list[_Listed], list[dict[str, str]]]]] = {
    "clotho": _clotho,
    "audiocaps": _audiocaps,
    "folder": _folder,
}
