"""A real `tabletop serve` process on a free port, for tests that kill, restart or back it up."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "admin-password-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process; `kill()` is SIGKILL, as a crash or a pulled plug would be."""

    def __init__(
        self, *, database_url: str, port: int, log: Path, extra_env: dict[str, str]
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "TABLETOP_DATABASE_URL": database_url,
            "TABLETOP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "TABLETOP_SCENARIOS_DIR": str(ROOT / "scenarios"),
            **extra_env,
        }
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@contextmanager
def running_server(
    *,
    database_url: str,
    log: Path,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ServerProcess]:
    server = ServerProcess(
        database_url=database_url, port=port or free_port(), log=log, extra_env=extra_env or {}
    )
    try:
        yield server
    finally:
        server.stop()
