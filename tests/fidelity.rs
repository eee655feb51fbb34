//! Fidelity: wasmgate's verdicts against the oracle (`crates/oracle`), which links a workload the
//! way a wasmCloud v2.7.0 host on wasmtime 47.0.3 does.
//!
//! - `differential`: a seeded generator of workloads and host plugin sets, compiled into real
//!   component binaries with wit-component, judged by both. Fails on any disagreement not in
//!   [`INTENDED_DIFFERENCES`]. Knobs: `WASMGATE_FIDELITY_CASES` (default 300),
//!   `WASMGATE_FIDELITY_SEED` (default [`DEFAULT_SEED`]), `WASMGATE_FIDELITY_REPORT_ONLY=1`
//!   (print, never fail; for development), `WASMGATE_FIDELITY_SHOW` (how many disagreements to
//!   print in full, default 5), `WASMGATE_FIDELITY_DUMP=<file>` (write every disagreement).
//! - `row_*`: the five rows of issue 12 (`tests/fixtures/fidelity/rows/`), asserting upstream's
//!   verdict from the oracle, and wasmgate's agreement with it.
//!
//! The WASI WIT is the real one wasmtime 47.0.3 binds (`tests/fixtures/fidelity/wit/`), its
//! package versions rewritten for other patch versions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wasmgate::policy::Policy;
use wasmgate::resolve::{apply_defaults, resolve, Hosts, Report, ResolveInput, WorldState};
use wasmgate_oracle::wit_text::rewrite_version;
use wasmgate_oracle::{Entry, Oracle, Plugin, Verdict, WitInterface};
use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

/// The default seed of the fixed CI set.
const DEFAULT_SEED: u64 = 0x5eed_2026_1201;
/// Cases in the fixed CI set.
const DEFAULT_CASES: usize = 300;

/// Disagreements that are intended: wasmgate deliberately decides differently from what the
/// host's linker does. Each names a predicate over the case and both verdicts, and the reason.
/// Keep this list short; README documents each entry.
struct Intended {
    name: &'static str,
    reason: &'static str,
    applies: fn(&Case, &Verdict, &Report) -> bool,
}

const INTENDED_DIFFERENCES: &[Intended] = &[Intended {
    name: "multi-version-plugin-binds-one",
    reason: "a heartbeat does not say which of several advertised versions of a package a plugin \
             binds; wasmgate assumes the entry's version, or the oldest for an unversioned \
             entry, as upstream's only such plugin (wasmcloud-postgres 2.7.0) does, so a plugin \
             binding all its versions can be denied where it links; pinning the entry's version \
             admits it",
    applies: multi_version_plugin_binds_one,
}];

/// The oracle links, wasmgate denies a plugin import, and the import's package has an
/// unversioned entry and a plugin advertising it at two or more versions.
fn multi_version_plugin_binds_one(case: &Case, oracle: &Verdict, report: &Report) -> bool {
    let plugin_denial = !report.violations.is_empty()
        && report
            .violations
            .iter()
            .all(|v| v.code == wasmgate::resolve::Code::PluginUnavailable);
    let multi_version = |ns: &str, pkg: &str| {
        case.plugins.iter().any(|p| {
            p.world_imports
                .iter()
                .filter(|w| w.namespace == ns && w.package == pkg)
                .filter_map(|w| w.version.as_deref())
                .collect::<BTreeSet<_>>()
                .len()
                > 1
        })
    };
    matches!(oracle, Verdict::Links)
        && plugin_denial
        && case
            .entries
            .iter()
            .any(|e| e.version.is_none() && multi_version(&e.namespace, &e.package))
}

// ---------------------------------------------------------------------------------------------
// PRNG (splitmix64): dependency-free, stable across platforms.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A non-empty random subset (in input order).
    fn subset<T: Clone>(&mut self, items: &[T]) -> Vec<T> {
        loop {
            let s: Vec<T> = items.iter().filter(|_| self.chance(50)).cloned().collect();
            if !s.is_empty() {
                return s;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WIT sources.

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fidelity")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// WASI P2 packages in dependency order, as wasmtime-wasi 47.0.3 vendors them (`@0.2.12`).
const P2_FILES: &[&str] = &[
    "io",
    "clocks",
    "random",
    "filesystem",
    "sockets",
    "cli",
    "http",
];
/// WASI P3 packages in dependency order (`@0.3.0`).
const P3_FILES: &[&str] = &["clocks", "random", "filesystem", "sockets", "cli", "http"];
const P2_SHIPPED: &str = "0.2.12";
const P3_SHIPPED: &str = "0.3.0";

/// WASI P2 text of one file at `version`.
fn p2_text(file: &str, version: &str) -> String {
    rewrite_version(
        &read(&fixtures().join(format!("wit/p2/{file}.wit"))),
        P2_SHIPPED,
        version,
    )
}

fn p3_text(file: &str, version: &str) -> String {
    rewrite_version(
        &read(&fixtures().join(format!("wit/p3/{file}.wit"))),
        P3_SHIPPED,
        version,
    )
}

fn set_package_version(text: &str, package: &str, version: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with(&format!("package {package}@")) {
                format!("package {package}@{version};")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn keyvalue_text(version: &str) -> String {
    set_package_version(
        &read(&fixtures().join("wit/plugins/wasi-keyvalue-0.2.0-draft.wit")),
        "wasi:keyvalue",
        version,
    )
}

fn logging_text(version: &str) -> String {
    set_package_version(
        &read(&fixtures().join("wit/plugins/wasi-logging-0.1.0-draft.wit")),
        "wasi:logging",
        version,
    )
}

/// A synthetic plugin package with a resource, a dependent interface and a types-only one.
fn test_kv_text(version: &str) -> String {
    format!(
        "package test:kv@{version};

interface types {{
  record entry {{ key: string, value: list<u8> }}
  enum kind {{ plain, counter }}
}}

interface store {{
  use types.{{entry}};
  resource bucket {{
    get: func(key: string) -> option<entry>;
    set: func(e: entry);
  }}
  open: func(name: string) -> bucket;
}}

interface atomics {{
  use store.{{bucket}};
  increment: func(b: borrow<bucket>, key: string, delta: u64) -> u64;
}}
"
    )
}

/// A synthetic plugin package with an `async func` (component-model async) and a plain one.
fn test_db_text(version: &str) -> String {
    format!(
        "package test:db@{version};

interface query {{
  query: async func(sql: string) -> list<string>;
}}

interface admin {{
  reset: func();
}}
"
    )
}

/// A messaging-like plugin package: components import `consumer`, and export `handler`, which
/// the plugin calls.
fn test_msg_text(version: &str) -> String {
    format!(
        "package test:msg@{version};

interface types {{
  record message {{ subject: string, body: list<u8> }}
}}

interface consumer {{
  use types.{{message}};
  publish: func(m: message) -> result<_, string>;
}}

interface handler {{
  use types.{{message}};
  handle-message: func(m: message) -> result<_, string>;
}}
"
    )
}

/// A package components export to each other, with a types-only interface.
fn greet_text(version: &str) -> String {
    format!(
        "package example:greet@{version};

interface defs {{
  record person {{ name: string }}
}}

interface api {{
  use defs.{{person}};
  greet: func(p: person) -> string;
}}
"
    )
}

/// A sibling package whose second interface uses the first one's resource.
fn res_text(version: &str) -> String {
    format!(
        "package example:res@{version};

interface handles {{
  resource handle {{
    name: func() -> string;
  }}
  make: func() -> handle;
}}

interface ops {{
  use handles.{{handle}};
  poke: func(h: borrow<handle>);
}}
"
    )
}

/// A sibling package whose interface uses a plugin package's resource.
fn cache_text(version: &str) -> String {
    format!(
        "package example:cache@{version};

interface api {{
  use test:kv/store@0.2.0.{{bucket}};
  describe: func(b: borrow<bucket>) -> string;
}}
"
    )
}

fn calc_text(version: &str) -> String {
    format!(
        "package example:calc@{version};

interface ops {{
  add: func(a: u32, b: u32) -> u32;
}}
"
    )
}

// ---------------------------------------------------------------------------------------------
// The catalog the generator draws from.

const P2_OK: &[&str] = &["0.2.0", "0.2.3", "0.2.9", "0.2.12"];
/// Pre-releases match only exactly; a 0.1 track matches nothing the host has.
const P2_BAD: &[&str] = &["0.2.0-rc-2023-12-05", "0.1.0"];
const P3_OK: &[&str] = &["0.3.0", "0.3.1"];
const P3_BAD: &[&str] = &["0.3.0-rc-2025-09-16"];

const P2_IMPORTS: &[(&str, &str)] = &[
    ("clocks", "monotonic-clock"),
    ("clocks", "wall-clock"),
    ("random", "random"),
    ("random", "insecure-seed"),
    ("cli", "stdout"),
    ("cli", "environment"),
    ("cli", "exit"),
    ("filesystem", "preopens"),
    ("sockets", "tcp"),
    ("sockets", "instance-network"),
    ("io", "streams"),
    ("io", "error"),
];
const P3_IMPORTS: &[(&str, &str)] = &[
    ("clocks", "monotonic-clock"),
    ("clocks", "system-clock"),
    ("clocks", "types"),
    ("random", "random"),
    ("cli", "stdout"),
    ("cli", "types"),
    ("cli", "environment"),
    ("filesystem", "preopens"),
    ("sockets", "types"),
    ("sockets", "ip-name-lookup"),
];

/// A plugin package: interfaces (name, types-only), versions components may import, and the
/// versions a host's plugin may bind.
struct PluginPkg {
    ns: &'static str,
    name: &'static str,
    interfaces: &'static [(&'static str, bool)],
    import_versions: &'static [&'static str],
    binding_versions: &'static [&'static str],
    /// Advertised unversioned (wasmCloud 2.7 ships keyvalue and logging so).
    unversioned: bool,
    plugin_id: &'static str,
    text: fn(&str) -> String,
    /// Interfaces the plugin calls on components (components export them).
    called: &'static [&'static str],
}

const PLUGIN_PKGS: &[PluginPkg] = &[
    PluginPkg {
        ns: "test",
        name: "kv",
        interfaces: &[("store", false), ("atomics", false), ("types", true)],
        import_versions: &[
            "0.2.0",
            "0.2.1",
            "0.2.0-draft",
            "0.2.0-draft2",
            "2.0.0",
            "2.1.0",
        ],
        binding_versions: &["0.2.0", "0.2.1", "0.2.0-draft", "2.0.0", "2.1.0"],
        unversioned: false,
        plugin_id: "test-kv",
        text: test_kv_text,
        called: &[],
    },
    PluginPkg {
        ns: "test",
        name: "db",
        interfaces: &[("query", false), ("admin", false)],
        import_versions: &["0.1.0", "0.1.1", "1.0.0", "1.2.0", "0.1.0-rc.1"],
        binding_versions: &["0.1.0", "0.1.1", "1.0.0", "1.2.0"],
        unversioned: false,
        plugin_id: "test-db",
        text: test_db_text,
        called: &[],
    },
    PluginPkg {
        ns: "wasi",
        name: "keyvalue",
        interfaces: &[("store", false), ("atomics", false), ("batch", false)],
        import_versions: &["0.2.0-draft", "0.2.0-draft2"],
        binding_versions: &["0.2.0-draft"],
        unversioned: true,
        plugin_id: "wasi-keyvalue",
        text: keyvalue_text,
        called: &[],
    },
    PluginPkg {
        ns: "wasi",
        name: "logging",
        interfaces: &[("logging", false)],
        import_versions: &["0.1.0-draft", "0.1.0-draft2"],
        binding_versions: &["0.1.0-draft"],
        unversioned: true,
        plugin_id: "wasi-logging",
        text: logging_text,
        called: &[],
    },
    PluginPkg {
        ns: "test",
        name: "msg",
        interfaces: &[("consumer", false), ("types", true)],
        import_versions: &["0.2.0", "0.3.0"],
        binding_versions: &["0.2.0", "0.3.0"],
        unversioned: false,
        plugin_id: "test-msg",
        text: test_msg_text,
        called: &["handler"],
    },
];

const GREET_VERSIONS: &[&str] = &["0.2.0", "0.2.1", "1.0.0", "1.1.0"];
const CALC_VERSIONS: &[&str] = &["0.1.0", "0.1.1"];

/// Every package of the catalog, parsed once; components are built from clones of it.
fn catalog() -> &'static Resolve {
    static CATALOG: OnceLock<Resolve> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut r = Resolve::default();
        let mut push = |name: String, text: String| {
            r.push_str(&name, &text)
                .unwrap_or_else(|e| panic!("catalog WIT {name}: {e:#}"));
        };
        for v in P2_OK.iter().chain(P2_BAD) {
            for f in P2_FILES {
                push(format!("p2-{f}-{v}.wit"), p2_text(f, v));
            }
        }
        for v in P3_OK.iter().chain(P3_BAD) {
            for f in P3_FILES {
                push(format!("p3-{f}-{v}.wit"), p3_text(f, v));
            }
        }
        for p in PLUGIN_PKGS {
            let versions: BTreeSet<&str> = p
                .import_versions
                .iter()
                .chain(p.binding_versions)
                .copied()
                .collect();
            for v in versions {
                push(format!("{}-{}-{v}.wit", p.ns, p.name), (p.text)(v));
            }
        }
        for v in GREET_VERSIONS {
            push(format!("greet-{v}.wit"), greet_text(v));
        }
        for v in CALC_VERSIONS {
            push(format!("calc-{v}.wit"), calc_text(v));
        }
        push("res.wit".into(), res_text("0.1.0"));
        push("cache.wit".into(), cache_text("0.1.0"));
        r
    })
}

/// A real component binary whose world is the one world of `world_text`, resolved against
/// `base` (wit-component: dummy core module, embedded metadata, component encoding).
fn build_component(base: &Resolve, world_text: &str) -> anyhow::Result<Vec<u8>> {
    let mut resolve = base.clone();
    let pkg = resolve.push_str("world.wit", world_text)?;
    let world = resolve.select_world(&[pkg], None)?;
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)?;
    ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
}

fn oracle() -> &'static Oracle {
    static ORACLE: OnceLock<Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| Oracle::new().expect("oracle engine"))
}

// ---------------------------------------------------------------------------------------------
// Cases.

#[derive(Clone, Debug)]
struct CaseComponent {
    name: String,
    imports: BTreeSet<String>,
    exports: BTreeSet<String>,
    bytes: Vec<u8>,
}

impl CaseComponent {
    fn world_text(&self) -> String {
        let mut s = format!("package case:{n};\n\nworld {n} {{\n", n = self.name);
        for i in &self.imports {
            let _ = writeln!(s, "  import {i};");
        }
        for e in &self.exports {
            let _ = writeln!(s, "  export {e};");
        }
        s.push_str("}\n");
        s
    }
}

#[derive(Clone, Debug)]
struct CaseEntry {
    namespace: String,
    package: String,
    interfaces: Vec<String>,
    version: Option<String>,
    name: Option<String>,
    config: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
struct Case {
    id: String,
    components: Vec<CaseComponent>,
    entries: Vec<CaseEntry>,
    plugins: Vec<Plugin>,
    /// What the generator put in (for grouping disagreements).
    tags: BTreeSet<&'static str>,
}

fn wi(ns: &str, pkg: &str, version: Option<&str>, interfaces: &[&str]) -> WitInterface {
    WitInterface {
        namespace: ns.into(),
        package: pkg.into(),
        version: version.map(Into::into),
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
    }
}

/// Generates one case (worlds, entries, plugins), then builds its components.
fn generate(rng: &mut Rng, id: String) -> Case {
    let mut tags = BTreeSet::new();
    // Half the cases are coherent (what a careful user writes: every fault below is rare), so
    // that linking and failing workloads are both well represented.
    let coherent = rng.chance(50);
    if coherent {
        tags.insert("coherent");
    }
    let fault = |rng: &mut Rng, percent: u64| {
        if coherent {
            rng.chance(percent / 8)
        } else {
            rng.chance(percent)
        }
    };
    let n = 1 + rng.below(4);
    let mut comps: Vec<CaseComponent> = (0..n)
        .map(|i| CaseComponent {
            name: format!("c{i}"),
            imports: BTreeSet::new(),
            exports: BTreeSet::new(),
            bytes: Vec::new(),
        })
        .collect();
    let mut http_exported = None::<&'static str>;
    // Plugin packages used: (pkg index) -> versions imported, interfaces imported.
    let mut used: BTreeMap<usize, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();

    for c in comps.iter_mut() {
        // WASI P2 / P3.
        let flavor = rng.below(100);
        let p2 = !(45..85).contains(&flavor);
        let p3 = (45..85).contains(&flavor) || flavor >= 92;
        if p2 {
            let v = if fault(rng, 12) {
                tags.insert("wasi-p2-bad-version");
                *rng.pick(P2_BAD)
            } else {
                *rng.pick(P2_OK)
            };
            for _ in 0..rng.below(4) {
                let (pkg, iface) = rng.pick(P2_IMPORTS);
                c.imports.insert(format!("wasi:{pkg}/{iface}@{v}"));
                tags.insert("wasi-p2");
            }
            if rng.chance(25) {
                tags.insert("http-p2");
                c.exports.insert(format!("wasi:http/incoming-handler@{v}"));
                http_exported.get_or_insert("incoming-handler");
                if rng.chance(50) {
                    c.imports.insert(format!("wasi:http/outgoing-handler@{v}"));
                }
            } else if rng.chance(8) {
                tags.insert("http-p2-types-only-user");
                c.imports.insert(format!("wasi:http/types@{v}"));
            }
        }
        if p3 {
            let v = if fault(rng, 10) {
                tags.insert("wasi-p3-bad-version");
                *rng.pick(P3_BAD)
            } else {
                *rng.pick(P3_OK)
            };
            for _ in 0..rng.below(4) {
                let (pkg, iface) = rng.pick(P3_IMPORTS);
                c.imports.insert(format!("wasi:{pkg}/{iface}@{v}"));
                tags.insert("wasi-p3");
                if matches!(*iface, "types") {
                    tags.insert("wasi-types-only");
                }
            }
            if rng.chance(25) {
                tags.insert("http-p3");
                c.exports.insert(format!("wasi:http/handler@{v}"));
                http_exported.get_or_insert("handler");
                if rng.chance(50) {
                    c.imports.insert(format!("wasi:http/client@{v}"));
                }
                if fault(rng, 4) {
                    // A middleware: imports the handler it also exports.
                    tags.insert("http-p3-middleware");
                    c.imports.insert(format!("wasi:http/handler@{v}"));
                }
            }
        }
        // Plugin packages.
        for _ in 0..rng.below(3) {
            let pi = rng.below(PLUGIN_PKGS.len());
            let p = &PLUGIN_PKGS[pi];
            let v = if coherent {
                *rng.pick(p.binding_versions)
            } else {
                *rng.pick(p.import_versions)
            };
            let ifaces: Vec<&str> =
                rng.subset(&p.interfaces.iter().map(|x| x.0).collect::<Vec<_>>());
            let u = used.entry(pi).or_default();
            u.0.insert(v.to_string());
            for i in &ifaces {
                c.imports.insert(format!("{}:{}/{i}@{v}", p.ns, p.name));
                u.1.insert(i.to_string());
                if p.interfaces.iter().any(|(n, t)| n == i && *t) {
                    tags.insert("plugin-types-only");
                }
            }
            if !p.called.is_empty() && rng.chance(40) {
                for called in p.called {
                    c.exports
                        .insert(format!("{}:{}/{called}@{v}", p.ns, p.name));
                    u.1.insert(called.to_string());
                }
                tags.insert("plugin-called-export");
            }
            tags.insert(if p.unversioned {
                "plugin-unversioned"
            } else {
                "plugin-versioned"
            });
            if v.contains('-') {
                tags.insert("plugin-pre-release");
            }
        }
        if rng.chance(5) {
            // Imports only a types-only interface of a package nobody provides.
            let v = *rng.pick(GREET_VERSIONS);
            c.imports.insert(format!("example:greet/defs@{v}"));
            tags.insert("sibling-types-only");
        }
    }

    // Siblings.
    if n >= 2 && rng.chance(55) {
        let e = rng.below(n);
        let mut i = rng.below(n);
        while i == e {
            i = rng.below(n);
        }
        let ve = *rng.pick(GREET_VERSIONS);
        let vi = if !fault(rng, 40) {
            ve
        } else {
            tags.insert("sibling-version-skew");
            *rng.pick(GREET_VERSIONS)
        };
        tags.insert("sibling");
        comps[e].exports.insert(format!("example:greet/api@{ve}"));
        comps[i].imports.insert(format!("example:greet/api@{vi}"));
        if n >= 3 && fault(rng, 15) {
            let mut a = rng.below(n);
            while a == e {
                a = rng.below(n);
            }
            tags.insert("sibling-ambiguous");
            comps[a].exports.insert(format!("example:greet/api@{ve}"));
        }
        if fault(rng, 15) {
            let vc = *rng.pick(CALC_VERSIONS);
            tags.insert("sibling-cycle");
            comps[i].exports.insert(format!("example:calc/ops@{vc}"));
            comps[e].imports.insert(format!("example:calc/ops@{vc}"));
        }
        if rng.chance(10) {
            tags.insert("sibling-wasi-http-import");
            // A component calls another's HTTP handler.
            let name = if rng.chance(50) {
                format!("wasi:http/handler@{}", rng.pick(P3_OK))
            } else {
                format!("wasi:http/incoming-handler@{}", rng.pick(P2_OK))
            };
            comps[e].exports.insert(name.clone());
            comps[i].imports.insert(name);
        }
        if rng.chance(15) {
            if rng.chance(50) {
                // Resources owned by a sibling-linked interface: the shims agree.
                tags.insert("sibling-resource");
                comps[e].exports.insert("example:res/handles@0.1.0".into());
                comps[e].exports.insert("example:res/ops@0.1.0".into());
                comps[i].imports.insert("example:res/ops@0.1.0".into());
            } else {
                // A sibling interface using a plugin's resource.
                tags.insert("sibling-plugin-resource");
                comps[e].exports.insert("example:cache/api@0.1.0".into());
                comps[i].imports.insert("example:cache/api@0.1.0".into());
                let kv = PLUGIN_PKGS
                    .iter()
                    .position(|p| p.ns == "test" && p.name == "kv")
                    .expect("test:kv");
                let u = used.entry(kv).or_default();
                u.0.insert("0.2.0".into());
                u.1.insert("store".into());
                u.1.insert("types".into());
            }
        }
    }
    if n == 1 && fault(rng, 4) {
        tags.insert("self-import-export");
        comps[0].exports.insert("example:calc/ops@0.1.0".into());
        comps[0].imports.insert("example:calc/ops@0.1.0".into());
    }

    // Entries.
    let mut entries = Vec::new();
    for (pi, (versions, imported)) in &used {
        let p = &PLUGIN_PKGS[*pi];
        if fault(rng, 15) {
            tags.insert("entry-missing");
            continue;
        }
        let all: Vec<String> = p
            .interfaces
            .iter()
            .map(|x| x.0)
            .chain(p.called.iter().copied())
            .map(str::to_string)
            .collect();
        let imported: Vec<String> = imported.iter().cloned().collect();
        let interfaces = match rng.below(if coherent { 7 } else { 10 }) {
            0..=4 => imported.clone(),
            5..=6 => {
                tags.insert("entry-all-interfaces");
                all.clone()
            }
            7..=8 => {
                tags.insert("entry-subset");
                rng.subset(&imported)
            }
            _ => {
                tags.insert("entry-random-interfaces");
                rng.subset(&all)
            }
        };
        let version = match rng.below(if coherent { 8 } else { 10 }) {
            0..=4 => None,
            5..=7 if coherent && versions.len() > 1 => None,
            5..=7 => {
                tags.insert("entry-versioned");
                Some(
                    rng.pick(&versions.iter().cloned().collect::<Vec<_>>())
                        .clone(),
                )
            }
            _ => {
                tags.insert("entry-other-version");
                let all_v: Vec<&str> = p
                    .import_versions
                    .iter()
                    .chain(p.binding_versions)
                    .copied()
                    .collect();
                Some(rng.pick(&all_v).to_string())
            }
        };
        entries.push(CaseEntry {
            namespace: p.ns.into(),
            package: p.name.into(),
            interfaces,
            version,
            name: None,
            config: BTreeMap::new(),
        });
    }
    if rng.chance(8) {
        // An entry for a package no component uses.
        let p = rng.pick(PLUGIN_PKGS);
        if !entries
            .iter()
            .any(|e| e.namespace == p.ns && e.package == p.name)
        {
            tags.insert("entry-unused");
            entries.push(CaseEntry {
                namespace: p.ns.into(),
                package: p.name.into(),
                interfaces: vec![p.interfaces[0].0.into()],
                version: None,
                name: None,
                config: BTreeMap::new(),
            });
        }
    }
    if fault(rng, 6) {
        // An entry for a built-in WASI package a component imports.
        let builtin = comps
            .iter()
            .flat_map(|c| c.imports.iter())
            .find(|i| {
                i.starts_with("wasi:")
                    && !i.starts_with("wasi:http")
                    && !i.starts_with("wasi:keyvalue")
                    && !i.starts_with("wasi:logging")
            })
            .cloned();
        if let Some(b) = builtin {
            let (nspkg, rest) = b.split_once('/').expect("interface name");
            let iface = rest.split('@').next().unwrap_or(rest);
            let pkg = nspkg.trim_start_matches("wasi:");
            if !entries
                .iter()
                .any(|e| e.namespace == "wasi" && e.package == pkg)
            {
                tags.insert("entry-for-builtin");
                entries.push(CaseEntry {
                    namespace: "wasi".into(),
                    package: pkg.into(),
                    interfaces: vec![iface.into()],
                    version: None,
                    name: None,
                    config: BTreeMap::new(),
                });
            }
        }
    }
    if let Some(handler) = http_exported {
        if !fault(rng, 15) {
            let mut interfaces = vec![handler.to_string()];
            if fault(rng, 6) {
                tags.insert("entry-http-with-types");
                interfaces.push("types".into());
            }
            entries.push(CaseEntry {
                namespace: "wasi".into(),
                package: "http".into(),
                interfaces,
                version: None,
                name: None,
                config: BTreeMap::from([("host".to_string(), "app.example.com".to_string())]),
            });
        } else {
            tags.insert("http-export-without-entry");
        }
    }

    // The host's plugins.
    let mut plugins = Vec::new();
    for (pi, p) in PLUGIN_PKGS.iter().enumerate() {
        let wanted = used.get(&pi).map(|u| &u.0);
        if coherent && wanted.is_some() {
            // present
        } else if !rng.chance(80) {
            continue;
        }
        let advertised: Vec<&str> = p
            .interfaces
            .iter()
            .filter(|(_, types_only)| !types_only || rng.chance(50))
            .map(|x| x.0)
            .collect();
        let bindings: Vec<&str> = if p.unversioned {
            p.binding_versions.to_vec()
        } else if let (true, Some(w)) = (coherent, wanted) {
            p.binding_versions
                .iter()
                .copied()
                .filter(|v| w.contains(*v))
                .collect()
        } else if rng.chance(25) {
            tags.insert("plugin-two-bindings");
            let a = *rng.pick(p.binding_versions);
            let b = *rng.pick(p.binding_versions);
            if a == b {
                vec![a]
            } else {
                vec![a, b]
            }
        } else {
            vec![*rng.pick(p.binding_versions)]
        };
        let world_imports = if p.unversioned {
            vec![wi(p.ns, p.name, None, &advertised)]
        } else {
            bindings
                .iter()
                .map(|v| wi(p.ns, p.name, Some(v), &advertised))
                .collect()
        };
        let world_exports = if p.called.is_empty() {
            vec![]
        } else {
            bindings
                .iter()
                .map(|v| wi(p.ns, p.name, Some(v), p.called))
                .collect()
        };
        plugins.push(Plugin {
            id: p.plugin_id.into(),
            world_imports,
            world_exports,
            bindings_wit: bindings.iter().map(|v| (p.text)(v)).collect(),
            supports_named_instances: false,
        });
    }

    let mut case = Case {
        id,
        components: comps,
        entries,
        plugins,
        tags,
    };
    let base = catalog();
    for c in case.components.iter_mut() {
        c.imports = drop_semver_duplicates(&c.imports);
        c.exports = drop_semver_duplicates(&c.exports);
        let text = c.world_text();
        c.bytes = build_component(base, &text)
            .unwrap_or_else(|e| panic!("case {}: component {}: {e:#}\n{text}", case.id, c.name));
    }
    case
}

/// wasmtime's semver track of a version (`wasmtime_environ::component::names`
/// `alternate_lookup_key`): `M` for major >= 1, `0.m` for minor >= 1, none (exact only) for
/// `0.0.z` and pre-releases.
fn semver_track(version: &str) -> Option<String> {
    let v = semver::Version::parse(version).ok()?;
    if !v.pre.is_empty() {
        None
    } else if v.major >= 1 {
        Some(v.major.to_string())
    } else if v.minor >= 1 {
        Some(format!("0.{}", v.minor))
    } else {
        None
    }
}

/// Keeps one name per interface and semver track: a component cannot import (or export) two
/// versions of an interface that the canonical ABI names the same (wit-component's core module
/// names use the track, e.g. `wasi:http/incoming-handler@0.2`).
fn drop_semver_duplicates(names: &BTreeSet<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .filter(|n| {
            let (base, version) = n.split_once('@').unwrap_or((n, ""));
            match semver_track(version) {
                Some(track) => seen.insert(format!("{base}@{track}")),
                None => true,
            }
        })
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Judging.

fn oracle_entries(entries: &[CaseEntry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|e| Entry {
            namespace: e.namespace.clone(),
            package: e.package.clone(),
            interfaces: e.interfaces.clone(),
            version: e.version.clone(),
            name: e.name.clone(),
        })
        .collect()
}

fn judge_oracle(case: &Case) -> Verdict {
    let components: Vec<(String, Vec<u8>)> = case
        .components
        .iter()
        .map(|c| (c.name.clone(), c.bytes.clone()))
        .collect();
    oracle().judge(&components, &oracle_entries(&case.entries), &case.plugins)
}

fn entry_json(e: &CaseEntry) -> Value {
    let mut v = json!({
        "namespace": e.namespace,
        "package": e.package,
        "interfaces": e.interfaces,
    });
    if let Some(ver) = &e.version {
        v["version"] = json!(ver);
    }
    if let Some(n) = &e.name {
        v["name"] = json!(n);
    }
    if !e.config.is_empty() {
        v["config"] = json!(e.config);
    }
    v
}

fn workload_spec_json(case: &Case) -> Value {
    let components: Vec<Value> = case
        .components
        .iter()
        .map(|c| json!({"name": c.name, "image": format!("registry.example.com/fidelity/{}:1.0.0", c.name)}))
        .collect();
    let mut spec = json!({
        "hostSelector": {"hostgroup": "default"},
        "components": components,
    });
    if !case.entries.is_empty() {
        spec["hostInterfaces"] = Value::Array(case.entries.iter().map(entry_json).collect());
    }
    spec
}

fn host_json(plugins: &[Plugin]) -> Value {
    let conv = |w: &WitInterface| {
        let mut v = json!({
            "namespace": w.namespace,
            "package": w.package,
            "interfaces": w.interfaces,
        });
        if let Some(ver) = &w.version {
            v["version"] = json!(ver);
        }
        v
    };
    let imports: Vec<Value> = plugins
        .iter()
        .flat_map(|p| p.world_imports.iter().map(conv))
        .collect();
    let exports: Vec<Value> = plugins
        .iter()
        .flat_map(|p| p.world_exports.iter().map(conv))
        .collect();
    json!({
        "apiVersion": "wasmgate.dev/v1alpha1",
        "kind": "Host",
        "metadata": {"name": "host-a", "labels": {"hostgroup": "default"}},
        "hostId": "NHOSTAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "hostname": "10.0.0.1",
        "httpPort": 8080,
        "status": {
            "version": "2.7.0",
            "lastSeen": "2026-12-01T00:00:00Z",
            "conditions": [
                {"type": "Reporting", "status": "True"},
                {"type": "Ready", "status": "True"}
            ],
            "imports": imports,
            "exports": exports,
        }
    })
}

struct WasmgateVerdict {
    report: Report,
    /// Whether the defaulted spec (mutating webhook) still resolves where the original does.
    defaulted_report: Option<Report>,
    defaulted_entries: Option<Vec<CaseEntry>>,
}

fn judge_wasmgate(case: &Case) -> WasmgateVerdict {
    let spec: wasmgate::crd::WorkloadSpec =
        serde_json::from_value(workload_spec_json(case)).expect("workload spec");
    let host: wasmgate::crd::Host = serde_json::from_value(host_json(&case.plugins)).expect("host");
    let hosts = Hosts::new(vec![host]);
    let mut worlds = BTreeMap::new();
    for c in &case.components {
        let w = wasmgate::wit::decode_component(&c.bytes)
            .unwrap_or_else(|e| panic!("wasmgate decodes {}: {e}", c.name));
        worlds.insert(c.name.clone(), WorldState::Known(w.into()));
    }
    let policy = Policy::default();
    let input = ResolveInput {
        namespace: "default",
        spec: &spec,
        worlds: &worlds,
        hosts: &hosts,
        policy: &policy,
        deployment: None,
    };
    let report = resolve(&input);
    let defaulted = apply_defaults(&spec, &worlds, &policy);
    let (defaulted_report, defaulted_entries) = if defaulted.spec != spec {
        let input = ResolveInput {
            spec: &defaulted.spec,
            ..input
        };
        let entries = defaulted
            .spec
            .host_interfaces
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|h| CaseEntry {
                namespace: h.namespace,
                package: h.package,
                interfaces: h.interfaces,
                version: h.version,
                name: h.name,
                config: h.config.unwrap_or_default(),
            })
            .collect();
        (Some(resolve(&input)), Some(entries))
    } else {
        (None, None)
    };
    WasmgateVerdict {
        report,
        defaulted_report,
        defaulted_entries,
    }
}

fn verdict_label(v: &Verdict) -> String {
    match v {
        Verdict::Links => "links".into(),
        Verdict::Fails { stage, .. } => format!("fails at {stage}"),
    }
}

fn report_label(r: &Report) -> String {
    match r.violations.first() {
        None => "admits".into(),
        Some(f) => format!("denies ({})", f.code.as_str()),
    }
}

fn describe(case: &Case, oracle: &Verdict, wg: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "case {} tags {:?}", case.id, case.tags);
    for c in &case.components {
        let _ = writeln!(s, "--- component {}:\n{}", c.name, c.world_text());
    }
    let _ = writeln!(s, "--- hostInterfaces:");
    for e in &case.entries {
        let _ = writeln!(s, "  {}", entry_json(e));
    }
    let _ = writeln!(s, "--- host plugins (advertised world; binding versions):");
    for p in &case.plugins {
        let fmt = |w: &WitInterface| {
            format!(
                "{}:{}/{}@{}",
                w.namespace,
                w.package,
                w.interfaces.join(","),
                w.version.as_deref().unwrap_or("(unversioned)")
            )
        };
        let mut adv: Vec<String> = p.world_imports.iter().map(fmt).collect();
        adv.extend(p.world_exports.iter().map(|w| format!("calls {}", fmt(w))));
        let bind: Vec<String> = p
            .bindings_wit
            .iter()
            .filter_map(|t| {
                t.lines()
                    .find(|l| l.starts_with("package "))
                    .map(str::to_string)
            })
            .collect();
        let _ = writeln!(
            s,
            "  {}: {} ; binds {}",
            p.id,
            adv.join(" "),
            bind.join(" ")
        );
    }
    let _ = writeln!(s, "--- oracle: {oracle:?}");
    let _ = writeln!(
        s,
        "--- wasmgate: {} {}",
        report_label(wg),
        wg.denial_message()
    );
    s
}

// ---------------------------------------------------------------------------------------------
// The differential test.

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_seed() -> u64 {
    std::env::var("WASMGATE_FIDELITY_SEED")
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(DEFAULT_SEED)
}

fn report_only() -> bool {
    matches!(
        std::env::var("WASMGATE_FIDELITY_REPORT_ONLY").as_deref(),
        Ok("1") | Ok("true")
    )
}

#[test]
fn differential() {
    let cases = env_usize("WASMGATE_FIDELITY_CASES", DEFAULT_CASES);
    let seed = env_seed();
    let show = env_usize("WASMGATE_FIDELITY_SHOW", 5);
    let started = Instant::now();
    let _ = catalog();
    let _ = oracle();
    let setup = started.elapsed();

    let mut rng = Rng::new(seed);
    let mut agree = 0usize;
    let mut agree_links = 0usize;
    let mut intended: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut categories: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_tag: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut defaults_worse: Vec<String> = Vec::new();
    let mut oracle_time = Duration::ZERO;
    let mut build_time = Duration::ZERO;
    let mut wasmgate_time = Duration::ZERO;
    let mut dump = String::new();
    let mut shown = 0usize;
    let mut stages: BTreeMap<String, usize> = BTreeMap::new();

    for n in 0..cases {
        let t = Instant::now();
        let case = generate(&mut rng, format!("{seed:#x}/{n}"));
        build_time += t.elapsed();
        let t = Instant::now();
        let verdict = judge_oracle(&case);
        oracle_time += t.elapsed();
        let t = Instant::now();
        let wg = judge_wasmgate(&case);
        wasmgate_time += t.elapsed();

        // Defaults never create a failure: the defaulted spec links wherever the original does,
        // by the oracle (ground truth) and by wasmgate.
        if let (Some(dr), Some(de)) = (&wg.defaulted_report, &wg.defaulted_entries) {
            let mut dcase = case.clone();
            dcase.entries = de.clone();
            let dverdict = judge_oracle(&dcase);
            if verdict.links() && !dverdict.links() {
                defaults_worse.push(format!(
                    "{}\n--- defaulted entries: {}\n--- oracle on the defaulted spec: {dverdict:?}",
                    describe(&case, &verdict, &wg.report),
                    de.iter()
                        .map(|e| entry_json(e).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else if wg.report.allowed() && !dr.allowed() {
                defaults_worse.push(format!(
                    "{}\n--- wasmgate on the defaulted spec denies: {}",
                    describe(&case, &verdict, &wg.report),
                    dr.denial_message()
                ));
            }
        }

        *stages.entry(verdict_label(&verdict)).or_default() += 1;
        let same = verdict.links() == wg.report.allowed();
        for tag in &case.tags {
            let e = by_tag.entry(tag).or_default();
            e.0 += 1;
            if !same {
                e.1 += 1;
            }
        }
        if same {
            agree += 1;
            if verdict.links() {
                agree_links += 1;
            }
            continue;
        }
        if let Some(i) = INTENDED_DIFFERENCES
            .iter()
            .find(|i| (i.applies)(&case, &verdict, &wg.report))
        {
            *intended.entry(i.name).or_default() += 1;
            continue;
        }
        let category = format!(
            "oracle {} / wasmgate {}",
            verdict_label(&verdict),
            report_label(&wg.report)
        );
        let text = describe(&case, &verdict, &wg.report);
        if shown < show {
            eprintln!("=== disagreement ({category})\n{text}");
            shown += 1;
        }
        dump.push_str(&format!("=== {category}\n{text}\n"));
        categories
            .entry(category)
            .or_default()
            .push(case.id.clone());
    }

    let total = started.elapsed();
    let disagree: usize = categories.values().map(Vec::len).sum();
    let intended_n: usize = intended.values().sum();
    println!(
        "fidelity: seed {seed:#x}, {cases} cases: {agree} agree ({agree_links} link, {} fail), \
         {intended_n} intended differences, {disagree} disagree, {} defaults made worse",
        agree - agree_links,
        defaults_worse.len()
    );
    println!(
        "fidelity: time {:.1}s total (setup {:.1}s, build {:.1}s, oracle {:.1}s = {:.2} ms/case, \
         wasmgate {:.2} ms/case)",
        total.as_secs_f64(),
        setup.as_secs_f64(),
        build_time.as_secs_f64(),
        oracle_time.as_secs_f64(),
        oracle_time.as_secs_f64() * 1000.0 / cases.max(1) as f64,
        wasmgate_time.as_secs_f64() * 1000.0 / cases.max(1) as f64,
    );
    println!("fidelity: oracle verdicts {stages:?}");
    for (name, n) in &intended {
        let reason = INTENDED_DIFFERENCES
            .iter()
            .find(|i| i.name == *name)
            .map_or("", |i| i.reason);
        println!("fidelity: intended {name}: {n} ({reason})");
    }
    for (cat, ids) in &categories {
        let first: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
        println!(
            "fidelity: DISAGREE {cat}: {} (e.g. {})",
            ids.len(),
            first.join(" ")
        );
    }
    for (tag, (n, d)) in &by_tag {
        println!("fidelity: tag {tag}: {n} cases, {d} disagree");
    }
    for d in defaults_worse.iter().take(show) {
        eprintln!("=== default made it worse\n{d}");
    }
    if let Ok(path) = std::env::var("WASMGATE_FIDELITY_DUMP") {
        for d in &defaults_worse {
            dump.push_str(&format!("=== default made it worse\n{d}\n"));
        }
        std::fs::write(&path, dump).expect("write dump");
        println!("fidelity: disagreements written to {path}");
    }
    if !report_only() {
        assert!(
            disagree == 0 && defaults_worse.is_empty(),
            "{disagree} unexpected disagreements and {} defaults that made a linking workload \
             fail (rerun with WASMGATE_FIDELITY_SEED={seed:#x} WASMGATE_FIDELITY_SHOW=20)",
            defaults_worse.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The five rows.

struct Row {
    dir: PathBuf,
    case: Case,
    upstream_links: bool,
    stage: Option<String>,
}

fn load_row(name: &str) -> Row {
    let dir = if Path::new(name).is_absolute() {
        PathBuf::from(name)
    } else {
        fixtures().join("rows").join(name)
    };
    let spec: Value = serde_json::from_str(&read(&dir.join("row.json"))).expect("row.json");
    let mut base = Resolve::default();
    for w in spec["wasi"].as_array().into_iter().flatten() {
        let (files, version) = match w.as_str() {
            Some("p2") => (P2_FILES, P2_SHIPPED),
            Some("p3") => (P3_FILES, P3_SHIPPED),
            other => panic!("unknown wasi set {other:?}"),
        };
        for f in files {
            let text = if version == P2_SHIPPED {
                p2_text(f, version)
            } else {
                p3_text(f, version)
            };
            base.push_str(format!("{f}.wit"), &text).expect("WASI WIT");
        }
    }
    for d in spec["deps"].as_array().into_iter().flatten() {
        let path = dir.join(d.as_str().expect("dep path"));
        base.push_str(&path, &read(&path)).expect("dep WIT");
    }
    let components = spec["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            let name = c["name"].as_str().expect("name").to_string();
            let text = read(&dir.join(c["world"].as_str().expect("world")));
            let bytes =
                build_component(&base, &text).unwrap_or_else(|e| panic!("row {name}: {e:#}"));
            let world = wasmgate::wit::parse_world_text(&text).expect("annotation parses");
            let _ = world;
            CaseComponent {
                name,
                imports: BTreeSet::new(),
                exports: BTreeSet::new(),
                bytes,
            }
        })
        .collect();
    let entries = spec["hostInterfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| CaseEntry {
            namespace: h["namespace"].as_str().expect("ns").into(),
            package: h["package"].as_str().expect("pkg").into(),
            interfaces: h["interfaces"]
                .as_array()
                .expect("interfaces")
                .iter()
                .map(|i| i.as_str().expect("interface").to_string())
                .collect(),
            version: h["version"].as_str().map(Into::into),
            name: h["name"].as_str().map(Into::into),
            config: h["config"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let conv = |v: &Value| WitInterface {
        namespace: v["namespace"].as_str().expect("ns").into(),
        package: v["package"].as_str().expect("pkg").into(),
        version: v["version"].as_str().map(Into::into),
        interfaces: v["interfaces"]
            .as_array()
            .expect("interfaces")
            .iter()
            .map(|i| i.as_str().expect("interface").to_string())
            .collect(),
    };
    let plugins = spec["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Plugin {
            id: p["id"].as_str().expect("id").into(),
            world_imports: p["imports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(conv)
                .collect(),
            world_exports: p["exports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(conv)
                .collect(),
            bindings_wit: p["bindings"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| read(&dir.join(b.as_str().expect("binding path"))))
                .collect(),
            supports_named_instances: false,
        })
        .collect();
    Row {
        case: Case {
            id: name.to_string(),
            components,
            entries,
            plugins,
            tags: BTreeSet::new(),
        },
        upstream_links: spec["upstream"] == "links",
        stage: spec["stage"].as_str().map(Into::into),
        dir,
    }
}

fn check_row(name: &str) {
    let row = load_row(name);
    let verdict = judge_oracle(&row.case);
    println!("row {name} ({}): oracle {verdict:?}", row.dir.display());
    assert_eq!(
        verdict.links(),
        row.upstream_links,
        "row {name}: the oracle's verdict {verdict:?} is not upstream's"
    );
    if let (Some(stage), Verdict::Fails { stage: s, .. }) = (&row.stage, &verdict) {
        assert_eq!(&s.to_string(), stage, "row {name}: failing stage");
    }
    let wg = judge_wasmgate(&row.case);
    println!(
        "row {name}: wasmgate {} {}",
        report_label(&wg.report),
        wg.report.denial_message()
    );
    let mut problems = Vec::new();
    if wg.report.allowed() != row.upstream_links {
        problems.push(format!(
            "wasmgate {} where upstream {}",
            report_label(&wg.report),
            if row.upstream_links { "links" } else { "fails" }
        ));
    }
    if let (Some(dr), Some(de)) = (&wg.defaulted_report, &wg.defaulted_entries) {
        let mut dcase = row.case.clone();
        dcase.entries = de.clone();
        let dverdict = judge_oracle(&dcase);
        println!(
            "row {name}: defaulted spec: wasmgate {}, oracle {dverdict:?}",
            report_label(dr)
        );
        if row.upstream_links && !dverdict.links() {
            problems.push(format!(
                "the mutating webhook's defaults make it fail on the host: {dverdict:?}"
            ));
        }
        if wg.report.allowed() && !dr.allowed() {
            problems.push(format!(
                "wasmgate denies its own defaulted spec: {}",
                dr.denial_message()
            ));
        }
    }
    if !problems.is_empty() && !report_only() {
        panic!("row {name}: {}", problems.join("; "));
    }
}

#[test]
fn row_a_p3_wasi_and_http_handler_link() {
    check_row("a-p3-http-service");
}

#[test]
fn row_b_p3_http_client_links() {
    check_row("b-p3-http-client");
}

#[test]
fn row_c_secrets_unversioned_entry_links() {
    check_row("c-secrets-unversioned-entry");
}

#[test]
fn row_d_keyvalue_draft2_fails_in_linker() {
    check_row("d-keyvalue-draft2");
}

#[test]
fn row_e_sibling_version_skew_fails() {
    check_row("e-sibling-version-skew");
}

/// Runs a row-format directory named by `WASMGATE_FIDELITY_ROW` (an absolute path; same layout
/// as `tests/fixtures/fidelity/rows/*`), for reproducing one disagreement. Does nothing when
/// the variable is unset.
#[test]
fn row_from_env() {
    if let Ok(dir) = std::env::var("WASMGATE_FIDELITY_ROW") {
        check_row(&dir);
    }
}
