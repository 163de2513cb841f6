from devstack.testing import fuzz_openapi


def test_no_generated_request_makes_inventory_fail_or_break_its_contract(inventory_url, as_gateway):
    exercised = fuzz_openapi(inventory_url, headers=as_gateway)
    assert "PATCH /products/{product_id}/stock" in exercised
