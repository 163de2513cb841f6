import httpx


async def test_admin_token_reads_admin_only_orders(gateway_url: str, admin_token: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ orders(first: 1) { nodes { id } pageInfo { hasNextPage } } }"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    assert response.status_code == 200
    assert "errors" not in response.json(), response.json()
    assert response.headers["x-request-id"]
