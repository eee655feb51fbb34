//! The layering of the code, held by tests (issue 15).
//!
//! - `core_has_no_runtime_dependencies`: the `wasmgate-core` crate (WIT model, resolver, policy,
//!   Kubernetes types) builds without a kube client, an HTTP stack or an async runtime (read from
//!   `cargo tree`, so a new dependency that pulls one in fails here).
//! - `edges_do_not_import_each_other`: the edges (the webhook, the hosts API, the reconciler,
//!   `wasmgate check`) import the core and the layers below them, never each other.
//! - `modules_form_no_circle`: the top-level modules of `src/` import each other without a loop.
//!
//! The module graph is read from the sources: every `crate::NAME` path in a file of module `M`
//! is an arrow `M -> NAME`. Comments are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The edges: each serves one kind of caller and may import anything below it, but no other edge.
const EDGES: [&str; 4] = ["admission", "apiserver", "reconcile", "check"];

/// What the core must not depend on, even indirectly.
const FORBIDDEN_IN_CORE: [&str; 10] = [
    "kube",
    "kube-client",
    "kube-runtime",
    "axum",
    "axum-server",
    "hyper",
    "tokio",
    "async-nats",
    "oci-client",
    "rustls",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn core_has_no_runtime_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "-p",
            "wasmgate-core",
            "--all-features",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let packages: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        packages.contains("wasmgate-core") && packages.contains("wit-parser"),
        "cargo tree listed the core's dependencies: {packages:?}"
    );
    let found: Vec<&str> = FORBIDDEN_IN_CORE
        .iter()
        .copied()
        .filter(|name| packages.contains(name))
        .collect();
    assert!(
        found.is_empty(),
        "wasmgate-core depends on {found:?}; the core stays free of I/O stacks"
    );
}

/// Top-level module of each `src/` file (`src/apiserver/hosts.rs` -> `apiserver`); `lib.rs` and
/// `main.rs` are the crate roots and are left out.
fn module_files() -> BTreeMap<String, Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = root().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a path")
            .trim_end_matches(".rs")
            .to_string();
        if first == "lib" || first == "main" {
            continue;
        }
        modules.entry(first).or_default().push(file);
    }
    modules
}

/// `module -> modules it names as crate::NAME`, and one file:line per arrow for the messages.
fn module_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let modules = module_files();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (module, files) in &modules {
        let arrows = graph.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(file).expect("readable");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (at, _) in code.match_indices("crate::") {
                    let name: String = code[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name != *module && modules.contains_key(&name) {
                        arrows.entry(name).or_insert_with(|| {
                            format!(
                                "{}:{}",
                                file.strip_prefix(root()).unwrap_or(file).display(),
                                n + 1
                            )
                        });
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn edges_do_not_import_each_other() {
    let graph = module_graph();
    for edge in EDGES {
        assert!(graph.contains_key(edge), "edge {edge} exists in src/");
    }
    let mut crossings = Vec::new();
    for edge in EDGES {
        for (target, at) in &graph[edge] {
            if EDGES.contains(&target.as_str()) {
                crossings.push(format!("{edge} -> {target} ({at})"));
            }
        }
    }
    assert!(
        crossings.is_empty(),
        "edges import each other:\n  {}",
        crossings.join("\n  ")
    );
}

#[test]
fn modules_form_no_circle() {
    let graph = module_graph();
    // Depth-first search with colours; a grey node reached again closes a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == next).unwrap_or(0);
                    let mut circle = path[start..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                0 => {
                    if let Some(circle) = visit(next, graph, state, path) {
                        return Some(circle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            if let Some(circle) = visit(node, &graph, &mut state, &mut Vec::new()) {
                let arrows: Vec<String> = circle
                    .windows(2)
                    .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                    .collect();
                panic!(
                    "the modules of src/ form a circle:\n  {}",
                    arrows.join("\n  ")
                );
            }
        }
    }
    // The check can fail: a graph with a known loop is reported.
    let mut looped: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    looped.insert("a".into(), [("b".into(), "x".into())].into());
    looped.insert("b".into(), [("a".into(), "y".into())].into());
    assert!(visit("a", &looped, &mut BTreeMap::new(), &mut Vec::new()).is_some());
}
