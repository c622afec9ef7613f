"""The Helm chart, rendered by Helm's own Go engine (helm-python-sdk bundles libhelm_c, a C ABI over
the official Helm v4 SDK: same templates, Sprig functions and value merging as `helm template`),
then validated strictly against the Kubernetes schema."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from gateway.config import config_from_text

helm = pytest.importorskip(
    "helm_python", reason="helm-python-sdk not installed (it is in the `test` extra: pip install -e '.[test]')"
)

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "soberana"
K8S = "1.37.0"


def render(values: dict | None = None) -> list[dict]:
    """`helm template demo CHART -n prod [-f values]` as a list of documents."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values or {}, name="demo", namespace="prod")
    docs = [d for text in manifests.values() for d in yaml.safe_load_all(text) if d]
    assert docs, "the chart rendered nothing"
    return docs


def kinds(docs: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for d in docs:
        assert d["kind"] not in out, f"two {d['kind']} objects"
        out[d["kind"]] = d
    return out


OVERRIDE = {
    # an operator's `-f values.yaml`: Helm merges maps key by key and replaces lists; null deletes a key
    "replicas": 2,
    "workers": 4,
    "autoscaling": {"enabled": False},
    "networkPolicy": {"enabled": False},
    "image": {"tag": "9.9.9"},
    "config": {
        "jurisdiction": "AR",
        "upstreams": [{"name": "ar-local", "url": "http://llm.ar.svc:8000/v1", "residency": "AR"}],
        "models": {"gpt-4o-mini": None, "llama": [{"upstream": "ar-local", "model": "llama-3.3-70b"}]},
        "tracing": {"enabled": True, "otlp_endpoint": "http://otel-collector.observability:4318/v1/traces",
                    "sample_ratio": 0.1},
    },
}


@pytest.mark.parametrize("values", [None, "override"], ids=["defaults", "override"])
def test_rendered_chart_validates_strictly_against_kubernetes_schema(values):
    docs = render(copy.deepcopy(OVERRIDE) if values else None)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)  # raises on any schema error


def test_defaults_render_every_object_with_a_secure_pod():
    objs = kinds(render())
    assert set(objs) == {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "Service"}
    dep = objs["Deployment"]
    assert "replicas" not in dep["spec"], "the HPA owns the replica count when autoscaling is on"
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert c["readinessProbe"] and c["livenessProbe"] and pod["terminationGracePeriodSeconds"] >= 30
    assert c["image"] == "ghcr.io/soberana/soberana:0.1.0"
    # every object selects and is labelled as the same release
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel == {"app.kubernetes.io/name": "soberana", "app.kubernetes.io/instance": "demo"}
    assert objs["Service"]["spec"]["selector"] == sel == objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert objs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert pod["volumes"][0]["configMap"]["name"] == objs["ConfigMap"]["metadata"]["name"]


def test_defaults_render_a_network_policy_with_no_open_egress():
    np = kinds(render())["NetworkPolicy"]
    egress = np["spec"]["egress"]
    assert len(egress) == 3  # DNS + the two configured upstreams
    for rule in egress:
        assert rule["to"] and rule["ports"]
    assert egress[2]["to"] == [{"ipBlock": {"cidr": "162.159.140.0/24"}}]


def test_rendered_config_map_holds_a_valid_gateway_config():
    cm = kinds(render())["ConfigMap"]
    cfg = config_from_text(cm["data"]["soberana.yaml"], "configmap.yaml")
    assert cfg.auth.mode == "jwt" and cfg.audit.stdout
    assert {u.residency for u in cfg.upstreams} == {"BR", "US"}


def test_override_values_change_what_they_say():
    objs = kinds(render(copy.deepcopy(OVERRIDE)))
    assert "HorizontalPodAutoscaler" not in objs and "NetworkPolicy" not in objs
    dep = objs["Deployment"]
    assert dep["spec"]["replicas"] == 2
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "ghcr.io/soberana/soberana:9.9.9"
    assert c["args"][-2:] == ["--workers", "4"]
    cfg = config_from_text(objs["ConfigMap"]["data"]["soberana.yaml"], "configmap.yaml")
    assert cfg.jurisdiction == "AR" and [u.name for u in cfg.upstreams] == ["ar-local"]
    assert list(cfg.models) == ["llama"]
    assert cfg.tracing.enabled and cfg.tracing.sample_ratio == 0.1
    assert cfg.auth.jwt.issuer == "https://idp.gov.example", "keys not overridden keep the chart's defaults"


TLS = {"tlsSecret": "soberana-tls",
       "config": {"listen": {"tls": {"cert_file": "/var/lib/soberana/tls/tls.crt",
                                                  "key_file": "/var/lib/soberana/tls/tls.key"}}}}


def test_tls_values_mount_the_secret_and_probe_over_https():
    docs = render(copy.deepcopy(TLS))
    for d in docs:
        kubernetes_validate.validate(d, K8S, strict=True)
    dep = kinds(docs)["Deployment"]["spec"]["template"]["spec"]
    (c,) = dep["containers"]
    assert {"name": "tls", "mountPath": "/var/lib/soberana/tls", "readOnly": True} in c["volumeMounts"]
    assert {"name": "tls", "secret": {"secretName": "soberana-tls", "defaultMode": 0o400}} in dep["volumes"]
    assert c["readinessProbe"]["httpGet"]["scheme"] == c["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    plain = kinds(render())["Deployment"]["spec"]["template"]["spec"]
    assert plain["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert all(v["name"] != "tls" for v in plain["volumes"])


def test_mutual_tls_on_the_port_is_refused_with_the_reason():
    values = copy.deepcopy(TLS)
    values["config"]["listen"]["tls"]["client_ca_file"] = "/var/lib/soberana/tls/ca.crt"
    with pytest.raises(Exception) as e:
        render(values)
    assert "cannot present a client certificate" in str(e.value)


def test_config_change_rolls_the_pods():
    """The pod template carries a checksum of the config, so `helm upgrade` with a new config restarts pods."""
    a = kinds(render())["Deployment"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = kinds(render(copy.deepcopy(OVERRIDE)))["Deployment"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert len(a) == 64 and a != b


def test_helm_lint_reports_no_errors_or_warnings():
    report = helm.lint(CHART, strict=True, kube_version="v1.37.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_pod_port_probes_and_network_policy_follow_config_listen_port():
    # containerPort and the NetworkPolicy's ingress port were fixed at 8080: with config.listen.port
    # set to another port the gateway listened there, the probes (on the named port) and the
    # Service's targetPort went to 8080, and the pods never became ready.
    values = {"config": {"listen": {"port": 9443}}}
    docs = render(copy.deepcopy(values))
    for d in docs:
        kubernetes_validate.validate(d, K8S, strict=True)
    objs = kinds(docs)
    (c,) = objs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert c["ports"] == [{"name": "http", "containerPort": 9443, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"]["port"] == c["livenessProbe"]["httpGet"]["port"] == "http"
    assert objs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert objs["NetworkPolicy"]["spec"]["ingress"][0]["ports"] == [{"port": 9443, "protocol": "TCP"}]
    cfg = config_from_text(objs["ConfigMap"]["data"]["soberana.yaml"], "configmap.yaml")
    assert cfg.listen.port == 9443
    default = kinds(render())
    assert default["Deployment"]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080
    assert default["NetworkPolicy"]["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_prometheus_is_told_where_the_metrics_are_and_may_reach_them():
    # The metrics are at /-/metrics on the gateway's port, and the NetworkPolicy let in only caller
    # namespaces: Prometheus (annotation discovery asks /metrics by default) could neither find nor
    # reach them. The pod says path and port, and the policy admits the monitoring namespace.
    objs = kinds(render())
    pod = objs["Deployment"]["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/path"] == "/-/metrics"
    assert ann["prometheus.io/port"] == str(c["ports"][0]["containerPort"])
    ingress = objs["NetworkPolicy"]["spec"]["ingress"]
    monitoring = [r for r in ingress if r["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]]
    assert monitoring and monitoring[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    off = kinds(render({"networkPolicy": {"metricsNamespaceLabel": None}}))["NetworkPolicy"]["spec"]["ingress"]
    assert len(off) == 1, "no monitoring rule when none is asked for"


def test_the_disruption_budget_always_lets_a_node_drain_evict_a_pod():
    # minAvailable: 2 was fixed while the replica count was the operator's: with `replicas: 2` (or an
    # HPA minimum of 2) no pod could ever be evicted and every `kubectl drain` of their nodes hung.
    for values in (copy.deepcopy(OVERRIDE), {"autoscaling": {"minReplicas": 2}}, None):
        objs = kinds(render(values))
        spec = objs["PodDisruptionBudget"]["spec"]
        dep = objs["Deployment"]["spec"]
        fewest = dep.get("replicas") or objs["HorizontalPodAutoscaler"]["spec"]["minReplicas"]
        allowed = spec["maxUnavailable"] if "maxUnavailable" in spec else fewest - spec["minAvailable"]
        assert allowed >= 1, (values, spec)
    with pytest.raises(Exception) as e:  # asked for explicitly: refused, with the reason
        render({"replicas": 2, "autoscaling": {"enabled": False}, "podDisruptionBudget": {"minAvailable": 2}})
    assert "node drains would hang" in str(e.value)
    spec = kinds(render({"podDisruptionBudget": {"minAvailable": 2}}))["PodDisruptionBudget"]["spec"]
    assert spec == {"minAvailable": 2, "selector": spec["selector"]}  # below the HPA's 3: kept


def test_the_audit_and_keys_volumes_are_mounted_where_the_config_says():
    # The volumes were mounted at fixed paths: with config.audit.path or config.keys set elsewhere,
    # the gateway looked for its keys where none were mounted and wrote its audit chain to the
    # read-only root filesystem, and no worker started.
    values = {"config": {"audit": {"path": "/srv/soberana/audit"}, "keys": "/srv/soberana/keys"}}
    docs = render(copy.deepcopy(values))
    for d in docs:
        kubernetes_validate.validate(d, K8S, strict=True)
    objs = kinds(docs)
    (c,) = objs["Deployment"]["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    cfg = config_from_text(objs["ConfigMap"]["data"]["soberana.yaml"], "configmap.yaml")
    assert mounts["audit"] == cfg.audit.path == "/srv/soberana/audit"
    assert mounts["keys"] == cfg.keys == "/srv/soberana/keys"
    (c,) = kinds(render())["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert {m["name"]: m["mountPath"] for m in c["volumeMounts"]}["audit"] == "/var/lib/soberana/audit"
    with pytest.raises(Exception) as e:  # relative: under /etc/soberana, the read-only config map
        render({"config": {"audit": {"path": "var/audit"}}})
    assert "config.audit.path (var/audit) must be absolute" in str(e.value)
