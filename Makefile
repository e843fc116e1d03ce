# Two commands on a fresh machine (Python 3.11, make, node): `make serve` and `make test`.
# uv comes from PyPI into .tools/ when it is not installed; the lockfile pins the rest.

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST_ARGS ?=

.PHONY: serve test test-fast lint bench lock clean claude-code-latest claude-code-matrix

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# What serving needs: the locked runtime dependencies, no test tools. `--inexact` keeps the
# dev tools of an earlier `make test`, so the two targets never undo each other.
.venv/.synced-serve: pyproject.toml uv.lock | $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen --no-dev --inexact
	@touch $@

# Everything: the runtime plus the dev group (pytest, ruff, mypy, the SDK, ...).
.venv/.synced: pyproject.toml uv.lock | $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) sync --frozen
	@touch $@ .venv/.synced-serve

serve: .venv/.synced-serve
	.venv/bin/oas serve

# Lint, format and types first (seconds), then the suite.
test: .venv/.synced lint
	.venv/bin/pytest $(PYTEST_ARGS)

lint: .venv/.synced
	.venv/bin/ruff check src tests bench docs
	.venv/bin/ruff format --check src tests bench docs
	.venv/bin/mypy src

test-fast: .venv/.synced
	.venv/bin/pytest -m "not e2e" $(PYTEST_ARGS)

# The newest Claude Code on npm: what it sends that the pinned releases do not, then the suite.
claude-code-latest: .venv/.synced
	.venv/bin/python -m tests.claude_code.latest

# Regenerate docs/claude-code-matrix.json (release x tool) from a run of the tool tests.
claude-code-matrix: .venv/.synced
	rm -f docs/claude-code-matrix.json
	OAS_CLAUDE_CODE_MATRIX=docs/claude-code-matrix.json .venv/bin/pytest -q \
		tests/claude_code/test_tools.py tests/claude_code/test_side_tools.py

bench: .venv/.synced
	.venv/bin/python -m bench

lock: $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) lock

clean:
	rm -rf .venv .tools .pytest_cache
