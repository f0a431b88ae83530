"""The review page in a real headless Chromium (Debian's package, driven by Selenium): rate three
records by keyboard, edit an output, choose in a pair, kill the server, restart it, reload, and check
both what the page shows and what feedback.jsonl holds. A record holding <script> and <img onerror>
must show as text and run nothing.

Without Chromium / chromedriver the test is skipped, except under CI (env CI set), where it fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sftdata.core.records import Record

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INJECTION = ('<script>window.__pwned = "script"</script><img src=x onerror="window.__pwned = \'img\'">'
             '<b>bold?</b>')
RECORDS = [Record("Name a primary colour.", output="Red."),
           Record("Add 2 and 3.", output="The sum is 7."),
           Record("Translate 'cat' to French.", output="chat"),
           Record("Repeat this HTML.", input="<i>x</i>", output=INJECTION),
           Record("Which is the capital of France?", output="Lyon.", meta={"output_b": "Paris."}),
           Record("Name a mammal.", output="A whale.")]


def require_browser() -> None:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = "chromium / chromedriver not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("selenium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sftdata", "review", str(path), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()) from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("review server did not start")


def make_driver(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver, script: str, timeout: float = 15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


NAV_KEYS = ("n", "p")


def press(driver, feedback: Path, *keys: str) -> None:
    """Type ``keys``; after each action key, wait until the action is in feedback.jsonl and shown."""
    from selenium.webdriver.common.action_chains import ActionChains

    for key in keys:
        before = len(feedback_rows(feedback))
        ActionChains(driver).send_keys(key).perform()
        if key not in NAV_KEYS:
            _wait_rows(feedback, before + 1)


def _wait_rows(path: Path, count: int, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(feedback_rows(path)) >= count:
            time.sleep(0.1)  # the page applies the reply
            return
        time.sleep(0.05)
    raise AssertionError(f"feedback.jsonl never reached {count} lines")


def feedback_rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines()] if path.exists() else []


def text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def test_review_page_by_keyboard_survives_kill_and_reload(tmp_path: Path):
    require_browser()
    data = tmp_path / "judged.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in RECORDS), encoding="utf-8")
    feedback = tmp_path / "feedback.jsonl"
    port = free_port()
    server = start_server(data, port)
    driver = make_driver(tmp_path / "profile")
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait_for(driver, "return document.body.dataset.ready")
        assert text(driver, "progress") == "0 / 6 reviewed"
        press(driver, feedback, "k")            # record 0: keep
        press(driver, feedback, "7", "x")       # record 1: score 7, reject
        press(driver, feedback, "0", "k")       # record 2: score 10, keep
        assert text(driver, "progress") == "3 / 6 reviewed"
        # record 3 holds markup: shown as text, nothing ran, no element was made from it
        assert text(driver, "output") == INJECTION and text(driver, "input") == "<i>x</i>"
        assert driver.execute_script("return window.__pwned === undefined")
        assert driver.execute_script("return document.querySelectorAll('#record img, #record b, #record i, "
                                     "#record script').length") == 0
        # edit its output
        from selenium.webdriver.common.keys import Keys

        press(driver, feedback, "n", "p")  # move away and back: navigation sends nothing
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(driver).send_keys("e").perform()
        wait_for(driver, "return document.activeElement.id === 'edit'")
        box = driver.find_element("id", "edit")
        box.clear()
        box.send_keys("A safe, edited answer.")
        before = len(feedback_rows(feedback))
        ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
        _wait_rows(feedback, before + 1)
        assert text(driver, "output") == "A safe, edited answer."
        press(driver, feedback, "n", "b")       # record 4 (a pair): B is better
        assert text(driver, "progress") == "5 / 6 reviewed"
        assert driver.execute_script("return window.__pwned === undefined")
        rows = feedback_rows(feedback)
        assert [(r["index"], r["action"], r.get("score"), r.get("output"), r.get("choice")) for r in rows] == [
            (0, "keep", None, None, None), (1, "score", 7, None, None), (1, "reject", None, None, None),
            (2, "score", 10, None, None), (2, "keep", None, None, None),
            (3, "edit", None, "A safe, edited answer.", None), (4, "choose", None, None, "B")]
        assert [r["id"] for r in rows][:1] == [RECORDS[0].id]

        # kill the server hard, start a new one, reload: nothing lost, resumes at the first unreviewed
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        server = start_server(data, port)
        driver.refresh()
        wait_for(driver, "return document.body.dataset.ready")
        assert text(driver, "progress") == "5 / 6 reviewed"
        assert driver.execute_script("return document.body.dataset.current") == "5"
        assert text(driver, "instruction") == "Name a mammal."
        press(driver, feedback, "p", "p")
        assert text(driver, "output") == "A safe, edited answer." and text(driver, "status") == "edited"
        press(driver, feedback, "p")
        assert text(driver, "status") == "kept · score 10"
        press(driver, feedback, "p")
        assert text(driver, "status") == "rejected · score 7"
        assert driver.execute_script("return window.__pwned === undefined")
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"] \
            if hasattr(driver, "get_log") else []
        assert not errors, errors
    finally:
        driver.quit()
        server.kill()
        server.wait(timeout=10)
    assert feedback.read_text("utf-8").endswith("\n")
