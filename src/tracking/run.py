"""A `Run`: the recording of one flow call, made as it happens, written to Prefect later."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from src.core.ids import local_uuid

T = TypeVar("T")

current_run: ContextVar[Run | None] = ContextVar("oas_current_run", default=None)

COMPLETED, FAILED, CANCELLED, CRASHED = "COMPLETED", "FAILED", "CANCELLED", "CRASHED"

#: log lines a run keeps below WARNING; warnings and errors are kept up to MAX_LOG_LINES
MAX_INFO_LINES = 200
MAX_LOG_LINES = 500


@dataclass(slots=True)
class TaskRecord:
    """One task call inside a run: what Prefect shows as a task run."""

    id: uuid.UUID
    name: str
    task_key: str
    started: float
    ended: float | None = None
    state: str = "RUNNING"
    message: str | None = None


@dataclass(slots=True)
class LogLine:
    """One log line the run caused, as Prefect's `LogCreate` wants it."""

    timestamp: float
    level: int
    name: str
    message: str
    task_run_id: uuid.UUID | None = None


@dataclass(slots=True)
class Run:
    """A flow run in the making. Cheap to create: no I/O happens here."""

    flow_name: str
    name: str
    parameters: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    id: uuid.UUID = field(default_factory=local_uuid)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    state: str = "RUNNING"
    message: str | None = None
    tasks: list[TaskRecord] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    #: what the flow tells the coordinator: the model that answered (a fallback may) ...
    upstream_model: str | None = None
    #: ... and when the first token was ready (time.time())
    first_token_at: float | None = None
    payload: dict[str, Any] | None = None
    #: False when only tags and summary are collected (inside a real Prefect flow run)
    record_tasks: bool = True
    #: set by the recorder: whether this run reached Prefect
    tracked: bool | None = None
    #: the log lines this run caused (bounded), for its Logs tab
    logs: list[LogLine] = field(default_factory=list)
    logs_dropped: int = 0

    def begin_task(self, name: str, task_key: str) -> TaskRecord:
        record = TaskRecord(local_uuid(), name, task_key, time.time())
        self.tasks.append(record)
        return record

    def end_task(self, record: TaskRecord, state: str, message: str | None = None) -> None:
        record.ended = time.time()
        record.state = state
        record.message = message

    def add_log(self, level: int, name: str, message: str) -> None:
        """Keep a log line for the run's Logs tab, against the step running now, or the
        step that just failed while no other has started (what is logged then, an attempt's
        error, a retry, is about that failure).

        Bounded: past MAX_INFO_LINES only warnings and errors are kept, past MAX_LOG_LINES
        none; the recorder says how many were left out."""
        kept = len(self.logs)
        if kept >= MAX_LOG_LINES or (kept >= MAX_INFO_LINES and level < 30):
            self.logs_dropped += 1
            return
        task = next((t.id for t in reversed(self.tasks) if t.ended is None), None)
        if task is None and self.tasks and self.tasks[-1].state == FAILED:
            task = self.tasks[-1].id
        self.logs.append(LogLine(time.time(), level, name, message, task))

    @contextmanager
    def current(self) -> Iterator[Run]:
        """Make this the current run for a block (its log lines go to the run)."""
        token = current_run.set(self)
        try:
            yield self
        finally:
            current_run.reset(token)

    def add_tags(self, *tags: str) -> None:
        for tag in tags:
            if tag and tag not in self.tags:
                self.tags.append(tag)

    def finish(self, state: str = COMPLETED, message: str | None = None) -> None:
        """Close the run once; later calls keep the first ending."""
        if self.ended is None:
            self.ended = time.time()
            self.state = state
            self.message = message
            for task in self.tasks:
                if task.ended is None:
                    task.ended = self.ended
                    task.state = CANCELLED if state == CANCELLED else state
                    task.message = task.message or message

    @property
    def duration(self) -> float:
        return (self.ended or time.time()) - self.started

    async def pull(self, agen: AsyncIterator[T]) -> T:
        """The next item of an async generator, made with this run as the current one.

        The run is set around each step, not once, so it holds whichever task (the
        endpoint's, or the response's) pulls the next item; a coroutine rather than a
        wrapping generator, so a streamed chunk passes one generator frame fewer.
        Raises StopAsyncIteration at the end, as `anext` does.
        """
        token = current_run.set(self)
        try:
            return await agen.__anext__()
        finally:
            current_run.reset(token)


def annotate(
    *,
    tags: tuple[str, ...] | list[str] = (),
    upstream_model: str | None = None,
    first_token_at: float | None = None,
    **summary: Any,
) -> None:
    """Add tags and summary fields to the run this code is part of, if any.

    Flows call this to tell the dashboard what they learnt (usage, attempts) and the
    coordinator what it needs (`upstream_model`, `first_token_at`: typed fields of the run);
    it is a no-op outside a recorded run, so flows stay runnable anywhere.
    """
    run = current_run.get()
    if run is None:
        return
    run.add_tags(*tags)
    if upstream_model is not None:
        run.upstream_model = upstream_model
    if first_token_at is not None:
        run.first_token_at = first_token_at
    run.summary.update(summary)
