"""Where an operator sees a routing decision: the flow run's tags and its summary artifact."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.prefect_api import PrefectReader

pytestmark = pytest.mark.e2e


def test_the_run_is_tagged_with_its_route_and_client(make_oas, upstream, prefect_api, tmp_path):
    config = tmp_path / "oas.yaml"
    config.write_text(
        "routes:\n  - name: small-side-calls\n"
        "    when: {model: 'claude-haiku-*', client: alice}\n"
        "    model: google/gemini-2.5-flash\n"
        "clients:\n  - {name: alice, key: alice-key-0123456789}\n"
    )
    instance = make_oas(config_file=config, tracking=True, prefect_api_url=prefect_api)
    sdk = anthropic.Anthropic(base_url=instance.url, api_key="alice-key-0123456789", max_retries=0)
    response = sdk.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    reader = PrefectReader(prefect_api)
    run = reader.flow_run_for_request(response.headers["request-id"], state="COMPLETED")
    assert {"route:small-side-calls", "client:alice", "upstream:google/gemini-2.5-flash"} <= set(
        run["tags"]
    )
    artifact = reader.artifacts(run["id"])[0]["data"]
    assert "| route | small-side-calls (model: claude-haiku-*, client: alice) |" in artifact
    assert "| client | alice |" in artifact
