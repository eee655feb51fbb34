//! The Helm chart (charts/wasmgate), with real Helm (scripts/build-helm.sh: v3 built from its Go
//! module, cached like the control plane) and, where a cluster is needed, the real kube-apiserver
//! of tests/support:
//!
//! - `chart_lints_with_each_values_file`: `helm lint --strict` with each `ci/*-values.yaml`.
//! - `manifests_and_chart_agree`: `kubectl kustomize manifests/` (+ `webhooks/`) and `helm template`
//!   with the default values render the same objects (labels Helm adds aside), and so do the
//!   cert-manager and NetworkPolicy variants; the chart's CRDs are manifests/crds/'s. Fails when
//!   one side changes alone.
//! - `chart_on_a_real_apiserver`: each values file rendered and applied with `kubectl apply
//!   --dry-run=server`; then a real `helm install` (its objects exist, `helm status` says
//!   deployed), `helm upgrade` with other values, and `helm uninstall` (its objects are gone).
//! - `first_hour_guide_as_written`: README's first-hour commands, read from README and run in
//!   order against a real kube-apiserver, a real nats-server with JetStream and three hosts
//!   heartbeating through it: `helm install`; for `rollout status` (no kubelet here) wasmgate
//!   itself, with the rendered Deployment's arguments and environment and the chart
//!   ServiceAccount's token, behind the chart's Service; then the APIService Available (the
//!   leader wrote its caBundle), `kubectl get hosts` listing the three Ready, hello-kv admitted
//!   with warnings, the broken workload denied naming postgres, its resolution True, the
//!   dashboard's ConfigMap.
//!
//! Environment: as tests/support (CI=true makes them mandatory; WASMGATE_SKIP_E2E=1 skips them
//! locally); `WASMGATE_HELM_BIN=DIR` uses the helm in DIR instead of scripts/build-helm.sh.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{
    announce, control_plane_bin, poll, repo_root, run_bounded, scenario, start_cluster, Kubectl,
    Output,
};

const CHART: &str = "charts/wasmgate";
const NAMESPACE: &str = "wasmgate-system";

/// Labels the chart adds to every object besides manifests/' `app.kubernetes.io/name`.
const HELM_LABELS: [&str; 4] = [
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
];

// ---------------------------------------------------------------------------------------------
// helm
// ---------------------------------------------------------------------------------------------

/// The directory holding `helm`, built (cached) by scripts/build-helm.sh. `None`: skip (only with
/// WASMGATE_SKIP_E2E=1 and not required; [`control_plane_bin`] announces it).
fn helm_bin() -> Option<PathBuf> {
    // The same skip rules as the e2e tests (and kubectl comes from the control plane anyway).
    control_plane_bin()?;
    if let Some(dir) = std::env::var_os("WASMGATE_HELM_BIN") {
        return Some(PathBuf::from(dir));
    }
    Some(support::cached_tool_dir("build-helm.sh", "helm"))
}

/// helm with its own config, cache and data directories (none of the user's repositories or
/// plugins), and optionally a cluster's kubeconfig.
struct Helm {
    bin: PathBuf,
    home: tempfile::TempDir,
    kubeconfig: Option<PathBuf>,
}

impl Helm {
    fn new(dir: &Path, kubeconfig: Option<PathBuf>) -> Helm {
        Helm {
            bin: dir.join("helm"),
            home: tempfile::Builder::new()
                .prefix("wasmgate-helm-")
                .tempdir()
                .expect("create a temporary directory"),
            kubeconfig,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(repo_root());
        for (var, sub) in [
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_DATA_HOME", "data"),
        ] {
            cmd.env(var, self.home.path().join(sub));
        }
        match &self.kubeconfig {
            Some(k) => cmd.env("KUBECONFIG", k),
            // No cluster: make sure nothing reaches the user's.
            None => cmd.env("KUBECONFIG", self.home.path().join("no-kubeconfig")),
        };
        run_bounded(cmd, None, Duration::from_secs(120))
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.success(), "helm failed: {}", out.describe());
        out
    }

    /// `helm template wasmgate charts/wasmgate -n wasmgate-system ARGS...`, parsed.
    fn template(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["template", "wasmgate", CHART, "-n", NAMESPACE];
        all.extend_from_slice(args);
        parse_yaml_stream(&self.ok(&all).stdout)
    }
}

/// The values files of charts/wasmgate/ci/, by path relative to the repository.
fn values_files() -> Vec<String> {
    let dir = repo_root().join(CHART).join("ci");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("read ci/")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with("-values.yaml"))
        .map(|n| format!("{CHART}/ci/{n}"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the ci/ values files, found {files:?}"
    );
    files
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

/// Every object of a multi-document YAML stream (empty documents and `List`s expanded).
fn parse_yaml_stream(text: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"));
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref o) if o.get("kind") == Some(&json!("List")) => {
                out.extend(o["items"].as_array().cloned().unwrap_or_default())
            }
            v => out.push(v),
        }
    }
    out
}

/// `Kind/namespace/name` of an object.
fn key(obj: &Value) -> String {
    format!(
        "{}/{}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for o in objects {
        let k = key(&o);
        assert!(map.insert(k.clone(), o).is_none(), "{k} rendered twice");
    }
    map
}

/// Removes the labels Helm adds (on objects and Pod templates), and empty label maps.
fn strip_helm_labels(obj: &mut Value) {
    fn strip(labels: &mut Value) {
        if let Some(map) = labels.as_object_mut() {
            for l in HELM_LABELS {
                map.remove(l);
            }
        }
    }
    // (`obj[...]` on a missing key would insert a null: only look where the labels are.)
    if let Some(labels) = obj.pointer_mut("/metadata/labels") {
        strip(labels);
    }
    if let Some(labels) = obj.pointer_mut("/spec/template/metadata/labels") {
        strip(labels);
    }
}

/// Removes `metadata.annotations[name]` (and the map, when that empties it).
fn remove_annotation(obj: &mut Value, name: &str) {
    let meta = obj["metadata"].as_object_mut().expect("metadata");
    if let Some(Value::Object(a)) = meta.get_mut("annotations") {
        a.remove(name);
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// A Deployment's volumes (by name) and its containers' volumeMounts (by mountPath) in a fixed
/// order: their order means nothing, and a strategic-merge patch puts its own first.
fn sort_volumes(mut obj: Value) -> Value {
    fn sort_by(list: Option<&mut Value>, field: &str) {
        if let Some(Value::Array(items)) = list {
            items.sort_by(|a, b| a[field].to_string().cmp(&b[field].to_string()));
        }
    }
    if obj["kind"] == "Deployment" {
        if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
            sort_by(spec.get_mut("volumes"), "name");
            if let Some(Value::Array(containers)) = spec.get_mut("containers") {
                for c in containers {
                    sort_by(c.get_mut("volumeMounts"), "mountPath");
                }
            }
        }
    }
    obj
}

/// Paths where `a` and `b` differ (`a` is manifests/', `b` the chart's), one line each.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => differences(&p, va, vb, out),
                    (Some(va), None) => out.push(format!("{p}: only in manifests: {va}")),
                    (None, Some(vb)) => out.push(format!("{p}: only in the chart: {vb}")),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        // kustomize prints `0.0` as `0`: numbers are compared by value.
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a != b => out.push(format!("{path}: manifests {a} / chart {b}")),
        _ => {}
    }
}

/// Asserts that both sides hold the same objects (by kind, namespace and name) and that each pair
/// is equal once Helm's labels are removed from the chart's; names every difference.
fn assert_same_objects(what: &str, manifests: Vec<Value>, chart: Vec<Value>) {
    let manifests = by_key(manifests.into_iter().map(sort_volumes).collect());
    let chart = by_key(
        chart
            .into_iter()
            .map(|mut o| {
                strip_helm_labels(&mut o);
                sort_volumes(o)
            })
            .collect(),
    );
    let left: BTreeSet<&String> = manifests.keys().collect();
    let right: BTreeSet<&String> = chart.keys().collect();
    assert_eq!(
        left, right,
        "{what}: manifests (left) and the chart (right) render different objects"
    );
    let mut diffs = Vec::new();
    for (k, m) in &manifests {
        differences(k, m, &chart[k], &mut diffs);
    }
    assert!(
        diffs.is_empty(),
        "{what}: manifests and the chart differ (change both sides together):\n  {}",
        diffs.join("\n  ")
    );
}

/// `kubectl kustomize DIR`, parsed.
fn kustomize(kubectl_bin: &Path, dir: &str) -> Vec<Value> {
    let mut cmd = Command::new(kubectl_bin);
    cmd.args(["kustomize", dir]).current_dir(repo_root());
    let out = run_bounded(cmd, None, Duration::from_secs(60));
    assert!(out.success(), "{}", out.describe());
    parse_yaml_stream(&out.stdout)
}

/// The objects manifests/ and webhooks/ define, without the Namespace (which the chart renders
/// only with `namespace.create=true`: Helm makes it with --create-namespace) and without the
/// cert-manager annotation, which the chart sets only in certManager mode.
fn manifests_base(kubectl_bin: &Path) -> Vec<Value> {
    let mut objects = kustomize(kubectl_bin, "manifests/");
    objects.extend(kustomize(kubectl_bin, "webhooks/"));
    objects
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .map(|mut o| {
            remove_annotation(&mut o, "cert-manager.io/inject-ca-from");
            o
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn chart_lints_with_each_values_file() {
    let Some(dir) = helm_bin() else { return };
    let helm = Helm::new(&dir, None);
    for file in values_files() {
        let out = helm.ok(&["lint", "--strict", CHART, "-f", &file]);
        assert!(
            out.stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{file}: {}",
            out.describe()
        );
    }
    // Contradictory values are refused with a message, not rendered.
    for (set, message) in [
        ("certificates.mode=bogus", "certificates.mode must be"),
        (
            "certificates.mode=files",
            "needs certificates.files.secretName",
        ),
        ("nats.creds.secretName=c", "need nats.url"),
        (
            "nats.inventoryLog=kafka",
            "nats.inventoryLog must be jetstream or memory",
        ),
    ] {
        let out = helm.run(&["template", "wasmgate", CHART, "--set", set]);
        assert!(
            !out.success() && out.stderr.contains(message),
            "--set {set}: {}",
            out.describe()
        );
    }
    let out = helm.run(&[
        "template",
        "wasmgate",
        CHART,
        "--set",
        "nats.url=nats://n:4222,nats.creds.secretName=c,nats.nkey.secretName=k",
    ]);
    assert!(
        !out.success() && out.stderr.contains("conflict"),
        "{}",
        out.describe()
    );
}

#[test]
fn manifests_and_chart_agree() {
    let Some(dir) = helm_bin() else { return };
    let kubectl = control_plane_bin()
        .expect("helm_bin() returned, so the control plane is there")
        .join("kubectl");
    let helm = Helm::new(&dir, None);

    scenario(
        "default values: the objects of manifests/ and webhooks/",
        || {
            let chart = helm.template(&["--include-crds"]);
            assert_same_objects("default values", manifests_base(&kubectl), chart);
        },
    );

    scenario(
        "namespace.create=true renders manifests/namespace.yaml",
        || {
            let mut ns: Vec<Value> = kustomize(&kubectl, "manifests/")
                .into_iter()
                .filter(|o| o["kind"] == "Namespace")
                .collect();
            assert_eq!(ns.len(), 1, "{ns:?}");
            let chart: Vec<Value> = helm
                .template(&["--set", "namespace.create=true"])
                .into_iter()
                .filter(|o| o["kind"] == "Namespace")
                .collect();
            assert_same_objects("namespace.create=true", ns.split_off(0), chart);
        },
    );

    scenario(
        "certManager: manifests/cert-manager/ and its Deployment patch",
        || {
            let mut expected = Vec::new();
            for mut o in manifests_base(&kubectl) {
                let kind = o["kind"].as_str().unwrap_or("").to_owned();
                if matches!(
                    kind.as_str(),
                    "APIService"
                        | "ValidatingWebhookConfiguration"
                        | "MutatingWebhookConfiguration"
                ) {
                    o["metadata"]["annotations"] = json!({
                        "cert-manager.io/inject-ca-from": "wasmgate-system/wasmgate-serving"
                    });
                }
                if kind == "Deployment" {
                    // The strategic-merge patch README tells users to apply.
                    let mut cmd = Command::new(&kubectl);
                    cmd.args([
                        "patch",
                        "--local",
                        "-f",
                        "-",
                        "--type=strategic",
                        "--patch-file",
                        "manifests/cert-manager/deployment-patch.yaml",
                        "-o",
                        "json",
                    ])
                    .current_dir(repo_root());
                    let out = run_bounded(cmd, Some(&o.to_string()), Duration::from_secs(60));
                    assert!(out.success(), "{}", out.describe());
                    o = serde_json::from_str(&out.stdout).expect("kubectl patch printed JSON");
                }
                expected.push(o);
            }
            expected.extend(kustomize(&kubectl, "manifests/cert-manager/"));
            let chart =
                helm.template(&["--include-crds", "--set", "certificates.mode=certManager"]);
            assert_same_objects("certManager", expected, chart);
        },
    );

    scenario("networkPolicy.enabled: manifests/networkpolicy/", || {
        let mut expected = manifests_base(&kubectl);
        expected.extend(kustomize(&kubectl, "manifests/networkpolicy/"));
        let chart = helm.template(&["--include-crds", "--set", "networkPolicy.enabled=true"]);
        assert_same_objects("networkPolicy.enabled", expected, chart);
    });

    scenario("the chart's CRDs are manifests/crds/", || {
        let crds = repo_root().join("manifests/crds");
        let chart_crds = repo_root().join(CHART).join("crds");
        let names = |dir: &Path| -> BTreeSet<String> {
            std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("runtime.wasmcloud.dev_"))
                .collect()
        };
        assert_eq!(names(&crds), names(&chart_crds));
        assert_eq!(names(&chart_crds).len(), 3);
        for n in names(&crds) {
            assert_eq!(
                std::fs::read_to_string(crds.join(&n)).expect("read"),
                std::fs::read_to_string(chart_crds.join(&n)).expect("read"),
                "{CHART}/crds/{n} differs from manifests/crds/{n}: \
                 cp manifests/crds/runtime.wasmcloud.dev_*.yaml {CHART}/crds/"
            );
        }
    });

    scenario("the chart's appVersion is wasmgate's version", || {
        let chart = std::fs::read_to_string(repo_root().join(CHART).join("Chart.yaml"))
            .expect("read Chart.yaml");
        let chart: Value = serde_saphyr::from_str(&chart).expect("Chart.yaml is YAML");
        assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    });

    scenario("values reach the objects they configure", || {
        let objects = by_key(helm.template(&["-f", "charts/wasmgate/ci/nats-tls-values.yaml"]));
        let deploy = &objects[&format!("Deployment/{NAMESPACE}/wasmgate")];
        let container = &deploy["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for want in [
            "--nats-url=tls://nats.wasmcloud.svc:4222",
            "--nats-tls-ca=/etc/wasmgate/nats/ca/ca.crt",
            "--nats-tls-cert=/etc/wasmgate/nats/client/tls.crt",
            "--nats-tls-key=/etc/wasmgate/nats/client/tls.key",
            "--nats-creds=/etc/wasmgate/nats/creds/nats.creds",
            "--unknown-world=deny",
            // Two replicas on one NATS share one inventory log by default.
            "--inventory-log=jetstream",
            "--inventory-stream=WASMGATE_INVENTORY",
            "--inventory-stream-storage=file",
            "--inventory-stream-replicas=1",
        ] {
            assert!(args.contains(&want), "{want} not in {args:?}");
        }
        // Each file the args name is in a mounted Secret.
        let mounts = container["volumeMounts"].as_array().expect("mounts");
        let volumes = deploy["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes");
        for (dir, secret) in [
            ("/etc/wasmgate/nats/ca", "nats-ca"),
            ("/etc/wasmgate/nats/client", "wasmgate-nats-client"),
            ("/etc/wasmgate/nats/creds", "wasmgate-nats-creds"),
        ] {
            let mount = mounts
                .iter()
                .find(|m| m["mountPath"] == dir)
                .unwrap_or_else(|| panic!("nothing mounted at {dir}: {mounts:?}"));
            assert_eq!(mount["readOnly"], true);
            let volume = volumes
                .iter()
                .find(|v| v["name"] == mount["name"])
                .expect("the mount's volume");
            assert_eq!(volume["secret"]["secretName"], secret, "{volume}");
        }
        assert!(container["env"]
            .as_array()
            .expect("env")
            .contains(&json!({"name": "RUST_LOG", "value": "info"})));
        for kind in [
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ] {
            let hook = &objects[&format!("{kind}//wasmgate")]["webhooks"][0];
            assert_eq!(hook["failurePolicy"], "Ignore", "{hook}");
            assert_eq!(hook["timeoutSeconds"], 5, "{hook}");
            assert_eq!(
                hook["namespaceSelector"]["matchExpressions"][0]["values"],
                json!(["kube-system"]),
                "{hook}"
            );
        }

        let objects = by_key(helm.template(&["-f", "charts/wasmgate/ci/nats-nkey-values.yaml"]));
        let container = &objects[&format!("Deployment/{NAMESPACE}/wasmgate")]["spec"]["template"]
            ["spec"]["containers"][0];
        assert_eq!(
            container["image"],
            "registry.example/wasmgate@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(container["imagePullPolicy"], "IfNotPresent");
        assert!(container["args"]
            .as_array()
            .expect("args")
            .contains(&json!("--nats-nkey=/etc/wasmgate/nats/nkey/nkey.seed")));

        // No ServiceMonitor unless enabled.
        let defaults = by_key(helm.template(&[]));
        assert!(!defaults.keys().any(|k| k.starts_with("ServiceMonitor/")));
        let with_monitor = by_key(helm.template(&["--set", "serviceMonitor.enabled=true"]));
        let monitor = &with_monitor[&format!("ServiceMonitor/{NAMESPACE}/wasmgate")];
        assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
        assert_eq!(
            monitor["spec"]["endpoints"][0]["tlsConfig"]["ca"]["secret"]["name"],
            "wasmgate-tls"
        );

        // The dashboard ConfigMap and the PrometheusRule only when enabled, and then carrying
        // the repository's files unchanged (tests/observability.rs checks the files).
        assert!(
            !defaults
                .keys()
                .any(|k| k.starts_with("PrometheusRule/") || k.starts_with("ConfigMap/")),
            "{:?}",
            defaults.keys()
        );
        let observed = by_key(helm.template(&[
            "--set",
            "dashboards.enabled=true,prometheusRule.enabled=true,prometheusRule.labels.release=prometheus",
        ]));
        let dashboard = &observed[&format!("ConfigMap/{NAMESPACE}/wasmgate-dashboard")];
        assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
        let file = |path: &str| {
            std::fs::read_to_string(repo_root().join(CHART).join(path))
                .unwrap_or_else(|e| panic!("{CHART}/{path}: {e}"))
        };
        let rendered: Value = serde_json::from_str(
            dashboard["data"]["wasmgate.json"]
                .as_str()
                .expect("data.wasmgate.json"),
        )
        .expect("the ConfigMap's dashboard is JSON");
        let json_file: Value =
            serde_json::from_str(&file("dashboards/wasmgate.json")).expect("the dashboard is JSON");
        assert_eq!(rendered, json_file);
        let rule = &observed[&format!("PrometheusRule/{NAMESPACE}/wasmgate")];
        assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
        let rules_file: Value =
            serde_saphyr::from_str(&file("rules/wasmgate.rules.yaml")).expect("the rules are YAML");
        assert_eq!(rule["spec"], rules_file);
    });
}

/// Minimal CRDs for the kinds the chart may render whose operators are not installed in the test
/// cluster: cert-manager's Issuer and Certificate, and the Prometheus Operator's ServiceMonitor and
/// PrometheusRule.
/// Their schemas accept anything: the server checks the rest of each object.
fn minimal_crds() -> String {
    [
        ("cert-manager.io", "issuers", "Issuer"),
        ("cert-manager.io", "certificates", "Certificate"),
        ("monitoring.coreos.com", "servicemonitors", "ServiceMonitor"),
        ("monitoring.coreos.com", "prometheusrules", "PrometheusRule"),
    ]
    .iter()
    .map(|(group, plural, kind)| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
             name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    \
             plural: {plural}\n    singular: {singular}\n    kind: {kind}\n    listKind: \
             {kind}List\n  versions:\n    - name: v1\n      served: true\n      storage: \
             true\n      schema:\n        openAPIV3Schema:\n          type: object\n          \
             x-kubernetes-preserve-unknown-fields: true\n---\n",
            singular = kind.to_lowercase()
        )
    })
    .collect()
}

#[test]
fn chart_on_a_real_apiserver() {
    let Some(dir) = helm_bin() else { return };
    let Some((cluster, kubectl, _work)) = start_cluster() else {
        return;
    };
    let helm = Helm::new(&dir, Some(cluster.kubeconfig.clone()));

    scenario(
        "minimal CRDs for cert-manager, ServiceMonitor and PrometheusRule",
        || {
            kubectl.ok(&["apply", "-f", "-"], Some(&minimal_crds()));
            kubectl.ok(
                &[
                    "wait",
                    "--for",
                    "condition=established",
                    "--timeout=60s",
                    "crd/issuers.cert-manager.io",
                    "crd/certificates.cert-manager.io",
                    "crd/servicemonitors.monitoring.coreos.com",
                    "crd/prometheusrules.monitoring.coreos.com",
                ],
                None,
            );
        },
    );

    scenario(
        "each values file: helm template | kubectl apply --dry-run=server",
        || {
            // The chart's CRDs (helm installs crds/ before the templates), then the templates.
            kubectl.ok(&["apply", "-f", "charts/wasmgate/crds/"], None);
            kubectl.ok(&["create", "namespace", NAMESPACE], None);
            for file in values_files() {
                let out = helm.ok(&["template", "wasmgate", CHART, "-n", NAMESPACE, "-f", &file]);
                let objects = parse_yaml_stream(&out.stdout);
                let dry = kubectl.ok(&["apply", "--dry-run=server", "-f", "-"], Some(&out.stdout));
                let applied = dry.stdout.lines().count();
                assert_eq!(
                    applied,
                    objects.len(),
                    "{file}: {} objects rendered, {applied} applied: {}",
                    objects.len(),
                    dry.describe()
                );
                for want in [
                    "deployment.apps/wasmgate",
                    "apiservice.apiregistration.k8s.io/v1alpha1.wasmgate.dev",
                    "validatingwebhookconfiguration.admissionregistration.k8s.io/wasmgate",
                    "mutatingwebhookconfiguration.admissionregistration.k8s.io/wasmgate",
                ] {
                    assert!(
                        dry.stdout.contains(want),
                        "{file}: {want}: {}",
                        dry.describe()
                    );
                }
                announce(format!(
                    "helm: {file}: {applied} objects accepted (dry run)"
                ));
            }
            // Dry runs leave nothing behind: the install below starts from a clean namespace.
            kubectl.ok(&["delete", "namespace", NAMESPACE, "--wait=false"], None);
        },
    );

    install_upgrade_uninstall(&helm, &kubectl);
    drop(cluster);
}

fn install_upgrade_uninstall(helm: &Helm, kubectl: &Kubectl) {
    // The namespace from the dry runs may still be terminating; install into another one (the
    // chart follows the release namespace).
    let ns = "wasmgate";
    let objects = [
        format!("deployment/wasmgate -n {ns}"),
        format!("service/wasmgate -n {ns}"),
        format!("serviceaccount/wasmgate -n {ns}"),
        format!("poddisruptionbudget/wasmgate -n {ns}"),
        format!("role/wasmgate:leader-and-certs -n {ns}"),
        "rolebinding/wasmgate:extension-apiserver-authentication-reader -n kube-system".to_owned(),
        "clusterrole/wasmgate:reconciler".to_owned(),
        "clusterrolebinding/wasmgate:ca-bundles".to_owned(),
        "apiservice/v1alpha1.wasmgate.dev".to_owned(),
        "validatingwebhookconfiguration/wasmgate".to_owned(),
        "mutatingwebhookconfiguration/wasmgate".to_owned(),
    ];

    scenario(
        "helm install: the release is deployed and its objects exist",
        || {
            helm.ok(&[
                "install",
                "wasmgate",
                CHART,
                "-n",
                ns,
                "--create-namespace",
                "--set",
                "nats.url=nats://nats.wasmcloud.svc:4222",
            ]);
            let status = helm.ok(&["status", "wasmgate", "-n", ns, "-o", "json"]);
            let status: Value = serde_json::from_str(&status.stdout).expect("helm status JSON");
            assert_eq!(status["info"]["status"], "deployed", "{status:#}");
            for o in &objects {
                let args: Vec<&str> = std::iter::once("get")
                    .chain(o.split(' '))
                    .chain(["-o", "json"])
                    .collect();
                let out = kubectl.ok(&args, None);
                let obj: Value = serde_json::from_str(&out.stdout).expect("kubectl JSON");
                assert_eq!(
                    obj["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
                    "{o}"
                );
                assert_eq!(
                    obj["metadata"]["annotations"]["meta.helm.sh/release-name"], "wasmgate",
                    "{o}"
                );
            }
            // The CRDs from crds/ (already there from the dry runs: Helm leaves existing ones alone).
            kubectl.ok(&["get", "crd/workloads.runtime.wasmcloud.dev"], None);
            let deploy = kubectl.get_json(&["deployment/wasmgate", "-n", ns]);
            let container = &deploy["spec"]["template"]["spec"]["containers"][0];
            assert!(container["args"]
                .as_array()
                .expect("args")
                .contains(&json!("--nats-url=nats://nats.wasmcloud.svc:4222")));
            let apiservice = kubectl.get_json(&["apiservice/v1alpha1.wasmgate.dev"]);
            assert_eq!(apiservice["spec"]["service"]["namespace"], ns);
            let hook = kubectl.get_json(&["validatingwebhookconfiguration/wasmgate"]);
            assert_eq!(
                hook["webhooks"][0]["clientConfig"]["service"]["namespace"],
                ns
            );
        },
    );

    scenario("helm upgrade changes the webhooks' failure policy", || {
        helm.ok(&[
            "upgrade",
            "wasmgate",
            CHART,
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "webhooks.failurePolicy=Ignore",
        ]);
        let status = helm.ok(&["status", "wasmgate", "-n", ns, "-o", "json"]);
        let status: Value = serde_json::from_str(&status.stdout).expect("helm status JSON");
        assert_eq!(status["info"]["status"], "deployed", "{status:#}");
        assert_eq!(status["version"], 2, "{status:#}");
        for kind in [
            "validatingwebhookconfiguration/wasmgate",
            "mutatingwebhookconfiguration/wasmgate",
        ] {
            let hook = kubectl.get_json(&[kind]);
            assert_eq!(hook["webhooks"][0]["failurePolicy"], "Ignore", "{hook:#}");
        }
    });

    scenario("helm uninstall removes the release's objects", || {
        helm.ok(&["uninstall", "wasmgate", "-n", ns, "--wait", "--timeout=60s"]);
        for o in &objects {
            let args: Vec<&str> = std::iter::once("get")
                .chain(o.split(' '))
                .chain(["--ignore-not-found", "-o", "name"])
                .collect();
            let out = kubectl.ok(&args, None);
            assert!(
                out.stdout.trim().is_empty(),
                "{o} is still there: {}",
                out.describe()
            );
        }
        let out = helm.run(&["status", "wasmgate", "-n", ns]);
        assert!(!out.success(), "{}", out.describe());
        // CRDs stay (Helm never deletes crds/): the workloads in them must outlive the release.
        kubectl.ok(&["get", "crd/workloads.runtime.wasmcloud.dev"], None);
    });
}

// ---------------------------------------------------------------------------------------------
// README's first hour, as written
// ---------------------------------------------------------------------------------------------

/// Where README's guide expects wasmCloud's NATS; the test's nats-server stands in for it.
const GUIDE_NATS: &str = "nats://nats.wasmcloud.svc:4222";

/// README's first-hour commands (the shell block between the `first-hour` markers):
/// continuation lines joined, each with its trailing comment dropped.
fn first_hour_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let start = readme
        .find("<!-- first-hour:begin")
        .expect("README has the first-hour guide");
    let end = readme[start..]
        .find("<!-- first-hour:end -->")
        .map(|i| start + i)
        .expect("the guide's end marker");
    let block = &readme[start..end];
    let body = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block in the guide");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in body.lines() {
        let line = line.split(" # ").next().unwrap_or("").trim_end();
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    commands.push(current.split_whitespace().collect::<Vec<_>>().join(" "));
                }
                current.clear();
            }
        }
    }
    commands
}

/// Runs wasmgate as the chart's Deployment would run it: the rendered container's arguments and
/// environment (downward-API fields filled in as the kubelet would), the chart ServiceAccount's
/// token, on a loopback port. Returns the process and its port.
fn run_as_the_deployment(
    kubectl: &Kubectl,
    kubeconfig: &Path,
    ns: &str,
    log: &Path,
) -> (std::process::Child, u16) {
    let deploy = kubectl.get_json(&["deployment/wasmgate", "-n", ns]);
    let pod = &deploy["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port = support::free_port();
    let mut args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .map(|a| {
            // The Pod's address is the loopback port the chart's Service is pointed at.
            if a.starts_with("--listen=") {
                format!("--listen=127.0.0.1:{port}")
            } else {
                a.to_owned()
            }
        })
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    assert!(
        args.contains(&format!("--listen=127.0.0.1:{port}")),
        "the chart names the listen address: {args:?}"
    );
    // In a Pod the client comes from the mounted ServiceAccount token.
    args.push(format!("--kubeconfig={}", kubeconfig.display()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
    cmd.args(&args);
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name");
        let value = match (
            &var["value"],
            var["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Value::String(v), _) => v.clone(),
            (_, Some("metadata.namespace")) => ns.to_owned(),
            (_, Some("metadata.name")) => "wasmgate-first-hour-0".to_owned(),
            _ => panic!("an environment variable the test cannot fill: {var}"),
        };
        cmd.env(name, value);
    }
    // Only the /tmp emptyDir is mounted (a process has /tmp): anything else would need the test's
    // attention.
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        assert_eq!(
            mount["mountPath"], "/tmp",
            "a mount the test does not provide: {mount}"
        );
    }
    let logfile = std::fs::File::create(log).expect("log file");
    let child = cmd
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(logfile.try_clone().expect("dup"))
        .stderr(logfile)
        .spawn()
        .expect("start wasmgate as the Deployment");
    (child, port)
}

/// Points the chart's Service at a process on the loopback port (no kube-proxy runs in the test
/// cluster): an ExternalName Service for `localhost`, and that port in the webhooks' and the
/// APIService's service reference.
fn point_the_service_at(kubectl: &Kubectl, ns: &str, port: u16) {
    kubectl.ok(&["delete", "service", "wasmgate", "-n", ns], None);
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: wasmgate\n  namespace: {ns}\nspec:\n  \
         type: ExternalName\n  externalName: localhost\n"
    );
    kubectl.ok(&["apply", "-f", "-"], Some(&service));
    for kind in [
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    ] {
        let hooks = kubectl.get_json(&[kind, "wasmgate"]);
        let n = hooks["webhooks"].as_array().map_or(0, Vec::len);
        let patch: Vec<Value> = (0..n)
            .map(|i| json!({"op": "replace", "path": format!("/webhooks/{i}/clientConfig/service/port"), "value": port}))
            .collect();
        kubectl.ok(
            &[
                "patch",
                kind,
                "wasmgate",
                "--type=json",
                "-p",
                &Value::Array(patch).to_string(),
            ],
            None,
        );
    }
    kubectl.ok(
        &[
            "patch",
            "apiservice",
            "v1alpha1.wasmgate.dev",
            "--type=json",
            "-p",
            &json!([{"op": "replace", "path": "/spec/service/port", "value": port}]).to_string(),
        ],
        None,
    );
}

#[test]
fn first_hour_guide_as_written() {
    let Some(dir) = helm_bin() else { return };
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return;
    };
    let helm = Helm::new(&dir, Some(cluster.kubeconfig.clone()));
    let nats =
        support::NatsServer::start_jetstream(&work.join("nats.log"), &work.join("jetstream"));
    // The hosts wasmCloud's operator would run, heartbeating through its NATS.
    let _hosts = support::SimHosts::start(
        &nats.url(),
        &[
            "--count",
            "3",
            "--interval",
            "2s",
            "--prefix",
            "wasmcloud-host",
        ],
        &work.join("sim-hosts.log"),
    );
    let commands = first_hour_commands();
    let shape: Vec<String> = commands
        .iter()
        .map(|c| c.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        shape,
        [
            "helm install",
            "kubectl -n",
            "kubectl wait",
            "kubectl get",
            "kubectl apply",
            "kubectl apply",
            "kubectl get",
            "kubectl -n",
        ],
        "README's guide changed: update this test with it: {commands:#?}"
    );
    let ns = "wasmgate-system";
    let mut wasmgate: Option<std::process::Child> = None;
    let log = work.join("wasmgate.log");
    for (step, command) in commands.iter().enumerate() {
        let command = command.replace(GUIDE_NATS, &nats.url());
        let words: Vec<&str> = command.split(' ').collect();
        let what = format!("first hour, step {}: {command}", step + 1);
        scenario(&what, || match step {
            0 => {
                helm.ok(&words[1..]);
            }
            1 => {
                assert!(
                    command.contains("rollout status deployment/wasmgate"),
                    "{command}"
                );
                // The stand-in for the kubelet: the Deployment's process, behind its Service.
                let kubeconfig = support::service_account_kubeconfig(
                    &cluster,
                    &kubectl,
                    ns,
                    "wasmgate",
                    &work.join("chart-sa.kubeconfig"),
                );
                let (child, port) = run_as_the_deployment(&kubectl, &kubeconfig, ns, &log);
                wasmgate = Some(child);
                point_the_service_at(&kubectl, ns, port);
            }
            2 => {
                // The leader's caBundle makes the APIService Available; give it time to start.
                poll(
                    &what,
                    Duration::from_secs(90),
                    Duration::from_millis(500),
                    || {
                        let out = kubectl.run(&words[1..], None);
                        if out.success() {
                            Ok(())
                        } else {
                            Err(format!(
                                "{}\nwasmgate's log:\n{}",
                                out.describe(),
                                std::fs::read_to_string(&log).unwrap_or_default()
                            ))
                        }
                    },
                );
            }
            3 => {
                let rows = poll(
                    &what,
                    Duration::from_secs(60),
                    Duration::from_millis(500),
                    || {
                        let out = kubectl.run(&words[1..], None);
                        let ready: Vec<String> = out
                            .stdout
                            .lines()
                            .filter(|l| l.starts_with("wasmcloud-host") && l.contains(" True "))
                            .map(str::to_owned)
                            .collect();
                        if out.success() && ready.len() == 3 {
                            Ok(ready)
                        } else {
                            Err(out.describe())
                        }
                    },
                );
                announce(format!(
                    "first hour: kubectl get hosts:\n{}",
                    rows.join("\n")
                ));
            }
            4 => {
                let out = kubectl.ok(&words[1..], None);
                assert!(
                    out.stdout
                        .contains("workload.runtime.wasmcloud.dev/hello-kv created"),
                    "{}",
                    out.describe()
                );
                assert!(
                    out.stderr.contains("Warning: wasmgate"),
                    "{}",
                    out.describe()
                );
            }
            5 => {
                let out = kubectl.run(&words[1..], None);
                assert!(!out.success(), "{}", out.describe());
                assert!(
                    out.stderr.contains("denied the request")
                        && out.stderr.contains("wasmcloud:postgres"),
                    "{}",
                    out.describe()
                );
            }
            6 => {
                poll(
                    &what,
                    Duration::from_secs(60),
                    Duration::from_millis(500),
                    || {
                        let out = kubectl.run(&words[1..], None);
                        let row = out.stdout.lines().find(|l| l.contains("hello-kv.workload"));
                        match row {
                            Some(r) if r.contains(" True ") => Ok(()),
                            _ => Err(out.describe()),
                        }
                    },
                );
            }
            7 => {
                let out = kubectl.ok(&words[1..], None);
                assert!(
                    out.stdout.contains("wasmgate-dashboard"),
                    "{}",
                    out.describe()
                );
                let dashboard = kubectl.get_json(&["configmap", "wasmgate-dashboard", "-n", ns]);
                let json = dashboard["data"]["wasmgate.json"]
                    .as_str()
                    .unwrap_or_default();
                assert!(
                    serde_json::from_str::<Value>(json).is_ok_and(|d| d["uid"].is_string()),
                    "{dashboard:#}"
                );
            }
            _ => unreachable!("the shape check above"),
        });
    }
    if let Some(mut child) = wasmgate {
        let _ = child.kill();
        let _ = child.wait();
    }
    drop(nats);
    drop(cluster);
}
