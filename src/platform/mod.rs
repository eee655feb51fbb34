//! The shared platform layer: what every front end of `wasmgate serve` needs to run in a
//! cluster, below the edges (`admission`, `apiserver`, `reconcile`, `check`, `server`).
//!
//! An edge may use the core (`wit`, `resolve`, `policy`, `crd`, `inventory`, `components`) and
//! this layer, never another edge. Nothing here uses an edge or the core, so the core may use it
//! too (the inventory's flags take [`duration`]'s syntax).
//!
//! - [`duration`]: the one duration syntax of flags and request parameters;
//! - [`kube`]: the Kubernetes client builder (one client per process, or why there is none);
//! - [`leader`]: leader election on a Lease (only the leader writes to the cluster);
//! - [`metrics`]: the process's Prometheus registry, in which each part registers its own
//!   series;
//! - [`tls`]: rustls serving configuration from PEM, certificate issuing, the file reloader;
//! - [`certs`]: self-managed certificates (a CA and serving certificate in a Secret, rotated,
//!   with the caBundles written);
//! - [`serving`]: which certificate is served (`--cert-mode`), kept current while serving;
//! - [`listener`]: the TLS listener's timeouts and connection cap (slow and idle clients);
//! - [`telemetry`]: the log subscriber and trace export over OTLP (`--otlp-endpoint`).

pub mod certs;
pub mod duration;
pub mod kube;
pub mod leader;
pub mod listener;
pub mod metrics;
pub mod serving;
pub mod telemetry;
pub mod tls;
