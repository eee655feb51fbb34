//! Static checks of a Workload spec: the gaps upstream leaves open (wasmCloud digest section 5),
//! plus the two CEL rules, so `wasmgate check` catches offline what kube-apiserver would.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::crd::{LocalResources, WorkloadSpec};
use crate::wit::parse_version;

use super::report::{Code, Finding, Report};
use super::{ResolveInput, SERVICE_KEY};

static DNS_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$").expect("static regex"));
static HOST_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$").expect("static regex")
});
static SCHEME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]*$").expect("static regex"));
static IP_LITERAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9A-Fa-f:.]+$").expect("static regex"));

/// A check of one egress-list entry.
type EntryCheck = fn(&str) -> Result<(), EntryError>;

/// Why an egress-list entry (`allowedHosts`, `allowedIpNameLookups`,
/// `allowedHostLoopbackPorts`) is not one the runtime accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// `scheme://` with a scheme that is not RFC 3986.
    #[error("invalid scheme {0:?}")]
    Scheme(String),
    /// A path, query or fragment after the host.
    #[error("paths, queries and fragments are not allowed")]
    PathQueryOrFragment,
    /// A port that is not 1-65535.
    #[error("invalid port {0:?}")]
    Port(String),
    /// Neither a hostname nor a `*.suffix` pattern.
    #[error("{0:?} is not a hostname or *.suffix pattern")]
    Host(String),
    /// Not `*`, `*.suffix`, a hostname or an IP address.
    #[error("expected *, *.suffix, a hostname or an IP address")]
    Lookup,
    /// A loopback port's protocol that is not tcp or udp.
    #[error("protocol {0:?} is not tcp or udp")]
    Protocol(String),
    /// A loopback port that is not 1-65535.
    #[error("port {0:?} is not 1-65535")]
    LoopbackPort(String),
}

const PULL_POLICIES: [&str; 3] = ["Always", "IfNotPresent", "Never"];
const DEPLOY_POLICIES: [&str; 2] = ["RollingUpdate", "Recreate"];

/// An RFC 1123 hostname: dot-separated labels, 253 characters at most.
pub fn is_rfc1123_hostname(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| HOST_LABEL.is_match(l))
}

fn valid_port(p: &str) -> bool {
    p.len() <= 5 && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

/// `host` or `*.suffix`, each label RFC 1123.
fn valid_host_pattern(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    is_rfc1123_hostname(h)
}

/// Checks an `allowedHosts` entry the way the runtime parses it: `*`, `host[:port]`,
/// `scheme://host[:port][/]`, with `*.` wildcards; no paths, queries or fragments.
pub fn check_allowed_host(entry: &str) -> Result<(), EntryError> {
    if entry == "*" {
        return Ok(());
    }
    let rest = match entry.split_once("://") {
        Some((scheme, rest)) => {
            if !SCHEME.is_match(scheme) {
                return Err(EntryError::Scheme(scheme.to_string()));
            }
            rest.strip_suffix('/').unwrap_or(rest)
        }
        None => entry,
    };
    if rest.contains(['/', '?', '#']) {
        return Err(EntryError::PathQueryOrFragment);
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = port {
        if !valid_port(p) {
            return Err(EntryError::Port(p.to_string()));
        }
    }
    if !valid_host_pattern(host) {
        return Err(EntryError::Host(host.to_string()));
    }
    Ok(())
}

/// Checks an `allowedIpNameLookups` entry: `*`, `*.suffix`, a hostname, or a literal IP.
pub fn check_allowed_lookup(entry: &str) -> Result<(), EntryError> {
    if entry == "*" || valid_host_pattern(entry) {
        return Ok(());
    }
    if IP_LITERAL.is_match(entry) && entry.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    Err(EntryError::Lookup)
}

/// Checks an `allowedHostLoopbackPorts` entry: `port[/tcp|udp]`, port 1-65535.
pub fn check_loopback_port(entry: &str) -> Result<(), EntryError> {
    let (port, proto) = match entry.split_once('/') {
        Some((p, proto)) => (p, Some(proto)),
        None => (entry, None),
    };
    if let Some(proto) = proto {
        if !["tcp", "udp"].contains(&proto.to_ascii_lowercase().as_str()) {
            return Err(EntryError::Protocol(proto.to_string()));
        }
    }
    if !valid_port(port) {
        return Err(EntryError::LoopbackPort(port.to_string()));
    }
    Ok(())
}

fn spec_error(report: &mut Report, component: Option<&str>, message: String) {
    let mut f = Finding::new(Code::InvalidSpec, message);
    f.component = component.map(str::to_string);
    report.deny(f);
}

fn check_local_resources(
    who: &str,
    local: &LocalResources,
    volumes: &BTreeSet<&str>,
    report: &mut Report,
) {
    for m in local.volume_mounts.iter().flatten() {
        if !volumes.contains(m.name.as_str()) {
            spec_error(
                report,
                Some(who),
                format!(
                    "{who:?} mounts volume {:?} at {}, but spec.volumes declares no such volume: add it to spec.volumes or fix the name",
                    m.name, m.mount_path
                ),
            );
        }
    }
    let lists: [(&str, Option<&Vec<String>>, EntryCheck); 3] = [
        (
            "allowedHosts",
            local.allowed_hosts.as_ref(),
            check_allowed_host,
        ),
        (
            "allowedIpNameLookups",
            local.allowed_ip_name_lookups.as_ref(),
            check_allowed_lookup,
        ),
        (
            "allowedHostLoopbackPorts",
            local.allowed_host_loopback_ports.as_ref(),
            check_loopback_port,
        ),
    ];
    for (field, list, check) in lists {
        for entry in list.into_iter().flatten() {
            if let Err(why) = check(entry) {
                spec_error(
                    report,
                    Some(who),
                    format!(
                        "{who:?} has an invalid localResources.{field} entry {entry:?}: {why}; the host would fail the workload at start"
                    ),
                );
            }
        }
    }
}

fn check_pull_policy(who: &str, policy: Option<&str>, report: &mut Report) {
    if let Some(p) = policy {
        if !PULL_POLICIES.contains(&p) {
            spec_error(
                report,
                Some(who),
                format!(
                    "{who:?} has imagePullPolicy {p:?}; use one of Always, IfNotPresent, Never (the host treats anything else as IfNotPresent)"
                ),
            );
        }
    }
}

fn check_image(who: &str, image: &str, input: &ResolveInput<'_>, report: &mut Report) {
    if image.trim().is_empty() {
        spec_error(report, Some(who), format!("{who:?} has an empty image"));
        return;
    }
    if let Some(name) = image.strip_prefix("artifact://") {
        match input.deployment {
            Some(d) if d.artifact_names.iter().any(|a| a == name) => {}
            Some(_) => spec_error(
                report,
                Some(who),
                format!(
                    "{who:?} uses image {image}, but spec.artifacts has no entry named {name:?}: add {{name: {name}, artifactFrom: {{name: <Artifact>}}}}"
                ),
            ),
            None => spec_error(
                report,
                Some(who),
                format!(
                    "{who:?} uses image {image}, but artifact:// images are resolved only in a WorkloadDeployment: use an OCI reference"
                ),
            ),
        }
    }
}

/// Runs every static check and records violations in `report`.
pub(super) fn static_checks(input: &ResolveInput<'_>, report: &mut Report) {
    let spec: &WorkloadSpec = input.spec;

    if let Some(d) = input.deployment {
        if let Some(p) = d.deploy_policy.as_deref() {
            if !DEPLOY_POLICIES.contains(&p) {
                spec_error(
                    report,
                    None,
                    format!("deployPolicy {p:?} is not RollingUpdate or Recreate"),
                );
            }
        }
    }

    let host_id = spec.host_id.as_deref().filter(|s| !s.is_empty());
    let selector = spec.host_selector.as_ref().filter(|s| !s.is_empty());
    if host_id.is_some() && selector.is_some() {
        spec_error(
            report,
            None,
            "spec.hostId and spec.hostSelector are both set; the operator silently ignores hostSelector: keep one".into(),
        );
    }

    let components = spec.components.as_deref().unwrap_or_default();
    if components.is_empty() && spec.service.is_none() {
        spec_error(
            report,
            None,
            "the workload has no components and no service: nothing would run".into(),
        );
    }
    let mut names = BTreeSet::new();
    for c in components {
        if c.name.is_empty() {
            spec_error(report, None, "a component has an empty name".into());
        } else if !names.insert(c.name.as_str()) {
            spec_error(
                report,
                Some(&c.name),
                format!(
                    "component name {:?} is used twice; names must be unique within a workload",
                    c.name
                ),
            );
        } else if c.name == SERVICE_KEY && spec.service.is_some() {
            spec_error(
                report,
                Some(&c.name),
                "a component named \"service\" is ambiguous next to spec.service: rename it".into(),
            );
        }
    }

    let mut volumes = BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        if !DNS_LABEL.is_match(&v.name) {
            spec_error(
                report,
                None,
                format!("volume name {:?} is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)", v.name),
            );
        }
        if !volumes.insert(v.name.as_str()) {
            spec_error(
                report,
                None,
                format!("volume {:?} is declared twice", v.name),
            );
        }
        match (v.ephemeral.is_some(), v.host_path.is_some()) {
            (true, false) | (false, true) => {}
            (true, true) => spec_error(
                report,
                None,
                format!("volume {:?} sets both ephemeral and hostPath; the operator would silently use ephemeral: keep one", v.name),
            ),
            (false, false) => spec_error(
                report,
                None,
                format!("volume {:?} sets neither ephemeral nor hostPath: set one", v.name),
            ),
        }
    }

    for c in components {
        check_image(&c.name, &c.image, input, report);
        check_pull_policy(&c.name, c.image_pull_policy.as_deref(), report);
        if let Some(local) = &c.local_resources {
            check_local_resources(&c.name, local, &volumes, report);
        }
    }
    if let Some(s) = &spec.service {
        check_image(SERVICE_KEY, &s.image, input, report);
        check_pull_policy(SERVICE_KEY, s.image_pull_policy.as_deref(), report);
        if let Some(local) = &s.local_resources {
            check_local_resources(SERVICE_KEY, local, &volumes, report);
        }
    }

    let entries = spec.host_interfaces.as_deref().unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut unnamed = BTreeSet::new();
    for e in entries {
        let label = format!("{}:{}", e.namespace, e.package);
        let name = e.name.as_deref().unwrap_or("");
        if let Some(v) = e.version.as_deref().filter(|v| !v.is_empty()) {
            if parse_version(v).is_none() {
                spec_error(
                    report,
                    None,
                    format!(
                        "hostInterfaces entry {label} has version {v:?}, which is not semver; the host would silently treat the entry as unversioned: write a full version such as \"{v}.0\""
                    ),
                );
            }
        }
        if e.interfaces.is_empty() {
            spec_error(
                report,
                None,
                format!("hostInterfaces entry {label} lists no interfaces"),
            );
        }
        if !seen.insert((
            e.namespace.as_str(),
            e.package.as_str(),
            name,
            e.version.as_deref().unwrap_or(""),
        )) {
            spec_error(
                report,
                None,
                "hostInterfaces must not contain duplicate entries with the same namespace, package, name, and version".into(),
            );
        }
        if name.is_empty() && !unnamed.insert((e.namespace.as_str(), e.package.as_str())) {
            spec_error(
                report,
                None,
                format!("at most one unnamed hostInterface is allowed per namespace:package ({label}); set a unique name to disambiguate multiple imports of the same package"),
            );
        }
        let routes_http = e.namespace == "wasi"
            && e.package == "http"
            && e.interfaces
                .iter()
                .any(|i| i == "incoming-handler" || i == "handler");
        if routes_http {
            match e.config.as_ref().and_then(|c| c.get("host")) {
                None => spec_error(
                    report,
                    None,
                    "hostInterfaces entry wasi:http lists incoming-handler but has no config.host; the host's HTTP router requires it (\"no host header found\"): set config.host to the hostname requests arrive for".into(),
                ),
                Some(h) if !is_rfc1123_hostname(h) => spec_error(
                    report,
                    None,
                    format!("hostInterfaces entry wasi:http has config.host {h:?}, which is not a valid RFC 1123 hostname; the host rejects it"),
                ),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_the_runtime() {
        for ok in [
            "*",
            "example.com:8443",
            "localhost:8080",
            "*.example.com:8443",
            "https://*.example.com:8443/",
            "https://api.example.com",
        ] {
            assert!(check_allowed_host(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "*foo",
            "*com",
            "example.com/v1",
            "example.com:notaport",
            "https://example.com/v1",
            "http://",
            ":8080",
            "-example.com",
            "example-.com",
            "example.com:99999",
        ] {
            assert!(check_allowed_host(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn lookups_and_ports() {
        assert!(check_allowed_lookup("*.example.com").is_ok());
        assert!(check_allowed_lookup("10.0.0.1").is_ok());
        assert!(check_allowed_lookup("::1").is_ok());
        assert!(check_allowed_lookup("*foo").is_err());
        assert!(check_loopback_port("5432/tcp").is_ok());
        assert!(check_loopback_port("53/UDP").is_ok());
        assert!(check_loopback_port("0").is_err());
        assert!(check_loopback_port("70000").is_err());
        assert!(check_loopback_port("80/sctp").is_err());
    }

    #[test]
    fn rfc1123() {
        assert!(is_rfc1123_hostname("shop.example.test"));
        assert!(!is_rfc1123_hostname("shop_example"));
        assert!(!is_rfc1123_hostname("-shop.example"));
        assert!(!is_rfc1123_hostname(""));
    }
}
