"""Settings from the environment and `.env`, with the names DESIGN.md fixes.

One `Settings` object is built at start and passed down; nothing reads `os.environ` on
the request path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
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

    openrouter_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENROUTER_API_KEY"))
    openrouter_base_url: str = Field(
        "https://openrouter.ai/api/v1", validation_alias=_env("OPENROUTER_BASE_URL")
    )
    upstream: Literal["http", "litellm"] = Field(
        "http",
        validation_alias=_env("OAS_UPSTREAM"),
        description="http: oas's own client for OpenAI-compatible chat completions "
        "(OpenRouter; `httpx`, its old name, still works); litellm: any provider LiteLLM knows.",
    )
    app_url: str = Field("https://github.com/oas-dev/oas", validation_alias=_env("OAS_APP_URL"))
    app_title: str = Field("oas", validation_alias=_env("OAS_APP_TITLE"))

    big_model: str = Field("anthropic/claude-sonnet-4", validation_alias=_env("OAS_BIG_MODEL"))
    small_model: str = Field(
        "anthropic/claude-3.7-sonnet", validation_alias=_env("OAS_SMALL_MODEL")
    )

    provider: dict[str, Any] | None = Field(
        None,
        validation_alias=_env("OAS_PROVIDER"),
        description="OpenRouter provider routing preferences (a JSON object, sent as `provider`), "
        'e.g. {"order": ["anthropic"], "allow_fallbacks": true}.',
    )
    cache_control: Literal["auto", "always", "never"] = Field(
        "auto",
        validation_alias=_env("OAS_CACHE_CONTROL"),
        description="Send the client's `cache_control` breakpoints upstream: auto (to models "
        "that honour them: Anthropic, Gemini, Qwen), always, or never.",
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
        True,
        validation_alias=_env("OAS_SERVE_DEPLOYMENTS"),
        description="serve the messages and replay deployments: Retry and Run in the Prefect UI",
    )
    prefect_port: int = Field(4200, validation_alias=_env("OAS_PREFECT_PORT"))
    tracking_grace: float = Field(
        0.0,
        ge=0,
        validation_alias=_env("OAS_TRACKING_GRACE"),
        description="0: every run is created Running as its request starts, so Prefect "
        "shows its real start time and duration; above 0, a request that ends within this "
        "many seconds becomes its flow run in one write less, already finished, with no "
        "start time or duration in Prefect (the artifact and the task runs have them)",
    )
    tracking_writers: int = Field(
        4,
        ge=1,
        validation_alias=_env("OAS_TRACKING_WRITERS"),
        description="Prefect API writes at once (drops to one by itself while Prefect "
        "answers 'busy', as it does on SQLite)",
    )
    data_dir: Path = Field(Path.home() / ".oas", validation_alias=_env("OAS_DATA_DIR"))

    payload_dir: Path | None = Field(
        None,
        validation_alias=_env("OAS_PAYLOAD_DIR"),
        description="where request payloads are kept for replay (default: DATA_DIR/payloads)",
    )
    payload_retention_days: float = Field(30.0, validation_alias=_env("OAS_PAYLOAD_RETENTION_DAYS"))

    config_file: Path | None = Field(None, validation_alias=_env("OAS_CONFIG"))
    ledger_url: str | None = Field(
        None,
        validation_alias=_env("OAS_LEDGER_URL"),
        description="where spend per client is kept, shared by replicas: sqlite:///PATH or "
        "postgresql://USER:PASS@HOST/DB (default: SQLite at DATA_DIR/spend.sqlite3)",
    )

    env: Literal["development", "production"] = Field(
        "development",
        validation_alias=_env("OAS_ENV"),
        description="production switches the defaults marked 'production:' "
        "(JSON logs, no payloads in logs)",
    )
    log_level: str = Field("INFO", validation_alias=_env("OAS_LOG_LEVEL"))
    log_format: Literal["console", "json"] = Field(
        "console",
        validation_alias=_env("OAS_LOG_FORMAT"),
        json_schema_extra={"production": "json"},
    )
    log_file: Path | None = Field(
        None,
        validation_alias=_env("OAS_LOG_FILE"),
        description="also write logs to this file, rotated at midnight UTC",
    )
    log_retention_days: int = Field(
        7,
        ge=1,
        validation_alias=_env("OAS_LOG_RETENTION_DAYS"),
        description="rotated log files kept beside OAS_LOG_FILE",
    )
    debug_payloads: bool = Field(
        True,
        validation_alias=_env("OAS_DEBUG_PAYLOADS"),
        description="at OAS_LOG_LEVEL=DEBUG, log request and response bodies",
        json_schema_extra={"production": False},
    )

    # Upstream timeouts (seconds). First byte: until the upstream starts answering (the
    # first chunk of a stream, the status line of a whole answer). Idle: the longest
    # silence between two reads of an answer already under way.
    connect_timeout: float = Field(10.0, gt=0, validation_alias=_env("OAS_CONNECT_TIMEOUT"))
    first_byte_timeout: float = Field(300.0, gt=0, validation_alias=_env("OAS_FIRST_BYTE_TIMEOUT"))
    read_timeout: float = Field(
        120.0, gt=0, validation_alias=_env("OAS_IDLE_TIMEOUT", "OAS_READ_TIMEOUT")
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, validation_alias=_env("OAS_MAX_BODY_BYTES"))

    # Server tools (docs/07-server-tools-and-mcp.md).
    # Web fetch: run by oas itself. Private, loopback and link-local targets are refused
    # unless a host (name, IP or CIDR) is on the allow list.
    web_fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("OAS_WEB_FETCH_ALLOW_HOSTS")
    )
    web_fetch_timeout: float = Field(20.0, gt=0, validation_alias=_env("OAS_WEB_FETCH_TIMEOUT"))
    web_fetch_max_bytes: int = Field(
        10 * 1024 * 1024, gt=0, validation_alias=_env("OAS_WEB_FETCH_MAX_BYTES")
    )
    web_fetch_max_redirects: int = Field(
        5, ge=0, le=20, validation_alias=_env("OAS_WEB_FETCH_MAX_REDIRECTS")
    )
    web_fetch_max_content_tokens: int = Field(
        100_000,
        gt=0,
        validation_alias=_env("OAS_WEB_FETCH_MAX_CONTENT_TOKENS"),
        description="cap on the text of one fetched page when the tool sets none",
    )
    # Web search: executed by OpenRouter. tool: its `openrouter:web_search` server tool (the
    # model decides when to search); plugin: the older `web` plugin (one search per request);
    # off: the tool is dropped.
    web_search: Literal["tool", "plugin", "off"] = Field(
        "tool", validation_alias=_env("OAS_WEB_SEARCH")
    )
    web_search_engine: str | None = Field(None, validation_alias=_env("OAS_WEB_SEARCH_ENGINE"))
    web_search_max_results: int | None = Field(
        None, ge=1, le=25, validation_alias=_env("OAS_WEB_SEARCH_MAX_RESULTS")
    )
    # MCP: servers named by a request's `mcp_servers` and the managed ones of the OAS_CONFIG
    # file. Request-level URLs are held to the same address rules as web fetch.
    mcp_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("OAS_MCP_ALLOW_HOSTS")
    )
    mcp_timeout: float = Field(30.0, gt=0, validation_alias=_env("OAS_MCP_TIMEOUT"))

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

    # Client connections (docs/14): a request head must arrive within `header_timeout`
    # seconds, its body within `body_timeout`; an idle keep-alive connection is closed after
    # `keep_alive_timeout`; beyond `max_connections` a new connection gets 529 and is closed.
    header_timeout: float = Field(10.0, gt=0, validation_alias=_env("OAS_HEADER_TIMEOUT"))
    body_timeout: float = Field(60.0, gt=0, validation_alias=_env("OAS_BODY_TIMEOUT"))
    keep_alive_timeout: float = Field(5.0, gt=0, validation_alias=_env("OAS_KEEP_ALIVE_TIMEOUT"))
    max_connections: int = Field(2048, ge=1, validation_alias=_env("OAS_MAX_CONNECTIONS"))

    # On SIGTERM: stop accepting, give running requests this long, then cut them.
    shutdown_timeout: float = Field(30.0, ge=0, validation_alias=_env("OAS_SHUTDOWN_TIMEOUT"))

    # Code execution server tool (off by default: it runs the model's commands on this host).
    code_execution: bool = Field(
        False,
        validation_alias=_env("OAS_CODE_EXECUTION"),
        description="run Anthropic's code execution tool in a local sandbox",
    )
    code_execution_dir: Path | None = Field(
        None,
        validation_alias=_env("OAS_CODE_EXECUTION_DIR"),
        description="where workspaces (containers) live (default: DATA_DIR/workspaces)",
    )
    code_execution_isolation: Literal["auto", "bubblewrap", "namespaces", "rlimits"] = Field(
        "auto",
        validation_alias=_env("OAS_CODE_EXECUTION_ISOLATION"),
        description="auto picks the strongest that works on this host",
    )
    code_execution_network: bool = Field(False, validation_alias=_env("OAS_CODE_EXECUTION_NETWORK"))
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
    code_execution_total_disk_mb: int = Field(
        10240,
        gt=0,
        validation_alias=_env("OAS_CODE_EXECUTION_TOTAL_DISK_MB"),
        description="disk all workspaces together may use (reserved by each workspace's file "
        "system, or checked during commands by the watchdog)",
    )
    code_execution_disk_quota: Literal["auto", "watchdog"] = Field(
        "auto",
        validation_alias=_env("OAS_CODE_EXECUTION_DISK_QUOTA"),
        description="auto: each workspace its own file system where oas may mount one "
        "(root, loop device, mkfs.ext4), else a watchdog; watchdog: always the watchdog",
    )
    code_execution_ttl: float = Field(
        3600.0,
        gt=0,
        validation_alias=_env("OAS_CODE_EXECUTION_TTL"),
        description="seconds a workspace lives after its last use",
    )
    code_execution_max_concurrent: int = Field(
        4, gt=0, validation_alias=_env("OAS_CODE_EXECUTION_MAX_CONCURRENT")
    )
    code_execution_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("OAS_CODE_EXECUTION_ALLOW"),
        description="when set, the only programs a command may run",
    )
    code_execution_deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("OAS_CODE_EXECUTION_DENY"),
        description="programs (or re:PATTERN) a command may not run",
    )
    code_execution_readonly_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/etc",
        ],
        validation_alias=_env("OAS_CODE_EXECUTION_READONLY_PATHS"),
        description="host paths the sandbox sees, read-only (bubblewrap and namespaces)",
    )
    code_execution_uid: int = Field(
        65534,
        validation_alias=_env("OAS_CODE_EXECUTION_UID"),
        description="uid (and gid) commands run as when oas runs as root",
    )

    _config: ConfigFile = PrivateAttr(default_factory=ConfigFile)

    def model_post_init(self, context: object) -> None:
        # The YAML file is read once, with the settings; a broken one stops the start.
        self._config = load_config_file(self.config_file)

    @property
    def config(self) -> ConfigFile:
        """What the OAS_CONFIG file says (empty when there is none)."""
        return self._config

    def reload_config(self) -> ConfigFile:
        """Read the OAS_CONFIG file again; the new sections replace the old in one
        assignment, so a request sees either the old file or the new one, never a mix.
        A file that does not validate raises `ConfigError` and changes nothing."""
        config = load_config_file(self.config_file)
        self._config = config
        return config

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

    @field_validator(
        "api_keys",
        "big_fallbacks",
        "small_fallbacks",
        "web_fetch_allow_hosts",
        "mcp_allow_hosts",
        "code_execution_allow",
        "code_execution_deny",
        "code_execution_readonly_paths",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("upstream", mode="before")
    @classmethod
    def _old_upstream_name(cls, value: Any) -> Any:
        return "http" if isinstance(value, str) and value.strip().lower() == "httpx" else value

    @field_validator("openrouter_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _environment_defaults(self) -> Settings:
        """OAS_ENV=production changes the defaults of the fields that say so; a value
        given explicitly (environment, `.env`, argument) always wins."""
        if self.env == "production":
            for name, info in type(self).model_fields.items():
                extra = info.json_schema_extra
                explicit = name in self.model_fields_set
                if isinstance(extra, dict) and "production" in extra and not explicit:
                    setattr(self, name, extra["production"])
                    self.model_fields_set.discard(name)  # still a default, not a choice
        return self

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
