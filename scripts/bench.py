#!/usr/bin/env python3
"""Load benchmark of the live hub against a raw websockets broadcast server, on loopback.

Starts the app (SQLite in a temporary directory by default; `--postgres URL` for a throwaway
PostgreSQL database; `--redis URL --processes N` for N processes sharing Redis) and, in the
same run, a minimal `websockets` broadcast server as the physical baseline. Participants are
real websocket clients spread over several client processes. Prints one table and writes it
to docs/performance.md (between the bench markers; the rest of the file is kept). Usage:

    .venv/bin/python scripts/bench.py [--postgres URL] [--redis URL --processes 2] [--quick]
"""

import argparse
import asyncio
import dataclasses
import datetime as dt
import http.client
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import random
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast, serve

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
ADMIN_PASSWORD = "bench-admin-password"
# Six writers per team, each on a field of its own: versions then follow the writer's count.
COEDIT_FIELDS = ("overview", "cause", "business_impact", "secondary_damage", "press", "notes")
# The browser's reconnect schedule (static/js/live.js): half to all of 500 ms × 2^attempt, ≤ 15 s;
# after a 1012 close (the server restarts) ≤ 0.5 s until a hello arrives.
BACKOFF_BASE_S, BACKOFF_CAP_S, RESTART_CAP_S = 0.5, 15.0, 0.5
# How long a fan-out waits for stragglers before counting a message as lost.
DRAIN_S = 15.0
STORM_LIMIT_S = 90.0


# -- measuring helpers ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.01)
    raise SystemExit(f"nothing listens on port {port} after {timeout_s:.0f} s")


# -- the client processes -------------------------------------------------------------------------


@dataclass
class Seat:
    """One participant socket, as a client process runs it."""

    url: str
    token: str | None
    team: int
    field: str | None = None
    reconnect: bool = False
    ws: Any = None
    acked: int = 0
    errors: int = 0
    # Co-editing: per teammate field, versions seen (to find losses and reordering).
    versions: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    # The server process's port: with several, it tells which one an edit came through.
    port: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.port = urlsplit(self.url).port or 0


class ClientProcess:
    """Runs in a child process: connects its seats, records what arrives, obeys the coordinator."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.seats: list[Seat] = []
        self.injects: list[tuple[str, float, float]] = []
        # Edit-to-teammate latencies, by whether the sender's socket was on the receiver's server
        # process ("same") or on another ("other": the Redis hop; only with several processes).
        self.edit_latency_by_route: dict[str, list[float]] = {"same": [], "other": []}
        self.reordered = 0
        self.back_at: list[float] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, args = await loop.run_in_executor(None, self.pipe.recv)
            if command == "stop":
                await self.close()
                self.pipe.send("stopped")
                return
            result = await getattr(self, command)(**args)
            self.pipe.send(result)

    async def ping(self) -> str:
        return "pong"

    async def connect(self, seats: list[dict[str, Any]], reconnect: bool) -> int:
        new = [Seat(**s, reconnect=reconnect) for s in seats]
        self.seats.extend(new)
        ready = [asyncio.get_running_loop().create_future() for _ in new]
        gate = asyncio.Semaphore(50)
        for seat, hello in zip(new, ready, strict=True):
            self.tasks.add(asyncio.create_task(self.hold(seat, hello, gate)))
        await asyncio.wait_for(asyncio.gather(*ready), 120)
        return len(new)

    async def hold(
        self, seat: Seat, hello: "asyncio.Future[None]", gate: asyncio.Semaphore
    ) -> None:
        """Keep one socket open; with `reconnect`, come back like the browser does after a close."""
        attempt = 0
        restarting = False
        headers = {"Authorization": f"Bearer {seat.token}"} if seat.token else {}
        while True:
            try:
                async with gate:
                    ws = await connect(
                        seat.url, additional_headers=headers, max_size=2**22, open_timeout=60
                    )
                seat.ws = ws
                async for raw in ws:
                    self.receive(seat, raw, hello)
                    attempt, restarting = 0, False
                restarting = ws.close_code == 1012
            except websockets.ConnectionClosed as closed:
                restarting = closed.rcvd is not None and closed.rcvd.code == 1012
            except (OSError, TimeoutError):
                pass
            seat.ws = None
            if not seat.reconnect:
                return
            cap = RESTART_CAP_S if restarting else BACKOFF_CAP_S
            ceiling = min(cap, BACKOFF_BASE_S * 2**attempt)
            attempt += 1
            await asyncio.sleep(ceiling / 2 + random.random() * ceiling / 2)

    def receive(self, seat: Seat, raw: str | bytes, hello: "asyncio.Future[None]") -> None:
        now = time.monotonic()
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "hello":
            if not hello.done():
                hello.set_result(None)
            else:
                self.back_at.append(now)
        elif kind == "inject":
            # The server's stamp is read later: here both servers' messages cost the same.
            self.injects.append((message["inject"]["title"], now, message.get("at"), time.time()))
        elif kind == "response":
            value = message.get("value", "")
            if value.startswith("b:"):
                _, _count, sent_ns, port = value.split(":")
                route = "same" if int(port) == seat.port else "other"
                self.edit_latency_by_route[route].append((time.monotonic_ns() - int(sent_ns)) / 1e6)
                seen = seat.versions.setdefault(message["field"], [])
                if seen and message["version"] <= seen[-1]:
                    self.reordered += 1
                seen.append(message["version"])
        elif kind == "ack":
            seat.acked += 1
        elif kind == "error":
            seat.errors += 1

    async def edit(
        self, inject_id: str, rate: float, duration_s: float, start_at: float
    ) -> dict[str, Any]:
        """Each seat writes its own field at `rate`/s on a fixed schedule, never waiting for acks."""
        writers = [s for s in self.seats if s.field is not None and s.ws is not None]

        async def type_in(seat: Seat, offset: float) -> int:
            count = 0
            while True:
                due = start_at + offset + count / rate
                if due > start_at + duration_s:
                    return count
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                count += 1
                value = f"b:{count}:{time.monotonic_ns()}:{seat.port}"
                message = {
                    "type": "edit",
                    "inject_id": inject_id,
                    "field": seat.field,
                    "value": value,
                    "base_version": count - 1,
                    "client_ref": count,
                }
                await seat.ws.send(json.dumps(message))

        sent = await asyncio.gather(*(type_in(seat, random.random() / rate) for seat in writers))
        return {"sent": sum(sent)}

    async def edit_report(self) -> dict[str, Any]:
        return {
            "latency_by_route": self.edit_latency_by_route,
            "reordered": self.reordered,
            "seats": [
                {
                    "team": s.team,
                    "field": s.field,
                    "acked": s.acked,
                    "errors": s.errors,
                    "seen": {f: len(set(v)) for f, v in s.versions.items()},
                }
                for s in self.seats
            ],
        }

    async def take_injects(self) -> list[tuple[str, float, float]]:
        """(title, receipt, ms since the server's stamp) of each inject received since last asked."""
        found, self.injects = self.injects, []
        return [
            (
                title,
                at,
                (wall - dt.datetime.fromisoformat(stamp).timestamp()) * 1000
                if stamp
                else float("nan"),
            )
            for title, at, stamp, wall in found
        ]

    async def acks(self) -> int:
        return sum(s.acked for s in self.seats)

    async def back(self) -> tuple[int, list[float]]:
        return len(self.seats), self.back_at

    async def send_raw(self, text: str) -> float:
        seat = self.seats[0]
        sent = time.monotonic()
        await seat.ws.send(text)
        return sent

    async def close(self) -> int:
        closed = 0
        for seat in self.seats:
            seat.reconnect = False
            if seat.ws is not None:
                with suppress(Exception):
                    await seat.ws.close()
                closed += 1
        self.seats = []
        self.back_at = []
        return closed


def client_main(pipe: Connection) -> None:
    # uvloop (the server's loop too): the clients share the server's two cores, and on the
    # default loop they took a sixth more of them for the same work.
    uvloop.run(ClientProcess(pipe).run())


class Clients:
    """A pool of client processes driven in lock-step: each command goes to all, answers come back."""

    def __init__(self, count: int) -> None:
        context = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=client_main, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def all(self, command: str, per_process: list[dict[str, Any]] | None = None) -> list[Any]:
        args = per_process or [{} for _ in self.pipes]
        for pipe, arg in zip(self.pipes, args, strict=True):
            pipe.send((command, arg))
        return [pipe.recv() for pipe in self.pipes]

    def connect(self, seats: list[dict[str, Any]], *, reconnect: bool = False) -> None:
        parts = [seats[i :: len(self.pipes)] for i in range(len(self.pipes))]
        self.all("connect", [{"seats": p, "reconnect": reconnect} for p in parts])

    def stop(self) -> None:
        for pipe in self.pipes:
            with suppress(Exception):
                pipe.send(("stop", {}))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


# -- the raw baseline ------------------------------------------------------------------------------


def raw_server_main(port: int) -> None:
    """The physical baseline: websockets' own broadcast of one text to the chosen connections."""

    async def main() -> None:
        members: dict[Any, int] = {}

        async def handler(ws: Any) -> None:
            team = int(ws.request.path.rsplit("=", 1)[1])
            if team < 0:  # the facilitator: its messages are broadcast
                async for text in ws:
                    teams = json.loads(text)["teams"]
                    broadcast([m for m, t in members.items() if t < teams], text)
                return
            members[ws] = team
            await ws.send(json.dumps({"type": "hello"}))
            try:
                await ws.wait_closed()
            finally:
                members.pop(ws, None)

        async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
            await asyncio.Future()

    asyncio.run(main())


# -- the app ---------------------------------------------------------------------------------------


class App:
    """One or more `tabletop serve` processes on one database (and Redis for several)."""

    def __init__(self, *, database_url: str, broker_url: str | None, count: int, log: Path):
        self.database_url = database_url
        self.broker_url = broker_url
        self.ports = [free_port() for _ in range(count)]
        self.log = log
        self.processes: list[subprocess.Popen[bytes]] = []
        self.cold_start_s: list[float] = []

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "TABLETOP_DATABASE_URL": self.database_url,
            "TABLETOP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "TABLETOP_SCENARIOS_DIR": str(ROOT / "scenarios"),
        }
        if self.broker_url:
            env["TABLETOP_BROKER_URL"] = self.broker_url
        return env

    def start(self, *, wait: bool = True) -> None:
        self.processes = []
        self.cold_start_s = []
        for port in self.ports:
            started = time.monotonic()
            with self.log.open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                    cwd=ROOT,
                    env=self.env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.processes.append(process)
            if wait:
                wait_healthy(f"http://127.0.0.1:{port}", process)
                self.cold_start_s.append(time.monotonic() - started)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def rss_kib(self) -> int:
        return sum(rss_kib(p.pid) for p in self.processes)

    def cpu_s(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def base(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index % len(self.ports)]}"

    def ws(self, index: int, path: str) -> str:
        return f"ws://127.0.0.1:{self.ports[index % len(self.ports)]}{path}"


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}; see its log")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.01)
    raise SystemExit("the server did not become healthy")


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A throwaway database on the PostgreSQL server of `base_url`, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tabletop_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build_export_exercise(url: str, *, teams: int, injects: int, chars: int) -> str:
    """The played exercise of scripts/bench_export.py, built straight into the bench database."""
    spec = importlib.util.spec_from_file_location(
        "bench_export", ROOT / "scripts" / "bench_export.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.build(url, teams=teams, injects=injects, chars=chars))


# -- the scenarios ---------------------------------------------------------------------------------


@dataclass
class Exercise:
    id: str
    teams: list[dict[str, Any]]


class Refused(Exception):
    """The app answered a request with an error."""


class Console:
    """The console's live socket: injects go over it as `static/js/console.js` sends them, each
    answered by an `ack` (or an `error`) naming its client_ref."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        from websockets.sync.client import connect as sync_connect

        self.connection = sync_connect(url, additional_headers=headers, compression=None)
        self.ws = self.connection.__enter__()
        self.ws.recv(timeout=30)  # hello
        self.refs = 0

    def inject(self, body: dict[str, Any]) -> Any:
        self.refs += 1
        self.ws.send(json.dumps({"type": "inject", "client_ref": self.refs, **body}))
        # Everything else the console receives (the inject itself, presence, a flood's edits)
        # passes by unparsed.
        while True:
            text = self.ws.recv(timeout=60)
            if '"client_ref"' in text:
                message = json.loads(text)
                if message.get("client_ref") == self.refs:
                    break
        if message["type"] != "ack":
            raise Refused(f"the console's inject was refused: {message}")
        return message["inject"]

    def close(self) -> None:
        self.connection.__exit__(None, None, None)


class Facilitator:
    """The facilitator: an HTTP client (keep-alive, as a browser's would be) and the console's
    live socket per exercise."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.consoles: dict[str, Console] = {}
        self.http = httpx.Client(base_url=app.base(0), timeout=60)
        # The export exercise's owner (scripts/bench_export.py) if it was built, else the admin.
        try:
            token = self.post(
                "/api/auth/login", {"username": "bench", "password": "bench-password"}
            )
        except Refused:
            token = self.post("/api/auth/login", {"username": "admin", "password": ADMIN_PASSWORD})
        self.headers = {"Authorization": f"Bearer {token['token']}"}
        host, port = app.base(0).removeprefix("http://").rstrip("/").split(":")
        self.lean = http.client.HTTPConnection(host, int(port), timeout=60)
        # The participants' message for the last inject: the raw baseline sends its like.
        self.last_event: dict[str, Any] = {}

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
        response = self.http.post(path, json=body, **kwargs)
        if response.status_code not in (200, 201):
            raise Refused(f"{path} answered {response.status_code}: {response.text}")
        return response.json()

    def exercise(self, title: str, teams: int) -> Exercise:
        body = self.post(
            "/api/exercises",
            {"title": title, "teams": [f"Team {i:03d}" for i in range(teams)], "locale": "en"},
            headers=self.headers,
        )
        self.post(f"/api/exercises/{body['id']}/start", {}, headers=self.headers)
        return Exercise(id=body["id"], teams=body["teams"])

    def inject(
        self,
        exercise: Exercise,
        title: str,
        team_ids: list[str] | None = None,
        *,
        over_http: bool = False,
    ) -> Any:
        """Deliver an inject over the console's socket as the console does (`over_http`: with
        `POST /injects`, as the console does when its socket is down)."""
        body: dict[str, Any] = {"title": title, "body": "Details: " + "x" * 400}
        if team_ids is not None:
            body["team_ids"] = team_ids
        if over_http:
            read = self.post_lean(f"/api/exercises/{exercise.id}/injects", body)
        else:
            read = self.console(exercise).inject(body)
        # The event as participants get it (app/eventlog/wire.message, encoded as wire.encode
        # encodes it; the seq's digits aside): the inject with its target team ids.
        self.last_event = {"type": "inject", "seq": 1, "at": read["delivered_at"], "inject": read}
        return read

    def console(self, exercise: Exercise) -> Console:
        if exercise.id not in self.consoles:
            url = self.app.ws(0, f"/ws/exercises/{exercise.id}/facilitator")
            self.consoles[exercise.id] = Console(url, self.headers)
        return self.consoles[exercise.id]

    def close_consoles(self) -> None:
        for console in self.consoles.values():
            console.close()
        self.consoles.clear()

    def post_lean(self, path: str, body: dict[str, Any]) -> Any:
        """POST on a kept-alive http.client connection: the latency rows start the clock before
        this call, and httpx spent about 1 ms of the client's CPU before the request left."""
        payload = json.dumps(body).encode()
        headers = {**self.headers, "Content-Type": "application/json"}
        for retry in (False, True):
            try:
                self.lean.request("POST", path, body=payload, headers=headers)
                response = self.lean.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                # The server closed the idle connection (keep-alive timeout, restart): reopen.
                self.lean.close()
                if retry:
                    raise
        if response.status not in (200, 201):
            raise Refused(f"{path} answered {response.status}: {data.decode()}")
        return json.loads(data)


def join_all(app: App, exercise: Exercise, per_team: int) -> list[dict[str, Any]]:
    """Join `per_team` participants to every team (spread over the processes)."""
    seats = []
    with httpx.Client(timeout=60) as http:
        for t, team in enumerate(exercise.teams):
            for m in range(per_team):
                index = len(seats)
                response = http.post(
                    f"{app.base(index)}/api/join",
                    json={"code": team["join_code"], "name": f"P{t}-{m}"},
                )
                response.raise_for_status()
                http.cookies.clear()
                seats.append(
                    {
                        "url": app.ws(index, "/ws/participant"),
                        "token": response.json()["token"],
                        "team": t,
                    }
                )
    return seats


def fanout_round(
    clients: Clients, send: Any, *, expected: int, injects: int, spacing_s: float
) -> dict[str, Any]:
    """Send `injects` injects; latency from each send to each receipt, and what never arrived."""
    sent: dict[str, float] = {}
    for n in range(injects):
        title = f"I{uuid.uuid4().hex[:10]}-{n}"
        sent[title] = send(title)
        time.sleep(spacing_s)
    # Late is not lost: wait (up to a bound) for every receipt before counting what is missing.
    latencies, server, got = [], [], 0
    deadline = time.monotonic() + DRAIN_S
    while got < expected * injects and time.monotonic() < deadline:
        time.sleep(0.2)
        for found in clients.all("take_injects"):
            for title, at, server_ms in found:
                if title in sent:
                    got += 1
                    latencies.append((at - sent[title]) * 1000)
                    server.append(server_ms)
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "server_p50": percentile(server, 50),
        "server_p99": percentile(server, 99),
        "lost": expected * injects - got,
    }


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    verdict: str = ""
    # The row's figures by name, for --json (scripts/bench_scaled.py compares runs with them).
    numbers: dict[str, float] = dataclasses.field(default_factory=dict)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "**missed**")


def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="tabletop-bench-"))
    log = workdir / "server.log"
    print(f"logs: {log}")
    with postgres_database(args.postgres) if args.postgres else nullcontext() as pg:
        database_url = pg or f"sqlite:///{workdir / 'bench.db'}"
        export_id = None
        if args.export_teams:
            print("building the export exercise …", flush=True)
            export_id = build_export_exercise(
                database_url, teams=args.export_teams, injects=10, chars=args.export_chars
            )
        app = App(
            database_url=database_url,
            broker_url=args.redis,
            count=args.processes,
            log=log,
        )
        raw_port = free_port()
        raw = mp.get_context("spawn").Process(target=raw_server_main, args=(raw_port,), daemon=True)
        raw.start()
        clients = Clients(args.client_processes)
        # The cold start is timed on a quiet machine: the baseline and the client processes
        # (each a Python start of its own, about a second of CPU on two cores) are up first.
        clients.all("ping")
        wait_listening(raw_port)
        app.start()
        try:
            rows += measure(args, app, clients, raw_port, export_id)
        finally:
            clients.stop()
            app.stop()
            raw.terminate()
    return rows


def measure(
    args: argparse.Namespace, app: App, clients: Clients, raw_port: int, export_id: str | None
) -> list[Row]:
    rows: list[Row] = []
    cold = max(app.cold_start_s)
    time.sleep(1.0)
    idle = app.rss_kib() / 1024 / len(app.processes)
    rows.append(
        Row("cold start to first served request", f"{cold:.2f} s", "≤ 2 s", verdict(cold <= 2))
    )
    rows.append(Row("idle RSS (per process)", f"{idle:.0f} MB", "≤ 120 MB", verdict(idle <= 120)))

    facilitator = Facilitator(app)
    big = args.fanout[-1]
    teams = 50
    per_team = max(1, big // teams)
    print(f"joining {teams * per_team} participants …", flush=True)
    fan = facilitator.exercise("Fan-out", teams)
    seats = join_all(app, fan, per_team)
    before = app.rss_kib()
    clients.connect(seats, reconnect=True)
    time.sleep(1.0)
    per_socket = (app.rss_kib() - before) / len(seats)
    rows.append(
        Row(
            f"memory per connected participant ({len(seats)} sockets)",
            f"{per_socket:.0f} KiB",
            "≤ 50 KiB",
            verdict(per_socket <= 50),
        )
    )
    # The raw baseline gets as many sockets, split into the same teams.
    clients.connect(
        [
            {
                "url": f"ws://127.0.0.1:{raw_port}/?team={s['team']}",
                "token": None,
                "team": s["team"],
            }
            for s in seats
        ]
    )

    def app_send(n_teams: int, *, over_http: bool = False) -> Any:
        team_ids = [t["id"] for t in fan.teams[:n_teams]]

        def send(title: str) -> float:
            sent = time.monotonic()
            facilitator.inject(
                fan, title, team_ids if n_teams < teams else None, over_http=over_http
            )
            return sent

        return send

    raw_sender = RawSender(raw_port)

    def raw_send(n_teams: int) -> Any:
        # The app's round of the same size ran just before: its message is known.
        return lambda title: raw_sender.send(title, n_teams, facilitator.last_event)

    # The ratio's target is one process's; the scaled mode's own is scripts/bench_scaled.py's.
    ratio_target = "≤ 1.5× at 500" + (" (one process's target)" if args.processes > 1 else "")
    ratio_target += ", 0 lost"
    for size in args.fanout if "fanout" in args.only else []:
        n_teams = size // per_team
        expected = n_teams * per_team
        # The console's own path (its socket), the raw baseline, and for the largest size the
        # console's fallback (POST /injects), in turn, three times.
        senders = {"app": app_send(n_teams), "raw": raw_send(n_teams)}
        if size == args.fanout[-1]:
            senders["http"] = app_send(n_teams, over_http=True)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in senders}
        # One round of each first, not counted: the first messages after the sockets connected
        # cost the servers and the clients more, and the app, which went first, paid for it
        # (its first run's p99 was about twice the later ones').
        for send in senders.values():
            fanout_round(clients, send, expected=expected, injects=args.injects, spacing_s=0.2)
        for _ in range(3):
            for name, send in senders.items():
                runs[name].append(
                    fanout_round(
                        clients, send, expected=expected, injects=args.injects, spacing_s=0.2
                    )
                )
        app_runs, raw_runs = runs["app"], runs["raw"]
        app_p99 = statistics.median(r["p99"] for r in app_runs)
        raw_p99 = statistics.median(r["p99"] for r in raw_runs)
        app_p50 = statistics.median(r["p50"] for r in app_runs)
        raw_p50 = statistics.median(r["p50"] for r in raw_runs)
        srv50 = statistics.median(r["server_p50"] for r in app_runs)
        srv99 = statistics.median(r["server_p99"] for r in app_runs)
        lost = sum(r["lost"] for r in app_runs)
        raw_lost = sum(r["lost"] for r in raw_runs)
        ratio = app_p99 / raw_p99
        print(f"fan-out {expected}: {runs}", flush=True)
        rows.append(
            Row(
                f"inject fan-out to {expected}: request → receipt p50 / p99",
                f"{app_p50:.1f} / {app_p99:.1f} ms (raw {raw_p50:.1f} / {raw_p99:.1f} ms)",
                numbers={f"inject{expected}_p50": app_p50, f"inject{expected}_p99": app_p99},
            )
        )
        if "http" in runs:
            http_p50 = statistics.median(r["p50"] for r in runs["http"])
            http_p99 = statistics.median(r["p99"] for r in runs["http"])
            rows.append(
                Row(
                    f"inject fan-out to {expected} over HTTP (`POST /injects`, the console's "
                    "fallback): request → receipt p50 / p99; p99 ratio to raw; lost",
                    f"{http_p50:.1f} / {http_p99:.1f} ms; {http_p99 / raw_p99:.2f}×; "
                    f"lost {sum(r['lost'] for r in runs['http'])}",
                )
            )
        rows.append(
            Row(
                f"inject fan-out to {expected}: server stamp → receipt p50 / p99",
                f"{srv50:.1f} / {srv99:.1f} ms",
            )
        )
        rows.append(
            Row(
                f"inject fan-out to {expected}: p99 ratio to raw; lost",
                f"{ratio:.2f}×; lost {lost} (raw lost {raw_lost})",
                ratio_target if expected >= 500 else "0 lost",
                verdict((ratio <= 1.5 or expected < 500) and lost == 0),
            )
        )
    raw_sender.close()

    small = args.fanout[0] // per_team
    if "flood" in args.only:
        rows += flood_rows(app, clients, facilitator, fan, app_send(small), small * per_team)
    if export_id is not None:
        rows += export_rows(args, app, clients, export_id, app_send, per_team)
    facilitator.close_consoles()
    if "storm" in args.only:
        rows += storm(app, clients, len(seats))
    clients.all("close")

    # Co-editing: 50 teams × 6 participants, each typing into a field of their own.
    if "coedit" in args.only:
        rows += coedit(args, app, clients, Facilitator(app))
    return rows


def flood_main(url: str, token: str, inject_id: str, stop: Any, results: Any) -> None:
    """A greedy client in a process of its own: sends edits as fast as it can, never waits."""
    from websockets.sync.client import connect as sync_connect

    counts = {"sent": 0, "acked": 0, "refused": 0}
    started = time.monotonic()
    with (
        suppress(Exception),
        sync_connect(
            url, additional_headers={"Authorization": f"Bearer {token}"}, compression=None
        ) as ws,
    ):
        ws.recv(timeout=30)  # hello

        def drain() -> None:
            with suppress(Exception):
                while True:
                    kind = json.loads(ws.recv())["type"]
                    if kind == "ack":
                        counts["acked"] += 1
                    elif kind == "error":
                        counts["refused"] += 1

        threading.Thread(target=drain, daemon=True).start()
        version = 0
        while not stop.is_set():
            message = {
                "type": "edit",
                "inject_id": inject_id,
                "field": "notes",
                "value": f"flood {counts['sent']}",
                "base_version": version,
            }
            ws.send(json.dumps(message))
            counts["sent"] += 1
            version = counts["acked"]
    results.put({**counts, "elapsed_s": time.monotonic() - started})


def flood_rows(
    app: App, clients: Clients, facilitator: Facilitator, fan: Exercise, send: Any, expected: int
) -> list[Row]:
    """One participant floods the server with edits; do the others' injects slow down?"""

    team = fan.teams[0]
    target = facilitator.inject(fan, "flood target", [team["id"]])
    with httpx.Client(base_url=app.base(0), timeout=30) as http:
        joined = http.post("/api/join", json={"code": team["join_code"], "name": "Flooder"})
        joined.raise_for_status()
        token = joined.json()["token"]
    quiet = fanout_round(clients, send, expected=expected, injects=40, spacing_s=0.05)
    # A process of its own: as a thread it would take the GIL from the facilitator's requests
    # in this process and slow them down, which is the benchmark's doing, not the server's.
    context = mp.get_context("spawn")
    stop = context.Event()
    results = context.Queue()
    flooder = context.Process(
        target=flood_main,
        args=(app.ws(0, "/ws/participant"), token, target["id"], stop, results),
        daemon=True,
    )
    flooder.start()
    time.sleep(1.5)  # the flood is under way before measuring (a spawned process starts slowly)
    busy = fanout_round(clients, send, expected=expected, injects=40, spacing_s=0.05)
    stop.set()
    counts = results.get(timeout=30)
    flooder.join(timeout=10)
    rise = busy["p99"] - quiet["p99"]
    return [
        Row(
            f"flood: one participant sending edits as fast as it can "
            f"({counts['sent'] / counts['elapsed_s']:.0f}/s, {counts['refused']} refused): "
            f"inject p99 to {expected} others",
            f"{busy['p99']:.1f} ms (vs {quiet['p99']:.1f} ms: {rise:+.1f} ms); lost {busy['lost']}",
            "rise ≤ 10 ms, 0 lost",
            verdict(rise <= 10 and busy["lost"] == 0),
        )
    ]


def export_rows(
    args: argparse.Namespace,
    app: App,
    clients: Clients,
    export_id: str,
    app_send: Any,
    per_team: int,
) -> list[Row]:
    """The export alone, then the live p99 while it runs."""
    rows: list[Row] = []
    export_http = httpx.Client(base_url=app.base(0), timeout=120)
    token = export_http.post(
        "/api/auth/login", json={"username": "bench", "password": "bench-password"}
    ).json()["token"]
    export_headers = {"Authorization": f"Bearer {token}"}

    def export_once() -> float:
        started = time.monotonic()
        response = export_http.get(
            f"/api/exercises/{export_id}/export.xlsx", headers=export_headers
        )
        response.raise_for_status()
        return time.monotonic() - started

    # The first export also starts the app's export worker process; later ones find it running.
    first_s = export_once()
    export_s = statistics.median(export_once() for _ in range(3))
    small = args.fanout[0] // per_team
    spacing = 0.1
    # Enough injects to span one export; the same count without it for comparison.
    count = max(20, min(150, round(export_s / spacing)))
    quiet = fanout_round(
        clients, app_send(small), expected=small * per_team, injects=count, spacing_s=spacing
    )
    exporter = threading.Thread(target=export_once)
    exporter.start()
    try:
        busy = fanout_round(
            clients, app_send(small), expected=small * per_team, injects=count, spacing_s=spacing
        )
    except Refused as exc:
        exporter.join()
        return [
            *rows,
            Row(f"export of a {args.export_teams}-team × 10-inject workbook", f"{export_s:.2f} s"),
            Row(
                "live delivery during the export", f"an inject was refused: {exc}", "", "**missed**"
            ),
        ]
    exporter.join()
    rise = busy["p99"] - quiet["p99"]
    rows.append(
        Row(
            f"export of a {args.export_teams}-team × 10-inject workbook "
            f"({args.export_chars}-character answers), median of 3",
            f"{export_s:.2f} s (the first, which starts the export worker: {first_s:.2f} s)",
            "≤ 1.5 s",
            verdict(export_s <= 1.5),
        )
    )
    rows.append(
        Row(
            f"live p99 to {small * per_team} during exports (vs without)",
            f"{busy['p99']:.1f} ms (vs {quiet['p99']:.1f} ms: {rise:+.1f} ms); lost {busy['lost']}",
            "rise ≤ 10 ms",
            verdict(rise <= 10 and busy["lost"] == 0),
        )
    )

    return rows


def storm(app: App, clients: Clients, total: int) -> list[Row]:
    """Every participant comes back after a restart, as the browser would."""
    rows: list[Row] = []
    print("restarting the server …", flush=True)
    restart_at = time.monotonic()
    app.stop()
    stopped_at = time.monotonic()
    # Not waiting for /healthz: the returning clients compete with it; theirs is the time that counts.
    app.start(wait=False)
    deadline = restart_at + STORM_LIMIT_S
    last = None
    times: list[float] = []
    while time.monotonic() < deadline:
        reports = clients.all("back")
        times = [t for _, back in reports for t in back if t > restart_at]
        if len(times) >= total:
            last = max(times)
            break
        time.sleep(0.2)
    if last is None:
        back_count = len(times)
        rows.append(
            Row(
                f"reconnect storm: {total} clients back after a restart",
                f"only {back_count} within {STORM_LIMIT_S:.0f} s",
                "≤ 5 s",
                verdict(False),
            )
        )
    else:
        elapsed = last - restart_at
        rows.append(
            Row(
                f"reconnect storm: {total} clients back and resynced after a restart",
                f"{elapsed:.2f} s from the stop (the stop itself took {stopped_at - restart_at:.2f} s,"
                f" the first client was back after {min(times) - restart_at:.2f} s)",
                "≤ 5 s",
                verdict(elapsed <= 5),
            )
        )
    return rows


class RawSender:
    """The facilitator of the raw baseline: one socket whose messages the server broadcasts."""

    def __init__(self, port: int) -> None:
        from websockets.sync.client import connect as sync_connect

        self.connection = sync_connect(f"ws://127.0.0.1:{port}/?team=-1", compression=None)
        self.ws = self.connection.__enter__()

    def send(self, title: str, teams: int, event: dict[str, Any]) -> float:
        # The app's own inject message (`event`) with this title and without the server's stamp,
        # so that both servers move the same bytes and the clients parse the same JSON.
        message = {key: value for key, value in event.items() if key != "at"}
        message.update(teams=teams, inject={**event["inject"], "title": title})
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        sent = time.monotonic()
        self.ws.send(text)
        return sent

    def close(self) -> None:
        self.connection.__exit__(None, None, None)


def coedit(
    args: argparse.Namespace, app: App, clients: Clients, facilitator: Facilitator
) -> list[Row]:
    teams, per_team = args.coedit_teams, len(COEDIT_FIELDS)
    exercise = facilitator.exercise("Co-editing", teams)
    # Over HTTP: a console socket nobody reads would soon be closed as too slow.
    inject = facilitator.inject(exercise, "Co-edit", over_http=True)
    seats = join_all(app, exercise, per_team)
    for index, seat in enumerate(seats):
        seat["field"] = COEDIT_FIELDS[index % per_team]
    clients.connect(seats)
    rate = args.edit_rate / len(seats)
    cpu_before = app.cpu_s()
    started = time.monotonic()
    start_at = started + 1.0
    print(
        f"co-editing: {len(seats)} writers at {rate:.2f} edits/s each for {args.edit_seconds} s …",
        flush=True,
    )
    sent = sum(
        r["sent"]
        for r in clients.all(
            "edit",
            [
                {
                    "inject_id": inject["id"],
                    "rate": rate,
                    "duration_s": args.edit_seconds,
                    "start_at": start_at,
                }
                for _ in clients.pipes
            ],
        )
    )
    # Wait for the acknowledgements to stop growing (the server may still be working through a queue).
    last_acks, last_change = -1, time.monotonic()
    while (
        time.monotonic() - last_change < 2.0
        and time.monotonic() - start_at < args.edit_seconds + 60
    ):
        acks = sum(clients.all("acks"))
        if acks != last_acks:
            last_acks, last_change = acks, time.monotonic()
        if acks >= sent:
            break
        time.sleep(0.2)
    finished = last_change if last_acks < sent else time.monotonic()
    cpu = (app.cpu_s() - cpu_before) / (finished - started)
    reports = clients.all("edit_report")
    same, other = (
        [x for r in reports for x in r["latency_by_route"][route]] for route in ("same", "other")
    )
    latencies = same + other
    reordered = sum(r["reordered"] for r in reports)
    seat_reports = [s for r in reports for s in r["seats"]]
    acked = {(s["team"], s["field"]): s["acked"] for s in seat_reports}
    errors = sum(s["errors"] for s in seat_reports)
    lost = 0
    for s in seat_reports:
        for (team, fld), count in acked.items():
            if team == s["team"] and fld != s["field"]:
                lost += max(0, count - s["seen"].get(fld, 0))
    total_acked = sum(acked.values())
    # Durable: every acknowledged version is stored (a server still behind may have stored more).
    durable_mismatch = 0
    for t, team in enumerate(exercise.teams):
        cells = facilitator.http.get(
            f"/api/teams/{team['id']}/responses", headers=facilitator.headers
        ).json()
        stored = {c["field"]: c["version"] for c in cells if c["inject_id"] == inject["id"]}
        for fld in COEDIT_FIELDS:
            if stored.get(fld, 0) < acked.get((t, fld), 0):
                durable_mismatch += 1
    clients.all("close")
    rate_done = total_acked / (finished - start_at)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"co-edit: sent {sent}, acked {total_acked}, errors {errors}", flush=True)
    by_route = []
    if len(app.ports) > 1:
        by_route = [
            Row(
                "co-editing: edit → teammate on the same process / on another process p50 / p99",
                f"{percentile(same, 50):.1f} / {percentile(same, 99):.1f} ms; "
                f"{percentile(other, 50):.1f} / {percentile(other, 99):.1f} ms",
            )
        ]
    return [
        Row(
            f"co-editing {teams} teams × {per_team}: edits/s sustained (offered {args.edit_rate}/s)",
            f"{rate_done:.0f} edits/s ({total_acked} of {sent} acknowledged, {errors} refused)",
            "≥ 1,000/s",
            verdict(rate_done >= 1000 and total_acked == sent),
        ),
        Row(
            "co-editing: edit → teammate p50 / p99",
            f"{p50:.1f} / {p99:.1f} ms",
            "p99 ≤ 100 ms",
            verdict(p99 <= 100),
            numbers={"coedit_p50": p50, "coedit_p99": p99},
        ),
        *by_route,
        Row(
            "co-editing: lost / reordered / not durable",
            f"{lost} / {reordered} / {durable_mismatch} cells",
            "0 / 0 / 0",
            verdict(lost == 0 and reordered == 0 and durable_mismatch == 0),
        ),
        Row("co-editing: server CPU", f"{cpu * 100:.0f} % of one core"),
    ]


# -- reporting -------------------------------------------------------------------------------------


def versions() -> str:
    import redis
    import sqlalchemy
    import starlette
    import uvicorn

    found = {
        "Python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "websockets": websockets.__version__,
        "SQLAlchemy": sqlalchemy.__version__,
        "redis-py": redis.__version__,
    }
    return ", ".join(f"{k} {v}" for k, v in found.items())


def machine() -> str:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return (
        f"{model or platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; load average at the end {load[0]:.1f}"
    )


def table(rows: list[Row]) -> str:
    lines = ["| Measure | Result | Target | |", "|---|---|---|---|"]
    lines += [f"| {r.metric} | {r.value} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def write_doc(args: argparse.Namespace, rows: list[Row], command: str) -> None:
    mode = "one process, SQLite" if not args.postgres else "PostgreSQL"
    if args.redis:
        mode = f"{args.processes} processes, {'PostgreSQL' if args.postgres else 'SQLite'} + Redis"
    key = "scaled" if args.redis else ("postgres" if args.postgres else "single")
    write_section(key, heading=mode, command=command, body=table(rows))


def write_section(key: str, *, heading: str, command: str, body: str) -> None:
    """Put a measured section, with the date, machine, versions and command, between the
    `bench:<key>` markers of docs/performance.md (at its end the first time)."""
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    section = "\n".join(
        [
            start,
            f"### {heading}",
            "",
            f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
            f"Versions: {versions()}.",
            f"Command: `{command}`",
            "",
            body,
            end,
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


PHASES = ["fanout", "flood", "export", "storm", "coedit"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL (a throwaway database is made)")
    parser.add_argument("--redis", help="Redis URL: run --processes server processes sharing it")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--fanout", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--injects", type=int, default=10, help="injects per fan-out run")
    parser.add_argument("--coedit-teams", type=int, default=50)
    parser.add_argument("--edit-rate", type=int, default=1100, help="edits/s offered in total")
    parser.add_argument("--edit-seconds", type=float, default=10.0)
    parser.add_argument("--export-teams", type=int, default=50, help="0: skip the export rows")
    parser.add_argument("--export-chars", type=int, default=300, help="characters per answer")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PHASES,
        default=PHASES,
        help="measure only these rows (memory and start are always measured); writes nothing",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run; writes nothing")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--json", type=Path, help="also write the rows' figures to this file")
    args = parser.parse_args()
    if args.processes > 1 and not args.redis:
        parser.error("--processes above 1 needs --redis")
    if "export" not in args.only:
        args.export_teams = 0
    if args.quick:
        args.fanout, args.injects, args.coedit_teams = [20, 50], 3, 5
        args.edit_rate, args.edit_seconds, args.export_teams = 100, 2.0, 5
    command = "python scripts/bench.py " + shlex.join(sys.argv[1:])
    rows = run(args)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({k: v for row in rows for k, v in row.numbers.items()}))
    if not (args.quick or args.no_write or set(args.only) != set(PHASES)):
        write_doc(args, rows, command)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
