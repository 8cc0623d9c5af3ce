"""Locale negotiation and the gettext catalogs: complete, compiled and in step with their sources."""

import json
import re
from html import unescape
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from starlette.requests import Request

from app import i18n
from tests.factories import make_exercise

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "app" / "locale"
HTML = {"Accept": "text/html"}


def catalog(locale: str, kind: str):  # type: ignore[no-untyped-def]
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"messages.{kind}"
    with path.open("rb") as handle:
        return read_po(handle, locale=locale) if kind == "po" else read_mo(handle)


def source_messages() -> set[str]:
    """Every msgid the templates and the Python code ask for."""
    found: set[str] = set()
    options = {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}
    for _, _, message, *_ in extract_from_dir(
        str(ROOT / "templates"), [("**.html", "jinja2")], options_map={"**.html": options}
    ):
        found.add(message if isinstance(message, str) else message[0])
    for _, _, message, *_ in extract_from_dir(
        str(ROOT / "app"), [("**.py", "python")], keywords={"N_": None, "gettext": (2,)}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_of_the_pages_has_a_japanese_translation() -> None:
    ja = catalog("ja", "po")
    used = source_messages()
    assert len(used) > 50
    missing = sorted(m for m in used if not (ja.get(m) and ja.get(m).string))
    assert not missing, f"untranslated in ja: {missing}"
    fuzzy = sorted(m.id for m in ja if m.id and m.fuzzy)
    assert not fuzzy, f"fuzzy entries in ja: {fuzzy}"


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_compiled_catalog_matches_its_source(locale: str) -> None:
    po = {m.id: m.string for m in catalog(locale, "po") if m.id}
    mo = {m.id: m.string for m in catalog(locale, "mo") if m.id}
    assert po == mo, "run app/locale/update-catalogs to recompile the .mo files"


def test_placeholders_survive_translation() -> None:
    for message in catalog("ja", "po"):
        if not message.id:
            continue
        for placeholder in ("%(n)s", "%(time)s", "%(team)s", "%(name)s", "%(detail)s"):
            assert (placeholder in message.id) == (placeholder in message.string), message.id


def make_request(*, query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{i18n.LOCALE_COOKIE}={cookie}".encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": headers,
        }
    )


def test_negotiation_order_query_cookie_exercise_browser() -> None:
    assert i18n.negotiate(make_request(query="lang=en", cookie="ja"), default="ja") == "en"
    assert i18n.negotiate(make_request(cookie="en"), default="ja") == "en"
    assert i18n.negotiate(make_request(accept="en-US,en;q=0.9"), default="ja") == "ja"
    assert i18n.negotiate(make_request(accept="fr;q=1, en-GB;q=0.8, ja;q=0.5")) == "en"
    assert i18n.negotiate(make_request(accept="fr")) == "ja"
    assert i18n.negotiate(make_request(query="lang=de", cookie="xx")) == "ja"


def test_a_chosen_language_is_remembered_in_a_cookie(client: TestClient) -> None:
    response = client.get("/login?lang=en", headers=HTML)
    assert response.cookies.get(i18n.LOCALE_COOKIE) == "en"
    assert "Facilitator sign-in" in response.text
    again = client.get("/login", headers=HTML)
    assert "Facilitator sign-in" in again.text
    japanese = client.get("/login?lang=ja", headers=HTML)
    assert "ファシリテーターのログイン" in japanese.text


def test_team_room_defaults_to_the_exercises_language(client: TestClient) -> None:
    exercise = make_exercise(client, locale="en")
    response = client.post("/api/join", json={"code": exercise.team(0)["join_code"], "name": "Ann"})
    assert response.status_code == 201
    page = client.get("/team", headers={**HTML, "Accept-Language": "ja"})
    assert '<html lang="en">' in page.text
    assert "Incident overview" in page.text


def test_every_page_has_the_language_switcher(client: TestClient) -> None:
    page = client.get("/join?code=AB", headers=HTML).text
    assert 'href="/join?code=AB&amp;lang=en"' in page
    assert 'href="/join?code=AB&amp;lang=ja"' in page


def script_words(html: str) -> dict[str, str]:
    found = re.search(r'data-i18n="([^"]*)"', html)
    assert found is not None
    words: dict[str, str] = json.loads(unescape(found.group(1)))
    return words


def test_browser_scripts_get_their_words_in_the_pages_language(client: TestClient) -> None:
    ja = script_words(client.get("/join?lang=ja", headers=HTML).text)
    en = script_words(client.get("/join?lang=en", headers=HTML).text)
    assert set(ja) == set(en) == set(i18n.JS_MESSAGES)
    assert ja["offline"].startswith("オフライン")
    assert en["offline"].startswith("Offline")
