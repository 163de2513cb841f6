"""auth schema: the gateway's admin accounts, and the gateway_svc role

Revision ID: 0003_auth
Revises: 0001_inventory_and_orders
"""

from alembic import op

from lockstock_db.migration_helpers import create_login_role

revision = "0003_auth"
down_revision = "0001_inventory_and_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_login_role("gateway_svc")
    op.execute("CREATE SCHEMA auth")
    op.execute(
        """
        CREATE TABLE auth.accounts (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            username      text NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 100),
            password_hash text NOT NULL,
            role          text NOT NULL CHECK (role IN ('admin', 'staff')),
            created_at    timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # The gateway signs admins in and creates accounts (task admin:create); it never deletes them, and it
    # may only rewrite a hash (argon2 parameters upgraded on sign-in).
    op.execute("GRANT USAGE ON SCHEMA auth TO gateway_svc")
    op.execute("GRANT SELECT, INSERT ON auth.accounts TO gateway_svc")
    op.execute("GRANT UPDATE (password_hash) ON auth.accounts TO gateway_svc")


def downgrade() -> None:
    op.execute("DROP SCHEMA auth CASCADE")
