"""Revocable sign-ins and API keys (issue 11): auth.sessions, auth.accounts.disabled_at, auth.api_keys

A JWT names its session (claim ``sid``); the gateway accepts it only while that session is open and its
account is enabled, so signing out, changing a password or disabling an account ends tokens at once
(ADR 0010).

Revision ID: 0010_sessions_and_api_keys
Revises: 0009_low_stock
"""

from alembic import op

revision = "0010_sessions_and_api_keys"
down_revision = "0009_low_stock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE auth.accounts ADD COLUMN disabled_at timestamptz")
    op.execute(
        """
        CREATE TABLE auth.sessions (
            id         uuid PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES auth.accounts (id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX sessions_open_by_account ON auth.sessions (account_id) WHERE revoked_at IS NULL")
    op.execute("CREATE INDEX sessions_expires_at ON auth.sessions (expires_at)")
    # An API key is ``lsk_<prefix>_<secret>``: the prefix finds the row, the secret's SHA-256 is compared in
    # constant time. The secret is 256 random bits, so a fast hash is enough (a slow one protects guessable
    # passwords); the key itself is shown once and never stored.
    op.execute(
        """
        CREATE TABLE auth.api_keys (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            prefix       text NOT NULL UNIQUE CHECK (prefix ~ '^[0-9a-f]{12}$'),
            secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
            name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            scopes       text[] NOT NULL CHECK (cardinality(scopes) >= 1),
            created_by   bigint REFERENCES auth.accounts (id) ON DELETE SET NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz,
            revoked_at   timestamptz
        )
        """
    )
    # The gateway opens and closes sessions and prunes expired ones; it disables accounts but never deletes
    # them; it creates keys, marks their use and revokes them, but never rewrites a key's secret or scopes.
    op.execute("GRANT SELECT, INSERT, DELETE ON auth.sessions TO gateway_svc")
    op.execute("GRANT UPDATE (revoked_at) ON auth.sessions TO gateway_svc")
    op.execute("GRANT UPDATE (disabled_at) ON auth.accounts TO gateway_svc")
    op.execute("GRANT SELECT, INSERT ON auth.api_keys TO gateway_svc")
    op.execute("GRANT UPDATE (last_used_at, revoked_at) ON auth.api_keys TO gateway_svc")


def downgrade() -> None:
    op.execute("DROP TABLE auth.api_keys")
    op.execute("DROP TABLE auth.sessions")
    op.execute("ALTER TABLE auth.accounts DROP COLUMN disabled_at")
