"""Deployment files: Kubernetes schemas, the embedded gateway configs, the security posture, systemd."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from gateway.config import Config, config_from_text

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_strictly_against_kubernetes_schema(path):
    for doc in docs(path):
        kubernetes_validate.validate(doc, "1.37.0", strict=True)  # raises on any schema error


def _containers(doc: dict) -> list[tuple[dict, dict]]:
    """(pod spec, container) for every container of a workload, its init containers (native sidecars) too."""
    spec = doc.get("spec", {}).get("template", {}).get("spec")
    return [(spec, c) for c in spec.get("initContainers", []) + spec["containers"]] if spec else []


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_a_non_root_container_can_read_the_secrets_it_mounts(path):
    # A secret volume's files belong to root; with defaultMode 0400 only root can read them unless the
    # pod sets fsGroup (the kubelet then gives that group read access). The sidecar ran the gateway as
    # user 10001 with no fsGroup: it could not read its signing key and never started.
    for doc in docs(path):
        for pod, c in _containers(doc):
            secrets = {v["name"]: v["secret"].get("defaultMode", 0o644) for v in pod.get("volumes", []) if "secret" in v}
            uid = c.get("securityContext", {}).get("runAsUser", pod.get("securityContext", {}).get("runAsUser"))
            for m in c.get("volumeMounts", []):
                mode = secrets.get(m["name"])
                if mode is None or uid == 0 or mode & 0o004:
                    continue
                assert pod.get("securityContext", {}).get("fsGroup") is not None, \
                    f"{c['name']} (user {uid}) cannot read secret volume {m['name']} (mode {mode:o}, no fsGroup)"


def test_the_sidecar_starts_before_the_app_and_stops_after_it():
    # As a plain container the gateway started beside the app (whose first calls met a closed port)
    # and got SIGTERM with it: it stopped listening while the app was still finishing its own work.
    # A native sidecar (an init container that restarts Always) with a startup probe is up before the
    # app starts and is stopped only once the app has exited.
    (dep,) = [d for d in docs(DEPLOY / "kubernetes" / "sidecar.yaml") if d["kind"] == "Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (gw,) = [c for c in pod.get("initContainers", []) if "soberana" in c["image"]]
    assert gw.get("restartPolicy") == "Always"
    assert gw.get("startupProbe"), "the app would start before the gateway listens"
    assert all("soberana" not in c["image"] for c in pod["containers"])


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_container_is_non_root_read_only_and_unprivileged(path):
    found = 0
    for doc in docs(path):
        for pod, c in _containers(doc):
            found += 1
            sc = c.get("securityContext", {})
            assert pod.get("securityContext", {}).get("runAsNonRoot") is True
            assert sc.get("readOnlyRootFilesystem") is True, c["name"]
            assert sc.get("allowPrivilegeEscalation") is False, c["name"]
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
            assert pod.get("automountServiceAccountToken") is False
    assert found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_soberana_containers_have_health_checks_and_drain_time(path):
    for doc in docs(path):
        for pod, c in _containers(doc):
            if "soberana" in c["image"]:
                assert c.get("readinessProbe") and c.get("livenessProbe")
                assert pod["terminationGracePeriodSeconds"] >= 30


def test_network_policy_limits_egress_to_dns_and_configured_upstreams():
    (np,) = [d for d in docs(DEPLOY / "kubernetes" / "gateway.yaml") if d["kind"] == "NetworkPolicy"]
    assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for rule in np["spec"]["egress"]:
        assert rule.get("to"), "no egress rule may allow every destination"
        assert rule.get("ports"), "every egress rule names its ports"


def test_prometheus_is_told_where_the_metrics_are_and_may_reach_them():
    # /-/metrics, not /metrics (what annotation discovery asks by default); and the NetworkPolicy let
    # in only caller namespaces, so no Prometheus could scrape the fleet.
    objs = {d["kind"]: d for d in docs(DEPLOY / "kubernetes" / "gateway.yaml")}
    pod = objs["Deployment"]["spec"]["template"]
    ann = pod["metadata"].get("annotations", {})
    assert ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/-/metrics"
    assert ann.get("prometheus.io/port") == str(pod["spec"]["containers"][0]["ports"][0]["containerPort"])
    sources = [r["from"] for r in objs["NetworkPolicy"]["spec"]["ingress"]]
    assert [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}] in sources


def test_embedded_gateway_configs_are_valid_configs():
    (cm,) = [d for d in docs(DEPLOY / "kubernetes" / "gateway.yaml") if d["kind"] == "ConfigMap"]
    cfg = config_from_text(cm["data"]["soberana.yaml"], "gateway.yaml")
    assert cfg.audit.stdout and cfg.auth.mode == "jwt"
    values = yaml.safe_load((DEPLOY / "helm" / "soberana" / "values.yaml").read_text())
    cfg = config_from_text(yaml.safe_dump(values["config"]), "values.yaml")
    assert {u.residency for u in cfg.upstreams} == {"BR", "US"}


def test_helm_chart_metadata_and_templates_are_present():
    chart = yaml.safe_load((DEPLOY / "helm" / "soberana" / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "soberana"
    names = {p.name for p in (DEPLOY / "helm" / "soberana" / "templates").iterdir()}
    assert {"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "networkpolicy.yaml", "configmap.yaml"} <= names


def test_dockerfile_runs_as_non_root_with_a_health_check():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text and "/-/healthz" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_verifies(tmp_path):
    unit = (DEPLOY / "systemd" / "soberana.service").read_text()
    soberana = shutil.which("soberana") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "soberana")
    path = tmp_path / "soberana.service"
    path.write_text(unit.replace("/usr/local/bin/soberana", soberana))
    out = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "KillSignal=SIGTERM" in unit
