"""The fast sheet writer: grid cells and openpyxl cells in one sheet, reopened with openpyxl."""

import io
from datetime import datetime
from zipfile import ZIP_DEFLATED, ZipFile

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font

from app.export.sheetxml import FastExcelWriter, Grid, style_id


def _save(wb: Workbook, grids: dict[str, Grid]) -> bytes:
    buffer = io.BytesIO()
    with ZipFile(buffer, "w", ZIP_DEFLATED) as archive:
        FastExcelWriter(wb, archive, grids).save()
    return buffer.getvalue()


def test_grid_and_openpyxl_cells_share_a_sheet() -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Data"
    wrap = style_id(wb, alignment=Alignment(wrap_text=True))
    stamp = style_id(wb, number_format="yyyy-mm-dd hh:mm:ss")
    grid = Grid()
    grid.put(1, 1, '<a & b> "quoted"', wrap)
    grid.put(1, 3, "  leading and trailing  ")
    grid.put(2, 2, 3.5)
    grid.put(2, 4, 42)
    grid.put(3, 1, datetime(2026, 11, 26, 9, 30, 15), stamp)
    grid.put(4, 5, None, wrap)  # styled, empty
    grid.put(5, 1, "=SUM(A1:A2)")  # text, never a formula
    grid.put(6, 1, "merged anchor")
    ws.merge_cells("A6:C6")
    ws.cell(row=2, column=1, value="openpyxl").font = Font(bold=True)
    ws.cell(row=7, column=2, value="with a comment").comment = Comment("note", "tester")

    reopened = load_workbook(io.BytesIO(_save(wb, {"Data": grid})))["Data"]
    assert reopened["A1"].value == '<a & b> "quoted"'
    assert reopened["A1"].alignment.wrap_text is True
    assert reopened["C1"].value == "  leading and trailing  "
    assert reopened["B2"].value == 3.5
    assert reopened["D2"].value == 42
    assert reopened["A3"].value == datetime(2026, 11, 26, 9, 30, 15)
    assert reopened["A3"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert reopened["E4"].value is None
    assert reopened["E4"].alignment.wrap_text is True
    assert reopened["A5"].value == "=SUM(A1:A2)"
    assert reopened["A5"].data_type == "s"
    assert reopened["A6"].value == "merged anchor"
    assert [str(r) for r in reopened.merged_cells.ranges] == ["A6:C6"]
    assert reopened["A2"].value == "openpyxl"
    assert reopened["A2"].font.bold is True
    assert reopened["B7"].comment is not None
    assert reopened.dimensions == "A1:E7"


def test_an_empty_grid_and_an_empty_sheet_still_make_a_valid_file() -> None:
    wb = Workbook()
    wb.create_sheet("Empty")
    reopened = load_workbook(io.BytesIO(_save(wb, {})))
    assert reopened.sheetnames == ["Sheet", "Empty"]
    assert reopened["Empty"].max_row == 1
