"""The idempotency store's SQL, one named statement each; ``{table}`` is the service's own key table (a
trusted, schema-qualified name from its code, never from input). servicekit.idempotency runs them."""

CLAIM = """
INSERT INTO {table} AS k (key, fingerprint, state, created_at, locked_at)
VALUES (:key, :fp, 'in_flight', now(), now())
ON CONFLICT (key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight',
       response_status = NULL, response_content_type = NULL, response_body = NULL,
       created_at = now(), locked_at = now()
 WHERE k.created_at < now() - CAST(:ttl AS interval)
RETURNING locked_at
"""

LOOK_UP = """
SELECT fingerprint, state, response_status, response_content_type, response_body,
       locked_at < now() - CAST(:lease AS interval) AS stale
  FROM {table} WHERE key = :key
"""

TAKE_OVER_STALE = """
UPDATE {table} SET locked_at = clock_timestamp()
 WHERE key = :key AND state = 'in_flight'
   AND locked_at < now() - CAST(:lease AS interval)
RETURNING locked_at
"""

RENEW = """
UPDATE {table} SET locked_at = clock_timestamp()
 WHERE key = :key AND state = 'in_flight' AND locked_at = :token
RETURNING locked_at
"""

# {fence} is FENCE, or nothing for a caller without a token (the key alone decides, as before fencing).
COMPLETE = """
UPDATE {table}
   SET state = 'done', response_status = :status, response_content_type = :ctype,
       response_body = :body
 WHERE key = :key AND state = 'in_flight'{fence}
"""

RELEASE = "DELETE FROM {table} WHERE key = :key AND state = 'in_flight'{fence}"

FENCE = " AND locked_at = :token"

PRUNE = "DELETE FROM {table} WHERE created_at < now() - CAST(:ttl AS interval) AND state = 'done'"
