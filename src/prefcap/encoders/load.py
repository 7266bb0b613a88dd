"""`text_encoder`: an encoder chosen by name, and `check_encoder_name`, the same choice checked without loading."""

from __future__ import annotations

import re
from pathlib import Path

from prefcap.errors import PrefcapError

SBERT_PREFIX = "sbert:"
_HUB_ID = re.compile(r"^\w[\w.-]*(/\w[\w.-]*)?$")


def check_encoder_name(name: str) -> None:
    """Refuse, before anything is loaded, a CLAP name that is neither a folder nor shaped like a hub id (a mistyped
    path would otherwise spend the hub's retries before failing)."""
    if name.startswith(SBERT_PREFIX):
        if not name.removeprefix(SBERT_PREFIX):
            raise PrefcapError(f"encoder {name!r}: name the sentence-transformers model after 'sbert:'")
        return
    path = Path(name)
    if path.exists() and not path.is_dir():
        raise PrefcapError(f"{path}: a file, not a CLAP folder")
    if not path.exists() and not _HUB_ID.match(name):
        raise PrefcapError(f"{path}: no such CLAP folder")


def text_encoder(name: str):
    """A CLAP (folder or hub id: audio and text) or, with the prefix 'sbert:', a sentence-transformers model."""
    check_encoder_name(name)
    if name.startswith(SBERT_PREFIX):
        from prefcap.encoders.sentence import SentenceEncoder

        return SentenceEncoder(name.removeprefix(SBERT_PREFIX))
    from prefcap.encoders.clap import ClapEncoder

    return ClapEncoder.from_pretrained(name)
