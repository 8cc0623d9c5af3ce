"""Saving large sheets fast: plain cells kept in a grid and written to the file as XML text.

openpyxl creates a Cell object per cell and serialises an ElementTree element per cell, which
made a 50-team workbook (about 70,000 cells) take seconds. The cells this app writes are plain:
text, numbers, dates, each with one of a few styles. They are kept in a `Grid` per sheet (value
and style id, nothing else) and written as ready-made XML, the same markup openpyxl writes. The
sheet's frame (columns, panes, merges, page setup, charts) and any cell created the openpyxl way
are still written by openpyxl, so both kinds can share a sheet.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from zipfile import ZipFile

from openpyxl.cell._writer import write_cell
from openpyxl.cell.cell import Cell
from openpyxl.comments.comment_sheet import CommentRecord
from openpyxl.compat import safe_string
from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.dimensions import SheetDimension
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

# A grid value: text (already free of characters XML cannot hold), a number, or a naive UTC datetime.
GridValue = str | int | float | datetime


class Grid:
    """The plain cells of one sheet: row → column → (value, style id)."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[int, tuple[GridValue, int]]] = {}

    def put(self, row: int, column: int, value: GridValue | None, style: int = 0) -> None:
        """Set a cell; None keeps only the style (an empty but formatted cell)."""
        self.rows.setdefault(row, {})[column] = ("" if value is None else value, style)

    def bounds(self) -> tuple[int, int, int, int] | None:
        """(min row, min column, max row, max column) of the cells, or None when empty."""
        if not self.rows:
            return None
        columns = [column for cells in self.rows.values() for column in cells]
        return min(self.rows), min(columns), max(self.rows), max(columns)


def escape_text(text: str) -> str:
    """Element content as XML: the three characters that must be escaped."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def escape_attribute(text: str) -> str:
    return escape_text(text).replace('"', "&quot;")


def style_id(workbook: Workbook, **style: Any) -> int:
    """The workbook's id of a cell style given as openpyxl attributes (font=…, alignment=…)."""
    probe = Cell(workbook.active)  # never added to a sheet: it only carries the style
    for name, value in style.items():
        setattr(probe, name, value)
    index: int = workbook._cell_styles.add(probe._style)
    return index


class FastWorksheetWriter(WorksheetWriter):
    """openpyxl's worksheet writer, with the grid's cells merged in and written as text."""

    def __init__(self, ws: Worksheet, out: IO[bytes], grid: Grid | None) -> None:
        self.grid = grid or Grid()
        super().__init__(ws, out)

    def write_dimensions(self) -> None:
        spans = [bounds for bounds in (self.grid.bounds(), _cell_bounds(self.ws)) if bounds]
        if not spans:
            return
        first_row, first_column = min(s[0] for s in spans), min(s[1] for s in spans)
        last_row, last_column = max(s[2] for s in spans), max(s[3] for s in spans)
        ref = (
            f"{get_column_letter(first_column)}{first_row}:"
            f"{get_column_letter(last_column)}{last_row}"
        )
        self.xf.send(SheetDimension(ref).to_tree())

    def _merged_rows(self) -> Iterator[tuple[int, list[tuple[int, Cell | tuple[GridValue, int]]]]]:
        rows: dict[int, dict[int, Cell | tuple[GridValue, int]]] = {}
        for (row, column), cell in self.ws._cells.items():
            rows.setdefault(row, {})[column] = cell
        for row in self.ws.row_dimensions:
            rows.setdefault(row, {})
        for row, cells in self.grid.rows.items():
            # The grid wins: openpyxl creates an empty cell at a merged range's corner by itself.
            rows.setdefault(row, {}).update(cells)
        for row in sorted(rows):
            yield row, sorted(rows[row].items())

    def write_rows(self) -> None:
        xf = self.xf.send(True)
        # et_xmlfile's writer function: text given to it goes into the file as it is, in order
        # with the elements openpyxl writes through the same object.
        raw = xf._file
        ws: Worksheet = self.ws
        dimensions = ws.row_dimensions
        epoch = ws.parent.epoch
        letters: dict[int, str] = {}
        with xf.element("sheetData"):
            for row, cells in self._merged_rows():
                attributes = "".join(
                    f' {key}="{escape_attribute(str(value))}"'
                    for key, value in dimensions.get(row, {})
                )
                parts = [f'<row r="{row}"{attributes}>']
                for column, cell in cells:
                    if isinstance(cell, tuple):
                        letter = letters.get(column)
                        if letter is None:
                            letter = letters[column] = get_column_letter(column)
                        parts.append(_cell_xml(f"{letter}{row}", *cell, epoch=epoch))
                        continue
                    if cell._comment is not None:
                        self.ws._comments.append(CommentRecord.from_cell(cell))
                    elif cell._value is None and not cell.has_style:
                        continue  # as openpyxl: an empty, unstyled cell is not written
                    raw("".join(parts))
                    parts.clear()
                    write_cell(xf, ws, cell, cell.has_style)
                parts.append("</row>")
                raw("".join(parts))
        self.xf.send(None)


def _cell_bounds(ws: Worksheet) -> tuple[int, int, int, int] | None:
    if not ws._cells:
        return None
    rows = [row for row, _ in ws._cells]
    columns = [column for _, column in ws._cells]
    return min(rows), min(columns), max(rows), max(columns)


def _cell_xml(reference: str, value: GridValue, style: int, *, epoch: Any) -> str:
    styled = f' s="{style}"' if style else ""
    if isinstance(value, str):
        if not value:
            return f'<c r="{reference}"{styled} t="n"></c>'
        stripped = value.strip()
        space = ' xml:space="preserve"' if stripped and stripped != value else ""
        return (
            f'<c r="{reference}"{styled} t="inlineStr">'
            f"<is><t{space}>{escape_text(value)}</t></is></c>"
        )
    if isinstance(value, datetime):
        value = to_excel(value, epoch)
    return f'<c r="{reference}"{styled} t="n"><v>{safe_string(value)}</v></c>'


class FastExcelWriter(ExcelWriter):
    """openpyxl's workbook writer with each sheet's grid, written straight into the archive."""

    def __init__(self, workbook: Workbook, archive: ZipFile, grids: dict[str, Grid]) -> None:
        if workbook.write_only:
            raise ValueError("write-only workbooks save through openpyxl's own writer")
        super().__init__(workbook, archive)
        self.grids = grids

    def write_worksheet(self, ws: Worksheet) -> None:
        # openpyxl's ExcelWriter.write_worksheet, writing into the zip entry, not a temporary file.
        ws._drawing = SpreadsheetDrawing()
        ws._drawing.charts = ws._charts
        ws._drawing.images = ws._images
        with self._archive.open(ws.path[1:], "w", force_zip64=True) as out:
            writer = FastWorksheetWriter(ws, out, self.grids.get(ws.title))
            writer.write()
        ws._rels = writer._rels
        self.manifest.append(ws)
