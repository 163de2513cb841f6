"""PostgreSQL restarting under a running worker, on a server of this test's own (the run's shared one keeps
serving the other tests): every effect still happens, once."""

import json
import tempfile
import uuid
from pathlib import Path

import asyncpg

from devstack.embedded import EmbeddedPostgres, free_port
from lockstock_db import database
from servicekit.db import plain_url


async def test_every_effect_happens_once_across_a_postgres_restart(
    mail_sink, workers, wait, settled, ids, order
):
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="lsrs-")), free_port())
    try:
        admin_url = database.ensure_database(server.start(), "restart")
        database.migrate(admin_url)
        passwords = {role: f"restart-{role}" for role in database.SERVICE_ROLES.values()}
        database.apply_role_passwords(admin_url, passwords)
        urls = database.service_database_urls(admin_url, passwords)
        workers.database_url = urls["notifications"]
        emails = [f"restart-{uuid.uuid4().hex[:8]}@example.com" for _ in range(20)]
        mail_sink.delay_s = 0.02
        with workers.start(mail_sink.url):
            orders = await asyncpg.connect(plain_url(urls["orders"]))  # as the producer
            try:
                for email in emails:
                    order_id = ids()
                    await orders.execute(
                        "INSERT INTO outbox.events (type, aggregate, aggregate_id, data)"
                        " VALUES ('order.placed', 'order', $1, $2::jsonb)",
                        order_id,
                        json.dumps(order(order_id, email)),
                    )
            finally:
                await orders.close()
            await wait(lambda: _received_some(mail_sink, set(emails)), within_s=30)
            server.stop()  # mid-batch: the worker's connections and its LISTEN die with it
            server.start()
            db = await asyncpg.connect(plain_url(admin_url))
            try:
                event_ids = [
                    str(r["event_id"])
                    for r in await db.fetch("SELECT event_id FROM outbox.events WHERE type = 'order.placed'")
                ]
                assert len(event_ids) == len(emails)
                await wait(lambda: settled(db, event_ids, ["email"]), within_s=60)
                recorded = await db.fetchval(
                    "SELECT count(DISTINCT event_id) FROM notifications.emails"
                    " WHERE event_id = ANY($1::uuid[])",
                    event_ids,
                )
            finally:
                await db.close()
        assert recorded == len(emails)
        received = mail_sink.to(set(emails))
        assert {m.message_id for m in received} == {f"<{e}@lockstock.local>" for e in event_ids}
        assert len(received) - len(emails) <= 1  # at most the one in flight at the restart, same Message-ID
    finally:
        server.destroy()


async def _received_some(sink, emails: set[str]) -> bool:
    return len(sink.to(emails)) >= 3
