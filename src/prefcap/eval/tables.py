"""Plain-text tables of a demo run (`prefcap demo`, `prefcap report`) and of several seeds (`--seeds N`)."""


from __future__ import annotations

from prefcap.eval.report import format_optional, format_win
from prefcap.eval.systems import SYSTEM_FIELDS
from prefcap.reward.variants import UNCERTAINTY_CAPTIONS, UNCERTAINTY_ENSEMBLE


def summary_table(results: dict) -> str:
    """The plain-text table printed at the end of a demo."""
    lines: list[str] = []
    lines += _checks_and_baseline(results)
    lines += _preferences_and_reward(results)
    lines += _rl_and_rounds(results)
    lines += _systems(results)
    lines += _judges_and_rest(results)
    return "\n".join(lines)


def _checks_and_baseline(results: dict) -> list[str]:
    """The simulated annotators' checks, the offline CLAP and the baseline."""
    report = results["annotators"]
    lines = ["simulated annotators (target domain)", f"{'check':<40}{'train panel':>12}{'eval panel':>12}"]
    for fault, rates in report["reference_win_rate"].items():
        lines.append(f"{'reference beats ' + fault + ' (win rate)':<40}{rates['train']:>12.3f}{rates['eval']:>12.3f}")
    agreement = report["within_panel_agreement"]
    lines.append(f"{'agreement within panel (machine pairs)':<40}{agreement['train']:>12.3f}{agreement['eval']:>12.3f}")
    lines.append(f"{'agreement between panels (majority)':<40}{report['between_panel_agreement']:>12.3f}")
    encoder = results["encoder"]
    recall = encoder["text_to_audio"]
    lines.append(f"offline CLAP on {encoder['clips']} target test clips: zero-shot event mAP "
                 f"{encoder['zero_shot_event_map']['map']:.3f}, text-to-audio R@1 {recall['r@1']:.3f}, "
                 f"R@10 {recall['r@10']:.3f}")
    baseline = results["baseline"]
    for domain in ("source", "target"):
        scores, verdict = baseline[domain]["metrics"], baseline[domain]["reference_vs_baseline"]
        lines.append(f"baseline on {domain} test ({baseline[domain]['clips']} clips): CIDEr-D {scores['cider_d']:.3f}, "
                     f"SBERT {scores['sbert_sim']:.3f}; references preferred in "
                     f"{verdict['train']['reference_win_rate']:.1%} (train panel) / "
                     f"{verdict['eval']['reference_win_rate']:.1%} (eval panel) of non-tie clips")
    health = baseline["health"]
    lines.append(f"baseline health on source test: {health['distinct_captions']:.0%} distinct captions, CIDEr-D "
                 f"{health['cider_d']:.3f}" + ("" if health["within_band"] else
                                               f" -- OUTSIDE the band {health['band']}: the baseline collapsed"))
    agreement = baseline["annotator_agreement_on_baseline_samples"]
    lines.append(f"annotator agreement on {agreement['pairs']} pairs of baseline samples: "
                 f"train {agreement['train']:.3f}, eval {agreement['eval']:.3f}")
    return lines


def _preferences_and_reward(results: dict) -> list[str]:
    """The preference data and the reward model (its variants and diagnostics)."""
    lines = []
    prefs = results["preferences"]
    lines.append(f"preference data: {prefs['pairs_added']} pairs of baseline captions over {prefs['clips']} target "
                 f"clips, {prefs['judgments']} simulated judgments ({prefs['overlap']} per pair); Fleiss' kappa "
                 f"{prefs['fleiss_kappa']:.3f}")
    rm = results["rm"]
    sampled = rm["sampled_pairs"]
    lines.append(f"reward model RL uses, on {rm['heldout_pairs']} held-out pairs of unseen clips: accuracy "
                 f"{rm['heldout_accuracy']:.3f} (noise-free training panel "
                 f"{format_optional(rm['judge_ceiling'], '.3f')}, one annotator vs the others "
                 f"{rm['single_annotator_agreement']:.3f}), close pairs "
                 f"{format_optional(rm['close_pair_accuracy'], '.3f')}, ECE {rm['ece']:.3f}; trained on "
                 f"{rm['train_pairs']} pairs")
    lines.append(f"  on the {sampled['heldout_pairs']} held-out pairs of the baseline's own captions: accuracy "
                 f"{format_optional(sampled['heldout_accuracy'], '.3f')} (noise-free training panel "
                 f"{format_optional(sampled['judge_ceiling'], '.3f')})")
    lines.append("  variants (all / own captions): " + ", ".join(
        f"{name} {v['accuracy']:.3f} / {format_optional(v['sampled_pairs_accuracy'], '.3f')}"
        for name, v in rm["variant_diagnostics"].items()))
    for name, kinds in rm["adversarial"].items():
        lines.append(f"  adversarial suite, {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in kinds.items()))
    if rm["learning_curve"]:
        curve = " ".join(f"{c['strategy'][0]}{c['pairs']}={c['accuracy']:.3f}" for c in rm["learning_curve"])
        lines.append(f"  learning curve (r: random, u: uncertain): {curve}")
    if rm["ensemble_uncertainty"]:
        spreads = ", ".join(f"{name} {u['relative']:.4f}" for name, u in rm["ensemble_uncertainty"].items()
                            if u["clips"])
        lines.append(f"  {UNCERTAINTY_ENSEMBLE}, group-relative spread over {UNCERTAINTY_CAPTIONS} references per "
                     f"clip: {spreads}")
    return lines


def _rl_and_rounds(results: dict) -> list[str]:
    """RL over all rounds, and each round's figures."""
    lines = []
    rl = results["rl"]
    first, last = rl["heldout"][0], rl["heldout"][-1]
    lines.append(f"RL ({rl['algorithm']}, {rl['steps']} steps over {len(results['rounds'])} round(s), "
                 f"{rl['captions_per_second']:.0f} captions/s): held-out reward-model score {first['rm']:.3f} -> "
                 f"{last['rm']:.3f}")
    for r in results["rounds"]:
        lines.append(f"  round {r['round']}: {r['pairs']} pairs ({r['contrast_pairs']} contrast) of "
                     f"{', '.join(r['systems'])} captions; reward model on the round's new held-out pairs "
                     f"{format_optional(r['new_heldout_accuracy_before'], '.3f')} -> "
                     f"{format_optional(r['new_heldout_accuracy_after'], '.3f')} ({r['new_heldout_pairs']} pairs); "
                     f"RL {r['rl_steps']} steps (kept step {r['rl_kept_step']}"
                     f"{'; stopped: ' + '; '.join(r['rl_collapse']) if r['rl_collapse'] else ''}); val reward "
                     f"{r['val_reward']:.3f}{' (chosen)' if r['selected'] else ''}; eval panel vs baseline "
                     f"{format_win(r['eval_vs_baseline'])}")
    return lines


def _systems(results: dict) -> list[str]:
    """Every system's scores and the pairwise verdicts."""
    lines = []
    widths = {name: len(name) + 2 for name in SYSTEM_FIELDS}
    lines.append(f"{'system':<12}" + "".join(f"{name:>{widths[name]}}" for name in SYSTEM_FIELDS))
    for name, scores in results["systems"].items():
        lines.append(f"{name:<12}" + "".join(f"{'n/a' if scores[k] is None else format(scores[k], '.3f'):>{widths[k]}}"
                                             for k in SYSTEM_FIELDS))
    for row in results["pairwise"]:
        rate = "n/a" if row["win_rate"] is None else f"{row['win_rate']:.1%}"
        lines.append(f"{row['a']} vs {row['b']} ({row['judge']} panel, {row['clips']} clips): {row['wins']} wins, "
                     f"{row['losses']} losses, {row['ties']} ties; win rate {rate} "
                     f"[{row['ci_low']:.1%}, {row['ci_high']:.1%}], sign test p = {row['sign_test_p']:.2g}")
    return lines


def _judges_and_rest(results: dict) -> list[str]:
    """The panels against each other, exploit rates, the decomposition, sounds named, times."""
    lines = []
    judges = results["judges"]
    machine = judges["machine_like"]
    lines.append(f"training panel vs evaluation judge, noise free, on {judges['system_outputs']['pairs']} pairs of "
                 f"system captions: same verdict {format_optional(judges['agreement'], '.1%')}, margin correlation "
                 f"{format_optional(judges['margin_correlation'], '.3f')} (machine-like pairs: "
                 f"{format_optional(machine['agreement'], '.1%')}, "
                 f"{format_optional(machine['margin_correlation'], '.3f')})")
    flags = next(iter(judges["exploit_rates"].values()))
    lines.append(f"{'captions with':<12}" + "".join(f"{name:>18}" for name in flags))
    for name, rates in judges["exploit_rates"].items():
        lines.append(f"{name:<12}" + "".join(f"{rate:>18.1%}" for rate in rates.values()))
    if results["decomposition"]:
        lines.append("diagnostic systems (not the method), eval panel win rate vs baseline / supervised / rlhf:")
        for name, row in results["decomposition"]["systems"].items():
            lines.append(f"  {name:<14}" + " / ".join(format_win(row[f"vs_{other}"])
                                                     for other in ("baseline", "supervised", "rlhf"))
                         + f"; CIDEr-D {row['cider_d']:.3f}; sounds named rare "
                         f"{format_optional(row['events_named']['rare'], '.1%')}")
    named = results["events_named"]
    lines.append(f"sounds named (rare: {', '.join(named['rare_classes'])} / common): " + ", ".join(
        f"{name} {format_optional(s['rare'], '.1%')} / {format_optional(s['common'], '.1%')}"
        for name, s in named["systems"].items()))
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in results["timings_s"].items())
    cached = (f"; {len(results['cached_stages'])} stages already built, this run {results['this_run_s']:.1f}s"
              if results.get("cached_stages") else "")
    lines.append(f"timings: {timings}{cached}; peak RSS {results['resources']['peak_rss_mb']:.0f} MB")
    return lines


def seeds_table(summary: dict) -> str:
    """The plain-text mean ± sd table printed after `prefcap demo --seeds N`."""

    def show(spread: dict | None, percent: bool = False) -> str:
        if spread is None:
            return "n/a"
        if percent:
            return f"{100 * spread['mean']:.1f} ± {100 * spread['sd']:.1f} %"
        return f"{spread['mean']:.3f} ± {spread['sd']:.3f}"

    seeds = summary["seeds"]
    lines = [f"mean ± sd over seeds {', '.join(map(str, seeds))}",
             f"reward model held-out accuracy {show(summary['rm_heldout_accuracy'])}"]
    fields = ("cider_d", "sbert_sim", "rm_score", "clap_score", "mean_words")
    lines.append(f"{'system':<12}" + "".join(f"{name:>18}" for name in fields))
    for name, scores in summary["systems"].items():
        lines.append(f"{name:<12}" + "".join(f"{show(scores[k]):>18}" for k in fields))
    lines.append("sounds named, rare / common classes: " + ", ".join(
        f"{name} {show(kinds['rare'], True)} / {show(kinds['common'], True)}"
        for name, kinds in summary["events_named"].items()))
    for row in summary["pairwise"]:
        rates = row["win_rate"]["values"] if row["win_rate"] else [None] * len(seeds)
        per_seed = ", ".join(f"seed {seed}: {'n/a' if rate is None else format(rate, '.1%')} [{low:.1%}, {high:.1%}]"
                             for seed, rate, low, high in zip(seeds, rates, row["ci_low"], row["ci_high"], strict=True))
        lines.append(f"{row['a']} vs {row['b']} ({row['judge']} panel): win rate {show(row['win_rate'], True)} "
                     f"({per_seed})")
    return "\n".join(lines)


