"""RL checkpoints: written whole or not at all, and enough of the run to continue it exactly.

A checkpoint is a folder `step-NNNNNN/` holding the policy weights, the optimizer and scheduler state, the step,
the KL coefficient (the adaptive controller moves it), and each process's random state. It is written under a
temporary name and renamed, so a run killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from prefcap.errors import PrefcapError

_NAME = re.compile(r"^step-(\d{6,})$")
STATE_FILE = "state.pt"


def checkpoint_path(root: Path, step: int) -> Path:
    return root / f"step-{step:06d}"


def latest_checkpoint(root: Path) -> Path | None:
    """The complete checkpoint with the highest step under `root` (temporary folders are ignored)."""
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name)) and (p / STATE_FILE).is_file()]
    return max(found)[1] if found else None


def save_checkpoint(root: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write `state` as checkpoint `step` atomically, then delete all but the newest `keep` checkpoints."""
    final = checkpoint_path(root, step)
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / STATE_FILE)
    with open(tmp / STATE_FILE, "rb") as handle:
        os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    complete = sorted(p for p in root.iterdir() if _NAME.match(p.name))
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as error:
        raise PrefcapError(f"{path}: the checkpoint cannot be read ({error}); delete it to resume from an "
                           "earlier one") from None


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
