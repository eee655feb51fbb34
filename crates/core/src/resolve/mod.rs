//! The resolution engine: pure, no I/O. Every front end (webhook, reconciler, `check`) calls
//! [`resolve`] with the same inputs and gets the same [`Report`].
//!
//! It models what the wasmCloud v2 host does at `workload.start` (digest section 2.8): sibling
//! links, the built-in WASI set, and plugins bound through `hostInterfaces` on the host the
//! operator picks among the eligible ones.

mod checks;
mod defaults;
mod eligibility;
mod hosts;
pub mod plugins;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use semver::Version;

use crate::crd::{Host, HostInterface, HostWitInterface, WorkloadSpec};
use crate::policy::{Enforcement, Policy};
use crate::wit::{
    host_versions_match, linker_versions_match, parse_version, sibling_versions_match,
    ComponentWorld, InterfaceRef, WorldItemRef,
};

pub use defaults::{apply_defaults, apply_defaults_checked, image_pull_policy_default, Defaulted};
pub use eligibility::{eligible_hosts, Eligibility};
pub use hosts::Hosts;
pub use report::{Code, Finding, Link, Provider, Report};

/// The key under which the workload's service appears among the components.
pub const SERVICE_KEY: &str = "service";

/// What is known about one component's world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldState {
    /// Decoded or parsed; shared with the caches that hold it (a review of a workload whose
    /// worlds are cached copies a pointer per component, not its world).
    Known(Arc<ComponentWorld>),
    /// No source could provide it (no annotation, mapping or registry); imports go unchecked.
    Unknown(String),
    /// The source exists but is broken (invalid WIT, not a component).
    Invalid(String),
}

/// Deployment-level fields the template's checks need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentContext {
    /// `spec.deployPolicy`.
    pub deploy_policy: Option<String>,
    /// Names of `spec.artifacts[]` (targets of `artifact://<name>`).
    pub artifact_names: Vec<String>,
}

/// Everything the resolver looks at.
pub struct ResolveInput<'a> {
    /// The object's namespace (environment rules).
    pub namespace: &'a str,
    /// The Workload spec (for replica sets and deployments, the template's spec).
    pub spec: &'a WorkloadSpec,
    /// Worlds by component name (and [`SERVICE_KEY`] for the service).
    pub worlds: &'a BTreeMap<String, WorldState>,
    /// The inventory snapshot, indexed.
    pub hosts: &'a Hosts,
    /// Configuration.
    pub policy: &'a Policy,
    /// Present for WorkloadDeployments.
    pub deployment: Option<&'a DeploymentContext>,
}

/// A `hostInterfaces` entry with its version parsed once.
struct Entry<'a> {
    index: usize,
    raw: &'a HostInterface,
    version: Option<Version>,
}

impl Entry<'_> {
    fn name(&self) -> Option<&str> {
        self.raw.name.as_deref().filter(|n| !n.is_empty())
    }

    fn is_for(&self, r: &InterfaceRef) -> bool {
        self.raw.namespace == r.package.namespace && self.raw.package == r.package.name
    }

    fn lists(&self, interface: &str) -> bool {
        self.raw.interfaces.iter().any(|i| i == interface)
    }

    fn label(&self) -> String {
        match self.name() {
            Some(n) => format!("hostInterfaces entry {n:?}"),
            None => format!(
                "hostInterfaces entry {}:{}",
                self.raw.namespace, self.raw.package
            ),
        }
    }
}

/// What a host's plugins provide to components (heartbeat `imports`).
fn host_imports(h: &Host) -> &[HostWitInterface] {
    h.status
        .as_ref()
        .and_then(|s| s.imports.as_deref())
        .unwrap_or_default()
}

/// What a host's plugins call on components (heartbeat `exports`).
fn host_exports(h: &Host) -> &[HostWitInterface] {
    h.status
        .as_ref()
        .and_then(|s| s.exports.as_deref())
        .unwrap_or_default()
}

/// The union of interfaces a host offers for `ns:pkg` at a version matching `want`.
fn offered<'h>(
    list: &'h [HostWitInterface],
    r: &InterfaceRef,
    want: &[Option<&Version>],
) -> BTreeSet<&'h str> {
    list.iter()
        .filter(|hw| hw.namespace == r.package.namespace && hw.package == r.package.name)
        .filter(|hw| {
            let hv = hw.version.as_deref().and_then(parse_version);
            want.iter().all(|w| host_versions_match(hv.as_ref(), *w))
        })
        .flat_map(|hw| hw.interfaces.iter().map(String::as_str))
        .collect()
}

/// Whether the hosts offer a version of the package other than `pinned` that the import would
/// link to (so that unpinning the entry helps; for messages).
fn offered_any_other(offered: &BTreeSet<&str>, pinned: &Version, import: Option<&Version>) -> bool {
    offered.iter().any(|v| {
        parse_version(v).is_some_and(|v| &v != pinned && linker_versions_match(import, Some(&v)))
    })
}

/// Versions of `ns:pkg` the hosts offer, for messages (one host per profile is enough: hosts
/// of a profile advertise the same worlds).
fn offered_versions<'h>(hosts: &[&'h Host], r: &InterfaceRef, exports: bool) -> BTreeSet<&'h str> {
    hosts
        .iter()
        .flat_map(|h| {
            if exports {
                host_exports(h)
            } else {
                host_imports(h)
            }
        })
        .filter(|hw| hw.namespace == r.package.namespace && hw.package == r.package.name)
        .map(|hw| hw.version.as_deref().unwrap_or("unversioned"))
        .collect()
}

struct Resolver<'a> {
    input: &'a ResolveInput<'a>,
    entries: Vec<Entry<'a>>,
    /// The eligible hosts, grouped by profile (memoized by the inventory per targeting).
    eligible: Arc<hosts::Eligible>,
    targeting: String,
    used_entries: BTreeSet<usize>,
    /// (importer, exporter) links between components.
    edges: BTreeSet<(String, String)>,
    /// A representative eligible host per distinct profile (release and advertised worlds):
    /// hosts of one profile bind plugins alike, so each is judged once and counted
    /// `eligible.counts[p]` times.
    profiles: Vec<&'a Host>,
    /// Per profile, the entry rule of its release.
    rules: Vec<plugins::EntryRule>,
    /// Per profile and entry (`p * entries.len() + e`), the plugin the profile's hosts bind
    /// the entry to: computed once, as it depends on neither the component nor the import.
    bound: Vec<Vec<plugins::Binding>>,
    /// Per profile: whether every plugin need checked so far links on its hosts.
    runnable: Vec<bool>,
    /// Whether some plugin need narrowed `runnable` (otherwise every host can run it).
    needs_plugins_checked: bool,
    report: Report,
}

/// Resolves every import and export of every component of a workload spec.
pub fn resolve(input: &ResolveInput<'_>) -> Report {
    let targeting = eligibility::targeting(input.spec, input.namespace, input.policy);
    let eligible = input.hosts.eligible(&targeting.key);
    let all = input.hosts.as_slice();
    let profiles: Vec<&Host> = eligible
        .representatives
        .iter()
        .map(|&i| &*all[i as usize])
        .collect();
    let entries: Vec<Entry> = input
        .spec
        .host_interfaces
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, raw)| Entry {
            index,
            raw,
            version: raw.version.as_deref().and_then(parse_version),
        })
        .collect();
    let rules = profiles
        .iter()
        .map(|h| plugins::EntryRule::for_host(h))
        .collect();
    let bound = profiles
        .iter()
        .flat_map(|h| {
            entries
                .iter()
                .map(|e| plugins::bindings(h, e.raw, e.version.as_ref(), input.policy))
        })
        .collect();
    let runnable = vec![true; profiles.len()];
    let mut r = Resolver {
        input,
        entries,
        eligible,
        targeting: targeting.description,
        used_entries: BTreeSet::new(),
        edges: BTreeSet::new(),
        profiles,
        rules,
        bound,
        runnable,
        needs_plugins_checked: false,
        report: Report::default(),
    };
    r.report.eligible_hosts = r.eligible.total();
    if let Some(f) = targeting.rejection {
        r.report.deny(f);
    }
    checks::static_checks(input, &mut r.report);
    r.run();
    r.report
}

impl<'a> Resolver<'a> {
    /// The plugin binding of entry `e` on the hosts of profile `p`.
    fn bound(&self, p: usize, e: usize) -> &[plugins::Binding] {
        &self.bound[p * self.entries.len() + e]
    }

    fn worlds(&self) -> impl Iterator<Item = (&'a str, &'a ComponentWorld)> {
        self.input.worlds.iter().filter_map(|(name, w)| match w {
            WorldState::Known(world) => Some((name.as_str(), &**world)),
            _ => None,
        })
    }

    fn run(&mut self) {
        let mut all_known = true;
        for (name, state) in self.input.worlds {
            match state {
                WorldState::Known(_) => {}
                WorldState::Unknown(why) => {
                    all_known = false;
                    let f = Finding::component(
                        Code::WorldUnavailable,
                        name,
                        format!("component {name:?}: imports not checked: {why}"),
                    );
                    match self.input.policy.unknown_world {
                        Enforcement::Warn => self.report.warn(f),
                        Enforcement::Deny => self.report.deny(f),
                    }
                }
                WorldState::Invalid(why) => {
                    all_known = false;
                    self.report.deny(Finding::component(
                        Code::InvalidComponent,
                        name,
                        format!("component {name:?}: {why}"),
                    ));
                }
            }
        }

        let worlds: Vec<_> = self.worlds().collect();
        for (name, world) in &worlds {
            for import in &world.imports {
                if world.needs_nothing(import) {
                    continue;
                }
                self.resolve_import(name, world, import);
            }
            for export in &world.exports {
                self.check_export(name, world, export);
            }
            self.check_egress(name, world);
        }
        self.check_cycles();
        self.check_required_entries();
        self.check_placement();

        // wasi:http entries only route requests to the host's own server: not a plugin need.
        let needs_plugins = self.entries.iter().any(|e| {
            self.used_entries.contains(&e.index)
                && !(e.raw.namespace == "wasi" && e.raw.package == "http")
        });
        if self.eligible.total() == 0 && !needs_plugins {
            self.report.warn(Finding::new(
                Code::NoEligibleHost,
                format!(
                    "no {} is known right now ({} hosts in the inventory); the workload will wait until one reports",
                    self.targeting,
                    self.input.hosts.len()
                ),
            ));
        }
        if all_known {
            self.check_unused_entries();
        }
    }

    fn sibling_exporters(&self, me: &str, item: &WorldItemRef) -> (Vec<&'a str>, BTreeSet<String>) {
        let mut exact = Vec::new();
        let mut near = BTreeSet::new();
        for (name, world) in self.worlds() {
            // The service's exports are never linked to components (wash-runtime 2.7.0
            // `link_components` collects components' exports only).
            if name == me || name == SERVICE_KEY {
                continue;
            }
            for export in &world.exports {
                // Only instances link between components: a bare function never does
                // (wash-runtime 2.7.0 `engine/workload.rs` `component_exports`).
                match (item, export) {
                    (WorldItemRef::Interface(a), WorldItemRef::Interface(b))
                        if a.same_interface(b) =>
                    {
                        if sibling_versions_match(a.version(), b.version()) {
                            exact.push(name);
                        } else {
                            near.insert(format!(
                                "{name:?} exports {b}, and components link only by the exact name"
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        (exact, near)
    }

    /// The host links a sibling's interface into the importer through shims: a host function
    /// per function and a fresh host resource type per resource the interface lists (wash-runtime
    /// 2.7.0 `engine/workload.rs` `resolve_component_imports`). A resource the interface `use`s
    /// from an interface the host or a plugin provides is then a different type from the one
    /// the importer gets from that provider, and wasmtime refuses the import ("mismatched
    /// resource types"): a component importing `wasi:http/handler` from a sibling never links.
    fn check_shim_resources(
        &mut self,
        me: &str,
        world: &ComponentWorld,
        import: &WorldItemRef,
        exporter: &str,
    ) {
        let Some(r) = import.interface() else {
            return;
        };
        let owners: Vec<InterfaceRef> = match world.resource_uses.get(r) {
            Some(owners) => owners.iter().cloned().collect(),
            // Annotations carry no type information: what wasi:http's handlers are known to use.
            None if r.package.is("wasi", "http")
                && matches!(r.interface.as_str(), "handler" | "incoming-handler") =>
            {
                vec![InterfaceRef::new(
                    "wasi",
                    "http",
                    "types",
                    r.version().cloned(),
                )]
            }
            None => Vec::new(),
        };
        let host_owned: Vec<String> = owners
            .iter()
            .filter(|o| {
                let linked_from_sibling = world.imports.iter().any(|i| i.interface() == Some(*o))
                    && self
                        .sibling_exporters(me, &WorldItemRef::Interface((*o).clone()))
                        .0
                        .len()
                        == 1;
                !linked_from_sibling
            })
            .map(ToString::to_string)
            .collect();
        if host_owned.is_empty() {
            return;
        }
        self.report.deny(
            Finding::component(
                Code::UnresolvedImport,
                me,
                format!(
                    "component {me:?} imports {r} from component {exporter:?}, but {r} uses resources of {}, which the host provides: the host links a sibling's interface through shims with resource types of their own, so the resources cannot match and the link fails (\"mismatched resource types\"); call {exporter:?} through an interface that uses no host resources, or merge the components",
                    host_owned.join(", ")
                ),
            )
            .with_item(r),
        );
    }

    fn builtin(&self, r: &InterfaceRef) -> (bool, BTreeSet<String>) {
        let mut near = BTreeSet::new();
        for b in &self.input.policy.builtins {
            if b.same_interface(r) {
                if linker_versions_match(b.version(), r.version()) {
                    return (true, near);
                }
                near.insert(format!("the host has {b} built in"));
            }
        }
        (false, near)
    }

    /// Judges one import and records what provides it ([`Report::links`]).
    fn resolve_import(&mut self, me: &str, world: &ComponentWorld, import: &WorldItemRef) {
        let before = self.report.violations.len();
        let provider = self.judge_import(me, world, import).unwrap_or_else(|| {
            match self.report.violations.get(before) {
                Some(f) => Provider::Unresolved(f.code),
                None => Provider::Unresolved(Code::UnresolvedImport),
            }
        });
        self.report.links.push(Link {
            component: me.to_string(),
            import: import.to_string(),
            provider,
        });
    }

    /// What provides `import` (`None`: nothing; a violation says why).
    fn judge_import(
        &mut self,
        me: &str,
        world: &ComponentWorld,
        import: &WorldItemRef,
    ) -> Option<Provider> {
        let (mut siblings, mut near) = self.sibling_exporters(me, import);
        // The export map holds the importer's own exports too (wash-runtime 2.7.0
        // `build_export_map`): a name it both imports and exports is ambiguous when another
        // component exports it as well, and has no exporter to link to when none does.
        let exports_itself = me != SERVICE_KEY
            && matches!(import, WorldItemRef::Interface(_))
            && world.exports.contains(import);
        if exports_itself {
            if siblings.is_empty() {
                self.report.deny(
                    Finding::component(
                        Code::UnresolvedImport,
                        me,
                        format!(
                            "component {me:?} imports {import}, which only it exports: the host does not link a component to itself; move the implementation into another component"
                        ),
                    )
                    .with_item(import),
                );
                return None;
            }
            if let Some(name) = self.worlds().map(|(n, _)| n).find(|n| *n == me) {
                siblings.insert(0, name);
            }
        }
        match siblings.as_slice() {
            [one] => {
                self.edges.insert((me.to_string(), one.to_string()));
                self.check_shim_resources(me, world, import, one);
                return Some(Provider::Sibling(one.to_string()));
            }
            [] => {}
            many => {
                let names: Vec<String> = many.iter().map(|n| format!("{n:?}")).collect();
                self.report.deny(
                    Finding::component(
                        Code::AmbiguousProvider,
                        me,
                        format!(
                            "component {me:?} imports {import}, which is exported by multiple components in the workload ({}); the host cannot disambiguate the provider: keep exactly one exporter",
                            names.join(", ")
                        ),
                    )
                    .with_item(import),
                );
                return None;
            }
        }
        let r = match import {
            WorldItemRef::Bare(name) => {
                self.report.deny(
                    Finding::component(
                        Code::UnresolvedImport,
                        me,
                        format!(
                            "component {me:?} imports {name:?}, a bare function or inline interface that no sibling component exports and the host cannot provide: export it from another component of the workload or remove the import"
                        ),
                    )
                    .with_item(import),
                );
                return None;
            }
            WorldItemRef::Named { name, interface } => {
                return self.resolve_named(me, world, name, interface);
            }
            WorldItemRef::Interface(r) => r,
        };
        let (is_builtin, near_builtin) = self.builtin(r);
        if is_builtin {
            return Some(Provider::Builtin);
        }
        near.extend(near_builtin);

        // wasi:http entries are never bound to a plugin (wash-runtime 2.7.0
        // `engine/workload.rs` `bind_plugins` drops them): the host serves wasi:http itself.
        let unnamed: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_for(r) && e.name().is_none())
            .map(|(i, _)| i)
            .collect();
        if unnamed.is_empty() || r.package.is("wasi", "http") {
            self.report_unresolved(me, r, near);
            None
        } else {
            self.check_plugin(me, world, r, &unnamed)
        }
    }

    fn resolve_named(
        &mut self,
        me: &str,
        world: &ComponentWorld,
        label: &str,
        r: &InterfaceRef,
    ) -> Option<Provider> {
        // One name may label entries of several packages: prefer the entry for this package.
        let by_name = |e: &Entry<'_>| e.name() == Some(label);
        let found = self
            .entries
            .iter()
            .position(|e| by_name(e) && e.is_for(r))
            .or_else(|| self.entries.iter().position(by_name));
        let Some(i) = found else {
            self.report.deny(
                Finding::component(
                    Code::NamedEntryMissing,
                    me,
                    format!(
                        "component {me:?} imports {r} as {label:?}, but no hostInterfaces entry is named {label:?}: add {{name: {label}, namespace: {}, package: {}, interfaces: [{}]{}}} with its configuration",
                        r.package.namespace,
                        r.package.name,
                        r.interface,
                        r.version().map(|v| format!(", version: \"{v}\"")).unwrap_or_default()
                    ),
                )
                .with_item(format!("{label}: {r}")),
            );
            return None;
        };
        let entry = &self.entries[i];
        if !entry.is_for(r) {
            self.used_entries.insert(entry.index);
            let msg = format!(
                "component {me:?} imports {r} as {label:?}, but {} is for {}:{}: rename one of them or point the entry at {}",
                entry.label(),
                entry.raw.namespace,
                entry.raw.package,
                r.package.unversioned()
            );
            self.report.deny(
                Finding::component(Code::NamedEntryMissing, me, msg)
                    .with_item(format!("{label}: {r}")),
            );
            return None;
        }
        self.check_plugin(me, world, r, &[i])
    }

    /// An import that only a host plugin can provide, with the entries that could bind one
    /// (the unnamed entries of its package, or the named entry it routes to). Each eligible
    /// host is judged as wash-runtime 2.7.0 judges it at `workload.start`: an entry is bound
    /// for this component only when the component holds the interfaces it lists (all of them,
    /// or any on hosts from [`plugins::ANY_RULE_SINCE`]), the host must have a plugin for each
    /// bound entry, and the bound plugin's whole package then sits in the linker at its binding
    /// version, where the import links by wasmtime's rule.
    fn check_plugin(
        &mut self,
        me: &str,
        world: &ComponentWorld,
        r: &InterfaceRef,
        candidates: &[usize],
    ) -> Option<Provider> {
        for &i in candidates {
            self.used_entries.insert(self.entries[i].index);
        }
        let rules = self.host_rules();
        let bound_somewhere = candidates.iter().any(|&i| {
            let e = &self.entries[i];
            rules
                .iter()
                .any(|rule| plugins::entry_binds(e.raw, e.version.as_ref(), world, *rule))
        });
        if !bound_somewhere {
            self.report_unbound(me, world, r, candidates);
            return None;
        }
        let mut providers = 0;
        let mut linking = BTreeSet::new();
        for p in 0..self.profiles.len() {
            let rule = self.rules[p];
            let links = candidates.iter().any(|&i| {
                let e = &self.entries[i];
                plugins::entry_binds(e.raw, e.version.as_ref(), world, rule)
                    && self.bound(p, i).iter().any(|b| b.provides(r))
            });
            if links {
                providers += 1;
                linking.insert(p);
            } else {
                self.runnable[p] = false;
            }
        }
        self.needs_plugins_checked = true;
        if providers > 0 {
            return Some(Provider::Plugin {
                entry: self.entries[candidates[0]].label(),
                hosts: linking.iter().map(|&p| self.eligible.counts[p]).sum(),
                eligible: self.eligible.total(),
                versions: offered_versions(&self.profiles, r, false)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            });
        }
        let entry = &self.entries[candidates[0]];
        let versions = offered_versions(&self.profiles, r, false);
        let versions_shown = versions.clone();
        let offer = if self.eligible.total() == 0 {
            format!(
                "no Ready host matches ({} hosts in the inventory)",
                self.input.hosts.len()
            )
        } else if versions.is_empty() {
            format!("none of them has a plugin for {}", r.package.unversioned())
        } else {
            format!(
                "they offer {}",
                versions.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        let pkg = match r.version() {
            Some(v) => format!("{}@{v}", r.package.unversioned()),
            None => r.package.unversioned(),
        };
        let what = if entry.raw.interfaces.len() > 1 {
            format!("{pkg} with [{}]", entry.raw.interfaces.join(", "))
        } else {
            pkg
        };
        let pinned = match &entry.version {
            Some(ev) if offered_any_other(&versions_shown, ev, r.version()) => format!(
                "; {} pins version {ev}, and a host binds a versioned entry only to a plugin of exactly that version: remove the version so it binds what the hosts offer",
                entry.label()
            ),
            _ => String::new(),
        };
        self.report.deny(
            Finding::component(
                Code::PluginUnavailable,
                me,
                format!(
                    "component {me:?} imports {r} through {}: none of the {} {} provides {what} ({offer}){pinned}",
                    entry.label(),
                    self.eligible.total(),
                    self.targeting,
                ),
            )
            .with_item(r),
        );
        None
    }

    /// The entry rules of the eligible hosts' releases (the older one when none is eligible).
    fn host_rules(&self) -> Vec<plugins::EntryRule> {
        let mut rules: Vec<plugins::EntryRule> = self.rules.clone();
        rules.sort_by_key(|r| *r == plugins::EntryRule::Any);
        rules.dedup();
        if rules.is_empty() {
            rules.push(plugins::EntryRule::All);
        }
        rules
    }

    /// Every entry the host binds for a component needs a plugin, whether or not the
    /// component's imports go through it (wash-runtime 2.7.0 `engine/workload.rs`
    /// `bind_plugins`): an entry for a built-in interface (`wasi:cli [exit]`), one the component
    /// holds only as an export, or a `wasi:http` entry listing more than the handlers (only
    /// entries within incoming-handler, outgoing-handler and handler are dropped) fails with
    /// "requested interfaces that are not available on this host" where no plugin advertises
    /// every interface it lists. Entries whose interfaces exactly one other component serves
    /// are skipped (`served_within_workload`). Runs last, on an otherwise admitted workload.
    fn check_required_entries(&mut self) {
        if !self.report.allowed() {
            return;
        }
        let worlds: Vec<(&str, &ComponentWorld)> = self.worlds().collect();
        for (me, world) in &worlds {
            for e in &self.entries {
                if plugins::is_http_handler_entry(e.raw)
                    || plugins::served_within_workload(
                        e.raw,
                        e.version.as_ref(),
                        me,
                        world,
                        &worlds,
                    )
                {
                    continue;
                }
                let mut binds_somewhere = false;
                let mut served_somewhere = false;
                for p in 0..self.profiles.len() {
                    let rule = self.rules[p];
                    if !plugins::entry_binds(e.raw, e.version.as_ref(), world, rule) {
                        continue;
                    }
                    binds_somewhere = true;
                    if self.bound(p, e.index).is_empty() {
                        self.runnable[p] = false;
                        self.needs_plugins_checked = true;
                    } else {
                        served_somewhere = true;
                    }
                }
                if binds_somewhere && !served_somewhere {
                    self.used_entries.insert(e.index);
                    self.report.deny(Finding::component(
                        Code::PluginUnavailable,
                        me,
                        format!(
                            "component {me:?} uses every interface {} lists ([{}]), so the host binds the entry to a plugin, and none of the {} {} has a plugin advertising {}:{}{} with all of them: remove the entry if the interfaces are built in or served by another component, or run hosts with such a plugin",
                            e.label(),
                            e.raw.interfaces.join(", "),
                            self.eligible.total(),
                            self.targeting,
                            e.raw.namespace,
                            e.raw.package,
                            e.version
                                .as_ref()
                                .map(|v| format!("@{v}"))
                                .unwrap_or_default(),
                        ),
                    ));
                }
            }
        }
    }

    /// No candidate entry binds for this component on any host: the entry pins another version
    /// than the component imports, or lists interfaces the component does not hold.
    fn report_unbound(
        &mut self,
        me: &str,
        world: &ComponentWorld,
        r: &InterfaceRef,
        candidates: &[usize],
    ) {
        let entry = &self.entries[candidates[0]];
        if let (Some(ev), Some(cv)) = (&entry.version, r.version()) {
            if ev != cv {
                self.report.deny(
                    Finding::component(
                        Code::VersionMismatch,
                        me,
                        format!(
                            "component {me:?} imports {r}, but {} pins version {ev}; the host requires the two to be equal: set the entry's version to {cv}, remove it (an unversioned entry matches any), or rebuild the component against {ev}",
                            entry.label(),
                        ),
                    )
                    .with_item(r),
                );
                return;
            }
        }
        let held = plugins::held_interfaces(world, entry.raw, entry.version.as_ref());
        let missing: Vec<&str> = entry
            .raw
            .interfaces
            .iter()
            .map(String::as_str)
            .filter(|i| !held.contains(i))
            .collect();
        self.report.deny(
            Finding::component(
                Code::InterfaceNotListed,
                me,
                format!(
                    "component {me:?} imports {r}, but {} lists [{}] and the host binds an entry only for a component that imports or exports every interface it lists; {me:?} does not use [{}]: remove them from the entry, or give the component its own entry",
                    entry.label(),
                    entry.raw.interfaces.join(", "),
                    missing.join(", ")
                ),
            )
            .with_item(r),
        );
    }

    /// The operator places a workload on one eligible host at random: say when only some of
    /// them can run it, and deny when each plugin need is met somewhere but never all on one.
    fn check_placement(&mut self) {
        if !self.needs_plugins_checked || self.eligible.total() == 0 || !self.report.allowed() {
            return;
        }
        let n = self.eligible.total();
        let k: usize = (0..self.profiles.len())
            .filter(|&p| self.runnable[p])
            .map(|p| self.eligible.counts[p])
            .sum();
        if k == n {
            return;
        }
        // The first five names of the runnable hosts, in name order (so the message does not
        // depend on the inventory's order): the first five of each runnable profile, merged.
        let all = self.input.hosts.as_slice();
        let mut able: Vec<&str> = self
            .eligible
            .members
            .iter()
            .enumerate()
            .filter(|(p, _)| self.runnable[*p])
            .flat_map(|(_, members)| members.iter().take(5))
            .map(|&i| hosts::host_label(&all[i as usize]))
            .collect();
        able.sort_unstable();
        if k == 0 {
            self.report.deny(Finding::new(
                Code::PluginUnavailable,
                format!(
                    "each plugin the workload needs is offered by some of the {n} {}, but no single host offers all of them, and a workload runs on one host: narrow hostSelector to hosts that offer them all, or add the missing plugins",
                    self.targeting
                ),
            ));
            return;
        }
        let shown: Vec<&str> = able.iter().take(5).copied().collect();
        let more = if k > shown.len() { ", ..." } else { "" };
        let f = Finding::new(
            Code::PartialPlacement,
            format!(
                "only {k} of the {n} {} can run this workload ({}{more}), and the operator picks one of the {n} at random: narrow hostSelector to the hosts that offer its plugins",
                self.targeting,
                shown.join(", ")
            ),
        );
        if self.input.policy.require_all_eligible {
            self.report.deny(f);
        } else {
            self.report.warn(f);
        }
    }

    fn report_unresolved(&mut self, me: &str, r: &InterfaceRef, near: BTreeSet<String>) {
        let named: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.is_for(r))
            .filter_map(|e| e.name())
            .collect();
        let mut msg = format!(
            "component {me:?} imports {r}, which no sibling component exports, the host does not build in, and no hostInterfaces entry declares"
        );
        if !near.is_empty() {
            msg.push_str(&format!(
                " (version mismatch: {})",
                near.into_iter().collect::<Vec<_>>().join("; ")
            ));
        }
        if r.package.is("wasi", "http") {
            msg.push_str(": wasi:http is served by the host itself, so rebuild the component against a wasi:http version the host supports");
        } else if !named.is_empty() {
            msg.push_str(&format!(
                ": every entry for {} is named ({}), and an unnamed import needs an unnamed entry; add one, or import it under one of those names",
                r.package.unversioned(),
                named.join(", ")
            ));
        } else {
            let providers: usize = self
                .profiles
                .iter()
                .zip(&self.eligible.counts)
                .filter(|(h, _)| {
                    offered(host_imports(h), r, &[r.version()]).contains(r.interface.as_str())
                })
                .map(|(_, n)| n)
                .sum();
            let entry = format!(
                "{{namespace: {}, package: {}, interfaces: [{}]{}}}",
                r.package.namespace,
                r.package.name,
                r.interface,
                r.version()
                    .map(|v| format!(", version: \"{v}\""))
                    .unwrap_or_default()
            );
            if providers > 0 {
                msg.push_str(&format!(
                    ": add the hostInterfaces entry {entry} with its configuration ({providers} of the {} {} offer it)",
                    self.eligible.total(),
                    self.targeting
                ));
            } else {
                msg.push_str(&format!(
                    ": add the hostInterfaces entry {entry}, and run hosts with a plugin for it (none of the {} {} offers it)",
                    self.eligible.total(),
                    self.targeting
                ));
            }
        }
        self.report
            .deny(Finding::component(Code::UnresolvedImport, me, msg).with_item(r));
    }

    fn sibling_imports(&self, me: &str, export: &WorldItemRef) -> bool {
        self.worlds().any(|(name, world)| {
            name != me
                && world.imports.iter().any(|i| match (i, export) {
                    (WorldItemRef::Interface(a), WorldItemRef::Interface(b)) => {
                        a.same_interface(b) && sibling_versions_match(a.version(), b.version())
                    }
                    _ => false,
                })
        })
    }

    fn check_export(&mut self, me: &str, world: &ComponentWorld, export: &WorldItemRef) {
        if self.sibling_imports(me, export) {
            return;
        }
        let Some(r) = export.interface() else {
            self.uncalled(me, export, "no sibling component imports it");
            return;
        };
        // The host calls wasi:cli/run on the service.
        if r.package.is("wasi", "cli") && r.interface == "run" {
            return;
        }
        if r.package.is("wasi", "http")
            && matches!(r.interface.as_str(), "incoming-handler" | "handler")
        {
            let entry = self
                .entries
                .iter()
                .find(|e| e.is_for(r) && e.lists(&r.interface));
            match entry {
                Some(e) => {
                    self.used_entries.insert(e.index);
                }
                None => self.uncalled(
                    me,
                    export,
                    &format!(
                        "no hostInterfaces entry for wasi:http lists {}, so the host routes no HTTP requests to it; add {{namespace: wasi, package: http, interfaces: [{}], config: {{host: <hostname>}}}}",
                        r.interface, r.interface
                    ),
                ),
            }
            return;
        }
        // Other exports the host calls through a plugin (e.g. wasmcloud:messaging/handler),
        // through an entry the host binds for this component; an entry that does not bind (it
        // pins another version, or lists interfaces the component lacks) asks for nothing.
        let rules = self.host_rules();
        let entry = self
            .entries
            .iter()
            .find(|e| {
                e.is_for(r)
                    && rules
                        .iter()
                        .any(|rule| plugins::entry_binds(e.raw, e.version.as_ref(), world, *rule))
            })
            .map(|e| e.index);
        let Some(index) = entry else {
            self.uncalled(
                me,
                export,
                "no sibling component imports it and no hostInterfaces entry for its package asks the host to call it",
            );
            return;
        };
        self.used_entries.insert(index);
        let callers = self
            .profiles
            .iter()
            .filter(|h| offered(host_exports(h), r, &[r.version()]).contains(r.interface.as_str()))
            .count();
        if callers == 0 {
            let versions = offered_versions(&self.profiles, r, true);
            let offer = if versions.is_empty() {
                "none of them has a plugin that calls it".to_string()
            } else {
                format!(
                    "they call {} at {}",
                    r.package.unversioned(),
                    versions.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            self.report.deny(
                Finding::component(
                    Code::PluginUnavailable,
                    me,
                    format!(
                        "component {me:?} exports {r} for the host to call, but none of the {} {} calls it ({offer})",
                        self.eligible.total(),
                        self.targeting
                    ),
                )
                .with_item(r),
            );
        }
    }

    fn uncalled(&mut self, me: &str, export: &WorldItemRef, why: &str) {
        self.report.warn(
            Finding::component(
                Code::UncalledExport,
                me,
                format!("component {me:?} exports {export}, but nothing calls it: {why}"),
            )
            .with_item(export),
        );
    }

    fn check_egress(&mut self, me: &str, world: &ComponentWorld) {
        let spec = self.input.spec;
        let local = match &spec.service {
            // The service's world is keyed SERVICE_KEY; its policy lives in spec.service.
            Some(s) if me == SERVICE_KEY => s.local_resources.as_ref(),
            _ => spec
                .components
                .iter()
                .flatten()
                .find(|c| c.name == me)
                .and_then(|c| c.local_resources.as_ref()),
        };
        let empty = |v: Option<&Vec<String>>| v.is_none_or(|v| v.is_empty());
        for import in &world.imports {
            let Some(r) = import.interface() else {
                continue;
            };
            if r.package.is("wasi", "http")
                && r.interface == "outgoing-handler"
                && empty(local.and_then(|l| l.allowed_hosts.as_ref()))
            {
                self.report.warn(
                    Finding::component(
                        Code::EgressDenied,
                        me,
                        format!(
                            "component {me:?} imports {r}, but localResources.allowedHosts is empty, which denies every outbound request; list the hosts it calls (or \"*\")"
                        ),
                    )
                    .with_item(r),
                );
            }
            if r.package.is("wasi", "sockets")
                && r.interface == "ip-name-lookup"
                && empty(local.and_then(|l| l.allowed_ip_name_lookups.as_ref()))
            {
                self.report.warn(
                    Finding::component(
                        Code::EgressDenied,
                        me,
                        format!(
                            "component {me:?} imports {r}, but localResources.allowedIpNameLookups is empty, which fails every lookup; list the names it resolves"
                        ),
                    )
                    .with_item(r),
                );
            }
        }
    }

    fn check_cycles(&mut self) {
        let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, to) in &self.edges {
            graph.entry(from).or_default().push(to);
        }
        if let Some(cycle) = first_cycle(&graph) {
            self.report.deny(Finding::new(
                Code::DependencyCycle,
                format!(
                    "circular dependency detected among components: {}; the host cannot instantiate them: break the cycle",
                    cycle.join(" -> ")
                ),
            ));
        }
    }

    fn check_unused_entries(&mut self) {
        for e in &self.entries {
            if self.used_entries.contains(&e.index) {
                continue;
            }
            self.report.warn(Finding::new(
                Code::UnusedHostInterface,
                format!(
                    "{} is not used: no component imports {} or routes through it; remove it",
                    e.label(),
                    match e.name() {
                        Some(n) => format!("{}:{} as {n:?}", e.raw.namespace, e.raw.package),
                        None => format!("{}:{}", e.raw.namespace, e.raw.package),
                    }
                ),
            ));
        }
    }
}

/// The first cycle of `graph`, searching depth-first from each node in key order, as the path
/// that closes it (`a -> b -> a`). Iterative: `components` comes from the request, and a long
/// sibling chain must not exhaust the stack.
fn first_cycle<'g>(graph: &BTreeMap<&'g str, Vec<&'g str>>) -> Option<Vec<&'g str>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for &start in graph.keys() {
        if done.contains(start) {
            continue;
        }
        // The current path, each node with the index of its next child to follow.
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        let mut on_path: BTreeSet<&str> = BTreeSet::from([start]);
        while let Some(&(node, child)) = stack.last() {
            let next = graph.get(node).and_then(|children| children.get(child));
            let Some(&next) = next else {
                stack.pop();
                on_path.remove(node);
                done.insert(node);
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            if on_path.contains(next) {
                let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                cycle.push(next);
                return Some(cycle);
            }
            if !done.contains(next) {
                on_path.insert(next);
                stack.push((next, 0));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
