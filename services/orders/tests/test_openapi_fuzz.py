from devstack.testing import fuzz_openapi


def test_no_generated_request_makes_orders_fail_or_break_its_contract(orders_url, as_gateway):
    exercised = fuzz_openapi(orders_url, headers=as_gateway)
    assert "POST /orders" in exercised
    assert "POST /orders/{order_id}/cancel" in exercised
