"""Two real server processes sharing PostgreSQL and Redis: events cross, and survive a Redis restart."""

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from app.eventlog.wire import Envelope
from app.live.broker import Batch
from app.live.redis_broker import RedisBroker
from tests.conftest import REDIS_URL, require_service, throwaway_postgres_database
from tests.live_server import ADMIN_PASSWORD, ServerProcess, free_port, running_server

# Two server processes start in the first test's setup; a busy CI machine needs the margin.
pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(300)]
WAIT_S = 20.0
SERVER_ARGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


class RedisServer:
    """A throwaway redis-server on a free port, so the test may stop and restart it."""

    def __init__(self, log: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), *SERVER_ARGS],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Cluster:
    one: ServerProcess
    two: ServerProcess
    redis: RedisServer
    headers: dict[str, str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # The machine's Redis must be configured, as for every Redis test; this module restarts its own.
    require_service(REDIS_URL, "TABLETOP_TEST_REDIS_URL")
    logs = tmp_path_factory.mktemp("scale")
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres_database())
        broker = RedisServer(logs / "redis.log")
        broker.start()
        stack.callback(broker.stop)
        env = {"TABLETOP_BROKER_URL": broker.url}
        log = logs / "server.log"
        # The first process migrates the empty database; the second finds it current.
        one = stack.enter_context(running_server(database_url=database_url, log=log, extra_env=env))
        two = stack.enter_context(running_server(database_url=database_url, log=log, extra_env=env))
        login = httpx.post(
            f"{one.base_url}/api/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
        )
        assert login.status_code == 200, login.text
        yield Cluster(one, two, broker, {"Authorization": f"Bearer {login.json()['token']}"})


def _post(server: ServerProcess, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
    response = httpx.post(f"{server.base_url}{path}", json=body, timeout=10, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


@dataclass
class Drill:
    id: str
    teams: list[dict[str, Any]]


def _drill(cluster: Cluster) -> Drill:
    body = _post(
        cluster.one,
        "/api/exercises",
        {"title": "Scale drill", "teams": ["Red", "Blue"], "locale": "en"},
        headers=cluster.headers,
    )
    _post(cluster.one, f"/api/exercises/{body['id']}/start", {}, headers=cluster.headers)
    return Drill(id=body["id"], teams=body["teams"])


def _join(server: ServerProcess, team: dict[str, Any], name: str) -> dict[str, str]:
    body = _post(server, "/api/join", {"code": team["join_code"], "name": name})
    return {"Authorization": f"Bearer {body['token']}"}


def _push(server: ServerProcess, cluster: Cluster, drill: Drill, title: str) -> dict[str, Any]:
    return dict(
        _post(
            server,
            f"/api/exercises/{drill.id}/injects",
            {"title": title, "body": f"{title}: details follow."},
            headers=cluster.headers,
        )
    )


@contextmanager
def _socket(
    server: ServerProcess, path: str, headers: dict[str, str]
) -> Iterator[ClientConnection]:
    with connect(
        f"ws://127.0.0.1:{server.port}{path}", additional_headers=headers, open_timeout=10
    ) as ws:
        hello = json.loads(ws.recv(timeout=WAIT_S))
        assert hello["type"] == "hello", hello
        yield ws


def _next(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of that type (presence and acks of other kinds are passed over)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {kind} message arrived"
        message: dict[str, Any] = json.loads(ws.recv(timeout=remaining))
        if message["type"] == kind:
            return message


def _collect(ws: ClientConnection, kinds: set[str], count: int) -> list[dict[str, Any]]:
    """The next `count` messages of those types, in arrival order."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while len(found) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(found)} of {count} messages arrived: {found}"
        message = json.loads(ws.recv(timeout=remaining))
        if message["type"] in kinds:
            found.append(message)
    return found


def test_an_edit_on_one_process_reaches_the_teammate_on_the_other(cluster: Cluster) -> None:
    drill = _drill(cluster)
    red = drill.teams[0]
    inject = _push(cluster.one, cluster, drill, "Ransomware")
    writer = _join(cluster.one, red, "Hanako")
    reader = _join(cluster.two, red, "Taro")
    with (
        _socket(cluster.one, "/ws/participant", writer) as near,
        _socket(cluster.two, "/ws/participant", reader) as far,
    ):
        near.send(
            json.dumps(
                {
                    "type": "edit",
                    "inject_id": inject["id"],
                    "field": "overview",
                    "value": "二つ目のプロセスへ",
                    "base_version": 0,
                    "client_ref": "e1",
                }
            )
        )
        assert _next(near, "ack")["client_ref"] == "e1"
        seen = _next(far, "response")
    assert (seen["team_id"], seen["field"], seen["value"], seen["version"]) == (
        red["id"],
        "overview",
        "二つ目のプロセスへ",
        1,
    )
    assert seen["updated_by"] == "Hanako"


def test_an_inject_pushed_through_one_process_reaches_sockets_on_both(cluster: Cluster) -> None:
    drill = _drill(cluster)
    red, blue = drill.teams
    facilitator_path = f"/ws/exercises/{drill.id}/facilitator"
    with (
        _socket(cluster.one, "/ws/participant", _join(cluster.one, red, "A")) as red_one,
        _socket(cluster.two, "/ws/participant", _join(cluster.two, blue, "B")) as blue_two,
        _socket(cluster.two, facilitator_path, cluster.headers) as facilitator_two,
    ):
        inject = _push(cluster.one, cluster, drill, "Phishing")
        received = [_next(ws, "inject") for ws in (red_one, blue_two, facilitator_two)]
    assert {m["inject"]["id"] for m in received} == {inject["id"]}
    assert len({m["seq"] for m in received}) == 1


def test_an_inject_sent_over_the_console_socket_reaches_the_other_process(
    cluster: Cluster,
) -> None:
    drill = _drill(cluster)
    red, blue = drill.teams
    facilitator_path = f"/ws/exercises/{drill.id}/facilitator"
    with (
        _socket(cluster.one, facilitator_path, cluster.headers) as console_one,
        _socket(cluster.two, "/ws/participant", _join(cluster.two, blue, "B")) as blue_two,
        _socket(cluster.two, "/ws/participant", _join(cluster.two, red, "R")) as red_two,
    ):
        console_one.send(
            json.dumps(
                {
                    "type": "inject",
                    "client_ref": "i1",
                    "title": "Phishing",
                    "body": "A mail asks for passwords.",
                    "team_ids": [blue["id"]],
                }
            )
        )
        ack = _next(console_one, "ack")
        received = _next(blue_two, "inject")
        note = _post(
            cluster.one,
            f"/api/exercises/{drill.id}/messages",
            {"text": "after"},
            headers=cluster.headers,
        )
        # Red's next event is the message: the inject was Blue's only.
        (first,) = _collect(red_two, {"inject", "message"}, 1)
    assert (first["type"], first["seq"]) == ("message", note["seq"])
    assert ack["client_ref"] == "i1"
    assert received["inject"] == ack["inject"]
    assert received["inject"]["team_ids"] == [blue["id"]]


def _presence_of(ws: ClientConnection, name: str, wanted: Any) -> dict[str, Any]:
    """The participant's entry in the first presence message that satisfies `wanted`."""
    deadline = time.monotonic() + WAIT_S
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no presence of {name} as wanted arrived"
        message = json.loads(ws.recv(timeout=remaining))
        if message["type"] != "presence":
            continue
        entry = next((p for p in message["participants"] if p["name"] == name), None)
        if entry is not None and wanted(entry):
            return entry


def test_teammates_on_different_processes_see_each_other_online(cluster: Cluster) -> None:
    drill = _drill(cluster)
    red = drill.teams[0]
    inject = _push(cluster.one, cluster, drill, "Presence")
    facilitator_path = f"/ws/exercises/{drill.id}/facilitator"
    with (
        _socket(cluster.one, "/ws/participant", _join(cluster.one, red, "Hanako")) as near,
        _socket(cluster.one, facilitator_path, cluster.headers) as console,
    ):
        with _socket(cluster.two, "/ws/participant", _join(cluster.two, red, "Taro")) as far:
            for watcher in (near, console):
                assert _presence_of(watcher, "Taro", lambda p: p["online"])["online"] is True
            # Process two learnt of Hanako from process one's note, not from a socket of its own.
            assert _presence_of(far, "Hanako", lambda p: p["online"])["online"] is True
            far.send(json.dumps({"type": "focus", "inject_id": inject["id"], "field": "cause"}))
            for watcher in (near, console):
                focused = _presence_of(watcher, "Taro", lambda p: "field" in p)
                assert (focused["field"], focused["inject_id"]) == ("cause", inject["id"])
        # Taro's only socket on process two closed: process one hears at once, not on expiry.
        for watcher in (near, console):
            assert _presence_of(watcher, "Taro", lambda p: not p["online"]) == {
                "id": focused["id"],
                "name": "Taro",
                "online": False,
            }


def test_delivery_resumes_after_a_redis_restart_with_nothing_lost(cluster: Cluster) -> None:
    drill = _drill(cluster)
    red = drill.teams[0]
    first = _push(cluster.one, cluster, drill, "Before")
    with (
        _socket(cluster.one, "/ws/participant", _join(cluster.one, red, "Near")) as near,
        _socket(cluster.two, "/ws/participant", _join(cluster.two, red, "Far")) as far,
    ):
        cluster.redis.stop()
        # Stored while Redis is away: the other process cannot hear of these through the broker.
        during = [_push(cluster.one, cluster, drill, f"During {n}") for n in range(3)]
        near.send(
            json.dumps(
                {
                    "type": "edit",
                    "inject_id": first["id"],
                    "field": "cause",
                    "value": "written while Redis was down",
                    "base_version": 0,
                    "client_ref": "down",
                }
            )
        )
        assert _next(near, "ack")["client_ref"] == "down"
        cluster.redis.start()
        missed = _collect(far, {"inject", "response"}, len(during) + 1)
        # Once the subscription is back, a new event crosses live again.
        after = _push(cluster.one, cluster, drill, "After")
        live = _next(far, "inject")
    assert [m["inject"]["id"] for m in missed if m["type"] == "inject"] == [i["id"] for i in during]
    (edit,) = [m for m in missed if m["type"] == "response"]
    assert edit["value"] == "written while Redis was down"
    seqs = [m["seq"] for m in [*missed, live]]
    assert seqs == sorted(set(seqs))
    assert live["inject"]["id"] == after["id"]


def test_the_listener_resubscribes_and_asks_for_a_resync_after_redis_comes_back(
    tmp_path: Path,
) -> None:
    require_service(REDIS_URL, "TABLETOP_TEST_REDIS_URL")
    server = RedisServer(tmp_path / "redis.log")
    server.start()
    try:
        asyncio.run(_listener_round_trip(server))
    finally:
        server.stop()


async def _listener_round_trip(server: RedisServer) -> None:
    received: list[Batch] = []
    sender, listener = RedisBroker(server.url), RedisBroker(server.url)
    await sender.start(lambda batch: None)
    await listener.start(received.append)

    async def until(condition: Any) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting; received {received}"
            await asyncio.sleep(0.02)

    def batch(seq: int) -> Batch:
        return Batch("ex1", prev_seq=seq - 1, events=(Envelope(seq, None, f'{{"seq":{seq}}}'),))

    try:
        await until(lambda: listener.connections == 1)
        await listener.subscribe("ex1")
        await listener.subscribe("ex2")
        await listener.unsubscribe("ex2")
        sender.publish(batch(1))
        await until(lambda: Batch.from_json(batch(1).to_json()) in received)
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        await until(lambda: listener.connections == 2)
        # Only the exercise still followed is caught up from the database.
        assert received[1:] == [Batch.resync("ex1")]
        sender.publish(batch(2))
        await until(lambda: len(received) == 3)
        assert received[2] == batch(2)
    finally:
        await sender.stop()
        await listener.stop()


def test_a_published_batch_is_written_to_redis_before_it_reaches_local_sockets() -> None:
    """The other processes then deliver it while this one writes its own sockets' frames (an
    inject to hundreds of them takes milliseconds), not after."""
    require_service(REDIS_URL, "TABLETOP_TEST_REDIS_URL")
    asyncio.run(_publish_order())


async def _publish_order() -> None:
    broker = RedisBroker(REDIS_URL)
    here: list[tuple[Batch, int]] = []
    # What this process's hub is handed, with how many batches were still waiting to be sent.
    await broker.start(lambda batch: here.append((batch, broker._outbox.qsize())))
    sent = Batch("order-ex", prev_seq=4, events=(Envelope(5, None, '{"seq":5}'),))
    try:
        deadline = time.monotonic() + WAIT_S
        while broker.connections < 1:
            assert time.monotonic() < deadline, "the listener never connected"
            await asyncio.sleep(0.02)
        await broker.subscribe("order-ex")
        broker.publish(sent)
        assert here == []  # not from inside publish: the sender goes first
        while not here:
            assert time.monotonic() < deadline, "the batch never reached this process's hub"
            await asyncio.sleep(0)
        assert here == [(sent, 0)]
    finally:
        await broker.stop()
