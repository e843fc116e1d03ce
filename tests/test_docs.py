"""The documentation cannot drift from the code: settings, commands, task names, links.

When a setting is added to `src/core/settings.py`, the first test fails and prints the
exact table rows to add to docs/03-configuration.md and the README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from src.cli import build_parser
from src.cli.settings_info import SettingInfo, setting_infos

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REFERENCE = DOCS / "03-configuration.md"
README = ROOT / "README.md"

GUIDES = [
    "01-getting-started",
    "02-claude-code",
    "03-configuration",
    "04-models-and-routing",
    "05-prefect-dashboard",
    "06-replay",
    "07-server-tools-and-mcp",
    "08-errors-and-troubleshooting",
    "09-deployment-and-scaling",
    "10-performance",
    "11-architecture",
    "12-endpoints",
    "13-api-compatibility",
    "14-errors-resilience-security",
]

# Written on another branch (claude-code); until it is merged it may be absent, and links to
# it are not counted as broken. Remove it from this set once docs/02-claude-code.md is on main.
PENDING: set[str] = set()

_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|([^|]*)\|", re.MULTILINE)


def documented(path: Path) -> dict[str, str]:
    """Env var -> default cell of every table row that starts with a `VARIABLE`."""
    return {
        name: " ".join(cell.replace("`", "").split())
        for name, cell in _ROW.findall(path.read_text())
    }


def _row(info: SettingInfo) -> str:
    """A table row to paste, default cell written as the docs write it."""
    default, _, production = info.default.partition(" (production: ")
    cell = "-" if default == "-" else f"`{default}`"
    if production:
        cell += f" (production: `{production.removesuffix(')')}`)"
    return f"| `{info.env}` | {cell} | {info.description or 'WHAT IT DOES'} |"


@pytest.mark.parametrize("doc", [REFERENCE, README], ids=lambda p: p.name)
def test_every_setting_is_documented_with_its_real_default(doc):
    rows = documented(doc)
    infos = setting_infos()
    missing = [info for info in infos if info.env not in rows]
    unknown = sorted(set(rows) - {info.env for info in infos})
    wrong = [
        (info, rows[info.env])
        for info in infos
        if info.env in rows and rows[info.env] != info.default
    ]
    problems = []
    if missing:
        problems.append(
            f"{doc.relative_to(ROOT)} lacks these settings of src/core/settings.py; "
            "add the rows (and say what each does):\n" + "\n".join(_row(info) for info in missing)
        )
    if unknown:
        problems.append(
            f"{doc.relative_to(ROOT)} documents variables that Settings does not "
            f"read; remove or rename: {', '.join(unknown)}"
        )
    if wrong:
        problems.append(
            "defaults differ from Settings; fix the default cells:\n"
            + "\n".join(
                f"  {info.env}: documented {cell!r}, real {info.default!r}" for info, cell in wrong
            )
        )
    assert not problems, "\n\n".join(problems)


def test_the_guides_exist_in_order_and_the_readme_links_to_them():
    present = sorted(p.stem for p in DOCS.glob("[0-9][0-9]-*.md"))
    assert present == [g for g in GUIDES if g not in PENDING or (DOCS / f"{g}.md").exists()]
    readme = README.read_text()
    assert "docs/01-getting-started.md" in readme
    index = (DOCS / "README.md").read_text()
    for guide in GUIDES:
        assert f"({guide}.md)" in index, f"docs/README.md does not link {guide}.md"


def _markdown_files() -> list[Path]:
    return [README, ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def test_every_relative_link_and_image_resolves():
    broken = []
    for doc in _markdown_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+://|mailto:|#", target):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if path.parent == DOCS and path.stem in PENDING:
                continue
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_images_are_real_screenshots():
    guide = (DOCS / "05-prefect-dashboard.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\((images/[^)]+)\)", guide)
    assert len(images) >= 4
    for image in images:
        data = (DOCS / image).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, image


def shell_blocks(markdown: str) -> list[str]:
    """The bodies of the fenced code blocks marked bash, sh or console (or unmarked)."""
    blocks, body, lang = [], [], None
    for line in markdown.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang = line[3:].strip()
                body = []
            else:
                if lang in ("", "bash", "sh", "console"):
                    blocks.append("\n".join(body))
                lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def test_every_command_shown_exists_and_every_command_is_shown():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    commands = set(sub.choices)
    shown: set[str] = set()
    for doc in _markdown_files():
        for block in shell_blocks(doc.read_text()):
            commands_only = "\n".join(
                line.split(" #")[0]
                for line in block.splitlines()
                if not line.lstrip().startswith("#")
            )
            for match in re.finditer(r"(?:^|[\s;&|(])oas ([a-z][a-z-]*)", commands_only):
                word = match.group(1)
                assert word in commands, f"{doc.name} shows `oas {word}`, which does not exist"
                shown.add(word)
    assert commands <= shown, f"commands without an example in the docs: {commands - shown}"


def _step_names() -> set[str]:
    names = set()
    for path in (ROOT / "src").rglob("*.py"):
        names.update(re.findall(r'@step\("([a-z-]+)"', path.read_text()))
    return names


def _flow_names() -> set[str]:
    names = set()
    for path in (ROOT / "src" / "flows").rglob("*.py"):
        names.update(re.findall(r'@flow\(name="([a-z-]+)"', path.read_text()))
    return names


def test_the_dashboard_guide_explains_every_flow_and_task():
    guide = (DOCS / "05-prefect-dashboard.md").read_text()
    missing = sorted(n for n in _step_names() | _flow_names() if f"`{n}`" not in guide)
    assert missing == [], f"docs/05-prefect-dashboard.md does not explain: {missing}"


def test_the_architecture_page_names_the_modules_it_describes():
    page = (DOCS / "11-architecture.md").read_text()
    for module in re.findall(r"`(src/[\w/]+\.py)`", page):
        assert (ROOT / module).exists(), f"11-architecture.md names {module}, which is gone"


def test_the_performance_page_shows_the_committed_benchmark_run():
    """Its targets table is the report's, row for row: no figure the benchmark did not measure."""
    page = (DOCS / "10-performance.md").read_text()
    section = page.split("### Targets", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and "---" not in line][1:]
    results = json.loads((ROOT / "bench" / "results" / "results.json").read_text())
    targets = results["targets"]
    assert len(rows) == len(targets), "the page and bench/results disagree on the targets"
    for row, target in zip(rows, targets, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        shown = float(re.search(r"[\d,]+(?:\.\d+)?", cells[2]).group().replace(",", ""))
        assert abs(shown - target["value"]) <= max(0.01, 0.01 * abs(target["value"])), (row, target)
        assert cells[3].startswith(target["verdict"]), (row, target)
    assert all(phase["errors"] == 0 for phase in results["phases"].values())


def test_the_readme_commands_are_make_targets():
    readme = README.read_text()
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for command in re.findall(r"^make ([a-z-]+)", readme, re.MULTILINE):
        assert command in targets, f"README says `make {command}`; the Makefile has no such target"
    assert {"serve", "test"} <= set(re.findall(r"^make ([a-z-]+)", readme, re.MULTILINE))
