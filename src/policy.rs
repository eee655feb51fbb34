//! Resolution policy: the host's built-in interface set and the knobs operators set.

use serde::{Deserialize, Serialize};

use crate::wit::InterfaceRef;

/// What to do when something cannot be checked (a component world that cannot be learned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
}

const P2: &str = "0.2.0";

fn refs(namespace: &str, package: &str, version: &str, interfaces: &[&str]) -> Vec<InterfaceRef> {
    let version = semver::Version::parse(version).ok();
    interfaces
        .iter()
        .map(|i| InterfaceRef::new(namespace, package, i, version.clone()))
        .collect()
}

/// The built-in WASI set of the wasmCloud v2 host (`Host::wit_world()`).
pub fn default_builtins() -> Vec<InterfaceRef> {
    let mut out = Vec::new();
    out.extend(refs("wasi", "io", P2, &["poll", "error", "streams"]));
    out.extend(refs(
        "wasi",
        "clocks",
        P2,
        &["monotonic-clock", "wall-clock"],
    ));
    out.extend(refs(
        "wasi",
        "random",
        P2,
        &["random", "insecure", "insecure-seed"],
    ));
    out.extend(refs(
        "wasi",
        "cli",
        P2,
        &[
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
        ],
    ));
    out.extend(refs("wasi", "filesystem", P2, &["preopens", "types"]));
    out.extend(refs(
        "wasi",
        "sockets",
        P2,
        &[
            "instance-network",
            "ip-name-lookup",
            "network",
            "tcp-create-socket",
            "tcp",
            "udp-create-socket",
            "udp",
        ],
    ));
    out.extend(refs(
        "wasi",
        "http",
        P2,
        &["types", "incoming-handler", "outgoing-handler"],
    ));
    out.extend(refs("wasi", "http", "0.3.0", &["types", "handler"]));
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
        }
    }
}

impl Policy {
    /// Whether an import of `ns:pkg` may be declared automatically.
    pub fn auto_declares(&self, namespace: &str, package: &str) -> bool {
        self.auto_declare
            .iter()
            .any(|(n, p)| n == namespace && p == package)
    }
}
