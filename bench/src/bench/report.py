"""The bench's outputs: a rich table on screen, and JSON, a PNG chart and a markdown table on disk."""

import json
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(width=None if Console().is_terminal else 150)

LABELS = {
    "pgbench-same-sql": "pgbench, same SQL",
    "pgbench-textbook": "pgbench, textbook",
    "orders-http-single": "orders, HTTP, single",
    "orders-http": "orders, HTTP, batched",
    "gateway-graphql": "gateway, GraphQL",
}


def label(target: str) -> str:
    """orders-http-2p -> "orders, HTTP, batched, 2 proc" (the multi-process targets are named by count)."""
    found = re.fullmatch(r"(.+)-(\d+)p", target)
    if found and found.group(1) in LABELS:
        return f"{LABELS[found.group(1)]}, {found.group(2)} proc"
    return LABELS.get(target, target)


def path_apps(target: str) -> list[str]:
    """The app processes on a target's path, by their key in the results (pgbench talks to PostgreSQL)."""
    found = re.fullmatch(r"(orders-http|gateway-graphql)(?:-single|-(\d+)p)?", target)
    if found is None:
        return []
    suffix = "-single" if target.endswith("-single") else (f"-{found.group(2)}p" if found.group(2) else "")
    return (["gateway" + suffix] if found.group(1) == "gateway-graphql" else []) + ["orders" + suffix]


def say(message: str) -> None:
    console.print(message, highlight=False)


def rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for m in results["results"]:
        ratio = m["ratio"]
        to_orders = m.get("ratio_to_orders")
        out.append(
            [
                m["workload"],
                str(m["concurrency"]),
                label(m["target"]),
                f"{m['ops']:,.0f}",
                f"{m['p50_ms']:.1f}",
                f"{m['p99_ms']:.1f}",
                str(m["errors"]),
                "1.00"
                if m["target"] == "pgbench-same-sql"
                else (f"{ratio:.2f}" if ratio is not None else "–"),
                f"{to_orders:.2f}" if to_orders is not None else "–",
                f"{m['generator']} {m['generator_cpu_pct']:.0f}%",
                app_cpu(m),
                app_cpu_per_order(m),
                f"{m.get('machine_cpu_pct', 0):.0f}%",
            ]
        )
    return out


def app_cpu(m: dict[str, Any]) -> str:
    """The CPU of the app processes on the path (100% = one core, all of an app's processes together)."""
    cpu = m.get("app_cpu_pct") or {}
    return ", ".join(f"{name} {cpu[name]:.0f}%" for name in path_apps(m["target"]) if name in cpu) or "–"


def app_cpu_per_order(m: dict[str, Any]) -> str:
    """Each app's CPU time per order created (all its processes together), whatever the rate."""
    cpu = m.get("app_cpu_ms_per_order") or {}
    return ", ".join(f"{name} {cpu[name]:.1f}" for name in path_apps(m["target"]) if name in cpu) or "–"


HEADERS = [
    "workload",
    "conc.",
    "path",
    "orders/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "× pgbench",
    "× orders",
    "load generator CPU",
    "app CPU (core=100%)",
    "app CPU ms/order",
    "machine busy",
]
LEFT = ("workload", "path", "load generator CPU", "app CPU (core=100%)", "app CPU ms/order")


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


def _cell(results: dict[str, Any], target: str, workload: str, concurrency: int) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in results["results"]
            if m["target"] == target and m["workload"] == workload and m["concurrency"] == concurrency
        ),
        None,
    )


def _best_orders(results: dict[str, Any], workload: str, concurrency: int) -> dict[str, Any] | None:
    """The batched orders REST cell with the highest rate over the process counts run (orders-http,
    orders-http-2p, …): issue 13 reaches its orders targets by using both cores."""
    cells = [
        m
        for m in results["results"]
        if (m["target"] == "orders-http" or re.fullmatch(r"orders-http-\d+p", m["target"]))
        and m["workload"] == workload
        and m["concurrency"] == concurrency
    ]
    return max(cells, key=lambda m: m["ops"], default=None)


def _processes(cell: dict[str, Any]) -> str:
    found = re.fullmatch(r".*-(\d+)p", cell["target"])
    count = int(found.group(1)) if found else 1
    return f"{count} process{'es' if count > 1 else ''}"


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def target_lines(results: dict[str, Any]) -> list[str]:
    """Issue 13's targets, each against this run's own figures (a target whose cells were not run is left
    out): the gateway against orders REST, CPU per order, the hot product against the best rate pgbench
    reached on one row at any concurrency, the tail, and memory."""
    measured = results["results"]
    lines: list[str] = []
    gateway = [m for m in measured if m["target"] == "gateway-graphql" and m.get("ratio_to_orders")]
    if gateway:
        worst = min(gateway, key=lambda m: m["ratio_to_orders"])
        lines.append(
            f"gateway placeOrder ÷ orders REST ≥ 0.5 on every cell: worst {worst['ratio_to_orders']:.2f} "
            f"({worst['workload']} c={worst['concurrency']}) — {_verdict(worst['ratio_to_orders'] >= 0.5)}"
        )
        cpu = [
            m["app_cpu_ms_per_order"]["gateway"] for m in gateway if "gateway" in m["app_cpu_ms_per_order"]
        ]
        if cpu:
            lines.append(
                f"gateway CPU per placeOrder ≤ 3 ms: {min(cpu):.1f}–{max(cpu):.1f} ms — "
                f"{_verdict(max(cpu) <= 3)}"
            )
        tails = [m for m in gateway if m["concurrency"] == 32 and m["p50_ms"]]
        if tails:
            ratio = max(m["p99_ms"] / m["p50_ms"] for m in tails)
            lines.append(
                f"gateway p99 at c=32 under 10× its p50: worst {ratio:.1f}× — {_verdict(ratio < 10)}"
            )
    orders = [m for m in measured if m["target"] == "orders-http" and "orders" in m["app_cpu_ms_per_order"]]
    if orders:
        cpu = [m["app_cpu_ms_per_order"]["orders"] for m in orders]
        lines.append(
            f"orders REST CPU per order ≤ 1 ms (batched, 1 process): {min(cpu):.2f}–{max(cpu):.2f} ms — "
            f"{_verdict(max(cpu) <= 1)}"
        )
    rest, textbook = (
        _best_orders(results, "spread", 32),
        _cell(results, "pgbench-textbook", "spread", 32),
    )
    if rest and textbook and textbook["ops"]:
        ratio = rest["ops"] / textbook["ops"]
        lines.append(
            f"orders REST spread c=32 ≥ 0.5× pgbench textbook: {rest['ops']:,.0f}/s ({_processes(rest)}) ÷ "
            f"{textbook['ops']:,.0f}/s = {ratio:.2f}× — {_verdict(ratio >= 0.5)}"
        )
    ceiling = [m for m in measured if m["target"] == "pgbench-same-sql" and m["workload"] == "hot"]
    if ceiling:
        best = max(ceiling, key=lambda m: m["ops"])
        for concurrency, goal in ((32, 1.0), (128, 3.0)):
            cell = _best_orders(results, "hot", concurrency)
            if cell and best["ops"]:
                ratio = cell["ops"] / best["ops"]
                lines.append(
                    f"hot product c={concurrency} ≥ {goal:g}× the one-order-per-commit limit (best pgbench "
                    f"PLACE_ORDER on one row: {best['ops']:,.0f}/s at c={best['concurrency']}): "
                    f"{cell['ops']:,.0f}/s ({_processes(cell)}) = {ratio:.2f}× — {_verdict(ratio >= goal)}"
                )
    hot = _cell(results, "orders-http", "hot", 32)
    if hot:
        lines.append(
            f"orders REST hot c=32 p99 ≤ 100 ms (1 process): {hot['p99_ms']:.0f} ms — "
            f"{_verdict(hot['p99_ms'] <= 100)}"
        )
    if rss := results.get("rss_mb"):
        largest = max(mb for sizes in rss.values() for mb in sizes)
        lines.append(
            f"each app process's RSS after the bench ≤ 150 MB: largest {largest:.0f} MB — "
            f"{_verdict(largest <= 150)}"
        )
    return lines


def memory_line(results: dict[str, Any]) -> str | None:
    """Each app's resident memory at the end of the run; a multi-process app: supervisor + each worker."""
    rss = results.get("rss_mb")
    if not rss:
        return None
    parts = []
    for key, sizes in rss.items():
        if len(sizes) == 1:
            parts.append(f"{key} {sizes[0]:.0f} MB")
        else:
            parts.append(
                f"{key} {sizes[0]:.0f} MB supervisor + {' + '.join(f'{mb:.0f}' for mb in sizes[1:])} MB"
            )
    return "RSS after the bench: " + "; ".join(parts)


def print_report(results: dict[str, Any]) -> None:
    info = results["machine"]
    table = Table(title="lockstock order path, single-item orders, same run", header_style="bold")
    for header in HEADERS:
        table.add_column(
            header,
            justify="left" if header in LEFT else "right",
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
    if memory := memory_line(results):
        say(memory)
    for line in target_lines(results):
        say(f"target: {line}")


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
        "|" + "|".join("---" if h in LEFT else "---:" for h in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    extra = scaling_lines(results)
    if memory := memory_line(results):
        extra.append(memory)
    if extra:
        lines += ["", *[f"- {line}" for line in extra]]
    if goals := target_lines(results):
        lines += ["", "Targets (issue 13), from this run:", "", *[f"- {line}" for line in goals]]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measurements = results["results"]
    cells = sorted(
        {(m["workload"], m["concurrency"]) for m in measurements}, key=lambda c: (c[0] != "hot", c[1])
    )
    targets = list(dict.fromkeys(m["target"] for m in measurements))
    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 5.2))
    width = 0.8 / max(1, len(targets))
    for index, target in enumerate(targets):
        ops, p99 = [], []
        for workload, concurrency in cells:
            match = _cell(results, target, workload, concurrency)
            ops.append(match["ops"] if match else 0)
            p99.append(match["p99_ms"] if match else 0)
        positions = [x + (index - (len(targets) - 1) / 2) * width for x in range(len(cells))]
        left.bar(positions, ops, width, label=label(target))
        right.bar(positions, p99, width, label=label(target))
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
    right.set_yscale("log")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "latest.json", directory / "latest.png", directory / "latest.md"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    chart(results, paths[1])
    paths[2].write_text(markdown(results))
    return paths


README_START = "<!-- bench:table:start -->"
README_END = "<!-- bench:table:end -->"


def update_readme(results: dict[str, Any], readme: Path) -> bool:
    """Replace the table between the README's bench:table markers with this run's; False without them."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    block = f"{README_START}\n{markdown(results)}{README_END}"
    readme.write_text(text[:start] + block + text[end + len(README_END) :])
    return True
