"""Training on preferences: reward-train, reward-eval, rl, dpo. Each checks its cheap inputs (paths, names) before
it loads an encoder or a captioner."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from prefcap.cli.common import (
    SEED,
    add_config_fields,
    configured,
    int_in,
    need_file,
    need_folder,
    open_store,
    with_db,
)
from prefcap.config import apply_overrides
from prefcap.errors import PrefcapError


def _reward_train(args: argparse.Namespace) -> None:
    from prefcap.encoders.load import check_encoder_name, text_encoder
    from prefcap.reward.jobs import train_from_store
    from prefcap.reward.model import RewardConfig

    config = configured(RewardConfig(seed=args.seed), args, "reward")
    check_encoder_name(args.encoder)
    store = open_store(args)
    metrics = train_from_store(store, text_encoder(args.encoder), args.out, config, mode=args.mode,
                               test_fraction=args.test_fraction, cache_root=args.cache, curve=args.learning_curve)
    heldout = metrics["heldout"]
    print(f"saved the reward model to {args.out}: held-out accuracy {heldout['accuracy']:.3f} on "
          f"{heldout['labelled_pairs']} labelled pairs of unseen clips (single-annotator agreement "
          f"{heldout['single_annotator_agreement'] or float('nan'):.3f}), trained on {metrics['train_pairs']} pairs")


def _fense_eval(args: argparse.Namespace) -> dict:
    from prefcap.encoders.load import check_encoder_name, text_encoder
    from prefcap.reward.jobs import (
        FENSE_CANDIDATES,
        FENSE_VARIANTS,
        fense_accuracy,
        fense_cross_validation,
        fense_table,
        load_fense,
    )

    if not (args.train_fense or args.folds):
        raise PrefcapError("--fense needs --train-fense TRAIN.json (train there, test on --fense) or --folds K")
    # the overrides (and --head) apply to every candidate design; the paper's head is always scored beside
    candidates = {name: apply_overrides(dataclasses.replace(config, **({"head": args.head} if args.head else {})),
                                        args.overrides) for name, config in FENSE_CANDIDATES.items()}
    check_encoder_name(args.encoder or "sbert:default")
    test = load_fense(args.fense)  # a file that is not FENSE data fails here, before the encoder loads
    train = load_fense(args.train_fense) if args.train_fense else None
    encoder = text_encoder(args.encoder or "sbert:default")
    if train is not None:
        result = fense_accuracy(train, test, candidates, encoder, variants=FENSE_VARIANTS, seed=args.seed)
    else:
        result = fense_cross_validation(test, candidates, encoder, args.folds, variants=FENSE_VARIANTS,
                                        seed=args.seed)
    print(fense_table({"default (chosen inside each training set)": result, **result["variants"]}))
    return result


def _reward_eval(args: argparse.Namespace) -> None:
    from prefcap.io import atomic_write

    if args.fense:
        result = _fense_eval(args)
    else:
        if not (args.model and args.db and args.encoder):
            raise PrefcapError("give --model DIR, --db DB and --encoder (the one it was trained on), or --fense FILE")
        from prefcap.encoders.load import check_encoder_name, text_encoder
        from prefcap.reward.jobs import evaluate_saved

        need_folder(args.model, "reward model folder")
        check_encoder_name(args.encoder)
        store = open_store(args)
        result = evaluate_saved(args.model, store, text_encoder(args.encoder), all_pairs=args.all,
                                cache_root=args.cache)
        print(json.dumps(result, indent=2, default=float))
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(result, handle, indent=2, default=float)


def _rl(args: argparse.Namespace) -> None:
    from prefcap.captioners.load import check_captioner
    from prefcap.encoders.load import check_encoder_name, text_encoder
    from prefcap.rl.jobs import run_rl
    from prefcap.rl.trainer import RLConfig

    config = configured(RLConfig(seed=args.seed), args, "rl")
    check_captioner(args.captioner)  # cheap checks first: a typo must not wait for the hub
    if args.reference:
        check_captioner(args.reference)
    need_folder(args.reward, "reward model folder")
    need_file(args.clips, "clip manifest")
    check_encoder_name(args.encoder)
    encoder = text_encoder(args.encoder)
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
    from prefcap.captioners.load import check_captioner
    from prefcap.rl.dpo import DPOConfig
    from prefcap.rl.jobs import run_dpo

    config = configured(DPOConfig(seed=args.seed), args, "dpo")
    check_captioner(args.captioner)
    metrics = run_dpo(args.captioner, open_store(args), args.out, config)
    best = next(v for v in metrics["validation"] if v["step"] == metrics["best_step"])
    print(f"saved the DPO captioner to {args.out}: {metrics['steps']} steps on {metrics['train_pairs']} pairs; "
          f"validation preference accuracy {best['val_accuracy']:.3f} (loss {best['val_loss']:.3f})")


def add_reward_train(commands) -> None:
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
    add_config_fields(reward_train, "prefcap.reward.model:RewardConfig", "reward",
                      what="RewardConfig fields, e.g. head=interaction ensemble=5")
    reward_train.set_defaults(run=_reward_train)


def add_reward_eval(commands) -> None:
    reward_eval = commands.add_parser("reward-eval", help="evaluate a reward model (or train-and-test on FENSE data)")
    reward_eval.add_argument("--model", type=Path, help="reward model folder")
    reward_eval.add_argument("--db", help="judgment store to evaluate on (its held-out clips unless --all)")
    reward_eval.add_argument("--all", action="store_true", help="evaluate on every judged pair of the store")
    reward_eval.add_argument("--encoder", help="the encoder the model was trained on (with --fense: sbert:default)")
    reward_eval.add_argument("--cache", type=Path, help="embedding cache folder")
    reward_eval.add_argument("--fense", type=Path, help="FENSE-format judgments to test on")
    reward_eval.add_argument("--train-fense", type=Path, help="FENSE-format judgments to train on")
    reward_eval.add_argument("--folds", type=int_in(2), help="clip-grouped K-fold cross-validation on --fense")
    reward_eval.add_argument("--head", choices=("mlp", "interaction"),
                             help="with --fense: the head of every candidate design (default: interaction)")
    reward_eval.add_argument("--json", type=Path, help="write the result here")
    reward_eval.add_argument("--seed", type=SEED, default=0)
    add_config_fields(reward_eval, "prefcap.reward.model:RewardConfig",
                      what="RewardConfig fields (with --fense: of every candidate design)")
    reward_eval.set_defaults(run=_reward_eval)


def add_rl(commands) -> None:
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
    add_config_fields(rl, "prefcap.rl.trainer:RLConfig", "rl",
                      what="RLConfig fields, e.g. algorithm=grpo beta=0.1 num_generations=8")
    rl.set_defaults(run=_rl)


def add_dpo(commands) -> None:
    dpo = with_db(commands.add_parser("dpo", help="direct preference optimisation on the stored judgments"))
    dpo.add_argument("--captioner", required=True, help="starting captioner folder or hub id")
    dpo.add_argument("--out", required=True, type=Path, help="output folder for the captioner")
    dpo.add_argument("--seed", type=SEED, default=0)
    add_config_fields(dpo, "prefcap.rl.dpo:DPOConfig", "dpo", what="DPOConfig fields, e.g. beta=0.1")
    dpo.set_defaults(run=_dpo)


def add_commands(commands) -> None:
    for add in (add_reward_train, add_reward_eval, add_rl, add_dpo):
        add(commands)
