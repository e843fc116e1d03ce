"""The packaging files say what the code needs: read and cross-checked, since no container
engine runs here (tests/test_packaging_install.py runs the install steps for real).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from src import __version__
from src.cli import main as oas_main
from src.coordinators.deployments import REPLAY_DEPLOYMENT
from src.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


# ---- version -------------------------------------------------------------------------------


def test_the_version_lives_in_one_place():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:[.-]?\w+)?", __version__)


def test_oas_version_prints_it(capsys):
    with pytest.raises(SystemExit) as done:
        oas_main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"oas {__version__}"


def test_the_changelog_has_a_section_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(__version__)}\]?", changelog, re.MULTILINE), (
        f"CHANGELOG.md has no '## {__version__}' section"
    )


# ---- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_the_image_is_multi_stage_and_runs_oas_serve_as_a_non_root_user():
    stages = _stages()
    assert len(stages) >= 2
    assert stages[0][0][1].endswith("AS build")
    final = dict((k, v) for k, v in stages[-1])  # the last of each instruction wins
    assert final["USER"] not in ("root", "0")
    assert final["ENTRYPOINT"] == '["oas"]' and final["CMD"] == '["serve"]'
    assert "/health" in final["HEALTHCHECK"]
    copies = [v for k, v in stages[-1] if k == "COPY"]
    assert "--from=build /opt/oas /opt/oas" in copies


def test_the_image_is_configured_only_by_environment_and_holds_no_secret():
    env_lines = " ".join(v for k, v in dockerfile_instructions() if k == "ENV")
    env = dict(re.findall(r"(\w+)=(\S+)", env_lines))
    known = {
        name
        for info in Settings.model_fields.values()
        for name in getattr(info.validation_alias, "choices", [])
    }
    for name in env:
        if name.startswith("OAS_"):
            assert name in known, f"the Dockerfile sets {name}, which Settings does not read"
    assert env["OAS_HOST"] == "0.0.0.0" and env["OAS_ENV"] == "production"
    assert "OPENROUTER_API_KEY" not in env and "OAS_API_KEYS" not in env
    assert not any(k in ("ARG",) and "KEY" in v.upper() for k, v in dockerfile_instructions())


def test_the_build_stage_installs_from_the_lockfile_with_the_tested_script():
    build = _stages()[0]
    runs = [v for k, v in build if k == "RUN"]
    assert any("docker/install.sh" in r for r in runs)
    script = (ROOT / "docker" / "install.sh").read_text()
    assert "--frozen" in script and "--no-dev" in script and "--require-hashes" in script


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def in_build_context(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern that matches decides."""
    included = True
    for pattern in _dockerignore():
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            included = negate
    return included


def test_everything_the_build_copies_is_in_the_build_context_and_secrets_are_not():
    for k, v in dockerfile_instructions():
        if k == "COPY" and "--from=" not in v:
            *sources, _target = v.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert in_build_context(source), f"COPY {source}: excluded by .dockerignore"
    needed = [
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "docker/install.sh",
        *(str(p.relative_to(ROOT)) for p in (ROOT / "src").rglob("*.py")),
    ]
    assert [p for p in needed if not in_build_context(p)] == []
    for private in (".env", ".venv/bin/python", ".git/config", "tests/conftest.py", ".oas/x"):
        assert not in_build_context(private), f"{private} would be sent to the docker daemon"


# ---- docker-compose.yml --------------------------------------------------------------------


def compose(environment: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file with `${VAR:-default}` / `${VAR:?error}` interpolated as compose does."""
    environment = environment or {"OPENROUTER_API_KEY": "sk-or-v1-test", "OAS_API_KEYS": "k"}
    text = (ROOT / "docker-compose.yml").read_text()

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in environment and environment[name]:
            return environment[name]
        if op == ":?":
            raise LookupError(f"{name}: {arg}")
        return arg

    text = re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", substitute, text)
    return yaml.safe_load(text.replace("$$", "$"))


def _published(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-2]) for p in service.get("ports", [])}


def test_compose_refuses_to_start_without_the_upstream_key_or_client_keys():
    with pytest.raises(LookupError, match="OPENROUTER_API_KEY"):
        compose({"OAS_API_KEYS": "k"})
    with pytest.raises(LookupError, match="OAS_API_KEYS"):
        compose({"OPENROUTER_API_KEY": "sk-or-v1-test"})


def test_compose_runs_prefect_on_postgres_and_oas_records_to_it():
    services = compose()["services"]
    db_url = services["prefect"]["environment"]["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert db_url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in db_url and services["postgres"]["image"].startswith("postgres:")
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert f":{password}@" in db_url
    prefect_image = services["prefect"]["image"]
    locked = importlib.metadata.version("prefect")
    assert prefect_image.startswith(f"prefecthq/prefect:{locked}-"), (
        "the Prefect server image must match the Prefect version oas is locked to"
    )
    assert services["oas"]["environment"]["PREFECT_API_URL"] == "http://prefect:4200/api"
    assert services["oas"]["build"] == "."


def test_compose_starts_in_order_of_health():
    services = compose()["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    assert set(services["prefect"]["depends_on"]) == {"postgres"}
    assert set(services["oas"]["depends_on"]) == {"prefect"}
    assert set(services["gateway"]["depends_on"]) == {"oas"}


def test_compose_publishes_the_api_on_8082_and_the_dashboard_on_4200():
    services = compose()["services"]
    assert _published(services["gateway"]) == {8082}
    assert _published(services["prefect"]) == {4200}
    assert "ports" not in services["oas"], "replicas cannot share a published port"
    assert int(services["oas"]["deploy"]["replicas"]) >= 2
    assert "proxy_pass http://oas" in compose()["configs"]["gateway"]["content"]


def test_the_gateway_passes_streams_and_big_requests_through():
    conf = compose()["configs"]["gateway"]["content"]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert "proxy_buffering off;" in conf  # SSE bytes must not wait in nginx
    size = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1)) * 1024 * 1024
    assert size >= defaults.max_body_bytes
    read = int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))
    assert read >= defaults.read_timeout
    assert "$host" in conf and "$$" not in conf


def test_compose_keeps_data_in_declared_volumes_shared_by_the_replicas():
    doc = compose()
    declared = set(doc["volumes"])
    data_dir = dict(
        re.findall(r"(\w+)=(\S+)", " ".join(v for k, v in dockerfile_instructions() if k == "ENV"))
    )["OAS_DATA_DIR"]
    mounts = {
        name: [str(m).split(":") for m in s.get("volumes", [])]
        for name, s in doc["services"].items()
    }
    assert ["oas-data", data_dir] in mounts["oas"]
    assert ["postgres-data", "/var/lib/postgresql/data"] in mounts["postgres"]
    used = {m[0] for ms in mounts.values() for m in ms}
    assert used <= declared


# ---- prefect.yaml --------------------------------------------------------------------------


def test_prefect_yaml_declares_the_deployment_oas_serves():
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in doc["deployments"]}
    replay = deployments[REPLAY_DEPLOYMENT["name"]]
    assert replay["tags"] == REPLAY_DEPLOYMENT["tags"]
    assert " ".join(replay["description"].split()) == REPLAY_DEPLOYMENT["description"]
    module, _, attribute = replay["entrypoint"].partition(":")
    namespace: dict[str, Any] = {}
    exec((ROOT / module).read_text(), namespace)
    assert namespace[attribute].name == "replay"
    assert doc["prefect-version"] == importlib.metadata.version("prefect")


def test_compose_keeps_flow_runs_as_long_as_the_payloads_a_replay_needs():
    prefect = compose()["services"]["prefect"]["environment"]
    assert set(prefect["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"].split(",")) >= {"flow_runs"}
    kept_days = int(prefect["PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"]) / 86400
    assert kept_days == Settings(_env_file=None).payload_retention_days  # type: ignore[call-arg]
