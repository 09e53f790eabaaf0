"""The search page in a real browser: headless Chromium, driven through chromedriver's W3C WebDriver protocol.

No Selenium needed: WebDriver is JSON over HTTP, spoken here with `http.client` on loopback (the socket guard
allows it). Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`); where they are absent the
test skips with the reason, except under CI (`CI` set), where their absence is a failure.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from premise_search.corpus import Declaration
from premise_search.retrieval import SearchEngine
from premise_search.server import SearchServer, make_server, serve_in_thread

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key
CORPUS = [
    Declaration(
        "Lattice",
        "class",
        "Mathlib.Order.Lattice",
        "class Lattice (α : Type u) extends SemilatticeSup α, SemilatticeInf α",
        docstring="A lattice is a join-semilattice which is also a meet-semilattice.",
    ),
    Declaration(
        "orderOf_dvd_card",
        "theorem",
        "Mathlib.GroupTheory.OrderOfElement",
        "theorem orderOf_dvd_card [Fintype G] {x : G} : orderOf x ∣ Fintype.card G",
        docstring="The order of an element divides the cardinality of the group.",
    ),
    Declaration("Nat.Prime.two_le", "theorem", "Mathlib.Data.Nat.Prime.Defs", "theorem Nat.Prime.two_le : 2 ≤ p"),
]


def _find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or the reason they are missing."""
    chromium = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)), None)
    driver = shutil.which("chromedriver")
    if driver is None and os.path.exists("/usr/bin/chromedriver"):
        driver = "/usr/bin/chromedriver"
    if chromium is None or driver is None:
        missing = [n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None]
        return f"headless browser test needs {' and '.join(missing)} (Debian: apt-get install chromium chromium-driver)"
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebDriver:
    """A minimal W3C WebDriver client: just the commands this test needs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.session = ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {response.status} {payload}")
        return payload.get("value")

    def s(self, method: str, path: str, body: Any = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def find(self, css: str) -> list[str]:
        found = self.s("POST", "/elements", {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in found]

    def texts(self, css: str) -> list[str]:
        """The visible text of every element matching `css`, read in one script call: the page re-renders its
        results (search as you type), so element handles found in one call may be stale in the next."""
        script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText);"
        return [str(x) for x in self.s("POST", "/execute/sync", {"script": script, "args": [css]})]

    def wait_for(self, css: str, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(css)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no element matched {css!r} within {timeout} s")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    found = _find_browser()
    if isinstance(found, str):
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide a browser: {found}")
        pytest.skip(found)
    chromium, driver_path = found
    port = _free_port()
    process = subprocess.Popen(
        [driver_path, f"--port={port}", "--allowed-ips=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = WebDriver(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if driver.call("GET", "/status").get("ready"):
                    break
            except (OSError, RuntimeError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("chromedriver did not start within 30 s")
            time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
        args += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
        created = driver.call(
            "POST",
            "/session",
            {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": chromium, "args": args}}}},
        )
        driver.session = created["sessionId"]
        yield driver
    finally:
        if driver.session:
            with contextlib.suppress(OSError, RuntimeError):
                driver.call("DELETE", f"/session/{driver.session}")
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server() -> Iterator[SearchServer]:
    corpus_info = {"name": "test", "label": "the e2e test corpus", "commit": "0123456789abcdef"}
    srv = make_server(SearchEngine.build(CORPUS, corpus_info=corpus_info), port=0)
    serve_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def test_search_page_in_headless_chromium(browser: WebDriver, server: SearchServer) -> None:
    browser.s("POST", "/url", {"url": server.url + "/"})
    assert browser.s("GET", "/title") == "premise-search"
    deadline = time.monotonic() + 10  # the page names the corpus it searches (from /health)
    while not browser.texts("#corpus")[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    expected = f"Searching the e2e test corpus at commit 01234567: {len(CORPUS)} declarations."
    assert browser.texts("#corpus")[0] == expected
    (box,) = browser.find("#q")
    browser.s("POST", f"/element/{box}/value", {"text": "a lattice: joins and meets"})
    (go,) = browser.find("#go")
    browser.s("POST", f"/element/{go}/click", {})
    browser.wait_for("li.result .name")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the results for the whole query are shown
        names = browser.texts("li.result .name")
        if names and names[0] == "Lattice" and "results in" in browser.texts("#status")[0]:
            break
        time.sleep(0.1)
    assert names[0] == "Lattice" and set(names) <= {d.name for d in CORPUS}
    first = browser.texts("li.result")[0]
    assert "Mathlib.Order.Lattice" in first and "class" in first
    assert "join-semilattice" in first  # informal text (the docstring when no informal description)
    copy = browser.find("li.result button.copy")[0]
    browser.s("POST", f"/element/{copy}/click", {})
    deadline = time.monotonic() + 10
    while browser.texts("li.result button.copy")[0] != "copied" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert browser.texts("li.result button.copy")[0] == "copied"
    # the switches reach the server: the name channel without rerank
    browser.s("POST", "/execute/sync", {"script": "document.getElementById('mode').value = 'name';", "args": []})
    (rerank,) = browser.find("#rerank")
    browser.s("POST", f"/element/{rerank}/click", {})
    script = {"script": "return document.getElementById('rerank').checked;", "args": []}
    assert browser.s("POST", "/execute/sync", script) is False
    browser.s("POST", f"/element/{box}/clear", {})
    browser.s("POST", f"/element/{box}/value", {"text": "orderOf_dvd_card"})
    browser.s("POST", f"/element/{go}/click", {})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = browser.texts("li.result .name")
        if names and names[0] == "orderOf_dvd_card":
            break
        time.sleep(0.1)
    assert names[0] == "orderOf_dvd_card"
