//! `wasmgate check`: the admission engine offline, for CI and GitOps policy pipelines.
//!
//! Reads manifests from files, directories and stdin ([`input`]), lets the Host objects among
//! them join the inventory (gator-style) beside `--inventory` files, and runs every
//! `runtime.wasmcloud.dev/v1alpha1` Workload, WorkloadReplicaSet and WorkloadDeployment through
//! [`Admission::evaluate`], the very functions behind `POST /mutate` and `POST /validate`, so
//! verdicts, messages and patches are the webhook's. Other objects are skipped and counted.
//! The report ([`report`]) renders as text, JSON, SARIF or JUnit ([`output`]); `--mutate`
//! prints the objects with the webhook's defaults applied.
//!
//! Exit codes: 0 nothing denied; 1 an object is denied (or, with `--fail-on warning`, has a
//! warning); 2 a usage or input error, with the reason on stderr.

mod cluster;
pub mod input;
pub mod output;
pub mod report;
pub mod schemas;

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::components::{LocalFileSource, WorldResolver, WorldSource};
use crate::crd::{Host, WASMCLOUD_GROUP, WASMCLOUD_VERSION};
use crate::engine::Engine;
use crate::inventory::{load_hosts, SharedInventory};
use crate::policy::{Enforcement, Policy};

use input::InputObject;
pub use output::OutputFormat;
use report::{CheckReport, ObjectResult, Skipped};

/// Exit code: nothing denied.
pub const EXIT_OK: u8 = 0;
/// Exit code: an object is denied (or has a warning, with `--fail-on warning`).
pub const EXIT_DENIED: u8 = 1;
/// Exit code: usage or input error.
pub const EXIT_ERROR: u8 = 2;

/// `--fail-on`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 when an object is denied.
    #[default]
    Error,
    /// Exit 1 when an object is denied or has any warning (defaults included).
    Warning,
    /// Always exit 0 after a complete check (report only).
    Never,
}

/// `--graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Options of `wasmgate check`.
#[derive(Debug, Args)]
#[command(after_help = "\
Exit codes: 0 nothing denied; 1 an object is denied (or has a warning, with --fail-on warning); \
2 usage or input error (unreadable or unparseable file, bad flag), with the reason on stderr.

Examples:
  wasmgate check --inventory hosts.yaml deploy/
  kustomize build overlays/prod | wasmgate check --inventory hosts.yaml -
  wasmgate check --inventory hosts.yaml -o sarif deploy/ > wasmgate.sarif
  wasmgate check --inventory hosts.yaml --mutate deploy/app.yaml > app.defaulted.yaml")]
pub struct CheckArgs {
    /// Files and directories to check (directories are walked for .yaml, .yml and .json; hidden
    /// entries are skipped); `-` reads stdin. Without paths, stdin is read.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Host inventory: Host objects as a List or multi-document YAML/JSON, e.g. the output of
    /// `kubectl get hosts -o yaml` (repeatable). Host objects among the inputs join it too.
    #[arg(long, value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
    /// Also read the hosts of the cluster the kubeconfig points at (`kubectl get hosts`:
    /// hosts.wasmgate.dev, wasmgate's aggregated API), as the webhook sees them.
    #[arg(long)]
    pub cluster: bool,
    /// Map an image reference to a local component file: IMAGE=FILE.wasm (repeatable).
    #[arg(long = "component", value_name = "IMAGE=FILE")]
    pub components: Vec<String>,
    /// Keep component worlds pulled from OCI registries in DIR, by manifest digest (the same
    /// as --cache-dir).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Never use the network: no registry pulls; component worlds come only from annotations
    /// and --component files (the same as --registry-pulls false).
    #[arg(long)]
    pub offline: bool,
    /// Registry options, as for `serve`.
    #[command(flatten)]
    pub registry: crate::components::oci::RegistryArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print each object's link graph instead of the report (`dot` or `mermaid`; the same as
    /// `-o dot` / `-o mermaid`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub graph: Option<GraphFormat>,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Print the input objects with the webhook's defaults applied (a YAML stream) on stdout;
    /// the report then goes to stderr unless --output-file is given.
    #[arg(long)]
    pub mutate: bool,
    /// What makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Namespace for objects that do not set metadata.namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// What to do with a component whose world cannot be learned (as `serve`).
    #[arg(long, value_enum, default_value_t = Enforcement::Warn)]
    pub unknown_world: Enforcement,
    /// Mirror of the operator's -allow-shared-hosts (as `serve`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_shared_hosts: bool,
    /// Deny a workload that only some of its eligible hosts can run (as `serve`).
    #[arg(long)]
    pub require_all_eligible: bool,
}

/// A usage or input error (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// Everything a check runs with, besides the objects.
pub struct Checker {
    admission: Engine,
    hosts: usize,
    default_namespace: String,
}

/// A finished check: the report, and each input object as the mutating webhook leaves it.
pub struct Outcome {
    /// The report.
    pub report: CheckReport,
    /// Every input object in input order, with the webhook's patch applied to checked ones.
    pub mutated: Vec<Value>,
}

impl Outcome {
    /// The exit code under `fail_on`.
    pub fn exit_code(&self, fail_on: FailOn) -> u8 {
        let s = &self.report.summary;
        let failed = match fail_on {
            FailOn::Error => s.denied > 0,
            FailOn::Warning => s.denied > 0 || s.warnings > 0,
            FailOn::Never => false,
        };
        if failed {
            EXIT_DENIED
        } else {
            EXIT_OK
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn skipped(obj: &InputObject, reason: impl Into<String>) -> Skipped {
    Skipped {
        file: obj.file.to_string(),
        line: obj.line,
        api_version: str_at(&obj.value, "/apiVersion").to_string(),
        kind: str_at(&obj.value, "/kind").to_string(),
        name: str_at(&obj.value, "/metadata/name").to_string(),
        reason: reason.into(),
    }
}

pub use crate::inventory::is_host;

/// One Host per name, the last one read winning (Host objects in the inputs override the
/// --inventory files; a file given twice counts once).
pub fn dedupe_hosts(hosts: Vec<Host>) -> Vec<Host> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Host> = hosts
        .into_iter()
        .rev()
        .filter(|h| {
            let name = h.metadata.name.clone().unwrap_or_default();
            name.is_empty() || seen.insert(name)
        })
        .collect();
    out.reverse();
    out
}

/// The Host objects among `objects`, decoded as the inventory loader decodes them (a
/// malformed one is an input error).
pub fn input_hosts(objects: &[InputObject]) -> Result<Vec<Host>, CheckError> {
    objects
        .iter()
        .filter(|o| is_host(&o.value))
        .map(|o| {
            serde_json::from_value::<Host>(o.value.clone()).map_err(|e| {
                CheckError(format!(
                    "{}:{}: Host {:?}: {e}",
                    o.file,
                    o.line,
                    str_at(&o.value, "/metadata/name")
                ))
            })
        })
        .collect()
}

impl Checker {
    /// A checker over `hosts`, with worlds from `sources` (after the annotation).
    pub fn new(
        hosts: Vec<Host>,
        sources: Vec<Arc<dyn WorldSource>>,
        policy: Policy,
        default_namespace: impl Into<String>,
    ) -> Self {
        let count = hosts.len();
        Self {
            admission: Engine::new(
                Arc::new(WorldResolver::new(sources)),
                Arc::new(SharedInventory::new(hosts)),
                Arc::new(policy),
            ),
            hosts: count,
            default_namespace: default_namespace.into(),
        }
    }

    /// Checks `objects` (Host objects among them are expected in the checker's hosts already,
    /// see [`input_hosts`]); `files` is the number of input files, for the summary.
    pub async fn check(&self, objects: Vec<InputObject>, files: usize) -> Outcome {
        let mut results = Vec::new();
        let mut skips = Vec::new();
        let mut mutated = Vec::with_capacity(objects.len());
        for obj in objects {
            let api_version = str_at(&obj.value, "/apiVersion");
            let kind = str_at(&obj.value, "/kind");
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            if !obj.value.is_object() || api_version.is_empty() || kind.is_empty() {
                skips.push(skipped(
                    &obj,
                    "not a Kubernetes object (no apiVersion and kind)",
                ));
            } else if is_host(&obj.value) {
                skips.push(skipped(&obj, "Host: added to the inventory"));
            } else if group != WASMCLOUD_GROUP {
                skips.push(skipped(&obj, "not a wasmCloud workload kind"));
            } else if version != WASMCLOUD_VERSION {
                skips.push(skipped(
                    &obj,
                    format!("{api_version} is not a version wasmgate checks ({WASMCLOUD_GROUP}/{WASMCLOUD_VERSION})"),
                ));
            } else {
                let namespace = Some(str_at(&obj.value, "/metadata/namespace"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&self.default_namespace)
                    .to_string();
                let kind = kind.to_string();
                let evaluation = self
                    .admission
                    .evaluate(group, &kind, &namespace, obj.value.clone())
                    .await;
                match evaluation {
                    None => skips.push(skipped(
                        &obj,
                        format!("{kind} is not a kind wasmgate checks (Workload, WorkloadReplicaSet, WorkloadDeployment)"),
                    )),
                    Some(eval) => {
                        let result = ObjectResult::new(&obj, &namespace, &eval);
                        let mut value = obj.value.clone();
                        if !eval.mutate.patch.is_empty() {
                            // The webhook's patch applies to the object it was computed from.
                            let _ = json_patch::patch(&mut value, &eval.mutate.patch);
                        }
                        results.push(result);
                        mutated.push(value);
                        continue;
                    }
                }
            }
            mutated.push(obj.value);
        }
        Outcome {
            report: CheckReport::new(results, skips, files, self.hosts),
            mutated,
        }
    }
}

/// The objects as a YAML stream (`---` before each document).
pub fn yaml_stream(objects: &[Value]) -> String {
    let mut out = String::new();
    for obj in objects {
        out.push_str("---\n");
        match serde_saphyr::to_string(obj) {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("# cannot serialize this object: {e}\n")),
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Loads the inventory files, the component mapping and the inputs, and checks them.
/// `stdin` is read for `-` (or when `args.paths` is empty).
pub async fn run(args: &CheckArgs, stdin: &mut dyn Read) -> Result<Outcome, CheckError> {
    let files: HashMap<String, PathBuf> =
        LocalFileSource::parse_mapping(&args.components).map_err(CheckError)?;
    for (image, path) in &files {
        if !path.is_file() {
            return Err(CheckError(format!(
                "--component {image}={}: no such file",
                path.display()
            )));
        }
    }
    let mut hosts = Vec::new();
    for path in &args.inventory {
        hosts.extend(load_hosts(path).map_err(|e| CheckError(e.to_string()))?);
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.paths.clone()
    };
    let sources = input::collect(&paths).map_err(|e| CheckError(e.to_string()))?;
    let objects = input::load(&sources, stdin).map_err(|errors| {
        CheckError(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\nerror: "),
        )
    })?;
    if args.cluster {
        hosts.extend(cluster::cluster_hosts().await?);
    }
    hosts.extend(input_hosts(&objects)?);
    let hosts = dedupe_hosts(hosts);

    // World sources in the webhook's order: the annotation (built in), --component files, then
    // OCI registries unless --offline.
    let mut registry = args.registry.clone();
    if let Some(dir) = &args.cache {
        registry.cache_dir = Some(dir.clone());
    }
    if args.offline {
        registry.registry_pulls = false;
    }
    let mut world_sources: Vec<Arc<dyn WorldSource>> = vec![Arc::new(LocalFileSource::new(files))];
    if let Some(oci) = registry
        .source()
        .map_err(|e| CheckError(format!("{e:#}")))?
    {
        world_sources.push(Arc::new(oci));
    }
    let policy = Policy {
        unknown_world: args.unknown_world,
        allow_shared_hosts: args.allow_shared_hosts,
        require_all_eligible: args.require_all_eligible,
        pin_digests: registry.pin_digests,
        ..Policy::default()
    };
    let checker = Checker::new(hosts, world_sources, policy, args.namespace.clone());
    let file_count = sources.len();
    Ok(checker.check(objects, file_count).await)
}

fn write_all(mut w: impl Write, text: &str) -> std::io::Result<()> {
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        // `wasmgate check ... | head` closes the pipe early: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `wasmgate check`: runs, prints, and returns the exit code.
pub fn main(args: CheckArgs) -> ExitCode {
    ExitCode::from(execute(&args))
}

fn execute(args: &CheckArgs) -> u8 {
    let fail = |message: &str| {
        eprintln!("error: {message}");
        EXIT_ERROR
    };
    let reads_stdin = args.paths.is_empty() || args.paths.iter().any(|p| p.as_os_str() == "-");
    if reads_stdin && std::io::stdin().is_terminal() {
        return fail(if args.paths.is_empty() {
            "no input: give files or directories to check, or pipe manifests into - (stdin)"
        } else {
            "- reads manifests from stdin, which is a terminal: pipe them in"
        });
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let mut stdin = std::io::stdin().lock();
    let outcome = match runtime.block_on(run(args, &mut stdin)) {
        Ok(o) => o,
        Err(e) => return fail(&e.0),
    };
    if outcome.report.summary.hosts == 0
        && outcome.report.results.iter().any(|r| !r.allowed)
        && args.inventory.is_empty()
        && !args.cluster
    {
        eprintln!(
            "warning: no hosts (give --inventory or Host objects in the input): every plugin import is reported as unavailable"
        );
    }
    let code = outcome.exit_code(args.fail_on);
    let format = match args.graph {
        Some(GraphFormat::Dot) => OutputFormat::Dot,
        Some(GraphFormat::Mermaid) => OutputFormat::Mermaid,
        None => args.output,
    };
    let rendered = match output::render(&outcome.report, format, code) {
        Ok(text) => text,
        Err(e) => return fail(&format!("cannot serialize the report: {e}")),
    };
    let written = if let Some(path) = &args.output_file {
        std::fs::write(path, &rendered).map_err(|e| format!("cannot write {}: {e}", path.display()))
    } else if args.mutate {
        write_all(std::io::stderr().lock(), &rendered).map_err(|e| e.to_string())
    } else {
        write_all(std::io::stdout().lock(), &rendered)
            .map_err(|e| format!("cannot write the report: {e}"))
    };
    if let Err(e) = written {
        return fail(&e);
    }
    if args.mutate {
        if let Err(e) = write_all(std::io::stdout().lock(), &yaml_stream(&outcome.mutated)) {
            return fail(&format!("cannot write the objects: {e}"));
        }
    }
    code
}
