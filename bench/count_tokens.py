"""How long `POST /v1/messages/count_tokens` takes for a Claude Code-sized request.

    .venv/bin/python bench/count_tokens.py [--turns 100] [--repeat 50]

Starts `oas` (untracked) on loopback against the scripted upstream, then counts one
request of Claude Code's shape (a long system prompt, 20 tools with JSON schemas, a long
tool loop) cold, warm (the same request again) and as the next turn (two more messages),
over HTTP with one kept-alive connection. Prints milliseconds per phase.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench.bodies import claude_code_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    import httpx
    import orjson

    from src.api.app import create_app
    from src.coordinators.runtime import Runtime
    from src.core.settings import Settings
    from tests.support.server import ThreadedServer
    from tests.support.upstream import ScriptedUpstream

    upstream = ScriptedUpstream().start()
    settings = Settings(
        _env_file=None,
        openrouter_base_url=upstream.base_url,
        tracking=False,
        data_dir=Path(tempfile.mkdtemp()),
    )  # type: ignore[call-arg]
    runtime = Runtime.create(settings)
    runtime.start()
    server = ThreadedServer(create_app(settings, runtime)).start()
    body = claude_code_request(args.turns)
    raw = orjson.dumps(body)
    print(
        f"request: {len(raw) / 1024:.0f} KB, {len(body['messages'])} messages, "
        f"{len(body['tools'])} tools"
    )

    with httpx.Client(base_url=server.url, timeout=60) as http:

        def count(payload: bytes) -> tuple[float, int]:
            started = time.perf_counter()
            response = http.post(
                "/v1/messages/count_tokens",
                content=payload,
                headers={"content-type": "application/json"},
            )
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            return elapsed, response.json()["input_tokens"]

        first, tokens = count(raw)
        print(
            f"first count (imports LiteLLM, loads the tokenizer): {first:8.1f} ms  {tokens} tokens"
        )
        warm = [count(raw)[0] for _ in range(args.repeat)]
        print(
            f"same request again: median {statistics.median(warm):6.2f} ms, max {max(warm):6.2f} ms"
        )
        turns = []
        for i in range(args.repeat):
            body["messages"] += [
                {"role": "assistant", "content": f"step {i} done"},
                {"role": "user", "content": f"now do step {i + 1}"},
            ]
            turns.append(count(orjson.dumps(body))[0])
        print(
            f"next turn (2 new messages): median {statistics.median(turns):6.2f} ms, "
            f"max {max(turns):6.2f} ms"
        )
        other = claude_code_request(args.turns, seed=1)
        cold, _ = count(orjson.dumps(other))
        print(f"a different request of the same size (nothing cached): {cold:6.1f} ms")
    server.stop()
    upstream.stop()


if __name__ == "__main__":
    main()
