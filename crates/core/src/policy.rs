//! Resolution policy: the host's built-in interface set and the knobs operators set.

use serde::{Deserialize, Serialize};

use crate::wit::InterfaceRef;

/// What to do when something cannot be checked (a component world that cannot be learned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Admit, with a warning.
    #[default]
    Warn,
    /// Reject.
    Deny,
}

/// Inputs to the resolver that are configuration, not cluster state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Interfaces every host provides without a plugin. Heartbeats do not list them.
    pub builtins: Vec<InterfaceRef>,
    /// The operator's `-allow-shared-hosts` (default true).
    pub allow_shared_hosts: bool,
    /// Plugin packages that work without configuration: the mutating webhook declares them
    /// when a component imports them and no entry exists.
    pub auto_declare: Vec<(String, String)>,
    /// A component whose world cannot be learned.
    pub unknown_world: Enforcement,
    /// Mutating webhook: rewrite images to the digest their world was read from.
    pub pin_digests: bool,
    /// Deny, rather than warn, when only some of the eligible hosts can run a workload.
    pub require_all_eligible: bool,
    /// The versions the bindings of plugins that advertise an unversioned world were generated
    /// from: what they put into the linker, by `(namespace, package)`.
    pub binding_versions: Vec<(String, String, semver::Version)>,
}

/// Plugins of wasmCloud 2.7 that advertise an unversioned world, and the WIT version their
/// bindings define in the linker (wash-runtime 2.7.0 `src/plugin/wasi_keyvalue`,
/// `src/plugin/wasi_logging`, generated from `wit/deps/wasi-keyvalue-0.2.0-draft` and
/// `wasi-logging-0.1.0-draft`). A component importing `wasi:keyvalue/store@0.2.0-draft2` does
/// not link against them: pre-releases match only exactly.
pub fn default_binding_versions() -> Vec<(String, String, semver::Version)> {
    [
        ("wasi", "keyvalue", semver::Version::new(0, 2, 0)),
        ("wasi", "logging", semver::Version::new(0, 1, 0)),
    ]
    .into_iter()
    .map(|(ns, pkg, mut v)| {
        v.pre = semver::Prerelease::new("draft").unwrap_or(semver::Prerelease::EMPTY);
        (ns.to_string(), pkg.to_string(), v)
    })
    .collect()
}

/// The WASI P2 version wasmtime-wasi 47.0.3 binds (its `src/p2/wit/deps/*.wit`).
pub const WASI_P2: &str = "0.2.12";
/// The WASI P3 version wasmtime-wasi 47.0.3 binds (its `src/p3/wit/deps/*.wit`).
pub const WASI_P3: &str = "0.3.0";

fn refs(namespace: &str, package: &str, version: &str, interfaces: &[&str]) -> Vec<InterfaceRef> {
    let version = semver::Version::parse(version).ok();
    interfaces
        .iter()
        .map(|i| InterfaceRef::new(namespace, package, i, version.clone()))
        .collect()
}

const CLI: &[&str] = &[
    "environment",
    "exit",
    "stderr",
    "stdin",
    "stdout",
    "terminal-input",
    "terminal-output",
    "terminal-stderr",
    "terminal-stdin",
    "terminal-stdout",
];

/// What a wasmCloud 2.7 host puts into every component's linker: wash-runtime's
/// `engine/mod.rs` `add_wasi_to_linker` calls wasmtime-wasi 47.0.3's P2 `add_to_linker_async`
/// and P3 `add_to_linker`, and, for a component that imports or exports any `wasi:http` name,
/// wasmtime-wasi-http's P2 `add_only_http_to_linker_async` and P3 `add_to_linker`. Names resolve
/// by wasmtime's linker rule (exact, then semver-compatible), so `@0.2.0` through `@0.2.x` all
/// find the 0.2.12 definitions. Nothing provides an *imported* `wasi:http/incoming-handler`
/// (P2) or `wasi:http/handler` (P3): only a sibling that exports it. The differential test
/// (`tests/fidelity.rs`) checks this list against the real linker.
pub fn default_builtins() -> Vec<InterfaceRef> {
    let mut out = Vec::new();
    // P2 (wasmtime-wasi `p2::add_to_linker_async`; wasi:io from wasmtime-wasi-io).
    out.extend(refs("wasi", "io", WASI_P2, &["error", "poll", "streams"]));
    out.extend(refs(
        "wasi",
        "clocks",
        WASI_P2,
        &["monotonic-clock", "wall-clock"],
    ));
    out.extend(refs(
        "wasi",
        "random",
        WASI_P2,
        &["insecure", "insecure-seed", "random"],
    ));
    out.extend(refs("wasi", "cli", WASI_P2, CLI));
    out.extend(refs("wasi", "filesystem", WASI_P2, &["preopens", "types"]));
    out.extend(refs(
        "wasi",
        "sockets",
        WASI_P2,
        &[
            "instance-network",
            "ip-name-lookup",
            "network",
            "tcp",
            "tcp-create-socket",
            "udp",
            "udp-create-socket",
        ],
    ));
    out.extend(refs(
        "wasi",
        "http",
        WASI_P2,
        &["outgoing-handler", "types"],
    ));
    // P3 (wasmtime-wasi `p3::add_to_linker`).
    out.extend(refs("wasi", "cli", WASI_P3, CLI));
    // Not defined by the linker, but it holds only an enum, so an import of it needs nothing;
    // listed for worlds from annotations, where types-only imports cannot be told apart.
    out.extend(refs("wasi", "cli", WASI_P3, &["types"]));
    out.extend(refs(
        "wasi",
        "clocks",
        WASI_P3,
        &["monotonic-clock", "system-clock", "types"],
    ));
    out.extend(refs(
        "wasi",
        "random",
        WASI_P3,
        &["insecure", "insecure-seed", "random"],
    ));
    out.extend(refs("wasi", "filesystem", WASI_P3, &["preopens", "types"]));
    out.extend(refs(
        "wasi",
        "sockets",
        WASI_P3,
        &["ip-name-lookup", "types"],
    ));
    out.extend(refs("wasi", "http", WASI_P3, &["client", "types"]));
    out
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            builtins: default_builtins(),
            allow_shared_hosts: true,
            auto_declare: [
                ("wasi", "config"),
                ("wasi", "logging"),
                ("wasi", "keyvalue"),
                ("wasmcloud", "messaging"),
                ("wasi", "otel"),
            ]
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .collect(),
            unknown_world: Enforcement::Warn,
            pin_digests: false,
            require_all_eligible: false,
            binding_versions: default_binding_versions(),
        }
    }
}

impl Policy {
    /// The binding version of a plugin that advertises `ns:pkg` unversioned, when known.
    pub fn binding_version(&self, namespace: &str, package: &str) -> Option<semver::Version> {
        self.binding_versions
            .iter()
            .find(|(n, p, _)| n == namespace && p == package)
            .map(|(_, _, v)| v.clone())
    }

    /// Whether an import of `ns:pkg` may be declared automatically.
    pub fn auto_declares(&self, namespace: &str, package: &str) -> bool {
        self.auto_declare
            .iter()
            .any(|(n, p)| n == namespace && p == package)
    }
}
