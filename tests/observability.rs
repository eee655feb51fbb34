//! The Grafana dashboard (`charts/wasmgate/dashboards/wasmgate.json`) and the alerts
//! (`charts/wasmgate/rules/wasmgate.rules.yaml`, which the chart's PrometheusRule includes):
//!
//! - `every_referenced_series_is_served`: every `wasmgate_*` series the dashboard's queries and
//!   the rules' expressions select is in the `/metrics` of a real `wasmgate serve` (with a real
//!   kube-apiserver, so the reconciler runs, and a real nats-server, so `nats_connected` is
//!   there), named as Prometheus stores the OpenMetrics family (`_total` for a counter,
//!   `_bucket`/`_sum`/`_count` for a histogram, the bare name for a gauge); every label a
//!   selector or a `by (...)` names is one the series carries, and every value an `=` matcher
//!   asks for is one it has exposed.
//! - `rules_pass_promtool`: `promtool check rules` accepts the rules file (Debian's `prometheus`
//!   package; CI=true fails when it is missing, locally the test is skipped with a loud line),
//!   and each alert has a severity, a summary and a description.
//! - `dashboard_is_well_formed`: the JSON parses, every panel and target queries the
//!   `${datasource}` variable (no data source uid written in), every target has an expression,
//!   panel ids are unique, and the panels cover what the dashboard is for.
//! - `dashboard_matches_grafanas_schema`: `scripts/check-dashboard` (Grafana's own schema, the
//!   `@grafana/schema` npm package, compiled with `tsc --strict`) accepts the dashboard and
//!   rejects a copy with an unknown key and a legend placement Grafana does not have, naming
//!   both (CI=true fails when Node.js or npm is missing; locally the test is skipped loudly).
//!
//! Run: `cargo test --test observability` (environment as tests/support: CI=true makes the
//! cluster part mandatory, WASMGATE_SKIP_E2E=1 skips it locally; `PROMTOOL=/path/to/promtool`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;
use support::serve::{curl, curl_text, ServeProcess};
use support::{
    announce, e2e_required, free_port, install_workload_crds, poll, repo_root, run_bounded,
    start_cluster, NatsServer, ORDERS_WORKLOAD,
};

const DASHBOARD: &str = "charts/wasmgate/dashboards/wasmgate.json";
const RULES: &str = "charts/wasmgate/rules/wasmgate.rules.yaml";

/// Labels Prometheus attaches to every series of a target when it scrapes (not wasmgate's).
const TARGET_LABELS: [&str; 7] = [
    "namespace",
    "pod",
    "job",
    "instance",
    "service",
    "endpoint",
    "container",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

fn rules() -> Value {
    serde_saphyr::from_str(&read(RULES)).unwrap_or_else(|e| panic!("{RULES}: {e}"))
}

/// Every panel of the dashboard, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// The PromQL of the dashboard: each target's `expr` and each query variable's query.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut out: Vec<String> = panels(dashboard)
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect();
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if var["type"] == "query" {
            let query = var["query"]["query"]
                .as_str()
                .or(var["query"].as_str())
                .expect("a query variable's query");
            out.push(query.to_string());
        }
    }
    out
}

/// The rules: (alert name, the rule).
fn alerts(rules: &Value) -> Vec<(String, Value)> {
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().expect("a group's rules"))
        .map(|r| (r["alert"].as_str().unwrap_or("").to_string(), r))
        .collect()
}

fn rule_exprs(rules: &Value) -> Vec<String> {
    alerts(rules)
        .into_iter()
        .map(|(name, r)| {
            r["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no expr"))
                .to_string()
        })
        .collect()
}

/// The `wasmgate_*` names an expression selects.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = Regex::new(r"wasmgate_[a-z_]+").expect("regex");
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Reading an OpenMetrics exposition
// ---------------------------------------------------------------------------------------------

/// What one `/metrics` answer exposes.
#[derive(Debug, Default)]
struct Exposition {
    /// Family name -> its type (`# TYPE` lines).
    families: BTreeMap<String, String>,
    /// Sample name -> label name -> the values seen.
    samples: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    text: String,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)""#).expect("regex");
        let mut exp = Exposition {
            text: text.to_string(),
            ..Exposition::default()
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                    panic!("a TYPE line without a name and a type: {line:?}");
                };
                exp.families.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let labels = exp.samples.entry(line[..end].to_string()).or_default();
            if line[end..].starts_with('{') {
                let close = line
                    .rfind('}')
                    .unwrap_or_else(|| panic!("unclosed: {line:?}"));
                for c in label.captures_iter(&line[end + 1..close]) {
                    labels
                        .entry(c[1].to_string())
                        .or_default()
                        .insert(c[2].to_string());
                }
            }
        }
        exp
    }

    /// The family and type a series name belongs to, as Prometheus names what it ingests from
    /// an OpenMetrics family: a gauge's series is the family's name, a counter's
    /// `<family>_total`, a histogram's `<family>_bucket`, `_sum` and `_count`. The series must
    /// also be exposed now.
    fn family_of(&self, series: &str) -> Result<(&str, &str), String> {
        const SUFFIXES: [(&str, &[&str]); 5] = [
            ("", &["gauge", "unknown"]),
            ("_total", &["counter"]),
            ("_bucket", &["histogram"]),
            ("_sum", &["histogram", "summary"]),
            ("_count", &["histogram", "summary"]),
        ];
        let family = SUFFIXES.iter().find_map(|(suffix, types)| {
            let family = series.strip_suffix(suffix)?;
            let (name, kind) = self.families.get_key_value(family)?;
            types
                .contains(&kind.as_str())
                .then_some((name.as_str(), kind.as_str()))
        });
        let Some(family) = family else {
            return Err(format!(
                "{series}: no OpenMetrics family is stored under this name (families: {:?})",
                self.families
            ));
        };
        if !self.samples.contains_key(series) {
            return Err(format!(
                "{series}: family {} ({}) is there, but no such series is exposed",
                family.0, family.1
            ));
        }
        Ok(family)
    }

    /// The sum of the values of the samples whose line starts with `prefix`.
    fn sum(&self, prefix: &str) -> f64 {
        self.text
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| {
                let value = l.rsplit(' ').next().unwrap_or("");
                value
                    .parse::<f64>()
                    .unwrap_or_else(|e| panic!("{l:?}: {e}"))
            })
            .sum()
    }
}

/// What is wrong with `expr` against `exp`: unknown series, labels the series do not carry,
/// values they never had. Empty when nothing is.
fn problems(expr: &str, exp: &Exposition) -> Vec<String> {
    let mut out = Vec::new();
    let names = metric_names(expr);
    for name in &names {
        if let Err(e) = exp.family_of(name) {
            out.push(e);
        }
    }
    let labels_of = |series: &str| exp.samples.get(series).cloned().unwrap_or_default();
    let selector = Regex::new(r"(wasmgate_[a-z_]+)\s*\{([^}]*)\}").expect("regex");
    let matcher =
        Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)""#).expect("regex");
    for s in selector.captures_iter(expr) {
        let labels = labels_of(&s[1]);
        for m in matcher.captures_iter(&s[2]) {
            let (label, op, value) = (&m[1], &m[2], &m[3]);
            if TARGET_LABELS.contains(&label) {
                continue;
            }
            match labels.get(label) {
                None => out.push(format!("{}: no label {label} (has {:?})", &s[1], labels)),
                Some(values) if op == "=" && !value.contains('$') && !values.contains(value) => out
                    .push(format!(
                        "{}: {label}={value:?} was never exposed (values: {values:?})",
                        &s[1]
                    )),
                Some(_) => {}
            }
        }
    }
    let grouping = Regex::new(r"\b(?:by|without)\s*\(([^)]*)\)").expect("regex");
    for g in grouping.captures_iter(expr) {
        for label in g[1].split(',').map(str::trim).filter(|l| !l.is_empty()) {
            if TARGET_LABELS.contains(&label) {
                continue;
            }
            if !names.iter().any(|n| labels_of(n).contains_key(label)) {
                out.push(format!(
                    "groups by {label}, which none of {names:?} carries"
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The served series
// ---------------------------------------------------------------------------------------------

/// Posts the AdmissionReview in webhooks/fixtures/`fixture` to `path`: the HTTP status and the
/// body.
fn post(wg: &ServeProcess, path: &str, fixture: &str) -> (u16, Value) {
    let ca = wg.ca_file().display().to_string();
    let data = format!(
        "@{}",
        repo_root()
            .join("webhooks/fixtures")
            .join(fixture)
            .display()
    );
    let url = wg.url(&format!("{path}?timeout=10s"));
    curl(&[
        "--cacert",
        &ca,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &data,
        &url,
    ])
}

fn scrape(wg: &ServeProcess) -> Exposition {
    let ca = wg.ca_file().display().to_string();
    let (code, text) = curl_text(&["--cacert", &ca, &wg.url("/metrics")]);
    assert_eq!(code, 200, "/metrics: {text}");
    assert!(
        text.trim_end().ends_with("# EOF"),
        "not an OpenMetrics exposition: {text}"
    );
    Exposition::parse(&text)
}

#[test]
fn every_referenced_series_is_served() {
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return;
    };
    install_workload_crds(&kubectl);
    let nats = NatsServer::start(&work.join("nats.log"));
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let nats_url = nats.url();
    let args: Vec<String> = [
        "--kubeconfig",
        kubeconfig.as_str(),
        // The Lease in a namespace that exists, so this replica leads.
        "--service-namespace",
        "default",
        "--nats-url",
        nats_url.as_str(),
        "--inventory-warmup",
        "0s",
        "--reconcile-interval",
        "500ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut wg = ServeProcess::spawn(
        free_port(),
        &work.join("certs"),
        &work.join("wasmgate.log"),
        &work,
        &args,
    );
    wg.wait_ready(Duration::from_secs(90));

    // A stored Workload no host can run: the reconciler counts it unresolved.
    kubectl.ok(&["apply", "-f", "-"], Some(ORDERS_WORKLOAD));
    poll(
        "the reconciler to count the Workload unresolved",
        Duration::from_secs(60),
        Duration::from_millis(300),
        || {
            wg.assert_running();
            let exp = scrape(&wg);
            match exp.sum(r#"wasmgate_unresolved_objects{kind="Workload"}"#) {
                n if n >= 1.0 => Ok(()),
                _ => Err(exp.text),
            }
        },
    );

    // Admission requests of every verdict: allowed, denied (a finding, and an object that does
    // not decode) and error (not an AdmissionReview).
    let (code, body) = post(&wg, "/mutate", "good-hello-kv.json");
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["response"]["allowed"], true, "{body:#}");
    let mut denied = 0;
    for fixture in [
        "good-hello-kv.json",
        "broken-postgres-version.json",
        "undecodable-workload.json",
    ] {
        let (code, body) = post(&wg, "/validate", fixture);
        assert_eq!(code, 200, "{fixture}: {body:#}");
        if body["response"]["allowed"] == false {
            denied += 1;
        }
    }
    assert!(denied >= 2, "the broken fixtures were admitted");
    let (code, body) = post(&wg, "/validate", "malformed.json");
    assert_eq!(code, 400, "{body:#}");

    let exp = scrape(&wg);
    // Each denied answer is counted once, under its reason.
    assert_eq!(
        exp.sum(r#"wasmgate_admission_denials_total{operation="validate","#),
        f64::from(denied),
        "{}",
        exp.text
    );
    assert_eq!(
        exp.sum(
            r#"wasmgate_admission_denials_total{operation="validate",kind="Workload",code="undecodable"}"#
        ),
        1.0,
        "{}",
        exp.text
    );
    assert_eq!(
        exp.sum(r#"wasmgate_admission_requests_total{operation="validate","#),
        4.0,
        "{}",
        exp.text
    );

    let mut referenced = Vec::new();
    for expr in dashboard_exprs(&dashboard()) {
        referenced.push((DASHBOARD, expr));
    }
    for expr in rule_exprs(&rules()) {
        referenced.push((RULES, expr));
    }
    let mut wrong = Vec::new();
    let mut names = BTreeSet::new();
    for (file, expr) in &referenced {
        names.extend(metric_names(expr));
        for p in problems(expr, &exp) {
            wrong.push(format!("{file}: {expr}\n    {p}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "queries that select what wasmgate does not serve:\n{}\n\n/metrics:\n{}",
        wrong.join("\n"),
        exp.text
    );
    announce(format!(
        "observability: {} expressions checked; their series, all served: {names:?}",
        referenced.len()
    ));
    assert!(names.len() >= 9, "{names:?}");

    // The same check fails for names Prometheus would not have.
    for (bad, why) in [
        ("wasmgate_heartbeats", "a counter without _total"),
        ("wasmgate_hosts_total", "a gauge with _total"),
        (
            "wasmgate_admission_duration_seconds",
            "a histogram's family",
        ),
        ("wasmgate_admission_denials", "a counter without _total"),
        ("wasmgate_leaders", "no such family"),
    ] {
        assert!(exp.family_of(bad).is_err(), "{bad} ({why}) was accepted");
    }
    for (bad, why) in [
        (
            r#"rate(wasmgate_admission_requests_total{verdict="errors"}[5m])"#,
            "a value never exposed",
        ),
        (
            r#"rate(wasmgate_admission_denials_total{reason="timeout"}[5m])"#,
            "no such label",
        ),
        (
            "sum by (code) (wasmgate_hosts)",
            "grouped by a label it lacks",
        ),
    ] {
        assert!(
            !problems(bad, &exp).is_empty(),
            "{bad} ({why}) was accepted"
        );
    }
    drop(wg);
    drop(nats);
    drop(cluster);
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

/// `$PROMTOOL`, else `promtool` on PATH. `None` (skip) only outside CI: with CI=true a missing
/// promtool fails the test.
fn promtool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMTOOL") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    let install = "Debian package prometheus: `. scripts/lib-install.sh && \
                   install_system_packages promtool:prometheus`, or set PROMTOOL=/path/to/promtool";
    match found {
        Some(p) => Some(p),
        None => {
            assert!(
                !e2e_required(),
                "promtool is not installed ({install}); CI=true: this test may not be skipped"
            );
            announce(format!(
                "\nobservability: SKIPPED `promtool check rules` (promtool is not installed: \
                 {install})\n"
            ));
            None
        }
    }
}

#[test]
fn rules_pass_promtool() {
    let rules = rules();
    let alerts = alerts(&rules);
    let names: BTreeSet<&str> = alerts.iter().map(|(n, _)| n.as_str()).collect();
    let expected = BTreeSet::from([
        "WasmgateWebhookErrors",
        "WasmgateAdmissionLatencyHigh",
        "WasmgateNatsDisconnected",
        "WasmgateCertificateExpiringSoon",
        "WasmgateNoLeader",
        "WasmgateDown",
    ]);
    assert_eq!(names, expected);
    assert_eq!(names.len(), alerts.len(), "an alert is defined twice");
    for (name, rule) in &alerts {
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["warning", "critical"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description"] {
            let text = rule["annotations"][annotation].as_str().unwrap_or("");
            assert!(
                text.len() > 20,
                "{name}: annotation {annotation} is missing or empty: {rule}"
            );
        }
        assert!(rule["for"].is_string(), "{name}: no `for`: {rule}");
    }
    // The p99 budget stays below the webhook's 10 s timeout.
    let latency = &alerts
        .iter()
        .find(|(n, _)| n == "WasmgateAdmissionLatencyHigh")
        .expect("latency alert")
        .1;
    let expr = latency["expr"].as_str().expect("expr");
    assert!(
        expr.contains("histogram_quantile(0.99,"),
        "not a p99: {expr}"
    );
    let threshold: f64 = expr
        .rsplit('>')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `> threshold` at the end of {expr}"));
    assert!(threshold > 0.0, "{threshold}");
    assert!(
        threshold < 10.0,
        "{threshold}: not below the 10 s webhook timeout"
    );

    let Some(promtool) = promtool() else { return };
    let mut cmd = Command::new(&promtool);
    cmd.args(["check", "rules", RULES]).current_dir(repo_root());
    let out = run_bounded(cmd, None, Duration::from_secs(60));
    assert!(out.success(), "{}", out.describe());
    let found = format!("SUCCESS: {} rules found", alerts.len());
    assert!(
        out.stdout.contains(&found) || out.stderr.contains(&found),
        "{found}: {}",
        out.describe()
    );

    // And it refuses a broken copy, so the success above means something.
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.rules.yaml");
    std::fs::write(
        &broken,
        read(RULES).replace(
            "wasmgate_nats_connected == 0",
            "wasmgate_nats_connected == == 0",
        ),
    )
    .expect("write");
    let mut cmd = Command::new(promtool);
    cmd.arg("check").arg("rules").arg(broken);
    let out = run_bounded(cmd, None, Duration::from_secs(60));
    assert!(
        !out.success(),
        "a broken expression passed: {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// The dashboard
// ---------------------------------------------------------------------------------------------

/// Whether `tool` is on PATH. Missing: a failure under CI=true, a loud skip otherwise.
fn tool_or_skip(tool: &str, install: &str, what: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if !found {
        assert!(
            !e2e_required(),
            "{tool} is not installed ({install}); CI=true: this test may not be skipped"
        );
        announce(format!(
            "\nobservability: SKIPPED {what} ({tool} is not installed: {install})\n"
        ));
    }
    found
}

#[test]
fn dashboard_matches_grafanas_schema() {
    let install = "Debian packages nodejs and npm";
    if !tool_or_skip("node", install, "the dashboard schema check")
        || !tool_or_skip("npm", install, "the dashboard schema check")
    {
        return;
    }
    let root = repo_root();
    let check = |file: &std::path::Path| {
        let mut cmd = Command::new(root.join("scripts/check-dashboard"));
        cmd.arg(file).current_dir(&root);
        // The first run installs the schema package and TypeScript from the npm registry.
        run_bounded(cmd, None, Duration::from_secs(600))
    };
    let ok = check(&root.join(DASHBOARD));
    assert!(ok.success(), "{}", ok.describe());
    assert!(
        ok.stderr.contains("matches @grafana/schema"),
        "{}",
        ok.describe()
    );

    // A typo in a key and a value outside a panel option's enum are both named.
    let mut broken = dashboard();
    broken["refersh"] = Value::from("1m");
    let legend = panels(&broken)
        .into_iter()
        .find(|p| p["type"] == "timeseries")
        .map(|p| p["id"].clone())
        .expect("a timeseries panel");
    fn set_placement(panels: &mut Value, id: &Value) {
        for p in panels.as_array_mut().into_iter().flatten() {
            if p["id"] == *id {
                p["options"]["legend"]["placement"] = Value::from("middle");
            }
            if let Some(rows) = p.get_mut("panels") {
                set_placement(rows, id);
            }
        }
    }
    set_placement(&mut broken["panels"], &legend);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broken.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&broken).expect("json")).expect("write");
    let bad = check(&file);
    assert_eq!(
        bad.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        bad.describe()
    );
    for want in [
        r#"'"refersh"' does not exist"#,
        r#"'"middle"' is not assignable"#,
    ] {
        assert!(
            bad.stderr.contains(want),
            "{want:?} not in:\n{}",
            bad.describe()
        );
    }
}

/// Whether `ds` (a `datasource` field) is the `${datasource}` variable.
fn is_variable(ds: &Value) -> bool {
    ds["uid"] == "${datasource}" || ds == "${datasource}"
}

#[test]
fn dashboard_is_well_formed() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
        "schemaVersion {}",
        d["schemaVersion"]
    );
    assert!(d["uid"].is_string() && d["title"].is_string());
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` variable");
    assert_eq!(ds["type"], "datasource", "{ds}");
    assert_eq!(ds["query"], "prometheus", "{ds}");
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert!(is_variable(&v["datasource"]), "variable {}", v["name"]);
    }

    // No data source is named by uid anywhere: every `datasource` field is the variable (or
    // Grafana's own, for annotations).
    fn walk<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "datasource" {
                        out.push((format!("{path}.{k}"), child));
                    }
                    walk(child, format!("{path}.{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut fields = Vec::new();
    walk(&d, String::new(), &mut fields);
    for (path, ds) in &fields {
        assert!(
            is_variable(ds) || ds["uid"] == "-- Grafana --",
            "{path}: {ds} is not the ${{datasource}} variable"
        );
    }

    let panels = panels(&d);
    assert!(!panels.is_empty());
    let mut ids = BTreeSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        let id = p["id"].as_u64().unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "panel id {id} is used twice ({title})");
        if p["type"] == "row" {
            continue;
        }
        assert!(
            is_variable(&p["datasource"]),
            "{title}: datasource {}",
            p["datasource"]
        );
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        let targets = p["targets"]
            .as_array()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| panic!("{title}: no targets"));
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or("");
            assert!(
                !expr.trim().is_empty(),
                "{title}: a target without expr: {t}"
            );
            assert!(
                t["refId"].is_string(),
                "{title}: a target without refId: {t}"
            );
            if !t["datasource"].is_null() {
                assert!(is_variable(&t["datasource"]), "{title}: {t}");
            }
        }
        for key in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
    }

    // The panels show what the dashboard is for.
    let exprs = dashboard_exprs(&d).join("\n");
    for want in [
        "wasmgate_admission_requests_total",
        "histogram_quantile(0.5, sum by (le, operation) (rate(wasmgate_admission_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (le, operation) (rate(wasmgate_admission_duration_seconds_bucket",
        "sum by (code) (rate(wasmgate_admission_denials_total",
        "by (ready) (wasmgate_hosts",
        "rate(wasmgate_heartbeats_total",
        "wasmgate_unresolved_objects",
        "wasmgate_serving_certificate_expiry_timestamp_seconds",
        "by (pod) (wasmgate_leader",
        "by (pod) (wasmgate_nats_connected",
    ] {
        assert!(exprs.contains(want), "no panel queries {want}:\n{exprs}");
    }
}
