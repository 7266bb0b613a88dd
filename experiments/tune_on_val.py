"""Choose the demo's alignment settings on the target `val` clips, never on `test`, never with the evaluation judge.

Each variant is the demo's RL (or DPO) config for the run's size and seed with some fields overridden; it is trained
from the run's baseline and reward model (or judgments), then its greedy captions of the `val` clips are judged
against the baseline's by the *training* panel (one outcome per clip, its majority) — the panel that labelled the
preference data, standing in for the people a real user would ask. Also reported: the reward model's mean score and
the guards' statistics on the same captions. Each variant is cached in OUT/<variant>/ like a demo stage.

    python experiments/tune_on_val.py runs/demo --out runs/tune --rl "beta=0.05" "beta=0.1 clap_coef=0"
    python experiments/tune_on_val.py runs/demo --out runs/tune --dpo "learning_rate=1e-5" "beta=0.3"

Run `prefcap demo --until reward` first (or a whole demo): the variants need the baseline and reward model.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, replace
from pathlib import Path

from prefcap.captioners.base import Decoding
from prefcap.captioners.infer import caption_clips
from prefcap.captioners.load import load_captioner
from prefcap.config import apply_overrides
from prefcap.data.records import read_clips
from prefcap.data.synth import panels
from prefcap.demo import DPO, RL, RL_EVAL_CLIPS
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.eval.pairwise import clip_outcomes, summarise
from prefcap.eval.systems import system_scores
from prefcap.prefs.store import Store
from prefcap.reward.model import RewardModel
from prefcap.rl.recipes import run_dpo, run_rl
from prefcap.rl.trainer import LOSS_VERSION
from prefcap.stages import run_stage


def _slug(kind: str, overrides: list[str]) -> str:
    return kind + ("-" + re.sub(r"[^\w.=-]+", "_", "-".join(overrides)) if overrides else "-demo")


def _val_report(run: Path, captioner: Path, baseline: dict[str, str], seed: int) -> dict:
    clips = [c for c in read_clips(run / "data" / "target" / "clips.jsonl") if c.split == "val"]
    written, _ = caption_clips(load_captioner(captioner, device="cpu"), clips, "variant",
                               decoding=Decoding(mode="greedy"), progress=False)
    captions = {c.clip_id: c.text for c in written}
    judge = panels.build("train", seed).majority
    versus = summarise(clip_outcomes(clips, captions, baseline, judge, seed), a="variant", b="baseline",
                       judge_name="train")
    encoder = ClapEncoder.from_pretrained(run / "encoder", device="cpu")
    reward = RewardModel.load(run / "reward", encoder_id=encoder.id)
    audio = EmbeddingCache(run / "cache", encoder).embed_clips(clips, progress=False)
    scores = system_scores(clips, captions, None, encoder, audio, reward)
    return {"val_clips": len(clips), "train_panel_vs_baseline": versus,
            **{k: scores[k] for k in ("rm_score", "clap_score", "mean_words", "distinct_2", "repetition_rate",
                                      "truncated_ending_rate")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a demo run folder (its baseline, reward model and judgments)")
    parser.add_argument("--out", type=Path, required=True, help="where the variants go")
    parser.add_argument("--size", default="demo", choices=sorted(RL))
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (its panels and configs)")
    parser.add_argument("--rl", nargs="*", default=[], metavar="OVERRIDES", help='RL variants, e.g. "beta=0.1"')
    parser.add_argument("--dpo", nargs="*", default=[], metavar="OVERRIDES", help="DPO variants")
    args = parser.parse_args()
    run, out = args.run, args.out
    clips = [c for c in read_clips(run / "data" / "target" / "clips.jsonl") if c.split == "val"]
    baseline_captions, _ = caption_clips(load_captioner(run / "captioner-baseline", device="cpu"), clips,
                                         "baseline", decoding=Decoding(mode="greedy"), progress=False)
    baseline = {c.clip_id: c.text for c in baseline_captions}
    rows = []
    for kind, variants in (("rl", args.rl), ("dpo", args.dpo)):
        for variant in variants:
            overrides = variant.split()
            base = (RL if kind == "rl" else DPO)[args.size]
            config = apply_overrides(replace(base, seed=args.seed), overrides)
            folder = out / _slug(kind, overrides)

            def build(tmp: Path, kind=kind, config=config) -> None:
                if kind == "rl":
                    encoder = ClapEncoder.from_pretrained(run / "encoder", device="cpu")
                    run_rl(run / "captioner-baseline", run / "reward", encoder, run / "data" / "target" /
                           "clips.jsonl", tmp, config, split="rl", eval_split="val",
                           eval_clips=RL_EVAL_CLIPS[args.size], cache_root=run / "cache", device="cpu")
                else:
                    store = Store(run / "prefs" / "prefs.sqlite", create=False)
                    run_dpo(run / "captioner-baseline", store, tmp / "captioner", config, device="cpu")
                    store.close()

            key = {"config": asdict(config), "loss": LOSS_VERSION, "listeners": panels.LISTENERS_VERSION}
            done = run_stage(folder, key, build, inputs=[run / "captioner-baseline", run / "reward",
                                                          run / "prefs" / "prefs.sqlite"])
            row = {"kind": kind, "overrides": variant, "seconds": done.seconds,
                   **_val_report(run, folder / "captioner", baseline, args.seed)}
            rows.append(row)
            versus = row["train_panel_vs_baseline"]
            print(f"{kind} [{variant}]: train panel on val vs baseline {versus['win_rate']:.1%} "
                  f"[{versus['ci_low']:.1%}, {versus['ci_high']:.1%}] ({versus['wins']}/{versus['losses']}/"
                  f"{versus['ties']}), rm {row['rm_score']:.3f}, words {row['mean_words']:.1f}, "
                  f"distinct-2 {row['distinct_2']:.3f}", flush=True)
            out.mkdir(parents=True, exist_ok=True)
            previous = json.loads((out / "table.json").read_text()) if (out / "table.json").is_file() else []
            kept = [r for r in previous if (r["kind"], r["overrides"]) != (kind, variant)]
            (out / "table.json").write_text(json.dumps(kept + [row], indent=2))


if __name__ == "__main__":
    main()
