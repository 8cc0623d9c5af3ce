"""Workbooks are built in a worker process, so a big export never stalls live delivery.

Building a 50-team workbook is a second of pure Python. In a thread of the server process it
holds the GIL, and the event loop, which gives the GIL up on every socket send, then waits up to
the interpreter's switch interval (5 ms) to get it back, send after send: an inject to 100
participants took 400 ms longer during an export. A separate process has a GIL of its own and
shares only the CPU, and it yields the CPU to live delivery (it runs at a lower priority:
an export may take a little longer on a busy machine, a participant's update may not). It is
started on the first export, reads the database itself (the database is the truth), and
returns the finished bytes.
"""

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import make_engine, reading
from app.errors import NotFound
from app.exercises.models import Exercise
from app.export import service

_engines: dict[str, Engine] = {}
# The worker's niceness above the server's (Unix): the scheduler then favours the live hub.
WORKER_NICENESS = 10


def build_workbook_for(database_url: str, exercise_id: str) -> bytes:
    """The exercise's workbook, read and built in the calling process."""
    engine = _engines.get(database_url)
    if engine is None:
        engine = _engines[database_url] = make_engine(database_url)
    with Session(reading(engine)) as session:
        exercise = session.get(Exercise, exercise_id)
        if exercise is None:
            raise NotFound("No such exercise.", code="exercise_not_found")
        return service.workbook(session, exercise=exercise)


class ExportWorker:
    """One worker process for the app's exports (or none: then exports run in the caller)."""

    def __init__(self, *, database_url: str, separate_process: bool) -> None:
        self.database_url = database_url
        # An in-memory SQLite database exists only in this process.
        self.separate_process = separate_process and ":memory:" not in database_url
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def workbook(self, *, exercise_id: str) -> bytes:
        if not self.separate_process:
            return build_workbook_for(self.database_url, exercise_id)
        try:
            return self._submit(exercise_id)
        except BrokenProcessPool:
            # The worker died (killed, out of memory): start a new one and try once more.
            self._discard()
            return self._submit(exercise_id)

    def _submit(self, exercise_id: str) -> bytes:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the server has threads and an event loop a fork would copy.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(os.getpid(),),
                )
            pool = self._pool
        return pool.submit(build_workbook_for, self.database_url, exercise_id).result()

    def _discard(self, *, wait: bool = False) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the worker and wait for it, so no process outlives the server.

        The worker is terminated, not asked to finish: an export still under way answers a
        request that is going unanswered anyway, and a worker leaving on its own tears down
        every module the workbook needed first, 0.3-0.4 s that a restart would wait for.
        """
        with self._lock:
            pool = self._pool
        # The pool keeps its processes in a private attribute; without it the worker finishes.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        self._discard(wait=True)


def _start_worker(parent_pid: int) -> None:
    """In the worker: step back for live delivery, and leave when the server does."""
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)
    _leave_with_parent(parent_pid)


def _leave_with_parent(parent_pid: int) -> None:
    """In the worker: exit when the server is gone, however it went (even kill -9)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
