"""The command line as a user meets it: the issue's commands, clean one-line errors, the demo."""

import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from prefcap.cli import exposure_warning, main
from prefcap.demo import DIAGNOSTIC_VARIANTS, PAPER_VARIANT
from prefcap.prefs.store import Store
from prefcap.reward.jobs import FENSE_CANDIDATES, FENSE_VARIANTS
from prefcap.rl.trainer import LOSS_VERSION
from prefcap.synth.adversarial import EXTRA_KINDS, REQUIRED_KINDS
from prefcap.synth.panels import LISTENERS_VERSION


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "prefcap.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_synth_command_writes_200_clips_reproducibly(tmp_path):
    for name in ("a", "b"):
        assert main(["synth", "--out", str(tmp_path / name), "--n", "200", "--domain", "target", "--seed", "3"]) == 0
    assert len(list((tmp_path / "a" / "audio").glob("*.wav"))) == 200
    captions = [json.loads(line) for line in (tmp_path / "a" / "captions.jsonl").read_text().splitlines()]
    assert len(captions) == 1000
    for manifest in ("clips.jsonl", "captions.jsonl"):
        assert (tmp_path / "a" / manifest).read_bytes() == (tmp_path / "b" / manifest).read_bytes()


def test_ingest_command_skips_and_lists_bad_files(tmp_path, capsys):
    folder = tmp_path / "audio"
    folder.mkdir()
    t = np.arange(1600) / 16000
    for k in range(3):
        sf.write(folder / f"good{k}.wav", 0.3 * np.sin(2 * np.pi * 440 * (k + 1) * t), 16000)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (folder / "empty.wav").write_bytes(b"")
    nan = np.full(1600, 0.1, dtype=np.float32)
    nan[10] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")

    assert main(["ingest", str(folder), "--out", str(tmp_path / "out")]) == 0
    clips = (tmp_path / "out" / "clips.jsonl").read_text().splitlines()
    assert len(clips) == 3
    rejected = {json.loads(line)["path"].rsplit("/", 1)[-1]: json.loads(line)["reason"]
                for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()}
    assert rejected == {"corrupt.wav": "unreadable", "empty.wav": "empty", "nan.wav": "non_finite"}
    assert "rejected 3 unusable" in capsys.readouterr().out


def test_unusable_arguments_give_one_line_and_no_traceback(tmp_path):
    cases = [
        ("synth",),  # --out missing
        ("synth", "--out", tmp_path / "x", "--n", "0"),
        ("synth", "--out", tmp_path / "x", "--domain", "mars"),
        ("synth", "--out", tmp_path / "x", "seed=abc"),
        ("ingest", tmp_path / "does-not-exist", "--out", tmp_path / "y"),
        ("frobnicate",),
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("prefcap: error:"), args


def test_mistakes_a_user_can_make_end_in_one_line_and_leave_their_files_alone(tmp_path, capsys):
    import sqlite3

    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--n", "4", "--domain", "target", "--seed", "1"]) == 0
    a_file, not_a_db, foreign = tmp_path / "a-file", tmp_path / "notes.sqlite", tmp_path / "other-app.sqlite"
    a_file.write_text("keep me")
    not_a_db.write_text("keep me")
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE users (id INTEGER)")
    label_studio = tmp_path / "ls.json"
    label_studio.write_text(json.dumps([{"data": {"clip_id": "c", "text1": "a", "text2": "b"},
                                         "annotations": [{"result": [{"type": "pairwise",
                                                                      "value": {"selected": ["left"]}}]}]}]))
    foreign_bytes = foreign.read_bytes()
    not_a_run = tmp_path / "not-a-run"
    not_a_run.mkdir()
    (not_a_run / "results.json").write_text("[]")
    kept = tmp_path / "kept"  # a store that holds only an admin
    assert main(["annotators", "add", "boss", "--admin", "--db", str(kept)]) == 0
    cases = [
        (["synth", "--out", str(tmp_path / "s"), "--seed", "-1"], "--seed"),
        (["synth", "--out", str(a_file / "corpus")], "Not a directory"),
        (["synth", "--out", str(tmp_path / "s"), 'splits={"train": "x"}'],
         "splits.train: expected a value of type float"),
        (["annotators", "list", "--db", str(tmp_path / "typo")], "no such judgment store"),
        (["annotators", "list", "--db", str(not_a_db)], "cannot open it as a judgment store"),
        (["simulate", "--db", str(foreign)], "a database of something else"),
        (["prefs", "import", "--db", str(tmp_path / "run"), str(label_studio), "--format", "label-studio"],
         "must select 'left' or 'right'"),
        (["prefs", "import", "--db", str(kept), str(label_studio), "--format", "label-studio"], "must select"),
        (["prefs", "export", "--db", str(kept), str(data), "--format", "jsonl"], f"Is a directory: {data}"),
        (["report", str(not_a_run)], "not a demo's results"),
        (["demo", "--size", "tiny", "--device", "cuda", "--out", str(tmp_path / "gpu")], "no CUDA device"),
        (["caption", str(data / "clips.jsonl"), "--captioner", str(a_file), "--out", str(tmp_path / "c.jsonl"),
          "--n", "0"], "--n"),
        (["caption", str(data / "clips.jsonl"), "--captioner", str(a_file), "--out", str(tmp_path / "c.jsonl"),
          "mode=bam"], "expected one of greedy, beam, sample"),
        (["encoder-train", "--data", str(data), "--out", str(tmp_path / "e"), "batch_size=0"], "batch_size"),
        (["eval", "--clips", str(data / "clips.jsonl"), "--system", f"x/y={a_file}", "--system", f"z={a_file}",
          "--out", str(tmp_path / "ev")], "system name 'x/y'"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith("prefcap: error:") and len(error.strip().splitlines()) == 1, (argv, error)
        assert message in error, (argv, error)
    assert a_file.read_text() == not_a_db.read_text() == "keep me"
    assert not (tmp_path / "typo").exists() and not list(tmp_path.glob("run/prefs.sqlite*"))
    assert foreign.read_bytes() == foreign_bytes and not list(tmp_path.glob("other-app.sqlite-*"))
    assert main(["annotators", "list", "--db", str(kept)]) == 0 and "boss" in capsys.readouterr().out
    assert not (tmp_path / "s").exists() and not (tmp_path / "e").exists() and not (tmp_path / "ev").exists()


def test_tiny_demo_writes_results_and_skips_finished_stages(tmp_path):
    out = tmp_path / "seed-1"  # where `--seeds` puts seed 1, so the two-seed run below reuses this one
    result = run_cli("demo", "--size", "tiny", "--out", out, "--seed", "1", "--diagnostics", "--decomposition")
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == 1 and results["seed"] == 1
    assert {"git_sha", "date", "machine", "versions", "config"} <= set(results["provenance"])
    assert results["resources"]["peak_rss_mb"] > 0 and results["timings_s"]["synth_target"] > 0
    assert results["cached_stages"] == [] and results["timings_s"]["total"] == pytest.approx(
        sum(v for k, v in results["timings_s"].items() if k != "total"))
    assert "agreement within panel" in result.stdout
    assert {"source", "target", "annotator_agreement_on_baseline_samples"} <= set(results["baseline"])
    health = results["baseline"]["health"]  # the tiny baseline writes one caption for every clip: a collapse
    assert health["distinct_captions"] < health["band"]["distinct_captions"] and not health["within_band"]
    assert "OUTSIDE the band" in result.stdout
    assert 0 <= results["encoder"]["zero_shot_event_map"]["map"] <= 1
    prefs = results["preferences"]
    assert prefs["judgments"] == 3 * prefs["pairs_added"] > 0 and (out / "prefs" / "prefs.sqlite").is_file()
    rm = results["rm"]
    assert {"heldout_accuracy", "heldout_pairs", "train_pairs", "judge_ceiling", "single_annotator_agreement",
            "close_pair_accuracy"} <= set(rm)
    assert 0.5 <= rm["judge_ceiling"] <= 1  # the noise-free training panel on the held-out labels
    # the reward model RL uses fine-tunes CLAP's text side; the paper's head is scored beside it on the same split
    saved = json.loads((out / "reward" / "reward_config.json").read_text())["config"]
    assert saved["text_encoder"] == "fine-tune" and PAPER_VARIANT in rm["variants"]
    assert set(rm["variants"]) == set(rm["variant_diagnostics"]) == {PAPER_VARIANT, *DIAGNOSTIC_VARIANTS}
    assert 0 < prefs["contrast_pairs"] < prefs["pairs_selected"]  # a share of caption-vs-damaged-copy pairs
    own = rm["sampled_pairs"]  # the held-out pairs of the baseline's own captions, without contrast pairs
    assert 0 < own["heldout_pairs"] < rm["heldout_pairs"] and 0.5 <= own["judge_ceiling"] <= 1
    assert set(rm["adversarial"]) == {"default", PAPER_VARIANT, *DIAGNOSTIC_VARIANTS}
    assert set(rm["adversarial"]["default"]) == set(REQUIRED_KINDS + EXTRA_KINDS)
    assert all(0 <= share <= 1 for kinds in rm["adversarial"].values() for share in kinds.values())
    judges = results["judges"]  # how alike the two panels judge, and what each system's captions exploit
    assert {"agreement", "margin_correlation", "system_outputs", "machine_like", "exploit_rates"} <= set(judges)
    assert 0.5 <= judges["machine_like"]["agreement"] <= 1 and judges["machine_like"]["pairs"] == 200
    assert set(judges["exploit_rates"]) == {"baseline", "rlhf", "supervised", "dpo"}
    for rates in judges["exploit_rates"].values():
        assert set(rates) == {"negation", "invented", "verbless", "word_list", "relations_stated", "truncated",
                              "repetition"}
        assert all(0 <= rate <= 1 for rate in rates.values())
    # a changed listener or RL loss changes the key of every stage it feeds, so those stages are rebuilt
    keys = {name: json.loads((out / name / "_stage.json").read_text())["config"] for name in ("prefs", "rl", "eval")}
    assert keys["prefs"]["listeners"] == keys["eval"]["listeners"] == LISTENERS_VERSION
    assert keys["rl"]["loss"] == LOSS_VERSION
    assert rm["train_pairs"] + rm["heldout_pairs"] <= prefs["pairs_added"]
    assert (out / "reward" / "reliability.png").is_file()
    uncertainty = rm["ensemble_uncertainty"]  # the ensemble variant's spread on each group of clips
    assert set(uncertainty) == {"target clips it trained on", "held-out target clips", "source-domain clips",
                                "held-out target clips, unseen event combinations"}
    assert uncertainty["target clips it trained on"]["clips"] > 0 and uncertainty["source-domain clips"]["clips"] > 0
    assert all(u["relative"] > 0 and u["raw"] > 0 for u in uncertainty.values() if u["clips"])
    # the saved model, evaluated again from the command line on its held-out clips, gives the same accuracy
    evaluated = run_cli("reward-eval", "--model", out / "reward", "--db", out / "prefs", "--encoder", out / "encoder",
                        "--json", tmp_path / "rm.json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "rm.json").read_text())["accuracy"] == rm["heldout_accuracy"]
    wrong = run_cli("reward-eval", "--model", out / "reward", "--db", out / "prefs", "--encoder", "sbert:default")
    assert wrong.returncode == 2 and "refusing embeddings" in wrong.stderr
    # the reward model picks the pairs it is least sure about (active collection)
    active = run_cli("pairs", "--db", tmp_path / "round2", "--clips", out / "data" / "target" / "clips.jsonl",
                     "--split", "rl", "--captioner", out / "captioner-baseline", "--strategy", "uncertain",
                     "--reward", out / "reward", "--encoder", out / "encoder", "--num-pairs", "6", "--num-clips", "3",
                     "--cache", out / "cache")
    assert active.returncode == 0, active.stderr
    assert "stored 6 new pairs (uncertain" in active.stdout
    # RL, resumed with more steps, and DPO from the command line on the demo's artifacts
    rl = ("rl", "--captioner", out / "captioner-baseline", "--reward", out / "reward", "--encoder", out / "encoder",
          "--clips", out / "data" / "target" / "clips.jsonl", "--out", tmp_path / "rl", "--cache", out / "cache",
          "--eval-clips", "4", "batch_size=2", "num_generations=2", "max_new_tokens=8", "save_steps=1")
    first = run_cli(*rl, "max_steps=2")
    assert first.returncode == 0 and "saved the RL captioner" in first.stdout, first.stderr
    assert "pass --resume" in run_cli(*rl, "max_steps=3").stderr
    resumed = run_cli(*rl, "max_steps=3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "rl" / "rl_metrics.json").read_text())["resumed_from"] == 2
    dpo = run_cli("dpo", "--db", out / "prefs", "--captioner", out / "captioner-baseline", "--out", tmp_path / "dpo",
                  "max_steps=2", "batch_size=4", "eval_every=1")
    assert dpo.returncode == 0 and "saved the DPO captioner" in dpo.stdout, dpo.stderr
    # the demo's own evaluation: every system on the test clips, one outcome per clip and judge
    assert set(results["systems"]) == {"baseline", "rlhf", "supervised", "dpo"}
    for scores in results["systems"].values():
        assert {"cider_d", "sbert_sim", "rm_score", "clap_score", "repetition_rate", "truncated_ending_rate",
                "distinct_2", "mean_words"} <= set(scores)
    test_clips = sum(1 for line in (out / "data" / "target" / "clips.jsonl").open() if '"split":"test"' in line)
    compared = (("rlhf", "baseline"), ("rlhf", "supervised"), ("supervised", "baseline"), ("dpo", "baseline"),
                ("rlhf", "dpo"))
    assert {(r["a"], r["b"], r["judge"]) for r in results["pairwise"]} == {
        (a, b, judge) for a, b in compared for judge in ("eval", "train")}
    assert all(r["clips"] == r["wins"] + r["losses"] + r["ties"] == test_clips for r in results["pairwise"])
    # two preference rounds (the default) share the judgment budget and RL's steps
    rounds = results["rounds"]
    assert [r["round"] for r in rounds] == [1, 2] and sum(r["pairs"] for r in rounds) <= 80
    assert [r["rl_steps"] for r in rounds] == [2, 2] and results["rl"]["steps"] == 4
    assert [(r["round"], r["step"]) for r in results["rl"]["heldout"]] == [(1, 0), (1, 2), (2, 2), (2, 4)]
    assert rounds[0]["systems"] == ["baseline"] and rounds[1]["systems"] == ["rlhf-round-1", "baseline"]
    assert all(r["judgments"] == 3 * r["pairs"] > 0 for r in rounds)
    assert rounds[0]["new_heldout_accuracy_before"] is None
    assert rounds[1]["new_heldout_pairs"] > 0 and 0 <= rounds[1]["new_heldout_accuracy_after"] <= 1
    assert sum(r["selected"] for r in rounds) == 1 and all(r["eval_vs_baseline"]["clips"] == 24 for r in rounds)
    store = Store(out / "round-2" / "prefs" / "prefs.sqlite", create=False)  # every judgment so far, both rounds
    assert len(store.judgment_rows()) == sum(r["judgments"] for r in rounds)
    store.close()
    selection = json.loads((out / "rlhf" / "selection.json").read_text())
    chosen = next(r for r in rounds if r["selected"])
    assert selection["selected"] == ("rl" if chosen["round"] == 1 else "round-2/rl")
    assert chosen["val_reward"] == max(r["val_reward"] for r in rounds)
    assert set(results["events_named"]["systems"]) == {"baseline", "rlhf", "supervised", "dpo", "references"}
    assert results["events_named"]["rare_classes"] and results["events_named"]["systems"]["references"]["rare"] > 0.9
    # --decomposition: the gap to supervised taken apart
    diagnostics = results["decomposition"]
    assert set(diagnostics["systems"]) == {"rlhf-oracle", "rlhf-paper", "supervised-8", "supervised-16"}
    assert [p["clips"] for p in diagnostics["supervised_curve"]] == [8, 16]
    assert all(row["vs_baseline"]["clips"] == 24 for row in diagnostics["systems"].values())
    assert json.loads((out / "decomposition" / "rlhf-oracle" / "oracle.json").read_text())["scale"] > 0
    supervised = json.loads((out / "supervised" / "captioner" / "sft_metrics.json").read_text())
    assert supervised["steps"] <= results["rl"]["steps"] and supervised["train_clips"] == sum(
        1 for line in (out / "data" / "target" / "clips.jsonl").open() if '"split":"rl"' in line)
    assert "rlhf vs baseline (eval panel" in result.stdout
    ranked = results["ranking"]  # Bradley–Terry by the evaluation panel, best first, with bootstrap intervals
    assert {r["system"] for r in ranked} == set(results["systems"]) and abs(sum(r["bt_score"] for r in ranked)) < 1e-6
    assert all(r["ci_low"] <= r["bt_score"] <= r["ci_high"] for r in ranked)
    assert [r["bt_score"] for r in ranked] == sorted((r["bt_score"] for r in ranked), reverse=True)

    # the report opens from disk: plots embedded, audio players pointing at the run's files
    page = (out / "report.html").read_text()
    # win rates, learning curve, calibration of each reward model, RL curves of each round
    plots = 3 + len(rm["variants"]) + len(rounds)
    assert page.count('src="data:image/png;base64,') == plots
    assert "<tr><td>rlhf</td><td>baseline</td><td>eval</td>" in page
    best = results["ranking"][0]
    assert f"<tr><td>{best['system']}</td><td>{best['bt_score']:+.2f}</td>" in page  # the ranking table
    players = re.findall(r'<audio controls preload="none" src="([^"]+)"', page)
    assert len(players) == 12 and all((out / src).is_file() for src in players)
    reported = run_cli("report", out, "--out", tmp_path / "report.html")
    assert reported.returncode == 0 and "rlhf vs baseline (eval panel" in reported.stdout, reported.stderr
    assert (tmp_path / "report.html").is_file()
    # prefcap eval: two captioners and a caption file, simulated judges, then the same with human judges
    target = out / "data" / "target"
    evaluate = ("eval", "--clips", target / "clips.jsonl", "--split", "test", "--system",
                f"baseline={out / 'captioner-baseline'}", "--system", f"rlhf={out / 'rl' / 'captioner'}",
                "--system", f"references={target / 'captions.jsonl'}", "--references", target / "captions.jsonl")
    simulated = run_cli(*evaluate, "--encoder", out / "encoder", "--reward", out / "reward", "--cache", out / "cache",
                        "--out", tmp_path / "eval")
    assert simulated.returncode == 0, simulated.stderr
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert [(r["a"], r["b"]) for r in report["pairwise"]] == [("baseline", "rlhf"), ("baseline", "references"),
                                                               ("rlhf", "references")]
    by_pair = {(r["a"], r["b"]): r for r in report["pairwise"]}
    assert by_pair[("baseline", "references")]["losses"] > 0.8 * by_pair[("baseline", "references")]["clips"]
    assert report["ranking"][0]["system"] == "references" and report["systems"]["references"]["cider_d"] > 1
    humans = (*evaluate, "--judges", "humans", "--db", tmp_path / "evaldb", "--out", tmp_path / "eval-humans")
    queued = run_cli(*humans)
    assert queued.returncode == 0 and "waiting for human judgments" in queued.stdout, queued.stderr
    assert run_cli("simulate", "--db", tmp_path / "evaldb", "--panel", "eval", "--overlap", "3").returncode == 0
    judged = run_cli(*humans)
    assert judged.returncode == 0 and "waiting" not in judged.stdout, judged.stderr
    human = json.loads((tmp_path / "eval-humans" / "eval.json").read_text())
    assert all(r["clips"] == test_clips for r in human["pairwise"])
    assert human["pairwise"][1]["losses"] > 0.8 * test_clips  # references beat the tiny baseline for people too

    again = run_cli("demo", "--size", "tiny", "--out", out, "--seed", "1", "--diagnostics", "--decomposition")
    assert again.returncode == 0
    rerun = json.loads((out / "results.json").read_text())
    assert "synth_target" in rerun["cached_stages"]  # skipped, and its build time kept
    assert rerun["timings_s"]["synth_target"] == results["timings_s"]["synth_target"]
    built_peaks = [json.loads(marker.read_text())["peak_rss_mb"] for marker in out.glob("**/_stage.json")]
    assert min(built_peaks) > 0 and rerun["resources"]["peak_rss_mb"] >= max(built_peaks)  # as built

    # two seeds: seed 1 is the run above (every stage cached), seed 2 a new one; mean ± sd over both. The first
    # try is SIGKILLed inside seed 2's RL stage — as soon as RL has logged its first line, with its steps, the
    # checkpoint and the plot still to come (a fixed sleep raced a quiet machine) — the rerun redoes that stage and
    # keeps every finished one.
    command = [sys.executable, "-m", "prefcap.cli", "demo", "--size", "tiny", "--out", str(tmp_path), "--seed", "1",
               "--seeds", "2", "--diagnostics"]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as killed:
        deadline = time.monotonic() + 300
        while not (tmp_path / "seed-2" / ".rl.tmp" / "log.jsonl").exists():
            assert killed.poll() is None and time.monotonic() < deadline, "the demo ended before seed 2's RL stage"
            time.sleep(0.005)
        killed.kill()
    assert not (tmp_path / "seed-2" / "rl").exists() and (tmp_path / "seed-2" / "reward").is_dir()
    seeds = run_cli("demo", "--size", "tiny", "--out", tmp_path, "--seed", "1", "--seeds", "2", "--diagnostics")
    assert seeds.returncode == 0, seeds.stderr
    summary = json.loads((tmp_path / "seeds.json").read_text())
    second = json.loads((tmp_path / "seed-2" / "results.json").read_text())
    assert summary["seeds"] == [1, 2] and second["seed"] == 2
    redone = set(second["timings_s"]) - set(second["cached_stages"]) - {"total"}
    assert {"rl", "supervised", "dpo", "eval"} <= redone and not redone & {"synth_target", "encoder_train", "reward"}
    assert "rl" in json.loads((out / "results.json").read_text())["cached_stages"]
    cider = [results["systems"]["rlhf"]["cider_d"], second["systems"]["rlhf"]["cider_d"]]
    spread = summary["systems"]["rlhf"]["cider_d"]
    assert spread["values"] == cider and spread["mean"] == pytest.approx(np.mean(cider))
    assert spread["sd"] == pytest.approx(np.std(cider, ddof=1))
    assert len(summary["pairwise"]) == len(results["pairwise"]) and "mean ± sd over seeds 1, 2" in seeds.stdout


def test_the_tiny_demo_gives_the_same_results_with_device_auto_and_cpu(tmp_path):
    """On a machine without a GPU `--device auto` is the CPU: the same figures, only provenance and times differ."""
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: auto would use it")
    results = {}
    for device in ("auto", "cpu"):
        done = run_cli("demo", "--size", "tiny", "--device", device, "--out", tmp_path / device, "--seed", "2")
        assert done.returncode == 0, done.stderr
        results[device] = json.loads((tmp_path / device / "results.json").read_text())
    assert results["auto"]["provenance"]["config"]["device"] == "auto"
    varying = {"provenance", "timings_s", "this_run_s", "resources", "cached_stages",  # the run's record
               "seconds", "captions_per_second", "time_share"}  # how fast a stage went

    def figures(value):
        if isinstance(value, dict):
            return {k: figures(v) for k, v in value.items() if k not in varying}
        return [figures(v) for v in value] if isinstance(value, list) else value

    assert figures(results["auto"]) == figures(results["cpu"])


def test_score_command_reports_metrics(tmp_path):
    references = tmp_path / "refs.jsonl"
    system = tmp_path / "system.jsonl"
    references.write_text("\n".join(json.dumps({"clip_id": f"c{k}", "text": text, "source": "reference"})
                                    for k, text in enumerate(["a siren wails loudly", "rain falls on a roof"])) + "\n")
    system.write_text("\n".join(json.dumps({"clip_id": f"c{k}", "text": text, "source": "baseline"})
                                for k, text in enumerate(["a siren wails loudly", "a bell rings"])) + "\n")
    out = tmp_path / "scores.json"
    result = run_cli("score", system, "--references", references, "--no-sbert", "--json", out)
    assert result.returncode == 0, result.stderr
    scores = json.loads(out.read_text())
    assert scores["clips"] == 2 and 0 < scores["bleu_1"] < 1 and scores["spice"] is None
    missing = run_cli("score", system, "--references", references, "--system", "nobody")
    assert missing.returncode == 2 and "no captions from system 'nobody'" in missing.stderr


def test_sft_then_caption_a_folder_with_a_broken_file(tmp_path):
    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--n", "24", "--domain", "source", "--seed", "2"]) == 0
    model = tmp_path / "captioner"
    result = run_cli("sft", "--data", data, "--out", model, "max_steps=3", "batch_size=4", "eval_every=3")
    assert result.returncode == 0, result.stderr
    assert (model / "prefcap_captioner.json").is_file() and (model / "sft_metrics.json").is_file()
    assert json.loads((model / "sft_metrics.json").read_text())["steps"] == 3
    # saving replaces the folder whole, so a folder that is not a captioner (the data, by mistake) is refused
    assert main(["sft", "--data", str(data), "--out", str(data), "max_steps=1", "batch_size=4"]) == 2
    assert (data / "clips.jsonl").is_file() and len(list((data / "audio").glob("*.wav"))) == 24

    folder = tmp_path / "audio"
    folder.mkdir()
    for wav in sorted((data / "audio").glob("*.wav"))[:3]:
        (folder / wav.name).write_bytes(wav.read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "captions.jsonl"
    result = run_cli("caption", folder, "--captioner", model, "--out", out, "--n", "2", "--mode", "sample",
                     "--system", "tiny", "temperature=0.7")
    assert result.returncode == 0, result.stderr
    captions = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(captions) == 6 and {c["source"] for c in captions} == {"tiny"}
    rejected = [json.loads(line) for line in (tmp_path / "captions.rejected.jsonl").read_text().splitlines()]
    assert [(r["path"].rsplit("/", 1)[-1], r["reason"]) for r in rejected] == [("broken.wav", "unreadable")]
    manifest = run_cli("caption", data / "clips.jsonl", "--captioner", model, "--out", tmp_path / "m.jsonl")
    assert manifest.returncode == 0 and len((tmp_path / "m.jsonl").read_text().splitlines()) == 24


def test_preference_workflow_from_the_command_line(tmp_path, capsys):
    from conftest import TINY_BART
    from prefcap.captioners.sft import new_captioner
    from prefcap.data.records import read_captions
    from prefcap.prefs.store import Store

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["synth", "--out", str(data), "--n", "16", "--domain", "target", "--seed", "4"]) == 0
    captioner = new_captioner((c.text for c in read_captions(data / "captions.jsonl")), seed=0, **TINY_BART)
    captioner.save(tmp_path / "tiny")
    assert main(["pairs", "--db", str(run), "--clips", str(data / "clips.jsonl"), "--captioner",
                 f"tiny={tmp_path / 'tiny'}", "--num-pairs", "12", "--num-clips", "6", "samples_per_decoding=1",
                 "decodings=[]"]) == 2  # an empty decoding list is refused
    assert main(["pairs", "--db", str(run), "--clips", str(data / "clips.jsonl"), "--captioner",
                 f"tiny={tmp_path / 'tiny'}", "--num-pairs", "12", "--num-clips", "6",
                 'decodings=[{"mode": "greedy"}, {"mode": "sample", "temperature": 1.5}]',  # JSON -> Decoding
                 "samples_per_decoding=4"]) == 0
    store = Store.at(run, create=False)
    assert store.url.endswith("run/prefs.sqlite") and store.counts()["pairs"] == 12
    assert {r["system_a"] for r in store.pair_rows()} == {"tiny"}

    capsys.readouterr()
    assert main(["annotators", "add", "alice", "--db", str(run), "--port", "8123"]) == 0
    link = capsys.readouterr().out.split()[-1]
    assert link.startswith("http://127.0.0.1:8123/login?token=")
    assert store.authenticate(link.split("token=")[1]).name == "alice"
    assert main(["assign", "--db", str(run), "--overlap", "1"]) == 0
    assert main(["simulate", "--db", str(run), "--overlap", "3", "--seed", "1"]) == 0
    counts = store.counts()
    assert counts["judgments"] == 24 and counts["open_assignments"] == 12  # alice's 12 wait for her

    table = tmp_path / "prefs.hf.jsonl"
    assert main(["prefs", "export", "--db", str(run), "--format", "hf", str(table)]) == 0
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert len(rows) == 12 and all(r["n_votes"] == 2 for r in rows)
    assert main(["prefs", "import", "--db", str(tmp_path / "other"), "--format", "hf", str(table)]) == 2
    assert main(["assign", "--db", str(tmp_path / "missing.sqlite")]) == 2


def test_reward_eval_trains_on_one_fense_file_and_tests_on_another(tmp_path):
    def fense_file(path, clips):
        entries = []
        for k in range(clips):
            sound, other = ("a dog barks", "a bell rings") if k % 2 else ("rain falls on a roof", "a car engine idles")
            entries.append({"raw_name": f"{path.stem}-{k}.wav",
                            "references": [f"{sound} loudly", f"{sound} outside", f"{sound} nearby"],
                            "HC": [f"{sound} loudly", f"{sound} again and again", "human", "human", [1, 1, 0, 1]],
                            "HI": [f"{sound} softly", other, "human", "human", [1, 1, 1, 1]],
                            "MM_1": [other, f"{sound}", "m1", "m2", [-1, -1, -1, 0]]})
        path.write_text(json.dumps(entries))
        return path

    train, test = fense_file(tmp_path / "train.json", 40), fense_file(tmp_path / "test.json", 10)
    result = run_cli("reward-eval", "--fense", test, "--train-fense", train, "--head", "interaction",
                     "--json", tmp_path / "scores.json", "text_encoder=frozen", "hidden=[32,8]", "epochs=30")
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert {"HC", "HI", "HM", "MM", "total"} <= set(scores) and scores["HM"] is None
    assert scores["HI"] == 1.0 and scores["total"] >= 0.9
    assert set(scores["variants"]) == {*FENSE_CANDIDATES, *FENSE_VARIANTS}  # each scored beside the default
    assert scores["chosen"] in FENSE_CANDIDATES and set(scores["validation_nll"]) == set(FENSE_CANDIDATES)
    assert all(name in result.stdout for name in scores["variants"])  # printed side by side
    missing = run_cli("reward-eval", "--fense", test)
    assert missing.returncode == 2 and "--train-fense" in missing.stderr


def test_the_annotation_app_warns_when_it_listens_beyond_this_machine(tmp_path):
    assert exposure_warning("127.0.0.1", False) is None and exposure_warning("localhost", False) is None
    assert "in clear" in exposure_warning("0.0.0.0", False) and "--secure-cookies" in exposure_warning("0.0.0.0", False)
    assert "--secure-cookies" not in exposure_warning("10.0.0.5", True)
    # the real command prints it before serving (stopped as soon as it has)
    from prefcap.prefs.store import Store

    Store(tmp_path / "prefs.sqlite").close()
    command = [sys.executable, "-m", "prefcap.cli", "annotate", "--db", str(tmp_path), "--host", "0.0.0.0",
               "--port", "0"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as server:
        first = server.stderr.readline()
        server.kill()
    assert first.startswith("prefcap: warning: listening on 0.0.0.0: login tokens"), first
