# streamagg worker image: `docker build -t streamagg .` at the repository root.
#
#   docker run -e STREAMAGG_BROKER=kafka://kafka1:9092 -p 6066:6066 \
#     -v streamagg-data:/var/lib/streamagg/data streamagg            # a worker
#   docker run --rm streamagg generate --rate 200                      # any other command
#
# Settings come from STREAMAGG_* variables (docs/configuration.md); operating it: docs/operations.md.

# --- build: install the package and its dependencies into a virtualenv ---------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler for any dependency that has no wheel for this platform; not in the final image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/streamagg
ENV PATH=/opt/streamagg/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamagg ./streamagg
RUN pip install .

# --- run -----------------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/streamagg/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMAGG_DATA_DIR=/var/lib/streamagg/data \
    STREAMAGG_WEB_BIND=0.0.0.0 \
    STREAMAGG_WEB_PORT=6066

COPY --from=build /opt/streamagg /opt/streamagg

# An unprivileged user owns the state folder; a named volume mounted there inherits the owner.
RUN groupadd --system --gid 10001 streamagg \
    && useradd --system --uid 10001 --gid streamagg --home-dir /var/lib/streamagg \
       --shell /usr/sbin/nologin streamagg \
    && mkdir -p /var/lib/streamagg/data \
    && chown -R streamagg:streamagg /var/lib/streamagg

USER streamagg
WORKDIR /var/lib/streamagg

# RocksDB table state. It can be lost (it is rebuilt from the changelog topics), but keeping it
# on a volume makes restarts fast.
VOLUME ["/var/lib/streamagg/data"]

# HTTP API, report page, /metrics, /healthz, /readyz.
EXPOSE 6066

# Ready = tables recovered and the DID inventory loaded. Recovery of a large state can take
# minutes after a restart; the start period keeps the container "starting" meanwhile.
HEALTHCHECK --interval=15s --timeout=10s --start-period=180s --retries=3 \
    CMD ["streamagg", "check", "--timeout", "5"]

ENTRYPOINT ["streamagg"]
CMD ["worker"]
