"""schemathesis against the app's own OpenAPI document: requests that fit the schema and
requests that break it, for every operation under `/v1/messages` (that is
`POST /v1/messages` and, where the app serves it, `POST /v1/messages/count_tokens`).
No 5xx, no hang, every error Anthropic-shaped. Bounded in examples and time."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.support.upstream import Reply

pytestmark = pytest.mark.e2e

EXAMPLES = 60
TIMEOUT = 10


@pytest.fixture(scope="module")
def operations(oas, upstream_server):
    """The schema's operations under /v1/messages, loaded from the running server."""
    upstream_server.reset()
    upstream_server.default = lambda body: Reply(text="schema-fuzzed", chunk_size=3)
    schema = schemathesis.openapi.from_url(f"{oas.url}/openapi.json")
    found = [
        result.ok() for result in schema.include(path_regex=r"^/v1/messages").get_all_operations()
    ]
    yield {f"{op.method.upper()} {op.path}": op for op in found}
    upstream_server.reset()


def test_the_schema_documents_the_messages_endpoints(oas, operations):
    import httpx

    assert "POST /v1/messages" in operations
    document = httpx.get(f"{oas.url}/openapi.json").json()
    body = document["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["required"]) >= {"model", "messages", "max_tokens"}
    assert "$defs" not in str(document["paths"])  # every $ref resolves into components
    for ref in _refs(document):
        assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"], ref


def _refs(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def assert_not_a_failure(case, response) -> None:
    assert response.status_code < 500, (case.body, response.text)
    request_id = response.headers["request-id"][0]  # (schemathesis: header -> list of values)
    assert request_id.startswith("req_")
    if response.status_code >= 400:
        body = response.json()
        assert body["type"] == "error", body
        assert body["error"]["type"] in {
            "invalid_request_error",
            "request_too_large",
            "not_found_error",
        }, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert body["request_id"] == request_id
        assert "Traceback" not in response.text


# (schemathesis' own pytest integration does not run on pytest 9 yet: its strategies are
# driven by plain Hypothesis here.)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", ["POST /v1/messages", "POST /v1/messages/count_tokens"])
def test_no_input_makes_the_server_fail(operations, operation, mode):
    if operation not in operations:
        pytest.skip(f"{operation} is not served by this build")

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operations[operation].as_strategy(mode))
    def check(case) -> None:
        assert_not_a_failure(case, case.call(timeout=TIMEOUT))

    check()
