"""`text_encoder`: an encoder chosen by name, and `check_encoder_name`, the same choice checked without loading."""

from __future__ import annotations

from prefcap.errors import PrefcapError
from prefcap.io import check_folder_or_hub_id

SBERT_PREFIX = "sbert:"


def check_encoder_name(name: str) -> None:
    """Refuse, before anything is loaded, a CLAP name that is neither a folder nor shaped like a hub id (a mistyped
    path would otherwise spend the hub's retries before failing)."""
    if name.startswith(SBERT_PREFIX):
        if not name.removeprefix(SBERT_PREFIX):
            raise PrefcapError(f"encoder {name!r}: name the sentence-transformers model after 'sbert:'")
        return
    check_folder_or_hub_id(name, "CLAP")


def text_encoder(name: str):
    """A CLAP (folder or hub id: audio and text) or, with the prefix 'sbert:', a sentence-transformers model."""
    check_encoder_name(name)
    if name.startswith(SBERT_PREFIX):
        from prefcap.encoders.sentence import SentenceEncoder

        return SentenceEncoder(name.removeprefix(SBERT_PREFIX))
    from prefcap.encoders.clap import ClapEncoder

    return ClapEncoder.from_pretrained(name)
