"""The demo's strategies on the real test database: the safe ones sell exactly K, the naive one oversells."""

import json
from pathlib import Path

import asyncpg
import pytest

import demo.race as race
from demo.strategies import open_connections, run_strategy

BUYERS, STOCK = 12, 4


@pytest.fixture
async def buyers(migrated_admin_url: str) -> list[asyncpg.Connection]:
    connections = await open_connections(race.database_url(migrated_admin_url), BUYERS)
    yield connections
    for conn in connections:
        await conn.close()


@pytest.mark.parametrize("strategy", ["for_update", "conditional", "serializable"])
async def test_safe_strategies_sell_exactly_the_stock_and_never_oversell(
    strategy: str, buyers: list[asyncpg.Connection]
) -> None:
    result = await run_strategy(strategy, buyers, stock=STOCK, pause_s=0.005)

    assert result.accepted == STOCK
    assert result.units_sold == STOCK
    assert result.final_stock == 0
    assert result.oversold == 0
    assert result.errors == 0


async def test_naive_read_then_write_with_its_pause_oversells(buyers: list[asyncpg.Connection]) -> None:
    result = await run_strategy("naive", buyers, stock=STOCK, pause_s=0.02)

    assert result.units_sold > STOCK - result.final_stock
    assert result.oversold == result.units_sold - (STOCK - result.final_stock) > 0


async def test_scratch_products_are_deleted_afterwards(
    buyers: list[asyncpg.Connection], db: asyncpg.Connection
) -> None:
    await run_strategy("conditional", buyers, stock=STOCK, pause_s=0)

    assert (
        await db.fetchval("SELECT count(*) FROM inventory.products WHERE name LIKE 'demo:race scratch%'") == 0
    )


def test_json_output_parses_and_tells_the_last_mug_story(
    migrated_admin_url: str,
    orders_url: str,
    inventory_url: str,
    service_tokens: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    async def add_mug() -> None:
        conn = await asyncpg.connect(race.database_url(migrated_admin_url))
        try:
            if not await conn.fetchval("SELECT 1 FROM inventory.products WHERE name = 'Mug'"):
                await conn.execute(
                    "INSERT INTO inventory.products (name, price_cents, stock_qty) VALUES ('Mug', 1200, 5)"
                )
        finally:
            await conn.close()

    asyncio.run(add_mug())
    credentials = tmp_path / "service-credentials.json"
    credentials.write_text(json.dumps(service_tokens))
    code = race.main(
        [
            "--credentials",
            str(credentials),
            "--json",
            "--buyers",
            "6",
            "--stock",
            "2",
            "--database-url",
            migrated_admin_url,
            "--orders-url",
            orders_url,
            "--inventory-url",
            inventory_url,
        ]
    )

    assert code == 0
    out = capsys.readouterr().out
    # The in-process services log JSON lines to stdout too; the report is the indented document.
    report = json.loads(
        out[out.index("\n{\n") + 1 if not out.startswith("{\n") else 0 :].split("\n}\n")[0] + "\n}"
    )
    statuses = sorted(buyer["status"] for buyer in report["race"]["buyers"])
    assert statuses == [201, 409]
    assert report["race"]["stock_after"] == 0
    assert [row["strategy"] for row in report["strategies"]] == [
        "naive",
        "for_update",
        "conditional",
        "serializable",
    ]
    assert len(report["lessons"]) >= 3


def test_an_unreachable_system_exits_2_and_says_how_to_start_it(capsys: pytest.CaptureFixture[str]) -> None:
    from devstack.embedded import free_port

    port = free_port()
    code = race.main(["--database-url", f"postgresql://postgres@127.0.0.1:{port}/lockstock"])

    assert code == 2
    assert "task up" in capsys.readouterr().err
