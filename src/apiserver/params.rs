//! Request parameters every resource of this API reads the same way: the query string (decoded
//! by `form_urlencoded`, as Go's `url.ParseQuery` does), the common flags, `resourceVersion`,
//! `includeObject`, and the output form from `Accept`.

use std::collections::{HashMap, HashSet};

use axum::http::{header, HeaderMap};

use super::negotiate::{self, Output};
use super::status::{ApiError, ApiResult};
use super::table::IncludeObject;

/// Decoded query parameters (one value per key: see [`repeated_query_key`]).
pub type Params = HashMap<String, String>;

/// The first query parameter that appears more than once (decoded), if any. The API refuses
/// such requests before authorization, so that authorization and the handlers can never read
/// different values of one parameter.
pub fn repeated_query_key(query: Option<&str>) -> Option<String> {
    let mut seen = HashSet::new();
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, _)| k.into_owned())
        .find(|k| !seen.insert(k.clone()))
}

/// Query parameters (`+` is a space; invalid escapes are kept as they are). A repeated key
/// never reaches a handler (see [`repeated_query_key`]); here the last value would win.
pub fn parse_query(query: Option<&str>) -> Params {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Path-segment and header-name decoding (`url.PathUnescape`: `+` stays a `+`). Invalid escapes
/// are kept as they are; invalid UTF-8 becomes U+FFFD.
pub fn path_unescape(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A boolean parameter as kube-apiserver reads it (absent: `None`; empty: false).
pub fn flag(params: &Params, name: &str) -> ApiResult<Option<bool>> {
    match params.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true" | "1" | "True") => Ok(Some(true)),
        Some("false" | "0" | "False" | "") => Ok(Some(false)),
        Some(v) => Err(ApiError::bad_request(format!(
            "invalid value for {name}: {v:?} (true or false)"
        ))),
    }
}

/// `resourceVersion` (absent or empty: `None`).
pub fn parse_rv(params: &Params) -> ApiResult<Option<u64>> {
    match params.get("resourceVersion").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {v:?}: not a resource version of this server"
            ))
        }),
    }
}

/// `includeObject` of Table output.
pub fn include(params: &Params) -> ApiResult<IncludeObject> {
    IncludeObject::parse(params.get("includeObject").map(String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The output form the `Accept` header asks for (406 when none is served).
pub fn output(headers: &HeaderMap) -> ApiResult<Output> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    negotiate::output(accept).ok_or_else(|| ApiError::not_acceptable(accept.unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_keys_are_found() {
        assert_eq!(
            repeated_query_key(Some("fieldSelector=metadata.name%3Dh1&fieldSelector=")),
            Some("fieldSelector".into())
        );
        assert_eq!(
            repeated_query_key(Some("watch=0&wat%63h=1")),
            Some("watch".into())
        );
        assert_eq!(repeated_query_key(Some("watch=1&limit=5")), None);
        assert_eq!(repeated_query_key(Some("a=1&&b=2")), None);
        assert_eq!(repeated_query_key(None), None);
    }

    #[test]
    fn query_parsing() {
        let q = parse_query(Some(
            "labelSelector=hostgroup%3Dedge&watch=1&x=a+b&flag&y=a%2",
        ));
        assert_eq!(q["labelSelector"], "hostgroup=edge");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "a b");
        assert_eq!(q["flag"], "");
        assert_eq!(q["y"], "a%2");
        assert_eq!(path_unescape("a%2"), "a%2");
        assert_eq!(path_unescape("a+b%2Fc"), "a+b/c");
        assert_eq!(path_unescape("metadata.name%3Dh2"), "metadata.name=h2");
    }

    #[test]
    fn flags_and_versions() {
        let q = parse_query(Some("a=true&b=0&c=&d=maybe&resourceVersion=12"));
        assert_eq!(flag(&q, "a").ok(), Some(Some(true)));
        assert_eq!(flag(&q, "b").ok(), Some(Some(false)));
        assert_eq!(flag(&q, "c").ok(), Some(Some(false)));
        assert!(flag(&q, "d").is_err());
        assert_eq!(flag(&q, "e").ok(), Some(None));
        assert_eq!(parse_rv(&q).ok(), Some(Some(12)));
        assert!(parse_rv(&parse_query(Some("resourceVersion=x"))).is_err());
    }
}
