"""Task/Agent, WebSearch and WebFetch: the tools whose work is a request of Claude Code's own.

Run on the tracked `oas`: the sub-agent's requests, the search and the page summary are
flow runs carrying the parent session's tag, told apart by their `kind:` tag.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.tasks.request_kind import request_kind
from tests.claude_code import expect
from tests.claude_code.session import run_scenario
from tests.claude_code.side_tools import side_tools
from tests.support.prefect_api import PrefectReader
from tests.support.recording import RecordedOas
from tests.support.web_site import WebSite

pytestmark = [pytest.mark.e2e, pytest.mark.claude_code]

SUBAGENT_MODEL = "openai/gpt-4o-mini"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "site.pem", directory / "site.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[WebSite, Path]]:
    """The loopback website over https (Claude Code upgrades http:// URLs to https://)."""
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    website = WebSite()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    website.server.socket = context.wrap_socket(website.server.socket, server_side=True)
    yield website.start(), cert
    website.stop()


@pytest.fixture(scope="module")
def tracked_front(tracked_oas) -> Iterator[RecordedOas]:
    front = RecordedOas(tracked_oas.settings, tracked_oas.runtime)
    yield front
    front.stop()


def test_subagent_web_search_and_web_fetch_through_oas(
    claude_code, tracked_front, upstream, workspace, site, prefect_api, tool_matrix
):
    home, work = workspace
    website, cert = site
    # WebFetch first asks claude.ai whether a domain is safe; offline that fails, so the
    # documented setting skips it (as enterprise networks do).
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text(json.dumps({"skipWebFetchPreflight": True}))
    task_tool = "Agent" if claude_code.major_minor >= (2, 1) else "Task"
    held = {}

    def factory(path):
        scenario, held["seen"] = side_tools(
            path,
            task_tool=task_tool,
            deferred=claude_code.major_minor >= (2, 1),
            page_url=f"https://127.0.0.1:{website.port}/article",
            page_word="Running every request as a flow",
        )
        return scenario

    session = run_scenario(
        factory,
        claude_code=claude_code,
        front=tracked_front,
        upstream=upstream,
        home=home,
        work=work,
        env={"CLAUDE_CODE_SUBAGENT_MODEL": SUBAGENT_MODEL, "NODE_EXTRA_CA_CERTS": str(cert)},
        timeout=150,
    )
    seen = held["seen"]
    for tool, status in seen.results.items():
        tool_matrix.record(claude_code.version, tool, status)
    expect.clean_session(session)
    assert "/article" in website.paths  # Claude Code fetched the page itself

    # The sub-agent's requests reached the upstream on the model Claude Code named for it.
    assert seen.subagent and {b["model"] for b in seen.subagent} == {SUBAGENT_MODEL}
    assert seen.web_search and seen.web_fetch
    # The page summary: 1.0 and 2.0 ask for haiku (oas answers with OAS_SMALL_MODEL); 2.1
    # asks for the session's own model (OAS_BIG_MODEL here).
    fetch_asked = {
        e.json()["model"]
        for e in session.exchanges
        if e.path == "/v1/messages" and request_kind(e.json()) == "web-fetch"
    }
    settings = tracked_front.runtime.settings
    if claude_code.major_minor < (2, 1):
        assert fetch_asked and all("haiku" in m for m in fetch_asked), fetch_asked
        assert {b["model"] for b in seen.web_fetch} == {settings.small_model}
    else:
        assert fetch_asked == {session.transcript.init["model"]}, fetch_asked
        assert {b["model"] for b in seen.web_fetch} == {settings.big_model}

    reader = PrefectReader(prefect_api)
    session_id = session.transcript.session_id
    kinds = {}
    for exchange in session.exchanges:
        if exchange.path != "/v1/messages":
            continue
        run = reader.flow_run_for_request(
            exchange.response_headers["request-id"], state="COMPLETED"
        )
        tags = run["tags"]
        assert f"session:{session_id}" in tags, tags
        kind = next(t for t in tags if t.startswith("kind:"))
        kinds.setdefault(kind, []).append(exchange.json()["model"])
    assert {"kind:main", "kind:subagent", "kind:web-search", "kind:web-fetch"} <= set(kinds), kinds
