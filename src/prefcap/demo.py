"""`prefcap demo`: the paper's experiment end to end on the embedded default, each stage cached in the run folder.

Stages, in order: the synthetic corpus (general, source and target domains), the checks of the simulated
annotators that stand in for people, the offline CLAP (trained on `general`, evaluated on target), the baseline
captioner (trained on source), the preference data (pairs of the baseline's own captions of the target `prefs`
clips, judged by the simulated training panel through the judgment store), the reward model, RL on the target
`rl` audio (no captions), the `supervised` comparison, DPO, and the evaluation of every system on the held-out
`test` clips by the simulated evaluation panel; then `results.json` and `report.html`. `run_seeds` repeats it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from prefcap.captioners.base import Decoding
from prefcap.captioners.infer import caption_clips
from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import SFTConfig, new_captioner, train_captioner
from prefcap.data.records import Clip, read_captions, read_clips, write_jsonl
from prefcap.data.synth import panels
from prefcap.data.synth.adversarial import SUITE_VERSION, adversarial_pairs
from prefcap.data.synth.agreement import annotator_report, pairwise_agreement
from prefcap.data.synth.corpus import SynthConfig, synthesize
from prefcap.data.synth.independence import (
    events_named,
    exploit_rates,
    panel_accuracy,
    panel_independence,
    rare_classes,
    system_output_pairs,
)
from prefcap.data.synth.judge import scene_of
from prefcap.data.synth.panel import Panel
from prefcap.devices import DEVICES, resolve_device
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.encoders.evaluate import text_to_audio_recall, zero_shot_event_map
from prefcap.encoders.train import EncoderTrainConfig, train_encoder
from prefcap.errors import PrefcapError
from prefcap.eval.metrics import compute_metrics
from prefcap.eval.pairwise import clip_outcomes, summarise
from prefcap.eval.report import format_optional, format_win, write_report
from prefcap.eval.systems import SYSTEM_FIELDS, compare_systems, system_scores
from prefcap.io import atomic_write
from prefcap.prefs.agreement import agreement_report
from prefcap.prefs.pairs import PairsConfig, build_pairs
from prefcap.prefs.perturb import PERTURBATIONS, PERTURBATIONS_VERSION
from prefcap.prefs.simulate import simulate
from prefcap.prefs.store import Store
from prefcap.provenance import peak_rss_mb, provenance
from prefcap.reward.data import PreferencePair, pairs_from_rows, split_by_clip
from prefcap.reward.evaluate import preference_metrics
from prefcap.reward.features import pair_features
from prefcap.reward.model import RewardConfig, RewardModel
from prefcap.reward.recipes import audio_embeddings, train_from_store
from prefcap.reward.train import train_reward
from prefcap.rl.dpo import DPOConfig
from prefcap.rl.recipes import run_dpo, run_rl
from prefcap.rl.rewards import CaptionReward
from prefcap.rl.trainer import LOSS_VERSION, RLConfig
from prefcap.stages import run_stage

SIZES = {
    "tiny": {"general_clips": 96, "source_clips": 120, "target_clips": 120, "annotator_pairs": 200},
    "demo": {"general_clips": 2000, "source_clips": 2000, "target_clips": 1500, "annotator_pairs": 1000},
}
ENCODER_CONFIGS = {
    "tiny": EncoderTrainConfig(epochs=2, batch_size=16, audio_channels=(16, 16, 16, 16), text_hidden=32,
                               text_layers=1, projection_dim=64, vocab_size=400),
    "demo": EncoderTrainConfig(),
}
# (captioner size overrides, SFT config) per demo size
BASELINE = {
    "tiny": ({"d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64},
             SFTConfig(num_train_epochs=2, batch_size=16, eval_every=5)),
    "demo": ({}, SFTConfig(max_steps=900)),
}

# The judgment budget on the target `prefs` clips, over all preference rounds, and judgments per pair: 2,500 pairs
# × 3. With one round: 1,500 pairs of the baseline's own captions and 1,000 contrast pairs (a caption against a
# damaged copy of itself: prefs/perturb.py). With R rounds, round 1 takes FIRST_ROUND_SHARE of the pairs (the same
# mix) and the later rounds split the rest: pairs of the current RL policy's and its predecessor's captions, with
# LATER_CONTRAST_FRACTION of them contrast pairs of those captions.
PREFERENCES = {
    "tiny": (PairsConfig(num_pairs=80, batch_size=16, contrast_fraction=0.4), 3),
    "demo": (PairsConfig(num_pairs=2500, contrast_fraction=0.4), 3),
}
ROUNDS = 2
FIRST_ROUND_SHARE = 0.6
LATER_CONTRAST_FRACTION = 0.2

# the reward model RL uses: CLAP's text side fine-tuned with an interaction head beside the frozen audio embedding
# (settings chosen on the validation clips inside the training split: docs/results.md)
REWARD = {
    "tiny": RewardConfig(head="interaction", text_encoder="fine-tune", fluency_features=True, hidden=(32, 16),
                         epochs=2, patience=1),
    "demo": RewardConfig(head="interaction", text_encoder="fine-tune", fluency_features=True, hidden=(256, 64),
                         batch_size=32, epochs=24, patience=3, text_learning_rate=1e-4),
}
# the paper's model (frozen embeddings, [audio; text] MLP), always trained and scored beside it on the same split
PAPER_REWARD = {
    "tiny": RewardConfig(hidden=(32, 16), epochs=10),
    "demo": RewardConfig(),
}
PAPER_VARIANT = "paper head (mlp, frozen)"
# with --diagnostics: the frozen-embedding variants of the paper's head, a learning curve and ensemble uncertainty
DIAGNOSTIC_VARIANTS = {
    "interaction head": {"head": "interaction"},
    "fluency features": {"fluency_features": True},
    "ensemble of 5": {"ensemble": 5},
    "interaction + fluency + ensemble of 5": {"head": "interaction", "fluency_features": True, "ensemble": 5},
}

# RL on the target `rl` clips (audio only) against the reward model, and DPO on the stored judgments. max_steps
# is the total over all preference rounds (split evenly); each round keeps its best held-out evaluation
# (load_best_model_at_end) and stops on a collapse (collapse_guard).
RL = {
    "tiny": RLConfig(max_steps=4, batch_size=4, num_generations=2, max_new_tokens=16, eval_every=2, save_steps=2,
                     warmup_steps=0, load_best_model_at_end=True),
    # algorithm, beta and learning_rate chosen on the target val clips by the training panel
    # (experiments/tune_on_val.py; docs/results.md lists each setting and the figure it was chosen by)
    "demo": RLConfig(max_steps=600, batch_size=8, num_generations=8, algorithm="grpo", learning_rate=5e-5, beta=0.5,
                     clap_coef=3.0, min_words=11, repetition_coef=2.0, eval_every=25, load_best_model_at_end=True,
                     clip_relative_coef=1.0),
}
RL_EVAL_CLIPS = {"tiny": 8, "demo": 100}
DPO = {
    "tiny": DPOConfig(max_steps=3, batch_size=8, eval_every=2),
    "demo": DPOConfig(learning_rate=5e-5, beta=0.3),  # chosen on the target val clips, as RL's
}
# the systems the demo compares on the held-out target test clips, and which pairs the panels judge
# (rlhf: the policy of the round the select stage chose on `val`; rl/ is round 1's)
SYSTEMS = {"baseline": "captioner-baseline", "rlhf": "rl/captioner", "supervised": "supervised/captioner",
           "dpo": "dpo/captioner"}
# with --diagnostics, the decomposition of the gap to supervised (diagnostic systems, never the method): RL with the
# training panel's own noise-free score as the reward (what a perfect reward model would give), RL against the
# paper's frozen-embedding head trained on the same judgments, and supervised fine-tuning on the references of
# the first N `rl` clips (a learning curve; `supervised` is the one on all of them)
SUPERVISED_CURVE = {"tiny": (8, 16), "demo": (50, 100, 200)}
# A baseline that collapsed (a handful of distinct captions) starves everything after it: its source-test
# figures must stay within this band (measured on seeds 0-3: distinct 0.59-0.66, CIDEr-D 0.89-1.08; docs/results.md)
BASELINE_BAND = {"distinct_captions": 0.5, "cider_d": 0.8}
# an event class is rare when fewer than this share of `source` clips hold it (what the baseline learnt from)
RARE_SHARE = 0.05
COMPARISONS = (("rlhf", "baseline"), ("rlhf", "supervised"), ("supervised", "baseline"), ("dpo", "baseline"),
               ("rlhf", "dpo"))




def stage_names(config: DemoConfig) -> tuple[str, ...]:
    """Every stage of the demo, in the order it runs them."""
    later = [round_stage(kind, r) for r in range(2, config.rounds + 1) for kind in ("preferences", "reward", "rl")]
    decomposition = ["rlhf_oracle", "rlhf_paper", *(f"supervised_{n}" for n in SUPERVISED_CURVE[config.size]),
                     "decomposition_eval"] if config.decomposition else []
    return ("synth_general", "synth_source", "synth_target", "encoder_train", "encoder_eval", "annotator_checks",
            "baseline_train", "baseline_eval", "preferences", "reward", "rl", *later, "select", "supervised", "dpo",
            "eval", *decomposition)


def round_stage(kind: str, r: int) -> str:
    """A round's stage name: round 1's are plain ("rl"), later ones carry the round ("rl_round_2")."""
    return kind if r == 1 else f"{kind}_round_{r}"


def round_dir(out: Path, r: int) -> Path:
    """Where round r's prefs/, reward/ and rl/ live: the run folder for round 1, round-R/ after it."""
    return out if r == 1 else out / f"round-{r}"


def round_budgets(pairs: PairsConfig, rounds: int) -> list[PairsConfig]:
    """The pairs config of each round: one round spends the whole budget; with more, round 1 spends
    FIRST_ROUND_SHARE of it and the later rounds split the rest evenly (the total never changes)."""
    if rounds == 1:
        return [pairs]
    first = round(FIRST_ROUND_SHARE * pairs.num_pairs)
    later = [len(part) for part in np.array_split(np.arange(pairs.num_pairs - first), rounds - 1)]
    return [replace(pairs, num_pairs=first),
            *(replace(pairs, num_pairs=n, contrast_fraction=LATER_CONTRAST_FRACTION, seed=pairs.seed + 1000 * r)
              for r, n in enumerate(later, start=2))]


def round_steps(total: int, rounds: int) -> list[int]:
    """RL's optimizer steps per round: the total split evenly, so more rounds never mean more RL."""
    return [len(part) for part in np.array_split(np.arange(total), rounds)]


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    size: str = "demo"
    sample_rate: int = 16_000
    rounds: int = ROUNDS  # preference rounds: the judgment budget and RL's steps are split over them
    device: str = "auto"  # "auto" (a GPU when torch sees one), "cpu" or "cuda": every stage runs there
    diagnostics: bool = False  # also the reward-model variants, learning curve and ensemble uncertainty (slower)
    decomposition: bool = False  # also rlhf-oracle, rlhf-paper and the supervised learning curve (slower)

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise PrefcapError(f"unknown size {self.size!r}; expected one of {sorted(SIZES)}")
        if self.rounds < 1:
            raise PrefcapError(f"rounds must be at least 1, got {self.rounds}")
        if self.device not in DEVICES:
            raise PrefcapError(f"unknown device {self.device!r}; expected one of {', '.join(DEVICES)}")
        if min(round_steps(RL[self.size].max_steps, self.rounds)) < 1:
            raise PrefcapError(f"{self.rounds} rounds leave some round without an RL step "
                               f"({RL[self.size].max_steps} steps in all)")


class _StoppedAfter(Exception):
    """Raised after the stage `run_demo(until=...)` names: the run ends there."""


def run_demo(out: str | Path, config: DemoConfig, progress: bool = True, until: str | None = None) -> dict:
    """Every stage in order (each skipped when already built with the same key), then results.json and the
    report. `until` names a stage to stop after (e.g. "reward" to build the preference data and reward model
    before choosing RL settings on `val`): nothing is scored on test then, and the return value only lists the
    stage times."""
    if until is not None and until not in stage_names(config):
        raise PrefcapError(f"unknown stage {until!r}; expected one of {', '.join(stage_names(config))}")
    sizes = SIZES[config.size]
    device = resolve_device(config.device)  # not part of any stage's key: the results must not depend on it
    out = Path(out)
    timings: dict[str, float] = {}  # each stage's build time, whether built now or by an earlier run
    cached: list[str] = []  # the stages this run found finished and skipped
    peaks: list[float] = []  # each stage's peak memory, as built
    start = time.perf_counter()

    def stage(name: str, folder: Path, key: dict, build: Callable[[Path], None], inputs: Iterable[Path] = ()) -> None:
        done = run_stage(folder, key, build, inputs)
        timings[name] = done.seconds
        peaks.append(done.peak_rss_mb)
        if not done.ran:
            cached.append(name)
        if name == until:
            raise _StoppedAfter

    try:
        for domain in ("general", "source", "target"):
            synth = SynthConfig(n=sizes[f"{domain}_clips"], domain=domain, seed=config.seed,
                                sample_rate=config.sample_rate)
            stage(f"synth_{domain}", out / "data" / domain, asdict(synth),
                  lambda tmp, s=synth: synthesize(tmp, s, progress))

        target_clips = out / "data" / "target" / "clips.jsonl"
        general = out / "data" / "general"
        encoder_config = ENCODER_CONFIGS[config.size]

        def train_offline_clap(tmp: Path) -> None:
            clips = [c for c in read_clips(general / "clips.jsonl") if c.split == "train"]
            train_encoder(clips, read_captions(general / "captions.jsonl"), tmp, encoder_config, progress,
                          device=device)

        stage("encoder_train", out / "encoder", asdict(encoder_config), train_offline_clap,
              inputs=[general / "clips.jsonl", general / "captions.jsonl"])

        def evaluate_encoder(tmp: Path) -> None:
            encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
            test = [c for c in read_clips(target_clips) if c.split == "test"]
            references = {c.clip_id: c.text for c in reversed(read_captions(target_clips.with_name("captions.jsonl")))}
            audio = EmbeddingCache(out / "cache", encoder).embed_clips(test, progress=progress)
            recall = text_to_audio_recall(audio, encoder.embed_text([references[c.id] for c in test]))
            metrics = {"clips": len(test), "zero_shot_event_map": zero_shot_event_map(encoder, test, audio),
                       "text_to_audio": recall}
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))

        stage("encoder_eval", out / "encoder_eval", {"clips": "target-test"}, evaluate_encoder,
              inputs=[out / "encoder", target_clips])

        def check_annotators(tmp: Path) -> None:
            report = annotator_report(read_clips(target_clips), config.seed, sizes["annotator_pairs"])
            (tmp / "report.json").write_text(json.dumps(report, indent=2))

        stage("annotator_checks", out / "annotators",
              {"seed": config.seed, "pairs": sizes["annotator_pairs"], "listeners": panels.LISTENERS_VERSION},
              check_annotators, inputs=[target_clips])
        source = out / "data" / "source"
        captioner_size, sft_config = BASELINE[config.size]

        def train_baseline(tmp: Path) -> None:
            clips, captions = read_clips(source / "clips.jsonl"), read_captions(source / "captions.jsonl")
            train = [c for c in clips if c.split == "train"]
            train_ids = {c.id for c in train}
            captioner = new_captioner((c.text for c in captions if c.clip_id in train_ids), seed=config.seed,
                                      **captioner_size)
            train_captioner(captioner, train, captions, [c for c in clips if c.split == "val"], captions, tmp,
                            sft_config, progress, device=device)

        stage("baseline_train", out / "captioner-baseline",
              {"size": captioner_size, "sft": asdict(sft_config), "seed": config.seed},
              train_baseline, inputs=[source / "clips.jsonl", source / "captions.jsonl"])
        stage("baseline_eval", out / "baseline_eval", {"seed": config.seed, "listeners": panels.LISTENERS_VERSION},
              lambda tmp: evaluate_baseline(out, tmp, config.seed, progress, device),
              inputs=[out / "captioner-baseline", source / "clips.jsonl", target_clips])
        pairs_config, overlap = PREFERENCES[config.size]
        budgets = round_budgets(replace(pairs_config, seed=config.seed), config.rounds)
        prefs_clips = [c for c in read_clips(target_clips) if c.split == "prefs"]

        def collect_preferences(tmp: Path) -> None:
            captioner = load_captioner(out / "captioner-baseline", device=device)
            store = Store(tmp / "prefs.sqlite")
            pairs = build_pairs(store, {"baseline": captioner}, prefs_clips, budgets[0], progress=progress)
            judged = simulate(store, "train", seed=config.seed, overlap=overlap, progress=progress)
            write_preference_summary(store, tmp, {**pairs, **judged, "overlap": overlap})

        stage("preferences", out / "prefs", {"pairs": asdict(budgets[0]), "overlap": overlap, "panel": "train",
                                             "listeners": panels.LISTENERS_VERSION,
                                             "perturbations": PERTURBATIONS_VERSION},
              collect_preferences, inputs=[out / "captioner-baseline", target_clips])
        reward_config = replace(REWARD[config.size], seed=config.seed)
        variants = {PAPER_VARIANT: replace(PAPER_REWARD[config.size], seed=config.seed)}
        if config.diagnostics:
            variants |= {name: replace(variants[PAPER_VARIANT], **changes)
                         for name, changes in DIAGNOSTIC_VARIANTS.items()}
        stage("reward", out / "reward",
              {"reward": asdict(reward_config), "variants": {name: asdict(v) for name, v in variants.items()},
               "diagnostics": config.diagnostics, "adversarial": SUITE_VERSION,
               "uncertainty": {"ensemble": UNCERTAINTY_ENSEMBLE, "captions": UNCERTAINTY_CAPTIONS}},
              lambda tmp: train_demo_reward(out, tmp, reward_config, variants, config.diagnostics, progress, device),
              inputs=[out / "encoder", out / "prefs" / "prefs.sqlite", target_clips, source / "clips.jsonl",
                      *(out / "data" / domain / "captions.jsonl" for domain in ("target", "source"))])
        rl_config = replace(RL[config.size], seed=config.seed)
        rl_steps = round_steps(rl_config.max_steps, config.rounds)

        def align_with_rl(tmp: Path, r: int) -> None:
            encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
            start = out / "captioner-baseline" if r == 1 else round_dir(out, r - 1) / "rl" / "captioner"
            run_rl(start, round_dir(out, r) / "reward", encoder, target_clips, tmp,
                   replace(rl_config, max_steps=rl_steps[r - 1]), split="rl", eval_split="val",
                   eval_clips=RL_EVAL_CLIPS[config.size], cache_root=out / "cache",
                   reference=out / "captioner-baseline", progress=progress, device=device)

        def rl_stage(r: int) -> None:
            previous = [] if r == 1 else [round_dir(out, r - 1) / "rl"]
            stage(round_stage("rl", r), round_dir(out, r) / "rl",
                  {"rl": asdict(replace(rl_config, max_steps=rl_steps[r - 1])), "round": r,
                   "eval_clips": RL_EVAL_CLIPS[config.size], "loss": LOSS_VERSION},
                  lambda tmp: align_with_rl(tmp, r),
                  inputs=[out / "captioner-baseline", round_dir(out, r) / "reward", target_clips, *previous])

        rl_stage(1)
        for r in range(2, config.rounds + 1):
            here, before = round_dir(out, r), round_dir(out, r - 1)
            stage(round_stage("preferences", r), here / "prefs",
                  {"pairs": asdict(budgets[r - 1]), "overlap": overlap, "round": r, "panel": "train",
                   "listeners": panels.LISTENERS_VERSION, "perturbations": PERTURBATIONS_VERSION},
                  lambda tmp, r=r: collect_round_preferences(out, tmp, r, budgets[r - 1], overlap, prefs_clips,
                                                             config.seed, progress, device),
                  inputs=[out / "captioner-baseline", before / "prefs" / "prefs.sqlite", before / "rl", target_clips])
            stage(round_stage("reward", r), here / "reward", {"reward": asdict(reward_config), "round": r},
                  lambda tmp, r=r: train_round_reward(out, tmp, r, reward_config, progress, device),
                  inputs=[out / "encoder", here / "prefs" / "prefs.sqlite", before / "prefs" / "prefs.sqlite",
                          before / "reward", target_clips])
            rl_stage(r)
        final_reward = round_dir(out, config.rounds) / "reward"
        policies = [round_dir(out, r) / "rl" for r in range(1, config.rounds + 1)]
        stage("select", out / "rlhf", {"rl": asdict(rl_config), "rounds": config.rounds, "clips": "val"},
              lambda tmp: select_policy(out, tmp, config.rounds, final_reward, rl_config, progress, device),
              inputs=[final_reward, target_clips, *policies])
        selected = json.loads((out / "rlhf" / "selection.json").read_text())["selected"]
        rl_steps_taken = sum(json.loads((folder / "rl_metrics.json").read_text())["steps"] for folder in policies)
        # The paper's comparison: the baseline fine-tuned on the ground-truth references of the same target clips
        # RL trains on, with the baseline's SFT recipe and as many optimizer steps as RL took over all rounds
        # (its checkpoint chosen by the validation loss on the target `val` clips, as RL's by the reward on `val`).
        supervised_config = replace(sft_config, max_steps=rl_steps_taken, seed=config.seed)

        def train_supervised(tmp: Path) -> None:
            clips, captions = read_clips(target_clips), read_captions(target_clips.with_name("captions.jsonl"))
            train_captioner(load_captioner(out / "captioner-baseline", device=device),
                            [c for c in clips if c.split == "rl"], captions, [c for c in clips if c.split == "val"],
                            captions, tmp / "captioner", supervised_config, progress, device=device)

        stage("supervised", out / "supervised", {"sft": asdict(supervised_config)}, train_supervised,
              inputs=[out / "captioner-baseline", target_clips, target_clips.with_name("captions.jsonl")])
        dpo_config = replace(DPO[config.size], seed=config.seed)
        final_store = round_dir(out, config.rounds) / "prefs" / "prefs.sqlite"

        def align_with_dpo(tmp: Path) -> None:  # on every judgment of every round: the same budget as RLHF
            store = Store(final_store, create=False)
            run_dpo(out / "captioner-baseline", store, tmp / "captioner", dpo_config, progress=progress, device=device)
            store.close()

        stage("dpo", out / "dpo", {"dpo": asdict(dpo_config)}, align_with_dpo,
              inputs=[out / "captioner-baseline", final_store])
        systems = {**SYSTEMS, "rlhf": f"{selected}/captioner"}
        rounds = {f"rlhf-round-{r}": str(folder.relative_to(out) / "captioner")
                  for r, folder in enumerate(policies, start=1)}
        stage("eval", out / "eval",
              {"systems": systems, "rounds": rounds, "comparisons": COMPARISONS, "seed": config.seed,
               "ranking": "eval panel", "listeners": panels.LISTENERS_VERSION, "rare_share": RARE_SHARE},
              lambda tmp: evaluate_demo_systems(out, tmp, systems, rounds, final_reward, config.seed, progress, device),
              inputs=[out / "encoder", final_reward, target_clips, *(out / folder for folder in systems.values()),
                      *(out / folder for folder in rounds.values())])
        if config.decomposition:  # the gap to supervised taken apart: diagnostic systems, not the method
            whole = replace(rl_config, max_steps=rl_steps_taken)
            diagnostics = out / "decomposition"
            stage("rlhf_oracle", diagnostics / "rlhf-oracle", {"rl": asdict(whole), "panel": "train",
                                                               "listeners": panels.LISTENERS_VERSION},
                  lambda tmp: align_with_oracle(out, tmp, whole, final_reward, RL_EVAL_CLIPS[config.size],
                                                config.seed, progress, device),
                  inputs=[out / "captioner-baseline", final_reward, target_clips])
            paper = replace(PAPER_REWARD[config.size], seed=config.seed)
            stage("rlhf_paper", diagnostics / "rlhf-paper", {"rl": asdict(whole), "reward": asdict(paper)},
                  lambda tmp: align_with_paper_head(out, tmp, whole, paper, final_store, RL_EVAL_CLIPS[config.size],
                                                    progress, device),
                  inputs=[out / "captioner-baseline", final_store, target_clips])
            for n in SUPERVISED_CURVE[config.size]:
                stage(f"supervised_{n}", diagnostics / f"supervised-{n}",
                      {"sft": asdict(supervised_config), "clips": n},
                      lambda tmp, n=n: train_supervised_on(out, tmp, n, supervised_config, config.seed, progress,
                                                           device),
                      inputs=[out / "captioner-baseline", target_clips, target_clips.with_name("captions.jsonl")])
            curve = SUPERVISED_CURVE[config.size]
            stage("decomposition_eval", diagnostics / "eval", {"seed": config.seed, "curve": curve,
                                                             "listeners": panels.LISTENERS_VERSION},
                  lambda tmp: evaluate_diagnostics(out, tmp, curve, config.seed, progress, device),
                  inputs=[out / "eval", *(diagnostics / name for name in diagnostic_systems(curve))])
    except _StoppedAfter:
        return {"stopped_after": until, "timings_s": timings}
    timings["total"] = sum(timings.values())
    this_run = time.perf_counter() - start

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


def evaluate_baseline(out: Path, tmp: Path, seed: int, progress: bool, device: str) -> None:
    """The baseline on held-out source and target clips: caption metrics, how the simulated annotators rate
    its captions against target references, and how much they agree on pairs of its own sampled captions."""
    captioner = load_captioner(out / "captioner-baseline", device=device)
    metrics: dict = {}
    judges = {name: panels.build(name, seed) for name in panels.PANELS}
    rng = np.random.default_rng(seed)
    for domain in ("source", "target"):
        folder = out / "data" / domain
        test = [c for c in read_clips(folder / "clips.jsonl") if c.split == "test"]
        references: dict[str, list[str]] = {}
        for caption in read_captions(folder / "captions.jsonl"):
            references.setdefault(caption.clip_id, []).append(caption.text)
        captions, _ = caption_clips(captioner, test, "baseline", decoding=Decoding(mode="greedy"), progress=progress)
        write_jsonl(tmp / f"captions-{domain}-test.jsonl", captions)
        greedy = [caption.text for caption in captions]
        scores = compute_metrics({c.id: t for c, t in zip(test, greedy, strict=True)},
                                 {c.id: references[c.id] for c in test}, spice=False)
        # a reference vs the baseline's caption, judged by each panel's majority (ties reported, not counted)
        verdicts = {}
        for name, panel in judges.items():
            outcomes = [panel.majority(clip, references[clip.id][int(rng.integers(5))], caption)
                        for clip, caption in zip(test, greedy, strict=True)]
            wins, losses = outcomes.count("a"), outcomes.count("b")
            verdicts[name] = {"reference_wins": wins, "baseline_wins": losses, "ties": outcomes.count("tie"),
                              "reference_win_rate": wins / max(1, wins + losses)}
        metrics[domain] = {"clips": len(test), "metrics": scores, "reference_vs_baseline": verdicts}
        if domain == "target":
            sampled, _ = caption_clips(captioner, test, "baseline", n=2, progress=progress,
                                       decoding=Decoding(mode="sample", temperature=1.0))
            pairs = [(clip, sampled[2 * k].text, sampled[2 * k + 1].text) for k, clip in enumerate(test)
                     if sampled[2 * k].text != sampled[2 * k + 1].text]
            metrics["annotator_agreement_on_baseline_samples"] = {
                "pairs": len(pairs), **{name: pairwise_agreement(p.annotators, pairs) for name, p in judges.items()}}
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))


UNCERTAINTY_ENSEMBLE = "ensemble of 5"  # the variant whose spread the demo measures
UNCERTAINTY_CAPTIONS = 5  # the references of each clip: the same kind of caption for every group of clips


def ensemble_uncertainty(out: Path, ensemble: RewardModel, encoder: ClapEncoder,
                         trained_on: list[Clip]) -> dict[str, dict]:
    """Where an ensemble trained on the target `prefs` clips is unsure: its mean group-relative spread
    (`RewardModel.rewards`) over the reference captions of the clips it trained on, held-out target clips,
    held-out target clips whose event combination it never saw, and source-domain clips. Scoring the same kind
    of caption everywhere leaves the clips as the only difference. With a 95 % clip-bootstrap interval; the raw
    spread, which also counts each head's free per-clip constant, is shown beside it."""
    references: dict[str, list[str]] = {}
    clips: dict[str, list[Clip]] = {}
    for domain in ("target", "source"):
        for caption in read_captions(out / "data" / domain / "captions.jsonl"):
            references.setdefault(caption.clip_id, []).append(caption.text)
        clips[domain] = [c for c in read_clips(out / "data" / domain / "clips.jsonl") if c.split == "test"]
    seen_events = {frozenset(scene_of(clip).classes) for clip in trained_on}
    groups = {
        "target clips it trained on": trained_on,
        "held-out target clips": clips["target"],
        "held-out target clips, unseen event combinations": [
            c for c in clips["target"] if frozenset(scene_of(c).classes) not in seen_events],
        "source-domain clips": clips["source"],
    }
    cache = EmbeddingCache(out / "cache", encoder)
    rng = np.random.default_rng(0)
    spread = {}
    for name, group in groups.items():
        if not group:
            spread[name] = {"clips": 0, "relative": None, "relative_ci": None, "raw": None}
            continue
        audio = cache.embed_clips(group, progress=False).repeat_interleave(UNCERTAINTY_CAPTIONS, dim=0)
        texts = [text for clip in group for text in references[clip.id][:UNCERTAINTY_CAPTIONS]]
        text, no_extra = encoder.embed_text(texts), torch.zeros(len(texts), 0)
        relative = ensemble.rewards(audio, text, no_extra, UNCERTAINTY_CAPTIONS, captions=texts)[1]
        per_clip = relative.reshape(len(group), UNCERTAINTY_CAPTIONS).mean(dim=1).numpy()
        resampled = rng.choice(per_clip, (1000, len(per_clip))).mean(axis=1)  # clip bootstrap
        spread[name] = {"clips": len(group), "relative": float(per_clip.mean()),
                        "relative_ci": [float(np.quantile(resampled, 0.025)), float(np.quantile(resampled, 0.975))],
                        "raw": float(ensemble.rewards(audio, text, no_extra, captions=texts)[1].mean())}
    return spread


def train_demo_reward(out: Path, tmp: Path, config: RewardConfig, variants: dict[str, RewardConfig],
                      diagnostics: bool, progress: bool, device: str) -> None:
    """The reward model RL uses, on the simulated judgments of the `prefs` clips (a fixed clip-grouped 20 % held
    out), and the variants on the same split: held-out metrics of each on all held-out pairs and on the pairs of
    the baseline's own captions, the training panel's noise-free ceiling on both, and each model's accuracy on
    every kind of the adversarial suite (careful caption vs adversarial caption, held-out target test clips)."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    store = Store(out / "prefs" / "prefs.sqlite", create=False)
    cache = out / "cache"
    metrics = train_from_store(store, encoder, tmp, config, cache_root=cache, curve=diagnostics, progress=progress)
    pairs = pairs_from_rows(store.judgment_rows())
    train, test = split_by_clip(pairs, 0.2, seed=config.seed)  # the split train_from_store used
    sampled_rows = [k for k, p in enumerate(test) if p.category not in PERTURBATIONS]  # own captions, no contrast
    sampled = [test[k] for k in sampled_rows]
    audio = audio_embeddings(store, encoder, [p.clip_id for p in pairs], cache, progress)
    models = {"default": RewardModel.load(tmp, encoder=encoder)}
    train_features = pair_features(train, encoder, audio=audio, fluency=True)
    for name, variant in variants.items():
        models[name] = train_reward(train, train_features.for_model(variant.fluency_features), variant, encoder.id,
                                    progress=False, encoder=encoder)
        models[name].save(tmp / "variants" / variant_slug(name))  # for `make bench` and a second look
    test_features = pair_features(test, encoder, audio=audio, fluency=True)  # one pass serves every model
    heldout, heldout_sampled = {}, {}
    for name, model in models.items():
        probability = model.preference(test_features.for_model(model.config.fluency_features)).numpy()
        plot = tmp / f"reliability-{variant_slug(name)}.png" if name in variants else None
        heldout[name] = preference_metrics(probability, test, plot=plot)
        heldout_sampled[name] = preference_metrics(probability[sampled_rows], sampled)
    test_clips = [c for c in read_clips(out / "data" / "target" / "clips.jsonl") if c.split == "test"]
    adversarial = adversarial_accuracy(models, encoder, test_clips, cache, seed=config.seed)
    ceiling = {}
    for name, subset in (("all", test), ("sampled", sampled)):
        labelled = [p for p in subset if p.label != 0]
        ceiling[name] = panel_accuracy(panels.build("train", config.seed),
                                       [(store.clip(p.clip_id), p.caption_a, p.caption_b) for p in labelled],
                                       [p.label for p in labelled])
    uncertainty = None
    if UNCERTAINTY_ENSEMBLE in models:
        trained_on = [store.clip(clip_id) for clip_id in sorted({p.clip_id for p in train})]
        uncertainty = ensemble_uncertainty(out, models[UNCERTAINTY_ENSEMBLE], encoder, trained_on)
    store.close()
    (tmp / "demo_metrics.json").write_text(json.dumps(
        {**metrics, "judge_ceiling": ceiling["all"], "judge_ceiling_sampled": ceiling["sampled"],
         "heldout_sampled": heldout_sampled["default"],
         "variants": {name: heldout[name] for name in variants},
         "variants_sampled": {name: heldout_sampled[name] for name in variants},
         "adversarial": adversarial, "ensemble_uncertainty": uncertainty}, indent=2, default=float))


def adversarial_accuracy(models: dict[str, RewardModel], encoder: ClapEncoder, clips: list[Clip],
                         cache: Path, seed: int) -> dict[str, dict[str, float]]:
    """{model: {kind: share of the adversarial suite's pairs of that kind where the model scores the careful
    caption above the adversarial one}} on `clips`."""
    rows = adversarial_pairs(clips, seed=seed)
    vectors = EmbeddingCache(cache, encoder).embed_clips(clips, progress=False)
    audio = dict(zip((c.id for c in clips), vectors, strict=True))
    pairs = [PreferencePair(row["clip_id"], row["better"], row["worse"], 1, 0, 0, row["kind"]) for row in rows]
    kinds = sorted({row["kind"] for row in rows})
    features = pair_features(pairs, encoder, audio=audio, fluency=True)
    result = {}
    for name, model in models.items():
        correct = model.preference(features.for_model(model.config.fluency_features)).numpy() > 0.5
        result[name] = {kind: float(np.mean([c for c, p in zip(correct, pairs, strict=True) if p.category == kind]))
                        for kind in kinds}
    return result


def variant_slug(name: str) -> str:
    """A variant's folder name under reward/variants/ ("paper head (mlp, frozen)" -> "paper-head-mlp-frozen")."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def evaluate_demo_systems(out: Path, tmp: Path, systems: dict[str, str], rounds: dict[str, str], reward_dir: Path,
                          seed: int, progress: bool, device: str) -> None:
    """Every system's greedy captions of the held-out target test clips: metrics against the target references
    (never seen by RL), reward (the last round's model) and CLAP scores, blind pairwise verdicts of both simulated
    panels — the evaluation panel decides; the training panel is shown beside it — and the share of each clip's
    sounds each system names (rare and common classes apart). Each round's policy is judged against the baseline
    by the evaluation panel once, here, for the record: nothing is chosen by it."""
    clips = [c for c in read_clips(out / "data" / "target" / "clips.jsonl") if c.split == "test"]
    references: dict[str, list[str]] = {}
    for caption in read_captions(out / "data" / "target" / "captions.jsonl"):
        references.setdefault(caption.clip_id, []).append(caption.text)
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    audio = EmbeddingCache(out / "cache", encoder).embed_clips(clips, progress=False)
    reward = RewardModel.load(reward_dir, encoder=encoder)
    captions: dict[str, dict[str, str]] = {}
    scores = {}
    for name, folder in {**systems, **rounds}.items():
        written, _ = caption_clips(load_captioner(out / folder, device=device), clips, name,
                                   decoding=Decoding(mode="greedy"), progress=progress)
        write_jsonl(tmp / f"captions-{name}.jsonl", written)
        captions[name] = {c.clip_id: c.text for c in written}
        if name in systems:
            scores[name] = system_scores(clips, captions[name], references, encoder, audio, reward)
    outputs = {name: captions[name] for name in systems}
    built = {name: panels.build(name, seed) for name in ("eval", "train")}
    pairwise, ranking = compare_systems(clips, outputs, COMPARISONS, {n: p.majority for n, p in built.items()},
                                        seed=seed)
    per_round = [summarise(clip_outcomes(clips, captions[name], captions["baseline"], built["eval"].majority, seed),
                           a=name, b="baseline", judge_name="eval") for name in rounds]
    judges = {"system_outputs": panel_independence(built["train"], built["eval"],
                                                   system_output_pairs(clips, outputs, COMPARISONS), examples=5),
              "exploit_rates": {name: exploit_rates(clips, texts) for name, texts in outputs.items()}}
    source = read_clips(out / "data" / "source" / "clips.jsonl")
    rare = rare_classes(source, RARE_SHARE)
    named = {name: events_named(clips, texts, rare) for name, texts in outputs.items()}
    named["references"] = events_named(clips, {c.id: references[c.id][0] for c in clips}, rare)
    (tmp / "metrics.json").write_text(json.dumps(
        {"clips": len(clips), "systems": scores, "pairwise": pairwise, "ranking": ranking, "judges": judges,
         "rounds": per_round, "events_named": {"rare_classes": sorted(rare), "rare_share": RARE_SHARE,
                                               "systems": named}}, indent=2))


def baseline_health(out: Path) -> dict:
    """The baseline's share of distinct greedy captions and its CIDEr-D on the source test clips, against
    BASELINE_BAND: the summary says so when a seed's baseline falls outside it."""
    captions = [c.text for c in read_captions(out / "baseline_eval" / "captions-source-test.jsonl")]
    source = json.loads((out / "baseline_eval" / "metrics.json").read_text())["source"]
    health = {"distinct_captions": len(set(captions)) / len(captions), "cider_d": source["metrics"]["cider_d"]}
    return {**health, "band": BASELINE_BAND,
            "within_band": all(health[name] >= floor for name, floor in BASELINE_BAND.items())}


def write_preference_summary(store: Store, tmp: Path, counts: dict) -> None:
    """summary.json of a preference stage: its counts and the agreement of every judgment in the store so far."""
    quality = agreement_report(store.judgment_rows())
    store.close()
    summary = {**counts, "fleiss_kappa": quality["fleiss_kappa"],
               "mean_cohen_kappa": float(np.mean([a["mean_cohen_kappa"] for a in quality["annotators"]]))}
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2))


def round_policy_name(out: Path, r: int) -> tuple[str, Path]:
    """(system name, captioner folder) of the policy round r leaves: the baseline for r = 0."""
    if r == 0:
        return "baseline", out / "captioner-baseline"
    return f"rlhf-round-{r}", round_dir(out, r) / "rl" / "captioner"


def collect_round_preferences(out: Path, tmp: Path, r: int, pairs_config: PairsConfig, overlap: int,
                              clips: list[Clip], seed: int, progress: bool, device: str) -> None:
    """Round r's judgments: every earlier judgment (the previous store, copied whole), then pairs of the captions
    of the policy round r − 1 left and of its predecessor on the same `prefs` clips — within one policy and across
    the two — judged by the training panel through the store, as in round 1."""
    copy_store(round_dir(out, r - 1) / "prefs" / "prefs.sqlite", tmp / "prefs.sqlite")
    captioners = dict(round_policy_name(out, k) for k in (r - 1, r - 2))
    store = Store(tmp / "prefs.sqlite", create=False)
    pairs = build_pairs(store, {name: load_captioner(folder, device=device) for name, folder in captioners.items()},
                        clips, pairs_config, progress=progress)
    judged = simulate(store, "train", seed=seed, overlap=overlap, progress=progress)
    write_preference_summary(store, tmp, {**pairs, **judged, "overlap": overlap, "round": r,
                                          "systems": list(captioners)})


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite judgment store (the backup API: the write-ahead log included)."""
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    original.close()
    copy.close()


def pair_key(pair: PreferencePair) -> tuple[str, str, str]:
    return (pair.clip_id, *sorted((pair.caption_a, pair.caption_b)))


def train_round_reward(out: Path, tmp: Path, r: int, config: RewardConfig, progress: bool, device: str) -> None:
    """Round r's reward model, trained on every judgment so far (the clip-grouped split of round 1, since the
    clips are the same), and how well it and round r − 1's model order the round's new pairs on held-out clips:
    what the update taught about the policy's own captions."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    store = Store(round_dir(out, r) / "prefs" / "prefs.sqlite", create=False)
    metrics = train_from_store(store, encoder, tmp, config, cache_root=out / "cache", progress=progress)
    previous = Store(round_dir(out, r - 1) / "prefs" / "prefs.sqlite", create=False)
    seen = {pair_key(p) for p in pairs_from_rows(previous.judgment_rows())}
    previous.close()
    held_out = (set(json.loads((tmp / "split.json").read_text())["test_clips"])
                & set(json.loads((round_dir(out, r - 1) / "reward" / "split.json").read_text())["test_clips"]))
    new = [p for p in pairs_from_rows(store.judgment_rows()) if pair_key(p) not in seen and p.clip_id in held_out]
    accuracy = {"before": None, "after": None}  # None: no new pair fell on a held-out clip
    if new:
        audio = audio_embeddings(store, encoder, [p.clip_id for p in new], out / "cache", progress=False)
        features = pair_features(new, encoder, audio=audio, fluency=True)
        for when, folder in (("before", round_dir(out, r - 1) / "reward"), ("after", tmp)):
            model = RewardModel.load(folder, encoder=encoder)
            probability = model.preference(features.for_model(model.config.fluency_features)).numpy()
            accuracy[when] = preference_metrics(probability, new)["accuracy"]
    store.close()
    (tmp / "round.json").write_text(json.dumps(
        {"round": r, "train_pairs": metrics["train_pairs"], "heldout_accuracy_all": metrics["heldout"]["accuracy"],
         "new_heldout_pairs": len(new), "new_heldout_accuracy_before": accuracy["before"],
         "new_heldout_accuracy_after": accuracy["after"]}, indent=2))


def select_policy(out: Path, tmp: Path, rounds: int, reward_dir: Path, terms: RLConfig, progress: bool,
                  device: str) -> None:
    """RLHF's final checkpoint, chosen among the rounds' policies by the last round's reward (its guards included)
    on the greedy captions of every target `val` clip — never by a panel or on test — as supervised fine-tuning's
    is chosen by its validation loss."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    target = read_clips(out / "data" / "target" / "clips.jsonl")
    clips = [c for c in target if c.split == "val"]
    cache = EmbeddingCache(out / "cache", encoder)
    reward = CaptionReward(RewardModel.load(reward_dir, encoder=encoder), encoder, terms,
                           clip_pool=cache.embed_clips([c for c in target if c.split == "rl"], progress=False))
    audio = cache.embed_clips(clips, progress=False)
    scores = {}
    for r in range(1, rounds + 1):
        name, folder = round_policy_name(out, r)
        written, _ = caption_clips(load_captioner(folder, device=device), clips, name,
                                   decoding=Decoding(mode="greedy"), progress=progress)
        texts = [c.text for c in written]
        total, parts = reward(audio, texts, torch.zeros(len(texts), dtype=torch.bool))
        scores[str(folder.parent.relative_to(out))] = {"round": r, "reward": float(total.mean()),
                                                       "rm": float(parts["rm"].mean())}
    selected = max(scores, key=lambda folder: scores[folder]["reward"])
    (tmp / "selection.json").write_text(json.dumps({"selected": selected, "clips": len(clips), "scores": scores},
                                                   indent=2))


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


def summary_table(results: dict) -> str:
    """The plain-text table printed at the end of a demo."""
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
    return "\n".join(lines)


class PanelReward(CaptionReward):
    """rlhf-oracle's reward (a diagnostic): the training panel's own noise-free score of a caption for its clip —
    each annotator's quality over their noise temperature, the scale of a Bradley–Terry logit, averaged — in place
    of the reward model's, times `scale`, with every other term (CLAP, guards) as RL has them. What RL reaches with
    it bounds what a better reward model could give; the rest of the gap to supervised is RL's and exploration's."""

    def __init__(self, panel: Panel, clips: dict[str, Clip], encoder: ClapEncoder, terms: RLConfig,
                 scale: float = 1.0) -> None:
        self.panel, self.clips, self.scale = panel, clips, scale
        self.model, self.encoder, self.terms, self.labelled_max = None, encoder, terms, None

    def panel_scores(self, captions: Sequence[str], clip_ids: Sequence[str]) -> torch.Tensor:
        return torch.tensor([np.mean([a.listener.quality(caption, self.clips[clip_id], a.weights) / a.temperature
                                      for a in self.panel.annotators])
                             for caption, clip_id in zip(captions, clip_ids, strict=True)], dtype=torch.float32)

    def preference_scores(self, audio: torch.Tensor, text: torch.Tensor, captions: Sequence[str],
                          clip_ids: Sequence[str] | None,
                          group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the panel's scaled score, no spread, no caption prior: the panel's score is already the clip's)."""
        if clip_ids is None:
            raise PrefcapError("the panel's score needs the clip of every caption")
        none = torch.zeros(len(captions))
        return self.scale * self.panel_scores(captions, clip_ids), none, none


def align_with_oracle(out: Path, tmp: Path, config: RLConfig, reward_dir: Path, eval_clips: int, seed: int,
                      progress: bool, device: str) -> None:
    """rlhf-oracle: RL from the baseline for all of RLHF's steps with PanelReward, scaled so that its spread over
    the baseline's greedy captions of the `val` clips is the last reward model's there (the other terms then weigh
    what they weigh in RLHF)."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    target = out / "data" / "target" / "clips.jsonl"
    clips = read_clips(target)
    val = [c for c in clips if c.split == "val"]
    written, _ = caption_clips(load_captioner(out / "captioner-baseline", device=device), val, "baseline",
                               decoding=Decoding(mode="greedy"), progress=False)
    texts = [c.text for c in written]
    cache = EmbeddingCache(out / "cache", encoder)
    model = CaptionReward(RewardModel.load(reward_dir, encoder=encoder), encoder, config,
                          clip_pool=cache.embed_clips([c for c in clips if c.split == "rl"], progress=False))
    audio = cache.embed_clips(val, progress=False)
    learned = model.preference_scores(audio, encoder.embed_text(texts), texts, None, 1)[0]
    oracle = PanelReward(panels.build("train", seed), {c.id: c for c in clips}, encoder, config)
    scale = float(learned.std() / oracle.panel_scores(texts, [c.clip_id for c in written]).std())
    oracle.scale = scale
    run_rl(out / "captioner-baseline", oracle, encoder, target, tmp / "rl", config, split="rl", eval_split="val",
           eval_clips=eval_clips, cache_root=out / "cache", progress=progress, device=device)
    (tmp / "oracle.json").write_text(json.dumps({"scale": scale, "scaled_on": len(texts)}, indent=2))


def align_with_paper_head(out: Path, tmp: Path, config: RLConfig, paper: RewardConfig, store_file: Path,
                          eval_clips: int, progress: bool, device: str) -> None:
    """rlhf-paper: the paper's head (frozen CLAP embeddings, [audio; text] MLP) trained on every judgment of every
    round, then RL from the baseline against it for all of RLHF's steps (one round: it never sees its own
    policy's captions judged)."""
    encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
    store = Store(store_file, create=False)
    train_from_store(store, encoder, tmp / "reward", paper, cache_root=out / "cache", progress=progress)
    store.close()
    run_rl(out / "captioner-baseline", tmp / "reward", encoder, out / "data" / "target" / "clips.jsonl", tmp / "rl",
           config, split="rl", eval_split="val", eval_clips=eval_clips, cache_root=out / "cache", progress=progress,
           device=device)


def train_supervised_on(out: Path, tmp: Path, n: int, config: SFTConfig, seed: int, progress: bool,
                        device: str) -> None:
    """`supervised` on the references of n `rl` clips (drawn with the seed): one point of the learning curve."""
    target = out / "data" / "target"
    clips = read_clips(target / "clips.jsonl")
    pool = [c for c in clips if c.split == "rl"]
    chosen = [pool[k] for k in sorted(np.random.default_rng([seed, n]).choice(len(pool), n, replace=False))]
    captions = read_captions(target / "captions.jsonl")
    train_captioner(load_captioner(out / "captioner-baseline", device=device), chosen, captions,
                    [c for c in clips if c.split == "val"], captions, tmp / "captioner", config, progress,
                    device=device)


def diagnostic_systems(curve: Sequence[int]) -> dict[str, str]:
    """{diagnostic system: its captioner's folder under decomposition/<system>/}."""
    return {"rlhf-oracle": "rl/captioner", "rlhf-paper": "rl/captioner",
            **{f"supervised-{n}": "captioner" for n in curve}}


def evaluate_diagnostics(out: Path, tmp: Path, curve: Sequence[int], seed: int, progress: bool,
                         device: str) -> None:
    """The diagnostic systems on the test clips, by the evaluation panel: each against the baseline, against
    `supervised` and against RLHF, with their CIDEr-D and the sounds they name — and the supervised learning curve,
    so that RLHF's judgments can be set against a number of reference-captioned clips."""
    clips = [c for c in read_clips(out / "data" / "target" / "clips.jsonl") if c.split == "test"]
    judge = panels.build("eval", seed).majority
    named = json.loads((out / "eval" / "metrics.json").read_text())["events_named"]
    references: dict[str, list[str]] = {}
    for caption in read_captions(out / "data" / "target" / "captions.jsonl"):
        references.setdefault(caption.clip_id, []).append(caption.text)
    shown = {name: {c.clip_id: c.text for c in read_captions(out / "eval" / f"captions-{name}.jsonl")}
             for name in ("baseline", "rlhf", "supervised")}
    systems = {}
    for name, folder in diagnostic_systems(curve).items():
        written, _ = caption_clips(load_captioner(out / "decomposition" / name / folder, device=device), clips, name,
                                   decoding=Decoding(mode="greedy"), progress=progress)
        write_jsonl(tmp / f"captions-{name}.jsonl", written)
        texts = {c.clip_id: c.text for c in written}
        verdicts = {f"vs_{other}": summarise(clip_outcomes(clips, texts, shown[other], judge, seed), a=name, b=other,
                                             judge_name="eval") for other in shown}
        metrics = compute_metrics(texts, {c.id: references[c.id] for c in clips}, spice=False)
        systems[name] = {**verdicts, "cider_d": metrics["cider_d"], "mean_words": metrics["mean_words"],
                         "events_named": events_named(clips, texts, set(named["rare_classes"]))}
    points = [{"clips": n, **systems[f"supervised-{n}"]} for n in curve]
    (tmp / "metrics.json").write_text(json.dumps({"systems": systems, "supervised_curve": points}, indent=2))
