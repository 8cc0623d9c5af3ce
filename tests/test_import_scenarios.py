"""Scenario import from a workbook: the blank handout, an exported team sheet, and every kind of bad file."""

import io
import os
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from app.responses.fields import ANNOUNCEMENT_FIELDS, ROLE_FIELDS
from tests.debrief_data import FORMULA, play
from tests.factories import login, make_exercise, push

INCIDENTS = [
    (
        "標的型攻撃で機密情報が漏れた可能性があることが、外部からの連絡で判明した",
        "JPCERT/CC",
        "CSIRT",
    ),
    (
        "ハッカーの侵入を受けて、すべてのメールがインターネットに公開されたと連絡が入った",
        "メディア",
        "広報",
    ),
    ("WEBページから顧客情報が閲覧可能な状態にあると連絡", "個人（匿名）", "広報"),
]


def handout(
    rows: list[tuple[Any, ...]] | None = None,
    *,
    headers: list[Any] | None = None,
    title_rows: int = 0,
) -> bytes:
    """The blank workshop table: merged group headers, column headers, one row per incident."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "ワークシート"
    for _ in range(title_rows):
        ws.append(["インシデント対応ワークショップ"])
    top = title_rows + 1
    ws.cell(top, 1, "想定されるインシデント")
    ws.cell(top, 5, "想定される発表内容")
    ws.cell(top, 12, "担当などの確認")
    ws.merge_cells(start_row=top, start_column=1, end_row=top, end_column=4)
    ws.merge_cells(start_row=top, start_column=5, end_row=top, end_column=11)
    ws.merge_cells(start_row=top, start_column=12, end_row=top, end_column=17)
    default = [
        "No",
        "インシデント",
        "情報元",
        "受付部門",
        *(f.ja for f in (*ANNOUNCEMENT_FIELDS, *ROLE_FIELDS)),
    ]
    ws.append(headers if headers is not None else default)
    for row in (
        rows
        if rows is not None
        else [(i, *incident) for i, incident in enumerate(INCIDENTS, start=1)]
    ):
        ws.append(list(row))
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def upload(
    client: TestClient, headers: dict[str, str], data: bytes, name: str = "handout.xlsx"
) -> Any:
    return client.post(
        "/api/scenarios/import",
        files={
            "file": (
                name,
                data,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        },
        headers=headers,
    )


def test_blank_handout_becomes_a_scenario_set_usable_in_exercises(client: TestClient) -> None:
    headers = login(client)
    response = upload(client, headers, handout(), name="ws-for-incidents-xls_v02.xlsx")
    assert response.status_code == 201, response.text
    body = response.json()
    set_id = body["set"]
    assert set_id.startswith("imported-")
    assert [s["no"] for s in body["scenarios"]] == [1, 2, 3]
    first = body["scenarios"][0]
    assert first["id"] == f"{set_id}-01"
    assert first["title"]["ja"] == INCIDENTS[0][0]
    assert first["source"]["ja"] == "JPCERT/CC" and first["receiving"]["ja"] == "CSIRT"
    assert first["guidance"] == {}
    listed = client.get("/api/scenarios", headers=headers).json()
    assert {s["id"] for s in listed if s["set"] == set_id} == {s["id"] for s in body["scenarios"]}
    assert any(s["id"] == "jnsa-2018-01" for s in listed)
    # Another facilitator's new exercise can use it right away.
    bob = login(client, "bob")
    created = client.post(
        "/api/exercises",
        json={"title": "Imported", "teams": ["A"], "scenario_ids": [first["id"]]},
        headers=bob,
    )
    assert created.status_code == 201, created.text
    exercise = make_exercise(client, headers=bob)
    inject = push(client, exercise, scenario_id=body["scenarios"][2]["id"])
    assert inject["title"] == INCIDENTS[2][0] and inject["source"] == "個人（匿名）"


def test_handout_with_a_title_row_english_headers_and_blank_numbers(client: TestClient) -> None:
    english = [
        "No",
        "Incident",
        "Source",
        "Receiving department",
        *(f.en for f in (*ANNOUNCEMENT_FIELDS, *ROLE_FIELDS)),
    ]
    rows = [
        (None, "Ransomware on the file server", "", ""),
        (None, "Lost laptop", "Employee", "IT"),
    ]
    response = upload(client, login(client), handout(rows, headers=english, title_rows=1))
    assert response.status_code == 201, response.text
    scenarios = response.json()["scenarios"]
    assert [s["no"] for s in scenarios] == [1, 2]
    assert scenarios[0]["source"] == {"ja": "（未記入）", "en": "(not given)"}


def test_exported_workbook_imports_its_first_team_sheet_with_answers_as_guidance(
    client: TestClient,
) -> None:
    played = play(client)
    exported = client.get(
        f"/api/exercises/{played.exercise.id}/export.xlsx", headers=played.headers
    )
    response = upload(client, played.headers, exported.content, name="debrief.xlsx")
    assert response.status_code == 201, response.text
    scenarios = response.json()["scenarios"]
    assert [s["no"] for s in scenarios] == [1, 2]
    assert scenarios[0]["title"]["ja"].startswith("標的型攻撃")
    guidance = scenarios[0]["guidance"]
    assert guidance["overview"]["ja"] == FORMULA
    assert guidance["press"]["ja"] == played.answers[(0, 0, "press")]
    assert scenarios[1]["guidance"] == {"press": {"ja": "広報部長", "en": "広報部長"}}


def test_imported_sets_are_seen_by_another_app_on_the_same_database(
    client: TestClient, app: Any, settings: Any, scenario_library: Any
) -> None:
    from app.main import create_app

    headers = login(client)
    set_id = upload(client, headers, handout()).json()["set"]
    other = create_app(settings, scenarios=scenario_library)
    try:
        assert other.state.scenarios.get(f"{set_id}-02") is not None
        assert other.state.scenarios.set_of(f"{set_id}-02") == set_id
        assert other.state.scenarios.get("jnsa-2018-01") is not None
    finally:
        other.state.engine.dispose()


def wrong(response: Any, *, code: str, fragments: tuple[str, ...]) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == code, body
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]


def test_wrong_header_names_sheet_row_and_column(client: TestClient) -> None:
    headers = [
        "No",
        "インシデント",
        "情報元",
        "受付部門",
        "事故の概要",
        "影響を受ける顧客数と特徴",
        "天気",
    ]
    response = upload(client, login(client), handout(headers=headers))
    wrong(
        response,
        code="wrong_layout",
        fragments=("Sheet 'ワークシート', row 2, column G", "想定される二次被害", "'天気'"),
    )
    assert (response.json()["sheet"], response.json()["row"], response.json()["column"]) == (
        "ワークシート",
        2,
        "G",
    )


def test_a_sheet_without_the_table_is_refused_naming_the_first_sheet(client: TestClient) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Budget"
    ws.append(["Item", "Cost"])
    ws.append(["Coffee", 12])
    buffer = io.BytesIO()
    wb.save(buffer)
    wrong(
        upload(client, login(client), buffer.getvalue()),
        code="wrong_layout",
        fragments=("Sheet 'Budget', row 2, column A", "'Coffee'"),
    )


@pytest.mark.parametrize(
    ("rows", "code", "fragments"),
    [
        (
            [("one", "Incident", "", "")],
            "invalid_cell",
            ("row 3, column A", "whole number", "'one'"),
        ),
        (
            [(1, "A", "", ""), (1, "B", "", "")],
            "duplicate_no",
            ("row 4, column A", "No 1", "row 3"),
        ),
        ([(1, "", "JPCERT/CC", "")], "invalid_cell", ("row 3, column B", "incident is empty")),
        ([(1, "x" * 501, "", "")], "invalid_cell", ("row 3, column B", "501 characters")),
        ([(1, "A", "", "", "y" * 5001)], "invalid_cell", ("row 3, column E", "5001 characters")),
        ([], "no_incidents", ("row 3", "no incident rows")),
        (
            [(n, f"Incident {n}", "", "") for n in range(1, 502)],
            "too_many_rows",
            ("more than 500",),
        ),
    ],
)
def test_bad_rows_are_named(
    client: TestClient, rows: list[tuple[Any, ...]], code: str, fragments: tuple[str, ...]
) -> None:
    wrong(upload(client, login(client), handout(rows)), code=code, fragments=fragments)


def test_a_renamed_csv_is_not_an_xlsx(client: TestClient) -> None:
    csv = "No,インシデント,情報元,受付部門\n1,標的型攻撃,JPCERT/CC,CSIRT\n".encode()
    wrong(
        upload(client, login(client), csv, name="handout.xlsx"),
        code="not_xlsx",
        fragments=("not an XLSX workbook",),
    )


def test_a_zip_that_is_not_a_workbook_is_refused(client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    wrong(
        upload(client, login(client), buffer.getvalue()),
        code="not_xlsx",
        fragments=("not an XLSX",),
    )


def test_a_corrupt_workbook_part_is_refused_cleanly(client: TestClient) -> None:
    source = zipfile.ZipFile(io.BytesIO(handout()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for item in source.infolist():
            data = (
                b"<worksheet><sheetData><row"
                if item.filename.startswith("xl/worksheets/")
                else source.read(item)
            )
            archive.writestr(item, data)
    wrong(
        upload(client, login(client), buffer.getvalue()),
        code="not_xlsx",
        fragments=("could not be read",),
    )


def test_a_zip_bomb_is_refused_before_it_is_unpacked(client: TestClient) -> None:
    source = zipfile.ZipFile(io.BytesIO(handout()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for item in source.infolist():
            archive.writestr(item.filename, source.read(item))
        archive.writestr("xl/media/padding.bin", b"\0" * (60 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024  # small on the wire, 60 MB unpacked
    wrong(
        upload(client, login(client), data),
        code="too_large_uncompressed",
        fragments=("would unpack to",),
    )


def with_extra_part(name: str, content: bytes, *, content_types: bytes | None = None) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(handout()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "[Content_Types].xml" and content_types is not None:
                data = content_types
            archive.writestr(item.filename, data)
        if name:
            archive.writestr(name, content)
    return buffer.getvalue()


def test_macro_enabled_workbooks_are_refused(client: TestClient) -> None:
    headers = login(client)
    with_vba = with_extra_part("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro")
    wrong(upload(client, headers, with_vba), code="macro_enabled", fragments=("macros",))
    types = (
        zipfile.ZipFile(io.BytesIO(handout()))
        .read("[Content_Types].xml")
        .replace(
            b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        )
    )
    xlsm = with_extra_part("", b"", content_types=types)
    wrong(
        upload(client, headers, xlsm, name="handout.xlsm"),
        code="macro_enabled",
        fragments=(".xlsm",),
    )


def test_files_over_5_mb_are_refused_with_a_sentence(client: TestClient) -> None:
    headers = login(client)
    padded = with_extra_part("xl/media/photo.bin", os.urandom(5 * 1024 * 1024))
    response = upload(client, headers, padded)
    assert response.status_code == 413, response.text
    assert response.json()["code"] in ("file_too_large", "too_large")
    assert "MB" in response.json()["detail"] or "bytes" in response.json()["detail"]
    huge = upload(client, headers, b"\0" * (7 * 1024 * 1024))
    assert huge.status_code == 413 and huge.json()["detail"]


def test_only_facilitators_import(client: TestClient) -> None:
    assert upload(client, {}, handout()).status_code == 401
    exercise = make_exercise(client)
    from tests.factories import join

    member = join(client, exercise.team(0)["join_code"])
    assert upload(client, member["headers"], handout()).status_code == 403
    missing = client.post("/api/scenarios/import", headers=exercise.headers)
    assert missing.status_code == 422 and "file" in missing.json()["detail"]
