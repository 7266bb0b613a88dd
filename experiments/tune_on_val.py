"""Choose the demo's settings on `val` splits, never on `test`, never with the evaluation judge.

Alignment (`--rl`, `--dpo`): each variant is the demo's RL (or DPO) config for the run's size and seed with some
fields overridden; it is trained from the run's baseline and reward model (or judgments), then its greedy captions
of the target `val` clips are judged against the baseline's by the *training* panel (one outcome per clip, its
majority) — the panel that labelled the preference data, standing in for the people a real user would ask. Also
reported: the reward model's mean score and the guards' statistics on the same captions.

The parts on their own domains (`--encoder`, `--baseline`): the offline CLAP trained on `general` with some fields
of its config overridden, scored by zero-shot event mAP and text-to-audio R@1 on the `general` val clips; the
baseline trained on `source`, scored by CIDEr-D and distinct captions on the `source` val clips.

Each variant is cached in OUT/<variant>/ like a demo stage.

    python experiments/tune_on_val.py runs/demo --out runs/tune --rl "beta=0.05" "beta=0.1 reward_terms.clap_coef=0"
    python experiments/tune_on_val.py runs/demo --out runs/tune --dpo "learning_rate=1e-5" "beta=0.3"
    python experiments/tune_on_val.py runs/demo --out runs/tune --encoder "event_loss_weight=0"
    python experiments/tune_on_val.py runs/demo --out runs/tune --baseline "word_dropout=0"

Run `prefcap demo --until reward` first (or a whole demo): the variants need the baseline and reward model.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
from dataclasses import asdict, replace
from pathlib import Path

from prefcap.captioners.sft import new_captioner, train_captioner
from prefcap.config import apply_overrides
from prefcap.data.records import read_captions, read_clips, references_by_clip
from prefcap.demo import BASELINE, DPO, ENCODER_CONFIGS, RL, RL_EVAL_CLIPS
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.encoders.train import train_encoder
from prefcap.encoders.zero_shot import text_to_audio_recall, zero_shot_event_map
from prefcap.eval.metrics import compute_metrics
from prefcap.eval.systems import caption_systems, evaluate_systems
from prefcap.prefs.store import Store
from prefcap.reward.model import RewardModel
from prefcap.rl.jobs import run_dpo, run_rl
from prefcap.rl.trainer import LOSS_VERSION
from prefcap.stages import run_stage
from prefcap.synth import panels


def _slug(kind: str, overrides: list[str]) -> str:
    return kind + ("-" + re.sub(r"[^\w.=-]+", "_", "-".join(overrides)) if overrides else "-demo")


def _val_report(run: Path, captioner: Path, baseline: dict[str, str], seed: int) -> dict:
    clips = [c for c in read_clips(run / "data" / "target" / "clips.jsonl") if c.split == "val"]
    systems = {**caption_systems({"variant": captioner}, clips, device="cpu", progress=False), "baseline": baseline}
    encoder = ClapEncoder.from_pretrained(run / "encoder", device="cpu")
    reward = RewardModel.load(run / "reward", encoder=encoder)
    audio = EmbeddingCache(run / "cache", encoder).embed_clips(clips, progress=False)
    # the same path as `prefcap eval` and the demo's evaluation, judged by the training panel (never the eval one)
    judges = {"train": panels.build("train", seed).majority}
    summary = evaluate_systems(clips, systems, [("variant", "baseline")], judges, encoder=encoder, audio=audio,
                               reward=reward, seed=seed)
    versus, scores = summary["pairwise"][0], summary["systems"]["variant"]
    return {"val_clips": len(clips), "train_panel_vs_baseline": versus,
            **{k: scores[k] for k in ("rm_score", "clap_score", "mean_words", "distinct_2", "repetition_rate",
                                      "truncated_ending_rate")}}


def _encoder_report(run: Path, folder: Path) -> dict:
    clips = [c for c in read_clips(run / "data" / "general" / "clips.jsonl") if c.split == "val"]
    references = {c.clip_id: c.text for c in reversed(read_captions(run / "data" / "general" / "captions.jsonl"))}
    encoder = ClapEncoder.from_pretrained(folder, device="cpu")
    audio = EmbeddingCache(folder / "cache", encoder).embed_clips(clips, progress=False)
    recall = text_to_audio_recall(audio, encoder.embed_text([references[c.id] for c in clips]))
    return {"val_clips": len(clips), "zero_shot_event_map": zero_shot_event_map(encoder, clips, audio)["map"],
            "r@1": recall["r@1"], "r@10": recall["r@10"]}


def _baseline_report(run: Path, folder: Path) -> dict:
    source = run / "data" / "source"
    clips = [c for c in read_clips(source / "clips.jsonl") if c.split == "val"]
    references = references_by_clip(read_captions(source / "captions.jsonl"), source=None)
    captions = caption_systems({"variant": folder}, clips, device="cpu", progress=False)["variant"]
    scores = compute_metrics(captions, {c.id: references[c.id] for c in clips}, spice=False)
    return {"val_clips": len(clips), "cider_d": scores["cider_d"], "distinct_captions": len(set(captions.values())),
            "mean_words": scores["mean_words"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a demo run folder (its baseline, reward model and judgments)")
    parser.add_argument("--out", type=Path, required=True, help="where the variants go")
    parser.add_argument("--size", default="demo", choices=sorted(RL))
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (its panels and configs)")
    parser.add_argument("--rl", nargs="*", default=[], metavar="OVERRIDES", help='RL variants, e.g. "beta=0.1"')
    parser.add_argument("--dpo", nargs="*", default=[], metavar="OVERRIDES", help="DPO variants")
    parser.add_argument("--encoder", nargs="*", default=[], metavar="OVERRIDES", help="offline CLAP variants")
    parser.add_argument("--baseline", nargs="*", default=[], metavar="OVERRIDES", help="baseline SFT variants")
    args = parser.parse_args()
    run, out = args.run, args.out

    @functools.cache
    def baseline() -> dict[str, str]:
        """The baseline's greedy captions of the target val clips: what each alignment variant is judged against."""
        clips = [c for c in read_clips(run / "data" / "target" / "clips.jsonl") if c.split == "val"]
        return caption_systems({"baseline": run / "captioner-baseline"}, clips, device="cpu",
                               progress=False)["baseline"]
    rows = []
    variants = [("rl", v) for v in args.rl] + [("dpo", v) for v in args.dpo] + [
        ("encoder", v) for v in args.encoder] + [("baseline", v) for v in args.baseline]
    for kind, variant in variants:
        overrides = variant.split()
        config = apply_overrides(replace(_base_config(kind, args.size), seed=args.seed), overrides)
        folder = out / _slug(kind, overrides)
        aligned = kind in ("rl", "dpo")  # what the listeners and the RL loss feed
        key = {"config": asdict(config), **({"loss": LOSS_VERSION, "listeners": panels.LISTENERS_VERSION}
                                            if aligned else {"kind": kind})}
        done = run_stage(folder, key,
                         lambda tmp, kind=kind, config=config: _build(kind, run, tmp, config, args.size, args.seed),
                         inputs=_inputs(kind, run))
        if kind in ("rl", "dpo"):
            report = _val_report(run, folder / "captioner", baseline(), args.seed)
            versus = report["train_panel_vs_baseline"]
            rate = "n/a (every clip a tie)" if versus["win_rate"] is None else f"{versus['win_rate']:.1%}"
            summary = (f"train panel on val vs baseline {rate} [{versus['ci_low']:.1%}, "
                       f"{versus['ci_high']:.1%}] ({versus['wins']}/{versus['losses']}/{versus['ties']}), rm "
                       f"{report['rm_score']:.3f}, words {report['mean_words']:.1f}, distinct-2 "
                       f"{report['distinct_2']:.3f}")
        elif kind == "encoder":
            report = _encoder_report(run, folder)
            summary = f"general val: event mAP {report['zero_shot_event_map']:.3f}, R@1 {report['r@1']:.3f}"
        else:
            report = _baseline_report(run, folder)
            summary = (f"source val: CIDEr-D {report['cider_d']:.3f}, {report['distinct_captions']} distinct "
                       f"captions of {report['val_clips']}")
        rows.append({"kind": kind, "overrides": variant, "seconds": done.seconds, **report})
        print(f"{kind} [{variant}]: {summary}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        previous = json.loads((out / "table.json").read_text()) if (out / "table.json").is_file() else []
        kept = [r for r in previous if (r["kind"], r["overrides"]) != (kind, variant)]
        (out / "table.json").write_text(json.dumps(kept + [rows[-1]], indent=2))


def _base_config(kind: str, size: str):
    return {"rl": RL, "dpo": DPO, "encoder": ENCODER_CONFIGS, "baseline": {k: v[1] for k, v in BASELINE.items()}}[
        kind][size]


def _inputs(kind: str, run: Path) -> list[Path]:
    if kind == "encoder":
        return [run / "data" / "general" / "clips.jsonl"]
    if kind == "baseline":
        return [run / "data" / "source" / "clips.jsonl"]
    return [run / "captioner-baseline", run / "reward", run / "prefs" / "prefs.sqlite"]


def _build(kind: str, run: Path, tmp: Path, config, size: str, seed: int) -> None:
    """Train one variant into `tmp` the way the demo's stage does."""
    if kind == "rl":
        encoder = ClapEncoder.from_pretrained(run / "encoder", device="cpu")
        run_rl(run / "captioner-baseline", run / "reward", encoder, run / "data" / "target" / "clips.jsonl", tmp,
               config, split="rl", eval_split="val", eval_clips=RL_EVAL_CLIPS[size], cache_root=run / "cache",
               device="cpu")
    elif kind == "dpo":
        store = Store(run / "prefs" / "prefs.sqlite", create=False)
        run_dpo(run / "captioner-baseline", store, tmp / "captioner", config, device="cpu")
        store.close()
    elif kind == "encoder":
        general = run / "data" / "general"
        clips = [c for c in read_clips(general / "clips.jsonl") if c.split == "train"]
        train_encoder(clips, read_captions(general / "captions.jsonl"), tmp, config)
    else:
        source = run / "data" / "source"
        clips, captions = read_clips(source / "clips.jsonl"), read_captions(source / "captions.jsonl")
        train = [c for c in clips if c.split == "train"]
        train_ids = {c.id for c in train}
        captioner = new_captioner((c.text for c in captions if c.clip_id in train_ids), seed=seed,
                                  **BASELINE[size][0])
        train_captioner(captioner, train, captions, [c for c in clips if c.split == "val"], captions, tmp, config)


if __name__ == "__main__":
    main()
