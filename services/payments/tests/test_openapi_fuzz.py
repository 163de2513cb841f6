from devstack.testing import fuzz_openapi


async def test_no_generated_request_makes_payments_fail_or_break_its_contract(payments_url, as_orders, db):
    last_payment = await db.fetchval("SELECT coalesce(max(id), 0) FROM payments.payments")
    try:
        exercised = fuzz_openapi(payments_url, headers=as_orders, max_examples=20)
    finally:
        # Generated payments name arbitrary order ids; tests run one at a time, so removing every payment
        # made since the start keeps them from meeting an order another test creates later.
        await db.execute("DELETE FROM payments.refunds WHERE payment_id > $1", last_payment)
        await db.execute("DELETE FROM payments.payments WHERE id > $1", last_payment)
    assert set(exercised) >= {
        "POST /payments",
        "POST /payments/{payment_id}/capture",
        "POST /payments/{payment_id}/void",
        "POST /payments/{payment_id}/refunds",
        "GET /payments/{payment_id}",
        "GET /payments",
    }
