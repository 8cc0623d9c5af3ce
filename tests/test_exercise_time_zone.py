"""An exercise's time zone and `PATCH /api/exercises/{id}`."""

from fastapi.testclient import TestClient

from tests.factories import login


def _create(client: TestClient, headers: dict[str, str], **body: object) -> dict:
    response = client.post("/api/exercises", json={"title": "Drill", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_the_time_zone_defaults_by_locale_and_can_be_chosen(client: TestClient) -> None:
    headers = login(client)
    assert _create(client, headers, locale="ja")["time_zone"] == "Asia/Tokyo"
    assert _create(client, headers, locale="en")["time_zone"] == "UTC"
    chosen = _create(client, headers, locale="en", time_zone="America/New_York")
    assert chosen["time_zone"] == "America/New_York"
    detail = client.get(f"/api/exercises/{chosen['id']}", headers=headers).json()
    assert detail["time_zone"] == "America/New_York"
    listed = client.get("/api/exercises", headers=headers).json()
    assert {row["id"]: row["time_zone"] for row in listed}[chosen["id"]] == "America/New_York"


def test_an_unknown_time_zone_is_refused_with_its_code(client: TestClient) -> None:
    headers = login(client)
    for name in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "x" * 100):
        response = client.post(
            "/api/exercises", json={"title": "Drill", "time_zone": name}, headers=headers
        )
        assert response.status_code == 422, name
        assert response.json()["code"] == "invalid_time_zone", response.json()
    assert client.get("/api/exercises", headers=headers).json() == []


def test_patch_changes_only_the_fields_given(client: TestClient) -> None:
    headers = login(client)
    exercise = _create(client, headers, locale="ja", teams=["A"])
    url = f"/api/exercises/{exercise['id']}"
    renamed = client.patch(url, json={"title": "  Second run  "}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "Second run"
    assert renamed.json()["locale"] == "ja"
    assert renamed.json()["time_zone"] == "Asia/Tokyo"
    moved = client.patch(url, json={"time_zone": "Europe/Berlin", "locale": "en"}, headers=headers)
    assert moved.json()["time_zone"] == "Europe/Berlin"
    assert moved.json()["locale"] == "en"
    assert moved.json()["title"] == "Second run"
    assert moved.json()["teams"] == exercise["teams"]


def test_patch_refuses_bad_values_and_keeps_what_was_saved(client: TestClient) -> None:
    headers = login(client)
    exercise = _create(client, headers, locale="en", time_zone="Asia/Tokyo")
    url = f"/api/exercises/{exercise['id']}"
    bad_zone = client.patch(url, json={"title": "New", "time_zone": "Nowhere"}, headers=headers)
    assert bad_zone.status_code == 422
    assert bad_zone.json()["code"] == "invalid_time_zone"
    assert client.patch(url, json={"title": ""}, headers=headers).status_code == 422
    assert client.patch(url, json={"locale": "fr"}, headers=headers).status_code == 422
    kept = client.get(url, headers=headers).json()
    assert (kept["title"], kept["time_zone"], kept["locale"]) == ("Drill", "Asia/Tokyo", "en")


def test_patch_is_the_owners_only(client: TestClient) -> None:
    exercise = _create(client, login(client))
    other = login(client, "bob")
    response = client.patch(
        f"/api/exercises/{exercise['id']}", json={"title": "Mine"}, headers=other
    )
    assert response.status_code in (403, 404)
    assert client.patch(f"/api/exercises/{exercise['id']}", json={"title": "x"}).status_code == 401
