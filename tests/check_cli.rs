//! `wasmgate check` end to end: the real binary, the example manifests and AdmissionReview
//! fixtures, and a real `wasmgate serve` to compare against.
//!
//! - `webhook_and_check_agree`: every wasmCloud object of `webhooks/fixtures/*.json` and
//!   `examples/{workloads,broken}/` goes through the running webhook (`/validate`, `/mutate`
//!   over TLS) and through `wasmgate check -o json`: same verdict, same denial message, same
//!   warnings, same (decoded) patch.
//! - Output formats against validators: JSON against `docs/check-output.schema.json`, SARIF
//!   against the official SARIF 2.1.0 schema (`tests/fixtures/check/sarif-2.1.0.json`), both
//!   with the `jsonschema` crate (formats checked); JUnit against the rules of
//!   `tests/fixtures/check/junit.xsd` (a quick-xml structural check, plus `xmllint --schema`
//!   when xmllint is installed).
//! - Exit codes (0, 1, 2 and `--fail-on`), inputs (directories, stdin, multi-document YAML,
//!   Lists, Host objects joining the inventory), lines, `--mutate`, `--component`.
//! - `schemas/` is what `wasmgate::check::schemas::documents()` generates
//!   (`WASMGATE_UPDATE_SCHEMAS=1 cargo test --test check_cli schemas` regenerates it), and the
//!   examples validate against it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const INVENTORY: &str = "examples/inventory.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}\n{}", self.stdout, self.stderr))
    }
}

/// Runs `wasmgate check ARGS` in the crate root, with `stdin` piped in (or empty).
fn check(args: &[&str], stdin: Option<&str>) -> Run {
    check_env(args, stdin, &[])
}

/// [`check`] with extra environment variables.
fn check_env(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .arg("check")
        .args(args)
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasmgate check");
    {
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

fn examples() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["examples/workloads", "examples/broken"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .expect("examples")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn results_by_file(report: &Value) -> BTreeMap<String, Value> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["file"].as_str().expect("file").to_string(), r.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The webhook and check agree
// ---------------------------------------------------------------------------------------------

/// An AdmissionReview for `object`, as kube-apiserver posts it.
fn review(object: &Value, namespace: &str, uid: &str) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "kind": kind },
            "resource": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "resource": format!("{}s", kind.to_lowercase()) },
            "name": object["metadata"]["name"],
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": { "username": "alice", "groups": ["system:authenticated"] },
            "object": object,
            "oldObject": null,
            "dryRun": false,
        }
    })
}

struct Case {
    /// The file `check` reads.
    file: PathBuf,
    /// The review the webhook gets.
    review: Value,
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let resp = client
        .post(format!("{url}?timeout=10s"))
        .json(body)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let body: Value = resp.json().await.expect("JSON");
    body["response"].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_check_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cases = Vec::new();

    // The AdmissionReview fixtures of wasmCloud objects (their object goes to `check` as a file).
    let fixtures = root().join("webhooks/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for name in &names {
        let Ok(review) =
            serde_json::from_slice::<Value>(&std::fs::read(fixtures.join(name)).expect("read"))
        else {
            continue; // malformed.json
        };
        let request = &review["request"];
        let group = request["kind"]["group"].as_str().unwrap_or_default();
        let operation = request["operation"].as_str().unwrap_or_default();
        let uid = request["uid"].as_str().unwrap_or_default();
        if group != "runtime.wasmcloud.dev"
            || !matches!(operation, "CREATE" | "UPDATE")
            || uid.is_empty()
        {
            continue; // not judged, or not a usable review (missing-uid.json)
        }
        let mut object = request["object"].clone();
        let namespace = request["namespace"].as_str().unwrap_or("default");
        if object["metadata"]["namespace"].is_null() {
            object["metadata"]["namespace"] = json!(namespace);
        }
        assert_eq!(object["metadata"]["namespace"], json!(namespace), "{name}");
        let file = dir.path().join(name);
        std::fs::write(&file, serde_json::to_vec_pretty(&object).unwrap()).unwrap();
        cases.push(Case { file, review });
    }
    assert!(
        cases.len() >= 10,
        "expected the good-/broken- fixtures and more: {}",
        cases.len()
    );

    // The example manifests, as files.
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        let object: Value = serde_saphyr::from_str(&text).expect("example YAML");
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let uid = format!("uid-{}", path.file_name().unwrap().to_string_lossy());
        cases.push(Case {
            review: review(&object, &namespace, &uid),
            file: path,
        });
    }

    let paths: Vec<String> = cases.iter().map(|c| c.file.display().to_string()).collect();
    let mut args = vec!["-o", "json", "--inventory", INVENTORY];
    args.extend(paths.iter().map(String::as_str));
    let run = check(&args, None);
    assert!(
        run.code == 1,
        "some fixtures are denied: {}\n{}",
        run.code,
        run.stderr
    );
    let report = run.json();
    let by_file = results_by_file(&report);
    assert_eq!(
        by_file.len(),
        cases.len(),
        "one result per case: {report:#}"
    );

    let server = common::Server::start(
        &dir.path().join("certs"),
        &[
            "--inventory".to_string(),
            root().join(INVENTORY).display().to_string(),
        ],
    );
    let client = server.client();
    let (mut allowed, mut denied, mut patched) = (0, 0, 0);
    for case in &cases {
        let name = case.file.display().to_string();
        let result = &by_file[&name];
        let validate = post(&client, &format!("{}/validate", server.url), &case.review).await;
        let mutate = post(&client, &format!("{}/mutate", server.url), &case.review).await;

        // Verdict and message.
        assert_eq!(result["allowed"], validate["allowed"], "{name}: verdict");
        let message = validate["status"]["message"].as_str().map(String::from);
        assert_eq!(
            result["message"].as_str().map(String::from),
            message,
            "{name}: message"
        );
        if let Some(message) = &message {
            for v in result["violations"].as_array().unwrap() {
                assert!(
                    message.contains(v["message"].as_str().unwrap()),
                    "{name}: violation not in the denial message: {v}"
                );
            }
            denied += 1;
        } else {
            assert!(
                result["violations"].as_array().unwrap().is_empty(),
                "{name}"
            );
            allowed += 1;
        }

        // Warnings: what kubectl shows from both webhooks, in order.
        let mut webhook_warnings = strings(&mutate["warnings"]);
        webhook_warnings.extend(strings(&validate["warnings"]));
        let check_warnings: Vec<String> = result["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| format!("wasmgate: {}", w["message"].as_str().unwrap()))
            .collect();
        assert_eq!(check_warnings, webhook_warnings, "{name}: warnings");

        // The patch, decoded.
        let webhook_patch = common::response_patch(&mutate).unwrap_or(json!([]));
        assert_eq!(result["patch"], webhook_patch, "{name}: patch");
        if webhook_patch != json!([]) {
            patched += 1;
        }
    }
    assert!(
        allowed >= 4 && denied >= 6 && patched >= 6,
        "coverage: {allowed} allowed, {denied} denied, {patched} patched"
    );
}

// ---------------------------------------------------------------------------------------------
// Exit codes and inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn exit_codes() {
    // 0: nothing denied.
    let good = check(&["--inventory", INVENTORY, "examples/workloads"], None);
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(
        good.stdout.contains("3 allowed, 0 denied"),
        "{}",
        good.stdout
    );

    // 1: something denied.
    let broken = check(
        &[
            "--inventory",
            INVENTORY,
            "examples/broken/postgres-version.yaml",
        ],
        None,
    );
    assert_eq!(broken.code, 1, "{}", broken.stderr);
    // 1 with --fail-on warning (the defaults are warnings); 0 with --fail-on never.
    let warn = check(
        &[
            "--inventory",
            INVENTORY,
            "--fail-on",
            "warning",
            "examples/workloads",
        ],
        None,
    );
    assert_eq!(warn.code, 1);
    let never = check(
        &[
            "--inventory",
            INVENTORY,
            "--fail-on",
            "never",
            "examples/broken",
        ],
        None,
    );
    assert_eq!(never.code, 0);
    assert!(never.stdout.contains("5 denied"), "{}", never.stdout);

    // 2: usage and input errors, with the reason on stderr and nothing on stdout.
    let dir = tempfile::tempdir().unwrap();
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "apiVersion: v1\nkind: [unclosed\n").unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{\"kind\": ").unwrap();
    let bad_host = dir.path().join("host.yaml");
    std::fs::write(
        &bad_host,
        "apiVersion: wasmgate.dev/v1alpha1\nkind: Host\nmetadata: {name: h}\nhostId: [1]\n",
    )
    .unwrap();
    let bad_yaml = bad_yaml.display().to_string();
    let bad_json = bad_json.display().to_string();
    let bad_host = bad_host.display().to_string();
    for (args, expect) in [
        (vec![bad_yaml.as_str()], "cannot parse"),
        (
            vec![bad_json.as_str(), "examples/workloads"],
            "invalid JSON",
        ),
        (
            vec!["examples/workloads", "no/such/file.yaml"],
            "no/such/file.yaml",
        ),
        (
            vec![
                "--inventory",
                "no-such-inventory.yaml",
                "examples/workloads",
            ],
            "no-such-inventory.yaml",
        ),
        (
            vec!["--inventory", bad_yaml.as_str(), "examples/workloads"],
            "bad.yaml",
        ),
        (vec![bad_host.as_str()], "Host \"h\""),
        (
            vec!["--component", "nonsense", "examples/workloads"],
            "IMAGE=FILE.wasm",
        ),
        (
            vec![
                "--component",
                "ghcr.io/x:1=/no/such.wasm",
                "examples/workloads",
            ],
            "no such file",
        ),
        (
            vec!["--output", "yaml", "examples/workloads"],
            "invalid value 'yaml'",
        ),
        (
            vec!["--no-such-flag", "examples/workloads"],
            "unexpected argument",
        ),
    ] {
        let run = check(&args, None);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(expect), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // --cluster without a usable kubeconfig.
    let run = check_env(
        &["--cluster", "examples/workloads"],
        None,
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("KUBERNETES_SERVICE_HOST", ""),
        ],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("--cluster: cannot build a client"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    // Both unparseable files are reported, not just the first.
    let both = check(&[bad_yaml.as_str(), bad_json.as_str()], None);
    assert_eq!(both.code, 2);
    assert!(
        both.stderr.contains("bad.yaml") && both.stderr.contains("bad.json"),
        "{}",
        both.stderr
    );
}

const STREAM: &str = r#"# kustomize build output: a ConfigMap, a List with a Workload, and a Host
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
data: {a: b}
---
apiVersion: v1
kind: List
items:
- apiVersion: runtime.wasmcloud.dev/v1alpha1
  kind: Workload
  metadata:
    name: orders
    annotations:
      wit.wasmgate.dev/api: |
        package example:orders;
        world api {
          import orders-db: wasmcloud:postgres/query@0.2.0;
        }
  spec:
    hostSelector: {hostgroup: edge}
    hostInterfaces:
    - {name: orders-db, namespace: wasmcloud, package: postgres, version: "0.2.0", interfaces: [query]}
    components:
    - name: api
      image: ghcr.io/example/orders-api:1.4.0
---
apiVersion: wasmgate.dev/v1alpha1
kind: Host
metadata:
  name: edge-1
  labels: {hostgroup: edge}
hostId: edge-1
status:
  conditions: [{type: Ready, status: "True"}]
  imports:
  - {namespace: wasmcloud, package: postgres, version: 0.2.0, interfaces: [query]}
"#;

#[test]
fn stdin_lists_and_input_hosts() {
    // The Host in the stream joins the inventory: the workload resolves against it.
    let run = check(&["-o", "json", "-n", "shop", "-"], Some(STREAM));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["summary"]["objects"], 3);
    assert_eq!(report["summary"]["allowed"], 1);
    assert_eq!(report["summary"]["skipped"], 2);
    assert_eq!(report["summary"]["hosts"], 1);
    assert_eq!(report["summary"]["files"], 1);
    let result = &report["results"][0];
    assert_eq!(result["file"], "<stdin>");
    assert_eq!(
        result["namespace"], "shop",
        "--namespace applies to objects without one"
    );
    assert_eq!(result["line"], 10, "the List item's line");
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped[0]["kind"], "ConfigMap");
    assert_eq!(skipped[0]["line"], 2);
    assert_eq!(skipped[1]["kind"], "Host");
    assert_eq!(skipped[1]["line"], 28);

    // Without the Host, the same workload is denied, at the component's line.
    let without: String = STREAM
        .split("\n---\napiVersion: wasmgate.dev")
        .next()
        .unwrap()
        .to_string();
    let run = check(&["-o", "json"], Some(&without));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let v = &report["results"][0]["violations"][0];
    assert_eq!(v["code"], "plugin-unavailable");
    assert_eq!(v["component"], "api");
    assert_eq!(v["import"], "wasmcloud:postgres/query@0.2.0");
    assert_eq!(v["line"], 25);
    assert!(run.stderr.contains("no hosts"), "{}", run.stderr);

    // No paths: stdin.
    let run = check(
        &["--inventory", INVENTORY],
        Some(&std::fs::read_to_string(root().join("examples/workloads/hello-kv.yaml")).unwrap()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("1 objects in 1 files"),
        "{}",
        run.stdout
    );
}

#[test]
fn text_output_reads_like_compiler_diagnostics() {
    let run = check(
        &[
            "--inventory",
            INVENTORY,
            "examples/broken/postgres-version.yaml",
            "examples/workloads/hello-kv.yaml",
        ],
        None,
    );
    assert_eq!(run.code, 1);
    let expected_error = "examples/broken/postgres-version.yaml:25: error[plugin-unavailable]: component \"api\" imports wasmcloud:postgres/query@0.2.0 through hostInterfaces entry \"orders-db\": none of the 3 hosts matching hostSelector {hostgroup=default} provides wasmcloud:postgres@0.2.0 (they offer 0.1.1-draft)\n  = object: Workload default/orders-on-default\n  = component: api\n  = import: wasmcloud:postgres/query@0.2.0\n";
    assert!(run.stdout.contains(expected_error), "{}", run.stdout);
    assert!(run.stdout.contains("examples/workloads/hello-kv.yaml:4: note[defaulted]: hostInterfaces entry wasi:keyvalue: added for the imported [atomics, store]\n"), "{}", run.stdout);
    assert!(run.stdout.ends_with("2 objects in 2 files, checked against 5 hosts: 1 allowed, 1 denied, 0 skipped; 4 warnings\n"), "{}", run.stdout);
}

// ---------------------------------------------------------------------------------------------
// Output formats against their validators
// ---------------------------------------------------------------------------------------------

/// Everything at once: examples, the fixture objects, a stream with skipped objects.
fn rich_run(format: &str) -> Run {
    check(
        &["-o", format, "--inventory", INVENTORY, "examples", "-"],
        Some(STREAM),
    )
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("a valid schema")
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is invalid:\n{}",
        errors.join("\n")
    );
}

fn read_json(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join(path)).expect(path)).expect(path)
}

#[test]
fn json_output_matches_its_documented_schema() {
    let schema = read_json("docs/check-output.schema.json");
    let v = validator(&schema);
    let run = rich_run("json");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_valid(&v, &report, "check -o json");
    let s = &report["summary"];
    assert_eq!(
        s["objects"],
        s["allowed"].as_u64().unwrap()
            + s["denied"].as_u64().unwrap()
            + s["skipped"].as_u64().unwrap()
    );
    assert_eq!(report["version"], 1);

    // Every code in the output is documented.
    let doc = std::fs::read_to_string(root().join("docs/check-output.md")).unwrap();
    for (code, _, _) in wasmgate::check::report::rules() {
        assert!(
            doc.contains(&format!("`{code}`")),
            "docs/check-output.md does not document {code}"
        );
    }

    // The schema rejects what it should (it is not vacuous).
    let mut broken = report.clone();
    broken["results"][0]["allowed"] = json!("yes");
    assert!(!v.is_valid(&broken));
    let mut broken = report.clone();
    broken["summary"].as_object_mut().unwrap().remove("skipped");
    assert!(!v.is_valid(&broken));
    let mut broken = report;
    broken["results"][0]["patch"] = json!([{ "op": "add", "path": "/spec" }]);
    assert!(!v.is_valid(&broken));
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let schema = read_json("tests/fixtures/check/sarif-2.1.0.json");
    let v = validator(&schema);
    let run = rich_run("sarif");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let log = run.json();
    assert_valid(&v, &log, "check -o sarif");

    let run0 = &log["runs"][0];
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(run0["invocations"][0]["exitCode"], 1);
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run0["results"].as_array().unwrap();
    let pg = results
        .iter()
        .find(|r| r["ruleId"] == "plugin-unavailable")
        .expect("the postgres denial");
    assert_eq!(pg["level"], "error");
    assert_eq!(
        rules[pg["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "plugin-unavailable"
    );
    let loc = &pg["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "examples/broken/postgres-version.yaml"
    );
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(loc["region"]["startLine"], 25);
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        assert!(
            rules.iter().any(|rule| rule["id"] == id),
            "rule {id} is declared"
        );
        assert!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                >= 1
        );
    }
    assert!(
        results.iter().any(|r| r["level"] == "note"),
        "defaults are notes"
    );

    // Microsoft's SARIF validator (the npm package @microsoft/sarif-multitool-linux's
    // Sarif.Multitool), when WASMGATE_SARIF_MULTITOOL points at it: no errors, and no warnings
    // but SARIF2005 (no informationUri).
    if let Some(tool) = std::env::var_os("WASMGATE_SARIF_MULTITOOL") {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("check.sarif");
        std::fs::write(&input, &run.stdout).unwrap();
        let out = Command::new(tool)
            .arg("validate")
            .arg(&input)
            .arg("--output")
            .arg(dir.path().join("validation.sarif"))
            .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
            .output()
            .expect("run Sarif.Multitool");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "Sarif.Multitool: {text}");
        let findings: Vec<&str> = text
            .lines()
            .filter(|l| {
                (l.contains(": error SARIF") || l.contains(": warning SARIF"))
                    && !l.contains("SARIF2005")
            })
            .collect();
        assert!(findings.is_empty(), "Sarif.Multitool: {findings:#?}");
    }

    // The schema rejects what it should.
    let mut broken = log.clone();
    broken["version"] = json!("2.0.0");
    assert!(!v.is_valid(&broken));
    let mut broken = log;
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        json!(0);
    assert!(!v.is_valid(&broken));
}

/// An element of a parsed XML document.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: BTreeMap<String, String>,
    children: Vec<Element>,
    text: String,
}

fn parse_xml(xml: &str) -> Element {
    use quick_xml::events::{BytesStart, Event};
    fn element(e: &BytesStart<'_>) -> Element {
        let mut out = Element {
            name: e.name().as_ref().to_string(),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.expect("well-formed attribute");
            let key = a.key.as_ref().to_string();
            let value = a.value.to_string();
            assert!(
                out.attributes.insert(key, value).is_none(),
                "duplicate attribute"
            );
        }
        out
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut saw_decl = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Decl(_) => saw_decl = true,
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(element(&e)),
            Event::End(e) => {
                let done = stack.pop().unwrap();
                assert_eq!(done.name, e.name().as_ref(), "matching end tag");
                stack.last_mut().unwrap().children.push(done);
            }
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(t.as_ref()),
            Event::GeneralRef(r) => {
                let name: &str = r.as_ref();
                assert!(
                    ["amp", "lt", "gt", "quot", "apos"].contains(&name),
                    "entity &{name};"
                );
                stack.last_mut().unwrap().text.push('&');
            }
            Event::Eof => break,
            other => panic!("unexpected XML event {other:?}"),
        }
    }
    assert!(saw_decl, "XML declaration");
    let mut doc = stack.pop().unwrap();
    assert!(
        stack.is_empty() && doc.children.len() == 1,
        "one root element"
    );
    doc.children.pop().unwrap()
}

fn count(e: &Element, attr: &str) -> u64 {
    let v = e
        .attributes
        .get(attr)
        .unwrap_or_else(|| panic!("<{}> lacks {attr}", e.name));
    v.parse()
        .unwrap_or_else(|_| panic!("<{}> {attr}={v:?} is not a count", e.name))
}

fn only_attributes(e: &Element, allowed: &[&str]) {
    for k in e.attributes.keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "<{}> has unexpected attribute {k}",
            e.name
        );
    }
}

/// The rules of tests/fixtures/check/junit.xsd, checked on the parsed document.
fn check_junit(root: &Element) -> (u64, u64, u64) {
    assert_eq!(root.name, "testsuites");
    only_attributes(
        root,
        &["name", "tests", "failures", "errors", "skipped", "time"],
    );
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for suite in &root.children {
        assert_eq!(suite.name, "testsuite");
        only_attributes(
            suite,
            &[
                "name",
                "tests",
                "failures",
                "errors",
                "skipped",
                "time",
                "timestamp",
                "hostname",
            ],
        );
        assert!(suite.attributes.contains_key("name"));
        let mut phase = 0; // properties, testcases, system-out, system-err
        let (mut t, mut f, mut s) = (0, 0, 0);
        for child in &suite.children {
            let p = match child.name.as_str() {
                "properties" => 0,
                "testcase" => 1,
                "system-out" => 2,
                "system-err" => 3,
                other => panic!("unexpected <{other}> in <testsuite>"),
            };
            assert!(p >= phase, "<{}> out of order in <testsuite>", child.name);
            phase = p;
            if child.name != "testcase" {
                continue;
            }
            t += 1;
            only_attributes(
                child,
                &["name", "classname", "time", "file", "line", "assertions"],
            );
            assert!(
                child.attributes.contains_key("name") && child.attributes.contains_key("classname")
            );
            assert!(count(child, "line") >= 1);
            let time: f64 = child.attributes["time"].parse().expect("decimal time");
            assert!(time >= 0.0);
            let mut inner = 0;
            for e in &child.children {
                let p = match e.name.as_str() {
                    "skipped" | "error" | "failure" => 0,
                    "system-out" => 1,
                    "system-err" => 2,
                    other => panic!("unexpected <{other}> in <testcase>"),
                };
                assert!(p >= inner, "<{}> out of order in <testcase>", e.name);
                inner = p;
                match e.name.as_str() {
                    "failure" | "error" => only_attributes(e, &["message", "type"]),
                    "skipped" => {
                        only_attributes(e, &["message"]);
                        assert!(e.children.is_empty());
                    }
                    _ => {
                        assert!(e.attributes.is_empty() && e.children.is_empty());
                    }
                }
            }
            if child.children.iter().any(|e| e.name == "failure") {
                f += 1;
            }
            if child.children.iter().any(|e| e.name == "skipped") {
                s += 1;
            }
        }
        assert_eq!(
            count(suite, "tests"),
            t,
            "tests of {:?}",
            suite.attributes["name"]
        );
        assert_eq!(count(suite, "failures"), f);
        assert_eq!(count(suite, "errors"), 0);
        assert_eq!(count(suite, "skipped"), s);
        tests += t;
        failures += f;
        skipped += s;
    }
    assert_eq!(count(root, "tests"), tests);
    assert_eq!(count(root, "failures"), failures);
    assert_eq!(count(root, "skipped"), skipped);
    (tests, failures, skipped)
}

#[test]
fn junit_output_is_valid_junit() {
    let run = rich_run("junit");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = parse_xml(&run.stdout);
    let (tests, failures, skipped) = check_junit(&doc);
    let json = rich_run("json").json();
    assert_eq!(tests, json["summary"]["objects"].as_u64().unwrap());
    assert_eq!(failures, json["summary"]["denied"].as_u64().unwrap());
    assert_eq!(skipped, json["summary"]["skipped"].as_u64().unwrap());

    // The official-style XSD, when xmllint is available (Debian libxml2-utils).
    let xsd = root().join("tests/fixtures/check/junit.xsd");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, &run.stdout).unwrap();
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(&file)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            // Shown even for a passing test (the harness captures eprintln!, not the handle).
            let _ = writeln!(
                std::io::stderr().lock(),
                "check_cli: xmllint not installed; JUnit checked by the quick-xml rules only"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// --mutate, --output-file, --component
// ---------------------------------------------------------------------------------------------

#[test]
fn mutate_prints_the_defaulted_objects() {
    let dir = tempfile::tempdir().unwrap();
    let report_file = dir.path().join("report.json");
    let report_arg = report_file.display().to_string();
    let run = check(
        &[
            "--mutate",
            "-o",
            "json",
            "--output-file",
            &report_arg,
            "--inventory",
            INVENTORY,
            "examples/workloads",
            "-",
        ],
        Some(STREAM),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    let objects: Vec<Value> = serde_saphyr::from_str_multiple(&run.stdout).expect("a YAML stream");
    // Every input object, in order: 3 workloads, then the stream's ConfigMap, Workload, Host.
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "WorkloadReplicaSet",
            "Workload",
            "WorkloadDeployment",
            "ConfigMap",
            "Workload",
            "Host"
        ]
    );
    // Each checked object is the input with the patch applied.
    let hello = &objects[1];
    assert_eq!(
        hello["spec"]["components"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let entries: Vec<&str> = hello["spec"]["hostInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["package"].as_str().unwrap())
        .collect();
    assert_eq!(entries, ["http", "keyvalue", "logging"]);
    assert!(report["results"][1]["patch"].as_array().unwrap().len() >= 3);

    // Idempotent: the mutated objects have nothing left to default, and the same verdicts.
    let again = check(
        &["-o", "json", "--inventory", INVENTORY, "-n", "shop", "-"],
        Some(&run.stdout),
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    let again = again.json();
    for r in again["results"].as_array().unwrap() {
        assert_eq!(r["patch"], json!([]), "{r}");
        assert!(
            r["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|w| w["code"] != "defaulted"),
            "{r}"
        );
    }
    assert_eq!(again["summary"]["allowed"], 4);

    // Without --output-file, the report goes to stderr.
    let run = check(
        &[
            "--mutate",
            "--inventory",
            INVENTORY,
            "examples/workloads/hello-kv.yaml",
        ],
        None,
    );
    assert!(
        run.stderr.contains("1 objects in 1 files"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.starts_with("---\n"), "{}", run.stdout);
}

#[test]
fn component_files_give_worlds() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = common::write(
        dir.path(),
        "orders.wasm",
        &common::build_component("package test:orders; world orders { import orders-db: wasmcloud:postgres/query@0.2.0; }"),
    );
    // The example without its annotation: the world comes from the component file.
    let mut object: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("examples/broken/postgres-version.yaml")).unwrap(),
    )
    .unwrap();
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let file = dir.path().join("orders.json");
    std::fs::write(&file, serde_json::to_vec(&object).unwrap()).unwrap();
    let file = file.display().to_string();
    let mapping = format!("ghcr.io/example/orders-api:1.4.0={}", wasm.display());

    let unknown = check(
        &["-o", "json", "--offline", "--inventory", INVENTORY, &file],
        None,
    );
    assert_eq!(
        unknown.code, 0,
        "no world: admitted with a warning: {}",
        unknown.stderr
    );
    let warnings = unknown.json()["results"][0]["warnings"].clone();
    assert!(
        warnings
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "world-unavailable"),
        "{warnings}"
    );
    let denied = check(
        &[
            "-o",
            "json",
            "--unknown-world",
            "deny",
            "--inventory",
            INVENTORY,
            &file,
        ],
        None,
    );
    assert_eq!(denied.code, 1);

    let cache = dir.path().join("cache").display().to_string();
    let run = check(
        &[
            "-o",
            "json",
            "--offline",
            "--cache",
            &cache,
            "--component",
            &mapping,
            "--inventory",
            INVENTORY,
            &file,
        ],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(
        report["results"][0]["violations"][0]["code"],
        "plugin-unavailable"
    );
}

// ---------------------------------------------------------------------------------------------
// JSON Schemas of the kinds (kubeconform layout)
// ---------------------------------------------------------------------------------------------

#[test]
fn schemas_match_generated_and_validate_examples() {
    let dir = root().join("schemas");
    let documents = wasmgate::check::schemas::documents().expect("the schemas serialize");
    if std::env::var("WASMGATE_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        for (path, text) in &documents {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, text).unwrap();
        }
    }
    for (path, text) in &documents {
        let on_disk = std::fs::read_to_string(dir.join(path)).unwrap_or_default();
        assert!(
            on_disk == *text,
            "schemas/{path} is not what the types generate; regenerate with WASMGATE_UPDATE_SCHEMAS=1 cargo test --test check_cli schemas"
        );
    }
    let mut on_disk = Vec::new();
    for group in std::fs::read_dir(&dir).unwrap() {
        let group = group.unwrap();
        for file in std::fs::read_dir(group.path()).unwrap() {
            on_disk.push(format!(
                "{}/{}",
                group.file_name().to_string_lossy(),
                file.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    on_disk.sort();
    let mut generated: Vec<String> = documents.iter().map(|(p, _)| p.clone()).collect();
    generated.sort();
    assert_eq!(on_disk, generated, "no stale files in schemas/");

    // The examples validate against the schema their apiVersion and kind select, as kubeconform
    // would find it; the example inventory's Hosts too.
    let schema_for = |obj: &Value| {
        let (group, version) = obj["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap();
        let kind = obj["kind"].as_str().unwrap().to_lowercase();
        validator(&read_json(&format!(
            "schemas/{group}/{kind}_{version}.json"
        )))
    };
    let mut checked = 0;
    for path in examples() {
        let obj: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_valid(&schema_for(&obj), &obj, &path.display().to_string());
        checked += 1;
    }
    let inventory: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join(INVENTORY)).unwrap()).unwrap();
    for host in inventory["items"].as_array().unwrap() {
        assert_valid(&schema_for(host), host, "an inventory Host");
        checked += 1;
    }
    assert!(checked >= 13);

    // What the CRDs reject, the schemas reject: an unknown field, a wrong type.
    let hello: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("examples/workloads/hello-kv.yaml")).unwrap(),
    )
    .unwrap();
    let v = schema_for(&hello);
    let mut bad = hello.clone();
    bad["spec"]["components"][0]["imagee"] = json!("typo");
    assert!(!v.is_valid(&bad));
    let mut bad = hello;
    bad["spec"]["components"] = json!("not a list");
    assert!(!v.is_valid(&bad));
}

// ---------------------------------------------------------------------------------------------
// Component worlds from a real OCI registry (Debian's docker-registry on loopback)
// ---------------------------------------------------------------------------------------------

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A plain-HTTP `docker-registry serve` on a free loopback port, killed on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start() -> Registry {
        assert!(
            std::path::Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install the Debian package docker-registry (scripts/lib-install.sh)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let config = format!(
            "version: 0.1\nlog:\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: wasmgate-check-test\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Registry { child, port, dir }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests for blobs or manifests so far (the access log).
    fn requests(&self) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("\"GET /v2/") || l.contains("\"HEAD /v2/"))
            .count()
    }

    /// Pushes `component` as a CNCF wasm OCI artifact; returns the manifest digest.
    async fn push(&self, repo_tag: &str, component: Vec<u8>) -> String {
        use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
        use oci_client::manifest::OciImageManifest;
        use oci_client::secrets::RegistryAuth;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = oci_client::Client::try_from(ClientConfig {
            protocol: ClientProtocol::Http,
            ..ClientConfig::default()
        })
        .unwrap();
        let reference: oci_client::Reference =
            format!("{}/{repo_tag}", self.host()).parse().unwrap();
        let layers = vec![ImageLayer::new(
            component,
            "application/wasm".to_string(),
            None,
        )];
        let config = Config::new(
            serde_json::to_vec(&json!({
                "architecture": "wasm",
                "os": "wasip2",
                "layerDigests": [layers[0].sha256_digest()],
            }))
            .unwrap(),
            "application/vnd.wasm.config.v0+json".to_string(),
            None,
        );
        let manifest = OciImageManifest::build(&layers, &config, None);
        client
            .push(
                &reference,
                &layers,
                config,
                &RegistryAuth::Anonymous,
                Some(manifest),
            )
            .await
            .expect("push");
        client
            .fetch_manifest_digest(&reference, &RegistryAuth::Anonymous)
            .await
            .expect("digest")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_worlds_offline_cache_and_the_webhook_agree() {
    let registry = Registry::start();
    let image = format!("{}/example/orders-api:1.4.0", registry.host());
    let digest = registry
        .push(
            "example/orders-api:1.4.0",
            common::build_component("package test:orders; world orders { import orders-db: wasmcloud:postgres/query@0.2.0; }"),
        )
        .await;

    // The broken example without its annotation, pointing at the pushed image.
    let dir = tempfile::tempdir().unwrap();
    let mut object: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("examples/broken/postgres-version.yaml")).unwrap(),
    )
    .unwrap();
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    object["spec"]["components"][0]["image"] = json!(image);
    let file = dir.path().join("orders.json");
    std::fs::write(&file, serde_json::to_vec(&object).unwrap()).unwrap();
    let file = file.display().to_string();
    let host = registry.host();
    let cache = dir.path().join("cache");
    let cache_arg = cache.display().to_string();

    // Online: the world comes from the registry, and the verdict is the webhook's.
    let run = check(
        &[
            "-o",
            "json",
            "--registry-insecure",
            &host,
            "--cache",
            &cache_arg,
            "--inventory",
            INVENTORY,
            &file,
        ],
        None,
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let result = run.json()["results"][0].clone();
    assert_eq!(
        result["violations"][0]["code"], "plugin-unavailable",
        "{result}"
    );
    assert!(
        std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0) > 0,
        "--cache keeps the world"
    );

    let server = common::Server::start(
        &dir.path().join("certs"),
        &[
            "--inventory".to_string(),
            root().join(INVENTORY).display().to_string(),
            "--registry-insecure".to_string(),
            host.clone(),
        ],
    );
    let client = server.client();
    let review = review(&object, "default", "uid-oci");
    let validate = post(&client, &format!("{}/validate", server.url), &review).await;
    assert_eq!(result["allowed"], validate["allowed"]);
    assert_eq!(result["message"], validate["status"]["message"]);
    let mutate = post(&client, &format!("{}/mutate", server.url), &review).await;
    let patch: Value = common::response_patch(&mutate).unwrap_or(json!([]));
    assert_eq!(result["patch"], patch);

    // --pin-digests: --mutate rewrites the image to the digest that was validated.
    let run = check(
        &[
            "--mutate",
            "--pin-digests",
            "--registry-insecure",
            &host,
            "--inventory",
            INVENTORY,
            &file,
        ],
        None,
    );
    let mutated: Value = serde_saphyr::from_str(&run.stdout).expect("YAML");
    assert_eq!(
        mutated["spec"]["components"][0]["image"],
        json!(format!("{}/example/orders-api@{digest}", registry.host())),
        "{}",
        run.stderr
    );

    // --offline: no request reaches the registry; the world is unknown (a warning, exit 0).
    let before = registry.requests();
    assert!(before > 0, "the online runs pulled from the registry");
    let run = check(
        &[
            "-o",
            "json",
            "--offline",
            "--registry-insecure",
            &host,
            "--cache",
            &cache_arg,
            "--inventory",
            INVENTORY,
            &file,
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let warnings = run.json()["results"][0]["warnings"].clone();
    assert!(
        warnings
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "world-unavailable"),
        "{warnings}"
    );
    assert_eq!(
        registry.requests(),
        before,
        "--offline made no registry request"
    );
}

/// `--graph`: each object's link graph, as DOT (which Graphviz renders) and as Mermaid: every
/// import with what provides it (sibling, built-in, plugin on how many hosts), the failing one
/// in red with the reason; the exit code is the verdict's, as for the report.
#[test]
fn graph_of_a_denied_workload() {
    let dot = check(
        &[
            "--inventory",
            INVENTORY,
            "--graph",
            "dot",
            "docs/graph/shop.yaml",
        ],
        None,
    );
    assert_eq!(dot.code, 1, "denied: {}", dot.stderr);
    let out = &dot.stdout;
    assert!(
        out.starts_with("digraph \"Workload/default/shop\" {"),
        "{out}"
    );
    for line in [
        r#""c:storefront" -> "c:pricing" [label="example:pricing/quote@0.1.0"];"#,
        r#""c:storefront" -> "c:orders" [label="example:orders/place@0.1.0"];"#,
        r#""c:storefront" -> "builtin" [label="wasi:clocks/wall-clock@0.2.6"];"#,
        r#""c:pricing" -> "plugin:hostInterfaces entry wasi:keyvalue" [label="wasi:keyvalue/store@0.2.0-draft"];"#,
        r#""c:orders" -> "fail:1" [label="orders-db: wasmcloud:postgres/query@0.2.0", color=red, fontcolor=red];"#,
    ] {
        assert!(
            out.lines().any(|l| l.trim() == line),
            "missing {line}\nin:\n{out}"
        );
    }
    assert!(out.contains("(they offer 0.1.1-draft)"), "{out}");
    // Graphviz reads it (CI installs graphviz; `.ci/run`).
    let mut render = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` (Debian package graphviz)");
    render
        .stdin
        .take()
        .expect("stdin")
        .write_all(out.as_bytes())
        .expect("write DOT");
    let svg = render.wait_with_output().expect("dot");
    assert!(
        svg.status.success() && String::from_utf8_lossy(&svg.stdout).contains("<svg"),
        "dot refused the graph: {}",
        String::from_utf8_lossy(&svg.stderr)
    );

    let mermaid = check(
        &[
            "--inventory",
            INVENTORY,
            "-o",
            "mermaid",
            "docs/graph/shop.yaml",
        ],
        None,
    );
    assert_eq!(mermaid.code, 1);
    let m = &mermaid.stdout;
    assert!(
        m.contains("%% Workload default/shop: denied\nflowchart LR\n"),
        "{m}"
    );
    assert!(
        m.contains(r#"n_c_orders -.->|"orders-db: wasmcloud:postgres/query@0.2.0"| fail_1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"n_c_storefront -->|"example:pricing/quote@0.1.0"| n_c_pricing"#),
        "{m}"
    );
}
