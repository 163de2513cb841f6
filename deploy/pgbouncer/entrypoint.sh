#!/bin/sh
# Writes pgbouncer.ini and its auth file into /tmp (the root filesystem may be read-only), then runs pgbouncer.
#   DB_HOST, DB_PORT (5432)            the PostgreSQL server
#   LOCK_TIMEOUT_MS, STATEMENT_TIMEOUT_MS  set on every server connection (the apps cannot send them, ADR 0005)
#   DEFAULT_POOL_SIZE (20), MAX_CLIENT_CONN (1000)
#   The auth file: mounted at $AUTH_FILE (a Kubernetes Secret), or built from <ROLE>_DB_PASSWORD variables.
set -eu
work=/tmp/pgbouncer
mkdir -p "$work"
auth="${AUTH_FILE:-$work/userlist.txt}"
if [ ! -f "$auth" ]; then
  : > "$auth"
  for pair in inventory_svc:INVENTORY_DB_PASSWORD orders_svc:ORDERS_DB_PASSWORD \
              payments_svc:PAYMENTS_DB_PASSWORD gateway_svc:GATEWAY_DB_PASSWORD; do
    role="${pair%%:*}"; var="${pair#*:}"
    eval "password=\${$var:-}"
    [ -n "$password" ] && printf '"%s" "%s"\n' "$role" "$password" >> "$auth"
  done
  chmod 600 "$auth"
fi
cat > "$work/pgbouncer.ini" <<INI
[databases]
* = host=${DB_HOST:?set DB_HOST} port=${DB_PORT:-5432} connect_query='SET lock_timeout = ${LOCK_TIMEOUT_MS:-5000}; SET statement_timeout = ${STATEMENT_TIMEOUT_MS:-15000}'

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
pool_mode = transaction
auth_type = scram-sha-256
auth_file = $auth
default_pool_size = ${DEFAULT_POOL_SIZE:-20}
max_client_conn = ${MAX_CLIENT_CONN:-1000}
server_reset_query =
ignore_startup_parameters = extra_float_digits
server_check_query = select 1
INI
exec pgbouncer "$work/pgbouncer.ini"
