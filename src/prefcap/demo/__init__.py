"""`prefcap demo`: the paper's experiment end to end on the embedded default, each stage cached in the run folder.

Stages, in order: the synthetic corpus (general, source and target domains), the checks of the simulated
annotators that stand in for people, the offline CLAP (trained on `general`, evaluated on target), the baseline
captioner (trained on source), the preference data (pairs of the baseline's own captions of the target `prefs`
clips, judged by the simulated training panel through the judgment store), the reward model, RL on the target
`rl` audio (no captions), the `supervised` comparison, DPO, and the evaluation of every system on the held-out
`test` clips by the simulated evaluation panel; then `results.json` and `report.html`. `run_seeds` repeats it.

The orchestrator is demo/run.py; each size's settings are one YAML file (demo/sizes/*.yaml, demo/sizes.py).
This module keeps the names other code imports from `prefcap.demo`.
"""

from prefcap.demo.decomposition import PanelReward
from prefcap.demo.eval_stages import COMPARISONS, RARE_SHARE, SYSTEMS
from prefcap.demo.rounds import (
    FIRST_ROUND_SHARE,
    LATER_CONTRAST_FRACTION,
    ROUNDS,
    round_budgets,
    round_dir,
    round_stage,
    round_steps,
)
from prefcap.demo.run import DemoConfig, run_demo, stage_names
from prefcap.demo.seeds import run_seeds, seeds_summary
from prefcap.demo.sizes import (
    BASELINE,
    DPO,
    ENCODER_CONFIGS,
    PAPER_REWARD,
    PREFERENCES,
    REWARD,
    RL,
    RL_EVAL_CLIPS,
    SIZES,
    SUPERVISED_CURVE,
    DemoSize,
    demo_size,
)
from prefcap.eval.tables import seeds_table, summary_table
from prefcap.reward.variants import DIAGNOSTIC_VARIANTS, PAPER_VARIANT, adversarial_accuracy, variant_slug

__all__ = [
    "BASELINE", "COMPARISONS", "DIAGNOSTIC_VARIANTS", "DPO", "ENCODER_CONFIGS", "FIRST_ROUND_SHARE",
    "LATER_CONTRAST_FRACTION", "PAPER_REWARD", "PAPER_VARIANT", "PREFERENCES", "RARE_SHARE", "REWARD", "RL",
    "RL_EVAL_CLIPS", "ROUNDS", "SIZES", "SUPERVISED_CURVE", "SYSTEMS", "DemoConfig", "DemoSize", "PanelReward",
    "adversarial_accuracy", "demo_size", "round_budgets", "round_dir", "round_stage", "round_steps", "run_demo",
    "run_seeds", "seeds_summary", "seeds_table", "stage_names", "summary_table", "variant_slug",
]
