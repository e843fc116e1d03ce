"""The background writer that turns finished `Run`s into Prefect flow runs.

It lives on its own thread and event loop, so nothing the client waits for ever waits on
the Prefect API. Per request it makes three small API calls (create the flow run Running
as the request starts, set its final state as it ends, attach the artifact) and sends
task-run events and log lines in batches shared by many requests (task-run events are how
Prefect's own task engine reports task runs); a Claude Code session's keyed artifact is
rewritten at most every two seconds, with the totals of all its requests so far.

When the API is down or slow the recorder counts runs as untracked instead of queueing
them forever, probes the API's health every few seconds and resumes on its own. A bounded
queue absorbs bursts above Prefect's write rate: a run that has ended by the time its
create is sent while Prefect is behind is recorded late, in one call.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

import structlog

from src.core.event_loops import background_loop
from src.tracking.batches import Batch
from src.tracking.deployment_ids import DeploymentIds
from src.tracking.events import task_run_events
from src.tracking.flow_runs import CreateBody, finish_flow_run
from src.tracking.logs import install as install_log_capture
from src.tracking.logs import log_records
from src.tracking.payloads import PayloadStore
from src.tracking.prefect_api import ApiResponse, PrefectApi, PrefectDown, PrefectRefused
from src.tracking.recorder_stats import RecorderStats
from src.tracking.run import CANCELLED, Run
from src.tracking.sessions import Sessions

log = structlog.get_logger("oas.recorder")

__all__ = ["PrefectDown", "Recorder", "RecorderStats"]


class Recorder:
    """Records runs to the Prefect API at `api_url` (or only counts them if it is None)."""

    def __init__(
        self,
        api_url: str | None,
        payloads: PayloadStore | None = None,
        *,
        max_pending: int = 10_000,
        concurrency: int = 4,
        timeout: float = 5.0,
        late_after: int = 64,
        grace: float = 0.0,
        session_every: float = 2.0,
        render_artifact: Callable[[Run], str] | None = None,
        deployments: DeploymentIds | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/") if api_url else None
        self.payloads = payloads
        self.max_pending = max_pending
        self.concurrency = concurrency
        self.timeout = timeout
        self.late_after = late_after
        # With `grace` > 0, a run that ends within `grace` seconds of its start is created
        # finished, in one call, instead of Running and then finished: one write less, but
        # Prefect stamps states itself, so such a run has no start time and no duration.
        self.grace = grace
        self.session_every = session_every
        self.render_artifact = render_artifact
        # runs of a served deployment's flow are created in it: Retry on the dashboard
        self.deployments = deployments
        self.stats = RecorderStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._pending_lock = threading.Lock()
        # runs announced and not yet handed over: at shutdown they are written as
        # cancelled, so no flow run is left Running in the dashboard forever
        self._open: dict[uuid.UUID, Run] = {}

    # ---- the request side (any thread, never blocks) ----------------------------------

    def begin(self, run: Run) -> None:
        """Announce a run that just started; its flow run is created in the background."""
        if self._loop is None or self._stopping:
            return
        with self._pending_lock:
            if self.stats.pending >= self.max_pending or not self.stats.prefect_up:
                run.tracked = False
                return
            self.stats.pending += 1
        self._open[run.id] = run
        self._loop.call_soon_threadsafe(self._on_begin, run)

    def end(self, run: Run) -> None:
        """Hand over a finished run; its states, tasks and artifact are written later."""
        self._open.pop(run.id, None)
        if self._loop is None or run.tracked is False or self._stopping:
            self._count_untracked(run)
            return
        self._loop.call_soon_threadsafe(self._on_end, run)

    def _count_untracked(self, run: Run) -> None:
        self.stats.untracked += 1
        if self.api_url is None:
            return  # tracking is off on purpose: nothing to warn about
        if self.stats.untracked in (1, 10, 100) or self.stats.untracked % 1000 == 0:
            log.warning(
                "run not tracked",
                flow_run=str(run.id),
                untracked_total=self.stats.untracked,
                prefect_up=self.stats.prefect_up,
            )

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the recorder thread (idempotent)."""
        if self._thread is not None:
            return
        install_log_capture()  # each run keeps its own log lines, for its Logs tab
        self._thread = threading.Thread(target=self._thread_main, name="oas-recorder", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self, drain_seconds: float = 5.0) -> None:
        """Write what is pending (within the bound), then stop the thread."""
        if self._loop is None or self._thread is None:
            return
        for run in list(self._open.values()):
            self._open.pop(run.id, None)
            run.finish(CANCELLED, "the server shut down before this request ended")
            self._loop.call_soon_threadsafe(self._on_end, run)
        fut: Future[None] = asyncio.run_coroutine_threadsafe(self._drain(drain_seconds), self._loop)
        try:
            fut.result(drain_seconds + 2)
        except Exception:
            pass
        self._stopping = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None
        self._loop = None

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything handed over so far has been written (tests, CLI)."""
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._drain(timeout), self._loop)
        fut.result(timeout + 2)

    def _thread_main(self) -> None:
        loop = background_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._created: dict[uuid.UUID, asyncio.Future[str | None]] = {}
        # what the creating call already wrote: (tags, whether the final state was included)
        self._written: dict[uuid.UUID, tuple[list[str], bool]] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._events = Batch("/events", "task run events", self.stats.count_events)
        self._logs = Batch("/logs/", "log lines", self.stats.count_log_lines)
        self._sessions = Sessions()
        # set when there is something to send: an idle recorder's pumps sleep
        self._queued, self._session_news = asyncio.Event(), asyncio.Event()
        # when Prefect answered the create of a run made Running: its final state is not
        # sent before that plus the run's duration (see `finish_flow_run`)
        self._running_acked: dict[uuid.UUID, float] = {}
        self._flow_ids: dict[str, str] = {}
        self._ended: dict[uuid.UUID, asyncio.Event] = {}
        self._api = (
            PrefectApi(
                self.api_url,
                timeout=self.timeout,
                concurrency=self.concurrency,
                on_down=self._mark_down,
                on_call=self.stats.count_call,
                on_retry=self.stats.count_retry,
            )
            if self.api_url
            else None
        )
        loop.create_task(self._event_pump())
        loop.create_task(self._session_pump())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            if self._api is not None:
                loop.run_until_complete(self._api.aclose())
            loop.close()

    async def _drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._inflight and self._sessions.dirty and self.stats.prefect_up:
                self._spawn(self._sessions.flush(self._call, self.stats))
            if not (self._inflight or self._events or self._logs):
                return
            if (self._events or self._logs) and not self._inflight:
                await self._send_batches()
            await asyncio.sleep(0.02)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(task)
        self.stats.writing = len(self._inflight)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        self.stats.writing = len(self._inflight)

    # ---- the recorder thread ---------------------------------------------------------

    def _on_begin(self, run: Run) -> None:
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._created[run.id] = future
        self._ended[run.id] = ended = asyncio.Event()
        self._spawn(self._begin(run, future, ended))

    def _on_end(self, run: Run) -> None:
        if (ended := self._ended.pop(run.id, None)) is not None:
            ended.set()
        if self._api is not None:
            self._sessions.add(run)
            self._session_news.set()
        self._spawn(self._end(run))

    async def _call(self, method: str, url: str, json: Any = None) -> ApiResponse:
        assert self._api is not None
        return await self._api.call(method, url, json)

    def _mark_down(self, exc: BaseException) -> None:
        if self.stats.went_down(str(exc) or type(exc).__name__):
            asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        assert self._api is not None
        while not self._stopping:
            await asyncio.sleep(2.0)
            if await self._api.healthy():
                self.stats.came_back()
                return

    async def _flow_id(self, flow_name: str) -> str:
        if flow_name not in self._flow_ids:
            response = await self._call("POST", "/flows/", json={"name": flow_name})
            self._flow_ids[flow_name] = response.json()["id"]
        return self._flow_ids[flow_name]

    def _behind(self) -> bool:
        """Prefect is not keeping up: more writes wait than `late_after`. A run that has
        ended by the time its create is sent is then written in one call, not two: under
        overload Prefect takes more runs per second, and those runs show their duration in
        the state message and the summary instead of Prefect's own clock."""
        return len(self._inflight) > self.late_after

    def _store_payload(self, run: Run) -> None:
        if self.payloads is not None and (stored := self.payloads.save_run(run)) is not None:
            self.stats.payload_bytes += stored.total_bytes
            self.stats.payload_new_bytes += stored.new_bytes

    async def _begin(
        self, run: Run, created: asyncio.Future[str | None], ended: asyncio.Event
    ) -> None:
        try:
            if not self.api_url or not self.stats.prefect_up:
                self._store_payload(run)
                created.set_result(None)
                return
            if run.ended is None and self.grace > 0:
                try:
                    await asyncio.wait_for(ended.wait(), self.grace)
                except TimeoutError:
                    pass
            flow_id = await self._flow_id(run.flow_name)
            deployment_id = (
                await self.deployments.lookup(run.flow_name)
                if self.deployments is not None
                else None
            )
            # Running now, finished by `finish_flow_run`: Prefect shows the real duration.
            # Unless grace allows one call for a run that ended within it (no duration).
            body = CreateBody(
                run,
                flow_id,
                deployment_id,
                final=run.ended is not None and self.grace > 0,
                late_if=lambda: ended.is_set() and self._behind(),
                on_late=self.stats.note_lag,
            )

            try:
                try:
                    response = await self._call("POST", "/flow_runs/", json=body)
                except PrefectRefused:
                    # The flow may be gone (a reset database): look it up again, once; so
                    # may the deployment, which only its server registers again: record
                    # without.
                    self._flow_ids.pop(run.flow_name, None)
                    body.body["flow_id"] = await self._flow_id(run.flow_name)
                    body.body["deployment_id"] = None
                    response = await self._call("POST", "/flow_runs/", json=body)
                if not body.final:
                    self._running_acked[run.id] = time.time()
            finally:
                # after the create, so that Prefect's start time is the request's
                self._store_payload(run)
            self._written[run.id] = (list(body.body["tags"]), body.final)
            created.set_result(response.json()["id"])
        except Exception as exc:
            if not isinstance(exc, PrefectDown):
                log.warning("could not create flow run", error=str(exc))
            if not created.done():
                created.set_result(None)
        finally:
            with self._pending_lock:
                self.stats.pending -= 1

    async def _end(self, run: Run) -> None:
        created = self._created.pop(run.id, None)
        flow_run_id = await created if created is not None else None
        if flow_run_id is None:
            run.tracked = False
            self._count_untracked(run)
            return
        running_acked = self._running_acked.pop(run.id, None)
        try:
            self._events.extend(task_run_events(run, flow_run_id))
            self._logs.extend(log_records(run, flow_run_id))
            self._queued.set()
            tags_written, final_written = self._written.pop(run.id, (run.tags, False))
            calls: list[Coroutine[Any, Any, Any]] = []
            if not final_written:
                calls.append(
                    finish_flow_run(self._call, run, flow_run_id, tags_written, running_acked)
                )
            elif tags_written != run.tags:
                calls.append(
                    self._call("PATCH", f"/flow_runs/{flow_run_id}", json={"tags": list(run.tags)})
                )
            if self.render_artifact is not None:
                calls.append(
                    self._call(
                        "POST",
                        "/artifacts/",
                        json={
                            "type": "markdown",
                            "description": "Request summary",
                            "data": self.render_artifact(run),
                            "flow_run_id": flow_run_id,
                        },
                    )
                )
            await asyncio.gather(*calls)
            run.tracked = True
            self.stats.tracked += 1
            if run.ended is not None:
                self.stats.record_lags.append(max(0.0, time.time() - run.ended))
        except Exception as exc:
            if not isinstance(exc, PrefectDown):
                log.warning("could not finish flow run", flow_run=flow_run_id, error=str(exc))
            run.tracked = False
            self._count_untracked(run)

    async def _event_pump(self) -> None:
        """Events and log lines go 250 ms after the first of a batch: what the runs ending
        meanwhile add joins it."""
        while True:
            await self._queued.wait()
            await asyncio.sleep(0.25)
            self._queued.clear()
            await self._send_batches()
            if self._events or self._logs:  # more than one call's worth
                self._queued.set()

    async def _send_batches(self) -> None:
        """Task-run events and log lines of every run that ended since the last batch."""
        if self._api is not None:
            await asyncio.gather(self._events.send(self._call), self._logs.send(self._call))

    async def _session_pump(self) -> None:
        """Each session's keyed artifact, rewritten at most every `session_every` seconds."""
        while True:
            await self._session_news.wait()
            await asyncio.sleep(self.session_every)
            if self._sessions.dirty and self.stats.prefect_up and not self._sessions.writing:
                self._spawn(self._sessions.flush(self._call, self.stats))
            if not self._sessions.dirty:  # all written (or being written): sleep till news
                self._session_news.clear()
