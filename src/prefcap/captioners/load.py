"""`load_captioner`: one entry point for every backend, picked by the folder's `prefcap_captioner.json`.

A folder without that file, or a hub id, is taken for a plain transformers speech-seq2seq model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import torch

from prefcap.captioners.audio_bart import AudioBartCaptioner
from prefcap.captioners.base import META_FILE, Captioner
from prefcap.captioners.hf_speech import SpeechSeq2SeqCaptioner
from prefcap.errors import PrefcapError
from prefcap.io import loading, verify_checksums

BACKENDS: dict[str, Callable[..., Captioner]] = {
    "audio-bart": AudioBartCaptioner.load,
    "hf-speech-seq2seq": SpeechSeq2SeqCaptioner.load,
}
_HUB_ID = re.compile(r"^\w[\w.-]*(/\w[\w.-]*)?$")


def check_captioner(path_or_id: str | Path) -> None:
    """Refuse, before anything is loaded, what `load_captioner` would refuse without loading: a file, or a path that
    does not exist and is not shaped like a hub id."""
    path = Path(path_or_id)
    if path.exists() and not path.is_dir():
        raise PrefcapError(f"{path}: a file, not a captioner folder")
    if not path.exists() and not _HUB_ID.match(str(path_or_id)):
        raise PrefcapError(f"{path}: no such captioner folder")


def load_captioner(path_or_id: str | Path, device: str | torch.device | None = None) -> Captioner:
    """A captioner from a folder written by any backend's `save`, or a speech-seq2seq model's folder or hub id."""
    path = Path(path_or_id)
    if path.is_dir():
        verify_checksums(path)
    if path.is_dir() and (path / META_FILE).is_file():
        try:
            backend = json.loads((path / META_FILE).read_text(encoding="utf-8")).get("backend")
        except (ValueError, AttributeError):
            raise PrefcapError(f"{path / META_FILE}: not a JSON object naming the captioner backend") from None
        if backend not in BACKENDS:
            raise PrefcapError(f"{path}: unknown captioner backend {backend!r}; expected one of {sorted(BACKENDS)}")
        return _load(f"captioner folder {path}", lambda: BACKENDS[backend](path, device=device))
    if path.is_dir():
        return _load(f"model folder {path}", lambda: SpeechSeq2SeqCaptioner.from_pretrained(path, device=device))
    if path.exists():
        raise PrefcapError(f"{path}: a file, not a captioner folder")
    if not _HUB_ID.match(str(path_or_id)):
        raise PrefcapError(f"{path}: no such captioner folder")
    return _load(f"{path_or_id}: no such folder, and as a hub model id it",
                 lambda: SpeechSeq2SeqCaptioner.from_pretrained(str(path_or_id), device=device))


def _load(what: str, load: Callable[[], Captioner]) -> Captioner:
    with loading(what):
        return load()
