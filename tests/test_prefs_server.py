"""The annotation server as a real process: a SIGKILL mid-run loses no acknowledged judgment."""

import threading
import time

from conftest import build_prefs_store
from loadtest import run_clients, running_server
from prefcap.prefs.store import Store


def test_a_killed_server_loses_no_acknowledged_judgment_and_a_restart_resumes(tmp_path, db):
    store, tokens = build_prefs_store(tmp_path, db=db, n_clips=60, audio=False, annotators=("w", "x", "y", "z"),
                                      overlap=2)
    reports = []
    with running_server(db) as server:
        clients = threading.Thread(target=lambda: reports.extend(
            run_clients(server.url, list(tokens.values()), judgments=30, think_seconds=(0.0, 0.01))))
        clients.start()
        deadline = time.monotonic() + 60
        while store.counts()["judgments"] < 25 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()
        clients.join()
    acknowledged = {a for report in reports for a in report.acknowledged}
    # 25 were stored before the kill; up to one per client may have been stored but not yet acknowledged
    assert 25 - len(tokens) <= len(acknowledged) < 120, "the kill must land mid-run"
    assert all(report.error and "login" not in report.error for report in reports), [r.error for r in reports]

    after = Store(db, create=False)
    stored = {row["assignment_id"] for row in after.judgment_rows()}
    assert acknowledged <= stored  # nothing the client saw a 2xx for is lost
    assert len(stored) <= len(acknowledged) + len(tokens)  # at most one unacknowledged write in flight per client

    with running_server(db) as server:
        resumed = run_clients(server.url, list(tokens.values()), judgments=30, think_seconds=(0.0, 0.0))
    assert not any(r.error for r in resumed) and all(s < 500 for r in resumed for s in r.statuses)
    rows = after.judgment_rows()
    assert len(rows) == 120 and len({r["assignment_id"] for r in rows}) == 120
    assert after.counts()["open_assignments"] == 0
    after.close()
    store.close()


def test_sixteen_annotators_at_once_store_every_judgment_exactly_once(tmp_path, db):
    """The load test of bench/bench_annotate_load.py at full size (16 annotators x 100 judgments over HTTP against
    a real server process), with shorter think times: exactly 1,600 judgments, none twice, no 5xx."""
    annotators, each = 16, 100
    store, tokens = build_prefs_store(tmp_path, db=db, n_clips=annotators * each, audio=False,
                                      annotators=tuple(f"annotator-{k:02d}" for k in range(annotators)))
    with running_server(db) as server:
        reports = run_clients(server.url, list(tokens.values()), judgments=each, think_seconds=(0.0, 0.005))
    rows = store.judgment_rows()
    statuses = [status for report in reports for status in report.statuses]
    assert [report.error for report in reports if report.error] == []
    assert not [status for status in statuses if status >= 500]
    assert len(rows) == sum(len(report.acknowledged) for report in reports) == annotators * each
    assert len({row["assignment_id"] for row in rows}) == len(rows)  # no assignment judged twice
    assert len({(row["pair_id"], row["annotator"]) for row in rows}) == len(rows)  # nor a pair twice by one person
    assert store.counts()["open_assignments"] == 0
    store.close()


def test_no_token_reaches_the_server_logs(tmp_path):
    """A login link is a password: the server (uvicorn's access log included) must never write it out, even when
    it is wrong."""
    import httpx

    store, tokens = build_prefs_store(tmp_path, n_clips=2, annotators=("ann-a",))
    store.close()
    log = tmp_path / "server.log"
    with running_server(tmp_path / "prefs.sqlite", log=log) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/login", params={"token": tokens["ann-a"]}).status_code == 303
        assert client.get("/api/next").status_code == 200
        assert client.get("/login", params={"token": "wrong-" + tokens["ann-a"]}).status_code == 401
    logged = log.read_text()
    assert "serving" in logged and tokens["ann-a"] not in logged
