"""What the `Settings` model says about itself, for `oas config` and the docs' reference.

One row per setting: its environment variable, its default as the docs write it, whether
it is secret, and where the running value came from. A test compares these rows with
`docs/03-configuration.md` and the README, so the documentation cannot drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo

from src.core.settings import Settings


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One setting as a user sees it."""

    field: str
    env: str
    aliases: tuple[str, ...]
    default: str
    description: str
    secret: bool


def _env_names(info: FieldInfo, field: str) -> tuple[str, ...]:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices if isinstance(choice, str))
    if isinstance(alias, str):
        return (alias,)
    return (field.upper(),)


def format_default(value: Any) -> str:
    """A default as the docs write it: `-` for none, `~` for the home directory."""
    if value is None or value == [] or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Path):
        home = Path.home()
        if value == home or home in value.parents:
            return "~/" + str(value.relative_to(home))
        return str(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)  # as the variable is written
    return str(value)


def _default_of(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def _is_secret(info: FieldInfo) -> bool:
    text = repr(info.annotation)
    return "SecretStr" in text


def setting_infos(model: type[Settings] = Settings) -> list[SettingInfo]:
    """Every setting of `model`, in the order the model declares them."""
    rows = []
    for field, info in model.model_fields.items():
        names = _env_names(info, field)
        default = format_default(_default_of(info))
        extra = info.json_schema_extra
        if isinstance(extra, dict) and "production" in extra:
            default = f"{default} (production: {format_default(extra['production'])})"
        rows.append(
            SettingInfo(field, names[0], names, default, info.description or "", _is_secret(info))
        )
    return rows


def mask_url(url: str) -> str:
    """A URL without the password of its user-info part."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:****@{host}"))


def display_value(value: Any) -> str:
    """A value fit to print: secrets masked (first characters only), URLs without passwords."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return f"{secret[:6]}…[masked]" if len(secret) > 10 else "[masked]"
    if isinstance(value, list):
        if value and all(isinstance(v, SecretStr) for v in value):
            return f"{len(value)} key{'s' if len(value) > 1 else ''} [masked]"
        return ",".join(display_value(v) for v in value) or "-"
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return format_default(value)


def _dotenv(settings: Settings) -> tuple[Path | None, dict[str, str]]:
    env_file = settings.model_config.get("env_file")
    if not isinstance(env_file, str | Path) or not env_file:
        return None, {}
    path = Path(env_file)
    if not path.is_file():
        return None, {}
    from dotenv import dotenv_values

    values = {k.upper(): v for k, v in dotenv_values(path).items() if v is not None}
    return path.absolute(), values


def sources(settings: Settings, env: dict[str, str] | None = None) -> dict[str, str]:
    """Where each setting's value came from: environment, `.env`, or a default."""
    environ = {k.upper(): v for k, v in (env if env is not None else os.environ).items()}
    dotenv_path, dotenv = _dotenv(settings)
    out: dict[str, str] = {}
    for row in setting_infos(type(settings)):
        names = [n.upper() for n in row.aliases]
        if any(n in environ for n in names):
            out[row.field] = "environment"
        elif any(n in dotenv for n in names):
            out[row.field] = f".env ({dotenv_path})"
        elif row.field in settings.model_fields_set:
            out[row.field] = "set by the caller"
        elif "(production:" in row.default and settings.env == "production":
            out[row.field] = "default for OAS_ENV=production"
        else:
            out[row.field] = "default"
    return out
