//! wasmgate: WIT-aware admission control and live host inventory for wasmCloud v2.
//!
//! Layers, each importing only those below it (`docs/architecture.md`, held by
//! `tests/layering.rs`):
//!
//! - the pure core, re-exported from `wasmgate-core`: [`wit`], [`resolve`], [`policy`],
//!   [`crd`], [`manifest`];
//! - where worlds and hosts come from: [`components`], [`inventory`];
//! - shared below the edges: [`engine`] (the evaluation every front end uses), [`store`] (the
//!   versioned, watchable store), [`platform`] (Kubernetes client, leader election, TLS and
//!   certificates, metrics registry, durations);
//! - the edges, which never import each other: [`admission`] (the webhook protocol),
//!   [`apiserver`] (the aggregated API), [`reconcile`], [`check`];
//! - on top: [`server`] (the TLS port's routes), [`sim`] (`sim-hosts`), [`cli`].

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
