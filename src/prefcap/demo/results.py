"""results.json: the blocks the demo assembles from its stages' outputs."""


from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefcap.data.records import read_captions
from prefcap.demo.rounds import round_dir
from prefcap.eval.report import write_report
from prefcap.io import atomic_write
from prefcap.provenance import peak_rss_mb, provenance

# A baseline that collapsed (a handful of distinct captions) starves everything after it: its source-test
# figures must stay within this band (measured on seeds 0-3: distinct 0.59-0.66, CIDEr-D 0.89-1.08; docs/results.md)
BASELINE_BAND = {"distinct_captions": 0.5, "cider_d": 0.8}



def baseline_health(out: Path) -> dict:
    """The baseline's share of distinct greedy captions and its CIDEr-D on the source test clips, against
    BASELINE_BAND: the summary says so when a seed's baseline falls outside it."""
    captions = [c.text for c in read_captions(out / "baseline_eval" / "captions-source-test.jsonl")]
    source = json.loads((out / "baseline_eval" / "metrics.json").read_text())["source"]
    health = {"distinct_captions": len(set(captions)) / len(captions), "cider_d": source["metrics"]["cider_d"]}
    return {**health, "band": BASELINE_BAND,
            "within_band": all(health[name] >= floor for name, floor in BASELINE_BAND.items())}


def rounds_summary(out: Path, rounds: int, evaluation: list[dict]) -> list[dict]:
    """results.json's `rounds`: per round, the judgments it spent, the reward model's accuracy on the round's new
    pairs of held-out clips before and after its update, RL's steps, the `val` reward that chose the final
    policy, and — reported only — the evaluation panel's verdict on that round's policy against the baseline."""
    selection = json.loads((out / "rlhf" / "selection.json").read_text())
    first = json.loads((out / "reward" / "metrics.json").read_text())["heldout"]
    summary = []
    for r, verdict in zip(range(1, rounds + 1), evaluation, strict=True):
        here = round_dir(out, r)
        prefs = json.loads((here / "prefs" / "summary.json").read_text())
        if r == 1:
            update = {"new_heldout_pairs": first["labelled_pairs"], "new_heldout_accuracy_before": None,
                      "new_heldout_accuracy_after": first["accuracy"]}
        else:
            update = json.loads((here / "reward" / "round.json").read_text())
        rl = json.loads((here / "rl" / "rl_metrics.json").read_text())
        chosen_by = selection["scores"][str((here / "rl").relative_to(out))]
        summary.append({
            "round": r, "pairs": prefs["pairs_added"], "contrast_pairs": prefs["contrast_pairs"],
            "judgments": prefs["judgments"], "systems": prefs.get("systems", ["baseline"]),
            **{key: update[key] for key in ("new_heldout_pairs", "new_heldout_accuracy_before",
                                            "new_heldout_accuracy_after")},
            "rl_steps": rl["steps"], "rl_kept_step": rl["kept_step"], "rl_collapse": rl["collapse"],
            "val_reward": chosen_by["reward"], "selected": selection["selected"] == str((here / "rl").relative_to(out)),
            "eval_vs_baseline": {key: verdict[key] for key in ("win_rate", "ci_low", "ci_high", "wins", "losses",
                                                               "ties", "clips")}})
    return summary


def reward_summary(metrics: dict) -> dict:
    """The `rm` block of results.json (DESIGN.md's names) for the reward model RL uses, with its figures on the
    baseline's own caption pairs, each variant's, the adversarial suite, and the diagnostics when they ran."""
    heldout, sampled = metrics["heldout"], metrics["heldout_sampled"]
    return {
        "heldout_accuracy": heldout["accuracy"], "heldout_pairs": heldout["labelled_pairs"],
        "train_pairs": metrics["train_pairs"], "judge_ceiling": metrics["judge_ceiling"],
        "single_annotator_agreement": heldout["single_annotator_agreement"],
        "close_pair_accuracy": heldout["close_pair_accuracy"], "nll": heldout["nll"], "ece": heldout["ece"],
        "per_category": heldout["per_category"],
        "sampled_pairs": {"heldout_accuracy": sampled["accuracy"], "heldout_pairs": sampled["labelled_pairs"],
                          "judge_ceiling": metrics["judge_ceiling_sampled"],
                          "close_pair_accuracy": sampled["close_pair_accuracy"], "ece": sampled["ece"]},
        "variants": {name: v["accuracy"] for name, v in metrics["variants"].items()},
        "variant_diagnostics": {
            name: {"accuracy": v["accuracy"], "ece": v["ece"], "close_pair_accuracy": v["close_pair_accuracy"],
                   "per_category": v["per_category"],
                   "sampled_pairs_accuracy": metrics["variants_sampled"][name]["accuracy"]}
            for name, v in metrics["variants"].items()},
        "adversarial": metrics["adversarial"],
        "learning_curve": metrics.get("learning_curve", []),
        "ensemble_uncertainty": metrics["ensemble_uncertainty"],
    }


def judges_summary(evaluation: dict, annotators: dict) -> dict:
    """The `judges` block of results.json: how alike the training panel and the evaluation judge judge (noise
    free) on the systems' captions — the top-level figures — and on machine-like pairs, with the systems'
    exploit rates as the evaluation judge reads them."""
    outputs = evaluation["system_outputs"]
    return {"agreement": outputs["agreement"], "margin_correlation": outputs["margin_correlation"],
            "system_outputs": outputs, "machine_like": annotators["independence"],
            "exploit_rates": evaluation["exploit_rates"]}


def rl_summary(rounds: list[dict]) -> dict:
    """The `rl` block of results.json: what ran over all rounds, how fast, and the held-out reward along the way
    (steps counted over the rounds; each round's curve is scored by that round's reward model)."""
    heldout, offset = [], 0
    for r, metrics in enumerate(rounds, start=1):
        heldout += [{"round": r, **{k: row[k] for k in ("reward", "rm", "clap", "mean_words", "distinct_2")},
                     "step": row["step"] + offset} for row in metrics["heldout"]]
        offset += metrics["steps"]
    seconds = sum(m["seconds"] for m in rounds)
    return {"algorithm": rounds[0]["config"]["algorithm"], "steps": offset, "seconds": seconds,
            "captions_per_second": sum(m["captions_per_second"] * m["seconds"] for m in rounds) / seconds,
            "time_share": rounds[-1]["time_share"], "heldout": heldout, "config": rounds[0]["config"]}




def write_results(out: Path, config: Any, sizes: dict[str, int], policies: list[Path], timings: dict[str, float],
                  cached: list[str], peaks: list[float], this_run: float) -> dict:
    """results.json from every stage's output (and the report beside it); returns what it wrote. `config` is the
    run's DemoConfig; `peaks` each stage's peak memory as built."""
    evaluation = json.loads((out / "eval" / "metrics.json").read_text())
    results = {
        "schema": 1,
        "seed": config.seed,
        "provenance": provenance({**asdict(config), **sizes}),
        "annotators": json.loads((out / "annotators" / "report.json").read_text()),
        "encoder": json.loads((out / "encoder_eval" / "metrics.json").read_text()),
        "baseline": {**json.loads((out / "baseline_eval" / "metrics.json").read_text()),
                     "health": baseline_health(out)},
        "preferences": json.loads((out / "prefs" / "summary.json").read_text()),
        "rm": reward_summary(json.loads((out / "reward" / "demo_metrics.json").read_text())),
        "rl": rl_summary([json.loads((folder / "rl_metrics.json").read_text()) for folder in policies]),
        "rounds": rounds_summary(out, config.rounds, evaluation["rounds"]),
        "dpo": json.loads((out / "dpo" / "captioner" / "dpo_metrics.json").read_text()),
        **{key: evaluation[key] for key in ("systems", "pairwise", "ranking", "events_named")},
        "judges": judges_summary(evaluation["judges"], json.loads((out / "annotators" / "report.json").read_text())),
        "decomposition": (json.loads((out / "decomposition" / "eval" / "metrics.json").read_text())
                          if config.decomposition else None),
        "resources": {"peak_rss_mb": max(peak_rss_mb(), *peaks)},  # skipped stages: the peak when built
        "timings_s": timings,
        "cached_stages": cached,
        "this_run_s": this_run,
    }
    with atomic_write(out / "results.json") as handle:
        json.dump(results, handle, indent=2)
    write_report(out)
    return results
