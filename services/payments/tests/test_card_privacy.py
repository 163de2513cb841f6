"""The card number is used once, to ask the processor, and is never stored and never logged: searched for in
every payments table and in every log line, after the paths that write or log the most (authorize, decline,
capture, refund, void, refusals, a silent processor and a processor that crashes)."""

from devstack.testing import log_events
from payments.processor import ProcessorUnreachable, SimulatedProcessor


class FlakyProcessor(SimulatedProcessor):
    """Answers nothing for the first call, then crashes (a bug), then behaves."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def authorize(self, authorization, card, amount_cents):
        self.calls += 1
        if self.calls == 1:
            raise ProcessorUnreachable("no answer")
        if self.calls == 2:
            raise RuntimeError("processor bug")
        return await super().authorize(authorization, card, amount_cents)


def spellings(number: str) -> list[str]:
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return [number, " ".join(groups), "-".join(groups)]


async def stored_text(db) -> list[str]:
    """Every value of every row of every table in the payments schema, as text (bytea decoded)."""
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'payments'"
    )
    values = []
    for table in tables:
        for row in await db.fetch(f'SELECT * FROM payments."{table["table_name"]}"'):
            for value in row.values():
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                values.append(str(value))
    return values


async def test_no_full_card_number_in_any_table_or_log_line(controlled, controlled_api, db, server_logs):
    api = controlled_api
    controlled.processor = FlakyProcessor()
    good, declined = api.luhn_card("4"), "4000000000000002"
    invalid = good[:-1] + str((int(good[-1]) + 1) % 10)  # one digit off: fails Luhn
    order_id, key = api.new_order_id(), api.new_key()

    assert (await api.authorize(order_id=order_id, card_number=good, key=key)).status_code == 503
    assert (await api.authorize(order_id=order_id, card_number=good, key=key)).status_code == 500
    payment = (await api.authorize(order_id=order_id, card_number=good, key=key)).json()
    assert payment["status"] == "authorized"
    replay = await api.authorize(order_id=order_id, card_number=spellings(good)[1], key=key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert (await api.authorize(card_number=declined)).json()["status"] == "declined"
    assert (await api.authorize(card_number=invalid)).json()["code"] == "invalid_card"
    too_long = await api.authorize(card_number=good * 5)
    assert too_long.json()["code"] == "validation_error"
    assert (await api.authorize(order_id=order_id, card_number=declined, key=key)).status_code == 422
    await api.capture(payment["payment_id"])
    await api.refund(payment["payment_id"], 100)
    await api.void(payment["payment_id"])
    answers = [replay.text, too_long.text]
    out = server_logs.text

    events = log_events(out)
    # Positive controls: the instruments do see the payment, in the logs and in the tables.
    assert any(e.get("event") == "payment_authorized" and e.get("card_last4") == good[-4:] for e in events), (
        out[-3000:]
    )
    assert any(e.get("event") == "request_failed" and "processor bug" in str(e) for e in events)
    stored = await stored_text(db)
    assert good[-4:] in stored
    # The search itself.
    for number in (good, declined, invalid):
        for spelled in spellings(number):
            assert spelled not in out, f"a card number was logged: {spelled[-4:]}"
            assert not any(spelled in value for value in stored), f"a card number was stored: {spelled[-4:]}"
            assert not any(spelled in answer for answer in answers)
