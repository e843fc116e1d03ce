"""Driving the code execution kind as the messages loop and a model would, and the
fixtures the sandbox's tests share: `root` (a workspace area per module) and `tier` (each
isolation tier this host has; one that does not work here is skipped, with why)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from src.core.settings import Settings
from src.sandbox import SandboxConfig, service_for
from src.sandbox.disk import mounts_under, unmount
from src.schemas.anthropic import MessagesRequest
from src.tasks.server_tools import Toolbox, ToolCall, ToolOutcome, build_toolbox

TIERS = ("bubblewrap", "namespaces", "rlimits")
BASH = "bash_code_execution"
EDITOR = "text_editor_code_execution"


@contextmanager
def workspace_root() -> Iterator[Path]:
    """A directory the sandbox uid can reach (pytest's tmp dirs are 0700 to root)."""
    path = Path(tempfile.mkdtemp(prefix="oas-sandbox-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:  # workspaces that are file systems of their own: unmounted first
        for point in mounts_under(path):
            unmount(point)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with workspace_root() as path:
        yield path


@pytest.fixture(params=TIERS)
def tier(request: pytest.FixtureRequest, root: Path) -> str:
    name = request.param
    service = service_for(SandboxConfig.from_settings(settings_for(root, name)))
    if service.isolation() is None:
        pytest.skip(f"{name} does not work on this host: {service.status()['skipped']}")
    return name


def settings_for(root: Path, tier: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "code_execution": True,
        "code_execution_dir": root / tier,
        "code_execution_isolation": tier,
        "code_execution_timeout": 15.0,
        # each workspace reserves its quota (sparse: nothing until written) of the total,
        # and a module's tests make dozens of workspaces that live on
        "code_execution_total_disk_mb": 1024 * 1024,
        "data_dir": root / "data",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def request(tool_type: str = "code_execution_20250825", container: Any = None) -> MessagesRequest:
    body: dict[str, Any] = {
        "model": "big",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "run some code"}],
        "tools": [{"type": tool_type, "name": "code_execution"}],
    }
    if container is not None:
        body["container"] = container
    return MessagesRequest.model_validate(body)


class Model:
    """Plays the model: each call goes through `Toolbox.find(...).run(...)` like the loop."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.calls = 0

    @classmethod
    def start(cls, settings: Settings, **request_args: Any) -> Model:
        return cls(build_toolbox(request(**request_args), settings))

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        self.calls += 1
        tool = self.toolbox.find(name)
        assert tool is not None, f"{name} is not offered"
        call = ToolCall(f"srvtoolu_{self.calls:04d}", name, arguments)
        outcome = await tool.run(call)
        assert [b["tool_use_id"] for b in outcome.blocks] == [call.id]
        return outcome

    async def bash(self, command: str) -> dict[str, Any]:
        return (await self.call(BASH, {"command": command})).blocks[0]

    async def edit(self, **arguments: Any) -> dict[str, Any]:
        return (await self.call(EDITOR, arguments)).blocks[0]

    def container(self) -> dict[str, str] | None:
        return self.toolbox.response_fields().get("container")

    async def close(self) -> None:
        await self.toolbox.aclose()


def result(block: dict[str, Any]) -> dict[str, Any]:
    """The block's content, asserting it is not an error."""
    content = block["content"]
    assert not content["type"].endswith("_error"), content
    return content


def error_code(block: dict[str, Any]) -> str:
    content = block["content"]
    assert content["type"].endswith("_tool_result_error"), content
    return content["error_code"]
