"""The app's OpenAPI document, made valid: request bodies declared with a Pydantic model's
JSON schema (`openapi_extra`) carry their `$defs` inline while their `$ref`s point into
`components/schemas`; the definitions are moved there, so tools (client generators,
schemathesis) can resolve every reference."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def hoist_defs(document: dict[str, Any]) -> dict[str, Any]:
    """Move every request body schema's `$defs` into `components/schemas` (in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            content = (operation.get("requestBody") or {}).get("content") or {}
            for media in content.values():
                schema = media.get("schema")
                if isinstance(schema, dict) and "$defs" in schema:
                    for name, definition in schema.pop("$defs").items():
                        schemas.setdefault(name, definition)
    return document


def install(app: FastAPI) -> None:
    """Serve the hoisted document at /openapi.json (built once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = hoist_defs(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
