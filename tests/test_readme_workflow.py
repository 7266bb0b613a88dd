"""The README's real-data workflow, run command by command as written, so the docs cannot rot.

Only what a tiny run must change is changed: hub ids and the dataset become local tiny stand-ins (random
checkpoints of the same transformers classes, a few clips in Clotho's layout), sizes shrink through trailing
`key=value` items (the recipe file is still read for everything else), and where people would judge in the
web app, an HTTP client logs in with each printed link and answers its queue.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from loadtest import annotate_over_http, free_port, running_server
from prefcap.cli import main
from prefcap.prefs.store import Store
from tiny_models import save_tiny_clap, save_tiny_whisper

REPO = Path(__file__).resolve().parents[1]
SR = 16_000
SPLITS = {"development": 10, "validation": 8, "evaluation": 4}
WORDS = ["a dog barks", "rain falls", "a car passes", "birds sing", "wind blows", "a door closes", "water runs"]
# Trailing overrides that make each training command tiny; the values of configs/clotho.yaml are read first.
TINY = {
    "sft": ["max_steps=2", "batch_size=4", "eval_every=1", "mixed_precision=no"],
    "reward-train": ["epochs=3", "ensemble=2", "hidden=[16,8]", "batch_size=8", "val_fraction=0"],
    "rl": ["max_steps=2", "batch_size=2", "num_generations=2", "max_new_tokens=8", "eval_every=1", "save_steps=1",
           "warmup_steps=0", "mixed_precision=no"],
    "dpo": ["max_steps=2", "batch_size=2", "eval_every=1"],
}


def workflow_commands() -> list[list[str]]:
    """The commands of the first bash block under "Real data, step by step", one per (joined) line."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Real data, step by step", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [argv for line in block.replace("\\\n", " ").splitlines() if (argv := shlex.split(line, comments=True))]


def tiny_clotho(root: Path) -> Path:
    """A few seconds of noisy tones per clip, five captions each, in the aac-datasets Clotho layout."""
    base = root / "CLOTHO_v2.1"
    rng = np.random.default_rng(0)
    for split, n in SPLITS.items():
        rows = ["file_name,caption_1,caption_2,caption_3,caption_4,caption_5"]
        for k in range(n):
            t = np.arange(SR) / SR
            wave = 0.3 * np.sin(2 * np.pi * (200 + 60 * k) * t) + 0.05 * rng.standard_normal(SR)
            path = base / "clotho_audio_files" / split / f"{split}_{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, wave.astype(np.float32), SR)
            captions = [f"{WORDS[(k + j) % len(WORDS)]} while {WORDS[(k + 2 * j + 1) % len(WORDS)]}" for j in range(5)]
            rows.append(",".join([path.name, *captions]))
        csv = base / "clotho_csv_files" / f"clotho_captions_{split}.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def localise(argv: list[str], places: dict[str, str]) -> list[str]:
    """Replace hub ids, the dataset and the run folder by their tiny local stand-ins."""
    out = []
    for arg in argv:
        for name, place in places.items():
            arg = re.sub(rf"(^|=){re.escape(name)}", lambda m, p=place: m.group(1) + p, arg)
        out.append(arg)
    return out


def test_every_readme_workflow_command_runs_on_tiny_models(tmp_path, capsys, one_thread):
    commands = workflow_commands()
    assert len(commands) >= 15 and all(argv[0] in ("prefcap", "accelerate") for argv in commands), commands
    places = {
        "~/data/clotho": str(tiny_clotho(tmp_path / "clotho")),
        "openai/whisper-small": str(save_tiny_whisper(tmp_path / "whisper")),
        "laion/clap-htsat-unfused": str(save_tiny_clap(tmp_path / "clap")),
        "runs/": str(tmp_path / "runs") + "/",
        "configs/": str(REPO / "configs") + "/",
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tokens: dict[str, list[str]] = defaultdict(list)  # store -> annotator tokens printed by `annotators add`
    ran = []
    for argv in commands:
        argv = localise(argv, places)
        if argv[0] == "accelerate":  # several processes: a real launch, two CPU processes on a free port
            assert argv[1:5] == ["launch", "--multi_gpu", "--num_processes", "4"] and argv[5:7] == ["-m", "prefcap.cli"]
            launch = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                      "--main_process_port", str(free_port()), *argv[5:], *TINY[argv[7]]]
            done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
        elif argv[1] == "annotate":  # people: an HTTP client per printed link answers its whole queue
            assert argv[2:4] == ["--db", argv[3]] and argv[4:] == ["--port", "8000"], argv
            with running_server(argv[3], port=free_port()) as server:
                for k, token in enumerate(tokens[argv[3]]):
                    report = annotate_over_http(server.url, token, judgments=10_000, seed=k)
                    assert report.error is None, report
        else:
            args = argv[1:] + TINY.get(argv[1], [])
            if argv[1] == "pairs":
                args[args.index("--num-pairs") + 1] = "16"
            assert main(args) == 0, f"prefcap {' '.join(args)}: {capsys.readouterr().err}"
            printed = capsys.readouterr().out
            if argv[1:3] == ["annotators", "add"] and "--admin" not in argv:
                tokens[argv[argv.index("--db") + 1]] += re.findall(r"/login\?token=(\S+)", printed)
        ran.append(argv[1] if argv[0] == "prefcap" else "accelerate launch")

    assert len(ran) == len(commands)
    # round 2 judged the RL policy's captions beside the baseline's, in the same store
    rows = Store(str(tmp_path / "runs" / "clotho" / "prefs.sqlite")).pair_rows()
    systems = {row[side] for row in rows for side in ("system_a", "system_b")}
    assert {"baseline", "rlhf-round-1"} <= systems
    runs = tmp_path / "runs" / "clotho"
    for folder in ("captioner-baseline", "reward", "rl/captioner", "rl-multi/captioner", "captioner-dpo", "reward-2",
                   "rl-2/captioner"):
        assert (runs / folder).is_dir(), folder
    # the second `eval` saw every queued pair judged: statistics for each comparison, nothing pending
    result = json.loads((runs / "eval" / "eval.json").read_text())
    assert all(count == 0 for key, count in result["pending"].items() if key != "pairs_added_now")
    assert {(row["a"], row["b"]) for row in result["pairwise"]} == {("baseline", "rlhf"), ("baseline", "dpo"),
                                                                   ("rlhf", "dpo")}
    assert all(row["clips"] == SPLITS["evaluation"] for row in result["pairwise"])
