//! Command-line interface: `wasmgate serve`, `wasmgate check`, `wasmgate crds`, `wasmgate sim-hosts`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::policy::Enforcement;

/// WIT-aware admission control and live host inventory for wasmCloud v2 on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "wasmgate", version, about, long_about = None)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WASMGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

pub use crate::platform::telemetry::LogFormat;

/// Subcommands.
// Parsed once per process; boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhooks (and health endpoints) over HTTPS.
    Serve(ServeArgs),
    /// Print the CRDs of the admitted wasmCloud kinds as YAML.
    Crds,
    /// Check manifests offline with the webhook's engine (for CI and GitOps pipelines).
    Check(crate::check::CheckArgs),
    /// Simulate wasmCloud hosts: publish their heartbeats to NATS (demos, tests, benchmarks).
    SimHosts(crate::sim::SimHostsArgs),
}

/// Options of `wasmgate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Development mode: loopback only, a self-signed certificate in certs/dev (generated on
    /// first start), and the example inventory.
    #[arg(long)]
    pub dev: bool,
    /// Address to listen on [default: 0.0.0.0:8443; 127.0.0.1:8443 with --dev].
    #[arg(long, env = "WASMGATE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serving certificate (PEM). Without it, a CA and certificate are generated in --cert-dir.
    #[arg(long, env = "WASMGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, env = "WASMGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where generated certificates are kept (ca.crt, tls.crt, tls.key) [default: certs/dev].
    #[arg(long, env = "WASMGATE_CERT_DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Extra subject alternative names for a generated certificate (repeatable).
    #[arg(
        long = "cert-san",
        value_name = "NAME",
        env = "WASMGATE_CERT_SAN",
        value_delimiter = ','
    )]
    pub cert_sans: Vec<String>,
    /// The Service name wasmgate runs behind (for generated certificate names).
    #[arg(long, default_value = "wasmgate", env = "WASMGATE_SERVICE_NAME")]
    pub service_name: String,
    /// The namespace wasmgate runs in.
    #[arg(long, default_value = "wasmgate-system", env = "WASMGATE_NAMESPACE")]
    pub service_namespace: String,
    /// Static inventory file of Host objects (List or multi-document YAML/JSON), reloaded on
    /// change [default with --dev: examples/inventory.yaml].
    #[arg(long, env = "WASMGATE_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// How often the inventory file is checked for changes, in seconds.
    #[arg(long, default_value_t = 2, env = "WASMGATE_INVENTORY_POLL_SECONDS")]
    pub inventory_poll_seconds: u64,
    /// CA bundle (PEM) that `/validate` and `/mutate` callers' client certificates must chain
    /// to (kube-apiserver presents one when its AdmissionConfiguration gives it a kubeconfig for
    /// the webhook); without it the webhooks ask for no certificate.
    #[arg(long, value_name = "FILE", env = "WASMGATE_WEBHOOK_CLIENT_CA")]
    pub webhook_client_ca: Option<PathBuf>,
    /// Map an image reference to a local component file: IMAGE=FILE.wasm (repeatable).
    #[arg(
        long = "component",
        value_name = "IMAGE=FILE",
        env = "WASMGATE_COMPONENT",
        value_delimiter = ','
    )]
    pub components: Vec<String>,
    /// What to do with a component whose world cannot be learned.
    #[arg(long, value_enum, default_value_t = Enforcement::Warn, env = "WASMGATE_UNKNOWN_WORLD")]
    pub unknown_world: Enforcement,
    /// Mirror the operator's -allow-shared-hosts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "WASMGATE_ALLOW_SHARED_HOSTS")]
    pub allow_shared_hosts: bool,
    /// Deny a workload that only some of its eligible hosts can run (the operator places it on
    /// a random eligible host); by default it is admitted with a warning naming how many can.
    #[arg(long, env = "WASMGATE_REQUIRE_ALL_ELIGIBLE")]
    pub require_all_eligible: bool,
    /// How many judged objects to remember (one entry per 64 KiB of an object's spec): a
    /// review of an object whose namespace, spec, component worlds and inventory snapshot
    /// were all judged before reuses that judgment (the second webhook of an apply, a template
    /// stamped out again, a re-sync); 0 judges every review from scratch.
    #[arg(long, default_value_t = crate::engine::DEFAULT_MEMO_ENTRIES, env = "WASMGATE_REVIEW_MEMO")]
    pub review_memo: u64,
    /// Component worlds from OCI registries.
    #[command(flatten)]
    pub registry: crate::components::oci::RegistryArgs,
    /// The `hosts` aggregated API.
    #[command(flatten)]
    pub api: crate::apiserver::ApiArgs,
    /// The live host inventory (NATS heartbeats, ageing).
    #[command(flatten)]
    pub live: crate::inventory::LiveArgs,
    /// Certificate modes, rotation and reloading.
    #[command(flatten)]
    pub tls: crate::platform::serving::TlsArgs,
    /// The listener's timeouts and connection cap (slow and idle clients).
    #[command(flatten)]
    pub listener: crate::platform::listener::ListenerArgs,
    /// Leader election among the replicas.
    #[command(flatten)]
    pub leader: crate::platform::leader::LeaderArgs,
    /// The reconciler (re-resolution, workloadresolutions, Events).
    #[command(flatten)]
    pub reconcile: crate::reconcile::ReconcileArgs,
    /// Trace export (OTLP).
    #[command(flatten)]
    pub telemetry: crate::platform::telemetry::TelemetryArgs,
}
