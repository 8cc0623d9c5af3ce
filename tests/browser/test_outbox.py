"""The browser's cell outbox (static/js/live.js) step by step: lost acks, conflicts, reloads."""

from typing import Any

import pytest

from tests.browser.conftest import ConsoleWatch, Server

pytestmark = [pytest.mark.browser]

# Runs inside the page: a CellSync whose sent messages are recorded instead of going to a socket.
SETUP = """() => {
  localStorage.clear();
  window.sent = [];
  window.online = true;
  window.makeSync = () => new window.TabletopLive.CellSync({
    storagePrefix: "tabletop.edit.ex.team.",
    send: (message) => { if (window.online) window.sent.push(message); return window.online; },
    debounceMs: 10,
  });
  window.sync = window.makeSync();
}"""


@pytest.fixture
def page(chromium: Any, shared_server: Server, console_watch: ConsoleWatch) -> Any:
    context = chromium.new_context(base_url=shared_server.base_url)
    page = console_watch.watch(context.new_page())
    page.goto("/login")
    page.add_script_tag(url="/static/js/live.js")
    page.evaluate(SETUP)
    yield page
    assert console_watch.problems == []
    context.close()


def run(page: Any, script: str) -> Any:
    return page.evaluate(
        f"async () => {{ const wait = (ms) => new Promise(r => setTimeout(r, ms)); {script} }}"
    )


def test_an_acknowledged_edit_leaves_nothing_behind(page: Any) -> None:
    result = run(
        page,
        """
        sync.typed("i1/overview", "abc");
        await wait(40);
        const sent = window.sent.slice();
        sync.ack({ client_ref: sent[0].client_ref, version: 1 });
        return { sent, state: sync.state("i1/overview"), stored: localStorage.length,
                 value: sync.value("i1/overview") };
        """,
    )
    assert [(m["value"], m["base_version"]) for m in result["sent"]] == [("abc", 0)]
    assert result["state"] == "saved" and result["stored"] == 0 and result["value"] == "abc"


def test_a_lost_ack_is_recognised_from_the_snapshot_and_not_sent_again(page: Any) -> None:
    result = run(
        page,
        """
        sync.typed("i1/overview", "abc");
        await wait(40);
        // The connection drops before the ack; the server had stored the edit.
        window.online = false;
        sync.snapshot([{ inject_id: "i1", field: "overview", value: "abc", version: 1, updated_by: "me" }]);
        window.online = true;
        const before = window.sent.length;
        sync.flushAll();
        return { resent: window.sent.length - before, state: sync.state("i1/overview"),
                 stored: localStorage.length };
        """,
    )
    assert result == {"resent": 0, "state": "saved", "stored": 0}


def test_typing_on_after_a_lost_ack_is_sent_against_the_stored_version(page: Any) -> None:
    result = run(
        page,
        """
        sync.typed("i1/overview", "abc");
        await wait(40);
        window.online = false;
        sync.typed("i1/overview", "abcd");
        await wait(40);
        sync.snapshot([{ inject_id: "i1", field: "overview", value: "abc", version: 1, updated_by: "me" }]);
        window.online = true;
        sync.flushAll();
        return window.sent.map((m) => [m.value, m.base_version]);
        """,
    )
    assert result == [["abc", 0], ["abcd", 1]]


def test_a_conflict_with_our_own_earlier_write_is_not_shown_as_a_conflict(page: Any) -> None:
    result = run(
        page,
        """
        sync.typed("i1/press", "PR");
        await wait(40);
        const first = window.sent[0];
        // A reconnect re-sent the same edit; the server answers that version 1 already holds it.
        sync.error({ client_ref: first.client_ref, code: "conflict",
                     current: { value: "PR", version: 1, updated_by: "me" } });
        return { state: sync.state("i1/press"), stored: localStorage.length, sent: window.sent.length };
        """,
    )
    assert result == {"state": "saved", "stored": 0, "sent": 1}


def test_a_real_conflict_waits_for_the_writers_choice(page: Any) -> None:
    result = run(
        page,
        """
        sync.typed("i1/legal", "mine");
        await wait(40);
        sync.error({ client_ref: window.sent[0].client_ref, code: "conflict",
                     current: { value: "theirs", version: 2, updated_by: "Taro" } });
        const during = { state: sync.state("i1/legal"), shown: sync.value("i1/legal"),
                         conflict: sync.local.get("i1/legal").conflict };
        await wait(40);
        const sentDuring = window.sent.length;
        sync.keepMine("i1/legal");
        const resend = window.sent[window.sent.length - 1];
        return { during, sentDuring, resend: [resend.value, resend.base_version] };
        """,
    )
    assert result["during"]["state"] == "conflict"
    assert result["during"]["shown"] == "mine"
    assert result["during"]["conflict"] == {"value": "theirs", "version": 2, "updated_by": "Taro"}
    assert result["sentDuring"] == 1  # nothing is sent until the writer chooses
    assert result["resend"] == ["mine", 2]


def test_taking_theirs_drops_the_local_edit(page: Any) -> None:
    result = run(
        page,
        """
        sync.typed("i1/other", "mine");
        await wait(40);
        sync.error({ client_ref: window.sent[0].client_ref, code: "conflict",
                     current: { value: "theirs", version: 3, updated_by: "Taro" } });
        sync.takeTheirs("i1/other");
        return { value: sync.value("i1/other"), state: sync.state("i1/other"), stored: localStorage.length };
        """,
    )
    assert result == {"value": "theirs", "state": "saved", "stored": 0}


def test_unsent_edits_survive_a_reload_with_their_base_version(page: Any) -> None:
    result = run(
        page,
        """
        sync.snapshot([{ inject_id: "i1", field: "notes", value: "old", version: 4, updated_by: "x" }]);
        window.online = false;
        sync.typed("i1/notes", "old and new");
        await wait(40);
        const reloaded = window.makeSync();
        window.online = true;
        reloaded.snapshot([{ inject_id: "i1", field: "notes", value: "old", version: 4, updated_by: "x" }]);
        reloaded.flushAll();
        return window.sent.map((m) => [m.field, m.value, m.base_version]);
        """,
    )
    assert result == [["notes", "old and new", 4]]


def test_a_teammates_response_updates_only_untouched_fields(page: Any) -> None:
    result = run(
        page,
        """
        const untouched = sync.response({ inject_id: "i1", field: "cause", value: "T", version: 1, updated_by: "Taro" });
        const stale = sync.response({ inject_id: "i1", field: "cause", value: "older", version: 1, updated_by: "Taro" });
        window.online = false;
        sync.typed("i1/legal", "mine");
        const typing = sync.response({ inject_id: "i1", field: "legal", value: "T", version: 1, updated_by: "Taro" });
        return { untouched, stale, typing, cause: sync.value("i1/cause"), legal: sync.value("i1/legal") };
        """,
    )
    assert result == {
        "untouched": True,
        "stale": False,
        "typing": False,
        "cause": "T",
        "legal": "mine",
    }
