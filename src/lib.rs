//! wasmgate: WIT-aware admission control and live host inventory for wasmCloud v2.
//!
//! The layout follows the design: [`wit`] (world model), [`resolve`] (the pure engine),
//! [`components`] (where worlds come from), [`inventory`] (hosts), [`admission`] (the webhook),
//! [`server`] (routes, health, metrics), [`apiserver`] (the `hosts` API), [`reconcile`],
//! [`check`] and [`crd`] (types). The edges (`admission`, `apiserver`, `reconcile`, `check`,
//! `server`) share [`platform`] (Kubernetes client, leader election, TLS and certificates)
//! and never import each other.

#![forbid(unsafe_code)]

pub use wasmgate_core::{crd, manifest, policy, resolve, wit};

pub mod admission;
pub mod apiserver;
pub mod check;
pub mod cli;
pub mod components;
pub mod engine;
pub mod inventory;
pub mod platform;
pub mod reconcile;
pub mod server;
pub mod sim;
pub mod store;
