"""Merge one benchmark's figures into bench/results.json (atomically), under its own key."""

from __future__ import annotations

import json
from pathlib import Path

from prefcap.io import atomic_write


def record(path: Path, key: str, figures: dict) -> None:
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[key] = figures
    with atomic_write(path) as handle:
        json.dump(results, handle, indent=2)
