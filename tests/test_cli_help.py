"""Every config field is a documented knob (`--help` lists it with its type, default and help), and commands
check their cheap inputs before they load a model."""

import dataclasses

import pytest

from prefcap.captioners.base import Decoding
from prefcap.captioners.sft import SFTConfig
from prefcap.cli import main
from prefcap.config import describe_fields, field_help, format_default
from prefcap.demo import DemoConfig
from prefcap.encoders.train import EncoderTrainConfig
from prefcap.prefs.assign import AssignConfig
from prefcap.prefs.pairs import PairsConfig
from prefcap.reward.model import RewardConfig
from prefcap.rl.dpo import DPOConfig
from prefcap.rl.trainer import RLConfig
from prefcap.synth.corpus import SynthConfig

COMMAND_CONFIGS = [("rl", RLConfig), ("sft", SFTConfig), ("reward-train", RewardConfig), ("reward-eval", RewardConfig),
                   ("dpo", DPOConfig), ("pairs", PairsConfig), ("caption", Decoding), ("synth", SynthConfig),
                   ("encoder-train", EncoderTrainConfig), ("demo", DemoConfig)]


def command_help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("command", "config_class"), COMMAND_CONFIGS, ids=[c for c, _ in COMMAND_CONFIGS])
def test_help_lists_every_config_field_with_its_default_and_help(command, config_class, capsys):
    text = command_help(command, capsys)
    for key, field in knobs(config_class):
        assert field_help(field), f"{config_class.__name__}.{key} has no metadata help: document it"
        entry = f"  {key} ("
        assert entry in text, f"{command} --help does not list {key}"
        block = text[text.index(entry):].split("\n")
        assert f"default {format_default(field.default)})" in block[0]
        assert block[1].strip() == field_help(field)
    assert "repetition_penalty" not in text


def knobs(config_class: type, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    """Every settable field: a nested config's (RLConfig.reward_terms) under dotted keys."""
    found = []
    for field in dataclasses.fields(config_class):
        if field.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(field.default_factory()):
            found += knobs(type(field.default_factory()), f"{prefix}{field.name}.")
        else:
            found.append((f"{prefix}{field.name}", field))
    return found


def test_the_rl_help_lists_the_reward_terms_under_dotted_keys(capsys):
    text = command_help("rl", capsys)
    assert "  reward_terms.clap_coef (float, default 0.0)" in text
    assert "  reward_terms (" not in text


def test_every_field_of_the_other_configs_has_help():
    for config_class in (AssignConfig,):
        assert all(field_help(field) for field in dataclasses.fields(config_class))


def test_describe_fields_shows_a_required_field_and_structured_defaults():
    text = describe_fields(PairsConfig)
    assert "  num_pairs (int, default required)\n      N, the budget of pairs" in text
    assert 'decodings (tuple[Decoding, ...], default [{"mode": "greedy"' in text


class Loaded(AssertionError):
    pass


def refuse_loading(monkeypatch):
    def trap(*args, **kwargs):
        raise Loaded("an encoder was loaded before the cheap checks")

    monkeypatch.setattr("prefcap.encoders.load.text_encoder", trap)
    monkeypatch.setattr("prefcap.encoders.clap.ClapEncoder.from_pretrained", trap)
    monkeypatch.setattr("prefcap.encoders.sentence.SentenceEncoder.__init__", trap)


def test_rl_refuses_a_mistyped_captioner_folder_before_loading_the_encoder(tmp_path, monkeypatch, capsys):
    refuse_loading(monkeypatch)
    (tmp_path / "reward").mkdir()
    clips = tmp_path / "clips.jsonl"
    clips.write_text("")
    typo = tmp_path / "runs" / "captioner-baselin"
    code = main(["rl", "--captioner", str(typo), "--reward", str(tmp_path / "reward"), "--encoder", "laion/clap",
                 "--clips", str(clips), "--out", str(tmp_path / "rl")])
    error = capsys.readouterr().err
    assert code == 2 and f"{typo}: no such captioner folder" in error


@pytest.mark.parametrize("missing", ["reward", "clips"])
def test_rl_refuses_a_missing_reward_or_manifest_before_loading_the_encoder(missing, tmp_path, monkeypatch, capsys):
    refuse_loading(monkeypatch)
    (tmp_path / "captioner").mkdir()
    paths = {"reward": tmp_path / "reward", "clips": tmp_path / "clips.jsonl"}
    if missing != "reward":
        paths["reward"].mkdir()
    if missing != "clips":
        paths["clips"].write_text("")
    code = main(["rl", "--captioner", str(tmp_path / "captioner"), "--reward", str(paths["reward"]),
                 "--encoder", "laion/clap", "--clips", str(paths["clips"]), "--out", str(tmp_path / "rl")])
    assert code == 2 and f"{paths[missing]}: no such" in capsys.readouterr().err


def test_reward_eval_refuses_a_fense_file_that_is_not_json_before_loading_the_encoder(tmp_path, monkeypatch, capsys):
    refuse_loading(monkeypatch)
    bad = tmp_path / "fense.json"
    bad.write_text("not json at all")
    code = main(["reward-eval", "--fense", str(bad), "--folds", "3"])
    error = capsys.readouterr().err
    assert code == 2 and f"{bad}: not a JSON file" in error
