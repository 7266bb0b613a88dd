"""Cached stages: a stage whose output exists and whose key matches is skipped on rerun.

The key hashes the stage's config *and* the content of its input files, so changed inputs (new
judgments, a retrained model) redo the stage. Output is built in a temporary folder and renamed into
place when complete: a stage killed midway leaves no half-written artifact, and reruns from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from prefcap.provenance import peak_rss_mb

KEY_FILE = "_stage.json"


@dataclass(frozen=True)
class StageRun:
    ran: bool  # built now; False: already built with the same key, and skipped
    seconds: float  # how long building it took, now or when it was built
    peak_rss_mb: float  # the building process's peak memory once the stage was done (0: not recorded)


def _hash_path(digest, path: Path) -> None:  # digest: a hashlib object
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)


def stage_key(config: dict, inputs: Iterable[str | os.PathLike] = ()) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in inputs:
        _hash_path(digest, Path(path))
    return digest.hexdigest()[:16]


def run_stage(
    out_dir: str | os.PathLike,
    config: dict,
    build: Callable[[Path], None],
    inputs: Iterable[str | os.PathLike] = (),
) -> StageRun:
    """Build `out_dir` with `build(tmp_dir)` unless it is already built with the same key. A skipped stage
    reports the time and memory its build took, so a rerun's figures describe the whole run."""
    out_dir = Path(out_dir)
    key = stage_key(config, inputs)
    marker = out_dir / KEY_FILE
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if recorded.get("key") == key:
            return StageRun(False, float(recorded.get("seconds", 0.0)), float(recorded.get("peak_rss_mb", 0.0)))
    start = time.perf_counter()
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    done = StageRun(True, time.perf_counter() - start, peak_rss_mb())
    (tmp / KEY_FILE).write_text(json.dumps({"key": key, "config": config, "seconds": done.seconds,
                                            "peak_rss_mb": done.peak_rss_mb}, default=str))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return done
