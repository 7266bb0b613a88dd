import json
from dataclasses import dataclass

import pytest

from prefcap.config import apply_overrides, config_from_file
from prefcap.data.records import (
    Caption,
    Clip,
    Judgment,
    read_clips,
    read_jsonl,
    references_by_clip,
    write_clips,
    write_jsonl,
)
from prefcap.errors import ManifestError, PrefcapError
from prefcap.io import atomic_write


def test_clip_manifest_round_trip_keeps_paths_portable(tmp_path):
    audio = tmp_path / "run" / "audio" / "x.wav"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"")
    clips = [Clip(id="x", audio_path=str(audio), duration=4.5, sample_rate=16000, split="test", domain="target",
                  metadata={"scene": {"k": 1}}),
             Clip(id="text-only", split="all")]
    write_clips(tmp_path / "run" / "clips.jsonl", clips)
    stored = json.loads((tmp_path / "run" / "clips.jsonl").read_text().splitlines()[0])
    assert stored["audio_path"] == "audio/x.wav"
    moved = tmp_path / "moved"
    (tmp_path / "run").rename(moved)
    read = read_clips(moved / "clips.jsonl")
    assert read[0].audio_path == str(moved / "audio" / "x.wav") and read[0].metadata == {"scene": {"k": 1}}
    assert read[1].audio_path is None and read[1].duration is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"clip_id": "c", "text": "   ", "source": "reference"}', "blank"),
        ('{"clip_id": "c", "text": "a", "source": ""}', "source"),
        ('{"clip_id": "c", "text": "a dog"}', "source"),
        ('{"clip_id": "c", "text": "a dog", "source": "x", "extra": 1}', "extra"),
        ("{not json", "invalid"),
    ],
)
def test_a_malformed_line_is_reported_with_file_and_line(tmp_path, line, problem):
    path = tmp_path / "captions.jsonl"
    good = '{"clip_id": "c", "text": "a dog barks", "source": "reference"}'
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(ManifestError, match=rf"captions.jsonl:3: .*{problem}"):
        read_jsonl(path, Caption)


def test_judgment_validation_and_round_trip(tmp_path):
    judgment = Judgment(clip_id="c", caption_a="x", caption_b="y", choice="tie", annotator="ann")
    write_jsonl(tmp_path / "j.jsonl", [judgment])
    assert read_jsonl(tmp_path / "j.jsonl", Judgment) == [judgment]
    with pytest.raises(ValueError):
        Judgment(clip_id="c", caption_a="x", caption_b="y", choice="both", annotator="ann")
    with pytest.raises(ValueError):
        Clip(id="c", duration=-1)
    assert Caption(clip_id="c", text="", source="baseline").text == ""  # a system may write nothing


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(ManifestError, match="nope.jsonl: no such manifest"):
        read_clips(tmp_path / "nope.jsonl")


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


@dataclass(frozen=True)
class _Config:
    n: int = 1
    rate: float = 0.5
    name: str = "x"
    flag: bool = False
    limit: int | None = None


def test_overrides_are_typed_and_unknown_keys_refused():
    config = apply_overrides(_Config(), ["n=3", "rate=1e-3", "name=abc", "flag=true", "limit=none"])
    assert config == _Config(n=3, rate=1e-3, name="abc", flag=True, limit=None)
    assert apply_overrides(_Config(), ["limit=7"]).limit == 7
    # numbers are read as YAML files read them: an int field takes an integral float, not a fraction; an integer
    # of any length stays exact
    assert apply_overrides(_Config(), ["n=1e3", "flag=0"]) == _Config(n=1000, flag=False)
    assert apply_overrides(_Config(), ["n=12345678901234567891"]).n == 12345678901234567891
    with pytest.raises(PrefcapError, match="override: n: expected a value of type int, got '2.5'"):
        apply_overrides(_Config(), ["n=2.5"])
    with pytest.raises(PrefcapError, match="unknown _Config field 'nn'"):
        apply_overrides(_Config(), ["nn=3"])
    with pytest.raises(PrefcapError, match="n: expected a value of type int, got 'three'"):
        apply_overrides(_Config(), ["n=three"])
    with pytest.raises(PrefcapError, match="key=value"):
        apply_overrides(_Config(), ["n"])
    # a mapping field given twice: the last wins (only a nested config merges)
    from prefcap.synth.corpus import SynthConfig

    given = apply_overrides(SynthConfig(), ['splits={"train": 0.8, "val": 0.2}', 'splits={"train": 1.0}'])
    assert given.splits == {"train": 1.0}


def test_structured_overrides_build_the_declared_types_and_refuse_bad_entries():
    from prefcap.captioners.base import Decoding
    from prefcap.prefs.pairs import PairsConfig

    given = 'decodings=[{"mode": "beam", "num_beams": 2}, {"mode": "sample"}]'
    config = apply_overrides(PairsConfig(num_pairs=1), [given, "samples_per_decoding=1"])
    assert config.decodings == (Decoding(mode="beam", num_beams=2), Decoding(mode="sample"))
    for bad, message in [('[{"mode": "bam"}]', "decodings.mode: expected one of greedy, beam, sample, got 'bam'"),
                         ('[{"mod": "beam"}]', "unknown Decoding field"),
                         ('[{"num_beams": "two"}]', "decodings.num_beams: expected a value of type int"),
                         ('[{"mode": "sample", "temperature": 0}]', "temperature > 0"),
                         ('["greedy"]', "expected a mapping of Decoding fields"),
                         ('{"mode": "beam"}', "expected a list")]:
        with pytest.raises(PrefcapError, match=message):
            apply_overrides(PairsConfig(num_pairs=1), [f"decodings={bad}"])


def test_recipe_file_sections_are_typed_overrides_and_the_command_line_wins(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("rl:\n  n: 3\n  rate: 1e-3   # YAML 1.1 reads this as a string\n  flag: true\n  limit: null\n"
                      "sft:\n  n: 9\n")
    from_file = config_from_file(_Config(), recipe, "rl")
    assert from_file == _Config(n=3, rate=1e-3, flag=True, limit=None)
    assert apply_overrides(from_file, ["n=4"]).n == 4
    assert config_from_file(_Config(n=5), recipe, "dpo") == _Config(n=5)
    recipe.write_text("rl:\n  nn: 3\n")
    with pytest.raises(PrefcapError, match=r"rl: unknown _Config field 'nn'"):
        config_from_file(_Config(), recipe, "rl")
    recipe.write_text("rl:\n  n: three\n")
    with pytest.raises(PrefcapError, match="rl: n: expected a value of type int"):
        config_from_file(_Config(), recipe, "rl")
    recipe.write_text("rlhf:\n  n: 3\n")
    with pytest.raises(PrefcapError, match=r"recipe.yaml: unknown section\(s\) rlhf"):
        config_from_file(_Config(), recipe, "rl")
    recipe.write_text("rl: [1, 2\n")
    with pytest.raises(PrefcapError, match="not valid YAML"):
        config_from_file(_Config(), recipe, "rl")
    recipe.write_text("rl: 3\n")
    with pytest.raises(PrefcapError, match="recipe.yaml, rl: expected a mapping of _Config fields, got 3"):
        config_from_file(_Config(), recipe, "rl")
    with pytest.raises(PrefcapError, match="missing.yaml"):
        config_from_file(_Config(), tmp_path / "missing.yaml", "rl")


def test_references_by_clip_groups_reference_texts_in_order():
    captions = [Caption(clip_id=clip, text=text, source=source) for clip, text, source in
                [("a", "one", "reference"), ("b", "x", "sys"), ("a", "two", "reference"), ("b", "y", "reference")]]
    assert references_by_clip(captions) == {"a": ["one", "two"], "b": ["y"]}
    assert references_by_clip(captions, source=None) == {"a": ["one", "two"], "b": ["x", "y"]}
