"""orders lifecycle: reservation deadline, authorized/captured/refunded money, customer, refunds, reconcile_at

Revision ID: 0005_orders_lifecycle
Revises: 0004_payments_lifecycle
"""

from alembic import op

revision = "0005_orders_lifecycle"
down_revision = "0004_payments_lifecycle"
branch_labels = None
depends_on = None

STATUSES = "'PENDING', 'PAYMENT_FAILED', 'AUTHORIZED', 'PAID', 'REFUNDED', 'CANCELLED', 'EXPIRED'"


def upgrade() -> None:
    op.execute("ALTER TABLE orders.orders DROP CONSTRAINT orders_status_check")
    op.execute(f"ALTER TABLE orders.orders ADD CONSTRAINT orders_status_check CHECK (status IN ({STATUSES}))")
    # The customer is one jsonb snapshot ({email, name, address: {…}}): orders stores what the shopper typed
    # and answers it back whole; it never filters or joins on an address line, and the shape is validated
    # where it enters (orders.schemas.Customer). The email alone gets an expression index for the admin.
    op.execute(
        """
        ALTER TABLE orders.orders
            DROP COLUMN charge_id,
            ADD COLUMN payment_id       bigint,
            ADD COLUMN expires_at       timestamptz,
            ADD COLUMN authorized_cents bigint NOT NULL DEFAULT 0,
            ADD COLUMN captured_cents   bigint NOT NULL DEFAULT 0,
            ADD COLUMN refunded_cents   bigint NOT NULL DEFAULT 0,
            ADD COLUMN card_last4       text CHECK (card_last4 ~ '^[0-9]{4}$'),
            ADD COLUMN customer         jsonb CHECK (jsonb_typeof(customer) = 'object'),
            ADD COLUMN reconcile_at     timestamptz,
            ADD COLUMN idempotency_claimed_at timestamptz,
            ADD CONSTRAINT orders_money_bound
                CHECK (0 <= refunded_cents AND refunded_cents <= captured_cents
                       AND captured_cents <= authorized_cents AND authorized_cents <= total_cents)
        """
    )
    # An idempotency key names one *claim* of it, not the order forever: after the key's TTL a new claim of
    # the same key (a new created_at in orders.idempotency_keys) is a new request and may make a new order.
    op.execute("ALTER TABLE orders.orders DROP CONSTRAINT orders_idempotency_key_key")
    op.execute(
        "CREATE UNIQUE INDEX orders_idempotency_claim"
        " ON orders.orders (idempotency_key, idempotency_claimed_at) NULLS NOT DISTINCT"
        " WHERE idempotency_key IS NOT NULL"
    )
    # The sweeper's and the reconciler's claims: each reads only the rows it may act on.
    op.execute(
        "CREATE INDEX orders_reservation_deadline ON orders.orders (expires_at)"
        " WHERE status IN ('PENDING', 'PAYMENT_FAILED')"
    )
    op.execute(
        "CREATE INDEX orders_reconcile_due ON orders.orders (reconcile_at) WHERE reconcile_at IS NOT NULL"
    )
    op.execute("CREATE INDEX orders_customer_email ON orders.orders ((customer ->> 'email'))")
    op.execute(
        """
        CREATE TABLE orders.refunds (
            id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            order_id          bigint NOT NULL REFERENCES orders.orders (id),
            amount_cents      bigint NOT NULL CHECK (amount_cents > 0),
            reason            text CHECK (length(reason) <= 500),
            idempotency_key   text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
            payment_refund_id bigint NOT NULL UNIQUE,
            created_at        timestamptz NOT NULL DEFAULT now(),
            UNIQUE (order_id, idempotency_key)
        )
        """
    )
    op.execute("GRANT SELECT, INSERT, UPDATE (reason, idempotency_key) ON orders.refunds TO orders_svc")


def downgrade() -> None:
    op.execute("DROP TABLE orders.refunds")
    op.execute("DROP INDEX orders.orders_customer_email")
    op.execute("DROP INDEX orders.orders_reconcile_due")
    op.execute("DROP INDEX orders.orders_reservation_deadline")
    op.execute("DROP INDEX orders.orders_idempotency_claim")
    op.execute(
        """
        ALTER TABLE orders.orders
            DROP CONSTRAINT orders_money_bound,
            DROP COLUMN idempotency_claimed_at, DROP COLUMN reconcile_at, DROP COLUMN customer,
            DROP COLUMN card_last4, DROP COLUMN refunded_cents, DROP COLUMN captured_cents,
            DROP COLUMN authorized_cents, DROP COLUMN expires_at, DROP COLUMN payment_id,
            ADD COLUMN charge_id bigint,
            ADD CONSTRAINT orders_idempotency_key_key UNIQUE (idempotency_key)
        """
    )
    op.execute(
        "UPDATE orders.orders SET status = CASE status WHEN 'AUTHORIZED' THEN 'PENDING'"
        " WHEN 'REFUNDED' THEN 'PAID' ELSE 'CANCELLED' END"
        " WHERE status IN ('AUTHORIZED', 'REFUNDED', 'EXPIRED')"
    )
    op.execute("ALTER TABLE orders.orders DROP CONSTRAINT orders_status_check")
    op.execute(
        "ALTER TABLE orders.orders ADD CONSTRAINT orders_status_check"
        " CHECK (status IN ('PENDING', 'PAID', 'PAYMENT_FAILED', 'CANCELLED'))"
    )
