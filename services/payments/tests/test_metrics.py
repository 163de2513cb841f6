import uuid

import httpx


def test_charges_are_counted_by_outcome(payments_url):
    def charge(amount: int) -> None:
        response = httpx.post(
            f"{payments_url}/charges",
            json={"order_id": 990_000_000 + amount, "amount_cents": amount},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 201, response.text

    before = httpx.get(f"{payments_url}/metrics").text
    charge(1_002)  # the test card amount that is declined as card_declined
    after = httpx.get(f"{payments_url}/metrics").text

    def value(text: str, series: str) -> float:
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    series = 'lockstock_charges_total{outcome="card_declined"}'
    assert value(after, series) == value(before, series) + 1
