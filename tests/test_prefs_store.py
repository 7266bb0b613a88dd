import threading

import pytest
from sqlalchemy.exc import IntegrityError

from conftest import build_prefs_store
from prefcap.errors import PrefcapError
from prefcap.prefs.agreement import agreement_report, cohen_kappa, fleiss_kappa
from prefcap.prefs.assign import AssignConfig, assign
from prefcap.prefs.schema import JudgmentRow
from prefcap.prefs.simulate import simulate
from prefcap.prefs.store import AlreadyJudged, NotFound, Store, StoreError
from prefcap.synth.judge import TRAINING_PANEL
from prefcap.synth.panel import build_panel


def test_answers_name_sides_and_the_store_maps_them_through_the_blind_layout(tmp_path, db):
    store, _ = build_prefs_store(tmp_path, db=db, n_clips=12, annotators=("ann",))
    (annotator,) = store.annotators()
    layouts = set()
    while (task := store.next_task(annotator)) is not None:
        row = next(r for r in store.pair_rows() if r["clip_id"] == task.clip_id)
        a_on_left = task.left == row["caption_a"]
        layouts.add(a_on_left)
        assert store.submit(annotator, task.assignment_id, "left") == ("a" if a_on_left else "b")
    assert layouts == {True, False}  # the layout is randomised, so position cannot reveal the system
    stored = store.judgment_rows()
    assert len(stored) == 12
    assert all(r["choice"] == ("a" if r["a_on_left"] else "b") for r in stored)


def test_an_assignment_takes_one_verdict_even_under_concurrent_submission(tmp_path, db):
    store, _ = build_prefs_store(tmp_path, db=db, n_clips=2, annotators=("ann",))
    (annotator,) = store.annotators()
    task = store.next_task(annotator)
    outcomes = []

    def submit():
        try:
            store.submit(annotator, task.assignment_id, "tie")
            outcomes.append("stored")
        except AlreadyJudged:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]
    assert store.counts()["judgments"] == 1
    # the database itself refuses a second verdict, whatever code path writes it
    with pytest.raises(IntegrityError), store.transaction() as session:
        session.add(JudgmentRow(assignment_id=task.assignment_id, choice="a", a_on_left=True))


def test_skip_is_logged_not_a_verdict_and_the_item_comes_back_last(tmp_path, db):
    store, _ = build_prefs_store(tmp_path, db=db, n_clips=3, annotators=("ann",))
    (annotator,) = store.annotators()
    first = store.next_task(annotator)
    store.submit(annotator, first.assignment_id, "skip")
    seen = []
    while (task := store.next_task(annotator)) is not None:
        seen.append(task.assignment_id)
        store.submit(annotator, task.assignment_id, "right")
    assert seen[-1] == first.assignment_id and len(seen) == 3
    assert store.counts()["judgments"] == 3 and store.counts()["skips"] == 1
    assert store.progress(annotator) == (3, 3)


def test_an_annotator_cannot_see_or_answer_another_annotators_items(tmp_path, db):
    store, _ = build_prefs_store(tmp_path, db=db, n_clips=4, annotators=("ann-a", "ann-b"))
    first, second = store.annotators()
    task = store.next_task(first)
    with pytest.raises(NotFound):
        store.submit(second, task.assignment_id, "left")
    with pytest.raises(StoreError, match="unknown answer"):
        store.submit(first, task.assignment_id, "a")
    with pytest.raises(StoreError, match="seconds"):
        store.submit(first, task.assignment_id, "left", seconds=-1)
    assert store.counts()["judgments"] == 0
    assert store.clip_audio(second, task.clip_id) is None  # that clip is only in the first one's queue
    assert store.clip_audio(first, task.clip_id).is_file()


def test_assignment_is_balanced_tops_up_and_mixes_in_gold(tmp_path, db):
    store, _ = build_prefs_store(tmp_path, db=db, n_clips=10, annotators=())
    for name in ("w", "x", "y", "z"):
        store.add_annotator(name)
    stats = assign(store, AssignConfig(overlap=3, seed=1))
    assert stats["assignments"] == 30
    state = store.assignment_counts()["assigned"]
    assert all(len(who) == 3 for who in state.values())
    loads = [store.progress(a)[1] for a in store.annotators()]
    assert max(loads) - min(loads) <= 1
    assert assign(store, AssignConfig(overlap=3, seed=1))["assignments"] == 0  # nothing missing

    store.add_annotator("late")
    assert assign(store, AssignConfig(overlap=4, seed=2))["assignments"] == 10
    with pytest.raises(PrefcapError, match="annotators"):
        assign(store, AssignConfig(overlap=9))
    with pytest.raises(PrefcapError, match="no gold"):
        assign(store, AssignConfig(overlap=1, gold_share=0.2))


def test_gold_items_are_interleaved_at_the_requested_share(tmp_path, db):
    store, _ = build_prefs_store(tmp_path, db=db, n_clips=24, annotators=())
    gold_source, _ = build_prefs_store(tmp_path / "b", n_clips=6, annotators=(), seed=5)
    store.add_pairs([_as_new_pair(gold_source, row, gold="a") for row in gold_source.pair_rows()], origin="gold")
    for name in ("p", "q"):
        store.add_annotator(name)
    stats = assign(store, AssignConfig(overlap=1, gold_share=0.2, seed=0))
    assert stats["gold_assignments"] == 6  # 12 regular each -> 3 gold each (20 % of 15)
    for annotator in store.annotators():
        is_gold = []
        while (task := store.next_task(annotator)) is not None:
            is_gold.append(task.clip_id.startswith("gold-"))
            store.submit(annotator, task.assignment_id, "left")
        assert len(is_gold) == 15 and sum(is_gold) == 3
        assert is_gold != [False] * 12 + [True] * 3  # not recognisable by their place at the end
    assert sum(r["gold"] is not None for r in store.judgment_rows()) == 6


def _as_new_pair(store: Store, row: dict, gold: str):
    from prefcap.data.records import Caption
    from prefcap.prefs.store import NewPair

    clip = store.clip(row["clip_id"]).model_copy(update={"id": "gold-" + row["clip_id"]})
    return NewPair(clip, Caption(clip_id=clip.id, text=row["caption_a"], source=row["system_a"]),
                   Caption(clip_id=clip.id, text=row["caption_b"], source=row["system_b"]), gold=gold)


def test_simulated_annotators_answer_through_the_blind_layout(tmp_path, db):
    store, _ = build_prefs_store(tmp_path, db=db, n_clips=8, audio=False, annotators=())
    stats = simulate(store, "train", seed=0, overlap=3, progress=False)
    assert stats["judgments"] == 24 and store.counts()["open_assignments"] == 0
    people = {p.name: p for p in build_panel(TRAINING_PANEL, seed=0).annotators}
    for row in store.judgment_rows():
        left, right = ((row["caption_a"], row["caption_b"]) if row["a_on_left"]
                       else (row["caption_b"], row["caption_a"]))
        verdict = people[row["annotator"]].prefer(store.clip(row["clip_id"]), left, right)
        expected = {"a": "left", "b": "right", "tie": "tie"}[verdict]
        assert row["choice"] == {"left": "a" if row["a_on_left"] else "b",
                                 "right": "b" if row["a_on_left"] else "a", "tie": "tie"}[expected]
    # the second system names a sound that is not there, so the panel prefers the first
    assert sum(r["choice"] == "a" for r in store.judgment_rows()) >= 20


def test_fleiss_and_cohen_kappa():
    assert fleiss_kappa([["a", "a", "a"], ["b", "b", "b"], ["a", "a", "b"]]) == pytest.approx(0.55)
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) is None  # no variation: undefined, not 1
    assert fleiss_kappa([["a"]]) is None
    assert cohen_kappa(["a", "b", "a", "tie"], ["a", "b", "a", "tie"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


def test_agreement_report_scores_gold_and_pairs_of_annotators():
    def row(pair, annotator, choice, gold=None):
        return {"pair_id": pair, "annotator": annotator, "choice": choice, "gold": gold, "seconds": 2.0}

    rows = [row(1, "x", "a"), row(1, "y", "a"), row(2, "x", "b"), row(2, "y", "b"), row(3, "x", "a"),
            row(3, "y", "b"), row(9, "x", "a", gold="a"), row(9, "y", "b", gold="a")]
    report = agreement_report(rows)
    by_name = {r["annotator"]: r for r in report["annotators"]}
    assert by_name["x"]["gold_accuracy"] == 1.0 and by_name["y"]["gold_accuracy"] == 0.0
    assert report["cohen_kappa"]["x"]["y"] == pytest.approx(cohen_kappa(["a", "b", "a"], ["a", "b", "b"]))
    assert report["pairs_with_two_or_more"] == 3 and report["median_seconds"] == 2.0


def test_store_locations_and_missing_stores(tmp_path):
    (tmp_path / "run").mkdir()
    store = Store.at(tmp_path / "run")
    assert store.url.endswith("run/prefs.sqlite")
    with pytest.raises(PrefcapError, match="no such judgment store"):
        Store.at(tmp_path / "elsewhere.sqlite", create=False)
    token = store.add_annotator("ann")
    assert store.authenticate(token).name == "ann" and store.authenticate(token + "x") is None
    with pytest.raises(StoreError, match="already exists"):
        store.add_annotator("ann")


def test_a_store_carries_its_schema_version_upgrades_older_and_refuses_newer(tmp_path, db):
    from sqlalchemy import text

    from prefcap.prefs.schema import SCHEMA_VERSION

    store, _ = build_prefs_store(tmp_path, db=db, n_clips=3, annotators=("ann",))

    def version() -> int | None:
        with store.transaction() as session:
            return session.scalar(text("SELECT max(version) FROM prefcap_schema"))

    assert version() == SCHEMA_VERSION
    # a store written before the version table: same tables, no version -> upgraded in place, nothing lost
    with store.transaction() as session:
        session.execute(text("DROP TABLE prefcap_schema"))
    reopened = Store(db, create=False)
    assert version() == SCHEMA_VERSION and reopened.counts()["assignments"] == 3
    reopened.close()
    # a newer prefcap's store is refused by name, and left as it is
    with store.transaction() as session:
        session.execute(text("UPDATE prefcap_schema SET version = :v"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(PrefcapError, match=f"schema version {SCHEMA_VERSION + 1}.*newer prefcap"):
        Store(db, create=False)
    assert version() == SCHEMA_VERSION + 1
    # an unversioned store of another layout is refused, naming what is missing
    with store.transaction() as session:
        session.execute(text("DROP TABLE prefcap_schema"))
        session.execute(text("ALTER TABLE judgments DROP COLUMN seconds"))
    with pytest.raises(PrefcapError, match="judgments.*lacks seconds"):
        Store(db, create=False)
    store.close()
