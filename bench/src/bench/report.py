"""The bench's outputs: a rich table on screen, and JSON, a PNG chart and a markdown table on disk."""

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(width=None if Console().is_terminal else 150)

LABELS = {
    "pgbench-same-sql": "pgbench, same SQL",
    "pgbench-textbook": "pgbench, textbook",
    "orders-http": "orders, HTTP",
    "gateway-graphql": "gateway, GraphQL",
}


def say(message: str) -> None:
    console.print(message, highlight=False)


def rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for m in results["results"]:
        ratio = m["ratio"]
        out.append(
            [
                m["workload"],
                str(m["concurrency"]),
                LABELS.get(m["target"], m["target"]),
                f"{m['ops']:,.0f}",
                f"{m['p50_ms']:.1f}",
                f"{m['p99_ms']:.1f}",
                str(m["errors"]),
                "1.00"
                if m["target"] == "pgbench-same-sql"
                else (f"{ratio:.2f}" if ratio is not None else "–"),
                f"{m['generator']} {m['generator_cpu_pct']:.0f}%",
                app_cpu(m),
                f"{m.get('machine_cpu_pct', 0):.0f}%",
            ]
        )
    return out


def app_cpu(m: dict[str, Any]) -> str:
    """The CPU of the app processes on the path (100% = one core); pgbench talks to PostgreSQL directly."""
    cpu = m.get("app_cpu_pct") or {}
    names = {"orders-http": ["orders"], "gateway-graphql": ["gateway", "orders"]}.get(m["target"], [])
    return ", ".join(f"{name} {cpu[name]:.0f}%" for name in names if name in cpu) or "–"


HEADERS = [
    "workload",
    "conc.",
    "path",
    "orders/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "× pgbench",
    "load generator CPU",
    "app CPU (core=100%)",
    "machine busy",
]


def scaling_lines(results: dict[str, Any]) -> list[str]:
    scale = results.get("scaling")
    if not scale:
        return []
    lines = []
    sizes = [key for key in scale["paging"] if key.isdigit()]
    for size in sizes:
        page = scale["paging"][size]
        lines.append(
            f"GET /products?limit=20 with {int(size):,} products: random page p50 "
            f"{page['random_page']['p50_ms']:.1f} ms, p99 {page['random_page']['p99_ms']:.1f} ms; "
            f"last page p50 {page['last_page']['p50_ms']:.1f} ms"
        )
    for count, summary in scale["order_lines"].items():
        lines.append(
            f"POST /orders with {count} line{'s' if count != '1' else ''}: p50 {summary['p50_ms']:.1f} ms, "
            f"p99 {summary['p99_ms']:.1f} ms (sequential, one client)"
        )
    return lines


def print_report(results: dict[str, Any]) -> None:
    info = results["machine"]
    table = Table(title="lockstock order path, single-item orders, same run", header_style="bold")
    for header in HEADERS:
        table.add_column(
            header,
            justify="left"
            if header in ("workload", "path", "load generator CPU", "app CPU (core=100%)")
            else "right",
        )
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    if results["gateway"] != "measured":
        say(f"gateway: {results['gateway']}")
    say(
        f"machine: {info['cpus']} × {info['cpu_model']}, {info['memory_gb']} GB; "
        f"PostgreSQL {info['postgres']} ({'durable' if info['durable'] else 'fsync off'}); "
        f"{results['settings']['seconds_per_cell']:g} s per cell, "
        f"best of {results['settings'].get('rounds', 1)} rounds"
    )
    for line in scaling_lines(results):
        say(line)


def markdown(results: dict[str, Any]) -> str:
    info = results["machine"]
    lines = [
        f"Measured {results['generated_at']} on {info['cpus']} × {info['cpu_model']}, "
        f"{info['memory_gb']} GB RAM, "
        f"PostgreSQL {info['postgres']} ({'durable: fsync on' if info['durable'] else 'fsync off'}), "
        f"{results['settings']['seconds_per_cell']:g} s per cell, "
        f"best of {results['settings'].get('rounds', 1)} rounds, HTTP load from "
        f"{results['settings']['http_generator']}. Gateway: {results['gateway']}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|"
        + "|".join(
            "---" if h in ("workload", "path", "load generator CPU", "app CPU (core=100%)") else "---:"
            for h in HEADERS
        )
        + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    extra = scaling_lines(results)
    if extra:
        lines += ["", *[f"- {line}" for line in extra]]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measurements = results["results"]
    cells = sorted(
        {(m["workload"], m["concurrency"]) for m in measurements}, key=lambda c: (c[0] != "hot", c[1])
    )
    targets = [t for t in LABELS if any(m["target"] == t for m in measurements)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(1, len(targets))
    for index, target in enumerate(targets):
        ops, p99 = [], []
        for workload, concurrency in cells:
            match = next(
                (
                    m
                    for m in measurements
                    if m["target"] == target and m["workload"] == workload and m["concurrency"] == concurrency
                ),
                None,
            )
            ops.append(match["ops"] if match else 0)
            p99.append(match["p99_ms"] if match else 0)
        positions = [x + (index - (len(targets) - 1) / 2) * width for x in range(len(cells))]
        left.bar(positions, ops, width, label=LABELS[target])
        right.bar(positions, p99, width, label=LABELS[target])
    names = [f"{workload}\nc={concurrency}" for workload, concurrency in cells]
    for axis, title in (
        (left, "orders per second (higher is better)"),
        (right, "p99 latency, ms (lower is better)"),
    ):
        axis.set_xticks(range(len(cells)), names)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    left.legend(fontsize=8)
    info = results["machine"]
    figure.suptitle(
        f"lockstock order path — {info['cpus']} CPU {info['cpu_model']}, PostgreSQL "
        f"{info['postgres'].split()[0]}, {results['generated_at']}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "latest.json", directory / "latest.png", directory / "latest.md"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    chart(results, paths[1])
    paths[2].write_text(markdown(results))
    return paths
