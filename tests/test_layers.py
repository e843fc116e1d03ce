"""The layer rule of docs/11-architecture.md, held against every import in `src`.

api knows HTTP and nothing of Prefect; tasks know neither HTTP nor the layers above them;
flows compose tasks; coordinators are the one place that knows both the web side's needs
and Prefect, and they hand `src/api` typed results, never HTTP responses. Services, the
sandbox, tracking and core sit below the request path and never import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

BASE = {"core", "schemas"}
#: the packages of `src` each package may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "schemas": {"core"},
    "sandbox": {"core"},
    "tracking": {"core"},
    "local_prefect": {"core"},
    "services": BASE | {"sandbox"},
    "tasks": BASE | {"services", "sandbox", "tracking"},
    "flows": BASE | {"services", "sandbox", "tracking", "tasks"},
    "coordinators": BASE | {"services", "sandbox", "tracking", "tasks", "flows", "local_prefect"},
    "api": BASE | {"coordinators"},
}
#: libraries a package must not import: the web side, or Prefect
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "api": {"prefect"},
    "coordinators": {"fastapi", "starlette", "uvicorn"},
    "flows": {"fastapi", "starlette", "uvicorn"},
    "tasks": {"fastapi", "starlette", "uvicorn"},
    "services": {"fastapi", "starlette", "uvicorn", "prefect"},
    "sandbox": {"fastapi", "starlette", "uvicorn", "prefect"},
    "core": {"fastapi", "starlette", "uvicorn"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _violations() -> list[str]:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if len(relative.parts) < 2 or relative.parts[0] not in ALLOWED:
            continue  # src/__init__.py, __main__.py and the cli sit on top
        package = relative.parts[0]
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] == "src" and len(parts) > 1:
                target = parts[1]
                if target != package and target not in ALLOWED[package]:
                    problems.append(f"src/{relative}:{line}: {package} imports src.{target}")
            elif parts[0] in FORBIDDEN_LIBRARIES.get(package, set()):
                problems.append(f"src/{relative}:{line}: {package} imports {parts[0]}")
    return problems


def test_every_import_in_src_follows_the_layer_rule() -> None:
    problems = _violations()
    assert not problems, "imports against docs/11's layers:\n" + "\n".join(problems)


def test_the_rule_knows_every_package_of_src() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"cli"} == set(ALLOWED), "a new package of src needs its place in the rule"
