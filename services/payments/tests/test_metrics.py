def metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def test_authorizations_captures_voids_and_refunds_are_counted(api):
    series = [
        'lockstock_payment_authorizations_total{outcome="card_declined"}',
        'lockstock_payment_authorizations_total{outcome="authorized"}',
        "lockstock_payment_captures_total",
        "lockstock_payment_voids_total",
        "lockstock_payment_refunds_total",
        "lockstock_payment_refunded_cents_total",
    ]
    before = (await api.client.get("/metrics")).text

    await api.authorize(card_number=api.DECLINED_CARD)
    captured = await api.captured(1_000)
    await api.capture(captured["payment_id"])  # answered as it is: not a second capture
    await api.refund(captured["payment_id"], 300)
    await api.void((await api.authorized())["payment_id"])

    after = (await api.client.get("/metrics")).text
    increments = [metric(after, name) - metric(before, name) for name in series]
    assert increments == [1, 2, 1, 1, 1, 300]
