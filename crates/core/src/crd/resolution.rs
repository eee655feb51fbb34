//! `WorkloadResolution` (`wasmgate.dev/v1alpha1`, namespaced, read-only): whether one
//! Workload, WorkloadReplicaSet or WorkloadDeployment resolves against the current inventory.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SharedList;
use crate::resolve::{Code, Finding, Link, Provider, Report};

/// `apiVersion` of a WorkloadResolution (`wasmgate.dev/v1alpha1`).
pub fn api_version() -> String {
    format!("{}/{}", super::WASMGATE_GROUP, super::WASMGATE_VERSION)
}

/// The kind.
pub const KIND: &str = "WorkloadResolution";
/// The list kind.
pub const LIST_KIND: &str = "WorkloadResolutionList";
/// The resource (plural).
pub const RESOURCE: &str = "workloadresolutions";
/// The singular resource name.
pub const SINGULAR: &str = "workloadresolution";

/// Why an object does or does not resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Every import resolves on at least one eligible host.
    Resolved,
    /// Something cannot resolve (see `status.unresolved`).
    Unresolved,
    /// No eligible host is known: it cannot run anywhere right now.
    NoEligibleHost,
    /// The object does not decode as its kind.
    Undecodable,
}

impl Reason {
    /// As written in the object and the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolved => "Resolved",
            Self::Unresolved => "Unresolved",
            Self::NoEligibleHost => "NoEligibleHost",
            Self::Undecodable => "Undecodable",
        }
    }
}

/// The object a resolution is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// `runtime.wasmcloud.dev/v1alpha1`.
    pub api_version: String,
    /// Workload, WorkloadReplicaSet or WorkloadDeployment.
    pub kind: String,
    /// Its name (same namespace).
    pub name: String,
    /// Its uid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// What the resolver found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionStatus {
    /// Whether the object can run: every import resolves and some host is eligible.
    pub resolved: bool,
    /// Resolved, Unresolved, NoEligibleHost or Undecodable.
    pub reason: String,
    /// The first problem, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How many hosts are eligible (Ready and matching its targeting).
    pub eligible_hosts: usize,
    // The three lists are shared (`SharedList`): a status is copied to the tracked object, the
    // store, its watch event and the objects with equal inputs, and each copy costs a pointer.
    /// What does not resolve, and why.
    #[serde(default, skip_serializing_if = "SharedList::is_empty")]
    pub unresolved: SharedList<Issue>,
    /// Warnings (admitted, but worth knowing).
    #[serde(default, skip_serializing_if = "SharedList::is_empty")]
    pub warnings: SharedList<Issue>,
    /// The link graph: one entry per import of each component whose world is known, and what
    /// provides it (`wasmgate check --graph` draws the same links).
    #[serde(default, skip_serializing_if = "SharedList::is_empty")]
    pub links: SharedList<LinkStatus>,
    /// The object generation resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `resolved` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_transition_time: String,
}

/// One finding of the resolver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// A stable code, e.g. `plugin-unavailable`.
    pub code: String,
    /// The component concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The import or export concerned (`ns:pkg/iface@version`).
    #[serde(default, rename = "import", skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The full message, with the fix.
    pub message: String,
}

/// One edge of the link graph: an import of a component and what provides it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    /// The importing component (or `service`).
    pub component: String,
    /// The import as written (`ns:pkg/iface@version`, `label: ...`, or a bare name).
    pub import: String,
    /// `sibling`, `builtin`, `plugin` or `unresolved`.
    pub provider: String,
    /// The sibling component, the `hostInterfaces` entry, or (unresolved) the finding's code,
    /// whose entry in `unresolved` says why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub via: String,
    /// A plugin: how many eligible hosts link it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<usize>,
    /// A plugin: the versions of its package the eligible hosts offer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

impl From<Link> for LinkStatus {
    fn from(link: Link) -> Self {
        let (provider, via, hosts, versions) = match link.provider {
            Provider::Sibling(component) => ("sibling", component, None, Vec::new()),
            Provider::Builtin => ("builtin", String::new(), None, Vec::new()),
            Provider::Plugin {
                entry,
                hosts,
                versions,
                ..
            } => ("plugin", entry, Some(hosts), versions),
            Provider::Unresolved(code) => {
                ("unresolved", code.as_str().to_string(), None, Vec::new())
            }
        };
        Self {
            component: link.component,
            import: link.import,
            provider: provider.to_string(),
            via,
            hosts,
            versions,
        }
    }
}

impl From<Finding> for Issue {
    fn from(f: Finding) -> Self {
        Self {
            code: f.code.as_str().to_string(),
            component: f.component,
            item: f.item,
            message: f.message,
        }
    }
}

/// A `WorkloadResolution` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadResolution {
    /// `wasmgate.dev/v1alpha1`.
    pub api_version: String,
    /// `WorkloadResolution`.
    pub kind: String,
    /// Name `<target name>.<target kind, lower case>`, the target's namespace and labels.
    pub metadata: ObjectMeta,
    /// The object resolved.
    pub target: TargetRef,
    /// The outcome.
    pub status: ResolutionStatus,
}

/// The resolution's name for a target: `<name>.<kind in lower case>` (kinds may share names).
pub fn resolution_name(kind: &str, name: &str) -> String {
    format!("{name}.{}", kind.to_ascii_lowercase())
}

impl ResolutionStatus {
    /// The status a resolver report gives (its strings are moved, not copied).
    pub fn from_report(report: Report) -> Self {
        let no_host = report
            .warnings
            .iter()
            .find(|w| w.code == Code::NoEligibleHost);
        let (resolved, reason, message) = if let Some(first) = report.violations.first() {
            (false, Reason::Unresolved, first.message.clone())
        } else if let Some(w) = no_host {
            (false, Reason::NoEligibleHost, w.message.clone())
        } else {
            (true, Reason::Resolved, String::new())
        };
        Self {
            resolved,
            reason: reason.as_str().to_string(),
            message,
            eligible_hosts: report.eligible_hosts,
            unresolved: report.violations.into_iter().map(Issue::from).collect(),
            warnings: report.warnings.into_iter().map(Issue::from).collect(),
            links: report.links.into_iter().map(LinkStatus::from).collect(),
            observed_generation: None,
            last_transition_time: String::new(),
        }
    }

    /// The status of an object that does not decode.
    pub fn undecodable(message: String) -> Self {
        Self {
            resolved: false,
            reason: Reason::Undecodable.as_str().to_string(),
            message,
            ..Self::default()
        }
    }

    /// Whether `other` says something different (ignoring the transition time).
    pub fn differs(&self, other: &Self) -> bool {
        // Destructured, so a new field cannot be left out of the comparison.
        let Self {
            resolved,
            reason,
            message,
            eligible_hosts,
            unresolved,
            warnings,
            links,
            observed_generation,
            last_transition_time: _,
        } = self;
        *resolved != other.resolved
            || *reason != other.reason
            || *message != other.message
            || *eligible_hosts != other.eligible_hosts
            || *unresolved != other.unresolved
            || *warnings != other.warnings
            || *links != other.links
            || *observed_generation != other.observed_generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_reports() {
        let ok = Report {
            eligible_hosts: 3,
            ..Report::default()
        };
        let s = ResolutionStatus::from_report(ok);
        assert!(s.resolved);
        assert_eq!(s.reason, "Resolved");
        assert_eq!(s.eligible_hosts, 3);

        let mut waiting = Report::default();
        waiting
            .warnings
            .push(Finding::new(Code::NoEligibleHost, "no host"));
        let s = ResolutionStatus::from_report(waiting);
        assert!(!s.resolved);
        assert_eq!(
            (s.reason.as_str(), s.message.as_str()),
            ("NoEligibleHost", "no host")
        );

        let mut bad = Report::default();
        bad.violations.push(
            Finding::component(Code::PluginUnavailable, "api", "no postgres")
                .with_item("wasmcloud:postgres/query@0.2.0"),
        );
        bad.violations
            .push(Finding::new(Code::InvalidSpec, "second"));
        let s = ResolutionStatus::from_report(bad);
        assert!(!s.resolved);
        assert_eq!(s.reason, "Unresolved");
        assert_eq!(s.message, "no postgres");
        assert_eq!(s.unresolved.len(), 2);
        assert_eq!(s.unresolved[0].code, "plugin-unavailable");
        assert_eq!(
            s.unresolved[0].item.as_deref(),
            Some("wasmcloud:postgres/query@0.2.0")
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["unresolved"][0]["import"],
            "wasmcloud:postgres/query@0.2.0"
        );
        assert_eq!(json["eligibleHosts"], 0);
    }

    #[test]
    fn links_say_what_provides_each_import() {
        let link = |component: &str, import: &str, provider| Link {
            component: component.into(),
            import: import.into(),
            provider,
        };
        let report = Report {
            links: vec![
                link("api", "example:db/store", Provider::Sibling("db".into())),
                link("api", "wasi:io/streams@0.2.0", Provider::Builtin),
                link(
                    "db",
                    "wasmcloud:postgres/query@0.2.0",
                    Provider::Plugin {
                        entry: "entry \"orders-db\"".into(),
                        hosts: 2,
                        eligible: 5,
                        versions: vec!["0.2.0".into()],
                    },
                ),
                link(
                    "db",
                    "wasi:keyvalue/store@0.2.0-draft",
                    Provider::Unresolved(Code::PluginUnavailable),
                ),
            ],
            ..Report::default()
        };
        let json = serde_json::to_value(ResolutionStatus::from_report(report)).unwrap();
        assert_eq!(
            json["links"],
            serde_json::json!([
                {"component": "api", "import": "example:db/store", "provider": "sibling", "via": "db"},
                {"component": "api", "import": "wasi:io/streams@0.2.0", "provider": "builtin"},
                {"component": "db", "import": "wasmcloud:postgres/query@0.2.0", "provider": "plugin",
                 "via": "entry \"orders-db\"", "hosts": 2, "versions": ["0.2.0"]},
                {"component": "db", "import": "wasi:keyvalue/store@0.2.0-draft",
                 "provider": "unresolved", "via": "plugin-unavailable"},
            ])
        );
        // A workload without known worlds has no links, and says nothing about them.
        let json = serde_json::to_value(ResolutionStatus::from_report(Report::default())).unwrap();
        assert!(json.get("links").is_none(), "{json}");
    }

    #[test]
    fn transition_time_alone_is_no_difference() {
        let a = ResolutionStatus::undecodable("x".into());
        let mut b = a.clone();
        b.last_transition_time = "2026-01-01T00:00:00Z".into();
        assert!(!b.differs(&a));
        b.eligible_hosts = 1;
        assert!(b.differs(&a));
        // Every other field counts, the shared lists by content.
        let changed: [fn(&mut ResolutionStatus); 7] = [
            |s| s.resolved = true,
            |s| s.reason = "Resolved".into(),
            |s| s.message = "y".into(),
            |s| s.observed_generation = Some(2),
            |s| s.unresolved = vec![Issue::default()].into(),
            |s| s.warnings = vec![Issue::default()].into(),
            |s| s.links = vec![LinkStatus::default()].into(),
        ];
        for change in changed {
            let mut c = a.clone();
            change(&mut c);
            assert!(c.differs(&a) && a.differs(&c), "{c:?}");
        }
        let mut c = a.clone();
        c.links = vec![LinkStatus::default()].into();
        let mut d = a.clone();
        d.links = vec![LinkStatus::default()].into();
        assert!(!c.links.ptr_eq(&d.links) && !c.differs(&d));
        assert_eq!(
            resolution_name("WorkloadReplicaSet", "web"),
            "web.workloadreplicaset"
        );
    }
}
