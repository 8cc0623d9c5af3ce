"""The debrief workbook, reopened with openpyxl: layout, values, chart, and participants' text kept as text."""

import io
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from app.export.workbook import MAX_SHEET_NAME, unique_sheet_names
from app.responses.fields import ANNOUNCEMENT_FIELDS, FIELDS, ROLE_FIELDS
from tests.debrief_data import AT, EMOJI, FORMULA, LONG, MINUS, PLUS, RTL, Played, evaluate, play
from tests.factories import login, make_exercise, push

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export(client: TestClient, played: Played) -> tuple[Workbook, bytes]:
    response = client.get(
        f"/api/exercises/{played.exercise.id}/export.xlsx", headers=played.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert 'filename="tabletop-Drill-' in response.headers["content-disposition"]
    assert response.headers["content-disposition"].endswith(".xlsx")
    return load_workbook(io.BytesIO(response.content)), response.content


def row_values(ws: Worksheet, row: int) -> list[Any]:
    return [cell.value for cell in ws[row]]


def test_team_sheet_keeps_the_handout_layout_with_answers_and_timing(client: TestClient) -> None:
    played = play(client)
    wb, _ = export(client, played)
    assert wb.sheetnames == [
        "概要",
        "Red",
        "Blue",
        "比較",
        "担当マップ",
        "評価",
        "改善計画",
        "タイムライン",
    ]
    ws = wb["Red"]
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:D1", "E1:K1", "L1:Q1"} <= merged
    assert (ws["A1"].value, ws["E1"].value, ws["L1"].value) == (
        "想定されるインシデント",
        "想定される発表内容",
        "担当などの確認",
    )
    headers = row_values(ws, 2)
    assert headers[:4] == ["No", "インシデント", "情報元", "受付部門"]
    assert headers[4:17] == [f.ja for f in (*ANNOUNCEMENT_FIELDS, *ROLE_FIELDS)]
    assert headers[17:23] == [
        "公表判断",
        "所要時間（見込み）",
        "実際の所要時間（分）",
        "提出時刻（UTC）",
        "提出者",
        "メモ",
    ]
    row = row_values(ws, 3)
    assert row[0] == 1
    assert row[1] == "標的型攻撃で機密情報が漏れた可能性があることが、外部からの連絡で判明した"
    assert (row[2], row[3]) == ("JPCERT/CC", "CSIRT")
    expected = [played.answers[(0, 0, f.key)] for f in (*ANNOUNCEMENT_FIELDS, *ROLE_FIELDS)]
    expected = [value.replace("\x01\x07\x0b\x1b", "") for value in expected]
    assert row[4:17] == expected
    assert row[17] == "公表する"
    assert isinstance(row[19], int | float) and row[19] >= 0
    assert row[20] is not None and row[21] == "Member 0"
    # The second inject went to Red only: one more row on Red's sheet, none on Blue's.
    assert row_values(ws, 4)[0] == 2 and row_values(ws, 4)[12] == "広報部長"
    assert ws.max_row == 4
    blue = wb["Blue"]
    assert blue.max_row == 3
    assert blue["E3"].value == "Blue overview" and blue["M3"].value == "広報部"
    assert ws.freeze_panes == "C3"
    assert ws.print_title_rows == "$1:$2"


def test_participant_text_stays_text_and_control_characters_are_removed(client: TestClient) -> None:
    played = play(client)
    wb, raw = export(client, played)
    ws = wb["Red"]
    cells = {cell.value: cell for cell in ws[3] if isinstance(cell.value, str)}
    for value in (FORMULA, PLUS, MINUS, AT, EMOJI, RTL, LONG):
        assert value in cells, value
        assert cells[value].data_type == "s"
    assert "beforeafter" in cells
    assert len(LONG) == 5000 and cells[LONG].value == LONG
    # No formula anywhere in the file: the sheet XML has no <f> element.
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/sheet"):
                assert b"<f>" not in archive.read(name), name


def test_summary_has_facts_timing_table_and_a_native_bar_chart(client: TestClient) -> None:
    played = play(client)
    wb, raw = export(client, played)
    ws = wb["概要"]
    values = [cell.value for row in ws.iter_rows() for cell in row if cell.value is not None]
    for expected in (
        "演習の概要",
        "Drill",
        "alice",
        "終了",
        "Member 0",
        "Member 1",
        "提出までの時間（分）",
    ):
        assert expected in values
    timing_header = next(
        r
        for r in range(1, ws.max_row + 1)
        if ws.cell(r, 1).value == "チーム" and ws.cell(r, 2).value == "No.1"
    )
    assert ws.cell(timing_header + 1, 1).value == "Red"
    assert isinstance(ws.cell(timing_header + 1, 2).value, int | float)
    assert ws.cell(timing_header + 2, 3).value is None  # Blue never got inject 2
    assert len(ws._charts) == 1
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        chart = archive.read("xl/charts/chart1.xml")
    assert (
        b"barChart" in chart and b"'\xe6\xa6\x82\xe8\xa6\x81'!$B$" in chart
    )  # data from 概要 column B


def test_comparison_and_stakeholder_map_put_teams_side_by_side(client: TestClient) -> None:
    played = play(client)
    wb, _ = export(client, played)
    ws = wb["比較"]
    assert row_values(ws, 1) == ["No", "インシデント", "項目", "Red", "Blue"]
    rows = {(r[0], r[2]): r for r in ws.iter_rows(min_row=2, values_only=True)}
    assert len(rows) == 2 * len(FIELDS)
    assert rows[(1, "事故の概要")][3:] == (FORMULA, "Blue overview")
    assert rows[(1, "報道対応")][4] == "広報部"
    assert rows[(2, "報道対応")][3:] == ("広報部長", "（未配信）")
    assert ws.freeze_panes == "D2"

    roles = wb["担当マップ"]
    assert row_values(roles, 1) == ["担当", "No", "インシデント", "Red", "Blue"]
    labels = [roles.cell(r, 1).value for r in range(2, roles.max_row + 1) if roles.cell(r, 1).value]
    assert labels == [f.ja for f in ROLE_FIELDS]
    legal = next(r for r in range(2, roles.max_row + 1) if roles.cell(r, 1).value == "法的な検討")
    assert roles.cell(legal, 5).value == "法務部"
    press_no2 = (
        next(r for r in range(2, roles.max_row + 1) if roles.cell(r, 1).value == "報道対応") + 1
    )
    assert roles.cell(press_no2, 4).value == "広報部長"
    # Blue left "other" empty for inject 1: the gap is shaded; inject 2 was never Blue's, so no shade.
    other = next(r for r in range(2, roles.max_row + 1) if roles.cell(r, 1).value == "その他")
    assert roles.cell(other, 5).fill.fgColor.rgb.endswith("FCE4D6")
    assert roles.cell(other + 1, 5).fill.fill_type is None


def test_evaluation_plan_and_timeline_sheets(client: TestClient) -> None:
    played = play(client)
    evaluate(client, played)
    wb, _ = export(client, played)
    ws = wb["評価"]
    rows = [r for r in ws.iter_rows(min_row=4, values_only=True) if r[0] in ("Red", "Blue")]
    assert rows[0][:5] == ("Red", 1, rows[0][2], "達成", "Clear and quick")
    blue = next(r for r in rows if r[0] == "Blue")
    assert blue[3] == "未達成" and blue[4] == FORMULA
    text = [c.value for row in ws.iter_rows() for c in row if c.value is not None]
    assert "強み" in text and "PR was named at once" in text
    assert "改善すべき点" in text and "=SUM(A1:A2)" in text
    formula_cell = next(c for row in ws.iter_rows() for c in row if c.value == "=SUM(A1:A2)")
    assert formula_cell.data_type == "s"

    plan = wb["改善計画"]
    assert row_values(plan, 3) == ["No", "課題", "対応策", "担当者", "期限", "状況"]
    assert row_values(plan, 4)[:4] == [1, "No legal contact", "Name a legal on-call", "CISO"]
    assert plan.cell(4, 5).value.date().isoformat() == "2027-01-31"
    assert plan.cell(4, 6).value == "未着手" and plan.cell(5, 6).value == "対応中"

    timeline = wb["タイムライン"]
    events = list(timeline.iter_rows(min_row=2, values_only=True))
    types = [row[2] for row in events]
    assert types[0] == "status" and types[-1] == "status"
    assert {"inject", "response", "submission", "message"} <= set(types)
    assert any(row[4] == "5 minutes left" for row in events)
    # Long answers are shortened in the timeline (the team sheet has them whole).
    long_rows = [row[4] for row in events if row[2] == "response" and LONG[:200] in row[4]]
    assert long_rows and all(text.endswith(LONG[:200] + "…") for text in long_rows)
    assert any(row[2] == "response" and row[4].endswith(": 広報部長") for row in events)
    seqs = [row[1] for row in events]
    assert seqs == sorted(seqs)


def test_print_setup_and_document_properties(client: TestClient) -> None:
    played = play(client)
    wb, _ = export(client, played)
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
        assert ws.sheet_properties.pageSetUpPr.fitToPage
    red = wb["Red"]
    assert red.column_dimensions["B"].width == 40
    assert red["E3"].alignment.wrap_text
    assert wb.properties.title == "Drill"
    assert wb.properties.creator == "alice"
    assert wb.properties.language == "ja"
    assert wb.properties.subject


def test_english_exercise_gets_english_headers(client: TestClient) -> None:
    played = play(client, locale="en")
    wb, _ = export(client, played)
    assert wb.sheetnames[0] == "Summary" and "Comparison" in wb.sheetnames
    ws = wb["Red"]
    assert (ws["A1"].value, ws["E1"].value, ws["L1"].value) == (
        "Expected incident",
        "Expected announcement",
        "Who is in charge",
    )
    assert row_values(ws, 2)[:5] == [
        "No",
        "Incident",
        "Source",
        "Receiving department",
        "Incident overview",
    ]
    assert ws["B3"].value.startswith("An outside party tells us")
    assert ws["R3"].value == "Disclose"


def test_sheet_names_are_valid_and_unique_when_team_names_collide(client: TestClient) -> None:
    long_a, long_b = "x" * 31 + "A", "x" * 31 + "B"
    teams = (long_a, long_b, "R&D: [core]/ops?*", "概要", "'quoted'")
    played = play(client, teams=teams)
    wb, _ = export(client, played)
    names = wb.sheetnames
    assert len(names) == len({n.casefold() for n in names})
    for name in names:
        assert len(name) <= MAX_SHEET_NAME
        assert not set(name) & set("[]:*?/\\")
    team_sheets = names[1 : 1 + len(teams)]
    assert team_sheets[0] == "x" * 31 and team_sheets[1].endswith("(2)")
    assert team_sheets[2] == "R&D_ _core__ops__"
    assert team_sheets[3] == "概要 (2)"
    # Comparison headers keep the full team names.
    assert row_values(wb["比較"], 1)[3:] == list(teams)


def test_unique_sheet_names_handles_empty_and_reserved_names() -> None:
    assert unique_sheet_names(["", "Summary", "summary", "a" * 40], reserved=["Summary"]) == [
        "Team",
        "Summary (2)",
        "summary (3)",
        "a" * 31,
    ]


def test_exercise_with_no_injects_still_exports(client: TestClient) -> None:
    exercise = make_exercise(client, start=False)
    response = client.get(f"/api/exercises/{exercise.id}/export.xlsx", headers=exercise.headers)
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(response.content))
    assert wb["Red"].max_row == 2
    assert wb["概要"]._charts == []


@pytest.mark.parametrize("who", ["nobody", "other_facilitator", "participant"])
def test_only_the_owner_downloads_the_workbook(client: TestClient, who: str) -> None:
    played = play(client, end=False)
    headers = {
        "nobody": {},
        "other_facilitator": login(client, "bob"),
        "participant": played.participants[0]["headers"],
    }[who]
    response = client.get(f"/api/exercises/{played.exercise.id}/export.xlsx", headers=headers)
    assert (
        response.status_code == {"nobody": 401, "other_facilitator": 404, "participant": 403}[who]
    )
    assert response.json()["code"]


def test_export_during_a_running_exercise(client: TestClient) -> None:
    played = play(client, end=False)
    push(client, played.exercise, scenario_id="jnsa-2018-05")
    wb, _ = export(client, played)
    assert wb["Blue"].max_row == 4
    assert wb["概要"]["B7"].value is not None
