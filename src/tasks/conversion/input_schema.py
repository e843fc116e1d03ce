"""Tool input against the tool's `input_schema`: cheap conversions, then validation.

Models often double-encode a nested value (`"[{...}]"` where the schema wants an array)
or quote a scalar (`"5"` for an integer). Those top-level values are converted; anything
else is only checked (jsonschema), since the client's tool gives the model a better error
than a guess would.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson


def coerce_to_schema(
    value: dict[str, Any], schema: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """`value` with top-level strings converted to the types the schema asks for, and the
    keys that were converted."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return value, []
    out, changed = value, []
    for key, item in value.items():
        spec = properties.get(key)
        if not isinstance(item, str) or not isinstance(spec, dict):
            continue
        converted = _coerce(item, spec)
        if converted is not _UNCHANGED:
            if out is value:
                out = dict(value)
            out[key] = converted
            changed.append(key)
    return out, changed


_UNCHANGED = object()


def _coerce(item: str, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()
    if not kinds or "string" in kinds:
        return _UNCHANGED
    text = item.strip()
    if kinds & {"object", "array"} and text[:1] in "[{":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _UNCHANGED
        if isinstance(parsed, dict) and "object" in kinds:
            return parsed
        if isinstance(parsed, list) and "array" in kinds:
            return parsed
        return _UNCHANGED
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    if "integer" in kinds and re.fullmatch(r"-?\d+", text):
        return int(text)
    if "number" in kinds and re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text):
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    return _UNCHANGED


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Any:
    from jsonschema import validators  # imported on first use: it is not needed at start

    schema = orjson.loads(schema_json)
    cls = validators.validator_for(schema)
    return cls(schema)


def schema_error(schema: dict[str, Any], value: dict[str, Any]) -> str | None:
    """The first way `value` breaks `schema`, or None (also when the schema is unusable)."""
    try:
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        error = next(iter(validator.iter_errors(value)), None)
    except Exception:
        return None
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message
