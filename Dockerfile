# syntax=docker/dockerfile:1
# windpipe's one image: every service in compose.yaml runs a `windpipe` command from it.
# Build: docker compose build   (or: docker build -t windpipe:local .)
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- builder: install exactly what uv.lock pins, runtime dependencies only ---------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
COPY --from=uv /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --frozen --no-dev --no-install-project

# Then windpipe itself, installed as a regular (non-editable) package into the same venv.
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---- runtime: the same Python, the venv, the Dagster instance config; no uv, no sources ---------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 windpipe \
    && useradd --system --uid 10001 --gid windpipe --no-create-home \
        --home-dir /var/lib/windpipe --shell /usr/sbin/nologin windpipe \
    && mkdir -p /var/lib/windpipe /opt/dagster/home \
    && chown windpipe:windpipe /var/lib/windpipe /opt/dagster/home
COPY --from=builder /app/.venv /app/.venv
COPY --chown=windpipe:windpipe docker/dagster/dagster.yaml /opt/dagster/home/dagster.yaml

# Defaults for containers; compose.yaml sets the rest (database URLs, ports). No passwords here:
# they come from the environment at run time.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WINDPIPE_DATA_DIR=/var/lib/windpipe \
    WINDPIPE_API_HOST=0.0.0.0 \
    WINDPIPE_DAGSTER_HOST=0.0.0.0

WORKDIR /app
USER windpipe:windpipe
EXPOSE 8000 3000
CMD ["windpipe", "--help"]
