# syntax=docker/dockerfile:1.7
# One image recipe for every lockstock app. APP is the workspace package to install and run:
#   inventory | orders | payments | notifications | gateway | web | admin  (served by uvicorn on $PORT)
#   lockstock-db                                          (the migrate/seed job: `lockstock-db migrate`)
#   docker build --build-arg APP=orders -t lockstock-orders .
ARG PYTHON_VERSION=3.11

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- build: resolve from the lock file, install only APP and what it depends on, into /app/.venv ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG PYTHON_VERSION
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python${PYTHON_VERSION} \
    UV_PROJECT_ENVIRONMENT=/app/.venv
ARG APP
RUN test -n "$APP" || (echo "build with --build-arg APP=<package>" >&2; exit 1)
WORKDIR /src
# Dependencies first, from the manifests alone: this layer is reused until uv.lock or a manifest changes.
COPY pyproject.toml uv.lock ./
COPY libs/servicekit/pyproject.toml libs/servicekit/
COPY libs/uikit/pyproject.toml libs/uikit/
COPY libs/devstack/pyproject.toml libs/devstack/
COPY services/inventory/pyproject.toml services/inventory/
COPY services/orders/pyproject.toml services/orders/
COPY services/payments/pyproject.toml services/payments/
COPY services/notifications/pyproject.toml services/notifications/
COPY db/pyproject.toml db/
COPY gateway/pyproject.toml gateway/
COPY web/pyproject.toml web/
COPY admin/pyproject.toml admin/
COPY demo/pyproject.toml demo/
COPY bench/pyproject.toml bench/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "$APP" --no-install-workspace
# Then the code; the workspace packages go in as regular (non-editable) installs, so /src is not needed later.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "$APP" --no-editable

# ---- run: the interpreter, the virtualenv, an unprivileged user; no uv, no sources, no build tools ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS run
ARG APP
RUN groupadd --system --gid 10001 lockstock \
 && useradd --system --uid 10001 --gid lockstock --home-dir /app --no-create-home lockstock \
 && mkdir -p /app/data && chown lockstock:lockstock /app/data
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP=${APP} \
    PORT=8000 \
    LOCKSTOCK_DATA_DIR=/app/data
WORKDIR /app
USER lockstock:lockstock
EXPOSE 8000
# Package name = module name for every app (lockstock-db overrides the command).
CMD ["sh", "-c", "exec uvicorn --factory \"${APP}.app:create_app\" --host 0.0.0.0 --port \"${PORT}\" --no-access-log --no-proxy-headers"]
