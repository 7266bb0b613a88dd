"""The annotation page in a real headless Chromium (Debian's package, driven by Playwright).

Under CI=true a missing browser or Playwright fails the test: a skipped browser test would hide a broken page.
"""

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import build_prefs_store
from loadtest import running_server


def _chromium() -> str:
    path = os.environ.get("PREFCAP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem is None and not Path(path).is_file():
        problem = f"no Chromium at {path} (apt-get install -y chromium, or set PREFCAP_CHROMIUM)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run: {problem}")
        pytest.skip(problem)
    return path


def _wait_until_playing(page, timeout: float = 10.0) -> None:
    # polled from outside the page: the page's Content-Security-Policy forbids the eval that wait_for_function uses
    deadline = time.monotonic() + timeout
    while page.evaluate("() => document.getElementById('player').currentTime") <= 0:
        assert time.monotonic() < deadline, "the clip never started playing"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True,
            args=["--headless", "--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield browser
        browser.close()


def test_an_annotator_logs_in_listens_presses_a_key_and_the_judgment_is_stored(browser, tmp_path):
    from playwright.sync_api import expect

    store, tokens = build_prefs_store(tmp_path, n_clips=6, annotators=("ann-a", "ann-b"))
    admin_token = store.add_annotator("boss", role="admin")
    shots = Path(os.environ.get("PREFCAP_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with running_server(tmp_path / "prefs.sqlite") as server:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{server.url}/login?token={tokens['ann-a']}")
        assert page.url == f"{server.url}/"  # the token is gone from the address bar and history
        expect(page.locator("#left-text")).not_to_be_empty()
        expect(page.locator("#progress")).to_have_text("0 / 3 done")
        assert "How to judge" in page.text_content("#guidelines")

        page.keyboard.press(" ")  # replay
        _wait_until_playing(page)
        page.screenshot(path=str(shots / "annotate.png"))
        shown_left = page.text_content("#left-text")
        page.keyboard.press("1")
        expect(page.locator("#progress")).to_have_text("1 / 3 done")

        (row,) = store.judgment_rows()
        assert row["annotator"] == "ann-a" and row["seconds"] > 0
        assert row["choice"] == ("a" if row["caption_a"] == shown_left else "b")
        assert shown_left in (row["caption_a"], row["caption_b"])

        skipped = page.text_content("#left-text")
        page.click("#skip")
        expect(page.locator("#left-text")).not_to_have_text(skipped)  # the next item is shown
        page.keyboard.press("3")
        expect(page.locator("#progress")).to_have_text("2 / 3 done")
        assert store.counts()["skips"] == 1 and store.judgment_rows()[-1]["choice"] == "tie"
        page.reload()  # picks up where the annotator left off
        expect(page.locator("#progress")).to_have_text("2 / 3 done")
        page.keyboard.press("2")
        expect(page.locator("#finished")).to_be_visible()

        admin = browser.new_page(viewport={"width": 1100, "height": 900})
        admin.goto(f"{server.url}/login?token={admin_token}")
        assert admin.url == f"{server.url}/admin"
        expect(admin.locator("#annotators tbody")).to_contain_text("3 / 3")
        admin.screenshot(path=str(shots / "admin.png"), full_page=True)
