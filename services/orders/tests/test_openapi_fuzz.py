from servicekit.testing import fuzz_openapi


def test_no_generated_request_makes_orders_fail_or_break_its_contract(orders_url):
    exercised = fuzz_openapi(orders_url)
    assert "POST /orders" in exercised
    assert "POST /orders/{order_id}/cancel" in exercised
