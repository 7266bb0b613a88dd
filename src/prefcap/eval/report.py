"""`prefcap report`: one static `report.html` for a demo run folder — opens from disk, no server.

Plots are matplotlib PNGs embedded in the page (base64), so the file can be mailed around; the examples' audio
players point at the run's audio files by relative path, so they play while the page sits in the run folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from prefcap.data.records import first_caption_by_clip, read_captions, read_clips  # noqa: E402
from prefcap.errors import PrefcapError  # noqa: E402
from prefcap.eval.systems import SYSTEM_FIELDS  # noqa: E402
from prefcap.io import atomic_write  # noqa: E402

EXAMPLES = 12


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _embed(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode() if path.is_file() else ""


def learning_curve_plot(curve: list[dict]) -> str:
    figure, axis = plt.subplots(figsize=(5, 3.4))
    for strategy in sorted({point["strategy"] for point in curve}):
        points = [p for p in curve if p["strategy"] == strategy]
        axis.plot([p["pairs"] for p in points], [p["accuracy"] for p in points], "o-", label=strategy)
    budgets = sorted({p["pairs"] for p in curve})
    axis.set_xticks(budgets, [str(b) for b in budgets], rotation=45)
    axis.set_xlabel("training pairs")
    axis.set_ylabel("held-out pairwise accuracy")
    axis.set_title("reward model learning curve")
    axis.legend()
    return _png(figure)


def win_rate_plot(pairwise: list[dict]) -> str:
    rows = [r for r in pairwise if r["win_rate"] is not None]
    figure, axis = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1))
    labels = [f"{r['a']} vs {r['b']} ({r['judge']})" for r in rows]
    rates = [r["win_rate"] for r in rows]
    errors = [[r["win_rate"] - r["ci_low"] for r in rows], [r["ci_high"] - r["win_rate"] for r in rows]]
    axis.barh(labels, rates, xerr=errors, color=["#4c72b0" if r["judge"] == "eval" else "#aaaaaa" for r in rows])
    axis.axvline(0.5, color="black", linewidth=0.8)
    axis.set_xlim(0, 1)
    axis.invert_yaxis()
    axis.set_xlabel("win rate over non-tie clips (Wilson 95 % interval)")
    return _png(figure)


def format_optional(value: float | None, spec: str) -> str:
    """A figure that may be missing (a tiny run can leave nothing to compare): "n/a" for None."""
    return "n/a" if value is None else format(value, spec)


def _table(header: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return html.escape("n/a" if value is None else str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def format_win(row: dict) -> str:
    """"61.2 % [55.0 %, 67.1 %]" from a pairwise record (n/a without a decided clip)."""
    rate = "n/a" if row["win_rate"] is None else f"{row['win_rate']:.1%}"
    return f"{rate} [{row['ci_low']:.1%}, {row['ci_high']:.1%}]"


def write_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a finished demo run (its `results.json` and stage folders); returns its path."""
    run = Path(run)
    if not (run / "results.json").is_file():
        raise PrefcapError(f"{run}: no results.json; run `prefcap demo --out {run}` first")
    try:
        results = json.loads((run / "results.json").read_text())
        missing = [key for key in ("systems", "pairwise", "rm", "rounds", "events_named") if key not in results]
    except (ValueError, TypeError) as error:
        raise PrefcapError(f"{run / 'results.json'}: not a demo's results (schema in DESIGN.md): {error!r}") from None
    if missing or not isinstance(results, dict):
        raise PrefcapError(f"{run / 'results.json'}: not a demo's results (schema in DESIGN.md): it has no "
                           f"{', '.join(missing) or 'sections'}")
    out = Path(out) if out else run / "report.html"
    sections = (_header(run, results), _pairwise_section(results), _judges_section(results),
                _rounds_section(results), _decomposition_section(results), _reward_section(run, results["rm"]),
                _rl_section(run, results["rl"]), _examples_section(run, out, results["systems"]))
    with atomic_write(out) as handle:
        handle.write("\n".join(sections) + "\n</body></html>\n")
    return out


def _header(run: Path, results: dict) -> str:
    provenance = results["provenance"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prefcap report — {html.escape(str(run))}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.6em 0 1.4em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }} img {{ max-width: 100%; }} .small {{ color: #666; font-size: 13px; }}
</style></head><body>
<h1>prefcap — aligning audio captions with preferences</h1>
<p class="small">run <code>{html.escape(str(run))}</code>, seed {results['seed']},
git {html.escape(str(provenance.get('git_sha')))}, {html.escape(str(provenance.get('date')))},
{html.escape(str(provenance.get('machine')))};
total {results['timings_s']['total']:.0f} s, peak memory {results['resources']['peak_rss_mb']:.0f} MB</p>"""


def _pairwise_section(results: dict) -> str:
    pair_rows = [[r["a"], r["b"], r["judge"], r["clips"], r["wins"], r["losses"], r["ties"],
                  "n/a" if r["win_rate"] is None else f"{r['win_rate']:.1%}",
                  f"[{r['ci_low']:.1%}, {r['ci_high']:.1%}]", f"{r['sign_test_p']:.2g}"] for r in results["pairwise"]]
    ranking_rows = [[r["system"], f"{r['bt_score']:+.2f}", f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"]
                    for r in results.get("ranking", [])]
    metric_rows = [[name, *(scores.get(k) for k in SYSTEM_FIELDS)] for name, scores in results["systems"].items()]
    return f"""<h2>Blind pairwise preference (one outcome per test clip)</h2>
<p>The evaluation judge (blue) is written apart from the panel that labelled the training pairs (grey): its own
reading (spaCy), vocabulary and weights.</p>
<img alt="win rates" src="data:image/png;base64,{win_rate_plot(results["pairwise"])}">
{_table(["a", "b", "judge", "clips", "wins", "losses", "ties", "win rate", "Wilson 95 %", "sign test p"], pair_rows)}
<p>Bradley–Terry ranking by the evaluation panel (log-strength, mean 0; 95 % interval from resampling clips):</p>
{_table(["system", "strength", "95 % interval"], ranking_rows)}
<h2>Metrics on the held-out target test clips</h2>
{_table(["system", *SYSTEM_FIELDS], metric_rows)}"""


def _judges_section(results: dict) -> str:
    judges, named = results["judges"], results["events_named"]
    exploit_rows = [[name, *(f"{rate:.1%}" for rate in rates.values())]
                    for name, rates in judges["exploit_rates"].items()]
    exploit_head = list(next(iter(judges["exploit_rates"].values())))
    disagreement_rows = [[d["clip_id"], d["a"], d["b"], d["train_margin"], d["eval_margin"]]
                         for d in judges["system_outputs"].get("disagreements", [])]
    named_rows = [[name, format_optional(shares["rare"], ".1%"), format_optional(shares["common"], ".1%")]
                  for name, shares in named["systems"].items()]
    return f"""<h2>The judges</h2>
<p>Training panel and evaluation judge without noise, on {judges['system_outputs']['pairs']} pairs of the systems'
captions: the same verdict on {format_optional(judges['agreement'], '.1%')}, margin correlation
{format_optional(judges['margin_correlation'], '.3f')} (on {judges['machine_like']['pairs']} machine-like pairs:
{format_optional(judges['machine_like']['agreement'], '.1%')},
{format_optional(judges['machine_like']['margin_correlation'], '.3f')}). Where they part most (margins from a's
side):</p>
{_table(["clip", "a", "b", "training panel", "evaluation judge"], disagreement_rows)}
<p>Share of each system's captions, as the evaluation judge reads them:</p>
{_table(["system", *exploit_head], exploit_rows)}
<p>Share of each clip's sounds the captions name (evaluation judge's reading, pooled over the test clips), for the
classes that fewer than {named['rare_share']:.0%} of the baseline's training clips hold
({html.escape(', '.join(named['rare_classes']))}) and for the others: what exploration must reach.</p>
{_table(["system", "rare classes", "common classes"], named_rows)}"""


def _rounds_section(results: dict) -> str:
    round_rows = [[r["round"], f"{r['pairs']} ({r['contrast_pairs']})", ", ".join(r["systems"]), r["judgments"],
                   r["new_heldout_pairs"], f"{format_optional(r['new_heldout_accuracy_before'], '.3f')} → "
                   f"{format_optional(r['new_heldout_accuracy_after'], '.3f')}",
                   f"{r['rl_steps']} ({r['rl_kept_step']})",
                   "; ".join(r["rl_collapse"]) or "none", f"{r['val_reward']:.3f}", "yes" if r["selected"] else "",
                   format_win(r["eval_vs_baseline"])] for r in results["rounds"]]
    return f"""<h2>Preference rounds</h2>
<p>Each round after the first judges the current policy's captions (and its predecessor's), retrains the reward model
on every judgment so far and continues RL; the budget is shared over the rounds. Accuracy on the round's new pairs of
held-out clips before and after the update; RL steps (the step kept); the final reward model's score of each round's
policy on the <code>val</code> clips (which chose RLHF's checkpoint); and, only reported, the evaluation panel's win
rate of that policy against the baseline.</p>
{_table(["round", "pairs (contrast)", "captions of", "judgments", "new held-out pairs", "accuracy before → after",
         "RL steps (kept)", "collapse", "val reward", "chosen", "eval: vs baseline"], round_rows)}"""


def _decomposition_section(results: dict) -> str:
    diagnostic_rows = [[name, *(format_win(row[f"vs_{other}"]) for other in ("baseline", "supervised", "rlhf")),
                        format_optional(row["cider_d"], ".3f"), format_optional(row["events_named"]["rare"], ".1%"),
                        format_optional(row["events_named"]["common"], ".1%")]
                       for name, row in (results["decomposition"] or {"systems": {}})["systems"].items()]
    return "" if not diagnostic_rows else f"""<h2>Decomposition of the gap to supervised (diagnostics)</h2>
<p>Diagnostic systems, not the method: RL with the training panel's own noise-free score as the reward
(<code>rlhf-oracle</code>: what a perfect reward model would give), RL against the paper's frozen-embedding head
trained on the same judgments (<code>rlhf-paper</code>), and supervised fine-tuning on the references of N
<code>rl</code> clips (<code>supervised-N</code>). Evaluation panel win rates, one outcome per test clip.</p>
{_table(["system", "vs baseline", "vs supervised", "vs rlhf", "CIDEr-D", "rare sounds named",
         "common sounds named"], diagnostic_rows)}"""


def _reward_section(run: Path, rm: dict) -> str:
    models = {"default (RL's)": {"accuracy": rm["heldout_accuracy"], "ece": rm["ece"],
                                 "close_pair_accuracy": rm["close_pair_accuracy"], "per_category": rm["per_category"],
                                 "sampled_pairs_accuracy": rm["sampled_pairs"]["heldout_accuracy"]},
              **rm["variant_diagnostics"]}
    categories = sorted({c for m in models.values() for c in m["per_category"]})
    variant_rows = [[name, *(format_optional(m[k], ".3f") for k in ("accuracy", "sampled_pairs_accuracy", "ece",
                                                                      "close_pair_accuracy")),
                     *(format_optional(m["per_category"].get(c), ".3f") for c in categories)]
                    for name, m in models.items()]
    adversarial_kinds = sorted({k for kinds in rm["adversarial"].values() for k in kinds})
    adversarial_rows = [[name, *(format_optional(kinds.get(k), ".2f") for k in adversarial_kinds)]
                        for name, kinds in rm["adversarial"].items()]
    variant_plots = sorted((run / "reward").glob("reliability-*.png"))
    curve_image = (f'<img alt="learning curve" src="data:image/png;base64,{learning_curve_plot(rm["learning_curve"])}">'
                   if rm["learning_curve"] else "")
    return f"""<h2>Reward model</h2>
<p>The reward model RL uses: held-out accuracy {rm['heldout_accuracy']:.3f} on {rm['heldout_pairs']} pairs of
unseen clips; the noise-free training panel reaches {format_optional(rm['judge_ceiling'], '.3f')} on the same labels
(the most a reward model can), one annotator agrees with the others' majority on
{rm['single_annotator_agreement']:.3f} of votes; close pairs {format_optional(rm['close_pair_accuracy'], '.3f')};
trained on {rm['train_pairs']} pairs. On the {rm['sampled_pairs']['heldout_pairs']} held-out pairs of the baseline's
own captions (no contrast pairs): {format_optional(rm['sampled_pairs']['heldout_accuracy'], '.3f')}, panel
{format_optional(rm['sampled_pairs']['judge_ceiling'], '.3f')}.</p>
{_table(["model", "accuracy", "own captions", "ECE", "close pairs", *categories], variant_rows)}
<p>Adversarial suite (careful caption vs adversarial caption on the target test clips): share of pairs where the
model scores the careful caption higher.</p>
{_table(["model", *adversarial_kinds], adversarial_rows)}
{curve_image}
<p>Calibration of the default model, then of each variant ({html.escape(', '.join(p.stem for p in variant_plots))}):</p>
<img alt="calibration" src="data:image/png;base64,{_embed(run / 'reward' / 'reliability.png')}">
{''.join(f'<img alt="{html.escape(p.stem)}" src="data:image/png;base64,{_embed(p)}">' for p in variant_plots)}"""


def _rl_section(run: Path, rl: dict) -> str:
    rl_plots = [run / "rl" / "curves.png", *sorted(run.glob("round-*/rl/curves.png"))]
    return f"""<h2>RL</h2>
<p>{html.escape(rl['algorithm'])}, {rl['steps']} steps,
{rl['captions_per_second']:.0f} captions/s; held-out reward-model score
{rl['heldout'][0]['rm']:.3f} → {rl['heldout'][-1]['rm']:.3f}.</p>
{''.join(f'<img alt="RL curves, round {k}" src="data:image/png;base64,{_embed(p)}">'
         for k, p in enumerate(rl_plots, start=1))}"""


def _examples_section(run: Path, out: Path, systems: dict) -> str:
    target = run / "data" / "target"
    clips = {c.id: c for c in read_clips(target / "clips.jsonl") if c.split == "test"}
    references = first_caption_by_clip(read_captions(target / "captions.jsonl"))
    captions = {name: {c.clip_id: c.text for c in read_captions(run / "eval" / f"captions-{name}.jsonl")}
                for name in systems}
    example_rows = []
    for clip_id in sorted(clips)[:EXAMPLES]:
        audio = os.path.relpath(clips[clip_id].audio_path, out.parent.resolve())
        player = f'<audio controls preload="none" src="{html.escape(Path(audio).as_posix())}"></audio>'
        cells = "".join(f"<td>{html.escape(captions[name][clip_id])}</td>" for name in systems)
        example_rows.append(f"<tr><td>{html.escape(clip_id)}<br>{player}</td>"
                            f"<td>{html.escape(references[clip_id])}</td>{cells}</tr>")
    example_head = "".join(f"<th>{html.escape(name)}</th>" for name in systems)
    return f"""<h2>Examples (first {EXAMPLES} test clips)</h2>
<table><thead><tr><th>clip</th><th>a reference</th>{example_head}</tr></thead>
<tbody>{''.join(example_rows)}</tbody></table>"""
