"""`step`: a Prefect task that a recorded `Run` can also carry.

Inside a recorded run (the request path) a step runs its function directly and notes
start, end and state in the run; inside a real Prefect flow run it is an ordinary
Prefect task; anywhere else it is a plain function call. So flows are written once,
with real `@task`s, and the request path pays no Prefect round trip.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from src.tracking.run import CANCELLED, COMPLETED, FAILED, Run, current_run

P = ParamSpec("P")
R = TypeVar("R")


def _failure_message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class Step(Task[P, R]):
    """A Prefect `Task` that knows three ways to run (see the module docstring)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:  # type: ignore[override]
        run = current_run.get()
        if run is not None and run.record_tasks:
            return self._recorded(run, args, kwargs)
        if FlowRunContext.get() is not None:
            return super().__call__(*args, **kwargs)
        return self.fn(*args, **kwargs)

    def _recorded(self, run: Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if inspect.isasyncgenfunction(self.fn):
            return self._record_agen(run, args, kwargs)
        if inspect.iscoroutinefunction(self.fn):
            return self._record_async(run, args, kwargs)
        record = run.begin_task(self.name, self.task_key)
        try:
            result = self.fn(*args, **kwargs)
        except BaseException as exc:
            run.end_task(record, FAILED, _failure_message(exc))
            raise
        run.end_task(record, COMPLETED)
        return result

    async def _record_async(self, run: Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        record = run.begin_task(self.name, self.task_key)
        fn: Any = self.fn  # a coroutine function: `_recorded` checked
        try:
            result = await fn(*args, **kwargs)
        except asyncio.CancelledError:
            run.end_task(record, CANCELLED, "cancelled")
            raise
        except BaseException as exc:
            run.end_task(record, FAILED, _failure_message(exc))
            raise
        run.end_task(record, COMPLETED)
        return result

    async def _record_agen(
        self, run: Run, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        record = run.begin_task(self.name, self.task_key)
        fn: Any = self.fn  # an async generator function: `_recorded` checked
        agen = fn(*args, **kwargs)
        try:
            async for item in agen:
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            run.end_task(record, CANCELLED, "cancelled")
            raise
        except BaseException as exc:
            run.end_task(record, FAILED, _failure_message(exc))
            raise
        finally:
            await agen.aclose()
        run.end_task(record, COMPLETED)


def step(name: str) -> Callable[[Callable[P, R]], Step[P, R]]:
    """Declare a task with a name a dashboard reader understands.

    No input hashing (requests are large) and no result persistence: a step's value
    lives for one request. It takes no other Prefect task options on purpose: the request
    path calls the function itself, so `retries`, timeouts or caching would hold in replays
    only (retries live in `src/tasks/upstream/retry.py`, where both paths see them).
    Under Prefect's engine its task runs are named `name` too, without the random suffix
    Prefect adds by default.
    """

    def wrap(fn: Callable[P, R]) -> Step[P, R]:
        return Step(
            fn=fn,
            name=name,
            task_run_name=name,
            cache_policy=NO_CACHE,
            persist_result=False,
        )

    return wrap
