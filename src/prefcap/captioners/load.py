"""`load_captioner`: one entry point for every backend, picked by the folder's `prefcap_captioner.json`.

A folder without that file, or a hub id, is taken for a plain transformers speech-seq2seq model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from prefcap.captioners.audio_bart import AudioBartCaptioner
from prefcap.captioners.base import META_FILE, Captioner
from prefcap.captioners.hf_speech import SpeechSeq2SeqCaptioner
from prefcap.errors import PrefcapError
from prefcap.io import check_folder_or_hub_id, loading, verify_checksums

BACKENDS: dict[str, Callable[..., Captioner]] = {
    "audio-bart": AudioBartCaptioner.load,
    "hf-speech-seq2seq": SpeechSeq2SeqCaptioner.load,
}


def check_captioner(path_or_id: str | Path) -> None:
    """Refuse, before anything is loaded, what `load_captioner` would refuse without loading: a file, or a path that
    does not exist and is not shaped like a hub id."""
    check_folder_or_hub_id(path_or_id, "captioner")


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
    check_captioner(path_or_id)
    return _load(f"{path_or_id}: no such folder, and as a hub model id it",
                 lambda: SpeechSeq2SeqCaptioner.from_pretrained(str(path_or_id), device=device))


def _load(what: str, load: Callable[[], Captioner]) -> Captioner:
    with loading(what):
        return load()
