"""Scenario sets from a workbook in the workshop table layout, stored so every process sees them.

The file is checked as a ZIP package before openpyxl opens it: size, uncompressed size (zip
bombs), macros and the parts an XLSX must have. Then the first sheet whose header reads
No | インシデント becomes one scenario per row; answers found in the row (an exported team
sheet has them) become the scenario's model-answer guidance.
"""

import io
import secrets
import unicodedata
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from app.auth.models import Facilitator
from app.db import reading
from app.errors import Invalid, PayloadTooLarge
from app.responses.fields import ANNOUNCEMENT_FIELDS, ROLE_FIELDS
from app.scenarios.loader import ScenarioLibrary
from app.scenarios.models import ImportedScenarioSet
from app.scenarios.schema import LocalizedText, Scenario, ScenarioSet

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_ZIP_ENTRIES = 1000
MAX_ROWS = 500
MAX_TITLE = 500
MAX_SHORT = 200
MAX_ANSWER = 5000
HEADER_SEARCH_ROWS = 10
MACRO_CONTENT_TYPE = "macroenabled"

_FIXED = (
    ("No", ("no", "no.", "番号")),
    ("インシデント / Incident", ("インシデント", "incident", "想定されるインシデント")),
    ("情報元 / Source", ("情報元", "source", "informationsource")),
    ("受付部門 / Receiving department", ("受付部門", "receivingdepartment", "receiving")),
)
_MATRIX = (*ANNOUNCEMENT_FIELDS, *ROLE_FIELDS)
# The simulation slide words the first announcement item differently from the table.
_ALIASES: dict[str, tuple[str, ...]] = {"overview": ("漏えいした情報の種類",)}
COLUMNS = len(_FIXED) + len(_MATRIX)


def _norm(value: Any) -> str:
    text = unicodedata.normalize("NFKC", "" if value is None else str(value))
    return "".join(text.split()).casefold()


def _expected_headers() -> list[tuple[str, set[str]]]:
    expected = [(shown, {_norm(v) for v in accepted}) for shown, accepted in _FIXED]
    for field in _MATRIX:
        accepted = {
            _norm(field.ja),
            _norm(field.en),
            *(_norm(a) for a in _ALIASES.get(field.key, ())),
        }
        expected.append((f"{field.ja} / {field.en}", accepted))
    return expected


EXPECTED_HEADERS = _expected_headers()


def column_letter(index: int) -> str:
    """A for 1, B for 2, … (the handout never goes past Z, but exports do)."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _at(sheet: str, row: int, column: int | None = None) -> str:
    where = f"Sheet {sheet!r}, row {row}"
    return f"{where}, column {column_letter(column)}" if column is not None else where


def check_package(data: bytes) -> None:
    """Refuse what is not a plain XLSX before any XML parser sees it."""
    if len(data) > MAX_FILE_BYTES:
        raise PayloadTooLarge(
            f"The file is {len(data) / 1_048_576:.1f} MB; workbooks up to "
            f"{MAX_FILE_BYTES // 1_048_576} MB can be imported.",
            code="file_too_large",
        )
    not_xlsx = Invalid(
        "The file is not an XLSX workbook (an .xlsx is a ZIP package; this looks like a CSV, "
        "an old .xls or another file renamed). Save it from Excel or LibreOffice as .xlsx.",
        code="not_xlsx",
    )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise not_xlsx from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise Invalid(
                f"The workbook package has {len(entries)} parts; a handout has a few dozen.",
                code="not_xlsx",
            )
        names = {entry.filename.casefold() for entry in entries}
        if any(name.endswith("vbaproject.bin") for name in names):
            raise Invalid(
                "The workbook contains macros (vbaProject.bin); save it as a plain .xlsx "
                "without macros and import that.",
                code="macro_enabled",
            )
        if any(entry.flag_bits & 0x1 for entry in entries):
            raise Invalid(
                "The workbook is encrypted or password-protected; save an unprotected copy.",
                code="encrypted",
            )
        # The sizes in the ZIP directory bound what decompression may produce (zipfile stops
        # there), so checking them here defuses a zip bomb before openpyxl inflates anything.
        total = sum(entry.file_size for entry in entries)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise Invalid(
                f"The workbook would unpack to {total / 1_048_576:.0f} MB; the limit is "
                f"{MAX_UNCOMPRESSED_BYTES // 1_048_576} MB. It is not a handout workbook.",
                code="too_large_uncompressed",
            )
        if "[content_types].xml" not in names or "xl/workbook.xml" not in names:
            raise not_xlsx
        content_types = archive.read("[Content_Types].xml").decode("utf-8", "replace")
        if MACRO_CONTENT_TYPE in content_types.casefold():
            raise Invalid(
                "The workbook is macro-enabled (.xlsm); save it as a plain .xlsx and import that.",
                code="macro_enabled",
            )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


def _find_header(rows: Sequence[Sequence[Any]]) -> int | None:
    incident = EXPECTED_HEADERS[1][1]
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        cells = [*list(row), None, None]
        if _norm(cells[0]) in EXPECTED_HEADERS[0][1] and _norm(cells[1]) in incident:
            return index
    return None


def _check_header(sheet: str, row_number: int, row: Sequence[Any]) -> None:
    cells = list(row) + [None] * COLUMNS
    for column, (shown, accepted) in enumerate(EXPECTED_HEADERS, start=1):
        found = cells[column - 1]
        if _norm(found) not in accepted:
            what = f"found {_text(found)!r}" if _text(found) else "the cell is empty"
            raise Invalid(
                f"{_at(sheet, row_number, column)}: expected the column header {shown!r}; {what}. "
                "Use the workshop table layout: No | インシデント | 情報元 | 受付部門 | the 7 "
                "announcement items | the 6 roles.",
                code="wrong_layout",
                sheet=sheet,
                row=row_number,
                column=column_letter(column),
            )


def _read_sheets(data: bytes) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Each sheet's rows (values only), stopping early on sheets far longer than a handout."""
    try:
        from openpyxl import load_workbook  # here: openpyxl is a tenth of the server's start-up

        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on malformed parts
        raise Invalid(
            f"The workbook could not be read ({type(exc).__name__}); save it again as .xlsx.",
            code="not_xlsx",
        ) from None
    sheets = []
    try:
        for ws in workbook.worksheets:
            rows: list[tuple[Any, ...]] = []
            filled = 0
            for row in ws.iter_rows(values_only=True):
                rows.append(tuple(row[:COLUMNS]))
                if any(value not in (None, "") for value in row):
                    filled += 1
                if filled > MAX_ROWS + HEADER_SEARCH_ROWS:
                    break
            sheets.append((ws.title, rows))
    except Exception as exc:
        raise Invalid(
            f"The workbook could not be read ({type(exc).__name__}); save it again as .xlsx.",
            code="not_xlsx",
        ) from None
    finally:
        workbook.close()
    return sheets


def parse_workbook(data: bytes, *, set_id: str, title: str) -> ScenarioSet:
    """The workbook's incidents as a scenario set, or a 422 naming the sheet, row and column."""
    check_package(data)
    sheets = _read_sheets(data)
    if not sheets:
        raise Invalid("The workbook has no sheets.", code="wrong_layout")
    chosen: tuple[str, list[tuple[Any, ...]], int] | None = None
    first_error: Invalid | None = None
    # An exported workbook has other sheets first; the first sheet with the full header wins.
    for name, rows in sheets:
        index = _find_header(rows)
        if index is None:
            continue
        try:
            _check_header(name, index + 1, rows[index])
        except Invalid as exc:
            first_error = first_error or exc
            continue
        chosen = (name, rows, index)
        break
    if chosen is None and first_error is not None:
        raise first_error
    if chosen is None:
        name, rows = sheets[0]
        first = [*list(rows[1]), None] if len(rows) > 1 else [None]
        found = _text(first[0])
        raise Invalid(
            f"{_at(name, 2, 1)}: no sheet has the workshop table's header row (No in column A and "
            f"インシデント / Incident in column B, within rows 1–{HEADER_SEARCH_ROWS})"
            + (f"; found {found!r}." if found else "; the cell is empty."),
            code="wrong_layout",
            sheet=name,
            row=2,
            column="A",
        )
    sheet, rows, header_index = chosen
    scenarios: list[Scenario] = []
    numbers: dict[int, int] = {}
    for offset, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        cells = [_text(value) for value in row] + [""] * COLUMNS
        if not any(cells[:COLUMNS]):
            continue
        if len(scenarios) >= MAX_ROWS:
            raise Invalid(
                f"Sheet {sheet!r} has more than {MAX_ROWS} incident rows; split it into several files.",
                code="too_many_rows",
            )
        scenarios.append(_scenario(sheet, offset, cells, set_id=set_id, numbers=numbers))
    if not scenarios:
        raise Invalid(
            f"{_at(sheet, header_index + 2)}: the table has no incident rows below the header.",
            code="no_incidents",
        )
    return ScenarioSet(set_id=set_id, title=LocalizedText(ja=title, en=title), scenarios=scenarios)


def _scenario(
    sheet: str, row: int, cells: list[str], *, set_id: str, numbers: dict[int, int]
) -> Scenario:
    def fail(column: int, message: str, code: str = "invalid_cell") -> Invalid:
        return Invalid(
            f"{_at(sheet, row, column)}: {message}",
            code=code,
            sheet=sheet,
            row=row,
            column=column_letter(column),
        )

    number_text, title, source, receiving = cells[0], cells[1], cells[2], cells[3]
    if not title:
        raise fail(
            2, "the incident is empty, but the row has other text; fill it in or clear the row."
        )
    if len(title) > MAX_TITLE:
        raise fail(2, f"the incident has {len(title)} characters; the limit is {MAX_TITLE}.")
    for column, value in ((3, source), (4, receiving)):
        if len(value) > MAX_SHORT:
            raise fail(column, f"the text has {len(value)} characters; the limit is {MAX_SHORT}.")
    if number_text:
        try:
            number = int(number_text)
        except ValueError:
            raise fail(1, f"No must be a whole number; found {number_text!r}.") from None
        if number < 1:
            raise fail(1, f"No must be 1 or more; found {number}.")
    else:
        number = max(numbers, default=0) + 1
    if number in numbers:
        raise fail(1, f"No {number} is already used in row {numbers[number]}.", "duplicate_no")
    numbers[number] = row
    guidance: dict[str, dict[str, str]] = {}
    for column, field in enumerate(_MATRIX, start=len(_FIXED) + 1):
        answer = cells[column - 1]
        if len(answer) > MAX_ANSWER:
            raise fail(column, f"the text has {len(answer)} characters; the limit is {MAX_ANSWER}.")
        if answer:
            guidance[field.key] = {"ja": answer, "en": answer}
    unknown = {"ja": "（未記入）", "en": "(not given)"}
    try:
        return Scenario.model_validate(
            {
                "id": f"{set_id}-{number:02d}",
                "no": number,
                "title": {"ja": title, "en": title},
                "source": {"ja": source, "en": source} if source else unknown,
                "receiving": {"ja": receiving, "en": receiving} if receiving else unknown,
                "body": {"ja": title, "en": title},
                "guidance": guidance,
            }
        )
    except ValidationError as exc:
        raise fail(2, f"the row cannot become a scenario: {exc.errors()[0]['msg']}.") from None


def new_set_id() -> str:
    return f"imported-{secrets.token_hex(4)}"


def set_title(filename: str | None) -> str:
    stem = PurePath(filename or "").stem.strip()
    return stem[:100] or "Imported scenarios"


def import_workbook(
    session: Session, *, owner: Facilitator, data: bytes, filename: str | None
) -> ScenarioSet:
    """Store the workbook's incidents as a new scenario set; every server process then offers it."""
    assert owner.id is not None
    scenario_set = parse_workbook(data, set_id=new_set_id(), title=set_title(filename))
    session.add(
        ImportedScenarioSet(
            set_id=scenario_set.set_id,
            owner_id=owner.id,
            filename=(filename or "")[:255],
            content=scenario_set.model_dump(mode="json", by_alias=True),
        )
    )
    session.commit()
    return scenario_set


class LibraryWithImports(ScenarioLibrary):
    """The scenario files plus the sets imported into the database.

    Lookups of the file scenarios never touch the database; anything else checks a cheap
    stamp (count, newest import) and reloads the imported sets when another process added one.
    """

    def __init__(self, files: ScenarioLibrary, *, engine: Engine) -> None:
        super().__init__(files.sets())
        self._files = files
        # A deferred reader: it must not wait for the very request (holding the write lock)
        # that asked for a scenario.
        self._engine = reading(engine)
        self._stamp: tuple[Any, ...] | None = None
        self._combined: ScenarioLibrary = files

    def _current(self) -> ScenarioLibrary:
        with self._engine.connect() as connection:
            stamp = tuple(
                connection.execute(
                    select(func.count(), func.max(ImportedScenarioSet.created_at))
                ).one()
            )
            if stamp != self._stamp:
                contents = connection.execute(
                    select(col(ImportedScenarioSet.content)).order_by(
                        col(ImportedScenarioSet.created_at), col(ImportedScenarioSet.set_id)
                    )
                ).scalars()
                imported = [ScenarioSet.model_validate(content) for content in contents]
                self._combined = ScenarioLibrary([*self._files.sets(), *imported])
                self._stamp = stamp
        return self._combined

    def get(self, scenario_id: str) -> Scenario | None:
        return self._files.get(scenario_id) or self._current().get(scenario_id)

    def set_of(self, scenario_id: str) -> str | None:
        return self._files.set_of(scenario_id) or self._current().set_of(scenario_id)

    def sets(self) -> list[ScenarioSet]:
        return self._current().sets()

    def all(self) -> list[tuple[str, Scenario]]:
        return self._current().all()


def with_imports(files: ScenarioLibrary, *, engine: Engine) -> ScenarioLibrary:
    """The library the app serves: files and imported sets."""
    return LibraryWithImports(files, engine=engine)
