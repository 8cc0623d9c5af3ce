"""Downloads of an exercise (workbook, archive) and the archive import."""

from fastapi import APIRouter, Request, Response, status

from app.auth.deps import CurrentFacilitator
from app.db import SessionDep
from app.errors import API_ERRORS
from app.exercises import service as exercises
from app.exercises.deps import OwnedExercise
from app.exercises.schemas import ExerciseRead
from app.export import service
from app.export.schemas import Archive
from app.export.worker import ExportWorker

router = APIRouter(prefix="/api/exercises", tags=["export"], responses=API_ERRORS)
# An archive carries every revision of every answer; a long exercise's can be tens of megabytes.
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024


@router.get(
    "/{exercise_id}/export.xlsx",
    response_class=Response,
    responses={200: {"content": {service.XLSX_MEDIA_TYPE: {}}}},
)
def export_xlsx(exercise: OwnedExercise, request: Request) -> Response:
    """The debrief workbook: a sheet per team in the handout layout, summary, comparison and more."""
    worker: ExportWorker = request.app.state.exports
    return Response(
        worker.workbook(exercise_id=exercise.id),
        media_type=service.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": service.download_name(exercise, extension="xlsx")},
    )


@router.get("/{exercise_id}/archive.json", response_model=Archive)
def export_archive(exercise: OwnedExercise, session: SessionDep) -> Response:
    """The whole exercise as JSON, for a backup or another server (participants' tokens excluded)."""
    body = service.archive(session, exercise=exercise).model_dump_json()
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": service.download_name(exercise, extension="json")},
    )


@router.post("/import", response_model=ExerciseRead, status_code=status.HTTP_201_CREATED)
def import_archive(
    body: Archive, session: SessionDep, facilitator: CurrentFacilitator
) -> ExerciseRead:
    """Recreate an archived exercise as a new one owned by the caller, with new ids and join codes."""
    exercise = service.import_archive(session, owner=facilitator, data=body)
    return exercises.exercise_read(session, exercise)
