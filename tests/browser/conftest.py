"""A real server on a free port with its own SQLite database, and Debian's Chromium driven by Playwright."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium keeps calling outside hosts and logs errors about it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_PASSWORD = "browser-test-password"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`tabletop serve` on a fixed port and database, which a test may stop and start again."""

    def __init__(self, *, database: Path, log: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "TABLETOP_DATABASE_URL": f"sqlite:///{database}",
            "TABLETOP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "TABLETOP_SCENARIOS_DIR": str(ROOT / "scenarios"),
            "TABLETOP_SQLITE_SYNCHRONOUS": "NORMAL",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # Generous: on a loaded two-core CI machine start-up (migrations, scenarios) can be slow.
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"the server did not become ready:\n{self.log_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """A graceful stop: the server closes every socket with 1012."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A real server with a fresh SQLite database, as a facilitator would start it."""
    running = Server(database=tmp_path / "tabletop.db", log=tmp_path / "server.log")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a module whose tests only need its pages and scripts, not a fresh database."""
    folder = tmp_path_factory.mktemp("server")
    running = Server(database=folder / "tabletop.db", log=folder / "server.log")
    running.start()
    yield running
    running.stop()


# Module scope: a sync Playwright left running would block other modules' own Playwright use.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium; a missing browser skips locally and fails in CI."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class ConsoleWatch:
    """Every console error, uncaught exception and CSP violation of the pages it watches."""

    problems: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> Any:
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"{page.url}: console.{msg.type}: {msg.text}")
                if msg.type in ("error", "warning") and not _harmless(msg.text)
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: uncaught: {exc}"))
        return page


def _harmless(text: str) -> bool:
    # A websocket cut on purpose by the offline test is reported by Chromium as a failed connection.
    return "WebSocket connection to" in text or "net::ERR_INTERNET_DISCONNECTED" in text


@pytest.fixture
def console_watch() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """docs/screenshots/ when TABLETOP_UPDATE_SCREENSHOTS=1, else a scratch folder (no churn in git)."""
    if os.environ.get("TABLETOP_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS
    return tmp_path
