"""`prefcap demo`: the method end to end on the embedded default, each stage cached in the run folder.

So far: the synthetic corpus (source and target domains) and the checks of the simulated annotators
that stand in for people. Later stages (encoders, captioners, preferences, reward, RL, evaluation) plug
in here as they land.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from prefcap.data.records import read_clips
from prefcap.data.synth.agreement import annotator_report
from prefcap.data.synth.corpus import SynthConfig, synthesize
from prefcap.errors import PrefcapError
from prefcap.io import atomic_write
from prefcap.provenance import peak_rss_mb, provenance
from prefcap.stages import run_stage

SIZES = {
    "tiny": {"source_clips": 120, "target_clips": 120, "annotator_pairs": 200},
    "demo": {"source_clips": 2000, "target_clips": 1500, "annotator_pairs": 1000},
}


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    size: str = "demo"
    sample_rate: int = 16_000


def run_demo(out: str | Path, config: DemoConfig, progress: bool = True) -> dict:
    if config.size not in SIZES:
        raise PrefcapError(f"unknown size {config.size!r}; expected one of {sorted(SIZES)}")
    sizes = SIZES[config.size]
    out = Path(out)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    for domain in ("source", "target"):
        synth = SynthConfig(n=sizes[f"{domain}_clips"], domain=domain, seed=config.seed,
                            sample_rate=config.sample_rate)
        _, timings[f"synth_{domain}"] = run_stage(
            out / "data" / domain, asdict(synth), lambda tmp, s=synth: synthesize(tmp, s, progress)
        )

    target_clips = out / "data" / "target" / "clips.jsonl"

    def check_annotators(tmp: Path) -> None:
        report = annotator_report(read_clips(target_clips), config.seed, sizes["annotator_pairs"])
        (tmp / "report.json").write_text(json.dumps(report, indent=2))

    _, timings["annotator_checks"] = run_stage(
        out / "annotators", {"seed": config.seed, "pairs": sizes["annotator_pairs"]}, check_annotators,
        inputs=[target_clips],
    )
    timings["total"] = time.perf_counter() - start

    results = {
        "schema": 1,
        "seed": config.seed,
        "provenance": provenance({**asdict(config), **sizes}),
        "annotators": json.loads((out / "annotators" / "report.json").read_text()),
        "resources": {"peak_rss_mb": peak_rss_mb()},
        "timings_s": timings,
    }
    with atomic_write(out / "results.json") as handle:
        json.dump(results, handle, indent=2)
    return results


def summary_table(results: dict) -> str:
    """The plain-text table printed at the end of a demo."""
    report = results["annotators"]
    lines = ["simulated annotators (target domain)", f"{'check':<40}{'train panel':>12}{'eval panel':>12}"]
    for fault, rates in report["reference_win_rate"].items():
        lines.append(f"{'reference beats ' + fault + ' (win rate)':<40}{rates['train']:>12.3f}{rates['eval']:>12.3f}")
    agreement = report["within_panel_agreement"]
    lines.append(f"{'agreement within panel (machine pairs)':<40}{agreement['train']:>12.3f}{agreement['eval']:>12.3f}")
    lines.append(f"{'agreement between panels (majority)':<40}{report['between_panel_agreement']:>12.3f}")
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in results["timings_s"].items())
    lines.append(f"timings: {timings}; peak RSS {results['resources']['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)
