"""Preference-collection commands: pairs, assign, annotators, annotate, simulate, judge, prefs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prefcap.cli.common import PORT, SEED, Parser, add_config_fields, int_in, open_store, with_db
from prefcap.config import apply_overrides
from prefcap.errors import PrefcapError


def _captioner_specs(specs: list[str]) -> dict[str, str]:
    """`[NAME=]PATH` items as {name: path}; the name defaults to the folder's."""
    found = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).resolve().name, "", spec)
        if not name or not path:
            raise PrefcapError(f"--captioner expects [NAME=]PATH, got {spec!r}")
        found[name] = path
    return found


def _pairs(args: argparse.Namespace) -> None:
    from prefcap.captioners.load import check_captioner, load_captioner
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
    specs = _captioner_specs(args.captioner)
    for path in specs.values():
        check_captioner(path)
    if args.reward and not args.encoder:
        raise PrefcapError("--reward needs --encoder (the CLAP the reward model was trained on)")
    captioners = {name: load_captioner(path) for name, path in specs.items()}
    references = read_captions(args.references) if args.references else None
    scorer = None
    if args.reward:
        from prefcap.encoders.clap import ClapEncoder
        from prefcap.reward.jobs import reward_scorer
        from prefcap.reward.model import RewardModel

        encoder = ClapEncoder.from_pretrained(args.encoder)
        scorer = reward_scorer(RewardModel.load(args.reward, encoder=encoder), encoder,
                               args.cache or Path(args.db).parent / "cache")
    store = open_store(args, create=True)
    stats = build_pairs(store, captioners, clips, config, scorer, references=references)
    print(f"stored {stats['pairs_added']} new pairs ({config.strategy}; {stats['pairs_selected']} of the "
          f"{stats['pairs_requested']} requested were possible) over {stats['clips']} clips from "
          f"{stats['candidates']} distinct candidates in {store.url}")
    if stats["clips_without_candidates"]:
        print(f"{stats['clips_without_candidates']} clips gave no candidate (unusable audio)")


def _assign(args: argparse.Namespace) -> None:
    from prefcap.prefs.assign import AssignConfig, assign

    store = open_store(args)
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
    store = open_store(args, create=args.action == "add")  # `list` of a mistyped --db must not create a store
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
    store = open_store(args)
    warning = exposure_warning(args.host, args.secure_cookies)
    if warning:
        print(f"prefcap: warning: {warning}", file=sys.stderr)
    print(f"serving {store.url} on http://{args.host}:{args.port} (Ctrl-C stops)")
    serve(store, args.host, args.port, args.guidelines, secure_cookies=args.secure_cookies)


def _simulate(args: argparse.Namespace) -> None:
    from prefcap.prefs.simulate import simulate

    stats = simulate(open_store(args), args.panel, seed=args.seed, overlap=args.overlap or None)
    print(f"{stats['annotators']} simulated annotators ({args.panel} panel) gave {stats['judgments']} judgments")


def _judge(args: argparse.Namespace) -> None:
    from prefcap.data.records import CaptionPair, read_clips, read_jsonl_lines
    from prefcap.io import atomic_write
    from prefcap.synth.panels import judge_pairs

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
        formats.EXPORTERS[args.format](open_store(args), args.file)
        print(f"exported {args.format} to {args.file}")
    else:
        stats = formats.import_file(args.db, args.file, args.format)
        print("imported " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in stats.items()))


def add_pairs(commands) -> None:
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
    add_config_fields(pairs, "prefcap.prefs.pairs:PairsConfig", what="PairsConfig fields (listed below)")
    pairs.set_defaults(run=_pairs)


def add_assign(commands) -> None:
    assign = with_db(commands.add_parser("assign", help="queue pairs for annotators (overlap, gold share)"))
    assign.add_argument("--overlap", type=int, default=3, help="judgments per pair")
    assign.add_argument("--gold-share", type=float, default=0.0, help="share of gold items in each queue")
    assign.add_argument("--annotators", help="comma-separated names (default: every annotator)")
    assign.add_argument("--seed", type=SEED, default=0)
    assign.set_defaults(run=_assign)


def add_annotators(commands) -> None:
    annotators = commands.add_parser("annotators", help="add or list annotators")
    annotator_actions = annotators.add_subparsers(dest="action", required=True, parser_class=Parser)
    add = with_db(annotator_actions.add_parser("add", help="register an annotator and print their login link"))
    add.add_argument("names", nargs="+", metavar="NAME", help="one or more annotator names")
    add.add_argument("--admin", action="store_true", help="an admin token (the admin page), not an annotator")
    add.add_argument("--host", default="127.0.0.1", help="host shown in the printed link")
    add.add_argument("--port", type=PORT, default=8000, help="port shown in the printed link")
    add.set_defaults(run=_annotators)
    listing = with_db(annotator_actions.add_parser("list", help="annotators and their progress"))
    listing.set_defaults(run=_annotators)


def add_annotate(commands) -> None:
    annotate = with_db(commands.add_parser("annotate", help="serve the annotation web app"))
    annotate.add_argument("--host", default="127.0.0.1")
    annotate.add_argument("--port", type=int_in(0, 65535), default=8000, help="0: any free port")
    annotate.add_argument("--guidelines", type=Path, help="Markdown guidelines shown on the page")
    annotate.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (serving over HTTPS)")
    annotate.set_defaults(run=_annotate)


def add_simulate(commands) -> None:
    simulate = with_db(commands.add_parser("simulate", help="simulated annotators answer their queues"))
    simulate.add_argument("--panel", choices=("train", "eval"), default="train")
    simulate.add_argument("--overlap", type=int, default=3, help="judgments per pair (0: only answer what is queued)")
    simulate.add_argument("--seed", type=SEED, default=0)
    simulate.set_defaults(run=_simulate)


def add_judge(commands) -> None:
    judge = commands.add_parser("judge", help="ask a simulated panel which of two captions of a clip is better")
    judge.add_argument("--clips", type=Path, required=True, help="clips.jsonl with synthetic scenes")
    judge.add_argument("--pairs", type=Path, required=True,
                       help='JSONL, one {"clip_id", "a", "b"} per line (other fields are ignored)')
    judge.add_argument("--panel", choices=("train", "eval"), required=True)
    judge.add_argument("--out", type=Path, required=True,
                       help="JSONL: each pair in order with its verdict (a, b or tie: the majority) and votes")
    judge.add_argument("--seed", type=SEED, default=0, help="the panel's seed (the demo's seed builds its panels)")
    judge.set_defaults(run=_judge)


def add_prefs(commands) -> None:
    prefs = commands.add_parser("prefs", help="export or import preference data")
    prefs_actions = prefs.add_subparsers(dest="action", required=True, parser_class=Parser)
    directions = (("export", ("jsonl", "hf", "label-studio")), ("import", ("jsonl", "label-studio", "fense")))
    for action, formats in directions:
        command = with_db(prefs_actions.add_parser(action, help=f"{action} judgments ({', '.join(formats)})"))
        command.add_argument("file", type=Path)
        command.add_argument("--format", choices=formats, default="jsonl")
        command.set_defaults(run=_prefs)


def add_commands(commands) -> None:
    for add in (add_pairs, add_assign, add_annotators, add_annotate, add_simulate, add_judge, add_prefs):
        add(commands)

