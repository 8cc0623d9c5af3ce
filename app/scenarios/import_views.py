"""Import a scenario set from a workbook in the workshop table layout."""

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile, status

from app.auth.deps import CurrentFacilitator
from app.db import SessionDep
from app.errors import API_ERRORS
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
