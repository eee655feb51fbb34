//! wasmgate: WIT-aware admission control and live host inventory for wasmCloud v2.
//!
//! The layout follows the design: [`wit`] (world model), [`resolve`] (the pure engine),
//! [`components`] (where worlds come from), [`inventory`] (hosts), [`admission`] (the webhook),
//! [`server`] (TLS, routes, health) and [`crd`] (types).

pub mod admission;
pub mod apiserver;
pub mod check;
pub mod cli;
pub mod components;
pub mod crd;
pub mod inventory;
pub mod manifest;
pub mod policy;
pub mod reconcile;
pub mod resolve;
pub mod server;
pub mod sim;
pub mod store;
pub mod wit;
