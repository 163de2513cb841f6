"""outbox schema (events written by the producers in their own transactions), the notifications schema of the
worker (jobs per consumer, emails, webhook endpoints and deliveries, low-stock alerts, daily sales), and the
notifications_svc role

Revision ID: 0006_events
Revises: 0005_orders_lifecycle
"""

from alembic import op

from lockstock_db.migration_helpers import create_login_role

revision = "0006_events"
down_revision = "0005_orders_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_login_role("notifications_svc")

    # The outbox: a producer inserts its event in the same statement (or at least the same transaction) as
    # the change it describes, so an event exists if and only if the change committed. See ADR 0006.
    op.execute("CREATE SCHEMA outbox")
    op.execute(
        """
        CREATE TABLE outbox.events (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id      uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
            type          text NOT NULL CHECK (type ~ '^[a-z]+\\.[a-z_]+$'),
            version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
            aggregate     text NOT NULL CHECK (aggregate ~ '^[a-z_]+$'),
            aggregate_id  bigint NOT NULL,
            occurred_at   timestamptz NOT NULL DEFAULT now(),
            data          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
            -- Set by the worker when it has fanned the event out to its consumers' jobs.
            dispatched_at timestamptz,
            -- Set by the optional NATS JetStream relay once the stream acknowledged the event.
            published_at  timestamptz
        )
        """
    )
    op.execute("CREATE INDEX events_undispatched ON outbox.events (id) WHERE dispatched_at IS NULL")
    op.execute("CREATE INDEX events_unpublished ON outbox.events (id) WHERE published_at IS NULL")
    op.execute("CREATE INDEX events_aggregate ON outbox.events (aggregate, aggregate_id, id)")
    # Wake the worker (LISTEN outbox) once per inserting statement, whoever inserted: producers need not
    # know about the worker. NOTIFY is transactional: it is delivered at commit, never for a rollback.
    op.execute(
        """
        CREATE FUNCTION outbox.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('outbox', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_notify AFTER INSERT ON outbox.events
        FOR EACH STATEMENT EXECUTE FUNCTION outbox.notify_events()
        """
    )

    op.execute("CREATE SCHEMA notifications AUTHORIZATION notifications_svc")
    # One row per (consumer, event): the job, and once done, the record of its effect. A consumer's effect
    # and the flip of its row to 'done' commit together, so a job that runs twice takes effect once.
    op.execute(
        """
        CREATE TABLE notifications.jobs (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            consumer     text NOT NULL,
            event_pk     bigint NOT NULL REFERENCES outbox.events (id),
            event_id     uuid NOT NULL,
            type         text NOT NULL,
            aggregate    text NOT NULL,
            aggregate_id bigint NOT NULL,
            state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
            attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            run_at       timestamptz NOT NULL DEFAULT now(),
            locked_until timestamptz,
            locked_by    text,
            effect       text,
            last_error   text,
            created_at   timestamptz NOT NULL DEFAULT now(),
            done_at      timestamptz,
            UNIQUE (consumer, event_id)
        )
        """
    )
    op.execute("CREATE INDEX jobs_due ON notifications.jobs (consumer, event_pk) WHERE state = 'pending'")
    op.execute(
        """
        CREATE INDEX jobs_pending_per_aggregate
            ON notifications.jobs (consumer, aggregate, aggregate_id, event_pk)
         WHERE state = 'pending'
        """
    )
    op.execute(
        """
        CREATE TABLE notifications.emails (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id    uuid NOT NULL UNIQUE,
            message_id  text NOT NULL UNIQUE,
            kind        text NOT NULL,
            to_address  text NOT NULL,
            subject     text NOT NULL,
            text_body   text NOT NULL,
            html_body   text NOT NULL,
            sent_at     timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX emails_sent ON notifications.emails (sent_at DESC, id DESC)")
    # The signing secret is kept as the key it is (it must be, to sign): the API shows it once, on creation,
    # and never again. Deleting an endpoint only disables it, so its delivery log stays readable.
    op.execute(
        """
        CREATE TABLE notifications.webhook_endpoints (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
            event_types text[] NOT NULL CHECK (cardinality(event_types) >= 1),
            description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
            secret      text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            deleted_at  timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notifications.webhook_deliveries (
            id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            endpoint_id        bigint NOT NULL REFERENCES notifications.webhook_endpoints (id),
            event_pk           bigint NOT NULL REFERENCES outbox.events (id),
            event_id           uuid NOT NULL,
            type               text NOT NULL,
            aggregate          text NOT NULL,
            aggregate_id       bigint NOT NULL,
            status             text NOT NULL DEFAULT 'pending'
                               CHECK (status IN ('pending', 'succeeded', 'failed')),
            attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            -- Failures since the last success or redelivery: the position in the retry schedule.
            failures           integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
            next_attempt_at    timestamptz NOT NULL DEFAULT now(),
            locked_until       timestamptz,
            last_response_code integer,
            last_error         text,
            created_at         timestamptz NOT NULL DEFAULT now(),
            updated_at         timestamptz NOT NULL DEFAULT now(),
            completed_at       timestamptz,
            UNIQUE (endpoint_id, event_id)
        )
        """
    )
    op.execute(
        """
        CREATE INDEX deliveries_due ON notifications.webhook_deliveries (next_attempt_at, event_pk)
         WHERE status = 'pending'
        """
    )
    op.execute(
        """
        CREATE INDEX deliveries_pending_per_aggregate
            ON notifications.webhook_deliveries (endpoint_id, aggregate, aggregate_id, event_pk)
         WHERE status = 'pending'
        """
    )
    op.execute("CREATE INDEX deliveries_endpoint ON notifications.webhook_deliveries (endpoint_id, id DESC)")
    op.execute(
        """
        CREATE TABLE notifications.webhook_attempts (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            delivery_id   bigint NOT NULL REFERENCES notifications.webhook_deliveries (id),
            attempt       integer NOT NULL CHECK (attempt >= 1),
            attempted_at  timestamptz NOT NULL,
            duration_ms   integer NOT NULL,
            response_code integer,
            error         text,
            outcome       text NOT NULL CHECK (outcome IN ('succeeded', 'retrying', 'failed')),
            UNIQUE (delivery_id, attempt)
        )
        """
    )
    # At most one open alert per product, whatever races: the unique index is the last word on "once".
    op.execute(
        """
        CREATE TABLE notifications.low_stock_alerts (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            product_id      bigint NOT NULL,
            product_name    text NOT NULL,
            threshold       integer NOT NULL,
            stock_at_open   integer NOT NULL,
            opened_at       timestamptz NOT NULL,
            opened_event_id uuid NOT NULL,
            stock_at_close  integer,
            closed_at       timestamptz,
            closed_event_id uuid
        )
        """
    )
    op.execute(
        """
        CREATE UNIQUE INDEX low_stock_alerts_one_open ON notifications.low_stock_alerts (product_id)
         WHERE closed_at IS NULL
        """
    )
    op.execute(
        """
        CREATE TABLE notifications.sales_daily (
            day           date NOT NULL,
            product_id    bigint NOT NULL,
            units         bigint NOT NULL DEFAULT 0,
            revenue_cents bigint NOT NULL DEFAULT 0,
            refunds_cents bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (day, product_id)
        )
        """
    )
    op.execute("ALTER TABLE notifications.jobs OWNER TO notifications_svc")
    for table in (
        "emails",
        "webhook_endpoints",
        "webhook_deliveries",
        "webhook_attempts",
        "low_stock_alerts",
        "sales_daily",
    ):
        op.execute(f"ALTER TABLE notifications.{table} OWNER TO notifications_svc")

    # Least privilege: producers may only append events (never read, change or delete them); the worker
    # reads them and sets its two markers, and owns its own schema.
    op.execute("GRANT USAGE ON SCHEMA outbox TO orders_svc, inventory_svc, notifications_svc")
    op.execute("GRANT INSERT ON outbox.events TO orders_svc, inventory_svc")
    op.execute("GRANT SELECT, UPDATE (dispatched_at, published_at) ON outbox.events TO notifications_svc")
    # The jobs' foreign keys point at outbox.events: the referencing owner needs REFERENCES on it.
    op.execute("GRANT REFERENCES ON outbox.events TO notifications_svc")


def downgrade() -> None:
    op.execute("DROP SCHEMA notifications CASCADE")
    op.execute("DROP SCHEMA outbox CASCADE")
