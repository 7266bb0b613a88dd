"""`prefcap demo --seeds N`: the demo for several seeds and their mean ± sd."""


from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from prefcap.demo.run import DemoConfig, run_demo
from prefcap.errors import PrefcapError
from prefcap.eval.systems import SYSTEM_FIELDS
from prefcap.io import atomic_write


def run_seeds(out: str | Path, config: DemoConfig, seeds: int, progress: bool = True,
              on_result: Callable[[dict], None] | None = None) -> dict:
    """The demo for seeds config.seed, config.seed + 1, ... each in OUT/seed-S (cached like any run), and
    their mean ± sd in OUT/seeds.json: a result must hold across seeds, not for one."""
    if seeds < 1:
        raise PrefcapError(f"--seeds must be at least 1, got {seeds}")
    runs = {}
    for seed in range(config.seed, config.seed + seeds):
        runs[seed] = run_demo(Path(out) / f"seed-{seed}", replace(config, seed=seed), progress)
        if on_result:
            on_result(runs[seed])
    summary = seeds_summary(runs)
    with atomic_write(Path(out) / "seeds.json") as handle:
        json.dump(summary, handle, indent=2)
    return summary


def _spread(values: list[float | None]) -> dict | None:
    """Mean and sample sd of a figure over seeds (None where a seed has no value, e.g. no non-tie clips)."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return {"mean": float(np.mean(known)), "sd": float(np.std(known, ddof=1)) if len(known) > 1 else 0.0,
            "values": values}


def seeds_summary(runs: dict[int, dict]) -> dict:
    seeds = sorted(runs)
    first = runs[seeds[0]]
    systems = {name: {field: _spread([runs[s]["systems"][name][field] for s in seeds]) for field in SYSTEM_FIELDS}
               for name in first["systems"]}
    pairwise = []
    for row in first["pairwise"]:
        key = (row["a"], row["b"], row["judge"])
        rows = [next(r for r in runs[s]["pairwise"] if (r["a"], r["b"], r["judge"]) == key) for s in seeds]
        pairwise.append({"a": row["a"], "b": row["b"], "judge": row["judge"],
                         "win_rate": _spread([r["win_rate"] for r in rows]),
                         "ci_low": [r["ci_low"] for r in rows], "ci_high": [r["ci_high"] for r in rows]})
    named = {name: {kind: _spread([runs[s]["events_named"]["systems"][name][kind] for s in seeds])
                    for kind in ("rare", "common")} for name in first["events_named"]["systems"]}
    return {"seeds": seeds, "rm_heldout_accuracy": _spread([runs[s]["rm"]["heldout_accuracy"] for s in seeds]),
            "systems": systems, "pairwise": pairwise, "events_named": named,
            "total_seconds": _spread([runs[s]["timings_s"]["total"] for s in seeds])}


