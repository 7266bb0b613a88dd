import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import build_prefs_store
from prefcap.data.records import Caption, Clip
from prefcap.prefs.app import COOKIE, create_app
from prefcap.prefs.imports import import_judgments
from prefcap.prefs.schema import AssignmentRow
from prefcap.prefs.store import NewPair


@pytest.fixture()
def world(tmp_path):
    store, tokens = build_prefs_store(tmp_path, n_clips=6, annotators=("ann-a", "ann-b"))
    admin = store.add_annotator("boss", role="admin")
    app = create_app(store)
    return store, tokens, admin, app


def signed_in(app, token: str) -> TestClient:
    client = TestClient(app)
    response = client.get("/login", params={"token": token}, follow_redirects=False)
    assert response.status_code == 303
    return client


def test_login_swaps_the_token_for_an_httponly_cookie_and_a_clean_url(world):
    _, tokens, _, app = world
    client = TestClient(app)
    response = client.get("/login", params={"token": tokens["ann-a"]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert tokens["ann-a"] not in cookie  # the cookie holds a session secret, not the login token
    assert response.headers["referrer-policy"] == "no-referrer"
    page = client.get("/")
    assert page.status_code == 200 and "ann-a" in page.text and "How to judge" in page.text


@pytest.mark.parametrize("path", ["/", "/api/next", "/admin", "/admin/api/stats"])
def test_no_token_or_a_wrong_token_gets_401(world, path):
    _, tokens, _, app = world
    assert TestClient(app).get(path).status_code == 401
    assert TestClient(app).get("/login", params={"token": tokens["ann-a"] + "x"}).status_code == 401
    assert TestClient(app).get("/login").status_code == 401
    forged = TestClient(app, cookies={COOKIE: tokens["ann-a"]})  # a login token is not a session
    assert forged.get(path).status_code == 401


def test_an_answer_is_stored_once_and_progress_moves(world):
    store, tokens, _, app = world
    client = signed_in(app, tokens["ann-a"])
    item = client.get("/api/next").json()
    assert item["finished"] is False and item["has_audio"] and item["done"] == 0 and item["assigned"] == 3
    assert set(item) >= {"left", "right", "clip_id", "assignment_id"} and "system_a" not in json.dumps(item)
    sent = client.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "right", "seconds": 3})
    assert sent.status_code == 201 and sent.json() == {"done": 1, "assigned": 3}
    again = client.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "left"})
    assert again.status_code == 409 and "already judged" in again.json()["detail"]
    rows = store.judgment_rows()
    assert len(rows) == 1 and rows[0]["annotator"] == "ann-a" and rows[0]["seconds"] == 3
    assert client.get("/api/next").json()["assignment_id"] != item["assignment_id"]


def test_an_annotator_never_reaches_another_annotators_items_or_audio(world):
    store, tokens, _, app = world
    alice, bob = signed_in(app, tokens["ann-a"]), signed_in(app, tokens["ann-b"])
    bobs_item = bob.get("/api/next").json()
    stolen = alice.post("/api/answer", json={"assignment_id": bobs_item["assignment_id"], "answer": "left"})
    assert stolen.status_code == 404
    assert alice.get(f"/audio/{bobs_item['clip_id']}").status_code == 404
    own = bob.get(f"/audio/{bobs_item['clip_id']}")
    assert own.status_code == 200 and own.content[:4] == b"RIFF"
    assert store.counts()["judgments"] == 0


@pytest.mark.parametrize("path", [
    "/audio/../../etc/passwd", "/audio/..%2F..%2Fetc%2Fpasswd", "/audio/%2e%2e", "/audio/..%5C..%5Cprefs.sqlite",
    "/audio/%2Fetc%2Fpasswd", "/static/../prefs.sqlite", "/static/..%2F..%2Fstore.py", "/audio/",
])
def test_audio_and_static_files_cannot_be_reached_by_path(world, path):
    _, tokens, _, app = world
    response = signed_in(app, tokens["ann-a"]).get(path)
    assert response.status_code == 404
    assert b"root:" not in response.content and b"SQLite" not in response.content


def test_clips_without_audio_show_their_references(tmp_path):
    store, tokens = build_prefs_store(tmp_path, n_clips=0, annotators=("ann",))
    clip = Clip(id="text-only-1")
    import_judgments(store, [], "test", clips=[clip],
                     references=[Caption(clip_id=clip.id, text="a dog barks twice", source="reference")])
    store.add_pairs([NewPair(clip, Caption(clip_id=clip.id, text="a dog barks", source="x"),
                             Caption(clip_id=clip.id, text="a cat meows", source="y"))], origin="test")
    from prefcap.prefs.assign import AssignConfig, assign

    assign(store, AssignConfig(overlap=1))
    client = signed_in(create_app(store), tokens["ann"])
    item = client.get("/api/next").json()
    assert item["has_audio"] is False and item["references"] == ["a dog barks twice"]
    assert client.get(f"/audio/{clip.id}").status_code == 404


def test_skip_returns_the_item_to_the_queue(world):
    store, tokens, _, app = world
    client = signed_in(app, tokens["ann-a"])
    first = client.get("/api/next").json()
    assert client.post("/api/answer", json={"assignment_id": first["assignment_id"], "answer": "skip"}).json() == {
        "done": 0, "assigned": 3}
    assert client.get("/api/next").json()["assignment_id"] != first["assignment_id"]
    assert store.counts()["skips"] == 1 and store.counts()["judgments"] == 0


def _as_number(value) -> float | None:
    """What a lax JSON schema could read as a number ("3", 3.0 and 3 all name item 3)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


_payloads = st.one_of(
    st.dictionaries(st.sampled_from(["assignment_id", "answer", "seconds", "extra"]),
                    st.one_of(st.integers(-5, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                              st.sampled_from([float("nan"), float("inf")]), st.text(max_size=8), st.none(),
                              st.sampled_from(["left", "right", "tie", "skip"]), st.lists(st.integers(), max_size=2))),
    st.lists(st.integers(), max_size=3),
    st.text(max_size=20),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_payloads, raw=st.booleans())
def test_invalid_payloads_get_a_4xx_with_a_message_and_write_nothing(world, payload, raw):
    store, tokens, _, app = world
    client = signed_in(app, tokens["ann-b"])
    bob = store.annotators()[1]
    with store.transaction() as session:  # keep the payload invalid: never one of this annotator's own items
        own = set(session.scalars(select(AssignmentRow.id).where(AssignmentRow.annotator_id == bob.id)))
    if isinstance(payload, dict) and _as_number(payload.get("assignment_id")) in own:
        payload["assignment_id"] = -1
    before = store.counts()
    # json.dumps writes NaN / Infinity as Python does: not JSON, which the server must refuse too
    body = str(payload) if raw else json.dumps(payload)
    response = client.post("/api/answer", headers={"content-type": "application/json"}, content=body.encode())
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]
    assert store.counts() == before


def test_the_admin_page_needs_the_admin_token_and_reports_quality(world):
    store, tokens, admin, app = world
    annotator = signed_in(app, tokens["ann-a"])
    assert annotator.get("/admin").status_code == 403 and annotator.get("/admin/api/stats").status_code == 403
    boss = signed_in(app, admin)
    assert boss.get("/api/next").status_code == 403  # an admin session is not an annotator session
    item = annotator.get("/api/next").json()
    annotator.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "left", "seconds": 4.0})
    stats = boss.get("/admin/api/stats").json()
    assert stats["counts"]["judgments"] == 1 and stats["counts"]["pairs"] == 6
    rows = {r["annotator"]: r for r in stats["annotators"]}
    assert rows["ann-a"]["done"] == 1 and rows["ann-a"]["median_seconds"] == 4.0 and rows["ann-b"]["done"] == 0
    assert "Cohen" in boss.get("/admin").text


def test_guidelines_are_markdown_and_cannot_inject_script(world, tmp_path):
    store, tokens, _, _ = world
    guidelines = tmp_path / "guidelines.md"
    guidelines.write_text("# Our project\n\nPrefer **specific** captions.\n\n<script>alert(1)</script>\n")
    page = signed_in(create_app(store, guidelines), tokens["ann-a"]).get("/").text
    assert "<strong>specific</strong>" in page and "<script>alert" not in page


@pytest.mark.parametrize("body", ['{"assignment_id": Infinity, "answer": "left"}',
                                  '{"assignment_id": 1, "answer": "left", "seconds": NaN}', "[]", "", "{"])
def test_non_json_numbers_and_broken_bodies_are_422_not_500(world, body):
    store, tokens, _, app = world
    response = signed_in(app, tokens["ann-a"]).post("/api/answer", content=body.encode(),
                                                    headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"]
    assert store.counts()["judgments"] == 0


_path_values = st.one_of(st.text(max_size=12), st.integers(-3, 10**6).map(str), st.just("../../etc/passwd"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_path_values, body=st.one_of(st.none(), _payloads), cookie=st.sampled_from(["", "forged"]))
def test_every_route_of_the_openapi_schema_refuses_strangers_without_5xx_or_writes(world, value, body, cookie):
    """Schema-driven: every operation the app publishes, called without a valid session, with fuzzed path
    parameters and bodies: never a 5xx, never a 2xx beyond the health check, never a write."""
    store, tokens, _, app = world
    before = store.counts()
    client = TestClient(app, cookies={COOKIE: cookie} if cookie else None)
    for path, operations in app.openapi()["paths"].items():
        url = path.replace("{clip_id}", quote(value, safe="")) if "{" in path else path
        for method in operations:
            response = client.request(method.upper(), url, content=json.dumps(body).encode(),
                                      headers={"content-type": "application/json"}, follow_redirects=False)
            assert response.status_code < 500, (method, url, response.text)
            if path not in ("/healthz", "/logout"):
                assert response.status_code >= 400, (method, url, response.status_code)
    assert store.counts() == before
