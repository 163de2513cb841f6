from servicekit.testing import fuzz_openapi


def test_no_generated_request_makes_inventory_fail_or_break_its_contract(inventory_url):
    exercised = fuzz_openapi(inventory_url)
    assert "PATCH /products/{product_id}/stock" in exercised
