#!/bin/sh
# Install oas and exactly the locked dependencies into a fresh virtual environment.
#
#   docker/install.sh PROJECT_DIR VENV_DIR
#
# The Dockerfile's build stage runs this script, and tests/test_packaging_install.py runs it
# too, so the test exercises the same install steps as the image: export the lockfile's
# runtime dependencies (no dev group, hashes included), build the wheel, install both with
# uv into VENV_DIR. PYTHON picks the interpreter (default python3). Needs uv on PATH.
set -eu

project=$(cd "$1" && pwd)
venv=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export UV_PYTHON_DOWNLOADS=never

uv export --project "$project" --frozen --no-dev --no-emit-project --quiet \
    --format requirements-txt --output-file "$work/requirements.txt"
uv build --quiet --wheel --out-dir "$work/dist" "$project"
uv venv --quiet --python "${PYTHON:-python3}" "$venv"
uv pip install --quiet --python "$venv/bin/python" --require-hashes -r "$work/requirements.txt"
uv pip install --quiet --python "$venv/bin/python" --no-deps "$work"/dist/openrouter_anthropic_server-*.whl

"$venv/bin/oas" --version
