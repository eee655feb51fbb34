//! Version matching, modelled on the two rules the wasmCloud host applies.

use semver::Version;

/// Parses a version the way the host does: a value that is not semver is treated as unversioned.
pub fn parse_version(s: &str) -> Option<Version> {
    Version::parse(s.trim()).ok()
}

/// The component model's canonical form of a version, as wasmtime's linker uses it:
/// `1.2.3` -> `1`, `0.2.6` -> `0.2`, `0.0.1` -> `0.0.1`; pre-releases and build metadata stay exact.
pub fn canonical_version(v: &Version) -> String {
    if !v.pre.is_empty() || !v.build.is_empty() {
        v.to_string()
    } else if v.major != 0 {
        v.major.to_string()
    } else if v.minor != 0 {
        format!("0.{}", v.minor)
    } else {
        format!("0.0.{}", v.patch)
    }
}

/// The linker's rule (built-ins and siblings): both unversioned, or the same canonical version.
pub fn linker_versions_match(a: Option<&Version>, b: Option<&Version>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => canonical_version(a) == canonical_version(b),
        _ => false,
    }
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
