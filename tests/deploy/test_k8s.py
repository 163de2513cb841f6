"""The Kubernetes manifests (deploy/k8s): every overlay renders, every rendered object passes the Kubernetes
schemas offline (kubernetes-validate, strict), and the checks schemas cannot make hold: probes and limits on
every workload, Services and NetworkPolicies that select real pods, nobody running as root, every setting an
app is given is one it reads.

There is no kubectl or kustomize binary here, and no kustomize implementation on PyPI or in Debian's
packages, so `render` below is a small kustomize of our own for exactly the subset the manifests use:
`resources` (files and folders), `components`, `patches` by path (strategic merge: maps merge, lists of named
items merge by name, other lists are replaced), `namespace`, `labels` (with `includeTemplates`) and `images`.
Anything else in a kustomization fails the test, so the manifests cannot drift outside what is checked.
"""

import copy
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lockstock_db.credentials import ACCEPTED, CALLING_APPS, credential_environment

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "prod"]
KUBERNETES_VERSION = "1.33.0"
APPS = {
    "gateway": 8000,
    "web": 8080,
    "admin": 8081,
    "inventory": 8001,
    "orders": 8002,
    "payments": 8003,
    "notifications": 8004,
}
# The worker is not autoscaled: its work is the outbox backlog, not CPU (deploy/k8s/base/notifications.yaml).
AUTOSCALED = set(APPS) - {"notifications"}
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "components", "patches", "namespace", "labels", "images"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


# --- the kustomize subset ---


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def strategic_merge(target: Any, patch: Any) -> Any:
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = dict(target)
        for key, value in patch.items():
            merged[key] = strategic_merge(target[key], value) if key in target else copy.deepcopy(value)
        return merged
    named = (
        isinstance(target, list)
        and isinstance(patch, list)
        and all(isinstance(item, dict) and "name" in item for item in [*target, *patch])
    )
    if named:
        merged_list = [dict(item) for item in target]
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old["name"] == item["name"]), None)
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = strategic_merge(merged_list[index], item)
        return merged_list
    return copy.deepcopy(patch)


def pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if doc["kind"] in WORKLOADS:
        yield doc["spec"]["template"]["spec"]


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for spec in pod_specs(doc):
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


def render(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= SUPPORTED_KEYS, set(kustomization) - SUPPORTED_KEYS
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else load_documents(path)
    for component in kustomization.get("components", []):
        objects += render(directory / component)
    for patch_entry in kustomization.get("patches", []):
        assert set(patch_entry) == {"path"}, patch_entry
        for patch in load_documents(directory / patch_entry["path"]):
            key = (patch["kind"], patch["metadata"]["name"])
            matches = [i for i, obj in enumerate(objects) if (obj["kind"], obj["metadata"]["name"]) == key]
            assert len(matches) == 1, f"patch {patch_entry['path']} targets {key}: {len(matches)} objects"
            objects[matches[0]] = strategic_merge(objects[matches[0]], patch)
    if namespace := kustomization.get("namespace"):
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            for subject in obj.get("subjects", []):
                if subject["kind"] == "ServiceAccount":
                    subject["namespace"] = namespace
    for label_entry in kustomization.get("labels", []):
        assert set(label_entry) <= {"pairs", "includeTemplates"}, label_entry
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label_entry["pairs"])
            if label_entry.get("includeTemplates") and obj["kind"] in WORKLOADS:
                obj["spec"]["template"]["metadata"].setdefault("labels", {}).update(label_entry["pairs"])
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in containers(obj):
                name, _, _ = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', 'latest')}"
    return objects


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(K8S / "overlays" / request.param)


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_labels(objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [obj["spec"]["template"]["metadata"]["labels"] for obj in objects if obj["kind"] in WORKLOADS]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def selects_some_pod(selector: dict[str, Any], objects: list[dict[str, Any]]) -> bool:
    return any(selects(selector, labels) for labels in pod_labels(objects))


# --- the checks ---


def test_the_renderer_merges_like_kustomize() -> None:
    base = {
        "spec": {
            "replicas": 2,
            "containers": [{"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]}],
        }
    }
    patch = {"spec": {"replicas": 1, "containers": [{"name": "a", "env": [{"name": "L", "value": "2"}]}]}}
    merged = strategic_merge(base, patch)
    assert merged["spec"]["replicas"] == 1
    assert merged["spec"]["containers"] == [
        {"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}, {"name": "L", "value": "2"}]}
    ]
    # Lists without names (an egress rule list) are replaced, as strategic merge does for them.
    assert strategic_merge({"egress": [{"to": 1}, {"to": 2}]}, {"egress": [{"to": 3}]}) == {
        "egress": [{"to": 3}]
    }


def test_every_rendered_object_passes_the_kubernetes_schemas(rendered: list[dict[str, Any]]) -> None:
    assert len(rendered) > 40
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {error.message} at {list(error.path)}")


def test_a_deployment_per_app_with_both_probes_limits_and_graceful_shutdown(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = of_kind(rendered, "Deployment")
    assert set(APPS) | {"pgbouncer"} == set(deployments)
    for obj in rendered:
        for spec in pod_specs(obj):
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                resources = container.get("resources", {})
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(kind, {})), (obj["metadata"]["name"], kind)
            if obj["kind"] == "Job":
                continue
            for container in spec["containers"]:
                assert container.get("readinessProbe"), obj["metadata"]["name"]
                assert container.get("livenessProbe"), obj["metadata"]["name"]
                assert container["lifecycle"]["preStop"], obj["metadata"]["name"]
    for app, port in APPS.items():
        spec = deployments[app]["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        # Longer than the gateway's 30 s upstream timeout plus the preStop pause: in-flight orders finish.
        assert spec["terminationGracePeriodSeconds"] >= 30 + 5


async def test_every_app_really_serves_the_probed_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each app answers /healthz, and has a /readyz (not started here, so it may well say not ready)."""
    import httpx

    monkeypatch.setenv("WEB_SECRET_KEY", "test-only-web-secret")
    monkeypatch.setenv("ADMIN_SECRET_KEY", "test-only-admin-secret")
    # The credentials the manifests hand every app, so a path it does not serve is a 404, not a 401.
    tokens = {app: f"test-{app}-token" for app in CALLING_APPS}
    for name, value in credential_environment(tokens).items():
        monkeypatch.setenv(name, value)
    for app in APPS:
        created = importlib.import_module(f"{app}.app").create_app()
        transport = httpx.ASGITransport(app=created, raise_app_exceptions=False)
        caller = ACCEPTED.get(app, ("web",))[0]
        headers = {"Authorization": f"Bearer {tokens[caller]}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://app", headers=headers) as client:
            assert (await client.get("/healthz")).status_code == 200, app
            assert (await client.get("/readyz")).status_code != 404, app
            assert (await client.get("/no-such-probe")).status_code == 404, app


def test_no_container_runs_as_root_or_writes_its_root_filesystem(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        for spec in pod_specs(obj):
            pod = spec.get("securityContext", {})
            assert pod.get("runAsNonRoot") is True, obj["metadata"]["name"]
            assert pod.get("runAsUser", 0) != 0, obj["metadata"]["name"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                context = container["securityContext"]
                assert context.get("runAsUser", pod["runAsUser"]) != 0
                assert context["allowPrivilegeEscalation"] is False
                assert context["readOnlyRootFilesystem"] is True
                assert context["capabilities"]["drop"] == ["ALL"]


def test_every_service_hpa_and_pdb_selects_pods_that_exist(rendered: list[dict[str, Any]]) -> None:
    for name, service in of_kind(rendered, "Service").items():
        if service["spec"].get("type") == "ExternalName":
            continue
        assert selects_some_pod({"matchLabels": service["spec"]["selector"]}, rendered), name
        workload = next(
            obj
            for obj in rendered
            if obj["kind"] in WORKLOADS
            and selects(
                {"matchLabels": service["spec"]["selector"]}, obj["spec"]["template"]["metadata"]["labels"]
            )
        )
        named_ports = {
            port["name"] for container in containers(workload) for port in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named_ports, (name, port)
    for name, pdb in of_kind(rendered, "PodDisruptionBudget").items():
        assert selects_some_pod(pdb["spec"]["selector"], rendered), name
    deployments = of_kind(rendered, "Deployment")
    hpas = of_kind(rendered, "HorizontalPodAutoscaler")
    assert set(hpas) == AUTOSCALED  # every stateless app; pgbouncer and the worker are sized, not autoscaled
    for hpa in hpas.values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments


def test_every_network_policy_names_real_labels(rendered: list[dict[str, Any]]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for name, policy in policies.items():
        spec = policy["spec"]
        if spec["podSelector"]:
            assert selects_some_pod(spec["podSelector"], rendered), name
        for rule in [*spec.get("ingress", []), *spec.get("egress", [])]:
            for peer in rule.get("from", rule.get("to", [])):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    assert selects_some_pod(peer["podSelector"], rendered), (name, peer)


def callers_of(policies: dict[str, dict[str, Any]], app: str) -> set[str]:
    """Who may open a connection to ``app``: pod names, or "ingress"/"monitoring" for those namespaces."""
    allowed = set()
    for rule in policies[app]["spec"]["ingress"]:
        for peer in rule["from"]:
            if "namespaceSelector" in peer:
                allowed.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
            else:
                allowed.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    return allowed


def test_network_policies_mirror_the_trust_model(rendered: list[dict[str, Any]]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    assert callers_of(policies, "web") == {"ingress-nginx", "monitoring"}
    assert callers_of(policies, "admin") == {"ingress-nginx", "monitoring"}
    assert callers_of(policies, "gateway") == {"ingress-nginx", "web", "admin", "monitoring"}
    assert callers_of(policies, "inventory") == {"gateway", "orders", "monitoring"}
    assert callers_of(policies, "orders") == {"gateway", "monitoring"}
    assert callers_of(policies, "payments") == {"orders", "gateway", "monitoring"}
    assert callers_of(policies, "notifications") == {"gateway", "monitoring"}
    assert callers_of(policies, "pgbouncer") == {"inventory", "orders", "payments", "gateway"}
    to_postgres = {
        policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for policy in policies.values()
        if any(port["port"] == 5432 for rule in policy["spec"].get("egress", []) for port in rule["ports"])
    }
    # The worker's LISTEN needs a session of its own, so it goes to PostgreSQL directly (ADR 0005).
    assert to_postgres == {"pgbouncer", "migrate", "notifications"}
    # Mail and webhooks go out, to public addresses only: the worker's own refusal of private webhook
    # URLs, again in the network.
    [outward] = [
        rule
        for rule in policies["notifications"]["spec"]["egress"]
        if any("ipBlock" in peer for peer in rule["to"])
    ]
    [peer] = outward["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        peer["ipBlock"]["except"]
    )
    assert {port["port"] for port in outward["ports"]} == {25, 465, 587, 80, 443}
    config = of_kind(rendered, "ConfigMap")["lockstock-config"]["data"]
    if config["rate-limit-storage-uri"].startswith("redis"):  # shared limits: the gateway may reach Redis
        assert any(
            port["port"] == 6379
            for policy in policies.values()
            if policy["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": "gateway"}
            for rule in policy["spec"].get("egress", [])
            for port in rule["ports"]
        )


def test_apps_reach_postgres_through_pgbouncer_and_wait_for_the_migrations(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = of_kind(rendered, "Deployment")
    [job] = of_kind(rendered, "Job").values()
    assert job["metadata"]["name"] == "lockstock-migrate"
    [migrate] = job["spec"]["template"]["spec"]["containers"]
    assert migrate["image"].split(":")[0].endswith("lockstock-db")
    assert "lockstock-db migrate" in " ".join(migrate["command"])
    for app in ("inventory", "orders", "payments", "gateway"):
        spec = deployments[app]["spec"]["template"]["spec"]
        env = {item["name"]: item for item in spec["containers"][0]["env"]}
        assert "@pgbouncer:6432/" in env[f"{app.upper()}_DATABASE_URL"]["value"]
        assert env[f"{app.upper()}_DB_POOLER"]["value"] == "transaction"
        [wait] = spec["initContainers"]
        assert "job/lockstock-migrate" in wait["command"]
    worker = deployments["notifications"]["spec"]["template"]["spec"]
    env = {item["name"]: item for item in worker["containers"][0]["env"]}
    assert "@postgres:5432/" in env["NOTIFICATIONS_DATABASE_URL"]["value"]  # LISTEN: no pooler in between
    assert "NOTIFICATIONS_DB_POOLER" not in env
    assert env["NOTIFICATIONS_SMTP_URL"]["valueFrom"]["secretKeyRef"]["name"] == "lockstock-smtp"
    [wait] = worker["initContainers"]
    assert "job/lockstock-migrate" in wait["command"]
    assert of_kind(rendered, "Service")["postgres"]["spec"]["type"] == "ExternalName"


def test_configuration_comes_from_config_maps_and_secrets_that_the_repo_never_holds(
    rendered: list[dict[str, Any]],
) -> None:
    assert not of_kind(rendered, "Secret")
    config_maps = of_kind(rendered, "ConfigMap")
    for obj in rendered:
        for container in containers(obj):
            defined: set[str] = set()
            for item in container.get("env", []):
                if "value" in item:
                    # $(VAR) expands only from variables defined above it.
                    for reference in re.findall(r"\$\((\w+)\)", item["value"]):
                        assert reference in defined, (obj["metadata"]["name"], item["name"], reference)
                    assert not re.search(r"://[^:/@]+:[^$@][^@]*@", item["value"]), "a password in a manifest"
                source = item.get("valueFrom", {})
                if ref := source.get("configMapKeyRef"):
                    # An optional reference may name a ConfigMap only a component brings (lockstock-nats).
                    assert ref.get("optional") or ref["key"] in config_maps[ref["name"]]["data"], ref
                if ref := source.get("secretKeyRef"):
                    assert ref["name"].startswith("lockstock-"), ref
                defined.add(item["name"])


def test_every_setting_an_app_is_given_is_one_it_reads(rendered: list[dict[str, Any]]) -> None:
    deployments = of_kind(rendered, "Deployment")
    for app in APPS:
        settings_module = importlib.import_module(f"{app}.settings")
        [settings_class] = [
            value
            for name, value in vars(settings_module).items()
            if name.endswith("Settings") and getattr(value, "__module__", "") == settings_module.__name__
        ]
        prefix = settings_class.model_config["env_prefix"]
        fields = {name.upper() for name in settings_class.model_fields}
        env = deployments[app]["spec"]["template"]["spec"]["containers"][0]["env"]
        # Variables there only to be expanded into another ($(ORDERS_DB_PASSWORD) in a URL) are not settings.
        expanded = {name for item in env for name in re.findall(r"\$\((\w+)\)", item.get("value", ""))}
        for item in env:
            if item["name"].startswith(prefix) and item["name"] not in expanded:
                assert item["name"].removeprefix(prefix) in fields, (app, item["name"])


def test_every_app_gets_its_credential_and_accepts_exactly_its_callers(
    rendered: list[dict[str, Any]],
) -> None:
    """As `task up` does (lockstock_db.credentials), from the lockstock-service-credentials Secret."""
    deployments = of_kind(rendered, "Deployment")
    for app in APPS:
        [container, *_] = deployments[app]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container["env"]}
        own = env.get(f"{app.upper()}_SERVICE_TOKEN")
        if app in CALLING_APPS:
            assert own, app
            assert own["valueFrom"]["secretKeyRef"] == {"name": "lockstock-service-credentials", "key": app}
        else:
            assert own is None, app
        accepted = env.get(f"{app.upper()}_CALLER_TOKENS")
        if app not in ACCEPTED:
            assert accepted is None, app
            continue
        assert accepted, app
        callers = json.loads(accepted["value"])
        assert set(callers) == set(ACCEPTED[app]), app
        for caller, value in callers.items():
            [variable] = re.fullmatch(r"\$\((\w+)\)", value).groups()  # type: ignore[union-attr]
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "lockstock-service-credentials", "key": caller}, (app, caller)


def test_the_ingress_serves_the_shop_the_admin_and_graphql(rendered: list[dict[str, Any]]) -> None:
    [ingress] = of_kind(rendered, "Ingress").values()
    services = of_kind(rendered, "Service")
    backends = {
        (path["path"], path["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {("/", "web"), ("/", "admin"), ("/graphql", "gateway")}
    for _, name in backends:
        assert "http" in {port["name"] for port in services[name]["spec"]["ports"]}


def test_nats_jetstream_is_an_optional_stateful_set_only_dev_includes() -> None:
    dev, prod = (render(K8S / "overlays" / name) for name in OVERLAYS)
    [nats] = of_kind(dev, "StatefulSet").values()
    assert nats["spec"]["volumeClaimTemplates"]
    assert "jetstream" in of_kind(dev, "ConfigMap")["nats"]["data"]["nats.conf"]
    assert not of_kind(prod, "StatefulSet")
    # The worker is the NATS client: labelled so the brokers let it in, given the URL only where they run.
    for objects in (dev, prod):
        worker = of_kind(objects, "Deployment")["notifications"]["spec"]["template"]
        assert worker["metadata"]["labels"]["lockstock.dev/nats-client"] == "true"
        [ref] = [
            item["valueFrom"]["configMapKeyRef"]
            for item in worker["spec"]["containers"][0]["env"]
            if item["name"] == "NOTIFICATIONS_NATS_URL"
        ]
        assert ref == {"name": "lockstock-nats", "key": "url", "optional": True}
    assert of_kind(dev, "ConfigMap")["lockstock-nats"]["data"]["url"] == "nats://nats:4222"
    assert "lockstock-nats" not in of_kind(prod, "ConfigMap")
    [client_rule] = [
        rule
        for rule in of_kind(dev, "NetworkPolicy")["nats"]["spec"]["ingress"]
        if rule["from"] == [{"podSelector": {"matchLabels": {"lockstock.dev/nats-client": "true"}}}]
    ]
    assert client_rule["ports"] == [{"protocol": "TCP", "port": 4222}]
    egress = of_kind(dev, "NetworkPolicy")["nats-clients"]["spec"]["egress"]
    assert egress == [
        {
            "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}}}],
            "ports": [{"protocol": "TCP", "port": 4222}],
        }
    ]
