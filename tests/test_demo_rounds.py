"""The demo's preference rounds: how the judgment budget and RL's steps are shared, and the oracle reward."""

import pytest
import torch

from prefcap.data.records import read_captions, read_clips
from prefcap.demo import (
    FIRST_ROUND_SHARE,
    LATER_CONTRAST_FRACTION,
    DemoConfig,
    PanelReward,
    round_budgets,
    round_steps,
    stage_names,
)
from prefcap.errors import PrefcapError
from prefcap.prefs.pairs import PairsConfig
from prefcap.rl.rewards import RewardTerms
from prefcap.synth import panels
from prefcap.synth.corpus import SynthConfig, synthesize


@pytest.mark.parametrize("rounds", [1, 2, 3, 5])
def test_more_rounds_never_mean_more_judgments_or_more_rl(rounds):
    budget = PairsConfig(num_pairs=2500, contrast_fraction=0.4, seed=7)
    shares = round_budgets(budget, rounds)
    assert len(shares) == rounds and sum(c.num_pairs for c in shares) == 2500
    assert shares[0].contrast_fraction == 0.4 and shares[0].seed == 7
    if rounds == 1:
        assert shares == [budget]
    else:
        assert shares[0].num_pairs == round(FIRST_ROUND_SHARE * 2500)
        assert all(c.contrast_fraction == LATER_CONTRAST_FRACTION for c in shares[1:])
        assert len({c.seed for c in shares}) == rounds  # each round draws its own pairs
    steps = round_steps(600, rounds)
    assert sum(steps) == 600 and max(steps) - min(steps) <= 1


def test_the_stages_of_a_run_follow_its_rounds():
    names = stage_names(DemoConfig(size="tiny", rounds=3))
    assert names.index("rl") < names.index("preferences_round_2") < names.index("reward_round_2") < names.index(
        "rl_round_2") < names.index("rl_round_3") < names.index("select") < names.index("supervised")
    assert "rlhf_oracle" not in names and "rlhf_oracle" in stage_names(DemoConfig(size="tiny", decomposition=True))
    with pytest.raises(PrefcapError, match="rounds must be at least 1"):
        DemoConfig(rounds=0)
    with pytest.raises(PrefcapError, match="without an RL step"):
        DemoConfig(size="tiny", rounds=5)  # the tiny demo has 4 RL steps in all


def test_the_oracle_reward_is_the_training_panels_own_score(tmp_path):
    """rlhf-oracle's reward prefers what the noise-free training panel prefers, clip by clip."""
    synthesize(tmp_path, SynthConfig(n=12, domain="target", seed=3), progress=False)
    clips = {c.id: c for c in read_clips(tmp_path / "clips.jsonl")}
    references = {c.clip_id: c.text for c in read_captions(tmp_path / "captions.jsonl")}
    panel = panels.build("train", 3)
    ids = sorted(clips)
    other = {clip_id: references[ids[(k + 1) % len(ids)]] for k, clip_id in enumerate(ids)}  # another clip's

    class Encoder:
        id = "toy"

        def embed_text(self, texts):
            return torch.zeros(len(texts), 4)

    reward = PanelReward(panel, clips, Encoder(), RewardTerms(clap_coef=0.0), scale=0.5)
    captions = [references[i] for i in ids] + [other[i] for i in ids]
    total, terms = reward(torch.zeros(len(captions), 4), captions, torch.zeros(len(captions), dtype=torch.bool),
                          clip_ids=ids + ids)
    margins = terms["rm"][: len(ids)] - terms["rm"][len(ids):]
    expected = torch.tensor([panel.noise_free_margin(clips[i], references[i], other[i]) for i in ids])
    assert (torch.sign(margins) == torch.sign(expected)).float().mean() >= 0.9
    assert (margins > 0).float().mean() >= 0.8  # its own reference beats another clip's
    with pytest.raises(PrefcapError, match="needs the clip"):
        reward(torch.zeros(1, 4), ["a dog barks"], torch.zeros(1, dtype=torch.bool))
