# windpipe's one image: every service in compose.yaml runs a `windpipe` command from it.
# Build: docker compose build   (or: docker build --network host -t windpipe:local .)
# No `# syntax=` line on purpose: the engine's built-in Dockerfile frontend (BuildKit, Docker 23+)
# already supports `RUN --mount`, and a syntax line would need a registry to resolve, which an
# offline engine cannot reach. `uv sync` downloads packages, hence the host network in compose.yaml.
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

# Dependencies first, in their own layer: it is rebuilt only when the lock changes. The extra
# `docker` (dagster-docker, about 2 MB) lets the daemon of compose.runlauncher.yaml start each run
# in a container of this image; without that file nothing loads it. `k8s` (dagster-k8s): each run
# Job on Kubernetes loads an instance that names Dagster's K8sRunLauncher (deploy/helm).
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --frozen --no-dev --extra docker --extra k8s --no-install-project

# Then windpipe itself, installed as a regular (non-editable) package into the same venv.
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra docker --extra k8s --no-editable

# What no container reads (about 120 MB): pyarrow's C++ headers, Cython sources, tests, its Flight
# and S3 libraries (pyarrow.fs imports S3 only if present), the link-time copies of
# libarrow_python (the loader uses the .so.<major> name), numpy's tests, the Dagster UI's source
# maps. The import line checks that what windpipe loads still loads.
RUN cd /app/.venv/lib/python*/site-packages \
    && rm -rf pyarrow/include pyarrow/src pyarrow/tests numpy/*/tests numpy/tests \
        pyarrow/libarrow_flight.so* pyarrow/libarrow_python_flight.so* pyarrow/_flight.*.so \
        pyarrow/libarrow_s3.so* pyarrow/_s3fs.*.so pyarrow/_pyarrow_cpp_tests.*.so \
        pyarrow/libarrow_python.so pyarrow/libarrow_python.so.*.*.* \
        pyarrow/libarrow_python_parquet_encryption.so \
        pyarrow/libarrow_python_parquet_encryption.so.*.*.* \
    && find pyarrow \( -name '*.pyx' -o -name '*.pxd' \) -delete \
    && find dagster_webserver/webapp -name '*.map' -delete \
    && /app/.venv/bin/python -c "import pyarrow.fs, pyarrow.ipc, pyarrow.compute, pyarrow.parquet, \
polars, adbc_driver_postgresql.dbapi, dagster, dagster_webserver, dagster_docker, dagster_k8s, \
windpipe.cli"

# ---- runtime: the same Python, the venv, the Dagster instance config; no uv, no sources ---------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 windpipe \
    && useradd --system --uid 10001 --gid windpipe --no-create-home \
        --home-dir /var/lib/windpipe --shell /usr/sbin/nologin windpipe \
    && mkdir -p /var/lib/windpipe /opt/dagster/home \
    && chown windpipe:windpipe /var/lib/windpipe /opt/dagster/home
COPY --from=builder /app/.venv /app/.venv
COPY --chown=windpipe:windpipe docker/dagster/dagster.yaml /opt/dagster/home/dagster.yaml
# The daemon's start under compose.runlauncher.yaml (adds Dagster's DockerRunLauncher to the above).
COPY docker/dagster/docker_run_launcher.py /opt/dagster/docker_run_launcher.py

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
