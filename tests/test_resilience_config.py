"""Fallback lists from the environment and from the OAS_CONFIG file, and the file's errors."""

from __future__ import annotations

import pytest

from src.core.config_file import ConfigError, load_config_file
from src.core.settings import Settings
from src.tasks.routing import map_model


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_no_file_is_an_empty_config():
    assert load_config_file(None).fallbacks == {}


def test_fallbacks_section(tmp_path):
    path = tmp_path / "oas.yaml"
    path.write_text(
        "fallbacks:\n  big: [openai/gpt-4o, google/gemini-2.5-pro]\n  small: openai/gpt-4o-mini\n"
    )
    config = load_config_file(path)
    assert config.fallbacks == {
        "big": ["openai/gpt-4o", "google/gemini-2.5-pro"],
        "small": ["openai/gpt-4o-mini"],
    }


def test_empty_file_is_fine(tmp_path):
    path = tmp_path / "oas.yaml"
    path.write_text("# nothing yet\n")
    assert load_config_file(path).fallbacks == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fallback:\n  big: [x/y]\n", "fallback: unknown section"),
        ("fallbacks:\n  big: 3\n", "fallbacks.big"),
        ("- just\n- a list\n", "must be a mapping"),
        ("fallbacks: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_broken_file_stops_the_start_naming_the_problem(tmp_path, text, says):
    path = tmp_path / "oas.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        settings(OAS_CONFIG=str(path))
    assert str(path) in str(caught.value) and says in str(caught.value)


def test_a_missing_file_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        settings(OAS_CONFIG=str(tmp_path / "absent.yaml"))


def test_environment_lists_per_alias():
    s = settings(
        OAS_BIG_FALLBACKS="openai/gpt-4o, google/gemini-2.5-pro",
        OAS_SMALL_FALLBACKS="openai/gpt-4o-mini",
    )
    assert map_model("claude-sonnet-4-5", s).models == (
        "anthropic/claude-sonnet-4",
        "openai/gpt-4o",
        "google/gemini-2.5-pro",
    )
    assert map_model("claude-3-5-haiku-latest", s).fallbacks == ("openai/gpt-4o-mini",)
    assert map_model("openai/gpt-4o", s).fallbacks == ()


def test_environment_wins_over_the_file_and_the_file_covers_any_model(tmp_path):
    path = tmp_path / "oas.yaml"
    path.write_text(
        "fallbacks:\n  big: [from/file]\n  small: [small/from-file]\n"
        "  moonshotai/kimi-k2: [z-ai/glm-4.6]\n  my-model: [other/model]\n"
    )
    s = settings(OAS_CONFIG=str(path), OAS_BIG_FALLBACKS="from/env")
    assert map_model("big", s).fallbacks == ("from/env",)
    assert map_model("small", s).fallbacks == ("small/from-file",)
    assert map_model("moonshotai/kimi-k2", s).fallbacks == ("z-ai/glm-4.6",)
    assert map_model("my-model", s).fallbacks == ("other/model",)


def test_the_primary_is_never_its_own_fallback():
    s = settings(OAS_BIG_MODEL="openai/gpt-4o", OAS_BIG_FALLBACKS="openai/gpt-4o,x/y,x/y")
    assert map_model("big", s).models == ("openai/gpt-4o", "x/y")
