"""The demo's orchestrator: `run_demo` runs the stages (listed in the package docstring) in order, each cached in
the run folder under a key of its inputs, and writes `results.json` and `report.html`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from prefcap.captioners.load import load_captioner
from prefcap.captioners.sft import new_captioner, train_captioner
from prefcap.data.records import Clip, read_captions, read_clips
from prefcap.demo.decomposition import (
    align_with_oracle,
    align_with_paper_head,
    diagnostic_systems,
    evaluate_diagnostics,
    train_supervised_on,
)
from prefcap.demo.eval_stages import COMPARISONS, RARE_SHARE, SYSTEMS, evaluate_baseline, evaluate_demo_systems
from prefcap.demo.results import write_results
from prefcap.demo.reward import train_demo_reward, train_round_reward
from prefcap.demo.rounds import (
    ROUNDS,
    collect_round_preferences,
    round_budgets,
    round_dir,
    round_stage,
    round_steps,
    select_policy,
    write_preference_summary,
)
from prefcap.demo.sizes import DemoSize, demo_size
from prefcap.devices import DEVICES, resolve_device
from prefcap.encoders.cache import EmbeddingCache
from prefcap.encoders.clap import ClapEncoder
from prefcap.encoders.train import train_encoder
from prefcap.encoders.zero_shot import text_to_audio_recall, zero_shot_event_map
from prefcap.errors import PrefcapError
from prefcap.prefs.pairs import build_pairs
from prefcap.prefs.perturb import PERTURBATIONS_VERSION
from prefcap.prefs.simulate import simulate
from prefcap.prefs.store import Store
from prefcap.reward.variants import DIAGNOSTIC_VARIANTS, PAPER_VARIANT, UNCERTAINTY_CAPTIONS, UNCERTAINTY_ENSEMBLE
from prefcap.rl.jobs import run_dpo, run_rl
from prefcap.rl.trainer import LOSS_VERSION
from prefcap.stages import run_stage
from prefcap.synth import panels
from prefcap.synth.adversarial import SUITE_VERSION
from prefcap.synth.agreement import annotator_report
from prefcap.synth.corpus import SynthConfig, synthesize


@dataclass(frozen=True)
class DemoConfig:
    seed: int = field(default=0, metadata={"help": "the run's seed: corpora, models, panels and splits follow it"})
    size: str = field(default="demo", metadata={
        "help": "tiny, demo (demo/sizes/<size>.yaml) or a recipe file of the same shape (--config)"})
    sample_rate: int = field(default=16_000, metadata={"help": "sample rate of the synthetic corpora (Hz)"})
    rounds: int = field(default=ROUNDS, metadata={
        "help": "preference rounds: the judgment budget and RL's steps are split over them"})
    device: str = field(default="auto", metadata={
        "help": "auto (a GPU when torch sees one), cpu or cuda: every stage runs there"})
    diagnostics: bool = field(default=False, metadata={
        "help": "also the reward-model variants, learning curve and ensemble uncertainty (slower)"})
    decomposition: bool = field(default=False, metadata={
        "help": "also rlhf-oracle, rlhf-paper and the supervised learning curve (slower)"})

    def __post_init__(self) -> None:
        size = demo_size(self.size)  # an unknown size or a bad recipe file is refused here
        if self.rounds < 1:
            raise PrefcapError(f"rounds must be at least 1, got {self.rounds}")
        if self.device not in DEVICES:
            raise PrefcapError(f"unknown device {self.device!r}; expected one of {', '.join(DEVICES)}")
        if min(round_steps(size.rl.max_steps, self.rounds)) < 1:
            raise PrefcapError(f"{self.rounds} rounds leave some round without an RL step "
                               f"({size.rl.max_steps} steps in all)")


def stage_names(config: DemoConfig) -> tuple[str, ...]:
    """Every stage of the demo, in the order it runs them."""
    later = [round_stage(kind, r) for r in range(2, config.rounds + 1) for kind in ("preferences", "reward", "rl")]
    decomposition = ["rlhf_oracle", "rlhf_paper",
                     *(f"supervised_{n}" for n in demo_size(config.size).supervised_curve),
                     "decomposition_eval"] if config.decomposition else []
    return ("synth_general", "synth_source", "synth_target", "encoder_train", "encoder_eval", "annotator_checks",
            "baseline_train", "baseline_eval", "preferences", "reward", "rl", *later, "select", "supervised", "dpo",
            "eval", *decomposition)


class _StoppedAfter(Exception):
    """Raised after the stage `run_demo(until=...)` names: the run ends there."""


class _Run:
    """One run's settings, folders and bookkeeping: each stage's build time (whether built now or by an earlier
    run), the stages found finished and skipped, and each stage's peak memory as built."""

    def __init__(self, out: Path, config: DemoConfig, size: DemoSize, progress: bool, until: str | None) -> None:
        self.out, self.config, self.size, self.progress, self.until = out, config, size, progress, until
        self.device = resolve_device(config.device)  # not part of any stage's key: the results must not depend on it
        self.timings: dict[str, float] = {}
        self.cached: list[str] = []
        self.peaks: list[float] = []
        self.target_clips = out / "data" / "target" / "clips.jsonl"
        self.source = out / "data" / "source"
        self.budgets = round_budgets(replace(size.preferences, seed=config.seed), config.rounds)
        self.reward_config = replace(size.reward, seed=config.seed)
        self.rl_config = replace(size.rl, seed=config.seed)
        self.rl_steps = round_steps(self.rl_config.max_steps, config.rounds)
        self.final_reward = round_dir(out, config.rounds) / "reward"
        self.final_store = round_dir(out, config.rounds) / "prefs" / "prefs.sqlite"
        self.policies = [round_dir(out, r) / "rl" for r in range(1, config.rounds + 1)]
        self.prefs_clips: list[Clip] = []
        self.supervised_config = size.sft  # set by _comparison_stages: as many steps as RL took

    def stage(self, name: str, folder: Path, key: dict, build: Callable[[Path], None],
              inputs: Iterable[Path] = ()) -> None:
        done = run_stage(folder, key, build, inputs)
        self.timings[name] = done.seconds
        self.peaks.append(done.peak_rss_mb)
        if not done.ran:
            self.cached.append(name)
        if name == self.until:
            raise _StoppedAfter


def run_demo(out: str | Path, config: DemoConfig, progress: bool = True, until: str | None = None) -> dict:
    """Every stage in order (each skipped when already built with the same key), then results.json and the
    report. `until` names a stage to stop after (e.g. "reward" to build the preference data and reward model
    before choosing RL settings on `val`): nothing is scored on test then, and the return value only lists the
    stage times."""
    if until is not None and until not in stage_names(config):
        raise PrefcapError(f"unknown stage {until!r}; expected one of {', '.join(stage_names(config))}")
    run = _Run(Path(out), config, demo_size(config.size), progress, until)
    start = time.perf_counter()
    try:
        _data_stages(run)
        _baseline_stages(run)
        _first_round(run)
        for r in range(2, config.rounds + 1):
            _later_round(run, r)
        _comparison_stages(run)
        if config.decomposition:  # the gap to supervised taken apart: diagnostic systems, not the method
            _decomposition_stages(run)
    except _StoppedAfter:
        return {"stopped_after": until, "timings_s": run.timings}
    run.timings["total"] = sum(run.timings.values())
    this_run = time.perf_counter() - start
    return write_results(run.out, config, run.size.corpus_sizes(), run.policies, run.timings, run.cached, run.peaks,
                         this_run)


def _data_stages(run: _Run) -> None:
    """The synthetic corpus, the offline CLAP (trained on `general`, evaluated on target test) and the checks of
    the simulated annotators."""
    out, config, sizes, device, progress = run.out, run.config, run.size.corpus_sizes(), run.device, run.progress
    for domain in ("general", "source", "target"):
        synth = SynthConfig(n=sizes[f"{domain}_clips"], domain=domain, seed=config.seed,
                            sample_rate=config.sample_rate)
        run.stage(f"synth_{domain}", out / "data" / domain, asdict(synth),
                  lambda tmp, s=synth: synthesize(tmp, s, progress))

    target_clips = run.target_clips
    general = out / "data" / "general"
    encoder_config = run.size.encoder

    def train_offline_clap(tmp: Path) -> None:
        clips = [c for c in read_clips(general / "clips.jsonl") if c.split == "train"]
        train_encoder(clips, read_captions(general / "captions.jsonl"), tmp, encoder_config, progress,
                      device=device)

    run.stage("encoder_train", out / "encoder", asdict(encoder_config), train_offline_clap,
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

    run.stage("encoder_eval", out / "encoder_eval", {"clips": "target-test"}, evaluate_encoder,
              inputs=[out / "encoder", target_clips])

    def check_annotators(tmp: Path) -> None:
        report = annotator_report(read_clips(target_clips), config.seed, sizes["annotator_pairs"])
        (tmp / "report.json").write_text(json.dumps(report, indent=2))

    run.stage("annotator_checks", out / "annotators",
              {"seed": config.seed, "pairs": sizes["annotator_pairs"], "listeners": panels.LISTENERS_VERSION},
              check_annotators, inputs=[run.target_clips])


def _baseline_stages(run: _Run) -> None:
    """The baseline captioner, trained on `source`, and its evaluation."""
    out, seed, source, device, progress = run.out, run.config.seed, run.source, run.device, run.progress
    captioner_size, sft_config = run.size.captioner, run.size.sft

    def train_baseline(tmp: Path) -> None:
        clips, captions = read_clips(source / "clips.jsonl"), read_captions(source / "captions.jsonl")
        train = [c for c in clips if c.split == "train"]
        train_ids = {c.id for c in train}
        captioner = new_captioner((c.text for c in captions if c.clip_id in train_ids), seed=seed,
                                  **captioner_size)
        train_captioner(captioner, train, captions, [c for c in clips if c.split == "val"], captions, tmp,
                        sft_config, progress, device=device)

    run.stage("baseline_train", out / "captioner-baseline",
              {"size": captioner_size, "sft": asdict(sft_config), "seed": seed},
              train_baseline, inputs=[source / "clips.jsonl", source / "captions.jsonl"])
    run.stage("baseline_eval", out / "baseline_eval", {"seed": seed, "listeners": panels.LISTENERS_VERSION},
              lambda tmp: evaluate_baseline(out, tmp, seed, progress, device),
              inputs=[out / "captioner-baseline", source / "clips.jsonl", run.target_clips])


def _first_round(run: _Run) -> None:
    """Round 1: judgments of pairs of the baseline's captions, the reward model (and its variants), RL."""
    out, config, device, progress, overlap = run.out, run.config, run.device, run.progress, run.size.overlap
    target_clips, source = run.target_clips, run.source
    run.prefs_clips = [c for c in read_clips(target_clips) if c.split == "prefs"]

    def collect_preferences(tmp: Path) -> None:
        captioner = load_captioner(out / "captioner-baseline", device=device)
        store = Store(tmp / "prefs.sqlite")
        pairs = build_pairs(store, {"baseline": captioner}, run.prefs_clips, run.budgets[0], progress=progress)
        judged = simulate(store, "train", seed=config.seed, overlap=overlap, progress=progress)
        write_preference_summary(store, tmp, {**pairs, **judged, "overlap": overlap})

    run.stage("preferences", out / "prefs", {"pairs": asdict(run.budgets[0]), "overlap": overlap, "panel": "train",
                                             "listeners": panels.LISTENERS_VERSION,
                                             "perturbations": PERTURBATIONS_VERSION},
              collect_preferences, inputs=[out / "captioner-baseline", target_clips])
    reward_config = run.reward_config
    variants = {PAPER_VARIANT: replace(run.size.paper_reward, seed=config.seed)}
    if config.diagnostics:
        variants |= {name: replace(variants[PAPER_VARIANT], **changes)
                     for name, changes in DIAGNOSTIC_VARIANTS.items()}
    run.stage("reward", out / "reward",
              {"reward": asdict(reward_config), "variants": {name: asdict(v) for name, v in variants.items()},
               "diagnostics": config.diagnostics, "adversarial": SUITE_VERSION,
               "uncertainty": {"ensemble": UNCERTAINTY_ENSEMBLE, "captions": UNCERTAINTY_CAPTIONS}},
              lambda tmp: train_demo_reward(out, tmp, reward_config, variants, config.diagnostics, progress, device),
              inputs=[out / "encoder", out / "prefs" / "prefs.sqlite", target_clips, source / "clips.jsonl",
                      *(out / "data" / domain / "captions.jsonl" for domain in ("target", "source"))])
    _rl_stage(run, 1)


def _rl_stage(run: _Run, r: int) -> None:
    """Round r's RL: from the baseline (round 1) or round r − 1's policy, against round r's reward model."""
    out, device, rl_config, rl_steps = run.out, run.device, run.rl_config, run.rl_steps
    eval_clips = run.size.rl_eval_clips

    def align_with_rl(tmp: Path) -> None:
        encoder = ClapEncoder.from_pretrained(out / "encoder", device=device)
        start = out / "captioner-baseline" if r == 1 else round_dir(out, r - 1) / "rl" / "captioner"
        run_rl(start, round_dir(out, r) / "reward", encoder, run.target_clips, tmp,
               replace(rl_config, max_steps=rl_steps[r - 1]), split="rl", eval_split="val",
               eval_clips=eval_clips, cache_root=out / "cache",
               reference=out / "captioner-baseline", progress=run.progress, device=device)

    previous = [] if r == 1 else [round_dir(out, r - 1) / "rl"]
    run.stage(round_stage("rl", r), round_dir(out, r) / "rl",
              {"rl": asdict(replace(rl_config, max_steps=rl_steps[r - 1])), "round": r,
               "eval_clips": eval_clips, "loss": LOSS_VERSION},
              align_with_rl,
              inputs=[out / "captioner-baseline", round_dir(out, r) / "reward", run.target_clips, *previous])


def _later_round(run: _Run, r: int) -> None:
    """Round r > 1: judgments of the current policy's captions, the reward model retrained on all so far, RL."""
    out, config, device, progress, overlap = run.out, run.config, run.device, run.progress, run.size.overlap
    here, before = round_dir(out, r), round_dir(out, r - 1)
    run.stage(round_stage("preferences", r), here / "prefs",
              {"pairs": asdict(run.budgets[r - 1]), "overlap": overlap, "round": r, "panel": "train",
               "listeners": panels.LISTENERS_VERSION, "perturbations": PERTURBATIONS_VERSION},
              lambda tmp: collect_round_preferences(out, tmp, r, run.budgets[r - 1], overlap, run.prefs_clips,
                                                    config.seed, progress, device),
              inputs=[out / "captioner-baseline", before / "prefs" / "prefs.sqlite", before / "rl",
                      run.target_clips])
    run.stage(round_stage("reward", r), here / "reward", {"reward": asdict(run.reward_config), "round": r},
              lambda tmp: train_round_reward(out, tmp, r, run.reward_config, progress, device),
              inputs=[out / "encoder", here / "prefs" / "prefs.sqlite", before / "prefs" / "prefs.sqlite",
                      before / "reward", run.target_clips])
    _rl_stage(run, r)


def _comparison_stages(run: _Run) -> None:
    """RLHF's final policy chosen on `val`, the `supervised` and DPO comparisons, and the evaluation of every
    system on the held-out target test clips."""
    out, config, device, progress = run.out, run.config, run.device, run.progress
    target_clips, final_reward, policies = run.target_clips, run.final_reward, run.policies
    run.stage("select", out / "rlhf", {"rl": asdict(run.rl_config), "rounds": config.rounds, "clips": "val"},
              lambda tmp: select_policy(out, tmp, config.rounds, final_reward, run.rl_config.reward_terms,
                                        progress, device),
              inputs=[final_reward, target_clips, *policies])
    selected = json.loads((out / "rlhf" / "selection.json").read_text())["selected"]
    rl_steps_taken = sum(json.loads((folder / "rl_metrics.json").read_text())["steps"] for folder in policies)
    # The paper's comparison: the baseline fine-tuned on the ground-truth references of the same target clips
    # RL trains on, with the baseline's SFT recipe and as many optimizer steps as RL took over all rounds
    # (its checkpoint chosen by the validation loss on the target `val` clips, as RL's by the reward on `val`).
    supervised_config = replace(run.size.sft, max_steps=rl_steps_taken, seed=config.seed)
    run.supervised_config = supervised_config

    def train_supervised(tmp: Path) -> None:
        clips, captions = read_clips(target_clips), read_captions(target_clips.with_name("captions.jsonl"))
        train_captioner(load_captioner(out / "captioner-baseline", device=device),
                        [c for c in clips if c.split == "rl"], captions, [c for c in clips if c.split == "val"],
                        captions, tmp / "captioner", supervised_config, progress, device=device)

    run.stage("supervised", out / "supervised", {"sft": asdict(supervised_config)}, train_supervised,
              inputs=[out / "captioner-baseline", target_clips, target_clips.with_name("captions.jsonl")])
    dpo_config = replace(run.size.dpo, seed=config.seed)

    def align_with_dpo(tmp: Path) -> None:  # on every judgment of every round: the same budget as RLHF
        store = Store(run.final_store, create=False)
        run_dpo(out / "captioner-baseline", store, tmp / "captioner", dpo_config, progress=progress, device=device)
        store.close()

    run.stage("dpo", out / "dpo", {"dpo": asdict(dpo_config)}, align_with_dpo,
              inputs=[out / "captioner-baseline", run.final_store])
    systems = {**SYSTEMS, "rlhf": f"{selected}/captioner"}
    rounds = {f"rlhf-round-{r}": str(folder.relative_to(out) / "captioner")
              for r, folder in enumerate(policies, start=1)}
    run.stage("eval", out / "eval",
              {"systems": systems, "rounds": rounds, "comparisons": COMPARISONS, "seed": config.seed,
               "ranking": "eval panel", "listeners": panels.LISTENERS_VERSION, "rare_share": RARE_SHARE},
              lambda tmp: evaluate_demo_systems(out, tmp, systems, rounds, final_reward, config.seed, progress,
                                                device),
              inputs=[out / "encoder", final_reward, target_clips, *(out / folder for folder in systems.values()),
                      *(out / folder for folder in rounds.values())])


def _decomposition_stages(run: _Run) -> None:
    """--decomposition: rlhf-oracle, rlhf-paper and the supervised learning curve, and their evaluation."""
    out, config, device, progress = run.out, run.config, run.device, run.progress
    target_clips, final_reward, final_store = run.target_clips, run.final_reward, run.final_store
    eval_clips, supervised_config = run.size.rl_eval_clips, run.supervised_config
    whole = replace(run.rl_config, max_steps=supervised_config.max_steps)  # all of RLHF's steps
    diagnostics = out / "decomposition"
    run.stage("rlhf_oracle", diagnostics / "rlhf-oracle", {"rl": asdict(whole), "panel": "train",
                                                           "listeners": panels.LISTENERS_VERSION},
              lambda tmp: align_with_oracle(out, tmp, whole, final_reward, eval_clips, config.seed, progress, device),
              inputs=[out / "captioner-baseline", final_reward, target_clips])
    paper = replace(run.size.paper_reward, seed=config.seed)
    run.stage("rlhf_paper", diagnostics / "rlhf-paper", {"rl": asdict(whole), "reward": asdict(paper)},
              lambda tmp: align_with_paper_head(out, tmp, whole, paper, final_store, eval_clips, progress, device),
              inputs=[out / "captioner-baseline", final_store, target_clips])
    curve = run.size.supervised_curve
    for n in curve:
        run.stage(f"supervised_{n}", diagnostics / f"supervised-{n}",
                  {"sft": asdict(supervised_config), "clips": n},
                  lambda tmp, n=n: train_supervised_on(out, tmp, n, supervised_config, config.seed, progress, device),
                  inputs=[out / "captioner-baseline", target_clips, target_clips.with_name("captions.jsonl")])
    run.stage("decomposition_eval", diagnostics / "eval", {"seed": config.seed, "curve": curve,
                                                          "listeners": panels.LISTENERS_VERSION},
              lambda tmp: evaluate_diagnostics(out, tmp, curve, config.seed, progress, device),
              inputs=[out / "eval", *(diagnostics / name for name in diagnostic_systems(curve))])
