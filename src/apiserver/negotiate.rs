//! Content negotiation of the `Accept` header, the way kube-apiserver reads it: media ranges in
//! order, JSON only (protobuf and YAML ranges are skipped so that a later JSON range is used), and
//! the `as`/`g`/`v` parameters that ask for a Table, a PartialObjectMetadata(List) or aggregated
//! discovery.

/// What a resource response is rendered as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The object (or `HostList`) as JSON.
    Json,
    /// A `meta.k8s.io` Table (`v1beta1` when only that was asked for).
    Table {
        /// Answer `meta.k8s.io/v1beta1`.
        v1beta1: bool,
    },
    /// `PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata,
}

/// The aggregated discovery version asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryVersion {
    /// `apidiscovery.k8s.io/v2`.
    V2,
    /// `apidiscovery.k8s.io/v2beta1`.
    V2beta1,
}

impl DiscoveryVersion {
    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V2beta1 => "v2beta1",
        }
    }
}

struct MediaRange<'a> {
    essence: String,
    params: Vec<(String, &'a str)>,
}

impl MediaRange<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim_matches('"'))
    }
}

fn ranges(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let essence = parts.next()?.trim().to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim().to_ascii_lowercase(), v.trim()))
                })
                .collect();
            Some(MediaRange { essence, params })
        })
        .collect()
}

fn is_json(essence: &str) -> bool {
    matches!(essence, "application/json" | "application/*" | "*/*")
}

/// The output for an `Accept` header; `None` means nothing acceptable (406).
pub fn output(accept: Option<&str>) -> Option<Output> {
    let accept = accept.unwrap_or("").trim();
    if accept.is_empty() {
        return Some(Output::Json);
    }
    for r in ranges(accept) {
        if !is_json(&r.essence) {
            continue; // protobuf, yaml, cbor, ...: fall through to the next range
        }
        match (r.param("as"), r.param("g"), r.param("v")) {
            (None, _, _) => return Some(Output::Json),
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => {
                return Some(Output::Table { v1beta1: false })
            }
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Some(Output::Table { v1beta1: true })
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1"),
            ) => return Some(Output::Metadata),
            _ => continue, // an `as=` we do not serve
        }
    }
    None
}

/// Whether `Accept` asks `/apis` for aggregated discovery, and which version.
pub fn accepts_discovery_v2(accept: &str) -> Option<DiscoveryVersion> {
    for r in ranges(accept) {
        if r.essence != "application/json" {
            continue;
        }
        if r.param("as") == Some("APIGroupDiscoveryList")
            && r.param("g") == Some("apidiscovery.k8s.io")
        {
            match r.param("v") {
                Some("v2") => return Some(DiscoveryVersion::V2),
                Some("v2beta1") => return Some(DiscoveryVersion::V2beta1),
                _ => {}
            }
        }
    }
    None
}

/// Whether a request `Content-Type` is JSON (the only body format accepted besides patch types).
pub fn is_json_content(content_type: Option<&str>) -> bool {
    let essence = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(output(Some(a)), Some(Output::Table { v1beta1: false }));
        assert_eq!(
            output(Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io")),
            Some(Output::Table { v1beta1: true })
        );
    }

    #[test]
    fn protobuf_falls_back_to_json_and_metadata_is_recognised() {
        let a = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(output(Some(a)), Some(Output::Metadata));
        assert_eq!(
            output(Some("application/vnd.kubernetes.protobuf, */*")),
            Some(Output::Json)
        );
        assert_eq!(output(None), Some(Output::Json));
        assert_eq!(output(Some("application/json")), Some(Output::Json));
    }

    #[test]
    fn unacceptable() {
        assert_eq!(output(Some("application/vnd.kubernetes.protobuf")), None);
        assert_eq!(output(Some("text/html")), None);
        assert_eq!(output(Some("application/json;as=Foo;g=x;v=v1")), None);
    }

    #[test]
    fn discovery() {
        assert_eq!(
            accepts_discovery_v2(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            ),
            Some(DiscoveryVersion::V2)
        );
        assert_eq!(
            accepts_discovery_v2(
                "application/json;as=APIGroupDiscoveryList;v=v2beta1;g=apidiscovery.k8s.io"
            ),
            Some(DiscoveryVersion::V2beta1)
        );
        assert_eq!(accepts_discovery_v2("application/json"), None);
    }
}
