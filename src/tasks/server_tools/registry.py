"""Which server tool kinds exist, and the `plan-server-tools` step that picks a request's.

A kind registers a factory for the Anthropic tool `type` prefixes it serves (for example
`web_fetch_`); request-level features such as `mcp_servers` register under a request field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from src.core.settings import Settings
from src.schemas.anthropic import MessagesRequest, Tool
from src.tasks.server_tools.base import ServerTool, Toolbox
from src.tracking import step

log = structlog.get_logger("oas.server_tools")

#: factory(tool definition from the request, the whole request, settings) -> ServerTool | None
ToolFactory = Callable[[Tool, MessagesRequest, Settings], "ServerTool | None"]
#: factory(the whole request, settings) -> list of ServerTool (request-level features)
RequestFactory = Callable[[MessagesRequest, Settings], "list[ServerTool]"]

_BY_TYPE: dict[str, ToolFactory] = {}
_BY_REQUEST: list[RequestFactory] = []
_loaded = False


def register(type_prefix: str | None = None) -> Callable[[Any], Any]:
    """Decorator: `@register("web_fetch_")` for tool types, `@register()` for request-level."""

    def wrap(factory: Any) -> Any:
        if type_prefix is None:
            _BY_REQUEST.append(factory)
        else:
            _BY_TYPE[type_prefix] = factory
        return factory

    return wrap


def _load_kinds() -> None:
    """Import every kind's module once (they register on import)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    import src.tasks.server_tools as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "registry"):
            importlib.import_module(f"{package.__name__}.{module.name}")


def build_toolbox(request: MessagesRequest, settings: Settings) -> Toolbox:
    """The request's server tools that `oas` can run; the others are left to conversion."""
    _load_kinds()
    tools: list[ServerTool] = []
    for definition in request.tools or []:
        if not definition.is_server_tool or definition.type is None:
            continue
        for prefix, factory in _BY_TYPE.items():
            if definition.type.startswith(prefix):
                tool = factory(definition, request, settings)
                if tool is not None:
                    tools.append(tool)
                break
    for request_factory in _BY_REQUEST:
        tools.extend(request_factory(request, settings))
    return Toolbox(tools)


@step("plan-server-tools")
def plan_server_tools(request: MessagesRequest, settings: Settings) -> Toolbox:
    """Task: the server tools this request asked for and `oas` can run."""
    return build_toolbox(request, settings)
