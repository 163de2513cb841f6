#!/usr/bin/env bash
# Run lockstock's migrations (all services' schemas, roles and grants) against DATABASE_URL,
# for someone without the Taskfile. With no DATABASE_URL it uses the embedded PostgreSQL under .data/.
set -euo pipefail
cd "$(dirname "$0")/.."
exec uv run lockstock-dev migrate "$@"
