"""Group commit of live edits: the edits that arrive while one batch is written form the next.

Committing each keystroke-sized edit on its own costs a transaction, about ten queries and, on
SQLite with synchronous=FULL, an fsync. Under load the edits queue here instead and are written
together by `responses.write_cells`: the busier the room, the bigger the batch, and an edit
waits at most for the batch in front of it. Nothing is acknowledged before its batch commits.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.errors import DomainError
from app.responses.service import CellEdit

log = logging.getLogger(__name__)

Outcome = int | DomainError
WriteBatch = Callable[[list[CellEdit]], Awaitable[list[Outcome]]]
# A bound on one transaction's size, so one batch never holds the write lock for long.
MAX_BATCH = 500


class EditBatcher:
    """Queues edits and writes them in batches, one batch at a time, on the running loop."""

    def __init__(self, write: WriteBatch, *, max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self._max_batch = max_batch
        self._queue: list[tuple[CellEdit, asyncio.Future[Outcome]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # A fresh event per start: an asyncio.Event belongs to the loop that first waits on it,
        # and an app may be started again on another loop (tests do).
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()

    async def submit(self, edit: CellEdit) -> int:
        """The edit's new version once its batch has committed, or its DomainError raised."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((edit, future))
        self._wake.set()
        outcome = await future
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write_batch(batch)

    async def _write_batch(self, batch: list[tuple[CellEdit, asyncio.Future[Outcome]]]) -> None:
        try:
            outcomes = await self._write([edit for edit, _ in batch])
        except Exception as exc:  # the database failed: every edit of the batch says so
            log.exception("writing a batch of %d edits failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():  # its socket may have gone meanwhile
                future.set_result(outcome)
