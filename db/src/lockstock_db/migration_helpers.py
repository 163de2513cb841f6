"""DDL that several migrations share. Keep it stable: migrations that already ran used exactly this SQL."""

from alembic import op


def create_login_role(name: str) -> None:
    """Roles are cluster-wide, so one may exist already (another database, an earlier run)."""
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
            CREATE ROLE {name} LOGIN;
          END IF;
        END $$;
        """
    )


def create_idempotency_keys_table(schema: str) -> None:
    """The table servicekit.idempotency.IdempotencyStore works on, in the service's own schema."""
    op.execute(
        f"""
        CREATE TABLE {schema}.idempotency_keys (
            key                   text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
            fingerprint           text NOT NULL,
            state                 text NOT NULL CHECK (state IN ('in_flight', 'done')),
            response_status       integer,
            response_content_type text,
            response_body         bytea,
            created_at            timestamptz NOT NULL DEFAULT now(),
            locked_at             timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(f"CREATE INDEX {schema}_idempotency_keys_created ON {schema}.idempotency_keys (created_at)")
