from devstack.testing import fuzz_openapi


async def test_no_generated_request_makes_notifications_fail_or_break_its_contract(
    notifications_url, as_gateway, db
):
    last_endpoint = await db.fetchval("SELECT coalesce(max(id), 0) FROM notifications.webhook_endpoints")
    try:
        exercised = fuzz_openapi(notifications_url, headers=as_gateway, max_examples=20)
    finally:
        # Endpoints the fuzzer managed to register must not receive later tests' events.
        await db.execute(
            "UPDATE notifications.webhook_endpoints SET deleted_at = now()"
            " WHERE id > $1 AND deleted_at IS NULL",
            last_endpoint,
        )
    assert set(exercised) >= {
        "GET /emails",
        "POST /webhooks/endpoints",
        "GET /webhooks/endpoints",
        "GET /webhooks/endpoints/{endpoint_id}",
        "DELETE /webhooks/endpoints/{endpoint_id}",
        "GET /webhooks/endpoints/{endpoint_id}/deliveries",
        "POST /webhooks/deliveries/{delivery_id}/redeliver",
        "GET /alerts",
        "GET /sales",
    }
