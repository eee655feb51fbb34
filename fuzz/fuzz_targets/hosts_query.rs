//! A query string of the `hosts` API (and of `workloadresolutions`, which reads it the same
//! way): the request-attribute derivation authorization uses (`Attributes::of`), the query
//! parsing (`parse_query`, repeated keys, flags, `resourceVersion`, `includeObject`), label and
//! field selectors, and then real list, get and watch requests through the API's router over
//! a live inventory of the example hosts. The input is also sent as a `continue` token
//! (base64url, as tokens are), which reaches the token decoding.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use wasmgate::apiserver::auth::Attributes;
use wasmgate::apiserver::params::{flag, include, parse_query, parse_rv, repeated_query_key};
use wasmgate::apiserver::selectors::{FieldSelector, LabelSelector};
use wasmgate_fuzz::{api_router, as_query, example_hosts, live_inventory, send, Read, ACCEPTS};

const API: &str = "/apis/wasmgate.dev/v1alpha1";

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let query = as_query(data);

    // What the authorization middleware derives, for every verb and path shape.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        for path in [
            format!("{API}/hosts"),
            format!("{API}/hosts/brave-otter-1234"),
            format!("{API}/watch/hosts"),
            format!("{API}/namespaces/team-a/workloadresolutions/x"),
            format!("{API}/{raw}"),
        ] {
            let _ = Attributes::of(&method, &path, Some(&query));
        }
    }

    // The parameters as every handler reads them.
    let params = parse_query(Some(&query));
    let repeated = repeated_query_key(Some(&query));
    for key in ["watch", "allowWatchBookmarks", "sendInitialEvents"] {
        let _ = flag(&params, key);
    }
    let _ = parse_rv(&params);
    let _ = include(&params);
    // Selectors, from the parameters and from the raw text.
    let hosts = example_hosts();
    for text in [
        params.get("labelSelector").map(String::as_str),
        params.get("fieldSelector").map(String::as_str),
        Some(&*raw),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(sel) = LabelSelector::parse(text) {
            for h in hosts {
                std::hint::black_box(sel.matches(h.metadata.labels.as_ref()));
            }
        }
        if let Ok(sel) = FieldSelector::parse(text) {
            for h in hosts {
                std::hint::black_box(sel.matches(h));
            }
            let _ = sel.exact_name();
        }
    }

    // Real requests (a watch's body is read as far as it goes at once).
    let watch = matches!(flag(&params, "watch"), Ok(Some(true)));
    let read = if watch { Read::Stream } else { Read::All };
    let router = api_router(live_inventory());
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    let mut uris = vec![
        (format!("{API}/hosts?{query}"), read),
        (format!("{API}/hosts/brave-otter-1234?{query}"), read),
        (format!("{API}/watch/hosts?{query}"), Read::Stream),
        (format!("{API}/workloadresolutions?{query}"), read),
    ];
    if repeated.is_none() {
        uris.push((format!("{API}/hosts?limit=2&continue={token}"), Read::All));
    }
    for (i, (uri, read)) in uris.into_iter().enumerate() {
        let Ok(req) = Request::get(uri.as_str())
            .header("accept", ACCEPTS[(data.len() + i) % ACCEPTS.len()])
            .body(Body::empty())
        else {
            continue;
        };
        send(&router, req, read);
    }
});
