"""orders.place_orders(): a batch of orders decided one by one, in arrival order, in one statement (the group
commit of POST /orders, ORDERS_PLACEMENT=batched; see orders.repository.PLACE_ORDERS)

Revision ID: 0007_place_orders_batch
Revises: 0006_events
"""

from alembic import op

revision = "0007_place_orders_batch"
down_revision = "0006_events"
branch_labels = None
depends_on = None

SIGNATURE = "orders.place_orders(integer[], bigint[], integer[], text[], text[], float8)"


def upgrade() -> None:
    # SECURITY INVOKER (the default): the function can do nothing its caller's role could not do statement by
    # statement. Each order's lines are contiguous in the line arrays, line_counts[n] of them for order n.
    op.execute(
        """
        CREATE FUNCTION orders.place_orders(
            line_counts      integer[],
            product_ids      bigint[],
            qtys             integer[],
            idempotency_keys text[],
            customers        text[],
            reservation_s    float8
        ) RETURNS TABLE (
            order_index   integer,
            order_id      bigint,
            status        text,
            total_cents   bigint,
            expires_at    timestamptz,
            refused_lines json,
            replayed      boolean,
            lock_wait_s   float8
        )
        LANGUAGE plpgsql
        AS $$
        #variable_conflict use_column
        DECLARE
            locked_ids bigint[];
            stock      integer[];   -- as locked
            prices     bigint[];
            taken      integer[];   -- by the accepted orders so far
            waited     float8;
            first_line integer := 1;
            last_line  integer;
            pos        integer;
            ok         boolean;
            total      bigint;
            claimed    timestamptz;
            new_id     bigint;
            existing   record;
        BEGIN
            -- 1. Lock the union of the batch's products once, in ascending id order (as every statement
            --    that takes or gives back stock does, so batches and single orders never deadlock).
            SELECT COALESCE(array_agg(l.id ORDER BY l.id), '{}'),
                   COALESCE(array_agg(l.stock_qty ORDER BY l.id), '{}'),
                   COALESCE(array_agg(l.price_cents ORDER BY l.id), '{}')
              INTO locked_ids, stock, prices
              FROM (SELECT p.id, p.stock_qty, p.price_cents
                      FROM inventory.products AS p
                     WHERE p.id = ANY (product_ids)
                     ORDER BY p.id
                       FOR UPDATE) AS l;
            waited := EXTRACT(epoch FROM clock_timestamp() - statement_timestamp());
            taken := array_fill(0, ARRAY[cardinality(locked_ids)]);

            -- 2. Decide each order on its own, all or nothing, in arrival order, against what the earlier
            --    orders of the batch left.
            FOR n IN 1 .. COALESCE(cardinality(line_counts), 0) LOOP
                last_line := first_line + line_counts[n] - 1;
                order_index := n - 1;
                lock_wait_s := waited;
                replayed := false;
                claimed := NULL;
                IF idempotency_keys[n] IS NOT NULL THEN
                    SELECT k.created_at INTO claimed
                      FROM orders.idempotency_keys AS k WHERE k.key = idempotency_keys[n];
                    -- The claim already made its order (a recovered claim, or the same claim twice in this
                    -- batch): that order is the answer, and nothing more is taken.
                    SELECT o.id, o.status, o.total_cents,
                           CASE WHEN o.status IN ('PENDING', 'PAYMENT_FAILED') THEN o.expires_at END
                             AS expires_at
                      INTO existing
                      FROM orders.orders AS o
                     WHERE o.idempotency_key = idempotency_keys[n]
                       AND o.idempotency_claimed_at IS NOT DISTINCT FROM claimed;
                    IF FOUND THEN
                        order_id := existing.id;
                        status := existing.status;
                        total_cents := existing.total_cents;
                        expires_at := existing.expires_at;
                        refused_lines := NULL;
                        replayed := true;
                        RETURN NEXT;
                        first_line := last_line + 1;
                        CONTINUE;
                    END IF;
                END IF;

                ok := true;
                FOR i IN first_line .. last_line LOOP
                    pos := array_position(locked_ids, product_ids[i]);
                    IF pos IS NULL OR stock[pos] - taken[pos] < qtys[i] THEN
                        ok := false;
                    END IF;
                END LOOP;

                IF ok THEN
                    total := 0;
                    FOR i IN first_line .. last_line LOOP
                        pos := array_position(locked_ids, product_ids[i]);
                        taken[pos] := taken[pos] + qtys[i];
                        total := total + qtys[i] * prices[pos];
                    END LOOP;
                    INSERT INTO orders.orders AS o
                           (status, total_cents, idempotency_key, idempotency_claimed_at, expires_at,
                            customer)
                    VALUES ('PENDING', total, idempotency_keys[n], claimed,
                            now() + make_interval(secs => reservation_s), CAST(customers[n] AS jsonb))
                    RETURNING o.id, o.expires_at INTO new_id, expires_at;
                    INSERT INTO orders.order_items (order_id, product_id, qty, price_cents)
                    SELECT new_id, product_ids[g.line], qtys[g.line],
                           prices[array_position(locked_ids, product_ids[g.line])]
                      FROM generate_series(first_line, last_line) AS g (line);
                    order_id := new_id;
                    status := 'PENDING';
                    total_cents := total;
                    refused_lines := NULL;
                ELSE
                    -- Each line's request and what was left for this order (NULL: no such product).
                    SELECT json_agg(json_build_object(
                               'product_id', product_ids[g.line], 'requested', qtys[g.line],
                               'available', stock[array_position(locked_ids, product_ids[g.line])]
                                            - taken[array_position(locked_ids, product_ids[g.line])])
                               ORDER BY g.line)
                      INTO refused_lines
                      FROM generate_series(first_line, last_line) AS g (line);
                    order_id := NULL;
                    status := NULL;
                    total_cents := NULL;
                    expires_at := NULL;
                END IF;
                RETURN NEXT;
                first_line := last_line + 1;
            END LOOP;

            -- 3. Take the stock: one UPDATE per product, whatever the number of orders that bought it.
            UPDATE inventory.products AS p
               SET stock_qty = p.stock_qty - t.qty
              FROM unnest(locked_ids, taken) AS t (id, qty)
             WHERE p.id = t.id AND t.qty > 0;
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO orders_svc")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
