# syntax=docker/dockerfile:1
# priceintel: the API, the Voila apps and the scheduler in one image (docs/deploy.md).
#   docker build -t priceintel:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 -e DATABASE_URL=... priceintel:0.1.0     # the API (default command)
# Both stages use the same pinned base, so the venv's interpreter path is identical in each.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- builder: a self-contained virtualenv with priceintel and its dependencies --------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml README.md deploy/constraints.txt ./
COPY src ./src
# a regular (non-editable) install at the versions the tests passed with (deploy/constraints.txt);
# the `sentry` extra adds error tracking, active only when SENTRY_DSN is set
RUN pip install --constraint constraints.txt "/build[sentry]" && pip check

# --- runtime: the venv, the project files priceintel reads at run time, Debian's chromium ----------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
ARG GID=10001
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    PRICEINTEL_HOME=/app \
    PRICEINTEL_DATA_DIR=/data \
    PRICEINTEL_REPORTS_DIR=/data/reports \
    PRICEINTEL_CACHE_DIR=/data/cache

# Playwright prints PDFs and renders JS pages with Debian's /usr/bin/chromium (never a downloaded browser);
# fonts so that prices, currency signs and accents render in the PDFs.
# Versions are not pinned: Debian's security archive replaces chromium's version (and drops the old one) with
# every fix, so a pin would break the build within weeks; the pinned base image tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        chromium \
        fonts-dejavu-core \
        fonts-liberation \
        fonts-noto-color-emoji \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid "${GID}" priceintel \
    && useradd --system --uid "${UID}" --gid priceintel --create-home --home-dir /home/priceintel \
        --shell /usr/sbin/nologin priceintel \
    && install -d -o priceintel -g priceintel -m 0750 /data /data/raw /data/reports

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# PRICEINTEL_HOME: the pipeline definition, its notebooks, the apps and the configuration files (read-only)
COPY pipeline.yaml env.yaml ./
COPY config ./config
COPY notebooks ./notebooks
COPY dbt ./dbt
COPY deploy/healthcheck.py ./deploy/healthcheck.py

USER ${UID}:${GID}
# everything the workbench writes: raw page archive (data/raw), pipeline products, reports, key files
VOLUME ["/data"]
EXPOSE 8000 8866

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py", "http://127.0.0.1:8000/ready"]

CMD ["priceintel", "api", "--host", "0.0.0.0", "--port", "8000"]
