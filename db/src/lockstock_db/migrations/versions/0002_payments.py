"""payments schema: charges and their idempotency keys, and the payments_svc role

Revision ID: 0002_payments
Revises: 0001_inventory_and_orders
"""

from alembic import op

from lockstock_db.migration_helpers import create_idempotency_keys_table, create_login_role

revision = "0002_payments"
down_revision = "0001_inventory_and_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_login_role("payments_svc")

    op.execute("CREATE SCHEMA payments")
    # A charge row is written 'pending' *before* the processor is asked, under the request's idempotency key
    # (UNIQUE): a request that dies after the processor charged leaves the row behind, and the retry with the
    # same key resumes that row instead of charging again.
    op.execute(
        """
        CREATE TABLE payments.charges (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            order_id        bigint NOT NULL CHECK (order_id > 0),
            amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
            status          text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'succeeded', 'failed')),
            failure_code    text CHECK ((status = 'failed') = (failure_code IS NOT NULL)),
            idempotency_key text NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
            created_at      timestamptz NOT NULL DEFAULT now(),
            decided_at      timestamptz
        )
        """
    )
    op.execute("CREATE INDEX charges_order ON payments.charges (order_id, id)")
    # The last line of defence against a double charge: at any moment an order has at most one charge that
    # is in progress or succeeded, whatever keys the callers used. Checked before the processor is called.
    op.execute(
        """
        CREATE UNIQUE INDEX charges_one_live_per_order ON payments.charges (order_id)
         WHERE status IN ('pending', 'succeeded')
        """
    )
    create_idempotency_keys_table("payments")

    # Least privilege: payments owns its schema and nothing else; charges are never deleted. Orders reaches
    # payments over HTTP only, so it gets nothing here.
    op.execute("GRANT USAGE ON SCHEMA payments TO payments_svc")
    op.execute("GRANT SELECT, INSERT ON payments.charges TO payments_svc")
    op.execute("GRANT UPDATE (status, failure_code, decided_at) ON payments.charges TO payments_svc")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON payments.idempotency_keys TO payments_svc")


def downgrade() -> None:
    op.execute("DROP SCHEMA payments CASCADE")
