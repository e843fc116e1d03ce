# Two commands on a fresh machine (Python 3.11, make, node): `make serve` and `make test`.
# uv comes from PyPI into .tools/ when it is not installed; the lockfile pins the rest.

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST_ARGS ?=

.PHONY: serve test test-fast bench lock clean

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

test: .venv/.synced
	.venv/bin/pytest $(PYTEST_ARGS)

test-fast: .venv/.synced
	.venv/bin/pytest -m "not e2e" $(PYTEST_ARGS)

bench: .venv/.synced
	.venv/bin/python -m bench

lock: $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) lock

clean:
	rm -rf .venv .tools .pytest_cache
