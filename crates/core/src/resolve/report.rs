//! What the resolver returns: violations (deny) and warnings (admit), each with a stable code.

use serde::Serialize;

/// Stable machine-readable codes for findings (used in `check` JSON/SARIF output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// An import nothing provides.
    UnresolvedImport,
    /// A plugin import no eligible host offers at a matching version.
    PluginUnavailable,
    /// The `hostInterfaces` entry pins a different version than the component imports.
    VersionMismatch,
    /// The entry for the package does not list the imported interface.
    InterfaceNotListed,
    /// A named import without an entry of that name.
    NamedEntryMissing,
    /// Two sibling components export the same interface.
    AmbiguousProvider,
    /// Components import from each other in a cycle.
    DependencyCycle,
    /// No Ready host is eligible.
    NoEligibleHost,
    /// An export only a host can call lacks what the host needs to call it.
    HostExportMisconfigured,
    /// An export nothing calls.
    UncalledExport,
    /// A `hostInterfaces` entry no component uses.
    UnusedHostInterface,
    /// A component's world could not be learned.
    WorldUnavailable,
    /// Invalid WIT or component binary.
    InvalidComponent,
    /// A static check of the spec failed (section 5 of the wasmCloud digest).
    InvalidSpec,
    /// Environment targeting the operator would reject.
    CrossEnvironment,
    /// A default the mutating webhook applied.
    Defaulted,
    /// Egress policy that denies what the component evidently needs.
    EgressDenied,
    /// Only some of the eligible hosts can run the workload.
    PartialPlacement,
}

impl Code {
    /// The kebab-case name.
    /// Every code, in declaration order.
    pub const ALL: [Code; 18] = [
        Code::UnresolvedImport,
        Code::PluginUnavailable,
        Code::VersionMismatch,
        Code::InterfaceNotListed,
        Code::NamedEntryMissing,
        Code::AmbiguousProvider,
        Code::DependencyCycle,
        Code::NoEligibleHost,
        Code::HostExportMisconfigured,
        Code::UncalledExport,
        Code::UnusedHostInterface,
        Code::WorldUnavailable,
        Code::InvalidComponent,
        Code::InvalidSpec,
        Code::CrossEnvironment,
        Code::Defaulted,
        Code::EgressDenied,
        Code::PartialPlacement,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Code::UnresolvedImport => "unresolved-import",
            Code::PluginUnavailable => "plugin-unavailable",
            Code::VersionMismatch => "version-mismatch",
            Code::InterfaceNotListed => "interface-not-listed",
            Code::NamedEntryMissing => "named-entry-missing",
            Code::AmbiguousProvider => "ambiguous-provider",
            Code::DependencyCycle => "dependency-cycle",
            Code::NoEligibleHost => "no-eligible-host",
            Code::HostExportMisconfigured => "host-export-misconfigured",
            Code::UncalledExport => "uncalled-export",
            Code::UnusedHostInterface => "unused-host-interface",
            Code::WorldUnavailable => "world-unavailable",
            Code::InvalidComponent => "invalid-component",
            Code::InvalidSpec => "invalid-spec",
            Code::CrossEnvironment => "cross-environment",
            Code::Defaulted => "defaulted",
            Code::EgressDenied => "egress-denied",
            Code::PartialPlacement => "partial-placement",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// The component (or `service`) concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The import or export concerned, if any (`ns:pkg/iface@version`).
    #[serde(rename = "import", skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The full human message, including the fix.
    pub message: String,
}

impl Finding {
    /// A finding about the workload as a whole.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            component: None,
            item: None,
            message: message.into(),
        }
    }

    /// A finding about one component.
    pub fn component(code: Code, component: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            component: Some(component.to_string()),
            item: None,
            message: message.into(),
        }
    }

    /// Attaches the import or export concerned.
    pub fn with_item(mut self, item: impl ToString) -> Self {
        self.item = Some(item.to_string());
        self
    }
}

/// The resolver's verdict on one workload spec.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Findings that make the workload unrunnable: any one denies it.
    pub violations: Vec<Finding>,
    /// Findings that admit it with a warning.
    pub warnings: Vec<Finding>,
    /// How many known hosts are eligible (Ready and matching targeting).
    pub eligible_hosts: usize,
    /// Who provides each import of each component, in the order they were judged: the link
    /// graph (`wasmgate check --graph`). Not part of the JSON report.
    #[serde(skip)]
    pub links: Vec<Link>,
}

/// One import of one component and what provides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The importing component (or `service`).
    pub component: String,
    /// The import as written (`ns:pkg/iface@version`, `label: ...`, or a bare name).
    pub import: String,
    /// What provides it.
    pub provider: Provider,
}

/// What an import links to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Another component of the workload exports it.
    Sibling(String),
    /// The host's built-in WASI set.
    Builtin,
    /// A host plugin, bound through a `hostInterfaces` entry.
    Plugin {
        /// The entry (`hostInterfaces entry "name"` or `... for ns:pkg`).
        entry: String,
        /// Eligible hosts whose plugin links it.
        hosts: usize,
        /// Eligible hosts in all.
        eligible: usize,
        /// Versions of the package the eligible hosts offer.
        versions: Vec<String>,
    },
    /// Nothing: the finding that says why.
    Unresolved(Code),
}

impl Report {
    /// Whether the workload is admitted.
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }

    pub(crate) fn deny(&mut self, f: Finding) {
        self.violations.push(f);
    }

    pub(crate) fn warn(&mut self, f: Finding) {
        self.warnings.push(f);
    }

    /// The denial message: every violation, numbered when there are several.
    pub fn denial_message(&self) -> String {
        match self.violations.as_slice() {
            [] => String::new(),
            [one] => one.message.clone(),
            many => {
                let mut out = format!("{} problems: ", many.len());
                for (i, v) in many.iter().enumerate() {
                    if i > 0 {
                        out.push_str("; ");
                    }
                    out.push_str(&format!("({}) {}", i + 1, v.message));
                }
                out
            }
        }
    }
}
