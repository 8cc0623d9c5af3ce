#!/usr/bin/env python3
"""Time the debrief workbook export of a large exercise (default: 50 teams × 10 injects, full answers).

Builds the exercise in a throwaway SQLite database through the services (as the API would),
then exports it several times and prints the median, with the time split between reading the
database and writing the workbook. Usage:

    .venv/bin/python scripts/bench_export.py [--teams 50] [--injects 10] [--chars 5000] [--runs 5]
"""

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import Session

from app.auth import service as auth
from app.db import make_engine, migrate
from app.debrief import service as debrief
from app.exercises import service as exercises
from app.exercises.models import Exercise
from app.exercises.schemas import ExerciseCreate, InjectCreate
from app.export.workbook import build_workbook
from app.responses import service as responses
from app.responses.fields import FIELDS
from app.scenarios.loader import load_scenario_dir

ROOT = Path(__file__).resolve().parent.parent
PHRASES = (
    "顧客情報が漏えいした可能性があり、",
    "影響範囲を調査中です。",
    "広報部門と法務部門が連携し、",
    "経営会議で公表の要否を判断します。",
    "再発防止策としてアクセス権限を見直し、",
    "CSIRTがログを保全しています。",
    "The incident response team is verifying the scope; ",
    "customers will be notified once facts are confirmed. ",
)


def answer(rng: random.Random, chars: int) -> str:
    """Text of about `chars` characters, different for every cell (as real answers are)."""
    parts: list[str] = []
    length = 0
    while length < chars:
        phrase = rng.choice(PHRASES)
        parts.append(phrase)
        length += len(phrase)
    return "".join(parts)[:chars]


def build(url: str, *, teams: int, injects: int, chars: int) -> str:
    """The exercise id of a played exercise with every field of every team's answers filled."""
    migrate(url)
    engine = make_engine(url, sqlite_synchronous="NORMAL")
    library = load_scenario_dir(ROOT / "scenarios")
    scenario_ids = [scenario.id for _, scenario in library.all()]
    rng = random.Random(2018)
    with Session(engine, expire_on_commit=False) as session:
        owner = auth.create_facilitator(session, username="bench", password="bench-password")
        exercise = exercises.create_exercise(
            session,
            owner=owner,
            data=ExerciseCreate(
                title="Export benchmark", teams=[f"Team {i + 1:02d}" for i in range(teams)]
            ),
            library=library,
        )
        exercises.transition(session, exercise=exercise, action="start")
        team_rows = exercises.teams_of(session, exercise_id=exercise.id)
        delivered = [
            exercises.deliver_inject(
                session,
                exercise_id=exercise.id,
                data=InjectCreate(scenario_id=scenario_ids[i % len(scenario_ids)]),
                library=library,
            )
            for i in range(injects)
        ]
        for team in team_rows:
            for inject in delivered:
                for field in FIELDS:
                    value = "yes" if field.key == "disclose" else answer(rng, chars)
                    responses.write_cell(
                        session,
                        exercise=exercise,
                        team=team,
                        inject_id=inject.id,
                        field=field.key,
                        value=value,
                        base_version=0,
                        author="bench",
                        participant_id=None,
                    )
                responses.submit(
                    session, exercise=exercise, team=team, inject_id=inject.id, author="bench"
                )
        exercises.transition(session, exercise=exercise, action="end")
        exercise_id = exercise.id
    engine.dispose()
    return exercise_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--injects", type=int, default=10)
    parser.add_argument("--chars", type=int, default=5000, help="characters per answer")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        started = time.perf_counter()
        exercise_id = build(url, teams=args.teams, injects=args.injects, chars=args.chars)
        print(
            f"built {args.teams} teams × {args.injects} injects × {len(FIELDS)} fields "
            f"({args.chars} chars) in {time.perf_counter() - started:.1f} s"
        )
        engine = make_engine(url)
        reads, writes, totals, cpu, size = [], [], [], [], 0
        for _ in range(args.runs):
            with Session(engine) as session:
                exercise = session.get(Exercise, exercise_id)
                assert exercise is not None
                c0, t0 = time.process_time(), time.perf_counter()
                results = debrief.load_results(session, exercise=exercise)
                t1 = time.perf_counter()
                data = build_workbook(results)
                t2, c2 = time.perf_counter(), time.process_time()
            reads.append(t1 - t0)
            writes.append(t2 - t1)
            totals.append(t2 - t0)
            cpu.append(c2 - c0)
            size = len(data)
        engine.dispose()

    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    print(f"workbook: {size / 1_048_576:.1f} MB, {args.runs} runs")
    print(f"read database  median {statistics.median(reads):.3f} s")
    print(f"write workbook median {statistics.median(writes):.3f} s")
    print(
        f"export total   median {statistics.median(totals):.3f} s  "
        f"(min {min(totals):.3f}, max {max(totals):.3f})"
    )
    # On a shared machine wall time includes waiting for a core; CPU time is the export's own work.
    print(f"export CPU     median {statistics.median(cpu):.3f} s")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average   {load} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
