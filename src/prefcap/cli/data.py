"""Data and captioner commands: synth, ingest, encoder-train, score, caption, sft."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefcap.cli.common import COUNT, SEED, add_config_fields, configured
from prefcap.config import apply_overrides
from prefcap.errors import PrefcapError


def _synth(args: argparse.Namespace) -> None:
    from prefcap.synth.corpus import SynthConfig, parse_splits, synthesize

    config = SynthConfig(
        n=args.n, domain=args.domain, seed=args.seed, sample_rate=args.sample_rate,
        splits=parse_splits(args.splits) if args.splits else None,
    )
    config = apply_overrides(config, args.overrides)
    clips = synthesize(args.out, config)
    print(f"wrote {len(clips)} {config.domain} clips to {args.out}")


def _ingest(args: argparse.Namespace) -> None:
    from prefcap.data.ingest import ingest

    report = ingest(args.source, args.out, args.kind, max_seconds=args.max_seconds)
    print(
        f"ingested {report.n_clips} clips and {report.n_captions} captions ({report.kind}) into {args.out}; "
        f"rejected {report.n_rejected} unusable and {report.n_missing} missing files "
        f"(see {Path(args.out) / 'rejected.jsonl'})"
    )


def _encoder_train(args: argparse.Namespace) -> None:
    from prefcap.data.records import read_captions, read_clips
    from prefcap.encoders.train import EncoderTrainConfig, train_encoder

    config = apply_overrides(EncoderTrainConfig(), args.overrides)
    clips = [c for c in read_clips(args.data / "clips.jsonl") if c.split == args.split]
    captions = read_captions(args.data / "captions.jsonl")
    train_encoder(clips, captions, args.out, config)
    print(f"saved the offline CLAP to {args.out} (trained on {len(clips)} '{args.split}' clips)")


def _score(args: argparse.Namespace) -> None:
    from prefcap.data.records import first_caption_by_clip, read_captions, references_by_clip
    from prefcap.eval.metrics import compute_metrics

    # the first caption of a clip is scored
    candidates = first_caption_by_clip(read_captions(args.captions), source=args.system)
    references = references_by_clip(read_captions(args.references))
    if not candidates:
        raise PrefcapError(f"{args.captions}: no captions" + (f" from system {args.system!r}" if args.system else ""))
    unreferenced = sorted(set(candidates) - set(references))
    if unreferenced:
        raise PrefcapError(f"{len(unreferenced)} captioned clips have no references in {args.references}, "
                           f"e.g. {unreferenced[0]!r}")
    try:
        scores = compute_metrics(candidates, references, sbert_model=None if args.no_sbert else "default")
    except ValueError as error:
        raise PrefcapError(str(error)) from None
    for name, value in scores.items():
        print(f"{name:<24}{'unavailable' if value is None else format(value, '.4f')}")
    if args.json:
        from prefcap.io import atomic_write

        with atomic_write(args.json) as handle:
            json.dump({"clips": len(candidates), **scores}, handle, indent=2)


def _caption(args: argparse.Namespace) -> None:
    import tempfile

    from prefcap.captioners.base import Decoding
    from prefcap.captioners.infer import caption_clips
    from prefcap.captioners.load import load_captioner
    from prefcap.data.audio import write_rejected
    from prefcap.data.ingest import ingest
    from prefcap.data.records import read_clips, write_jsonl

    if args.source.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            report = ingest(args.source, tmp, "folder")
            clips = read_clips(Path(tmp) / "clips.jsonl")
            rejected = [json.loads(line) for line in (Path(tmp) / "rejected.jsonl").read_text().splitlines()]
        print(f"{report.n_clips} audio files found in {args.source}")
    else:
        clips, rejected = read_clips(args.source), []
    decoding = apply_overrides(Decoding(mode=args.mode), args.overrides)
    captioner = load_captioner(args.captioner)
    system = args.system or Path(str(args.captioner)).name
    captions, unusable = caption_clips(captioner, clips, system, args.n, decoding, args.batch_size)
    rejected += unusable
    write_jsonl(args.out, captions)
    rejected_path = args.out.with_name(args.out.stem + ".rejected.jsonl")
    write_rejected(rejected_path, rejected)
    print(f"wrote {len(captions)} captions of {len(clips) - len(unusable)} clips to {args.out}; "
          f"{len(rejected)} unusable files listed in {rejected_path}")


def _sft(args: argparse.Namespace) -> None:
    from prefcap.captioners.load import load_captioner
    from prefcap.captioners.sft import SFTConfig, new_captioner, train_captioner
    from prefcap.data.records import read_captions, read_clips

    config = configured(SFTConfig(), args, "sft")
    clips, captions = read_clips(args.data / "clips.jsonl"), read_captions(args.data / "captions.jsonl")
    train = [c for c in clips if c.split == args.train_split]
    val = [c for c in clips if c.split == args.val_split]
    if not train or not val:
        raise PrefcapError(f"{args.data}: need clips in both the '{args.train_split}' and '{args.val_split}' splits")
    if args.init:
        captioner = load_captioner(args.init)
    else:
        train_ids = {c.id for c in train}
        captioner = new_captioner((c.text for c in captions if c.clip_id in train_ids), seed=config.seed)
    metrics = train_captioner(captioner, train, captions, val, captions, args.out, config)
    print(f"saved the captioner to {args.out}: best validation loss {metrics['best_val_loss']:.3f} "
          f"at step {metrics['best_step']} of {metrics['steps']}")


def add_synth(commands) -> None:
    synth = commands.add_parser("synth", help="generate the synthetic scene corpus (audio + 5 references/clip)")
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--n", type=int, default=200, help="number of clips")
    synth.add_argument("--domain", choices=("source", "target", "general"), default="target")
    synth.add_argument("--seed", type=SEED, default=0)
    synth.add_argument("--sample-rate", type=int, choices=(16_000, 48_000), default=16_000)
    synth.add_argument("--splits", help="split fractions, e.g. train=0.8,val=0.1,test=0.1")
    add_config_fields(synth, "prefcap.synth.corpus:SynthConfig")
    synth.set_defaults(run=_synth)


def add_ingest(commands) -> None:
    from prefcap.data.ingest import KINDS

    ingest = commands.add_parser("ingest", help="turn Clotho / AudioCaps / an audio folder into manifests")
    ingest.add_argument("source", type=Path, help="dataset folder")
    ingest.add_argument("--out", required=True, type=Path, help="output folder for the manifests")
    ingest.add_argument("--kind", choices=KINDS, default="auto")
    ingest.add_argument("--max-seconds", type=float, default=600.0, help="reject longer files")
    ingest.set_defaults(run=_ingest)


def add_encoder_train(commands) -> None:
    encoder_train = commands.add_parser("encoder-train", help="train the small offline CLAP on a corpus")
    encoder_train.add_argument("--data", required=True, type=Path, help="folder with clips.jsonl and captions.jsonl")
    encoder_train.add_argument("--split", default="train", help="which split of the corpus to train on")
    encoder_train.add_argument("--out", required=True, type=Path, help="output folder (Hugging Face format)")
    add_config_fields(encoder_train, "prefcap.encoders.train:EncoderTrainConfig")
    encoder_train.set_defaults(run=_encoder_train)


def add_score(commands) -> None:
    score = commands.add_parser("score", help="caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE, SBERT, ...)")
    score.add_argument("captions", type=Path, help="captions.jsonl of the system to score")
    score.add_argument("--references", required=True, type=Path, help="captions.jsonl holding the references")
    score.add_argument("--system", help="score only captions whose source is this system")
    score.add_argument("--no-sbert", action="store_true", help="skip the SBERT similarity")
    score.add_argument("--json", type=Path, help="also write the scores here")
    score.set_defaults(run=_score)


def add_caption(commands) -> None:
    caption = commands.add_parser("caption", help="caption a folder of audio or a clip manifest")
    caption.add_argument("source", type=Path, help="audio folder, or clips.jsonl")
    caption.add_argument("--captioner", required=True, help="captioner folder or hub id")
    caption.add_argument("--out", required=True, type=Path, help="captions.jsonl to write")
    caption.add_argument("--system", help="system name stored with the captions (default: the captioner's name)")
    caption.add_argument("--mode", choices=("greedy", "beam", "sample"), default="greedy")
    caption.add_argument("--n", type=COUNT, default=1, help="captions per clip")
    caption.add_argument("--batch-size", type=COUNT, default=16)
    add_config_fields(caption, "prefcap.captioners.base:Decoding", what="decoding fields, e.g. temperature=0.7")
    caption.set_defaults(run=_caption)


def add_sft(commands) -> None:
    sft = commands.add_parser("sft", help="supervised training of a captioner on reference captions")
    sft.add_argument("--data", required=True, type=Path, help="folder with clips.jsonl and captions.jsonl")
    sft.add_argument("--out", required=True, type=Path, help="output folder for the captioner")
    sft.add_argument("--init", help="captioner to fine-tune (default: a new audio-bart captioner)")
    sft.add_argument("--train-split", default="train")
    sft.add_argument("--val-split", default="val")
    add_config_fields(sft, "prefcap.captioners.sft:SFTConfig", "sft", what="SFTConfig fields, e.g. max_steps=500")
    sft.set_defaults(run=_sft)


def add_commands(commands) -> None:
    for add in (add_synth, add_ingest, add_encoder_train, add_score, add_caption, add_sft):
        add(commands)
