"""The chat page in a real headless Chromium (Debian's chromium + chromedriver, via selenium) against
a real ``dialog serve``: schedule, reload (the conversation continues), confirm, see the booking."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import RedisServer
from tests.test_multicontainer import DialogServe, serve_env

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
KEY = "web-key-2f8e61c0a4"
TIMEOUT = 15


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if os.environ.get("DIALOG_SKIP_BROWSER", "0") != "0" and not os.environ.get("CI"):
        pytest.skip("DIALOG_SKIP_BROWSER is set (CI=true runs this test regardless)")
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver; `make browser`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,800",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(redis_server: Callable[..., RedisServer], tmp_path: Path) -> Iterator[DialogServe]:
    env = serve_env(DIALOG_REDIS_URL=redis_server().url, DIALOG_API_KEYS=f"{KEY}=web-tenant")
    serve = DialogServe(env, tmp_path / "serve.log").start()
    try:
        yield serve.wait_ready()
    finally:
        serve.stop()


@pytest.mark.slow
def test_schedule_reload_and_confirm_in_a_real_browser(browser: WebDriver, server: DialogServe, tmp_path: Path) -> None:
    wait = WebDriverWait(browser, TIMEOUT)

    def text_of(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    def bot_replies() -> list[str]:
        return [str(e.text) for e in browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot, #log .msg.error")]

    def send(text: str) -> str:
        before = len(bot_replies())
        browser.find_element(By.ID, "text").send_keys(text)
        browser.find_element(By.ID, "send").click()
        wait.until(lambda _: len(bot_replies()) > before)
        wait.until(lambda _: browser.find_element(By.ID, "send").is_enabled())  # the diagram is drawn
        return bot_replies()[-1]

    browser.get(f"{server.url}/?key={KEY}")
    wait.until(lambda _: browser.find_element(By.ID, "text").is_displayed())
    assert "key=" not in browser.current_url  # the key went to localStorage, out of the address bar
    conversation = text_of("conversation")
    assert conversation.startswith("web-")

    assert "Shall I book a call with Dana Scully" in send("Schedule a call with Dana Scully tomorrow at 10am")
    assert text_of("state") == "awaiting_confirmation"
    assert browser.find_elements(By.CSS_SELECTOR, "#diagram svg")

    # A reload continues the conversation: its id and transcript from localStorage, its state from the API.
    browser.refresh()
    wait.until(lambda _: text_of("state") == "awaiting_confirmation")
    assert text_of("conversation") == conversation
    assert "Shall I book" in bot_replies()[-1]
    wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#diagram svg"))

    reply = send("yes")
    assert reply.startswith("Booked: a call with Dana Scully")
    assert text_of("state") == "done" and "Dana Scully" in text_of("event")
    shot = tmp_path / "chat.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    stored = httpx.get(
        f"{server.url}/v1/conversations/{conversation}", headers={"Authorization": f"Bearer {KEY}"}, timeout=5
    ).json()
    assert (stored["state"], stored["last_outcome"]) == ("done", "booked")
    assert KEY not in server.log.read_text()  # not even from the page's ?key=


@pytest.mark.slow
def test_at_phone_width_nothing_overflows_and_the_history_shows_the_booking(
    browser: WebDriver, server: DialogServe, tmp_path: Path
) -> None:
    """390 px (a phone): the page is no wider than the screen, Send and "Forget key" stay visible,
    and the history panel lists the turns, the booking with the words that confirmed it."""
    browser.set_window_size(390, 844)
    wait = WebDriverWait(browser, TIMEOUT)
    browser.get(f"{server.url}/?key={KEY}")
    wait.until(lambda _: browser.find_element(By.ID, "text").is_displayed())
    for text in ("Schedule a call with Dana Scully tomorrow at 10am", "uh yeah sure"):
        before = len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot"))
        browser.find_element(By.ID, "text").send_keys(text)
        browser.find_element(By.ID, "send").click()
        wait.until(_more_replies_than(browser, before))
        wait.until(lambda _: browser.find_element(By.ID, "send").is_enabled())
    width = browser.execute_script("return document.documentElement.scrollWidth")
    inner = browser.execute_script("return window.innerWidth")
    assert width <= inner, f"the page is {width} px wide in a {inner} px window"
    for element_id in ("send", "forget"):
        box = f"return document.getElementById('{element_id}').getBoundingClientRect().right"
        right = browser.execute_script(box)
        assert right <= inner, f"#{element_id} is cut off at {right} px"
    wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#history li")) == 3)
    newest = browser.find_elements(By.CSS_SELECTOR, "#history li")[0].text
    assert "uh yeah sure" in newest and "booked" in newest
    assert browser.save_screenshot(str(tmp_path / "phone.png"))


def _more_replies_than(browser: WebDriver, n: int) -> Callable[[WebDriver], bool]:
    """A wait condition: the page shows more than ``n`` replies."""
    return lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) > n
