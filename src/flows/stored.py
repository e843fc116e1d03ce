"""A recorded request, run again under Prefect's engine: what a replay and a retry share.

The recorder stored the request body when the request began. Both load it back
(`load-payload`), then drive the `messages` flow's function inside the current Prefect flow
run, so its steps become ordinary Prefect task runs with their logs; the answer is
collected (and echoed for the terminal), and an error inside a stream becomes the failure.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prefect import get_client, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.exceptions import ObjectNotFound

from src.core.errors import AnthropicError
from src.core.settings import get_settings
from src.flows.messages import messages_flow
from src.services import Services
from src.tracking import Run, current_run, step
from src.tracking.artifact import render_summary
from src.tracking.payloads import PayloadStore

#: flows whose runs carry a stored Messages request (a `replay` run points at one)
REPLAYABLE_FLOWS = ("messages",)


@dataclass(frozen=True)
class Original:
    """The recorded flow run a replay starts from."""

    id: str
    name: str
    request_id: str
    tags: list[str]


@dataclass
class Outcome:
    """What running a stored request again gave: the message, or the error."""

    run: Run
    message: dict[str, Any] | None = None
    error: AnthropicError | None = None
    texts: list[str] = field(default_factory=list)


async def read_original(flow_run_id: str) -> Original:
    """The recorded `messages` run behind `flow_run_id` (a replay's id leads to the run it
    replayed); `AnthropicError` with a one-line reason otherwise."""
    async with get_client() as client:
        for _ in range(5):  # a replay of a replay of ...: follow to the recorded request
            try:
                run = await client.read_flow_run(uuid.UUID(str(flow_run_id)))
            except (ObjectNotFound, ValueError):
                raise AnthropicError("not_found_error", f"no flow run {flow_run_id}") from None
            flow_name = (await client.read_flow(run.flow_id)).name
            parameters = run.parameters or {}
            if flow_name == "replay" and parameters.get("flow_run_id"):
                flow_run_id = str(parameters["flow_run_id"])
                continue
            if flow_name not in REPLAYABLE_FLOWS or not parameters.get("request_id"):
                raise AnthropicError(
                    "invalid_request_error",
                    f"flow run {flow_run_id} is a {flow_name} run: only messages runs (and "
                    "replays of them) can be replayed",
                )
            return Original(str(run.id), run.name, str(parameters["request_id"]), list(run.tags))
    raise AnthropicError("invalid_request_error", f"flow run {flow_run_id}: too many replays deep")


@step("load-payload")
async def load_payload(request_id: str, store_dir: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Task: the stored request (and its context) of one recorded request."""
    try:
        return PayloadStore(Path(store_dir)).load(request_id)
    except FileNotFoundError:
        raise AnthropicError(
            "not_found_error",
            f"the payload of request {request_id} is no longer stored (pruned, or recorded "
            "on another machine), so it cannot run again",
        ) from None


@dataclass(frozen=True)
class Origin:
    """Whose request a stored one is: its client and Claude Code session. What running it
    again costs goes to the ledger under them, as the request's first answer would have."""

    client: str | None = None
    session: str | None = None

    @classmethod
    def of(cls, tags: list[str], context: dict[str, Any]) -> Origin:
        """From the recorded run's tags (`client:`, `session:`) and the stored context."""
        client = next((t[7:] for t in tags if t.startswith("client:")), None)
        session = context.get("session_id") or next(
            (t[8:] for t in tags if t.startswith("session:")), None
        )
        return cls(client or None, session if isinstance(session, str) and session else None)


async def run_stored(
    request: dict[str, Any], outcome: Outcome, origin: Origin, *, echo: bool = False
) -> None:
    """Run the `messages` flow's function on `request` inside this Prefect flow run; what
    it cost goes to the spend ledger (`oas usage`) under `origin`."""
    settings = get_settings()
    services = Services.create(settings)
    if services.spend is not None:
        services.spend.start()
    token = current_run.set(outcome.run)
    started = time.time()
    try:
        async for item in messages_flow.fn(request, services):
            if isinstance(item, dict):
                outcome.message = item
                if echo:
                    for block in item.get("content", []):
                        if block.get("type") == "text":
                            print(block["text"], flush=True)
                continue
            text, error = _text_of_sse(item)
            if error is not None:
                outcome.error = AnthropicError(error[0], error[1])
            if echo and text:
                sys.stdout.write(text)
                sys.stdout.flush()
        if echo and request.get("stream"):
            print(flush=True)
    except AnthropicError as exc:
        outcome.error = exc
    finally:
        current_run.reset(token)
        if services.spend is not None:
            services.spend.record_answer(
                outcome.run.summary,
                client=origin.client,
                model=str(outcome.run.upstream_model or request.get("model")),
                session=origin.session,
                request_id=str(outcome.run.parameters.get("request_id")),
            )
        await services.aclose()  # writes the ledger's row
    if outcome.run.first_token_at is not None:
        outcome.run.summary["ttft_ms"] = (outcome.run.first_token_at - started) * 1000
    if outcome.error is not None:
        outcome.run.add_tags(f"error:{outcome.error.error_type}")
    outcome.run.finish(
        "FAILED" if outcome.error else "COMPLETED",
        f"{outcome.error.error_type}: {outcome.error.message}" if outcome.error else None,
    )
    _log_outcome(outcome)


def _log_outcome(outcome: Outcome) -> None:
    """One line in the run's Logs tab: who answered and how, or why it failed."""
    logger = get_run_logger()
    summary = outcome.run.summary
    if outcome.error is not None:
        logger.error("failed again: %s: %s", outcome.error.error_type, outcome.error.message)
        return
    usage = (outcome.message or {}).get("usage") or summary.get("usage") or {}
    logger.info(
        "answered by %s: %s input / %s output tokens, stop reason %s",
        outcome.run.upstream_model or "-",
        usage.get("input_tokens", "-"),
        usage.get("output_tokens", "-"),
        (outcome.message or {}).get("stop_reason") or summary.get("stop_reason") or "-",
    )


def _text_of_sse(event: bytes) -> tuple[str, tuple[str, str] | None]:
    """The text and thinking deltas inside a chunk of our own SSE bytes, and its error."""
    out, error = [], None
    for frame in event.split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"data: "):
                data = orjson.loads(line[6:])
                delta = data.get("delta") or {}
                out.append(delta.get("text") or delta.get("thinking") or "")
                if data.get("type") == "error":
                    error = (data["error"].get("type") or "api_error", data["error"]["message"])
                    out.append(f"\n[error] {error[1]}\n")
    return "".join(out), error


async def retag(flow_run_id: str, keep: list[str], add: list[str], name: str | None = None) -> None:
    """Set a flow run's tags (and name): `keep` less what describes the earlier outcome."""
    outcome_tags = ("error:", "upstream:")
    tags = [t for t in keep if not t.startswith(outcome_tags)]
    tags += [t for t in add if t not in tags]
    async with get_client() as client:
        if name:
            await client.update_flow_run(uuid.UUID(flow_run_id), tags=tags, name=name)
        else:
            await client.update_flow_run(uuid.UUID(flow_run_id), tags=tags)


async def attach_summary(outcome: Outcome, description: str) -> None:
    """The summary table of this run, as the recorder attaches to recorded runs."""
    await acreate_markdown_artifact(render_summary(outcome.run), description=description)
