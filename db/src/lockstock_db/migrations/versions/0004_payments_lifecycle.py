"""payments lifecycle: payments (authorize, capture, void) and refunds replace charges

Revision ID: 0004_payments_lifecycle
Revises: 0003_auth
Depends on: 0002_payments (the payments schema and payments_svc)
"""

from alembic import op

revision = "0004_payments_lifecycle"
down_revision = "0003_auth"
branch_labels = None
# 0002 and 0003 both branch from 0001; this one changes 0002's schema, so it must run after it too.
depends_on = "0002_payments"


def upgrade() -> None:
    op.execute("DROP TABLE payments.charges")

    # A payment row is written 'pending' *before* the processor is asked, under the request's idempotency key
    # (UNIQUE): a request that dies after the processor answered leaves the row behind, and the retry with the
    # same key resumes that row instead of authorizing again. The card number itself is never stored: only the
    # brand and the last four digits.
    #
    # The money invariant (authorized >= captured >= refunded >= 0) is a CHECK on the row, so no interleaving
    # of conditional UPDATEs can ever break it. `pending_operation` marks a capture or void that was decided
    # and is being sent to the processor: whoever touches the payment next finishes it (same processor
    # reference), so a crash between the processor's answer and our UPDATE is resumed, never repeated.
    op.execute(
        """
        CREATE TABLE payments.payments (
            id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            order_id                 bigint NOT NULL CHECK (order_id > 0),
            amount_cents             bigint NOT NULL CHECK (amount_cents > 0),
            captured_cents           bigint NOT NULL DEFAULT 0,
            refunded_cents           bigint NOT NULL DEFAULT 0,
            status                   text NOT NULL DEFAULT 'pending' CHECK (status IN (
                                         'pending', 'authorized', 'declined', 'captured',
                                         'partially_refunded', 'refunded', 'voided')),
            failure_code             text CHECK ((status = 'declined') = (failure_code IS NOT NULL)),
            card_brand               text NOT NULL CHECK (length(card_brand) BETWEEN 1 AND 20),
            card_last4               text NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
            idempotency_key          text NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
            pending_operation        text CHECK (pending_operation IN ('capture', 'void')),
            authorization_expires_at timestamptz,
            created_at               timestamptz NOT NULL DEFAULT now(),
            updated_at               timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT payments_money CHECK (
                amount_cents >= captured_cents AND captured_cents >= refunded_cents AND refunded_cents >= 0),
            CONSTRAINT payments_expiry_once_authorized CHECK (
                (authorization_expires_at IS NULL) = (status IN ('pending', 'declined'))),
            CONSTRAINT payments_captured_by_status CHECK (
                (captured_cents > 0) = (status IN ('captured', 'partially_refunded', 'refunded'))),
            CONSTRAINT payments_pending_operation_on_authorized CHECK (
                pending_operation IS NULL OR status = 'authorized')
        )
        """
    )
    op.execute("CREATE INDEX payments_order ON payments.payments (order_id, id)")

    # A refund reserves its amount on the payment (refunded_cents) in the statement that inserts it
    # 'pending', before the processor is asked; the processor's answer makes it 'succeeded'. The retry with
    # the same key finds the pending row and resumes it.
    op.execute(
        """
        CREATE TABLE payments.refunds (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            payment_id      bigint NOT NULL REFERENCES payments.payments (id),
            amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
            status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded')),
            idempotency_key text NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 255),
            created_at      timestamptz NOT NULL DEFAULT now(),
            succeeded_at    timestamptz
        )
        """
    )
    op.execute("CREATE INDEX refunds_payment ON payments.refunds (payment_id, id)")

    # Least privilege: rows are never deleted, and only the columns a transition moves may be updated.
    op.execute("GRANT SELECT, INSERT ON payments.payments, payments.refunds TO payments_svc")
    op.execute(
        """
        GRANT UPDATE (status, failure_code, captured_cents, refunded_cents, pending_operation,
                      authorization_expires_at, updated_at)
           ON payments.payments TO payments_svc
        """
    )
    op.execute("GRANT UPDATE (status, succeeded_at) ON payments.refunds TO payments_svc")


def downgrade() -> None:
    op.execute("DROP TABLE payments.refunds")
    op.execute("DROP TABLE payments.payments")
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
    op.execute(
        """
        CREATE UNIQUE INDEX charges_one_live_per_order ON payments.charges (order_id)
         WHERE status IN ('pending', 'succeeded')
        """
    )
    op.execute("GRANT SELECT, INSERT ON payments.charges TO payments_svc")
    op.execute("GRANT UPDATE (status, failure_code, decided_at) ON payments.charges TO payments_svc")
