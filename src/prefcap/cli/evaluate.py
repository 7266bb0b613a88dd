"""Evaluation and the whole method: eval, report, demo."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from prefcap.cli.common import SEED, add_config_fields, open_store
from prefcap.config import apply_overrides
from prefcap.errors import PrefcapError


def _eval_references(args: argparse.Namespace, clips: list) -> dict[str, list[str]] | None:
    """The clips' reference captions from --references (None without it); every clip must have one."""
    from prefcap.data.records import read_captions, references_by_clip

    if not args.references:
        return None
    references = references_by_clip(read_captions(args.references))
    clips_without = [c.id for c in clips if c.id not in references]
    if clips_without:
        raise PrefcapError(f"{args.references}: no reference for {len(clips_without)} clips "
                           f"(e.g. {clips_without[0]!r})")
    return references


def _print_eval(results: dict, db: str | None) -> None:
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
              f"(prefcap assign --db {db}, then prefcap annotate)")


def _eval(args: argparse.Namespace) -> None:
    from prefcap.data.records import read_clips
    from prefcap.encoders.load import check_encoder_name, text_encoder
    from prefcap.eval.run import run_eval

    clips = [c for c in read_clips(args.clips) if args.split is None or c.split == args.split]
    references = _eval_references(args, clips)
    if args.encoder:
        check_encoder_name(args.encoder)
    results = run_eval(clips, args.system, args.out, judges=args.judges, references=references,
                       encoder=text_encoder(args.encoder) if args.encoder else None, reward_dir=args.reward,
                       cache_root=args.cache, store=open_store(args, create=True) if args.db else None,
                       baseline=args.baseline, seed=args.seed)
    _print_eval(results, args.db)
    print(f"results: {Path(args.out) / 'eval.json'}")


def _report(args: argparse.Namespace) -> None:
    from prefcap.eval.report import write_report
    from prefcap.eval.tables import summary_table

    path = write_report(args.folder, args.out)
    print(summary_table(json.loads((args.folder / "results.json").read_text())))
    print(f"report: {path}")


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


def add_eval(commands) -> None:
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


def add_report(commands) -> None:
    report = commands.add_parser("report", help="write report.html for a demo run and print its summary table")
    report.add_argument("folder", nargs="?", type=Path, default=Path("runs/demo"), help="a finished demo run folder")
    report.add_argument("--out", type=Path, help="the HTML file (default: FOLDER/report.html)")
    report.set_defaults(run=_report)


def add_demo(commands) -> None:
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
    add_config_fields(demo, "prefcap.demo:DemoConfig", what="DemoConfig fields (listed below)")
    demo.set_defaults(run=_demo)


def add_commands(commands) -> None:
    for add in (add_eval, add_report, add_demo):
        add(commands)
