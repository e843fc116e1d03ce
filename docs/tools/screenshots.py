"""Take the screenshots in docs/images/ from a real run.

    .venv/bin/python docs/tools/screenshots.py        # needs chromium (apt-get install chromium)

Starts a Prefect server (as `oas serve` does, on a free port, in a temporary directory),
`oas` recording to it, and the test suite's scripted OpenAI-compatible upstream (this
machine has no internet), sends the requests Claude Code would send (a plain answer, a
stream with a tool call, one that fails upstream), replays the failed one with
`oas replay`, then opens the Prefect dashboard in headless Chromium and saves each page.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORK = Path(tempfile.mkdtemp(prefix="oas-screenshots-"))
PREFECT_PORT = _free_port()
os.environ.update({
    "PREFECT_HOME": str(WORK / "prefect-home"),
    "PREFECT_API_URL": f"http://127.0.0.1:{PREFECT_PORT}/api",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
})

import anthropic  # noqa: E402
import httpx  # noqa: E402

from src.api.app import create_app  # noqa: E402
from src.coordinators.runtime import Runtime  # noqa: E402
from src.core.logging import configure_logging  # noqa: E402
from src.core.settings import Settings, get_settings  # noqa: E402
from src.local_prefect.prefect_server import LocalPrefectServer  # noqa: E402
from tests.support.server import ThreadedServer  # noqa: E402
from tests.support.upstream import Reply, ScriptedUpstream, ToolCall  # noqa: E402

KEY = "sk-or-v1-screenshot-not-a-real-key-000000"
SESSION = "9d0c3f8e-5b1a-4c6e-8f2d-3a7b1c9e4f60"
USAGE = {"prompt_tokens": 18250, "completion_tokens": 412, "total_tokens": 18662,
         "cost": 0.0609, "prompt_tokens_details": {"cached_tokens": 16384}}


def send_requests(url: str, upstream: ScriptedUpstream) -> dict[str, str]:
    """The requests a short Claude Code session makes; returns their request ids."""
    client = anthropic.Anthropic(base_url=url, api_key="anything", max_retries=0,
                                 default_headers={"X-Claude-Code-Session-Id": SESSION})
    ids: dict[str, str] = {}
    upstream.queue(Reply(text="The tests fail because `parse_date` ignores the time zone.",
                         usage=USAGE))
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5-20250929", max_tokens=1024,
        system="You are Claude Code.",
        messages=[{"role": "user", "content": "Why do the tests fail?"}])
    ids["sync"] = raw.headers["request-id"]

    upstream.queue(Reply(text="Let me read the file.", chunk_size=6,
                         tool_calls=[ToolCall("Read", {"file_path": "src/dates.py"})],
                         usage={**USAGE, "completion_tokens": 96, "cost": 0.0312}))
    with client.messages.stream(
            model="claude-haiku-4-5-20251001", max_tokens=1024,
            tools=[{"name": "Read", "description": "Read a file",
                    "input_schema": {"type": "object",
                                     "properties": {"file_path": {"type": "string"}}}}],
            messages=[{"role": "user", "content": "Open src/dates.py"}]) as stream:
        stream.get_final_message()
        ids["stream"] = stream.response.headers["request-id"]

    upstream.queue(Reply(status=404, error={
        "code": 404, "message": "No endpoints found for anthropic/claude-sonet-4."}))
    try:
        client.messages.create(model="anthropic/claude-sonet-4", max_tokens=1024,
                               messages=[{"role": "user", "content": "Summarise the change"}])
    except anthropic.NotFoundError as exc:
        ids["failed"] = exc.response.headers["request-id"]
    return ids


def flow_run_id(api: str, request_id: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 50}).json()
        for run in runs:
            if run["parameters"].get("request_id") == request_id and run["state_type"] != "RUNNING":
                return run["id"]
        time.sleep(0.3)
    raise RuntimeError(f"no flow run for {request_id}")


async def _cdp_screenshots(pages: list[tuple[str, str, float]], port: int) -> None:
    """Drive Chromium over the DevTools protocol: open, wait for the page to settle, save."""
    import websockets

    targets = httpx.put(f"http://127.0.0.1:{port}/json/new?about:blank").json()
    async with websockets.connect(targets["webSocketDebuggerUrl"], max_size=2**26) as ws:
        counter = 0

        async def call(method: str, **params: object) -> dict:
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == counter:
                    return message.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=1440, height=900,
                   deviceScaleFactor=1, mobile=False)
        for name, url, wait in pages:
            await call("Page.navigate", url=url)
            await asyncio.sleep(wait)
            shot = await call("Page.captureScreenshot", format="png")
            (IMAGES / name).write_bytes(base64.b64decode(shot["data"]))
            print(f"saved docs/images/{name}  ({url})")


def take_screenshots(pages: list[tuple[str, str, float]]) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    port = _free_port()
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--remote-debugging-port={port}", "--remote-allow-origins=*",
         f"--user-data-dir={WORK / 'chromium'}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/json/version", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        asyncio.run(_cdp_screenshots(pages, port))
    finally:
        browser.terminate()
        browser.wait(10)


def main() -> None:
    configure_logging("WARNING", "console")
    IMAGES.mkdir(parents=True, exist_ok=True)
    prefect = LocalPrefectServer(WORK / "data", port=PREFECT_PORT)
    upstream = ScriptedUpstream().start()
    api = prefect.start()
    runtime = None
    server = None
    try:
        settings = Settings(_env_file=None, openrouter_base_url=upstream.base_url,  # type: ignore[call-arg]
                            openrouter_api_key=KEY, data_dir=WORK / "oas", prefect_api_url=api)
        runtime = Runtime.create(settings)
        runtime.start()
        server = ThreadedServer(create_app(settings, runtime)).start()
        ids = send_requests(server.url, upstream)
        runtime.recorder.flush()
        runs = {kind: flow_run_id(api, rid) for kind, rid in ids.items()}

        # The cause is fixed (a model name with a typo): replay the failed run on the right model.
        os.environ.update({"OPENROUTER_BASE_URL": upstream.base_url, "OPENROUTER_API_KEY": KEY,
                           "OAS_PAYLOAD_DIR": str(settings.payload_store_dir)})
        get_settings.cache_clear()
        from src.cli import main as oas_main

        upstream.queue(Reply(text="The change makes `parse_date` keep the time zone.", usage=USAGE))
        assert oas_main(["replay", runs["failed"], "--model", "anthropic/claude-sonnet-4"]) == 0
        time.sleep(2)
        replays = httpx.post(f"{api}/flow_runs/filter", json={
            "flow_runs": {"tags": {"all_": ["replay"]}}}).json()
        artifact = httpx.post(f"{api}/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [runs["sync"]]}}}).json()[0]
        deployment = runtime.deployments.deployment_id if runtime.deployments else None

        ui = api.removesuffix("/api")
        pages = [
            ("dashboard-runs.png", f"{ui}/runs", 6),
            ("dashboard-flow-run.png", f"{ui}/runs/flow-run/{runs['sync']}", 6),
            ("dashboard-stream-run.png", f"{ui}/runs/flow-run/{runs['stream']}", 6),
            ("dashboard-failed-run.png", f"{ui}/runs/flow-run/{runs['failed']}", 6),
            ("dashboard-artifact.png", f"{ui}/artifacts/artifact/{artifact['id']}", 5),
            ("dashboard-replay-run.png", f"{ui}/runs/flow-run/{replays[0]['id']}", 6),
        ]
        if deployment:
            pages.append(("dashboard-replay-deployment.png",
                          f"{ui}/deployments/deployment/{deployment}", 5))
        take_screenshots(pages)
    finally:
        if server is not None:
            server.stop()
        if runtime is not None:
            asyncio.run(runtime.aclose())
        prefect.stop()
        upstream.stop()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
