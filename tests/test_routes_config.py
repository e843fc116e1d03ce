"""The `models`, `routes` and `clients` sections: what a mistake in them says, and
`oas routes explain`, which shows a decision without sending the request."""

from __future__ import annotations

import hashlib
import json

import pytest

from src.cli import main as oas_main
from src.core.config_file import ConfigError, load_config_file

GOOD = """
models:
  "claude-haiku-*": google/gemini-2.5-flash
routes:
  - name: thinking
    when: {{thinking: true, model: "claude-*"}}
    model: deepseek/deepseek-r1
    fallbacks: openai/o3
  - name: long
    when: {{input_tokens_over: 100}}
    model: google/gemini-2.5-pro
  - name: ci
    when: {{client: [ci, nightly]}}
    model: small
clients:
  - {{name: ci, key: ci-key-123456, budget_usd: 2.5}}
  - {{name: nightly, key_sha256: {}}}
""".format(hashlib.sha256(b"nightly-key").hexdigest())


def _load(tmp_path, text):
    path = tmp_path / "oas.yaml"
    path.write_text(text)
    return load_config_file(path)


def test_a_good_file_loads_with_its_tables(tmp_path):
    config = _load(tmp_path, GOOD)
    assert [r.name for r in config.routes] == ["thinking", "long", "ci"]
    assert config.model_table.lookup("claude-haiku-4-5") == (
        "claude-haiku-*",
        "google/gemini-2.5-flash",
    )
    assert config.routes[0].fallbacks == ["openai/o3"]
    assert config.client_table.by_name["ci"].budget_usd == 2.5
    # Only digests are kept for identification; plain keys are listed for log masking.
    assert "ci-key-123456" not in repr(config.client_table.clients)
    assert config.client_key_values() == ["ci-key-123456"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("modles: {}\n", "modles: unknown section"),
        (
            "routes:\n  - {name: r, when: {thinkin: true}, model: x/y}\n",
            "routes.0.when.thinkin: unknown condition",
        ),
        (
            "routes:\n  - {name: r, when: {model: 'claude-[opus'}, model: x/y}\n",
            "routes.0.when.model: bad glob",
        ),
        ("models: {'claude-[x': a/b}\n", "models: bad glob"),
        ("routes:\n  - {name: r, when: {thinking: true}}\n", "routes.0.model: required"),
        ("routes:\n  - {name: r, model: a/b, colour: red}\n", "routes.0.colour: unknown key"),
        (
            "routes:\n  - {name: r, model: a/b}\n  - {name: r, model: c/d}\n",
            "routes.1.name: 'r' is also routes.0",
        ),
        (
            "routes:\n  - {name: r, when: {input_tokens_over: many}, model: a/b}\n",
            "routes.0.when.input_tokens_over",
        ),
        (
            "clients:\n  - {name: a, key: k1}\n  - {name: a, key: k2}\n",
            "clients.1.name: 'a' is also clients.0",
        ),
        (
            "clients:\n  - {name: a, key: same}\n  - {name: b, key: same}\n",
            "clients.1: the same key as clients.0",
        ),
        ("clients:\n  - {name: a, key: k, budget_usd: 0}\n", "clients.0.budget_usd"),
        ("clients:\n  - {name: a, key: k, budget_usd: -5}\n", "clients.0.budget_usd"),
        ("clients:\n  - {name: a}\n", "give exactly one of key, key_sha256, key_env"),
        (
            "clients:\n  - {name: a, key_env: OAS_TEST_UNSET_VARIABLE}\n",
            "OAS_TEST_UNSET_VARIABLE is not set",
        ),
    ],
)
def test_a_mistake_names_the_file_and_the_key(tmp_path, text, says):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert str(tmp_path / "oas.yaml") in str(caught.value)
    assert says in str(caught.value)


def test_a_plain_key_never_shows_in_the_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "clients:\n  - {name: a, key: secret-value-1, budget_usd: 0}\n")
    assert "secret-value-1" not in str(caught.value)


@pytest.fixture
def explain(tmp_path, monkeypatch, capsys):
    config = tmp_path / "oas.yaml"
    config.write_text(GOOD)
    monkeypatch.setenv("OAS_CONFIG", str(config))
    monkeypatch.setenv("OAS_DATA_DIR", str(tmp_path / "data"))
    from src.core.settings import get_settings

    get_settings.cache_clear()

    def run(body, *args):
        request = tmp_path / "request.json"
        request.write_text(json.dumps(body))
        code = oas_main(["routes", "explain", str(request), "--json", *args])
        assert code == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    yield run
    get_settings.cache_clear()


def test_routes_explain_prints_the_decision(explain):
    thinking = explain(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 10,
            "thinking": {"type": "enabled", "budget_tokens": 5},
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    assert thinking == {
        "tag": "route:thinking",
        "route": "thinking",
        "matched": "model: claude-*, thinking: true",
        "client_model": "claude-sonnet-4-5",
        "upstream_model": "deepseek/deepseek-r1",
        "fallbacks": ["openai/o3"],
        "provider": None,
        "input_tokens": None,
    }
    short = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    decided = explain(short)
    assert (decided["tag"], decided["upstream_model"]) == (
        "route:models",
        "google/gemini-2.5-flash",
    )
    assert 0 < decided["input_tokens"] <= 100  # counted: the `long` rule asked
    by_client = explain(short, "--client", "nightly")
    assert (by_client["tag"], by_client["matched"]) == ("route:ci", "client: [ci, nightly]")
    assert by_client["upstream_model"] == "anthropic/claude-3.7-sonnet"  # `small`
    long = {**short, "messages": [{"role": "user", "content": "word " * 300}]}
    assert explain(long)["tag"] == "route:long"
