"""The bench's machinery on a tiny setting against the test database and a live orders service: pgbench runs
PLACE_ORDER's own SQL and the textbook transaction, the HTTP generator drives POST /orders, and the report
writes JSON, a chart and a markdown table. No timing is asserted: only that real orders were made
and counted."""

import json
from pathlib import Path

from bench import load, report
from bench.load import HttpTarget, OrderCounter
from bench.system import run_sql
from devstack.embedded import EmbeddedPostgres


def test_the_pgbench_script_is_place_order_itself() -> None:
    script = load.same_sql_script("7")

    assert script.startswith("\\set pid 7\n")
    assert "FOR UPDATE" in script
    assert ":product_ids" not in script
    assert ":qtys" not in script


def test_one_second_of_each_generator_makes_real_orders_and_reports_them(
    migrated_admin_url: str, orders_url: str, as_gateway: dict[str, str], tmp_path: Path
) -> None:
    ids = [
        run_sql(
            migrated_admin_url,
            "INSERT INTO inventory.products (name, price_cents, stock_qty) "
            "VALUES ('bench smoke', 1000, 1000000000) RETURNING id",
        )[0]
        for _ in range(3)
    ]
    products = (min(ids), max(ids))
    workload, pick = "spread", f"random({products[0]}, {products[1]})"
    counter = OrderCounter(migrated_admin_url)
    bin_dir = EmbeddedPostgres(tmp_path / "unused", 0).bin_dir
    measurements = [
        load.pgbench(
            bin_dir,
            migrated_admin_url,
            load.same_sql_script(pick),
            target="pgbench-same-sql",
            workload=workload,
            concurrency=2,
            seconds=1,
            workdir=tmp_path,
            count_orders=counter,
        ),
        load.pgbench(
            bin_dir,
            migrated_admin_url,
            load.textbook_script(pick),
            target="pgbench-textbook",
            workload=workload,
            concurrency=2,
            seconds=1,
            workdir=tmp_path,
            count_orders=counter,
        ),
    ]
    target = HttpTarget("orders-http", orders_url, "/orders", load.ORDER_BODY, as_gateway)
    generator = load.wrk if load.wrk_available() else load.python_generator
    measurements.append(
        generator(
            target,
            workload=workload,
            products=products,
            concurrency=2,
            seconds=1,
            workdir=tmp_path,
            count_orders=counter,
        )
    )

    for measurement in measurements:
        assert measurement.errors == 0, measurement
        assert measurement.orders_created > 0, measurement
        assert measurement.p99_ms >= measurement.p50_ms > 0

    results = {
        "generated_at": "now",
        "elapsed_s": 1.0,
        "gateway": "not available: smoke test",
        "machine": {
            "cpus": 2,
            "cpu_model": "test",
            "memory_gb": 1.0,
            "postgres": "18 test",
            "durable": False,
        },
        "settings": {"seconds_per_cell": 1, "http_generator": measurements[-1].generator},
        "results": [m.as_dict() for m in measurements],
        "scaling": None,
    }
    paths = report.write(results, tmp_path / "out")
    assert json.loads(paths[0].read_text())["results"][0]["target"] == "pgbench-same-sql"
    assert paths[1].read_bytes().startswith(b"\x89PNG")
    assert "pgbench, same SQL" in paths[2].read_text()
