"""The `prefcap` command. `--flags` name inputs and outputs; trailing `key=value` items override config fields.

Any user-facing error ends the process with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from prefcap import __version__
from prefcap.config import apply_overrides, file_overrides
from prefcap.errors import PrefcapError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise PrefcapError(f"{message} (see '{self.prog} --help')")


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], refused by argparse (one line, exit 2) otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high if high is not None else '...'}],"
                                             f" got {value}")
        return value

    return parse


SEED, COUNT, PORT = _int_in(0, 2**32 - 1), _int_in(1), _int_in(1, 65535)


def _synth(args: argparse.Namespace) -> None:
    from prefcap.data.synth.corpus import SynthConfig, parse_splits, synthesize

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
    from prefcap.data.records import read_captions
    from prefcap.eval.metrics import compute_metrics

    candidates: dict[str, str] = {}
    for caption in read_captions(args.captions):
        if args.system is None or caption.source == args.system:
            candidates.setdefault(caption.clip_id, caption.text)  # the first caption of a clip is scored
    references: dict[str, list[str]] = {}
    for caption in read_captions(args.references):
        if caption.source == "reference":
            references.setdefault(caption.clip_id, []).append(caption.text)
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


def _overrides(args: argparse.Namespace, section: str) -> list[str]:
    """The `--config` file's section for this command, then the command line's `key=value` items."""
    return [*file_overrides(args.config, section), *args.overrides] if args.config else args.overrides


def _sft(args: argparse.Namespace) -> None:
    from prefcap.captioners.load import load_captioner
    from prefcap.captioners.sft import SFTConfig, new_captioner, train_captioner
    from prefcap.data.records import read_captions, read_clips

    config = apply_overrides(SFTConfig(), _overrides(args, "sft"))
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


def _store(args: argparse.Namespace, create: bool = False):
    from prefcap.prefs.store import Store

    return Store.at(args.db, create=create)


def _pairs(args: argparse.Namespace) -> None:
    from prefcap.captioners.load import load_captioner
    from prefcap.data.records import read_captions, read_clips
    from prefcap.prefs.pairs import PairsConfig, build_pairs

    config = apply_overrides(PairsConfig(num_pairs=args.num_pairs, num_clips=args.num_clips, strategy=args.strategy,
                                         include_references=args.references is not None, seed=args.seed),
                             args.overrides)
    clips = read_clips(args.clips)
    if args.split:
        clips = [c for c in clips if c.split == args.split]
    if not clips:
        raise PrefcapError(f"{args.clips}: no clips" + (f" in split {args.split!r}" if args.split else ""))
    captioners = {}
    for spec in args.captioner:
        name, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).resolve().name, "", spec)
        if not name or not path:
            raise PrefcapError(f"--captioner expects [NAME=]PATH, got {spec!r}")
        captioners[name] = load_captioner(path)
    references = read_captions(args.references) if args.references else None
    scorer = None
    if args.reward:
        from prefcap.encoders.clap import ClapEncoder
        from prefcap.reward.model import RewardModel
        from prefcap.reward.recipes import reward_scorer

        if not args.encoder:
            raise PrefcapError("--reward needs --encoder (the CLAP the reward model was trained on)")
        encoder = ClapEncoder.from_pretrained(args.encoder)
        scorer = reward_scorer(RewardModel.load(args.reward, encoder=encoder), encoder,
                               args.cache or Path(args.db).parent / "cache")
    store = _store(args, create=True)
    stats = build_pairs(store, captioners, clips, config, scorer, references=references)
    print(f"stored {stats['pairs_added']} new pairs ({config.strategy}; {stats['pairs_selected']} of the "
          f"{stats['pairs_requested']} requested were possible) over {stats['clips']} clips from "
          f"{stats['candidates']} distinct candidates in {store.url}")
    if stats["clips_without_candidates"]:
        print(f"{stats['clips_without_candidates']} clips gave no candidate (unusable audio)")


def _assign(args: argparse.Namespace) -> None:
    from prefcap.prefs.assign import AssignConfig, assign

    store = _store(args)
    annotators = None
    if args.annotators:
        known = {a.name: a for a in store.annotators()}
        missing = [n for n in args.annotators.split(",") if n not in known]
        if missing:
            raise PrefcapError(f"unknown annotators: {', '.join(missing)}")
        annotators = [known[n] for n in args.annotators.split(",")]
    stats = assign(store, AssignConfig(overlap=args.overlap, gold_share=args.gold_share, seed=args.seed), annotators)
    print(f"queued {stats['assignments']} items ({stats['gold_assignments']} gold) for {stats['annotators']} "
          f"annotators over {stats['pairs']} pairs")


def _annotators(args: argparse.Namespace) -> None:
    store = _store(args, create=args.action == "add")  # `list` of a mistyped --db must not create a store
    if args.action == "add":
        role = "admin" if args.admin else "annotator"
        for name in args.names:
            token = store.add_annotator(name, role=role)
            print(f"{role} {name!r} added; their login link (shown once, keep it private):\n"
                  f"  http://{args.host}:{args.port}/login?token={token}")
    else:
        for annotator in store.annotators(role=None):
            done, assigned = store.progress(annotator)
            print(f"{annotator.name:<24}{annotator.role:<12}{done} / {assigned} done")


def exposure_warning(host: str, secure_cookies: bool) -> str | None:
    """What to say when the annotation app listens beyond this machine: login links and session cookies then
    cross the network, in clear unless a TLS proxy sits in front."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    advice = "" if secure_cookies else "; add --secure-cookies once it is served over HTTPS"
    return (f"listening on {host}: login tokens and session cookies travel in clear unless a TLS (HTTPS) proxy "
            f"sits in front of this server{advice}")


def _annotate(args: argparse.Namespace) -> None:
    from prefcap.prefs.app import serve

    if args.guidelines and not args.guidelines.is_file():
        raise PrefcapError(f"{args.guidelines}: no such guidelines file")
    store = _store(args)
    warning = exposure_warning(args.host, args.secure_cookies)
    if warning:
        print(f"prefcap: warning: {warning}", file=sys.stderr)
    print(f"serving {store.url} on http://{args.host}:{args.port} (Ctrl-C stops)")
    serve(store, args.host, args.port, args.guidelines, secure_cookies=args.secure_cookies)


def _simulate(args: argparse.Namespace) -> None:
    from prefcap.prefs.simulate import simulate

    stats = simulate(_store(args), args.panel, seed=args.seed, overlap=args.overlap or None)
    print(f"{stats['annotators']} simulated annotators ({args.panel} panel) gave {stats['judgments']} judgments")


def _judge(args: argparse.Namespace) -> None:
    from prefcap.data.records import CaptionPair, read_clips, read_jsonl_lines
    from prefcap.data.synth.panels import judge_pairs
    from prefcap.io import atomic_write

    clips = {clip.id: clip for clip in read_clips(args.clips)}
    rows = judge_pairs(clips, read_jsonl_lines(args.pairs, CaptionPair), args.panel, seed=args.seed)
    with atomic_write(args.out) as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    verdicts = [row["verdict"] for row in rows]
    print(f"{args.panel} panel judged {len(rows)} pairs: a {verdicts.count('a')}, b {verdicts.count('b')}, "
          f"tie {verdicts.count('tie')} -> {args.out}")


def _prefs(args: argparse.Namespace) -> None:
    from prefcap.prefs import formats

    if args.action == "export":
        store = _store(args)
        writer = {"jsonl": formats.export_jsonl, "hf": formats.export_hf,
                  "label-studio": formats.export_label_studio}[args.format]
        writer(store, args.file)
        print(f"exported {args.format} to {args.file}")
    else:
        reader = {"jsonl": formats.import_jsonl, "label-studio": formats.import_label_studio,
                  "fense": formats.import_fense}.get(args.format)
        if reader is None:
            raise PrefcapError(f"format {args.format!r} is export-only; import jsonl, label-studio or fense")
        if not args.file.is_file():
            raise PrefcapError(f"{args.file}: no such file")
        from prefcap.prefs.schema import store_file

        database = store_file(args.db)
        existed = database is None or database.exists()  # (a server database always exists)
        store = _store(args, create=True)
        try:
            stats = reader(store, args.file)
        except PrefcapError:
            if not existed:  # a first import that fails leaves no empty store behind
                store.delete()
            raise
        print("imported " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in stats.items()))


def _text_encoder(name: str):
    """A CLAP (folder or hub id: audio and text) or, with the prefix 'sbert:', a sentence-transformers model."""
    if name.startswith("sbert:"):
        from prefcap.encoders.sentence import SentenceEncoder

        return SentenceEncoder(name.removeprefix("sbert:"))
    from prefcap.encoders.clap import ClapEncoder

    return ClapEncoder.from_pretrained(name)


def _reward_train(args: argparse.Namespace) -> None:
    from prefcap.reward.model import RewardConfig
    from prefcap.reward.recipes import train_from_store

    config = apply_overrides(RewardConfig(seed=args.seed), _overrides(args, "reward"))
    encoder = _text_encoder(args.encoder)
    metrics = train_from_store(_store(args), encoder, args.out, config, mode=args.mode,
                               test_fraction=args.test_fraction, cache_root=args.cache, curve=args.learning_curve)
    heldout = metrics["heldout"]
    print(f"saved the reward model to {args.out}: held-out accuracy {heldout['accuracy']:.3f} on "
          f"{heldout['labelled_pairs']} labelled pairs of unseen clips (single-annotator agreement "
          f"{heldout['single_annotator_agreement'] or float('nan'):.3f}), trained on {metrics['train_pairs']} pairs")


def _rl(args: argparse.Namespace) -> None:
    from prefcap.rl.recipes import run_rl
    from prefcap.rl.trainer import RLConfig

    config = apply_overrides(RLConfig(seed=args.seed), _overrides(args, "rl"))
    encoder = _text_encoder(args.encoder)
    metrics = run_rl(args.captioner, args.reward, encoder, args.clips, args.out, config, split=args.split,
                     eval_split=args.eval_split or None, eval_clips=args.eval_clips, cache_root=args.cache,
                     reference=args.reference, resume=args.resume)
    if metrics:  # the main process
        heldout = metrics["heldout"]
        change = (f"; held-out reward {heldout[0]['reward']:.3f} -> {heldout[-1]['reward']:.3f}"
                  if len(heldout) > 1 else "")
        print(f"saved the RL captioner to {args.out / 'captioner'} after {metrics['steps']} steps "
              f"({metrics['captions_per_second']:.1f} captions/s){change}")


def _dpo(args: argparse.Namespace) -> None:
    from prefcap.rl.dpo import DPOConfig
    from prefcap.rl.recipes import run_dpo

    config = apply_overrides(DPOConfig(seed=args.seed), _overrides(args, "dpo"))
    metrics = run_dpo(args.captioner, _store(args), args.out, config)
    best = next(v for v in metrics["validation"] if v["step"] == metrics["best_step"])
    print(f"saved the DPO captioner to {args.out}: {metrics['steps']} steps on {metrics['train_pairs']} pairs; "
          f"validation preference accuracy {best['val_accuracy']:.3f} (loss {best['val_loss']:.3f})")


def _eval(args: argparse.Namespace) -> None:
    from prefcap.data.records import read_captions, read_clips
    from prefcap.eval.run import run_eval

    clips = [c for c in read_clips(args.clips) if args.split is None or c.split == args.split]
    references = None
    if args.references:
        references = {}
        for caption in read_captions(args.references):
            if caption.source == "reference":
                references.setdefault(caption.clip_id, []).append(caption.text)
        clips_without = [c.id for c in clips if c.id not in references]
        if clips_without:
            raise PrefcapError(f"{args.references}: no reference for {len(clips_without)} clips "
                               f"(e.g. {clips_without[0]!r})")
    results = run_eval(clips, args.system, args.out, judges=args.judges, references=references,
                       encoder=_text_encoder(args.encoder) if args.encoder else None, reward_dir=args.reward,
                       cache_root=args.cache, store=_store(args, create=True) if args.db else None,
                       baseline=args.baseline, seed=args.seed)
    for name, scores in results["systems"].items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()
                                      if isinstance(v, float) and k in ("cider_d", "sbert_sim", "rm_score",
                                                                        "clap_score", "distinct_2", "mean_words")))
    for row in results["pairwise"]:
        rate = "n/a" if row["win_rate"] is None else f"{row['win_rate']:.1%}"
        print(f"{row['a']} vs {row['b']} ({row['judge']}, {row['clips']} clips): {row['wins']} wins, "
              f"{row['losses']} losses, {row['ties']} ties; win rate {rate} [{row['ci_low']:.1%}, "
              f"{row['ci_high']:.1%}], sign test p = {row['sign_test_p']:.2g}")
    for row in results["ranking"]:
        print(f"  {row['system']}: Bradley-Terry {row['bt_score']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]")
    waiting = {k: v for k, v in results["pending"].items() if k != "pairs_added_now" and v}
    if waiting:
        print(f"waiting for human judgments: {waiting}; queued {results['pending']['pairs_added_now']} new pairs "
              f"(prefcap assign --db {args.db}, then prefcap annotate)")
    print(f"results: {Path(args.out) / 'eval.json'}")


def _report(args: argparse.Namespace) -> None:
    from prefcap.eval.report import write_report
    from prefcap.eval.tables import summary_table

    path = write_report(args.folder, args.out)
    print(summary_table(json.loads((args.folder / "results.json").read_text())))
    print(f"report: {path}")


def _reward_eval(args: argparse.Namespace) -> None:
    from prefcap.io import atomic_write

    if args.fense:
        from prefcap.reward.recipes import (
            FENSE_CANDIDATES,
            FENSE_VARIANTS,
            fense_accuracy,
            fense_cross_validation,
            fense_table,
            load_fense,
        )

        # the overrides (and --head) apply to every candidate design; the paper's head is always scored beside
        candidates = {name: apply_overrides(dataclasses.replace(config, **({"head": args.head} if args.head else {})),
                                            args.overrides) for name, config in FENSE_CANDIDATES.items()}
        encoder = _text_encoder(args.encoder or "sbert:default")
        if args.train_fense:
            result = fense_accuracy(load_fense(args.train_fense), load_fense(args.fense), candidates, encoder,
                                    variants=FENSE_VARIANTS, seed=args.seed)
        elif args.folds:
            result = fense_cross_validation(args.fense, candidates, encoder, args.folds, variants=FENSE_VARIANTS,
                                            seed=args.seed)
        else:
            raise PrefcapError("--fense needs --train-fense TRAIN.json (train there, test on --fense) or --folds K")
        print(fense_table({"default (chosen inside each training set)": result, **result["variants"]}))
    else:
        if not (args.model and args.db and args.encoder):
            raise PrefcapError("give --model DIR, --db DB and --encoder (the one it was trained on), or --fense FILE")
        from prefcap.reward.recipes import evaluate_saved

        result = evaluate_saved(args.model, _store(args), _text_encoder(args.encoder), all_pairs=args.all,
                                cache_root=args.cache)
        print(json.dumps(result, indent=2, default=float))
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(result, handle, indent=2, default=float)


def _demo(args: argparse.Namespace) -> None:
    from prefcap.demo import DemoConfig, run_demo, run_seeds, seeds_table, summary_table

    config = DemoConfig(seed=args.seed, size=args.size, diagnostics=args.diagnostics,
                        decomposition=args.decomposition, device=args.device)
    config = apply_overrides(config if args.rounds is None else dataclasses.replace(config, rounds=args.rounds),
                             args.overrides)
    if args.until and args.seeds != 1:
        raise PrefcapError("--until stops one run: use it without --seeds")
    if args.until:
        results = run_demo(args.out, config, until=args.until)
        times = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in results["timings_s"].items())
        print(f"stopped after {args.until}: {times}")
        return
    if args.seeds == 1:
        results = run_demo(args.out, config)
        print(summary_table(results))
        print(f"results: {Path(args.out) / 'results.json'}")
        return
    summary = run_seeds(args.out, config, args.seeds, on_result=lambda results: print(summary_table(results)))
    print(seeds_table(summary))
    print(f"results: {Path(args.out) / 'seed-<S>' / 'results.json'} per seed; {Path(args.out) / 'seeds.json'}")


def with_config(command: argparse.ArgumentParser, section: str) -> None:
    command.add_argument("--config", type=Path, help=f"YAML recipe (configs/*.yaml): its '{section}' section sets "
                         "config fields; key=value items still win")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prefcap", description="Align audio captioning with human preferences.")
    parser.add_argument("--version", action="version", version=f"prefcap {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    synth = commands.add_parser("synth", help="generate the synthetic scene corpus (audio + 5 references/clip)")
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--n", type=int, default=200, help="number of clips")
    synth.add_argument("--domain", choices=("source", "target", "general"), default="target")
    synth.add_argument("--seed", type=SEED, default=0)
    synth.add_argument("--sample-rate", type=int, choices=(16_000, 48_000), default=16_000)
    synth.add_argument("--splits", help="split fractions, e.g. train=0.8,val=0.1,test=0.1")
    synth.add_argument("overrides", nargs="*", metavar="key=value")
    synth.set_defaults(run=_synth)

    from prefcap.data.ingest import KINDS

    ingest = commands.add_parser("ingest", help="turn Clotho / AudioCaps / an audio folder into manifests")
    ingest.add_argument("source", type=Path, help="dataset folder")
    ingest.add_argument("--out", required=True, type=Path, help="output folder for the manifests")
    ingest.add_argument("--kind", choices=KINDS, default="auto")
    ingest.add_argument("--max-seconds", type=float, default=600.0, help="reject longer files")
    ingest.set_defaults(run=_ingest)

    encoder_train = commands.add_parser("encoder-train", help="train the small offline CLAP on a corpus")
    encoder_train.add_argument("--data", required=True, type=Path, help="folder with clips.jsonl and captions.jsonl")
    encoder_train.add_argument("--split", default="train", help="which split of the corpus to train on")
    encoder_train.add_argument("--out", required=True, type=Path, help="output folder (Hugging Face format)")
    encoder_train.add_argument("overrides", nargs="*", metavar="key=value")
    encoder_train.set_defaults(run=_encoder_train)

    score = commands.add_parser("score", help="caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE, SBERT, ...)")
    score.add_argument("captions", type=Path, help="captions.jsonl of the system to score")
    score.add_argument("--references", required=True, type=Path, help="captions.jsonl holding the references")
    score.add_argument("--system", help="score only captions whose source is this system")
    score.add_argument("--no-sbert", action="store_true", help="skip the SBERT similarity")
    score.add_argument("--json", type=Path, help="also write the scores here")
    score.set_defaults(run=_score)

    caption = commands.add_parser("caption", help="caption a folder of audio or a clip manifest")
    caption.add_argument("source", type=Path, help="audio folder, or clips.jsonl")
    caption.add_argument("--captioner", required=True, help="captioner folder or hub id")
    caption.add_argument("--out", required=True, type=Path, help="captions.jsonl to write")
    caption.add_argument("--system", help="system name stored with the captions (default: the captioner's name)")
    caption.add_argument("--mode", choices=("greedy", "beam", "sample"), default="greedy")
    caption.add_argument("--n", type=COUNT, default=1, help="captions per clip")
    caption.add_argument("--batch-size", type=COUNT, default=16)
    caption.add_argument("overrides", nargs="*", metavar="key=value", help="decoding fields, e.g. temperature=0.7")
    caption.set_defaults(run=_caption)

    sft = commands.add_parser("sft", help="supervised training of a captioner on reference captions")
    sft.add_argument("--data", required=True, type=Path, help="folder with clips.jsonl and captions.jsonl")
    sft.add_argument("--out", required=True, type=Path, help="output folder for the captioner")
    sft.add_argument("--init", help="captioner to fine-tune (default: a new audio-bart captioner)")
    sft.add_argument("--train-split", default="train")
    sft.add_argument("--val-split", default="val")
    sft.add_argument("overrides", nargs="*", metavar="key=value", help="SFTConfig fields, e.g. max_steps=500")
    with_config(sft, "sft")
    sft.set_defaults(run=_sft)

    def with_db(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--db", required=True, help="judgment store: a run folder, .sqlite file or SQLAlchemy URL")
        return command

    pairs = with_db(commands.add_parser("pairs", help="sample candidate captions and store pairs to judge"))
    pairs.add_argument("--clips", required=True, type=Path, help="clips.jsonl of the audio to caption")
    pairs.add_argument("--split", help="use only clips of this split")
    pairs.add_argument("--captioner", required=True, action="append",
                       help="[NAME=]captioner folder or hub id; repeat for several systems")
    pairs.add_argument("--references", type=Path, help="captions.jsonl whose references join the candidates")
    pairs.add_argument("--num-pairs", type=int, default=1000, help="pairs to store (N)")
    pairs.add_argument("--num-clips", type=int, help="clips to spread them over (M; default all)")
    pairs.add_argument("--strategy", choices=("random", "cross-system", "uncertain"), default="random")
    pairs.add_argument("--reward", type=Path, help="reward model (an ensemble) for --strategy uncertain")
    pairs.add_argument("--encoder", help="the CLAP the reward model was trained on")
    pairs.add_argument("--cache", type=Path, help="embedding cache folder (default: beside --db)")
    pairs.add_argument("--seed", type=SEED, default=0)
    pairs.add_argument("overrides", nargs="*", metavar="key=value", help="PairsConfig fields")
    pairs.set_defaults(run=_pairs)

    assign = with_db(commands.add_parser("assign", help="queue pairs for annotators (overlap, gold share)"))
    assign.add_argument("--overlap", type=int, default=3, help="judgments per pair")
    assign.add_argument("--gold-share", type=float, default=0.0, help="share of gold items in each queue")
    assign.add_argument("--annotators", help="comma-separated names (default: every annotator)")
    assign.add_argument("--seed", type=SEED, default=0)
    assign.set_defaults(run=_assign)

    annotators = commands.add_parser("annotators", help="add or list annotators")
    annotator_actions = annotators.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = with_db(annotator_actions.add_parser("add", help="register an annotator and print their login link"))
    add.add_argument("names", nargs="+", metavar="NAME", help="one or more annotator names")
    add.add_argument("--admin", action="store_true", help="an admin token (the admin page), not an annotator")
    add.add_argument("--host", default="127.0.0.1", help="host shown in the printed link")
    add.add_argument("--port", type=PORT, default=8000, help="port shown in the printed link")
    add.set_defaults(run=_annotators)
    listing = with_db(annotator_actions.add_parser("list", help="annotators and their progress"))
    listing.set_defaults(run=_annotators)

    annotate = with_db(commands.add_parser("annotate", help="serve the annotation web app"))
    annotate.add_argument("--host", default="127.0.0.1")
    annotate.add_argument("--port", type=_int_in(0, 65535), default=8000, help="0: any free port")
    annotate.add_argument("--guidelines", type=Path, help="Markdown guidelines shown on the page")
    annotate.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (serving over HTTPS)")
    annotate.set_defaults(run=_annotate)

    simulate = with_db(commands.add_parser("simulate", help="simulated annotators answer their queues"))
    simulate.add_argument("--panel", choices=("train", "eval"), default="train")
    simulate.add_argument("--overlap", type=int, default=3, help="judgments per pair (0: only answer what is queued)")
    simulate.add_argument("--seed", type=SEED, default=0)
    simulate.set_defaults(run=_simulate)

    judge = commands.add_parser("judge", help="ask a simulated panel which of two captions of a clip is better")
    judge.add_argument("--clips", type=Path, required=True, help="clips.jsonl with synthetic scenes")
    judge.add_argument("--pairs", type=Path, required=True,
                       help='JSONL, one {"clip_id", "a", "b"} per line (other fields are ignored)')
    judge.add_argument("--panel", choices=("train", "eval"), required=True)
    judge.add_argument("--out", type=Path, required=True,
                       help="JSONL: each pair in order with its verdict (a, b or tie: the majority) and votes")
    judge.add_argument("--seed", type=SEED, default=0, help="the panel's seed (the demo's seed builds its panels)")
    judge.set_defaults(run=_judge)

    prefs = commands.add_parser("prefs", help="export or import preference data")
    prefs_actions = prefs.add_subparsers(dest="action", required=True, parser_class=_Parser)
    directions = (("export", ("jsonl", "hf", "label-studio")), ("import", ("jsonl", "label-studio", "fense")))
    for action, formats in directions:
        command = with_db(prefs_actions.add_parser(action, help=f"{action} judgments ({', '.join(formats)})"))
        command.add_argument("file", type=Path)
        command.add_argument("--format", choices=formats, default="jsonl")
        command.set_defaults(run=_prefs)

    reward_train = with_db(commands.add_parser("reward-train", help="train the reward model on stored judgments"))
    reward_train.add_argument("--encoder", required=True,
                              help="CLAP folder or hub id (mode audio), or 'sbert:NAME' (mode reference)")
    reward_train.add_argument("--out", required=True, type=Path, help="output folder for the reward model")
    reward_train.add_argument("--mode", choices=("audio", "reference"), default="audio",
                              help="represent clips by their audio or by their reference captions")
    reward_train.add_argument("--test-fraction", type=float, default=0.2, help="share of clips held out")
    reward_train.add_argument("--cache", type=Path, help="embedding cache folder")
    reward_train.add_argument("--learning-curve", action="store_true",
                              help="also measure accuracy against the number of pairs (random and uncertain)")
    reward_train.add_argument("--seed", type=SEED, default=0)
    reward_train.add_argument("overrides", nargs="*", metavar="key=value",
                              help="RewardConfig fields, e.g. head=interaction ensemble=5")
    with_config(reward_train, "reward")
    reward_train.set_defaults(run=_reward_train)

    reward_eval = commands.add_parser("reward-eval", help="evaluate a reward model (or train-and-test on FENSE data)")
    reward_eval.add_argument("--model", type=Path, help="reward model folder")
    reward_eval.add_argument("--db", help="judgment store to evaluate on (its held-out clips unless --all)")
    reward_eval.add_argument("--all", action="store_true", help="evaluate on every judged pair of the store")
    reward_eval.add_argument("--encoder", help="the encoder the model was trained on (with --fense: sbert:default)")
    reward_eval.add_argument("--cache", type=Path, help="embedding cache folder")
    reward_eval.add_argument("--fense", type=Path, help="FENSE-format judgments to test on")
    reward_eval.add_argument("--train-fense", type=Path, help="FENSE-format judgments to train on")
    reward_eval.add_argument("--folds", type=_int_in(2), help="clip-grouped K-fold cross-validation on --fense")
    reward_eval.add_argument("--head", choices=("mlp", "interaction"),
                             help="with --fense: the head of every candidate design (default: interaction)")
    reward_eval.add_argument("--json", type=Path, help="write the result here")
    reward_eval.add_argument("--seed", type=SEED, default=0)
    reward_eval.add_argument("overrides", nargs="*", metavar="key=value",
                             help="RewardConfig fields (with --fense: of every candidate design)")
    reward_eval.set_defaults(run=_reward_eval)

    rl = commands.add_parser("rl", help="fine-tune a captioner against the reward model (audio only, no captions)")
    rl.add_argument("--captioner", required=True, help="starting captioner folder or hub id")
    rl.add_argument("--reference", help="captioner the KL is taken to (default: --captioner; a later preference "
                    "round continues from the last RL policy and keeps the baseline here)")
    rl.add_argument("--reward", required=True, type=Path, help="reward model folder (prefcap reward-train)")
    rl.add_argument("--encoder", required=True, help="the CLAP the reward model was trained on")
    rl.add_argument("--clips", required=True, type=Path, help="clip manifest (only audio and ids are read)")
    rl.add_argument("--split", default="rl", help="split of the manifest to train on")
    rl.add_argument("--eval-split", default="val", help="split whose audio tracks the held-out reward ('' for none)")
    rl.add_argument("--eval-clips", type=int, default=100, help="held-out clips to track")
    rl.add_argument("--out", required=True, type=Path, help="run folder: log.jsonl, checkpoints/, captioner/")
    rl.add_argument("--cache", type=Path, help="embedding cache folder (default: OUT/cache)")
    rl.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    rl.add_argument("--seed", type=SEED, default=0)
    rl.add_argument("overrides", nargs="*", metavar="key=value",
                    help="RLConfig fields, e.g. algorithm=grpo beta=0.1 num_generations=8")
    with_config(rl, "rl")
    rl.set_defaults(run=_rl)

    dpo = with_db(commands.add_parser("dpo", help="direct preference optimisation on the stored judgments"))
    dpo.add_argument("--captioner", required=True, help="starting captioner folder or hub id")
    dpo.add_argument("--out", required=True, type=Path, help="output folder for the captioner")
    dpo.add_argument("--seed", type=SEED, default=0)
    dpo.add_argument("overrides", nargs="*", metavar="key=value", help="DPOConfig fields, e.g. beta=0.1")
    with_config(dpo, "dpo")
    dpo.set_defaults(run=_dpo)

    evaluate = commands.add_parser("eval", help="compare systems: metrics and blind pairwise preference")
    evaluate.add_argument("--clips", required=True, type=Path, help="clip manifest of the test audio")
    evaluate.add_argument("--split", help="use only clips of this split")
    evaluate.add_argument("--system", required=True, action="append",
                          help="NAME=PATH: a captioner folder / hub id, or a captions .jsonl; repeat")
    evaluate.add_argument("--references", type=Path, help="captions.jsonl with the clips' reference captions")
    evaluate.add_argument("--judges", choices=("simulated", "humans"), default="simulated")
    evaluate.add_argument("--db", help="judgment store for --judges humans")
    evaluate.add_argument("--baseline", help="compare every system with this one (default: every pair)")
    evaluate.add_argument("--encoder", help="CLAP for clap_score (and rm_score with --reward)")
    evaluate.add_argument("--reward", type=Path, help="reward model folder for rm_score")
    evaluate.add_argument("--cache", type=Path, help="embedding cache folder")
    evaluate.add_argument("--out", required=True, type=Path, help="output folder: eval.json and captions")
    evaluate.add_argument("--seed", type=SEED, default=0)
    evaluate.set_defaults(run=_eval)

    report = commands.add_parser("report", help="write report.html for a demo run and print its summary table")
    report.add_argument("folder", nargs="?", type=Path, default=Path("runs/demo"), help="a finished demo run folder")
    report.add_argument("--out", type=Path, help="the HTML file (default: FOLDER/report.html)")
    report.set_defaults(run=_report)

    demo = commands.add_parser("demo", help="run the whole method on the embedded default")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--seed", type=SEED, default=0, help="the (first) seed")
    demo.add_argument("--seeds", type=int, default=1,
                      help="run N seeds (--seed, --seed + 1, ...) in OUT/seed-S and report mean ± sd in OUT/seeds.json")
    sizing = demo.add_mutually_exclusive_group()
    sizing.add_argument("--size", choices=("tiny", "demo"), default="demo",
                        help="the settings in src/prefcap/demo/sizes/SIZE.yaml")
    sizing.add_argument("--config", dest="size", metavar="FILE", default=argparse.SUPPRESS,
                        help="a demo recipe of the same shape as those files: every setting of the run")
    demo.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                      help="where every stage runs: auto takes a GPU when torch sees one; cuda without one is an "
                           "error. The device is not part of any stage's key: stages built elsewhere are kept")
    demo.add_argument("--until", metavar="STAGE",
                      help="stop after this stage (e.g. reward, to choose RL settings on val before scoring test)")
    demo.add_argument("--rounds", type=int, help="preference rounds (default 2): the judgment budget is split over "
                      "them; each later round judges the current policy's captions, retrains the reward model on "
                      "all judgments so far and continues RL")
    demo.add_argument("--diagnostics", action="store_true",
                      help="also train the reward model's frozen-embedding variants, its learning curve and the "
                           "ensemble's uncertainty (slower; the paper's head is always reported)")
    demo.add_argument("--decomposition", action="store_true",
                      help="also take the gap to supervised apart: RL with the training panel's own score as the "
                           "reward (rlhf-oracle), RL against the paper's head (rlhf-paper), and supervised "
                           "fine-tuning on 50/100/200 clips' references (slower; added stages, cached)")
    demo.add_argument("overrides", nargs="*", metavar="key=value")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        # argparse binds `key=value` positionals only where they first appear; collect the later ones too
        args, extra = parser.parse_known_args(argv)
        unknown = [item for item in extra if item.startswith("-") or "=" not in item or not hasattr(args, "overrides")]
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if extra:
            args.overrides = [*args.overrides, *extra]
        args.run(args)
    except PrefcapError as error:
        print(f"prefcap: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that cannot be read or written (a folder where a file goes, a full disk, ...)
        where = error.filename2 or error.filename or ""  # os.replace(tmp, path): the path the user named is the 2nd
        print(f"prefcap: error: {error.strerror or error}: {where}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prefcap: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
