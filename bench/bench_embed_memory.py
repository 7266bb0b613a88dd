"""Benchmark: memory of embedding many clips stays flat (audio is streamed, never all held).

Writes 5,000 one-second noise clips, then embeds the first 1,000 and all 5,000 with the demo's offline CLAP
(`runs/demo/encoder`, run `make demo` first), each in a fresh process with a fresh cache, and reports each
process's peak resident memory and throughput. Merges its figures into bench/results.json under "embed_memory".
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from record import record

from prefcap.data.audio import write_wav
from prefcap.data.records import Clip, read_clips, write_clips
from prefcap.provenance import machine

SR = 16_000


def embed_in_this_process(encoder_dir: Path, manifest: Path, cache: Path) -> dict:
    from prefcap.encoders.cache import EmbeddingCache
    from prefcap.encoders.clap import ClapEncoder

    clips = read_clips(manifest)
    start = time.perf_counter()
    embeddings = EmbeddingCache(cache, ClapEncoder.from_pretrained(encoder_dir, device="cpu")).embed_clips(
        clips, progress=False)
    seconds = time.perf_counter() - start
    return {"clips": len(embeddings), "seconds": seconds, "clips_per_second": len(embeddings) / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", type=Path, default=Path("runs/demo/encoder"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--child", nargs=2, type=Path, metavar=("MANIFEST", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(embed_in_this_process(args.encoder, *args.child)))
        return
    if not (args.encoder / "config.json").is_file():
        raise SystemExit(f"{args.encoder} holds no encoder: run `make demo` first")
    rng = np.random.default_rng(0)
    figures: dict = {"clip_seconds": 1.0, "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = []
        for k in range(max(args.sizes)):
            path = root / "audio" / f"{k:05d}.wav"
            write_wav(path, (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
            clips.append(Clip(id=f"clip-{k:05d}", audio_path=str(path)))
        for size in args.sizes:
            manifest = root / f"clips-{size}.jsonl"
            write_clips(manifest, clips[:size])
            child = subprocess.run([sys.executable, __file__, "--encoder", str(args.encoder), "--child",
                                    str(manifest), str(root / f"cache-{size}")], capture_output=True, text=True,
                                   check=True)
            figures[str(size)] = json.loads(child.stdout.strip().splitlines()[-1])
    sizes = [str(s) for s in args.sizes]
    figures["peak_rss_growth_mb"] = figures[sizes[-1]]["peak_rss_mb"] - figures[sizes[0]]["peak_rss_mb"]
    record(args.results, "embed_memory", figures)
    print("embedding 1 s clips with the offline CLAP, one fresh process each: " + ", ".join(
        f"{s} clips peak RSS {figures[s]['peak_rss_mb']:.0f} MB ({figures[s]['clips_per_second']:.0f} clips/s)"
        for s in sizes) + f"; growth {figures['peak_rss_growth_mb']:+.0f} MB; {figures['machine']}")


if __name__ == "__main__":
    main()
