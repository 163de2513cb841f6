"""`task up` with LOCKSTOCK_REPLICAS=N: N processes of every app behind a real haproxy on the usual ports.

Every app is stateless (its state is in PostgreSQL; the gateway's rate-limit counters go to a shared Redis
when there is more than one gateway), so replicas need nothing but a load balancer. From the Procfile's one
line per app this writes a Procfile of N lines per app on backend ports, plus haproxy, and haproxy's config
with one frontend per app on the port the app used to listen on: every URL stays the same.
"""

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HAPROXY = "/usr/sbin/haproxy"
MAX_REPLICAS = 5
_PORT = re.compile(r"--port\s+(\d+)")


def replicas_from_env() -> int:
    """LOCKSTOCK_REPLICAS (default 1, at most MAX_REPLICAS)."""
    raw = os.environ.get("LOCKSTOCK_REPLICAS", "1").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_REPLICAS:
        raise SystemExit(f"LOCKSTOCK_REPLICAS must be a whole number from 1 to {MAX_REPLICAS}, not {raw!r}")
    return int(raw)


def default_backend_port(port: int, replica: int) -> int:
    """8002 -> 18002, 28002, …: replica r of the app on ``port``."""
    return port + 10_000 * replica


@dataclass
class App:
    name: str
    command: str  # the Procfile command, its --port the frontend's
    port: int
    backends: list[int] = field(default_factory=list)


@dataclass
class Plan:
    apps: list[App]
    stats_port: int | None = None
    # Procfile lines that serve no port (the local mail sink): run once, as they are.
    singles: list[str] = field(default_factory=list)

    def procfile(self, haproxy_config: Path, haproxy: str = HAPROXY) -> str:
        lines = list(self.singles)
        for app in self.apps:
            for replica, port in enumerate(app.backends, start=1):
                lines.append(f"{app.name}-{replica}: {_PORT.sub(f'--port {port}', app.command)}")
        lines.append(f"haproxy: {haproxy} -db -f {haproxy_config}")
        return "\n".join(lines) + "\n"

    def haproxy_config(self) -> str:
        lines = [
            "global",
            "    maxconn 4096",
            "defaults",
            "    mode http",
            "    timeout connect 3s",
            # A capture may take the gateway's 30 s upstream timeout: longer than that.
            "    timeout client 60s",
            "    timeout server 60s",
            "    timeout http-keep-alive 10s",
            "    option http-keep-alive",
            # No `option forwardfor`, and Authorization / X-Forwarded-For passed through untouched: the UIs
            # send X-Forwarded-For for their shoppers, and the gateway believes it only from a caller whose
            # credential is the web shop's or the admin's (docs/adr/0007).
            "",
        ]
        for app in self.apps:
            lines += [
                f"frontend {app.name}",
                f"    bind 127.0.0.1:{app.port}",
                f"    default_backend {app.name}",
                f"backend {app.name}",
                "    balance roundrobin",
                "    option httpchk GET /healthz",
                "    retry-on conn-failure empty-response",
                *(
                    f"    server {app.name}-{replica} 127.0.0.1:{port} check inter 1s fall 2 rise 1"
                    for replica, port in enumerate(app.backends, start=1)
                ),
                "",
            ]
        if self.stats_port:
            lines += [
                "listen stats",
                f"    bind 127.0.0.1:{self.stats_port}",
                "    stats enable",
                "    stats uri /stats",
                "",
            ]
        return "\n".join(lines)


def plan(
    procfile_text: str,
    replicas: int,
    *,
    frontend_ports: dict[str, int] | None = None,
    backend_port: Callable[[int, int], int] = default_backend_port,
    stats_port: int | None = None,
) -> Plan:
    """Every Procfile line with a ``--port`` becomes an app of ``replicas`` backends. ``frontend_ports``
    moves an app's frontend (the tests do, to stay off the usual ports)."""
    apps, singles = [], []
    for line in procfile_text.splitlines():
        name, _, command = line.partition(":")
        match = _PORT.search(command)
        if not name.strip() or name.lstrip().startswith("#"):
            continue
        if not match:
            singles.append(line.strip())
            continue
        name = name.strip()
        port = (frontend_ports or {}).get(name, int(match.group(1)))
        backends = [backend_port(port, replica) for replica in range(1, replicas + 1)]
        apps.append(App(name=name, command=command.strip(), port=port, backends=backends))
    return Plan(apps=apps, stats_port=stats_port, singles=singles)


def write(
    data_dir: Path,
    procfile: Path,
    replicas: int,
    *,
    haproxy: str = HAPROXY,
    frontend_ports: dict[str, int] | None = None,
    backend_port: Callable[[int, int], int] = default_backend_port,
    stats_port: int | None = None,
) -> Path:
    """Write data_dir/haproxy.cfg and data_dir/Procfile.replicas; returns the Procfile to run."""
    if not Path(haproxy).exists() and not shutil.which(haproxy):
        raise SystemExit(f"LOCKSTOCK_REPLICAS needs haproxy ({haproxy}): apt-get install haproxy")
    the_plan = plan(
        procfile.read_text(),
        replicas,
        frontend_ports=frontend_ports,
        backend_port=backend_port,
        stats_port=stats_port,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "haproxy.cfg"
    config.write_text(the_plan.haproxy_config())
    out = data_dir / "Procfile.replicas"
    out.write_text(the_plan.procfile(config.resolve(), haproxy))
    return out
