"""On-disk cache of audio embeddings, so a rerun (or a second stage) never encodes the same audio twice.

Layout: `<root>/emb-<encoder id>/shard-<checksum>.safetensors`. Each shard holds `keys` (uint8 [k, 32], the
sha256 of each clip's decoded float32 samples and sample rate) and `embeddings` (float32 [k, dim]), with
metadata naming the format, the encoder id and a sha256 of both tensors' bytes. Keys hash content, not
paths or clip ids: the same audio anywhere is a hit, and an edited file is a miss. The encoder id names the
model and its preprocessing, so it names the folder.

Shards are written atomically (temporary name, then rename) and verified against their checksum when
read: a truncated or corrupt shard is set aside as `*.corrupt` with a warning and its entries are
recomputed, never returned. The index is built by reading every shard at open and is held in memory
(n x dim float32: 100k clips at dim 512 is 200 MB); audio is streamed, at most one batch at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save
from tqdm import tqdm

from prefcap.data.audio import load_audio
from prefcap.data.records import Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.errors import PrefcapError
from prefcap.io import atomic_write

FORMAT = "prefcap-emb-1"
KEY_BYTES = 32  # sha256 digest


class CorruptShardWarning(RuntimeWarning):
    """A shard failed verification and was set aside; its entries will be recomputed."""


def audio_key(waveform: np.ndarray, sr: int) -> bytes:
    """sha256 of mono float32 samples and their rate: equal for equal audio, whatever its path or clip id."""
    samples = np.asarray(waveform)
    if samples.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {samples.shape}")
    digest = hashlib.sha256(int(sr).to_bytes(8, "little"))
    digest.update(np.ascontiguousarray(samples, dtype="<f4").tobytes())
    return digest.digest()


def cache_folder(root: str | os.PathLike, encoder_id: str) -> Path:
    """`root/emb-<id>`; an id with characters unsafe in a file name gets a hash suffix so ids never collide."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", encoder_id)
    if safe != encoder_id:
        safe += "-" + hashlib.sha256(encoder_id.encode()).hexdigest()[:8]
    return Path(root) / f"emb-{safe}"


class EmbeddingCache:
    """Audio embeddings of one encoder, keyed by audio content; only misses reach `encoder.embed_audio`.

    `hits` and `misses` count clips served from the cache and clips encoded; a clip whose audio repeats an
    earlier one in the same call counts as a hit. New entries are written as one shard per call, or every
    `flush_every` entries, so a killed run keeps most of its work; past `max_shards` shards are merged.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        encoder: AudioTextEncoder,
        *,
        flush_every: int = 4096,
        max_shards: int = 64,
    ) -> None:
        if flush_every < 1 or max_shards < 1:
            raise ValueError(f"flush_every and max_shards must be >= 1, got {flush_every}, {max_shards}")
        self.encoder = encoder
        self.folder = cache_folder(root, encoder.id)
        self.flush_every = flush_every
        self.max_shards = max_shards
        self.hits = 0
        self.misses = 0
        self._blocks: list[np.ndarray] = []  # float32 [k, dim] matrices: one per shard or encoder batch
        self._index: dict[bytes, tuple[int, int]] = {}  # key -> (block, row)
        self._shards: list[Path] = []
        self._unsaved: list[bytes] = []
        self._load()

    def __len__(self) -> int:
        return len(self._index)

    def embed_clips(self, clips: Sequence[Clip], batch_size: int = 32, progress: bool = True) -> torch.Tensor:
        """[n, dim] embeddings in clip order; audio is loaded at the encoder's rate, one clip at a time."""
        sr = self.encoder.sample_rate
        waveforms = (load_audio(_audio_path(clip), target_sr=sr) for clip in clips)
        bar = tqdm(waveforms, total=len(clips), desc="embedding audio", unit="clip", disable=None if progress else True)
        return self._embed(bar, sr, batch_size)

    def _embed(self, waveforms: Iterable[np.ndarray], sr: int, batch_size: int) -> torch.Tensor:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        keys: list[bytes] = []
        pending: dict[bytes, np.ndarray] = {}
        try:
            for waveform in waveforms:
                key = audio_key(waveform, sr)
                keys.append(key)
                if key in self._index or key in pending:
                    self.hits += 1
                    continue
                self.misses += 1
                pending[key] = waveform
                if len(pending) >= batch_size:
                    self._encode(pending, sr)
                    pending = {}
            if pending:
                self._encode(pending, sr)
        finally:  # keep what was encoded before an error
            self._flush()
        if not keys:
            return torch.empty(0, self.encoder.dim)
        return torch.from_numpy(np.stack([self._row(key) for key in keys]))

    def _encode(self, pending: dict[bytes, np.ndarray], sr: int) -> None:
        out = self.encoder.embed_audio(list(pending.values()), sr)
        expected = (len(pending), self.encoder.dim)
        if tuple(out.shape) != expected:
            raise ValueError(f"encoder {self.encoder.id!r} returned shape {tuple(out.shape)}, expected {expected}")
        block = out.detach().to("cpu", torch.float32).numpy().copy()
        if not np.isfinite(block).all():
            raise ValueError(f"encoder {self.encoder.id!r} returned NaN or Inf embeddings")
        self._add_block(list(pending), block)
        self._unsaved.extend(pending)
        if len(self._unsaved) >= self.flush_every:
            self._flush()

    def _row(self, key: bytes) -> np.ndarray:
        block, row = self._index[key]
        return self._blocks[block][row]

    def _add_block(self, keys: list[bytes], block: np.ndarray) -> None:
        number = len(self._blocks)
        self._blocks.append(block)
        self._index.update((key, (number, row)) for row, key in enumerate(keys))

    def _flush(self) -> None:
        if not self._unsaved:
            return
        self._shards.append(self._write_shard(self._unsaved, np.stack([self._row(key) for key in self._unsaved])))
        self._unsaved = []
        if len(self._shards) > self.max_shards:
            self._compact()

    def _compact(self) -> None:
        """Merge every shard into one; the old ones are deleted only once the merged one is in place."""
        keys = list(self._index)
        merged = np.stack([self._row(key) for key in keys])
        new = self._write_shard(keys, merged)
        old, self._shards, self._blocks, self._index = self._shards, [new], [], {}
        self._add_block(keys, merged)
        for path in old:
            if path != new:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def _write_shard(self, keys: list[bytes], embeddings: np.ndarray) -> Path:
        key_matrix = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        checksum = _checksum(key_matrix, embeddings)
        metadata = {"format": FORMAT, "encoder": self.encoder.id, "checksum": checksum}
        path = self.folder / f"shard-{checksum[:16]}.safetensors"
        with atomic_write(path, "wb") as handle:
            handle.write(save({"keys": key_matrix, "embeddings": embeddings}, metadata=metadata))
        return path

    def _load(self) -> None:
        """Index every shard that verifies; set aside the others. Temporary files of a crashed write are not
        shards (their names start with '.'), so they are never read."""
        for path in sorted(self.folder.glob("shard-*.safetensors")):
            try:
                keys, embeddings = self._read_shard(path)
            except FileNotFoundError:  # merged away by another process since the listing
                continue
            except Exception as error:  # any failure to read or verify means: not usable
                self._set_aside(path, error)
                continue
            self._add_block([bytes(row) for row in keys], embeddings)
            self._shards.append(path)

    def _read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        with safe_open(path, framework="np") as handle:
            metadata = handle.metadata() or {}
            keys = handle.get_tensor("keys")
            embeddings = handle.get_tensor("embeddings")
        if metadata.get("format") != FORMAT:
            raise ValueError(f"unknown format {metadata.get('format')!r}")
        if metadata.get("encoder") != self.encoder.id:
            raise ValueError(f"written by encoder {metadata.get('encoder')!r}, not {self.encoder.id!r}")
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
            raise ValueError(f"keys have dtype {keys.dtype} and shape {keys.shape}")
        if embeddings.dtype != np.float32 or embeddings.shape != (len(keys), self.encoder.dim):
            raise ValueError(f"embeddings have dtype {embeddings.dtype} and shape {embeddings.shape}")
        if _checksum(keys, embeddings) != metadata.get("checksum"):
            raise ValueError("checksum mismatch")
        return keys, embeddings

    def _set_aside(self, path: Path, error: Exception) -> None:
        warnings.warn(
            f"{path}: unusable embedding shard ({error}); set aside as {path.name}.corrupt, entries will be recomputed",
            CorruptShardWarning,
            stacklevel=4,
        )
        with contextlib.suppress(OSError):
            path.replace(path.with_name(path.name + ".corrupt"))


def _checksum(keys: np.ndarray, embeddings: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(keys).tobytes())
    digest.update(np.ascontiguousarray(embeddings, dtype="<f4").tobytes())
    return digest.hexdigest()


def _audio_path(clip: Clip) -> str:
    if not clip.audio_path:
        raise PrefcapError(f"clip {clip.id!r} has no audio_path; only clips with audio can be embedded")
    return clip.audio_path

