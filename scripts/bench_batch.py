#!/usr/bin/env python3
"""Time one batch of live edits written by `responses.write_cells` on an idle database.

The co-editing benchmark (scripts/bench.py) measures edits end to end on a loaded machine; this
measures the database side of one batch alone: an exercise of 50 teams × 6 writers is built
through the services (as the API would), then batches of edits by different writers, each
continuing from its writer's last version, are written one after another. With `--processes N`
(PostgreSQL), N processes write batches into the same exercise at once, each for its own
writers, as N server processes do: one exercise's batches then wait for each other's locks, and
the batches per second of all of them together is the exercise's write capacity. Usage:

    .venv/bin/python scripts/bench_batch.py [--batch 11] [--batches 400]
    .venv/bin/python scripts/bench_batch.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python scripts/bench_batch.py --postgres postgresql+psycopg://… --processes 2
"""

import argparse
import importlib.util
import multiprocessing
import platform
import random
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import Session

from app.auth import service as auth
from app.db import make_engine, migrate
from app.exercises import service as exercises
from app.exercises.schemas import ExerciseCreate, InjectCreate
from app.responses import service as responses
from app.responses.service import CellEdit
from app.scenarios.loader import load_scenario_dir

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("overview", "affected_customers", "secondary_damage", "cause", "press", "legal")


def build(url: str, *, teams: int) -> list[CellEdit]:
    """A running exercise with one delivered inject; one edit (version 1) per writer."""
    migrate(url)
    engine = make_engine(url)
    library = load_scenario_dir(ROOT / "scenarios")
    with Session(engine, expire_on_commit=False) as session:
        owner = auth.create_facilitator(session, username="bench", password="bench-password")
        exercise = exercises.create_exercise(
            session,
            owner=owner,
            data=ExerciseCreate(title="Batch benchmark", teams=[f"T{i}" for i in range(teams)]),
            library=library,
        )
        exercises.transition(session, exercise=exercise, action="start")
        inject = exercises.deliver_inject(
            session,
            exercise_id=exercise.id,
            data=InjectCreate(title="x", body="y"),
            library=library,
        )
        writers = []
        for team in exercises.teams_of(session, exercise_id=exercise.id):
            for field in FIELDS:
                joined = auth.join(session, code=team.join_code, name=f"{team.name}-{field}")
                writers.append(
                    CellEdit(
                        exercise_id=exercise.id,
                        team_id=team.id,
                        inject_id=inject.id,
                        field=field,
                        value="",
                        base_version=0,
                        author=joined.participant.name,
                        participant_id=joined.participant.id,
                    )
                )
    engine.dispose()
    return writers


def run(url: str, *, teams: int, size: int, batches: int) -> list[float]:
    """Milliseconds per batch, after a fifth of them as warm-up."""
    return write_batches(url, build(url, teams=teams), size=size, batches=batches)


def write_batches(
    url: str,
    writers: list[CellEdit],
    *,
    size: int,
    batches: int,
    seed: int = 2018,
) -> list[float]:
    """Milliseconds per batch of `size` of these writers' edits, after a fifth as warm-up."""
    versions = [0] * len(writers)
    rng = random.Random(seed)
    engine = make_engine(url)
    times = []
    for number in range(batches):
        picks = rng.sample(range(len(writers)), size)
        edits = []
        for w in picks:
            edits.append(
                CellEdit(
                    **{
                        **writers[w].__dict__,
                        "value": f"{number}: " + "情報漏えいの影響範囲を調査中です。" * 3,
                        "base_version": versions[w],
                    }
                )
            )
            versions[w] += 1
        with Session(engine) as session:
            started = time.perf_counter()
            outcomes = responses.write_cells(session, edits=edits)
            times.append((time.perf_counter() - started) * 1000)
        assert outcomes == [versions[w] for w in picks], outcomes
    engine.dispose()
    return times[batches // 5 :]


def _write_share(
    url: str, writers: list[CellEdit], size: int, batches: int, seed: int, start: Any, out: Any
) -> None:
    """One process's part of run_together: once every process is ready (`start`, a barrier),
    puts its times and its seconds from then to its end, or what went wrong."""
    try:
        start.wait()
        began = time.perf_counter()
        times = write_batches(url, writers, size=size, batches=batches, seed=seed)
        out.put((times, time.perf_counter() - began))
    except BaseException as exc:
        out.put(repr(exc))
        raise


def run_together(
    url: str, *, teams: int, size: int, batches: int, processes: int
) -> tuple[list[float], float]:
    """Each process's batches into one exercise at once: every batch's milliseconds (after
    warm-up) and the batches per second of all processes together."""
    writers = build(url, teams=teams)
    # Forked: the processes start from this one's state, no engine or connection open.
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(processes), context.SimpleQueue()
    workers = [
        context.Process(
            target=_write_share,
            args=(url, writers[i::processes], size, batches, i, start, out),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    results = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    failed = [result for result in results if isinstance(result, str)]
    if failed:
        raise RuntimeError(f"a writing process failed: {failed[0]}")
    times = [t for share_times, _ in results for t in share_times]
    return times, processes * batches / max(seconds for _, seconds in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL (a throwaway database is made)")
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--batch", type=int, default=11, help="edits per batch")
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument(
        "--processes", type=int, default=1, help="processes writing into one exercise at once"
    )
    args = parser.parse_args()
    if args.processes > 1 and not args.postgres:
        parser.error("--processes needs --postgres: SQLite serves one server process")

    if args.postgres:
        spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
        assert spec is not None and spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        database = bench.postgres_database(args.postgres)
    else:
        database = nullcontext()
    with tempfile.TemporaryDirectory() as directory, database as postgres_url:
        url = postgres_url or f"sqlite:///{directory}/bench.db"
        sizes = {"teams": args.teams, "size": args.batch, "batches": args.batches}
        if args.processes > 1:
            times, rate = run_together(url, processes=args.processes, **sizes)
        else:
            times, rate = run(url, **sizes), 0.0
    times.sort()
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}")
    print(
        f"batch of {args.batch} edits: mean {statistics.mean(times):.2f} ms, "
        f"p50 {times[len(times) // 2]:.2f} ms, p90 {times[int(len(times) * 0.9)]:.2f} ms "
        f"({len(times)} batches)"
    )
    if args.processes > 1:
        print(
            f"{args.processes} processes into one exercise: {rate:.0f} batches/s "
            f"({rate * args.batch:.0f} edits/s) together"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
