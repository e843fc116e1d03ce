# syntax=docker/dockerfile:1
#
# oas in a container: configuration only by environment (see docs/03-configuration.md).
#
#   docker build -t oas .
#   docker run -p 8082:8082 -e OPENROUTER_API_KEY=sk-or-v1-... -e OAS_API_KEYS=team-key \
#       -e PREFECT_API_URL=http://prefect:4200/api -v oas-data:/data oas
#
# Two stages: `build` installs the wheel and the lockfile's dependencies into /opt/oas with
# uv (docker/install.sh, the same script tests/test_packaging_install.py runs); the runtime
# stage is slim Python with that virtual environment, run as the non-root user `oas`.
# docker-compose.yml runs it with a Prefect server on PostgreSQL.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /usr/local/bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PYTHON=/usr/local/bin/python3
WORKDIR /build
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
COPY docker/install.sh ./docker/install.sh
RUN --mount=type=cache,target=/root/.cache/uv sh docker/install.sh /build /opt/oas

FROM python:${PYTHON_VERSION}-slim-bookworm
# bubblewrap: the strongest sandbox tier for code execution (docs/14). Docker's default
# seccomp profile refuses the user namespaces it needs; run with a profile that allows them
# (or --security-opt seccomp=unconfined) where OAS_CODE_EXECUTION is on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --create-home --home-dir /home/oas oas \
    && mkdir -p /data \
    && chown oas:oas /data
COPY --from=build /opt/oas /opt/oas
ENV PATH=/opt/oas/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    OAS_ENV=production \
    OAS_HOST=0.0.0.0 \
    OAS_PORT=8082 \
    OAS_DATA_DIR=/data
USER oas
WORKDIR /home/oas
VOLUME ["/data"]
EXPOSE 8082
# /health answers without touching the upstream or Prefect. Without PREFECT_API_URL the
# container starts its own Prefect server first (up to ~30 s): hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('OAS_PORT', '8082'), timeout=4)"]
ENTRYPOINT ["oas"]
CMD ["serve"]
