"""The independent evaluation judge: written apart from the training panel, and a careful reader of captions."""

import ast
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_clips
from prefcap.cli import main
from prefcap.data.records import Clip, write_jsonl
from prefcap.synth import grammar
from prefcap.synth.eval_judge import CarefulWeights, heard_scene, read_caption, score_terms
from prefcap.synth.eval_judge.scoring import caption_flags
from prefcap.synth.faults import _corrupt_spec

# the training panel's parser, lexicon and scoring, and the corpus code they are written with
TRAINING_SIDE = {"prefcap.synth.parse", "prefcap.synth.lexicon", "prefcap.synth.judge",
                 "prefcap.synth.grammar", "prefcap.synth.agreement", "prefcap.synth.faults",
                 "prefcap.synth.scene"}


def _imports(module: str) -> set[str]:
    """The prefcap modules `module` imports, and the packages those imports initialise."""
    path = Path(importlib.util.find_spec(module).origin)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            found |= {".".join(parts[:k]) for k in range(1, len(parts) + 1)}
    return {name for name in found if name.startswith("prefcap") and _is_module(name)}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name imported from a module ("prefcap.data.records.Clip")
        return False


def test_the_evaluation_judge_imports_nothing_of_the_training_panel():
    package = Path(importlib.util.find_spec("prefcap.synth.eval_judge").origin).parent
    seen, todo = set(), {f"prefcap.synth.eval_judge.{p.stem}".removesuffix(".__init__")
                         for p in package.glob("*.py")}
    while todo:
        module = todo.pop()
        seen.add(module)
        todo |= _imports(module) - seen
    assert "prefcap.synth.panel" in seen  # the shared annotator machinery (noise, ties, biases)
    assert not seen & TRAINING_SIDE, sorted(seen & TRAINING_SIDE)


def _clip(scene) -> Clip:
    return Clip(id="c", metadata={"scene": scene.to_dict()})


def test_it_reads_the_corpus_references_as_their_scene(target_clips):
    """Every reference names every sound, states nothing wrong and reads as fluent (short ones may be short)."""
    weights, perfect, total = CarefulWeights(), 0, 0
    for k, clip in enumerate(target_clips[:100]):
        scene = heard_scene(clip)
        for text in grammar.reference_captions(_scene_of(clip), k, 5):
            terms = score_terms(read_caption(text), scene, weights)
            total += 1
            perfect += terms["recall"] == pytest.approx(weights.recall) and all(
                value >= 0 for name, value in terms.items() if name != "length")
    assert perfect == total


def _scene_of(clip):
    from prefcap.synth.judge import scene_of  # the corpus side, only to write the test's captions

    return scene_of(clip)


@pytest.mark.parametrize("fault,term", [("swap", "invented"), ("add", "invented"), ("attribute", "wrong_attribute"),
                                        ("order", "wrong_relation"), ("repeat", "repetition"),
                                        ("truncate", "truncation")])
def test_it_sees_each_fault_the_corpus_can_make(target_clips, fault, term):
    rng = np.random.default_rng(5)
    seen = tried = 0
    for k, clip in enumerate(target_clips[:150]):
        scene = _scene_of(clip)
        spec = grammar.spec_from_scene(scene, rng, attribute_prob=0.6)
        if fault in ("repeat", "truncate"):
            text = {"repeat": grammar.repeat_phrase, "truncate": grammar.truncate}[fault](grammar.render(spec, k), rng)
        else:
            faulty = _corrupt_spec(spec, scene, fault, rng)
            if faulty == spec:
                continue
            text = grammar.render(faulty, k)
        tried += 1
        seen += score_terms(read_caption(text), heard_scene(clip), CarefulWeights())[term] < 0
    assert tried > 50 and seen / tried >= 0.97


def _said(text: str) -> list[tuple[str, bool]]:
    """(what each mention names, whether it is denied)."""
    reading = read_caption(text)
    return [("/".join(m.sense.concepts), m.negated) for m in reading.mentions]


@pytest.mark.parametrize("text,expected", [
    ("No drum, no knocking can be heard.", [("drum", True), ("knocking", True)]),
    ("Neither bells nor footsteps are audible.", [("bell", True), ("footsteps", True)]),
    ("The siren cannot be heard, but rain falls.", [("siren", True), ("rain", False)]),
    ("I don't hear any birds.", [("birds", True)]),
    ("A bell rings instead of a siren.", [("bell", False), ("siren", True)]),
    ("Police sirens are followed by church bells.", [("siren", False), ("bell", False)]),
    ("A siren blaring.", [("siren", False)]),  # a participle describes its noun: not an alarm
    ("Someone knocks on a door while it rains.", [("knocking", False), ("rain", False)]),
    ("A dog barks while people talk nearby.", [("dog", False), ("voice", False)]),
    ("Dogs bark.", [("dog", False)]),
    ("A glorp hums.", [("unknown:glorp", False)]),
])
def test_it_reads_negation_lemmas_and_sources(text, expected):
    assert _said(text) == expected


def test_it_reads_relations_lists_and_endings():
    ordered = read_caption("After a siren wails, a bell rings, then rain falls in the background.")
    assert ordered.order >= {(0, 1)} and ordered.mentions[2].background
    assert read_caption("A bell rings after a siren wails.").order == {(1, 0)}
    assert read_caption("A whistle and a piano melody can be heard together.").together == {frozenset((0, 1))}
    for listed in ("piano whistle", "siren, bells, rain", "Engine. Birds. Rain.", "drums knocking wind"):
        assert read_caption(listed).list_faults > 0, listed
    for fluent in ("The sound of rain.", "A siren wails while a bell rings.", "Rain is pouring down."):
        assert read_caption(fluent).list_faults == 0, fluent
    for cut in ("The sound of a high", "A siren wails, followed by", "Birds chirp and the", "A bell can be"):
        assert read_caption(cut).truncated, cut
    for whole in ("A car passes by.", "The rain is loud.", "A bell rings twice."):
        assert not read_caption(whole).truncated, whole


def test_caption_flags_count_what_a_listener_notices(target_clips):
    clip = next(c for c in target_clips if len(c.metadata["scene"]["events"]) == 1)
    present = {e["cls"] for e in clip.metadata["scene"]["events"]}
    absent = next(name for name in ("siren", "drum", "piano") if name not in present)
    flags = caption_flags(f"No {absent} can be heard, and a dog barks.", clip)
    assert flags["negation"] and flags["invented"] and not flags["verbless"] and not flags["word_list"]
    assert caption_flags(f"{absent} bells", clip)["verbless"] and caption_flags(f"{absent} bells", clip)["word_list"]
    phrase = caption_flags(f"The sound of a loud {absent} in the background.", clip)  # a noun phrase, not a list
    assert phrase["verbless"] and not phrase["word_list"]


def test_prefcap_judge_answers_in_order_and_names_bad_lines(tmp_path, capsys):
    clips = synthetic_clips("target", 3, seed=2)
    write_jsonl(tmp_path / "clips.jsonl", clips)
    rows = [{"clip_id": clips[0].id, "a": "No sound can be heard.", "b": "A dog barks.", "note": "extra is fine"},
            {"clip_id": clips[1].id, "a": "A bell rings.", "b": "A bell rings."}]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for panel in ("train", "eval"):
        out = tmp_path / f"{panel}.jsonl"
        assert main(["judge", "--clips", str(tmp_path / "clips.jsonl"), "--pairs", str(tmp_path / "pairs.jsonl"),
                     "--panel", panel, "--out", str(out)]) == 0
        answers = [json.loads(line) for line in out.read_text().splitlines()]
        assert [(a["clip_id"], a["a"], a["b"]) for a in answers] == [(r["clip_id"], r["a"], r["b"]) for r in rows]
        assert all(a["verdict"] in ("a", "b", "tie") and len(a["votes"]) == 5 for a in answers)
    capsys.readouterr()
    bad = {"missing b": json.dumps({"clip_id": clips[0].id, "a": "x"}), "not json": "{oops",
           "unknown clip": '{"clip_id": "nope", "a": "x", "b": "y"}'}
    for problem, line in bad.items():
        (tmp_path / "bad.jsonl").write_text(json.dumps(rows[0]) + "\n" + line + "\n")
        code = main(["judge", "--clips", str(tmp_path / "clips.jsonl"), "--pairs", str(tmp_path / "bad.jsonl"),
                     "--panel", "eval", "--out", str(tmp_path / "bad-out.jsonl")])
        error = capsys.readouterr().err
        assert code == 2 and len(error.strip().splitlines()) == 1 and "bad.jsonl:2" in error, (problem, error)
        assert not (tmp_path / "bad-out.jsonl").exists()
    write_jsonl(tmp_path / "plain.jsonl", [Clip(id=c.id) for c in clips])  # clips without a synthetic scene
    code = main(["judge", "--clips", str(tmp_path / "plain.jsonl"), "--pairs", str(tmp_path / "pairs.jsonl"),
                 "--panel", "train", "--out", str(tmp_path / "plain-out.jsonl")])
    error = capsys.readouterr().err
    assert code == 2 and "pairs.jsonl:1" in error and "synthetic scene" in error
