"""`task bench:profile`: where one app's CPU goes under load, as a small text file for bench/results/.

Starts the bench's own stack (embedded PostgreSQL, inventory, orders, the gateway; one process each), drives
placeOrder through the gateway or POST /orders through orders with wrk, and samples the app with py-spy
(on-CPU samples only). The file says the rate and CPU per order of that run, then the frames that hold the
most samples, inclusive (a frame counts once per sample it is on the stack of) and self (the innermost).

py-spy reads the process's memory: it needs ptrace rights over it (root, or the same user with
kernel.yama.ptrace_scope 0).
"""

import argparse
import collections
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import load
from bench.load import OrderCounter
from bench.run import CATALOGUE, RESULTS, seed_catalogue
from bench.system import System

_LINE = re.compile(r":\d+\)")


def rolled_up(raw: str, top: int) -> list[str]:
    """py-spy's raw output (collapsed stacks: ``frame;frame;… count``) as the ``top`` inclusive and self
    frames, each with its share of the samples; line numbers are dropped so a function is one entry."""
    inclusive: collections.Counter[str] = collections.Counter()
    innermost: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        innermost[frames[-1]] += samples
    if not total:
        return ["no samples"]
    out = [f"{total} on-CPU samples", "", "inclusive (on the stack):"]
    out += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in inclusive.most_common(top)]
    out += ["", "self (innermost frame):"]
    out += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in innermost.most_common(top // 2)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__)
    parser.add_argument("--app", choices=["gateway", "orders"], default="gateway")
    parser.add_argument("--workload", choices=["hot", "spread"], default="spread")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=60, help="inclusive frames listed (self: half as many)")
    parser.add_argument("--note", default="", help="a line saying what this profile is of (before/after …)")
    parser.add_argument("--out", type=Path, help="default bench/results/<app>-profile.txt")
    parser.add_argument(
        "--raw", type=Path, help="also keep py-spy's collapsed stacks here (for a flame graph)"
    )
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        parser.error("py-spy is not installed: uv run --with py-spy task bench:profile")
    if not load.wrk_available():
        parser.error("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    out = args.out or RESULTS / f"{args.app}-profile.txt"
    system = System(durable=True, pool_size=args.concurrency + 4)
    try:
        system.start_database()
        products = seed_catalogue(system.admin_url, CATALOGUE)
        system.start_services(want_gateway=args.app == "gateway", processes=[1])
        app = system.apps[args.app]
        target = system.http_target(args.app, args.app)
        counter = OrderCounter(system.admin_url)
        pids = {key: each.process.pid for key, each in system.apps.items()}
        common = {
            "workload": args.workload,
            "products": products,
            "concurrency": args.concurrency,
            "workdir": system.workdir,
            "count_orders": counter,
        }
        load.wrk(target, seconds=3, **common)  # warm: pools, caches, plans
        samples = system.workdir / "samples.txt"
        sampler = subprocess.Popen(
            [
                *(spy, "record", "--format", "raw", "--rate", str(args.rate)),
                *("--duration", str(args.seconds), "--nonblocking"),
                *("--output", str(samples), "--pid", str(app.process.pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        before = load.cpu_snapshot(pids)
        measurement = load.wrk(target, seconds=args.seconds, **common)
        load.attach_cpu(measurement, before, load.cpu_snapshot(pids))
        _, errors = sampler.communicate(timeout=60)
        if not samples.exists():
            raise SystemExit(f"py-spy wrote nothing: {errors.decode(errors='replace')[-500:]}")
        cpu = measurement.app_cpu_ms_per_order
        header = [
            f"{args.app} CPU profile, {datetime.now(UTC).isoformat(timespec='seconds')}"
            + (f": {args.note}" if args.note else ""),
            f"`uv run task bench:profile -- --app {args.app} --workload {args.workload} "
            f"--concurrency {args.concurrency}`: wrk for {args.seconds} s after a 3 s warm-up, "
            f"py-spy record --rate {args.rate} on the {args.app} process.",
            f"{measurement.ops:,.0f} orders/s, p50 {measurement.p50_ms:.1f} ms, "
            f"p99 {measurement.p99_ms:.1f} ms, errors {measurement.errors}; CPU per order: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu.items() if ms >= 0.05)
            + f"; machine busy {measurement.machine_cpu_pct:.0f} %",
            "",
        ]
        out.write_text("\n".join(header + rolled_up(samples.read_text(), args.top)) + "\n")
        if args.raw:
            shutil.copyfile(samples, args.raw)
        print(f"wrote {out}")
        print("\n".join(header))
    finally:
        system.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
