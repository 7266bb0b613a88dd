"""Atomic file writes (a crash never leaves a half-written artifact under its final name) and checksums of saved
models (a truncated copy is caught on load)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from safetensors import SafetensorError

from prefcap.errors import PrefcapError

# What missing or corrupt files, an unknown architecture or an unreachable hub raise while a model loads
# (transformers and sentence-transformers: OSError, ValueError; safetensors: SafetensorError).
MODEL_LOAD_ERRORS = (OSError, ValueError, KeyError, SafetensorError)


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: what permissions a plain open() would give a new file


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside `path`, then rename it over `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with contextlib.suppress(OSError):  # mkstemp makes it private (0600); an output is as readable as any file
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def loading(what: str) -> Iterator[None]:
    """Turn a model's load failure into a one-line `PrefcapError` naming `what` (library messages span lines)."""
    try:
        yield
    except MODEL_LOAD_ERRORS as error:
        detail = " ".join(str(error).split())
        detail = detail if len(detail) <= 300 else detail[:300] + " ..."
        raise PrefcapError(f"{what} could not be loaded: {detail}") from None


CHECKSUMS_FILE = "checksums.json"


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in 1 MiB blocks (model weights can be larger than memory wants to hold twice)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def write_checksums(folder: str | os.PathLike, names: Iterable[str] | None = None) -> None:
    """Record the size and sha256 of a saved model's files (default: every file in the folder), so that a copy
    truncated or damaged on disk is refused on load with a message, not a crash deep inside torch."""
    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS_FILE) \
        if names is None else list(names)
    record = {name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)} for name in names}
    with atomic_write(folder / CHECKSUMS_FILE) as handle:
        json.dump(record, handle, indent=2)


def verify_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """Check the files `write_checksums` recorded (size first, then sha256) and return their verified sha256 by
    name, so a caller need not hash them again; a folder without a record (written by other tools, or before
    checksums existed) is taken as it is (an empty dict)."""
    folder = Path(folder)
    if not (folder / CHECKSUMS_FILE).is_file():
        return {}
    try:
        record = json.loads((folder / CHECKSUMS_FILE).read_text(encoding="utf-8"))
        expected = {name: (int(entry["bytes"]), str(entry["sha256"])) for name, entry in record.items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise PrefcapError(f"{folder / CHECKSUMS_FILE}: unreadable checksum record (damaged?)") from None
    for name, (size, sha256) in expected.items():
        path = folder / name
        if not path.is_file():
            raise PrefcapError(f"{folder}: {name} is missing; copy the whole folder again or retrain")
        actual = path.stat().st_size
        if actual != size:
            raise PrefcapError(f"{path}: {actual:,} bytes on disk, {size:,} when saved (truncated or incomplete "
                               "copy); copy it again or retrain")
        if file_sha256(path) != sha256:
            raise PrefcapError(f"{path}: content differs from when it was saved (sha256 mismatch: damaged on disk "
                               "or changed by hand); copy it again or retrain")
    return {name: sha256 for name, (_, sha256) in expected.items()}


HUB_ID = re.compile(r"^\w[\w.-]*(/\w[\w.-]*)?$")  # "name" or "owner/name"


def check_folder_or_hub_id(name: str | os.PathLike, what: str) -> None:
    """Refuse, before anything is loaded, what is neither a folder nor shaped like a hub id: a file, or a missing
    path (a mistyped path would otherwise spend the hub's retries before failing). `what` names the folder."""
    path = Path(name)
    if path.exists() and not path.is_dir():
        raise PrefcapError(f"{path}: a file, not a {what} folder")
    if not path.exists() and not HUB_ID.match(str(name)):
        raise PrefcapError(f"{path}: no such {what} folder")
