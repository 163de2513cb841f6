"""inventory and orders schemas, their tables, and one least-privilege login role per service

Revision ID: 0001_inventory_and_orders
Revises:
"""

from alembic import op

from lockstock_db.migration_helpers import create_idempotency_keys_table, create_login_role

revision = "0001_inventory_and_orders"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_login_role("inventory_svc")
    create_login_role("orders_svc")

    op.execute("CREATE SCHEMA inventory")
    op.execute(
        """
        CREATE TABLE inventory.products (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            price_cents bigint NOT NULL CHECK (price_cents >= 0),
            stock_qty   integer NOT NULL CHECK (stock_qty >= 0),
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )

    op.execute("CREATE SCHEMA orders")
    op.execute(
        """
        CREATE TABLE orders.orders (
            id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            status               text NOT NULL DEFAULT 'PENDING'
                                 CHECK (status IN ('PENDING', 'PAID', 'PAYMENT_FAILED', 'CANCELLED')),
            total_cents          bigint NOT NULL CHECK (total_cents >= 0),
            idempotency_key      text UNIQUE,
            payment_attempts     integer NOT NULL DEFAULT 0,
            charge_id            bigint,
            payment_failure_code text,
            created_at           timestamptz NOT NULL DEFAULT now(),
            updated_at           timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX orders_status_id ON orders.orders (status, id)")
    op.execute(
        """
        CREATE TABLE orders.order_items (
            order_id    bigint NOT NULL REFERENCES orders.orders (id),
            product_id  bigint NOT NULL REFERENCES inventory.products (id),
            qty         integer NOT NULL CHECK (qty > 0),
            price_cents bigint NOT NULL CHECK (price_cents >= 0),
            PRIMARY KEY (order_id, product_id)
        )
        """
    )
    op.execute("CREATE INDEX order_items_product ON orders.order_items (product_id)")
    create_idempotency_keys_table("orders")

    # Least privilege. Inventory owns its products. Orders reads products and may change only stock_qty
    # (and lock rows, which needs UPDATE on some column); it can never touch a name or a price.
    op.execute("GRANT USAGE ON SCHEMA inventory TO inventory_svc, orders_svc")
    op.execute("GRANT SELECT, INSERT, UPDATE ON inventory.products TO inventory_svc")
    op.execute("GRANT SELECT, UPDATE (stock_qty) ON inventory.products TO orders_svc")
    op.execute("GRANT USAGE ON SCHEMA orders TO orders_svc")
    op.execute("GRANT SELECT, INSERT, UPDATE ON orders.orders, orders.order_items TO orders_svc")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON orders.idempotency_keys TO orders_svc")


def downgrade() -> None:
    op.execute("DROP SCHEMA orders CASCADE")
    op.execute("DROP SCHEMA inventory CASCADE")
