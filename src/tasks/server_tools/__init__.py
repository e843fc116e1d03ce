"""Server tools: the tools Anthropic runs on its side (web fetch, code execution, MCP),
run by `oas` itself so that any model behind it can use them.

A request's server tools form a `Toolbox`; the messages flow offers their functions to the
model, runs each call the model makes (every operation a Prefect task of its own) and
feeds the result back until the model answers.
"""

from src.tasks.server_tools.base import ServerTool, Toolbox, ToolCall, ToolOutcome
from src.tasks.server_tools.registry import build_toolbox, register

__all__ = ["ServerTool", "ToolCall", "ToolOutcome", "Toolbox", "build_toolbox", "register"]
