//! wasmgate's core: everything that decides a verdict, and nothing that talks to the world.
//!
//! - [`wit`]: the WIT world model (interface references, version matching, decoding a
//!   component's world from a binary or from WIT text);
//! - [`policy`]: what a host provides by itself (the built-in WASI set) and the defaults;
//! - [`resolve`]: the resolution engine, pure: workload + worlds + inventory in, report out;
//! - [`crd`]: the Kubernetes types (wasmCloud's kinds, wasmgate's Host and WorkloadResolution);
//! - [`manifest`]: reading Kubernetes-style YAML/JSON documents.
//!
//! This crate has no kube client, no HTTP server and no async runtime: the `wasmgate` crate
//! wires it to admission, the hosts API, the reconciler and `wasmgate check`.

#![forbid(unsafe_code)]

pub mod crd;
pub mod manifest;
pub mod policy;
pub mod resolve;
pub mod wit;
