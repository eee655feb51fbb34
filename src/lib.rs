//! wasmgate: WIT-aware admission control and live host inventory for wasmCloud v2.
//!
//! The layout follows the design: [`wit`] (world model), [`resolve`] (the pure engine),
//! [`components`] (where worlds come from), [`inventory`] (hosts), [`admission`] (the webhook),
//! [`server`] (TLS, routes, health) and [`crd`] (types).

#![forbid(unsafe_code)]

pub use wasmgate_core::{crd, manifest, policy, resolve, wit};

pub mod admission;
pub mod apiserver;
pub mod check;
pub mod cli;
pub mod components;
pub mod engine;
pub mod inventory;
pub mod reconcile;
pub mod server;
pub mod sim;
