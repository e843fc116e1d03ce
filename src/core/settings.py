"""Settings from the environment and `.env`, with the names DESIGN.md fixes.

One `Settings` object is built at start and passed down; nothing reads `os.environ` on
the request path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from src.core.config_file import ConfigFile, load_config_file


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Everything `oas` can be told, by environment variable or `.env` line."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", validation_alias=_env("OAS_HOST"))
    port: int = Field(8082, validation_alias=_env("OAS_PORT"))

    openrouter_api_key: SecretStr | None = Field(
        None, validation_alias=_env("OPENROUTER_API_KEY")
    )
    openrouter_base_url: str = Field(
        "https://openrouter.ai/api/v1", validation_alias=_env("OPENROUTER_BASE_URL")
    )
    upstream: Literal["httpx", "litellm"] = Field(
        "httpx",
        validation_alias=_env("OAS_UPSTREAM"),
        description="httpx: OpenAI-compatible chat completions (OpenRouter); "
        "litellm: any provider LiteLLM knows.",
    )
    app_url: str = Field(
        "https://github.com/oas-dev/oas", validation_alias=_env("OAS_APP_URL")
    )
    app_title: str = Field("oas", validation_alias=_env("OAS_APP_TITLE"))

    big_model: str = Field("anthropic/claude-sonnet-4", validation_alias=_env("OAS_BIG_MODEL"))
    small_model: str = Field(
        "anthropic/claude-3.7-sonnet", validation_alias=_env("OAS_SMALL_MODEL")
    )

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias=_env("OAS_API_KEYS")
    )

    prefect_api_url: str | None = Field(None, validation_alias=_env("PREFECT_API_URL"))
    tracking: bool = Field(True, validation_alias=_env("OAS_TRACKING"))
    prefect_db: Literal["postgres", "sqlite"] = Field(
        "postgres", validation_alias=_env("OAS_PREFECT_DB")
    )
    prefect_port: int = Field(4200, validation_alias=_env("OAS_PREFECT_PORT"))
    data_dir: Path = Field(
        Path.home() / ".oas", validation_alias=_env("OAS_DATA_DIR")
    )

    config_file: Path | None = Field(None, validation_alias=_env("OAS_CONFIG"))

    log_level: str = Field("INFO", validation_alias=_env("OAS_LOG_LEVEL"))
    log_format: Literal["console", "json"] = Field(
        "console", validation_alias=_env("OAS_LOG_FORMAT")
    )

    # Upstream timeouts (seconds). First byte: until the upstream starts answering (the
    # first chunk of a stream, the status line of a whole answer). Idle: the longest
    # silence between two reads of an answer already under way.
    connect_timeout: float = Field(10.0, gt=0, validation_alias=_env("OAS_CONNECT_TIMEOUT"))
    first_byte_timeout: float = Field(
        300.0, gt=0, validation_alias=_env("OAS_FIRST_BYTE_TIMEOUT")
    )
    read_timeout: float = Field(
        120.0, gt=0, validation_alias=_env("OAS_IDLE_TIMEOUT", "OAS_READ_TIMEOUT")
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, validation_alias=_env("OAS_MAX_BODY_BYTES"))

    # Retries of failures that did nothing upstream (connect errors, 429, 502/503/529,
    # no first byte in time), per model, within a budget of seconds for the whole request.
    retries: int = Field(2, ge=0, le=10, validation_alias=_env("OAS_RETRIES"))
    retry_budget: float = Field(30.0, ge=0, validation_alias=_env("OAS_RETRY_BUDGET"))
    retry_base_delay: float = Field(0.5, ge=0, validation_alias=_env("OAS_RETRY_BASE_DELAY"))
    retry_max_delay: float = Field(8.0, ge=0, validation_alias=_env("OAS_RETRY_MAX_DELAY"))

    # Fallback models per alias, tried in order when the primary fails in those ways.
    # More (per any model id) in the `fallbacks:` section of the OAS_CONFIG file.
    big_fallbacks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("OAS_BIG_FALLBACKS")
    )
    small_fallbacks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("OAS_SMALL_FALLBACKS")
    )

    # At most this many upstream requests at once (0: no limit); up to `max_queue` more
    # wait at most `queue_timeout` seconds for a slot; beyond that clients get 529.
    max_concurrency: int = Field(128, ge=0, validation_alias=_env("OAS_MAX_CONCURRENCY"))
    max_queue: int = Field(256, ge=0, validation_alias=_env("OAS_MAX_QUEUE"))
    queue_timeout: float = Field(30.0, ge=0, validation_alias=_env("OAS_QUEUE_TIMEOUT"))

    # On SIGTERM: stop accepting, give running requests this long, then cut them.
    shutdown_timeout: float = Field(30.0, ge=0, validation_alias=_env("OAS_SHUTDOWN_TIMEOUT"))

    _config: ConfigFile = PrivateAttr(default_factory=ConfigFile)

    def model_post_init(self, context: object) -> None:
        # The YAML file is read once, with the settings; a broken one stops the start.
        self._config = load_config_file(self.config_file)

    @property
    def config(self) -> ConfigFile:
        """What the OAS_CONFIG file says (empty when there is none)."""
        return self._config

    def fallbacks_for(self, *names: str | None) -> tuple[str, ...]:
        """Fallback models for the first of `names` (alias, upstream id, client name) that
        has any: `OAS_BIG_FALLBACKS`/`OAS_SMALL_FALLBACKS` first, then the config file."""
        from_env = {"big": self.big_fallbacks, "small": self.small_fallbacks}
        for name in names:
            if not name:
                continue
            found = from_env.get(name) or self._config.fallbacks.get(name)
            if found:
                return tuple(found)
        return ()

    @field_validator("api_keys", "big_fallbacks", "small_fallbacks", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("openrouter_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def upstream_key(self) -> str:
        """The upstream key as a plain string, for the one header that needs it."""
        return self.openrouter_api_key.get_secret_value() if self.openrouter_api_key else ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
