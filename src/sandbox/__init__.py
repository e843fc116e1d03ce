"""A confined place to run a model's commands and edit its files.

Knows nothing of Anthropic's wire format or of Prefect: `src.tasks.server_tools.code_execution`
turns tool calls into calls here and results into Anthropic's blocks.

- `workspace`: workspaces (Anthropic's containers): creation, expiry, cleanup, reuse by id.
- `isolation`: the tiers (bubblewrap, namespaces, rlimits) and which one this host has;
  `launcher` is the standalone program the namespaces and rlimits tiers start with.
- `hidden`: host paths and unix sockets covered inside the paths a sandbox is shown.
- `seccomp`: the filter every tier installs (no `fallocate`, no nested user namespaces).
- `runner`: one command with a wall-time limit and capped output; `watchdog` holds its
  processes' memory together and the disk quotas while it runs.
- `paths` and `files`: the text editor's view / create / str_replace, confined.
- `policy`: the operator's allow and deny lists of programs.
- `service`: the process-wide service per configuration, and `sandbox_status`.
"""

from src.sandbox.config import Limits, SandboxConfig
from src.sandbox.paths import PathError
from src.sandbox.runner import CommandResult
from src.sandbox.service import Busy, SandboxService, sandbox_status, service_for
from src.sandbox.workspace import Workspace, WorkspaceStore

__all__ = [
    "Busy",
    "CommandResult",
    "Limits",
    "PathError",
    "SandboxConfig",
    "SandboxService",
    "Workspace",
    "WorkspaceStore",
    "sandbox_status",
    "service_for",
]
