from servicekit.testing import fuzz_openapi


async def test_no_generated_request_makes_payments_fail_or_break_its_contract(payments_url, db):
    last_charge = await db.fetchval("SELECT coalesce(max(id), 0) FROM payments.charges")
    try:
        exercised = fuzz_openapi(payments_url, max_examples=20)
    finally:
        # Generated charges name arbitrary order ids; tests run one at a time, so removing every charge made
        # since the start keeps them from meeting an order another test creates later.
        await db.execute("DELETE FROM payments.charges WHERE id > $1", last_charge)
    assert "POST /charges" in exercised
    assert "GET /charges/{charge_id}" in exercised
    assert "GET /charges" in exercised
