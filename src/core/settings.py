"""Settings from the environment and `.env`, with the names DESIGN.md fixes.

One `Settings` object is built at start and passed down; nothing reads `os.environ` on
the request path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    serve_deployments: bool = Field(
        True, validation_alias=_env("OAS_SERVE_DEPLOYMENTS"),
        description="serve the replay deployment so runs can be started from the Prefect UI",
    )
    prefect_port: int = Field(4200, validation_alias=_env("OAS_PREFECT_PORT"))
    data_dir: Path = Field(
        Path.home() / ".oas", validation_alias=_env("OAS_DATA_DIR")
    )

    payload_dir: Path | None = Field(
        None, validation_alias=_env("OAS_PAYLOAD_DIR"),
        description="where request payloads are kept for replay (default: DATA_DIR/payloads)",
    )
    payload_retention_days: float = Field(30.0, validation_alias=_env("OAS_PAYLOAD_RETENTION_DAYS"))

    config_file: Path | None = Field(None, validation_alias=_env("OAS_CONFIG"))

    log_level: str = Field("INFO", validation_alias=_env("OAS_LOG_LEVEL"))
    log_format: Literal["console", "json"] = Field(
        "console", validation_alias=_env("OAS_LOG_FORMAT")
    )

    connect_timeout: float = Field(10.0, validation_alias=_env("OAS_CONNECT_TIMEOUT"))
    read_timeout: float = Field(600.0, validation_alias=_env("OAS_READ_TIMEOUT"))
    max_body_bytes: int = Field(32 * 1024 * 1024, validation_alias=_env("OAS_MAX_BODY_BYTES"))

    # Code execution server tool (off by default: it runs the model's commands on this host).
    code_execution: bool = Field(
        False, validation_alias=_env("OAS_CODE_EXECUTION"),
        description="run Anthropic's code execution tool in a local sandbox",
    )
    code_execution_dir: Path | None = Field(
        None, validation_alias=_env("OAS_CODE_EXECUTION_DIR"),
        description="where workspaces (containers) live (default: DATA_DIR/workspaces)",
    )
    code_execution_isolation: Literal["auto", "bubblewrap", "namespaces", "rlimits"] = Field(
        "auto", validation_alias=_env("OAS_CODE_EXECUTION_ISOLATION"),
        description="auto picks the strongest that works on this host",
    )
    code_execution_network: bool = Field(
        False, validation_alias=_env("OAS_CODE_EXECUTION_NETWORK")
    )
    code_execution_timeout: float = Field(
        60.0, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_TIMEOUT")
    )
    code_execution_max_output_bytes: int = Field(
        100_000, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_MAX_OUTPUT_BYTES")
    )
    code_execution_memory_mb: int = Field(
        2048, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_MEMORY_MB")
    )
    code_execution_max_processes: int = Field(
        64, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_MAX_PROCESSES")
    )
    code_execution_max_file_mb: int = Field(
        100, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_MAX_FILE_MB")
    )
    code_execution_workspace_mb: int = Field(
        1024, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_WORKSPACE_MB")
    )
    code_execution_ttl: float = Field(
        3600.0, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_TTL"),
        description="seconds a workspace lives after its last use",
    )
    code_execution_max_concurrent: int = Field(
        4, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_MAX_CONCURRENT")
    )
    code_execution_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("OAS_CODE_EXECUTION_ALLOW"),
        description="when set, the only programs a command may run",
    )
    code_execution_deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("OAS_CODE_EXECUTION_DENY"),
        description="programs (or re:PATTERN) a command may not run",
    )
    code_execution_readonly_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                 "/libx32", "/etc"],
        validation_alias=_env("OAS_CODE_EXECUTION_READONLY_PATHS"),
        description="host paths the sandbox sees, read-only (bubblewrap and namespaces)",
    )
    code_execution_uid: int = Field(
        65534, validation_alias=_env("OAS_CODE_EXECUTION_UID"),
        description="uid (and gid) commands run as when oas runs as root",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator(
        "code_execution_allow", "code_execution_deny", "code_execution_readonly_paths",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("openrouter_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def payload_store_dir(self) -> Path:
        return self.payload_dir or self.data_dir / "payloads"

    @property
    def workspace_dir(self) -> Path:
        return self.code_execution_dir or self.data_dir / "workspaces"

    @property
    def upstream_key(self) -> str:
        """The upstream key as a plain string, for the one header that needs it."""
        return self.openrouter_api_key.get_secret_value() if self.openrouter_api_key else ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
