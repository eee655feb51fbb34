//! Writes the admission benchmark's inputs into a directory (scripts/bench-admission):
//!
//! - `inventory-<N>.json` for each host count: a `List` of Hosts in four host groups, each with
//!   the plugin set `wash host` registers; only one host of the `data` group offers
//!   wasmcloud:postgres 0.2.0, so a plugin check by scanning has to look at the whole group.
//! - `wide-annotations.json`: an AdmissionReview of a 10-component Workload whose worlds are in
//!   `wit.wasmgate.dev/` annotations: each component imports four plugin interfaces (four
//!   `hostInterfaces` entries, one of them named), two built-ins and the previous component's
//!   interface (a 9-link sibling chain); the last one exports wasmcloud:messaging/handler.
//! - `wide-components.json`: the same Workload without annotations; its worlds come from the
//!   component binaries `components/c<i>.wasm` (real components encoded by wit-component),
//!   which `components.args` maps to the images (`--component IMAGE=FILE`).
//! - `single.json`: a 1-component Workload (examples/workloads/hello-kv.yaml's world).
//!
//! Usage: admission-fixtures OUT_DIR HOSTS...

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

/// Components in the wide workload.
const WIDE: usize = 10;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, counts)) = args.split_first() else {
        bail!("usage: admission-fixtures OUT_DIR HOSTS...");
    };
    let out = Path::new(out);
    std::fs::create_dir_all(out.join("components"))?;
    for count in counts {
        let n: usize = count.parse().context("HOSTS must be numbers")?;
        write_json(&out.join(format!("inventory-{n}.json")), &inventory(n))?;
    }
    let texts: Vec<String> = (0..WIDE).map(wide_world).collect();
    let mut annotations = serde_json::Map::new();
    for (i, text) in texts.iter().enumerate() {
        annotations.insert(
            format!("wit.wasmgate.dev/c{i}"),
            Value::String(text.clone()),
        );
    }
    write_json(
        &out.join("wide-annotations.json"),
        &review("wide", wide_spec(), Value::Object(annotations)),
    )?;
    write_json(
        &out.join("wide-components.json"),
        &review("wide", wide_spec(), json!({})),
    )?;
    let mut map = String::new();
    for (i, text) in texts.iter().enumerate() {
        let file = out.join("components").join(format!("c{i}.wasm"));
        std::fs::write(&file, component(text)?)?;
        map.push_str(&format!("--component={}={}\n", image(i), file.display()));
    }
    std::fs::write(out.join("components.args"), map)?;
    write_json(&out.join("single.json"), &single())?;
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec(value)?).with_context(|| format!("{}", path.display()))
}

fn image(i: usize) -> String {
    format!("ghcr.io/acme/c{i}:1.0.0")
}

fn wit(ns: &str, pkg: &str, version: Option<&str>, interfaces: &[&str]) -> Value {
    let mut v = json!({ "namespace": ns, "package": pkg, "interfaces": interfaces });
    if let Some(version) = version {
        v["version"] = json!(version);
    }
    v
}

fn inventory(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let group = ["default", "data", "edge", "gpu"][i % 4];
            let postgres = if i + 3 == n { "0.2.0" } else { "0.1.1-draft" };
            json!({
                "apiVersion": "wasmgate.dev/v1alpha1",
                "kind": "Host",
                "metadata": { "name": format!("host-{i}"), "labels": { "hostgroup": group } },
                "hostId": format!("id-{i}"),
                "hostname": format!("10.0.{}.{}", i / 250, i % 250),
                "environment": "team-a",
                "status": {
                    "version": "2.7.0",
                    "conditions": [{ "type": "Ready", "status": "True", "reason": "Available" }],
                    "imports": [
                        wit("wasi", "config", Some("0.2.0-rc.1"), &["store"]),
                        wit("wasi", "logging", None, &["logging"]),
                        wit("wasi", "keyvalue", None, &["store", "atomics", "batch"]),
                        wit("wasmcloud", "messaging", Some("0.2.0"), &["consumer", "types"]),
                        wit("wasmcloud", "messaging", Some("0.3.0"), &["consumer", "types"]),
                        wit("wasi", "blobstore", Some("0.2.0-draft"), &["blobstore", "container", "types"]),
                        wit("wasmcloud", "postgres", Some(postgres), &["types", "query", "prepared"]),
                    ],
                    "exports": [wit("wasmcloud", "messaging", Some("0.3.0"), &["handler"])],
                }
            })
        })
        .collect();
    json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

/// Component `i`'s world as WIT text (an annotation, and the source of its binary).
fn wide_world(i: usize) -> String {
    let mut w = format!(
        "package acme:c{i}@1.0.0;\n\ninterface api {{\n  call: func(input: string) -> string;\n}}\n\nworld c{i} {{\n"
    );
    for import in [
        "wasi:io/streams@0.2.6",
        "wasi:clocks/wall-clock@0.2.0",
        "wasi:keyvalue/store@0.2.0-draft",
        "wasi:config/store@0.2.0-rc.1",
        "wasmcloud:messaging/consumer@0.3.0",
        "orders-db: wasmcloud:postgres/query@0.2.0",
    ] {
        w.push_str(&format!("  import {import};\n"));
    }
    if i > 0 {
        w.push_str(&format!("  import acme:c{}/api@1.0.0;\n", i - 1));
    }
    w.push_str("  export api;\n");
    if i == WIDE - 1 {
        w.push_str("  export wasmcloud:messaging/handler@0.3.0;\n");
    }
    w.push_str("}\n");
    w
}

fn wide_spec() -> Value {
    let components: Vec<Value> = (0..WIDE)
        .map(|i| json!({ "name": format!("c{i}"), "image": image(i) }))
        .collect();
    json!({
        "hostSelector": { "hostgroup": "data" },
        "hostInterfaces": [
            { "namespace": "wasi", "package": "keyvalue", "interfaces": ["store"] },
            { "namespace": "wasi", "package": "config", "interfaces": ["store"] },
            { "namespace": "wasmcloud", "package": "messaging", "version": "0.3.0", "interfaces": ["consumer"] },
            { "name": "orders-db", "namespace": "wasmcloud", "package": "postgres", "version": "0.2.0", "interfaces": ["query"] },
        ],
        "components": components,
    })
}

fn single() -> Value {
    let world = "package example:hello;\nworld hello {\n  import wasi:keyvalue/store@0.2.0-draft;\n  import wasi:keyvalue/atomics@0.2.0-draft;\n  import wasi:logging/logging@0.1.0-draft;\n  import wasi:io/streams@0.2.6;\n  export wasi:http/incoming-handler@0.2.0;\n}\n";
    review(
        "hello-kv",
        json!({
            "hostSelector": { "hostgroup": "default" },
            "hostInterfaces": [
                { "namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"], "config": { "host": "hello.example.test" } },
                { "namespace": "wasi", "package": "keyvalue", "interfaces": ["store", "atomics"] },
                { "namespace": "wasi", "package": "logging", "interfaces": ["logging"] },
            ],
            "components": [{ "name": "hello", "image": "ghcr.io/example/hello-kv:0.3.1", "imagePullPolicy": "IfNotPresent" }],
        }),
        json!({ "wit.wasmgate.dev/hello": world }),
    )
}

/// An AdmissionReview creating the Workload `name` (as kube-apiserver sends it).
fn review(name: &str, spec: Value, annotations: Value) -> Value {
    let gvk =
        json!({ "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "kind": "Workload" });
    let gvr =
        json!({ "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "resource": "workloads" });
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0f7e1a52-9d3c-4b8e-a1f0-5c2d7e9b3a61",
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": name,
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": { "username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"] },
            "object": {
                "apiVersion": "runtime.wasmcloud.dev/v1alpha1",
                "kind": "Workload",
                "metadata": { "name": name, "namespace": "default", "annotations": annotations },
                "spec": spec,
            },
            "oldObject": null,
            "dryRun": false,
            "options": { "apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions" },
        }
    })
}

/// A real component with `world_text`'s world: a dummy core module carrying the world's
/// metadata, encoded by wit-component. Every package the world names from outside is declared
/// first with the interfaces it uses (one function each, so the import is kept).
fn component(world_text: &str) -> anyhow::Result<Vec<u8>> {
    let mut resolve = Resolve::default();
    let mut stubs: Vec<(String, Vec<String>)> = Vec::new();
    for line in world_text.lines() {
        let line = line.trim();
        let Some(rest) = line
            .strip_prefix("import ")
            .or_else(|| line.strip_prefix("export "))
        else {
            continue;
        };
        let path = rest
            .rsplit(": ")
            .next()
            .unwrap_or(rest)
            .trim_end_matches(';');
        if !path.contains(':') {
            continue; // the world's own interface
        }
        let (package, version) = path.split_once('@').context("a versioned import")?;
        let (package, interface) = package.split_once('/').context("an interface path")?;
        let key = format!("{package}@{version}");
        match stubs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, interfaces)) => interfaces.push(interface.to_string()),
            None => stubs.push((key, vec![interface.to_string()])),
        }
    }
    for (package, interfaces) in &stubs {
        let mut text = format!("package {package};\n");
        for interface in interfaces {
            text.push_str(&format!("interface {interface} {{ f: func(); }}\n"));
        }
        resolve
            .push_str(format!("{package}.wit"), &text)
            .with_context(|| format!("stub package {package}"))?;
    }
    let pkg = resolve.push_str("world.wit", world_text)?;
    let world = resolve.select_world(&[pkg], None)?;
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)?;
    ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
}
