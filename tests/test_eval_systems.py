"""One evaluation path: `prefcap eval` and the demo's eval stage score and judge the same captions alike."""

from __future__ import annotations

import pytest

from prefcap.data.records import Caption, read_captions, read_clips, references_by_clip, write_jsonl
from prefcap.demo.eval_stages import RARE_SHARE, SYSTEMS, demo_metrics
from prefcap.errors import PrefcapError
from prefcap.eval.run import run_eval
from prefcap.eval.systems import caption_systems, write_captions
from prefcap.synth.corpus import SynthConfig, synthesize
from prefcap.synth.independence import rare_classes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    synthesize(folder, SynthConfig(n=16, domain="target", seed=5), progress=False)
    clips = read_clips(folder / "clips.jsonl")
    return clips, references_by_clip(read_captions(folder / "captions.jsonl"), source=None)


def test_the_demo_and_prefcap_eval_give_the_same_records_for_the_same_captions(corpus, tmp_path):
    clips, references = corpus
    ids = [c.id for c in clips]
    another = {clip_id: references[ids[(k + 1) % len(ids)]][0] for k, clip_id in enumerate(ids)}  # a wrong one
    captions = {
        "baseline": {i: references[i][4] if k % 2 else another[i] for k, i in enumerate(ids)},
        "rlhf": {i: references[i][0] if k % 3 else another[i] for k, i in enumerate(ids)},
        "supervised": {i: references[i][1] for i in ids},
        "dpo": {i: " ".join(references[i][0].split()[:4]) for i in ids},  # cut short
        "rlhf-round-1": {i: references[i][2] if k % 2 else another[i] for k, i in enumerate(ids)},
    }
    demo = demo_metrics(clips, captions, list(SYSTEMS), ["rlhf-round-1"], references,
                        rare_classes(clips, RARE_SHARE), seed=4)
    write_captions(tmp_path / "systems", captions)
    specs = [f"{name}={tmp_path / 'systems' / f'captions-{name}.jsonl'}" for name in captions]
    evaluated = run_eval(clips, specs, tmp_path / "eval", references=references, baseline="baseline", seed=4,
                         progress=False)
    # every pair prefcap eval compares with the baseline, the demo judged too: by the same panel, alike
    by_pair = {(r["a"], r["b"]): r for r in demo["pairwise"] + demo["rounds"] if r["judge"] == "eval"}
    assert [(r["a"], r["b"]) for r in evaluated["pairwise"]] == [
        ("rlhf", "baseline"), ("supervised", "baseline"), ("dpo", "baseline"), ("rlhf-round-1", "baseline")]
    assert evaluated["pairwise"] == [by_pair[(r["a"], r["b"])] for r in evaluated["pairwise"]]
    assert all(r["wins"] and r["losses"] for r in evaluated["pairwise"])  # contested verdicts, not only ties
    assert {name: evaluated["systems"][name] for name in SYSTEMS} == demo["systems"]
    # the demo's ranking is the evaluation panel's: the training panel is shown beside it, never ranks
    assert [(r["a"], r["b"], r["judge"]) for r in demo["pairwise"][:2]] == [("rlhf", "baseline", "eval"),
                                                                            ("rlhf", "baseline", "train")]
    assert {r["system"] for r in demo["ranking"]} == set(SYSTEMS)


def test_a_caption_file_must_caption_every_clip(corpus, tmp_path):
    clips, references = corpus
    write_jsonl(tmp_path / "some.jsonl", [Caption(clip_id=c.id, text=references[c.id][0], source="x")
                                          for c in clips[:-1]])
    with pytest.raises(PrefcapError, match="no caption for 1 of the clips"):
        caption_systems({"some": tmp_path / "some.jsonl"}, clips)
    read = caption_systems({"some": tmp_path / "some.jsonl"}, clips[:-1])
    assert list(read["some"]) == [c.id for c in clips[:-1]]
