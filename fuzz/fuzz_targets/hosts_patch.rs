//! A PATCH of a Host through the `hosts` API, through its router over a live inventory of the
//! example hosts: merge patch, strategic merge patch (applied as a merge patch), JSON patch
//! (with its caps on operations and growth) and server-side apply (which creates a missing
//! host). The first three bytes choose the content type, the host (one of the five, or a
//! missing one) and the `Accept` header (its top bit: `dryRun=All`); the rest is the body.
//!
//! What a patch stores must be served back and accepted again: after a stored patch, the host
//! is read back and written back unchanged (`kubectl edit` without edits), which must succeed.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use wasmgate_fuzz::{api_router, example_hosts, live_inventory, send, Read, ACCEPTS};

const HOSTS: &str = "/apis/wasmgate.dev/v1alpha1/hosts";

const CONTENT_TYPES: [&str; 4] = [
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
];

fuzz_target!(|data: &[u8]| {
    let [ct, target, accept, body @ ..] = data else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()];
    let hosts = example_hosts();
    let name = match hosts.get(usize::from(*target) % (hosts.len() + 1)) {
        Some(h) => h.metadata.name.clone().expect("example hosts are named"),
        None => "fuzz-new-host".to_string(),
    };
    let dry = accept & 0x80 != 0;
    let accept = ACCEPTS[usize::from(accept & 0x7f) % ACCEPTS.len()];
    let uri = format!("{HOSTS}/{name}{}", if dry { "?dryRun=All" } else { "" });

    let router = api_router(live_inventory());
    let req = Request::builder()
        .method(Method::PATCH)
        .uri(uri)
        .header("content-type", content_type)
        .header("accept", accept)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let (status, _) = send(&router, req, Read::All);
    if !status.is_success() || dry {
        return;
    }

    // Read back, then written back unchanged: the API accepts what it serves.
    let get = Request::get(format!("{HOSTS}/{name}"))
        .body(Body::empty())
        .expect("a request");
    let (status, stored) = send(&router, get, Read::All);
    assert!(status.is_success(), "GET after a stored patch: {status}");
    let put = Request::put(format!("{HOSTS}/{name}"))
        .header("content-type", "application/json")
        .body(Body::from(stored.clone()))
        .expect("a request");
    let (status, answer) = send(&router, put, Read::All);
    assert!(
        status.is_success(),
        "PUT of the stored host {}: {status}: {}",
        String::from_utf8_lossy(&stored),
        String::from_utf8_lossy(&answer)
    );
});
