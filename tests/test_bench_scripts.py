"""The benchmark scripts' own set-up still works with the services it drives."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from sqlmodel import Session, func, select

from app.db import make_engine
from app.responses.fields import FIELDS
from app.responses.models import ResponseCell, Submission

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_export_benchmark_builds_a_fully_answered_exercise(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    exercise_id = load_script("bench_export").build(url, teams=2, injects=3, chars=40)
    engine = make_engine(url)
    with Session(engine) as session:
        cells = session.exec(select(func.count()).select_from(ResponseCell)).one()
        submitted = session.exec(select(func.count()).select_from(Submission)).one()
    engine.dispose()
    assert exercise_id
    assert cells == 2 * 3 * len(FIELDS)
    assert submitted == 2 * 3


def test_the_batch_benchmark_writes_every_batch_in_full(tmp_path: Path) -> None:
    """Its `run` checks every outcome (each edit continues from its writer's last version)."""
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    times = load_script("bench_batch").run(url, teams=2, size=5, batches=10)
    assert len(times) == 8 and all(t > 0 for t in times)
    engine = make_engine(url)
    with Session(engine) as session:
        versions = session.exec(select(func.sum(ResponseCell.version))).one()
    engine.dispose()
    assert versions == 10 * 5


@pytest.mark.postgres
def test_the_batch_benchmark_writes_from_several_processes_into_one_exercise(
    empty_postgres_url: str,
) -> None:
    """--processes: every process's batches are stored, none refused (each has its own writers)."""
    times, rate = load_script("bench_batch").run_together(
        empty_postgres_url, teams=2, size=3, batches=10, processes=2
    )
    assert len(times) == 2 * 8 and all(t > 0 for t in times) and rate > 0
    engine = make_engine(empty_postgres_url)
    with Session(engine) as session:
        versions = session.exec(select(func.sum(ResponseCell.version))).one()
    engine.dispose()
    assert versions == 2 * 10 * 3


def test_the_scaled_comparison_alternates_the_modes_and_takes_medians() -> None:
    compare = load_script("bench_scaled")
    # In pairs, each mode first in turn: a drifting machine weighs on both alike.
    assert compare.order(3) == ["one", "scaled", "scaled", "one", "one", "scaled"]

    def figures(coedit_p99: float, inject_p99: float) -> dict[str, float]:
        return {
            "coedit_p50": coedit_p99 / 2,
            "coedit_p99": coedit_p99,
            "inject500_p50": inject_p99 / 2,
            "inject500_p99": inject_p99,
        }

    rows = compare.summary(
        {
            "one": [figures(40, 30), figures(90, 31), figures(50, 29)],
            "scaled": [figures(62, 35), figures(55, 70), figures(300, 40)],
        }
    )
    by_name = {row[0]: row for row in rows}
    coedit = by_name["co-editing: edit → teammate p99"]
    assert coedit[1] == "40.0 / 90.0 / 50.0 (median 50.0)"
    assert coedit[3:] == ("+12.0 ms", "**missed**")
    assert by_name["inject to 500: request → receipt p99"][3:] == ("+10.0 ms", "met")
    # The p50s are shown, not judged.
    assert by_name["co-editing: edit → teammate p50"][4] == ""
