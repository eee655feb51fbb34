//! Version matching, modelled on the two rules the wasmCloud host applies.

use semver::Version;

/// Parses a version the way the host does: a value that is not semver is treated as unversioned.
pub fn parse_version(s: &str) -> Option<Version> {
    Version::parse(s.trim()).ok()
}

/// The track under which wasmtime's linker also files a name for semver-compatible lookups
/// (wasmtime-environ 47.0.3 `component/names.rs` `alternate_lookup_key`): `1.2.3` -> `1`,
/// `0.2.6` -> `0.2`; none for `0.0.z` and for pre-releases, which match only exactly. Build
/// metadata does not take part in the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SemverTrack {
    /// `major.*.*` for a major version above 0.
    Major(u64),
    /// `0.minor.*` for a minor version above 0.
    Minor(u64),
}

impl std::fmt::Display for SemverTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Major(major) => write!(f, "{major}"),
            Self::Minor(minor) => write!(f, "0.{minor}"),
        }
    }
}

/// The [`SemverTrack`] of `v` (compared on every link check, so it allocates nothing).
pub fn semver_track(v: &Version) -> Option<SemverTrack> {
    if !v.pre.is_empty() {
        None
    } else if v.major != 0 {
        Some(SemverTrack::Major(v.major))
    } else if v.minor != 0 {
        Some(SemverTrack::Minor(v.minor))
    } else {
        None
    }
}

/// The component model's canonical form of a version: its [`semver_track`], or the whole
/// version where it has none (`0.0.1`, `0.2.0-draft`).
pub fn canonical_version(v: &Version) -> String {
    semver_track(v).map_or_else(|| v.to_string(), |t| t.to_string())
}

/// wasmtime's linker rule (built-ins and bound plugins): an import finds a definition of the
/// exact same name, or else one on the same [`semver_track`], in either direction (an import at
/// `0.2.99` finds `0.2.12`). Unversioned names match only unversioned names.
pub fn linker_versions_match(a: Option<&Version>, b: Option<&Version>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a == b || matches!((semver_track(a), semver_track(b)), (Some(x), Some(y)) if x == y)
        }
        _ => false,
    }
}

/// Sibling components link by exact export name (wash-runtime 2.7.0 `engine/workload.rs`
/// `link_components` keys the export map by the full name): `@0.2.0` and `@0.2.1` differ.
pub fn sibling_versions_match(a: Option<&Version>, b: Option<&Version>) -> bool {
    a == b
}

/// The host's plugin rule (`same_package`): an unversioned side matches anything; two versioned
/// sides must be exactly equal.
pub fn host_versions_match(a: Option<&Version>, b: Option<&Version>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_version(&v("1.2.3")), "1");
        assert_eq!(canonical_version(&v("0.2.6")), "0.2");
        assert_eq!(canonical_version(&v("0.0.1")), "0.0.1");
        assert_eq!(canonical_version(&v("0.2.0-draft")), "0.2.0-draft");
        assert_eq!(canonical_version(&v("2.1.0")), "2");
    }

    #[test]
    fn linker_rule() {
        assert!(linker_versions_match(Some(&v("0.2.0")), Some(&v("0.2.6"))));
        assert!(!linker_versions_match(Some(&v("0.2.0")), Some(&v("0.3.0"))));
        assert!(linker_versions_match(Some(&v("1.0.0")), Some(&v("1.9.2"))));
        assert!(!linker_versions_match(Some(&v("0.0.1")), Some(&v("0.0.2"))));
        assert!(!linker_versions_match(
            Some(&v("0.2.0-draft")),
            Some(&v("0.2.0"))
        ));
        assert!(!linker_versions_match(None, Some(&v("0.2.0"))));
        assert!(linker_versions_match(None, None));
        // Either direction, and build metadata is not part of the track.
        assert!(linker_versions_match(
            Some(&v("0.2.99")),
            Some(&v("0.2.12"))
        ));
        assert!(linker_versions_match(
            Some(&v("2.0.0")),
            Some(&v("2.1.0+abc"))
        ));
        assert!(!linker_versions_match(
            Some(&v("0.2.0-draft2")),
            Some(&v("0.2.0-draft"))
        ));
    }

    #[test]
    fn siblings_match_exactly() {
        assert!(sibling_versions_match(Some(&v("0.2.0")), Some(&v("0.2.0"))));
        assert!(!sibling_versions_match(
            Some(&v("0.2.0")),
            Some(&v("0.2.1"))
        ));
        assert!(!sibling_versions_match(None, Some(&v("0.2.1"))));
    }

    #[test]
    fn host_rule_unversioned_matches_any() {
        assert!(host_versions_match(None, Some(&v("0.2.0"))));
        assert!(host_versions_match(Some(&v("0.2.0-draft")), None));
        assert!(host_versions_match(None, None));
    }

    #[test]
    fn host_rule_two_versions_must_be_equal() {
        assert!(host_versions_match(Some(&v("0.2.0")), Some(&v("0.2.0"))));
        // Unlike the linker, the host does not unify 0.2.0 and 0.2.1.
        assert!(!host_versions_match(Some(&v("0.2.0")), Some(&v("0.2.1"))));
    }

    #[test]
    fn non_semver_is_unversioned() {
        assert_eq!(parse_version("0.2"), None);
        assert_eq!(parse_version("0.2.0-rc.1"), Some(v("0.2.0-rc.1")));
    }
}
