"""Import a scenario set from a workbook in the workshop table layout."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile, status
from fastapi.responses import HTMLResponse, Response

from app import i18n
from app.auth.deps import CurrentFacilitator
from app.db import SessionDep
from app.errors import API_ERRORS
from app.exercises.pages import PageFacilitator
from app.scenarios import importer

router = APIRouter(prefix="/api/scenarios", tags=["scenarios"], responses=API_ERRORS)


@router.post("/import", status_code=status.HTTP_201_CREATED)
def import_scenarios(
    file: Annotated[UploadFile, File(description="An .xlsx in the workshop table layout")],
    session: SessionDep,
    facilitator: CurrentFacilitator,
) -> dict[str, Any]:
    """Turn the blank handout or an exported team sheet into a new scenario set."""
    # One byte past the limit is enough to know the file is too large, without reading it all.
    data = file.file.read(importer.MAX_FILE_BYTES + 1)
    scenario_set = importer.import_workbook(
        session, owner=facilitator, data=data, filename=file.filename
    )
    return {
        "set": scenario_set.set_id,
        "scenarios": [
            scenario.public(scenario_set.set_id)
            for scenario in sorted(scenario_set.scenarios, key=lambda s: s.no)
        ],
    }


pages = APIRouter(include_in_schema=False)

PAGE_TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "title": "シナリオの取り込み",
        "intro": "ワークショップの表（XLSX）から新しいシナリオセットを作ります。配布用の空の表でも、"
        "書き出したワークブックのチームシートでも取り込めます（回答は模範解答の指針になります）。",
        "file": "ワークブック（.xlsx、5 MB まで）",
        "submit": "取り込む",
        "done": "取り込みました。新しい演習で使えます：",
    },
    "en": {
        "title": "Import scenarios",
        "intro": "Make a new scenario set from a workshop table (XLSX): the blank handout, or a team "
        "sheet of an exported workbook (its answers become the model-answer guidance).",
        "file": "Workbook (.xlsx, up to 5 MB)",
        "submit": "Import",
        "done": "Imported; usable in new exercises:",
    },
}


@pages.get("/scenarios/import", response_class=HTMLResponse)
def import_page(request: Request, _facilitator: PageFacilitator) -> Response:
    """The upload form for a handout workbook."""
    locale = i18n.negotiate(request)
    return i18n.render(request, "debrief/import.html", {"text": PAGE_TEXT[locale]}, locale=locale)
