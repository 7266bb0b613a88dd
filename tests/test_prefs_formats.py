"""Preference data in and out of the store: JSONL, Hugging Face, Label Studio and FENSE formats."""

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from prefcap.data.records import Caption, Clip, Judgment, write_jsonl
from prefcap.errors import ManifestError, PrefcapError
from prefcap.prefs.formats import (
    JSONL_KEYS,
    export_hf,
    export_jsonl,
    export_label_studio,
    import_fense,
    import_jsonl,
    import_label_studio,
)
from prefcap.prefs.imports import ImportedJudgment, import_judgments
from prefcap.prefs.store import NewPair, Store

REPO = Path(__file__).resolve().parents[1]
FENSE_DIR = Path(os.environ.get("PREFCAP_FENSE_DIR", REPO.parent / "shared" / "data" / "fense"))
STORE_ONLY = {"judgment_id", "pair_id", "origin", "a_on_left"}  # what does not carry from one store to another


def new_pair(clip_id: str, text_a: str, text_b: str, system_a: str = "sys-1", system_b: str = "sys-2",
             gold: str | None = None) -> NewPair:
    return NewPair(Clip(id=clip_id, domain="test"), Caption(clip_id=clip_id, text=text_a, source=system_a),
                   Caption(clip_id=clip_id, text=text_b, source=system_b), gold=gold)


def judge(store: Store, pair: NewPair, votes: dict[str, str], seconds: float | None = None) -> None:
    """Store `votes` ({annotator: choice}) on one pair, as the web app would have."""
    import_judgments(store, [ImportedJudgment(pair, choice, annotator, seconds=seconds)
                            for annotator, choice in votes.items()], origin="test")


def portable(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key not in STORE_ONLY} for row in rows]


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value))
    return path


# ---- JSONL ------------------------------------------------------------------------------------------------


def test_jsonl_round_trip_keeps_every_judgment(tmp_path):
    store = Store(tmp_path / "a.sqlite")
    judge(store, new_pair("c1", "a dog barks", "a cat meows"), {"ann1": "a", "ann2": "b", "ann3": "tie"}, seconds=3.5)
    judge(store, new_pair("c1", "a cat meows", "a dog barks", "sys-2", "sys-1"), {"ann4": "a"})  # the other way round
    judge(store, new_pair("c2", "rain falls", "rain", gold="a"), {"ann1": "a"})
    judge(store, new_pair("c3", "wind blows", "", system_b="empty"), {"ann2": "a"})  # a system that wrote nothing
    path = tmp_path / "judgments.jsonl"

    assert export_jsonl(store, path) == 6
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(tuple(line) == JSONL_KEYS for line in lines)
    assert lines[3]["choice"] == "b" and lines[0]["seconds"] == 3.5 and lines[4]["gold"] == "a"

    fresh = Store(tmp_path / "b.sqlite")
    assert import_jsonl(fresh, path) == {"judgments": 6, "duplicates": 0}
    assert portable(fresh.judgment_rows()) == portable(store.judgment_rows())
    counts = fresh.counts()
    assert import_jsonl(fresh, path) == {"judgments": 0, "duplicates": 6}
    assert fresh.counts() == counts


def test_jsonl_reads_plain_judgment_records(tmp_path):
    store = Store(tmp_path / "prefs.sqlite")
    store.add_clips([Clip(id="known", domain="target")])
    path = tmp_path / "judgments.jsonl"
    write_jsonl(path, [Judgment(clip_id="known", caption_a="x", caption_b="y", choice="b", annotator="ann"),
                       Judgment(clip_id="new", caption_a="x", caption_b="y", choice="tie", annotator="ann")])

    assert import_jsonl(store, path) == {"judgments": 2, "duplicates": 0}
    assert store.clip("known").domain == "target" and store.clip("new").domain == "imported"
    rows = store.judgment_rows()
    assert [row["choice"] for row in rows] == ["b", "tie"]
    assert {row["system_a"] for row in rows} == {row["system_b"] for row in rows} == {"unknown"}
    assert {row["origin"] for row in rows} == {"jsonl"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "invalid"),
        ('{"clip_id": "c", "caption_a": "x", "caption_b": "y", "choice": "both", "annotator": "n"}', "choice"),
        ('{"clip_id": "c", "caption_a": "x", "caption_b": "x", "choice": "a", "annotator": "n"}', "same caption"),
        ('{"clip_id": "c", "caption_a": "x", "caption_b": "y", "choice": "a", "annotator": "n", "seconds": -1}',
         "seconds"),
        ('{"clip_id": "c", "caption_a": "x", "caption_b": "y", "choice": "a", "annotator": "n", "who": 1}', "who"),
    ],
)
def test_a_bad_jsonl_line_is_named_and_nothing_is_imported(tmp_path, line, problem):
    store = Store(tmp_path / "prefs.sqlite")
    judge(store, new_pair("c0", "x", "y"), {"ann": "a"})
    before = store.counts()
    good = [json.dumps({"clip_id": f"c{k}", "caption_a": "x", "caption_b": "y", "choice": "a", "annotator": "n"})
            for k in (1, 2)]
    path = tmp_path / "judgments.jsonl"
    path.write_text("\n".join([*good, line]) + "\n")
    with pytest.raises(ManifestError, match=rf"judgments.jsonl:3: .*{problem}"):
        import_jsonl(store, path)
    assert store.counts() == before


# ---- Hugging Face -----------------------------------------------------------------------------------------


def test_hf_export_is_the_majority_of_each_judged_pair(tmp_path):
    store = Store(tmp_path / "prefs.sqlite")
    judge(store, new_pair("c1", "a dog barks", "a cat"), {"n1": "a", "n2": "a", "n3": "b"})
    judge(store, new_pair("c2", "rain", "rain falls on a roof"), {"n1": "b", "n2": "b", "n3": "tie"})
    judge(store, new_pair("c3", "wind", "strong wind"), {"n1": "a", "n2": "b", "n3": "tie", "n4": "tie"})
    judge(store, new_pair("c4", "a bell rings", "a bell", gold="a"), {"n1": "a"})
    store.add_pairs([new_pair("c5", "not judged", "nobody saw this")], origin="test")
    path = tmp_path / "hf.jsonl"

    assert export_hf(store, path) == 3
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["clip_id"], r["chosen"], r["rejected"], r["tie"]) for r in rows] == [
        ("c1", "a dog barks", "a cat", False),
        ("c2", "rain falls on a roof", "rain", False),
        ("c3", "wind", "strong wind", True),
    ]
    assert [(r["votes_a"], r["votes_b"], r["votes_tie"], r["n_votes"]) for r in rows] == [
        (2, 1, 0, 3), (0, 2, 1, 3), (1, 1, 2, 4)]
    assert (rows[1]["system_chosen"], rows[1]["system_rejected"]) == ("sys-2", "sys-1")
    # one schema for the whole table: the same columns, each with one type
    assert all(list(row) == list(rows[0]) for row in rows)
    assert all({key: type(value) for key, value in row.items()} == {key: type(value) for key, value in rows[0].items()}
               for row in rows)
    assert type(rows[0]["tie"]) is bool and type(rows[0]["pair_id"]) is int

    assert export_hf(store, path, include_gold=True) == 4
    assert json.loads(path.read_text().splitlines()[-1])["chosen"] == "a bell rings"


# ---- Label Studio -----------------------------------------------------------------------------------------


def pairwise(who, selected: str | None, **extra) -> dict:
    result = [{"from_name": "comparison", "to_name": "text1", "type": "pairwise", "value": {"selected": selected}}]
    return {"completed_by": who, "result": result if selected else [], **extra}


def test_label_studio_export_then_annotations_import(tmp_path):
    store = Store(tmp_path / "prefs.sqlite")
    import_judgments(store, [], "test", clips=[Clip(id="c1"), Clip(id="c2")],
                     references=[Caption(clip_id="c1", text="a dog barks twice", source="reference")])
    store.add_pairs([new_pair("c1", "a dog barks", "a cat meows"), new_pair("c2", "rain", "rain on a roof")], "test")
    path = tmp_path / "tasks.json"

    assert export_label_studio(store, path) == 2
    text = path.read_text()
    assert "sys-1" not in text  # blind: no system names
    tasks = json.loads(text)
    assert tasks[0]["data"] == {"clip_id": "c1", "pair_id": tasks[0]["id"], "text1": "a dog barks",
                                "text2": "a cat meows", "references": ["a dog barks twice"],
                                "references_text": "a dog barks twice"}
    config = ET.parse(tmp_path / "tasks.label_config.xml").getroot()
    assert config.find("Pairwise").attrib == {"name": "comparison", "toName": "text1,text2"}
    assert {t.get("name"): t.get("value") for t in config.iter("Text")}["text2"] == "$text2"

    # what Label Studio gives back: its own task ids, users as ids or objects, skipped and cancelled work
    for number, task in enumerate(tasks, start=900):
        task["id"] = number
    tasks[0]["annotations"] = [
        pairwise(7, "left", lead_time=4.2, created_at="2024-05-01T10:00:00+02:00"),
        pairwise({"id": 3, "email": "ann@example.org"}, "right"),
        pairwise(8, "left", was_cancelled=True),
        pairwise(9, None),
    ]
    tasks[1]["data"]["text1"], tasks[1]["data"]["text2"] = "rain on a roof", "rain"  # shown the other way round
    tasks[1]["annotations"] = [pairwise(7, "right")]
    exported = write_json(tmp_path / "export.json", tasks)

    assert import_label_studio(store, exported) == {"judgments": 3, "duplicates": 0, "skipped": 2}
    assert store.counts()["pairs"] == 2
    rows = store.judgment_rows()
    assert [(r["clip_id"], r["annotator"], r["choice"]) for r in rows] == [
        ("c1", "labelstudio-7", "a"), ("c1", "labelstudio-ann@example.org", "b"), ("c2", "labelstudio-7", "a")]
    assert {(r["system_a"], r["system_b"]) for r in rows} == {("sys-1", "sys-2")}
    assert rows[0]["seconds"] == 4.2 and rows[0]["time"] == "2024-05-01T08:00:00"
    assert import_label_studio(store, exported)["duplicates"] == 3

    fresh = Store(tmp_path / "fresh.sqlite")  # pairs it does not know: captions of an unknown system
    assert import_label_studio(fresh, exported)["judgments"] == 3
    assert {r["system_a"] for r in fresh.judgment_rows()} == {"unknown"} and fresh.clip("c2").domain == "imported"


@pytest.mark.parametrize(
    ("task", "problem"),
    [
        ("not a task", "lacks clip_id, text1 or text2"),
        ({"data": {"clip_id": "c", "text1": "x"}}, "lacks clip_id, text1 or text2"),
        ({"data": {"clip_id": "c", "text1": "x", "text2": "x"}}, "two different texts"),
        ({"data": {"clip_id": "c", "text1": "x", "text2": "y"}, "annotations": [pairwise(1, "middle")]}, "'middle'"),
        ({"data": {"clip_id": "c", "text1": "x", "text2": "y"}, "annotations": [pairwise(None, "left")]},
         "completed_by"),
        ({"data": {"clip_id": "c", "text1": "x", "text2": "y"}, "annotations": [pairwise(1, "left", lead_time="1")]},
         "lead_time"),
    ],
)
def test_a_bad_label_studio_task_is_named_and_nothing_is_imported(tmp_path, task, problem):
    store = Store(tmp_path / "prefs.sqlite")
    good = {"data": {"clip_id": "c", "text1": "a", "text2": "b"}, "annotations": [pairwise(1, "left")]}
    path = write_json(tmp_path / "export.json", [good, good, task])
    with pytest.raises(PrefcapError, match=rf"export.json: task \[2\]: .*{problem}"):
        import_label_studio(store, path)
    assert store.counts()["judgments"] == 0 and store.clips() == []


# ---- FENSE ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clotho_eval() -> list[dict]:
    path = FENSE_DIR / "clotho_eval.json"
    if not path.is_file():
        message = f"{path} is missing: set PREFCAP_FENSE_DIR to the folder holding the FENSE data"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def fense_store(clotho_eval, tmp_path_factory) -> tuple[Store, dict]:
    store = Store(tmp_path_factory.mktemp("fense") / "prefs.sqlite")
    return store, import_fense(store, FENSE_DIR / "clotho_eval.json")


@pytest.mark.slow
def test_clotho_eval_imports_every_clip_pair_and_vote(fense_store, clotho_eval, tmp_path):
    store, stats = fense_store
    assert stats == {"clips": 250, "pairs": 1750, "skipped_pairs": 0, "judgments": 7000, "duplicates": 0}
    counts = store.counts()
    assert (counts["clips"], counts["pairs"], counts["judgments"], counts["annotators"]) == (250, 1750, 7000, 4)
    first = clotho_eval[0]
    assert store.references(first["raw_name"]) == first["references"]

    # the stored votes give FENSE's human labels: the sign of each pair's vote sum
    export_hf(store, tmp_path / "hf.jsonl")
    rows = {(r["clip_id"], r["system_chosen"]): r for r in map(json.loads, (tmp_path / "hf.jsonl").open())}
    for clip in clotho_eval[:20]:
        for key in ("HC", "HI", "HM", "MM_1"):
            caption_1, caption_2, *_, votes = clip[key]
            row = rows[(clip["raw_name"], f"fense-{key}")]
            assert row["tie"] == (sum(votes) == 0)
            assert row["chosen"] == (caption_2 if sum(votes) < 0 else caption_1)

    # importing again stores nothing twice (a slice of the file keeps this test fast)
    again = import_fense(store, write_json(tmp_path / "slice.json", clotho_eval[:20]))
    assert (again["judgments"], again["duplicates"]) == (0, 20 * 7 * 4)
    assert store.counts() == counts


def test_any_fense_format_file_imports(tmp_path):
    store = Store(tmp_path / "prefs.sqlite")
    clips = [
        {"raw_name": "a.wav", "references": ["a dog barks", "  a dog   barking "],
         "HC": ["a dog barks", "a dog is barking", "human_1", "human_2", [1, 1, -1, 0]],
         "HI": None,  # null, and no HM at all
         "MM_1": ["a dog", "a cat", "fc", "rl", "an extra field", [1, -1, 0]],
         "notes": "free text is ignored",
         "XY": ["a loud dog", "a quiet dog", [-1]]},  # an unknown key holding a pair is a pair
        {"HM": ["x", "y", [0, 0, -1, 1]], "raw_name": "b.wav",  # no references
         "MM_2": ["same  caption", " same caption", [1, 1]]},  # the same caption twice: skipped
        {"raw_name": "c.wav", "references": [], "MM_3": ["p", "q", []]},  # no votes: skipped
    ]
    path = write_json(tmp_path / "eval.json", clips)

    stats = import_fense(store, path)
    assert stats == {"clips": 3, "pairs": 4, "skipped_pairs": 2, "judgments": 12, "duplicates": 0}
    assert [clip.id for clip in store.clips()] == ["a.wav", "b.wav", "c.wav"]
    assert {clip.domain for clip in store.clips()} == {"fense"}
    assert store.references("a.wav") == ["a dog barks", "a dog barking"]
    mm = [r for r in store.judgment_rows() if r["system_a"] == "fense-MM_1"]
    assert [(r["annotator"], r["choice"]) for r in mm] == [("fense-1", "a"), ("fense-2", "b"), ("fense-3", "tie")]
    assert {(r["caption_a"], r["caption_b"], r["system_b"], r["origin"]) for r in mm} == {
        ("a dog", "a cat", "fense-MM_1", "fense:MM_1")}

    counts = store.counts()
    assert import_fense(store, path) == {**stats, "judgments": 0, "duplicates": 12}
    assert store.counts() == counts


def test_fense_clips_named_only_by_audio_id_import(tmp_path):
    """AudioCaps-Eval names its clips by YouTube id (`audio_id`) and has no `raw_name`; a file may mix both."""
    store = Store(tmp_path / "prefs.sqlite")
    clips = [
        {"audio_id": "--0w1YA1Hm4", "references": ["a vehicle engine revs"],
         "HM": ["an engine revs", "a dog barks", [1, 1, 1, -1]]},
        {"audio_id": " -1nilez17Dg ", "references": ["rain falls"], "MM_1": ["rain", "rain falls on a roof", [-1, -1]]},
        {"raw_name": "x.wav", "audio_id": "ignored-when-raw-name-is-there", "HC": ["a", "b", [1]]},
    ]
    stats = import_fense(store, write_json(tmp_path / "audiocaps_eval.json", clips))
    assert stats == {"clips": 3, "pairs": 3, "skipped_pairs": 0, "judgments": 7, "duplicates": 0}
    assert [clip.id for clip in store.clips()] == ["--0w1YA1Hm4", "-1nilez17Dg", "x.wav"]
    assert store.references("--0w1YA1Hm4") == ["a vehicle engine revs"]
    hm = [r for r in store.judgment_rows() if r["clip_id"] == "--0w1YA1Hm4"]
    assert sorted(r["choice"] for r in hm) == ["a", "a", "a", "b"]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (["not", "a", "clip"], r"clip \[2\]: expected an object"),
        ({"HC": ["a", "b", [1]]}, r"clip \[2\]\['raw_name'\]"),
        ({"audio_id": None, "HC": ["a", "b", [1]]}, r"clip \[2\]\['audio_id'\]: the clip's id must be"),
        ({"raw_name": " ", "audio_id": "yt", "HC": ["a", "b", [1]]}, r"clip \[2\]\['raw_name'\]"),
        ({"raw_name": "c.wav", "references": ["ok", 3]}, r"clip \[2\]\['references'\]"),
        ({"raw_name": "c.wav", "HC": ["a", "b"]}, r"clip \[2\]\['HC'\]: a pair is"),
        ({"raw_name": "c.wav", "MM_1": "a versus b"}, r"clip \[2\]\['MM_1'\]: a pair must be a list"),
        ({"raw_name": "c.wav", "HI": ["a", 3, [1]]}, r"clip \[2\]\['HI'\]: the two captions"),
        ({"raw_name": "c.wav", "HM": ["a", "b", 1]}, r"clip \[2\]\['HM'\]: votes"),
        ({"raw_name": "c.wav", "HM": ["a", "b", [1, 2]]}, r"clip \[2\]\['HM'\]: votes"),
        ({"raw_name": "c.wav", "HM": ["a", "b", [True]]}, r"clip \[2\]\['HM'\]: votes"),
    ],
)
def test_a_malformed_fense_clip_is_named_and_nothing_is_imported(tmp_path, entry, problem):
    store = Store(tmp_path / "prefs.sqlite")
    judge(store, new_pair("c0", "x", "y"), {"ann": "a"})
    before = store.counts()
    good = [{"raw_name": f"{k}.wav", "references": ["a ref"], "HC": ["a", "b", [1, -1]]} for k in range(2)]
    path = write_json(tmp_path / "eval.json", [*good, entry])
    with pytest.raises(PrefcapError, match=rf"eval.json: {problem}"):
        import_fense(store, path)
    assert store.counts() == before and [clip.id for clip in store.clips()] == ["c0"]


@pytest.mark.parametrize(("content", "problem"), [("{not json", "not a JSON file"), ('{"HC": []}', "JSON list")])
def test_a_fense_file_that_is_not_a_list_of_clips_is_refused(tmp_path, content, problem):
    path = tmp_path / "eval.json"
    path.write_text(content)
    with pytest.raises(PrefcapError, match=problem):
        import_fense(Store(tmp_path / "prefs.sqlite"), path)
