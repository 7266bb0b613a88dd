from dataclasses import replace

import pytest

from prefcap.stages import run_stage, stage_key


def test_a_stage_reruns_only_when_config_or_input_content_changes(tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("v1")
    calls = []

    def build(tmp):
        calls.append(1)
        (tmp / "out.txt").write_text(source.read_text().upper())

    out = tmp_path / "stage"
    built = run_stage(out, {"a": 1}, build, [source])
    assert built.ran and built.seconds > 0 and built.peak_rss_mb > 0
    skipped = run_stage(out, {"a": 1}, build, [source])
    assert skipped == replace(built, ran=False)  # skipped: the time and memory it took to build
    assert run_stage(out, {"a": 2}, build, [source]).ran
    source.write_text("v2")
    assert run_stage(out, {"a": 2}, build, [source]).ran
    assert (out / "out.txt").read_text() == "V2" and len(calls) == 3


def test_a_failed_stage_leaves_no_output(tmp_path):
    def build(tmp):
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_stage(tmp_path / "stage", {}, build)
    assert list(tmp_path.iterdir()) == []


def test_key_depends_on_folder_content(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("1")
    first = stage_key({}, [tmp_path / "d"])
    (tmp_path / "d" / "f").write_text("2")
    assert stage_key({}, [tmp_path / "d"]) != first
