"""The reward model that fine-tunes its encoder's text side: it learns what a frozen embedding hides, saves only
its text side, and refuses any encoder but the one it was trained from."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from prefcap.encoders.clap import ClapEncoder
from prefcap.encoders.sentence import SentenceEncoder
from prefcap.errors import PrefcapError
from prefcap.reward.data import PreferencePair
from prefcap.reward.features import pair_features
from prefcap.reward.jobs import fense_cross_validation
from prefcap.reward.model import WEIGHTS_FILE, RewardConfig, RewardModel
from prefcap.reward.train import train_reward
from tiny_models import save_tiny_clap

SOUNDS = ["a dog barks", "rain falls", "a bell rings", "a siren wails", "wind blows", "a car passes", "birds chirp",
          "a door slams", "water drips", "a baby cries", "a clock ticks", "a train horn sounds"]
TUNED = RewardConfig(head="interaction", text_encoder="fine-tune", hidden=(16,), dropout=0.0, epochs=12, patience=12,
                     batch_size=16, learning_rate=3e-3, text_learning_rate=3e-3, val_fraction=0.0)


@pytest.fixture(scope="module")
def clap(tmp_path_factory) -> ClapEncoder:
    return ClapEncoder.from_pretrained(save_tiny_clap(tmp_path_factory.mktemp("clap")), device="cpu")


def cut_off_pairs(sounds: list[str], start: int) -> list[PreferencePair]:
    """The complete caption beats the same caption cut off mid-phrase; shown in both orders."""
    pairs = []
    for k, sound in enumerate(sounds):
        good, bad = f"{sound} nearby.", f"{sound} and the"
        clip = f"clip-{start + k}"
        pairs += [PreferencePair(clip, good, bad, 3, 0, 0), PreferencePair(clip, bad, good, 0, 3, 0)]
    return pairs


def audio_vectors(clip_ids, dim: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {c: torch.nn.functional.normalize(torch.randn(dim, generator=generator), dim=0) for c in clip_ids}


def trained_clap_reward(clap: ClapEncoder, config: RewardConfig = TUNED) -> tuple[RewardModel, list, dict]:
    pairs = cut_off_pairs(SOUNDS[:8], 0)
    audio = audio_vectors([f"clip-{k}" for k in range(len(SOUNDS))], clap.dim)
    model = train_reward(pairs, pair_features(pairs, clap, audio=audio), config, clap.id, progress=False,
                         encoder=clap)
    return model, cut_off_pairs(SOUNDS[8:], 8), audio


def test_the_fine_tuned_clap_text_side_learns_a_preference_on_new_captions(clap):
    before = {name: p.detach().clone() for name, p in clap.model.named_parameters()}
    model, held_out, audio = trained_clap_reward(clap)
    probability = model.preference(pair_features(held_out, clap, audio=audio)).numpy()
    labels = np.array([p.label for p in held_out])
    assert ((probability > 0.5) == (labels > 0)).mean() == 1.0  # captions and clips it never saw
    tower = model.heads[0].tower
    changed = {n for n, p in tower.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= tower.text_parameters  # only the text side moved ...
    assert not any(n.startswith("audio") for n in tower.text_parameters)
    assert all(torch.equal(p, before[n]) for n, p in clap.model.named_parameters())  # ... and on a copy


def test_frozen_lower_layers_stay_as_they_were(clap):
    model, _, _ = trained_clap_reward(clap, RewardConfig(**{**TUNED.__dict__, "frozen_layers": 1, "epochs": 2}))
    original = dict(clap.model.named_parameters())
    tower = model.heads[0].tower
    for name, parameter in tower.model.named_parameters():
        if name in tower.text_parameters and ("embeddings" in name or ".layer.0." in name):
            assert torch.equal(parameter, original[name]), name
    assert any(not torch.equal(p, original[n]) for n, p in tower.model.named_parameters() if ".layer.0." not in n
               and "embeddings" not in n and n in tower.text_parameters)


def test_save_and_load_keep_the_rewards_and_store_only_the_text_side(clap, tmp_path):
    model, held_out, audio = trained_clap_reward(clap, RewardConfig(**{**TUNED.__dict__, "epochs": 2}))
    model.save(tmp_path / "rm")
    stored = load_file(tmp_path / "rm" / WEIGHTS_FILE)
    tower_keys = {k.removeprefix("0.tower.") for k in stored if k.startswith("0.tower.")}
    assert tower_keys == model.heads[0].tower.text_parameters
    assert all(k.startswith("0.mlp.") or k.startswith("0.tower.") for k in stored)

    loaded = RewardModel.load(tmp_path / "rm", encoder=clap)
    features = pair_features(held_out, clap, audio=audio)
    assert torch.allclose(loaded.preference(features), model.preference(features), atol=1e-6)
    assert json.loads((tmp_path / "rm" / "reward_config.json").read_text())["config"]["text_encoder"] == "fine-tune"
    # the caption prior (RL's clip-relative term) reads each caption once and equals the slow way
    captions = [p.caption_a for p in held_out[:3]]
    others = torch.stack(list(audio.values())[:4])
    text, no_extra = clap.embed_text(captions), torch.zeros(4, 0)
    slow = torch.stack([loaded.rewards(others, text[k].expand(4, -1), no_extra, captions=[c] * 4)[0].mean()
                        for k, c in enumerate(captions)])
    assert torch.allclose(loaded.caption_prior(others, text, torch.zeros(3, 0), captions), slow, atol=1e-5)


def test_a_fine_tuned_model_refuses_another_encoder_and_needs_its_own(clap, tmp_path):
    model, _, _ = trained_clap_reward(clap, RewardConfig(**{**TUNED.__dict__, "epochs": 1}))
    model.save(tmp_path / "rm")
    with pytest.raises(PrefcapError, match="load it with that encoder"):
        RewardModel.load(tmp_path / "rm", encoder_id=clap.id)
    other = SentenceEncoder("default")
    with pytest.raises(PrefcapError, match="refusing embeddings of 'sentence-transformers:default'"):
        RewardModel.load(tmp_path / "rm", encoder=other)
    with pytest.raises(PrefcapError, match="needs the encoder"):
        RewardModel.new(TUNED, clap.id, clap.dim)
    with pytest.raises(PrefcapError, match="pass them"):  # a tower reads captions, not vectors alone
        model.member_rewards(torch.zeros(1, clap.dim), torch.zeros(1, clap.dim), torch.zeros(1, 0))


def test_nested_fense_cross_validation_reports_the_default_its_variants_and_each_fold(tmp_path):
    entries = []
    for k in range(12):
        sound, other = SOUNDS[k], SOUNDS[(k + 5) % len(SOUNDS)]
        entries.append({"raw_name": f"{k}.wav", "references": [f"{sound} loudly", f"{sound} outside", f"{sound}"],
                        "HI": [f"{sound} softly", other, [1, 1, 1, 1]],
                        "MM_1": [f"{sound} and and", f"{sound} nearby", [-1, -1, -1, 0]]})
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(entries))
    quick = RewardConfig(head="interaction", text_encoder="fine-tune", hidden=(8,), epochs=1, val_fraction=0.25)
    candidates = {"slow": quick, "fast": RewardConfig(**{**quick.__dict__, "text_learning_rate": 1e-4})}
    result = fense_cross_validation(path, candidates, SentenceEncoder("default"), folds=3,
                                    variants={"frozen mlp": RewardConfig(hidden=(8,), epochs=5)}, progress=False)
    assert result["labelled_pairs"] == 24 and result["HC"] is None and 0 <= result["total"] <= 1
    assert [f["fold"] for f in result["folds"]] == [0, 1, 2]
    assert sum(f["clips"] for f in result["folds"]) == 12
    for fold in result["folds"]:  # the candidate with the lowest NLL on the fold's own training clips
        assert fold["chosen"] == min(fold["validation_nll"], key=fold["validation_nll"].get)
        assert fold["total"] == fold["variants"][fold["chosen"]]  # the default is the chosen candidate's figure
    assert set(result["variants"]) == {"slow", "fast", "frozen mlp"} == set(result["folds"][0]["variants"])
    assert result["candidates"]["fast"]["text_learning_rate"] == 1e-4
