"""The scenario library over HTTP."""

from typing import Any

from fastapi import APIRouter

from app.auth.deps import CurrentFacilitator
from app.errors import API_ERRORS
from app.exercises.deps import Library

router = APIRouter(prefix="/api", tags=["scenarios"], responses=API_ERRORS)


@router.get("/scenarios")
def list_scenarios(_facilitator: CurrentFacilitator, library: Library) -> list[dict[str, Any]]:
    """Every scenario of the library (the ten JNSA incidents first), in both languages."""
    return library.public()
