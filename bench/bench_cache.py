"""Benchmark: what the embedding cache saves on a rerun. Embeds synthetic clips twice with a stand-in encoder
whose cost grows with the audio (a random conv bank), the second time through a freshly opened cache.

Prints the speed-up and merges its figures into bench/results.json under "cache".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from record import record

from prefcap.data.records import Clip
from prefcap.encoders.base import AudioTextEncoder
from prefcap.encoders.cache import EmbeddingCache
from prefcap.provenance import machine


class ConvEncoder(AudioTextEncoder):
    """A random conv bank, ReLU, mean-pool, projection: real work proportional to the samples, like CLAP."""

    id = "bench-conv"
    dim = 512
    sample_rate = 16000

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.filters = torch.randn(128, 1, 400, generator=generator) / 20
        self.projection = torch.randn(128, self.dim, generator=generator)
        self.calls = 0

    @torch.inference_mode()
    def embed_audio(self, waveforms: Sequence[np.ndarray], sr: int) -> torch.Tensor:
        self.calls += 1
        rows = []
        for waveform in waveforms:
            x = torch.from_numpy(np.asarray(waveform, dtype=np.float32))[None, None]
            features = torch.relu(torch.nn.functional.conv1d(x, self.filters, stride=160)).mean(dim=2)
            rows.append(torch.nn.functional.normalize(features @ self.projection, dim=1))
        return torch.cat(rows)

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError


def write_clips(folder: Path, n: int, seconds: float, sr: int) -> list[Clip]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    clips = []
    for k in range(n):
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) + 0.05 * rng.standard_normal(len(t))
        path = folder / f"clip{k:04d}.wav"
        sf.write(path, x, sr, subtype="PCM_16")
        clips.append(Clip(id=f"clip{k:04d}", audio_path=str(path)))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()

    encoder = ConvEncoder()
    with tempfile.TemporaryDirectory() as tmp:
        clips = write_clips(Path(tmp), args.n, args.seconds, encoder.sample_rate)
        start = time.perf_counter()
        first = EmbeddingCache(Path(tmp) / "cache", encoder).embed_clips(clips, progress=False)
        first_seconds = time.perf_counter() - start
        calls = encoder.calls
        start = time.perf_counter()
        cache = EmbeddingCache(Path(tmp) / "cache", encoder)  # a rerun: the index is read back from disk
        second = cache.embed_clips(clips, progress=False)
        second_seconds = time.perf_counter() - start
    if encoder.calls != calls or cache.hits != args.n or not torch.equal(first, second):
        raise SystemExit("second pass was not served from the cache")
    figures = {
        "cache_clips": args.n,
        "cache_clip_seconds": args.seconds,
        "cache_first_pass_seconds": first_seconds,
        "cache_second_pass_seconds": second_seconds,
        "cache_speedup": first_seconds / second_seconds,
        "machine": machine(),
    }
    record(args.results, "cache", figures)
    print(f"cache, {args.n} clips of {args.seconds:g} s: first pass {first_seconds:.2f} s, second pass "
          f"{second_seconds:.2f} s (no encoder calls) = {figures['cache_speedup']:.1f}x on {figures['machine']}")


if __name__ == "__main__":
    main()
