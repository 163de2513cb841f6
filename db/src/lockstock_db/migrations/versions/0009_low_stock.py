"""Low-stock thresholds (issue 14, seed 002): inventory.products.low_stock_threshold, orders.place_orders()
writing stock.low for the products a batch takes across it, and what the worker needs to prune the outbox

Revision ID: 0009_low_stock
Revises: 0008_order_events
"""

from importlib import import_module

from alembic import op

revision = "0009_low_stock"
down_revision = "0008_order_events"
branch_labels = None
depends_on = None

SIGNATURE = "orders.place_orders(integer[], bigint[], integer[], text[], text[], float8)"


def upgrade() -> None:
    # NULL: the product raises no alert. Inventory owns the column; orders reads it under the row lock it
    # already takes (its grant is SELECT on the table and UPDATE on stock_qty alone, so it cannot set one).
    op.execute(
        """
        ALTER TABLE inventory.products
          ADD COLUMN low_stock_threshold integer
              CONSTRAINT products_low_stock_threshold_check CHECK (low_stock_threshold >= 0)
        """
    )

    # Outbox pruning (notifications.worker): old dispatched events, oldest first, found by the index; their
    # jobs and webhook deliveries (which reference them) are found by event_pk, and the worker may delete.
    op.execute(
        "CREATE INDEX events_dispatched ON outbox.events (occurred_at, id) WHERE dispatched_at IS NOT NULL"
    )
    op.execute("CREATE INDEX jobs_event ON notifications.jobs (event_pk)")
    op.execute("CREATE INDEX deliveries_event ON notifications.webhook_deliveries (event_pk)")
    op.execute("GRANT DELETE ON outbox.events TO notifications_svc")

    # The function of 0008, unchanged but for the thresholds read in step 1 and step 3c. CREATE OR REPLACE
    # keeps its owner and grants.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION orders.place_orders(
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
            orders_n     integer := COALESCE(cardinality(line_counts), 0);
            locked_ids   bigint[];
            stock        integer[];   -- as locked
            prices       bigint[];
            thresholds   integer[];   -- each product's low_stock_threshold, as locked (NULL: no alerting)
            taken        integer[];   -- by the accepted orders so far
            waited       float8;
            first_line   integer := 1;
            last_line    integer;
            pos          integer;
            ok           boolean;
            total        bigint;
            claimed      timestamptz;
            existing     record;
            refusal      json;
            -- per order, in arrival order
            accepted_as  integer[] := array_fill(NULL::integer, ARRAY[orders_n]);  -- k: the k-th accepted
            refusals     json[] := array_fill(NULL::json, ARRAY[orders_n]);
            replay_ids   bigint[] := array_fill(NULL::bigint, ARRAY[orders_n]);    -- an earlier order
            replay_status text[] := array_fill(NULL::text, ARRAY[orders_n]);
            replay_total bigint[] := array_fill(NULL::bigint, ARRAY[orders_n]);
            replay_until timestamptz[] := array_fill(NULL::timestamptz, ARRAY[orders_n]);
            -- per accepted order, and per line of the accepted orders
            new_totals   bigint[] := '{}';
            new_keys     text[] := '{}';
            new_claims   timestamptz[] := '{}';
            new_customers text[] := '{}';
            item_of      integer[] := '{}';
            item_product bigint[] := '{}';
            item_qty     integer[] := '{}';
            item_price   bigint[] := '{}';
            new_ids      bigint[];
            new_until    timestamptz[];
        BEGIN
            -- 1. Lock the union of the batch's products once, in ascending id order (as every statement
            --    that takes or gives back stock does, so batches and single orders never deadlock).
            SELECT COALESCE(array_agg(l.id ORDER BY l.id), '{}'),
                   COALESCE(array_agg(l.stock_qty ORDER BY l.id), '{}'),
                   COALESCE(array_agg(l.price_cents ORDER BY l.id), '{}'),
                   COALESCE(array_agg(l.low_stock_threshold ORDER BY l.id), '{}')
              INTO locked_ids, stock, prices, thresholds
              FROM (SELECT p.id, p.stock_qty, p.price_cents, p.low_stock_threshold
                      FROM inventory.products AS p
                     WHERE p.id = ANY (product_ids)
                     ORDER BY p.id
                       FOR UPDATE) AS l;
            waited := EXTRACT(epoch FROM clock_timestamp() - statement_timestamp());
            taken := array_fill(0, ARRAY[cardinality(locked_ids)]);

            -- 2. Decide each order on its own, all or nothing, in arrival order, against what the earlier
            --    orders of the batch left. Only decisions here: the rows are written set-wise below.
            FOR n IN 1 .. orders_n LOOP
                last_line := first_line + line_counts[n] - 1;
                claimed := NULL;
                IF idempotency_keys[n] IS NOT NULL THEN
                    SELECT k.created_at INTO claimed
                      FROM orders.idempotency_keys AS k WHERE k.key = idempotency_keys[n];
                    -- The claim already made its order (a recovered claim, or the same claim earlier in this
                    -- batch): that order is the answer, and nothing more is taken.
                    SELECT o.id, o.status, o.total_cents,
                           CASE WHEN o.status IN ('PENDING', 'PAYMENT_FAILED') THEN o.expires_at END
                             AS expires_at
                      INTO existing
                      FROM orders.orders AS o
                     WHERE o.idempotency_key = idempotency_keys[n]
                       AND o.idempotency_claimed_at IS NOT DISTINCT FROM claimed;
                    IF FOUND THEN
                        replay_ids[n] := existing.id;
                        replay_status[n] := existing.status;
                        replay_total[n] := existing.total_cents;
                        replay_until[n] := existing.expires_at;
                        first_line := last_line + 1;
                        CONTINUE;
                    END IF;
                    FOR k IN 1 .. cardinality(new_keys) LOOP
                        IF new_keys[k] = idempotency_keys[n]
                           AND new_claims[k] IS NOT DISTINCT FROM claimed THEN
                            accepted_as[n] := -k;  -- a replay of the k-th accepted order of this batch
                        END IF;
                    END LOOP;
                    IF accepted_as[n] IS NOT NULL THEN
                        first_line := last_line + 1;
                        CONTINUE;
                    END IF;
                END IF;

                ok := true;
                FOR i IN first_line .. last_line LOOP
                    pos := array_position(locked_ids, product_ids[i]);
                    IF pos IS NULL OR stock[pos] - taken[pos] < qtys[i] THEN
                        ok := false;
                        EXIT;
                    END IF;
                END LOOP;

                IF ok THEN
                    total := 0;
                    FOR i IN first_line .. last_line LOOP
                        pos := array_position(locked_ids, product_ids[i]);
                        taken[pos] := taken[pos] + qtys[i];
                        total := total + qtys[i] * prices[pos];
                        item_of := item_of || (cardinality(new_totals) + 1);
                        item_product := item_product || product_ids[i];
                        item_qty := item_qty || qtys[i];
                        item_price := item_price || prices[pos];
                    END LOOP;
                    new_totals := new_totals || total;
                    new_keys := new_keys || idempotency_keys[n];
                    new_claims := new_claims || claimed;
                    new_customers := new_customers || customers[n];
                    accepted_as[n] := cardinality(new_totals);
                ELSE
                    -- Each line's request and what was left for this order (NULL: no such product).
                    SELECT json_agg(json_build_object(
                               'product_id', product_ids[g.line], 'requested', qtys[g.line],
                               'available', stock[array_position(locked_ids, product_ids[g.line])]
                                            - taken[array_position(locked_ids, product_ids[g.line])])
                               ORDER BY g.line)
                      INTO refusal
                      FROM generate_series(first_line, last_line) AS g (line);
                    refusals[n] := refusal;
                END IF;
                first_line := last_line + 1;
            END LOOP;

            -- 3. Write: the accepted orders in one INSERT (an identity hands out ascending ids in the order
            --    rows are inserted, so the k-th id is the k-th accepted order's), their lines in another,
            --    and each product's stock decremented once by what the whole batch took.
            WITH inserted AS (
                INSERT INTO orders.orders AS o
                       (status, total_cents, idempotency_key, idempotency_claimed_at, expires_at, customer)
                SELECT 'PENDING', a.total, a.key, a.claimed, now() + make_interval(secs => reservation_s),
                       CAST(a.customer AS jsonb)
                  FROM unnest(new_totals, new_keys, new_claims, new_customers) WITH ORDINALITY
                       AS a (total, key, claimed, customer, k)
                 ORDER BY a.k
                RETURNING o.id, o.expires_at
            )
            SELECT COALESCE(array_agg(i.id ORDER BY i.id), '{}'),
                   COALESCE(array_agg(i.expires_at ORDER BY i.id), '{}')
              INTO new_ids, new_until
              FROM inserted AS i;
            INSERT INTO orders.order_items (order_id, product_id, qty, price_cents)
            SELECT new_ids[l.k], l.product_id, l.qty, l.price
              FROM unnest(item_of, item_product, item_qty, item_price) AS l (k, product_id, qty, price);
            UPDATE inventory.products AS p
               SET stock_qty = p.stock_qty - t.qty
              FROM unnest(locked_ids, taken) AS t (id, qty)
             WHERE p.id = t.id AND t.qty > 0;

            -- 3b. Each accepted order's order.placed event, in the order's arrival order (so in id order),
            --     in this same statement: the event exists if and only if the order does (docs/events.md).
            INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
            SELECT 'order.placed', 'order', new_ids[a.k],
                   jsonb_build_object(
                       'order_id', new_ids[a.k],
                       'total_cents', a.total,
                       'items', (SELECT jsonb_agg(jsonb_build_object('product_id', l.product_id, 'qty', l.qty,
                                                                     'price_cents', l.price, 'name', p.name)
                                                  ORDER BY l.product_id)
                                   FROM unnest(item_of, item_product, item_qty, item_price)
                                        AS l (k, product_id, qty, price)
                                   JOIN inventory.products AS p ON p.id = l.product_id
                                  WHERE l.k = a.k),
                       'customer', CAST(a.customer AS jsonb),
                       'expires_at', new_until[a.k])
              FROM unnest(new_totals, new_customers) WITH ORDINALITY AS a (total, customer, k)
             ORDER BY a.k;

            -- 3c. A product the batch took from its threshold's right side to at or below it writes one
            --     stock.low, in this same statement. The lock is held from step 1, so "above before, at or
            --     below after" is true for exactly one statement of all those queued on the row: however
            --     many orders cross together, in one batch or in many, the crossing is written once.
            INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
            SELECT 'stock.low', 'product', t.pid,
                   jsonb_build_object('product_id', t.pid, 'name', p.name,
                                      'stock_qty', t.stock_before - t.took, 'threshold', t.low_at)
              FROM unnest(locked_ids, stock, taken, thresholds) AS t (pid, stock_before, took, low_at)
              JOIN inventory.products AS p ON p.id = t.pid
             WHERE t.low_at IS NOT NULL AND t.stock_before > t.low_at AND t.stock_before - t.took <= t.low_at
             ORDER BY t.pid;

            -- 4. One row per order, in arrival order.
            RETURN QUERY
            SELECT n - 1,
                   COALESCE(replay_ids[n], new_ids[abs(accepted_as[n])]),
                   CASE WHEN replay_ids[n] IS NOT NULL THEN replay_status[n]
                        WHEN accepted_as[n] IS NOT NULL THEN 'PENDING' END,
                   COALESCE(replay_total[n], new_totals[abs(accepted_as[n])]),
                   CASE WHEN replay_ids[n] IS NOT NULL THEN replay_until[n]
                        ELSE new_until[abs(accepted_as[n])] END,
                   refusals[n],
                   replay_ids[n] IS NOT NULL OR COALESCE(accepted_as[n] < 0, false),
                   waited
              FROM generate_series(1, orders_n) AS n;
        END
        $$
        """
    )


def downgrade() -> None:
    # Back to 0008's function (same signature, so it simply replaces this one), then the rest.
    import_module("lockstock_db.migrations.versions.0008_order_events").upgrade()
    op.execute("REVOKE DELETE ON outbox.events FROM notifications_svc")
    op.execute("DROP INDEX notifications.deliveries_event")
    op.execute("DROP INDEX notifications.jobs_event")
    op.execute("DROP INDEX outbox.events_dispatched")
    op.execute("ALTER TABLE inventory.products DROP COLUMN low_stock_threshold")
