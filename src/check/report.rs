//! The result of a `wasmgate check` run: one entry per checked object, the objects skipped,
//! and a summary. Serialized as is for `--output json` (the shape is documented in
//! `docs/check-output.md` and `docs/check-output.schema.json`; bump [`FORMAT_VERSION`] on any
//! incompatible change); the other formats render from it.

use serde::Serialize;
use serde_json::Value;

use crate::engine::Evaluation;
use crate::resolve::{Code, Finding as ResolverFinding};

use super::input::InputObject;

/// Version of the JSON output shape.
pub const FORMAT_VERSION: u32 = 1;

/// The code of a wasmCloud object that does not decode as its kind (the webhook denies it).
pub const INVALID_OBJECT: &str = "invalid-object";

/// The code of a default the mutating webhook applies.
pub const DEFAULTED: &str = "defaulted";

/// Every finding code `check` reports, with a one-line description and whether it denies
/// (`true`) or warns. The codes are the resolver's [`Code`]s plus [`INVALID_OBJECT`].
pub fn rules() -> Vec<(&'static str, &'static str, bool)> {
    let mut out: Vec<_> = Code::ALL
        .iter()
        .map(|c| {
            let (text, denies) = describe(*c);
            (c.as_str(), text, denies)
        })
        .collect();
    out.push((
        INVALID_OBJECT,
        "The object does not decode as its kind (a field has the wrong type or shape).",
        true,
    ));
    out
}

/// A description of each code and whether it usually denies. Exhaustive, so a new code cannot
/// be forgotten here.
fn describe(code: Code) -> (&'static str, bool) {
    match code {
        Code::UnresolvedImport => ("An import that nothing provides: no sibling component exports it, the host does not build it in, and no hostInterfaces entry declares it.", true),
        Code::PluginUnavailable => ("A plugin import that no eligible host offers at a matching version.", true),
        Code::VersionMismatch => ("A hostInterfaces entry pins a different version than the component imports.", true),
        Code::InterfaceNotListed => ("No hostInterfaces entry for the package binds for this component: the host binds an entry only for a component that uses every interface it lists.", true),
        Code::NamedEntryMissing => ("A named import without a hostInterfaces entry of that name (or the entry is for another package).", true),
        Code::AmbiguousProvider => ("Two sibling components export the same interface; the host cannot pick the provider.", true),
        Code::DependencyCycle => ("Components import from each other in a cycle; the host cannot instantiate them.", true),
        Code::NoEligibleHost => ("No Ready host matches the workload's hostId, hostSelector and environment right now; it waits until one reports.", false),
        Code::HostExportMisconfigured => ("An export only a host can call lacks the hostInterfaces entry (or configuration) the host needs to call it.", true),
        Code::UncalledExport => ("An export that nothing calls.", false),
        Code::UnusedHostInterface => ("A hostInterfaces entry that no component uses.", false),
        Code::WorldUnavailable => ("A component's WIT world could not be learned, so its imports were not checked.", false),
        Code::InvalidComponent => ("Invalid WIT in the annotation, or a file that is not a component.", true),
        Code::InvalidSpec => ("A static check of the spec failed (a mistake the host would only find at start).", true),
        Code::CrossEnvironment => ("Environment targeting that the operator would reject.", true),
        Code::Defaulted => ("A default the mutating webhook applies (the patch in the result).", false),
        Code::EgressDenied => ("An egress policy that denies what the component evidently needs.", false),
        Code::PartialPlacement => ("Only some of the eligible hosts can run the workload, and the operator picks one at random (a denial with --require-all-eligible).", false),
    }
}

/// One finding about an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code (see [`rules`]).
    pub code: String,
    /// The component (or `service`) concerned, if any.
    pub component: Option<String>,
    /// The import or export concerned (`ns:pkg/iface@version`, or `label: ns:pkg/iface@v` for
    /// a named import), if any.
    pub import: Option<String>,
    /// The full message, including the fix (the webhook's text).
    pub message: String,
    /// 1-based line: the component's entry when known, else the object's.
    pub line: usize,
}

impl Finding {
    fn from_resolver(f: &ResolverFinding, obj: &InputObject) -> Self {
        Self {
            code: f.code.as_str().to_string(),
            component: f.component.clone(),
            import: f.item.clone(),
            message: f.message.clone(),
            line: obj.line_of(f.component.as_deref()),
        }
    }
}

/// The verdict on one wasmCloud object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    /// Source file (as given, or `<stdin>`).
    pub file: String,
    /// 1-based line where the object starts.
    pub line: usize,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// The namespace it was checked in (`metadata.namespace`, else `--namespace`).
    pub namespace: String,
    /// `metadata.name` (or `generateName`).
    pub name: String,
    /// Whether the validating webhook admits it.
    pub allowed: bool,
    /// The validating webhook's denial message (`null` when allowed).
    pub message: Option<String>,
    /// Findings that deny the object.
    pub violations: Vec<Finding>,
    /// Findings that admit it with a warning, the defaults applied first (code `defaulted`).
    pub warnings: Vec<Finding>,
    /// The RFC 6902 JSONPatch the mutating webhook returns (`[]` when nothing changes).
    pub patch: Value,
    /// The link graph (`--graph`): not part of the JSON report.
    #[serde(skip)]
    pub graph: LinkGraph,
}

/// The components of an object and what provides each import ([`crate::resolve::Link`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkGraph {
    /// Component name, and why its imports are not in the graph when its world is not known.
    pub components: Vec<(String, Option<String>)>,
    /// One per import.
    pub links: Vec<crate::resolve::Link>,
    /// Eligible hosts.
    pub eligible_hosts: usize,
}

impl ObjectResult {
    /// Builds the result of `obj` from both webhooks' answers.
    pub fn new(obj: &InputObject, namespace: &str, eval: &Evaluation) -> Self {
        let str_at = |p: &str| {
            obj.value
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let name = Some(str_at("/metadata/name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| str_at("/metadata/generateName"));
        let (violations, mut warnings) = match &eval.validate.report {
            Some(report) => (
                report
                    .violations
                    .iter()
                    .map(|f| Finding::from_resolver(f, obj))
                    .collect(),
                report
                    .warnings
                    .iter()
                    .map(|f| Finding::from_resolver(f, obj))
                    .collect::<Vec<_>>(),
            ),
            // Not resolved: the object did not decode.
            None if !eval.validate.allowed => (
                vec![Finding {
                    code: INVALID_OBJECT.to_string(),
                    component: None,
                    import: None,
                    message: eval.validate.message.clone().unwrap_or_default(),
                    line: obj.line,
                }],
                Vec::new(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let defaults = eval.notes.iter().map(|n| Finding {
            code: DEFAULTED.to_string(),
            component: None,
            import: None,
            message: n.clone(),
            line: obj.line,
        });
        warnings.splice(0..0, defaults);
        Self {
            file: obj.file.to_string(),
            line: obj.line,
            api_version: str_at("/apiVersion"),
            kind: str_at("/kind"),
            namespace: namespace.to_string(),
            name,
            allowed: eval.validate.allowed,
            message: eval.validate.message.clone(),
            violations,
            warnings,
            patch: serde_json::to_value(&eval.mutate.patch).unwrap_or(Value::Array(vec![])),
            graph: LinkGraph {
                components: eval
                    .worlds
                    .iter()
                    .map(|(name, state)| {
                        let note = match state {
                            crate::resolve::WorldState::Known(_) => None,
                            crate::resolve::WorldState::Unknown(why)
                            | crate::resolve::WorldState::Invalid(why) => Some(why.clone()),
                        };
                        (name.clone(), note)
                    })
                    .collect(),
                links: eval
                    .validate
                    .report
                    .as_ref()
                    .map(|r| r.links.clone())
                    .unwrap_or_default(),
                eligible_hosts: eval
                    .validate
                    .report
                    .as_ref()
                    .map_or(0, |r| r.eligible_hosts),
            },
        }
    }

    /// `Kind namespace/name`.
    pub fn object_label(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// An object that was read but not checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Source file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// `apiVersion` (empty when missing).
    pub api_version: String,
    /// `kind` (empty when missing).
    pub kind: String,
    /// `metadata.name` (empty when missing).
    pub name: String,
    /// Why it was not checked.
    pub reason: String,
}

/// Counts over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects read from the inputs: `allowed + denied + skipped`.
    pub objects: usize,
    /// Checked objects the webhook admits.
    pub allowed: usize,
    /// Checked objects the webhook denies.
    pub denied: usize,
    /// Objects not checked (other kinds; Host objects, which join the inventory).
    pub skipped: usize,
    /// Warnings over all results (defaults included).
    pub warnings: usize,
    /// Input files read.
    pub files: usize,
    /// Hosts in the inventory the objects were checked against.
    pub hosts: usize,
}

/// Name and version of the tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tool {
    /// `wasmgate`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

impl Default for Tool {
    fn default() -> Self {
        Self {
            name: "wasmgate".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The tool.
    pub tool: Tool,
    /// Counts.
    pub summary: Summary,
    /// One entry per checked object, in input order.
    pub results: Vec<ObjectResult>,
    /// Objects read but not checked, in input order.
    pub skipped: Vec<Skipped>,
}

impl CheckReport {
    /// A report over `results` and `skipped`.
    pub fn new(
        results: Vec<ObjectResult>,
        skipped: Vec<Skipped>,
        files: usize,
        hosts: usize,
    ) -> Self {
        let denied = results.iter().filter(|r| !r.allowed).count();
        let summary = Summary {
            objects: results.len() + skipped.len(),
            allowed: results.len() - denied,
            denied,
            skipped: skipped.len(),
            warnings: results.iter().map(|r| r.warnings.len()).sum(),
            files,
            hosts,
        };
        Self {
            version: FORMAT_VERSION,
            tool: Tool::default(),
            summary,
            results,
            skipped,
        }
    }
}
