//! A test-only oracle for wasmgate: it links a Workload the way a wasmCloud v2.7.0 host
//! (`crates/wash-runtime` on wasmtime 47.0.3) does at `workload.start`, and reports whether every
//! component pre-instantiates, or the first error the host would hit.
//!
//! It is never linked into the `wasmgate` binary; tests and benches use it to prove the
//! resolver's verdicts.
//!
//! What [`Oracle::judge`] does, in the host's order (github.com/wasmCloud/wasmCloud at tag
//! v2.7.0, paths under `crates/wash-runtime/src/`):
//!
//! 1. **Compile** each component (`engine/mod.rs` `initialize_workload_component`) and give it a
//!    fresh `Linker` holding the built-in WASI set: `add_wasi_to_linker` (P2 and P3), plus the
//!    wasi:http P2 `types`/`outgoing-handler` and P3 `types`/`client` instances only when the
//!    component imports or exports a name starting with `wasi:http` (`uses_wasi_http`). The
//!    real `wasmtime_wasi` / `wasmtime_wasi_http` 47.0.3 `add_to_linker` functions are called,
//!    so names, versions and function types are the host's.
//! 2. **bind_plugins** (`engine/workload.rs`): `wasi:http` entries listing only
//!    `incoming-handler`/`outgoing-handler`/`handler` are dropped; an entry is required for a
//!    component when the component's world imports or exports every listed interface
//!    (`WitWorld::includes_bidirectional`, versions by `same_package`: unversioned matches
//!    anything, two versions must be equal) and no other single component of the workload
//!    serves it (`served_within_workload`); plugins are tried in id order and claim an entry
//!    when their advertised world includes it the same way; a bound plugin adds its whole
//!    binding package(s) to the component's linker (as its `on_workload_item_bind` does with
//!    bindgen's `add_to_linker`); an entry nothing claims fails with "requested interfaces that
//!    are not available on this host".
//! 3. **link_components** (`engine/workload.rs` `link_components`, `build_export_map`,
//!    `resolve_workload_imports`, `resolve_component_imports`): sibling exports are linked by
//!    exact export name; an imported name exported by two components fails; cycles fail; each
//!    exporter is pre-instantiated when an importer links to it; an import name already defined
//!    in the importer's linker keeps the existing definition (`Linker::instance` fails and the
//!    host skips the link).
//! 4. **instantiate_pre** of every component (wasmtime's type check: exact name, then the
//!    semver-compatible name; instances holding only types need nothing): the HTTP component
//!    at start ([`Stage::InstantiatePre`]), every other one as its first call would
//!    ([`Stage::FirstCall`]).
//!
//! Modelling choices (see also the README of the differential test):
//! - Plugin bindings are stubs: every function of the binding package is a `func_new` (or
//!   `func_new_concurrent` for `async func`) stub that traps, every resource a host resource
//!   type. Like upstream's typed bindings these must exist under the right names and
//!   asyncness; unlike them, parameter types are not checked (the generator never produces a
//!   component whose plugin functions differ in type from the binding).
//! - Step 4 pre-instantiates every component. The real host pre-instantiates at start only the
//!   components something needs at start (a sibling's exporter, the HTTP component when an
//!   incoming-handler entry exists, messaging handlers, which are not modelled); any other
//!   component with a missing import starts and fails at its first call. The oracle reports
//!   that as [`Stage::FirstCall`], a failure.
//! - The HTTP router's `host` config check (`host/http.rs`) is not modelled: entries carry no
//!   config here; callers are assumed to give every wasi:http entry a valid `host`.
//! - A plugin binds every package text in `bindings_wit`, whatever the entry's version. A real
//!   plugin may pick one binding by the entry's version (wasmcloud-postgres 0.1.1-draft or
//!   0.2.0); give such a plugin only the binding it would pick.
//! - Plugins that call component exports (`world_exports`) only bind here. The real
//!   wasmcloud-messaging plugin, with subscriptions configured, also pre-instantiates the
//!   component at start and requires its handler export (`plugin/wasmcloud_messaging/nats.rs`
//!   `on_workload_resolved`); that config-dependent step is not modelled.
//! - The workload `service` is not modelled.

#![forbid(unsafe_code)]

mod host;
mod stubs;
#[cfg(test)]
mod tests;
pub mod wit_text;
mod world;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceType};
use wasmtime::{Config, Engine, OptLevel};

use host::Ctx;
use world::{served_within_workload, Iface, World};

/// One entry of a Workload's `spec.hostInterfaces`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// WIT namespace, e.g. `wasi`.
    pub namespace: String,
    /// WIT package, e.g. `keyvalue`.
    pub package: String,
    /// Interfaces of the package the workload asks for.
    pub interfaces: Vec<String>,
    /// Version; `None` (or a string `semver` cannot parse) means any.
    pub version: Option<String>,
    /// Routing name (`(implements <name>)`), if any.
    pub name: Option<String>,
}

/// One `namespace:package[@version]` with interfaces, as a host's plugin world lists it (and as
/// the heartbeat reports it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WitInterface {
    /// WIT namespace.
    pub namespace: String,
    /// WIT package.
    pub package: String,
    /// Version; `None` means the plugin accepts any version.
    pub version: Option<String>,
    /// Interfaces of the package.
    pub interfaces: Vec<String>,
}

/// A host plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plugin {
    /// Plugin id (plugins are tried in id order, as upstream's `bind_plugins` does).
    pub id: String,
    /// What the plugin advertises it provides (components import these); may be unversioned.
    pub world_imports: Vec<WitInterface>,
    /// What the plugin advertises it calls (components export these).
    pub world_exports: Vec<WitInterface>,
    /// WIT texts the plugin's bindings were generated from, dependencies first. When bound, in
    /// every package here whose `namespace:package` appears in the plugin's `world_imports`,
    /// the interfaces listed there are defined in the component's linker, at the version the
    /// text declares (the "binding version"). Other packages are only dependencies.
    pub bindings_wit: Vec<String>,
    /// Upstream `HostPlugin::supports_named_instances`.
    pub supports_named_instances: bool,
}

/// Where the host would fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The inputs themselves are unusable (e.g. a plugin's bindings WIT does not parse).
    Input,
    /// Compiling a component.
    Compile,
    /// `bind_plugins`.
    BindPlugins,
    /// `link_components` (sibling links, ambiguity, cycles, pre-instantiating exporters).
    LinkComponents,
    /// Pre-instantiating, at start, the component the HTTP router serves (the first component,
    /// in manifest order, exporting a `wasi:http` name, when an entry lists `incoming-handler`
    /// or `handler`; upstream `ResolvedWorkload::resolve` and `host/http.rs`
    /// `on_workload_resolved`).
    InstantiatePre,
    /// Any other component that does not pre-instantiate: the workload starts, and the host
    /// fails when the component is first instantiated (its first call). wasmgate denies these
    /// at admission like the others; the oracle counts them as failures.
    FirstCall,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Input => "input",
            Stage::Compile => "compile",
            Stage::BindPlugins => "bind_plugins",
            Stage::LinkComponents => "link_components",
            Stage::InstantiatePre => "instantiate_pre",
            Stage::FirstCall => "first_call",
        })
    }
}

/// The oracle's verdict on one workload and host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every component pre-instantiates.
    Links,
    /// The first error the host would hit.
    Fails {
        /// Where.
        stage: Stage,
        /// The error chain, as the host would report it (anyhow `{:#}`).
        message: String,
    },
}

impl Verdict {
    /// Whether the workload links.
    pub fn links(&self) -> bool {
        matches!(self, Verdict::Links)
    }
}

fn fail(stage: Stage, message: impl Into<String>) -> Verdict {
    Verdict::Fails {
        stage,
        message: message.into(),
    }
}

/// The oracle: one wasmtime engine configured as the host's, base linkers, and a cache of
/// compiled components.
pub struct Oracle {
    engine: Engine,
    base: Linker<Ctx>,
    base_http: Linker<Ctx>,
    compiled: Mutex<HashMap<Vec<u8>, Component>>,
}

/// Entries above this many compiled components clear the cache.
const CACHE_LIMIT: usize = 4096;

impl Oracle {
    /// An engine with the host's component-model proposals (upstream `EngineBuilder::build`:
    /// component-model async, `map` types, `(implements ..)`), compiled with cranelift at opt
    /// level none (nothing is ever run).
    pub fn new() -> anyhow::Result<Oracle> {
        let mut config = Config::new();
        config.cranelift_opt_level(OptLevel::None);
        config.wasm_component_model_async(true);
        config.wasm_component_model_map(true);
        config.wasm_component_model_implements(true);
        let engine = Engine::new(&config)?;
        let mut base = Linker::new(&engine);
        host::add_wasi_to_linker(&mut base)?;
        let mut base_http = base.clone();
        host::add_http_to_linker(&mut base_http)?;
        Ok(Oracle {
            engine,
            base,
            base_http,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// The engine (to build or inspect components against the same configuration).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn compile(&self, bytes: &[u8]) -> anyhow::Result<Component> {
        if let Some(c) = self.compiled.lock().expect("cache").get(bytes) {
            return Ok(c.clone());
        }
        let c = Component::new(&self.engine, bytes)?;
        let mut cache = self.compiled.lock().expect("cache");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(bytes.to_vec(), c.clone());
        Ok(c)
    }

    /// Judges a workload (`components` as (name, binary) in manifest order, its
    /// `hostInterfaces` entries) on a host with `plugins`.
    pub fn judge(
        &self,
        components: &[(String, Vec<u8>)],
        entries: &[Entry],
        plugins: &[Plugin],
    ) -> Verdict {
        match self.run(components, entries, plugins) {
            Ok(()) => Verdict::Links,
            Err(v) => v,
        }
    }

    fn run(
        &self,
        components: &[(String, Vec<u8>)],
        entries: &[Entry],
        plugins: &[Plugin],
    ) -> Result<(), Verdict> {
        // 1. Compile, and a linker with the built-in WASI set per component.
        let mut items = Vec::with_capacity(components.len());
        for (name, bytes) in components {
            let component = self.compile(bytes).map_err(|e| {
                fail(
                    Stage::Compile,
                    format!("failed to create component '{name}' from bytes: {e:#}"),
                )
            })?;
            let linker = if host::uses_wasi_http(&component) {
                self.base_http.clone()
            } else {
                self.base.clone()
            };
            let world = world_of(&component);
            items.push(Item {
                name: name.clone(),
                component,
                linker,
                world,
            });
        }
        // 2. Plugins.
        bind_plugins(&mut items, entries, plugins)?;
        // 3. Siblings.
        link_components(&mut items)?;
        // 4. Every component pre-instantiates: the HTTP component at start, the others when
        // first called.
        let http = if entries
            .iter()
            .any(|e| entry_iface(e).is_incoming_http_handler())
        {
            items
                .iter()
                .position(|it| host::exports_wasi_http(&it.component))
        } else {
            None
        };
        if let Some(i) = http {
            let it = &items[i];
            it.linker.instantiate_pre(&it.component).map_err(|e| {
                fail(
                    Stage::InstantiatePre,
                    format!("component '{}': {e:#}", it.name),
                )
            })?;
        }
        for (i, it) in items.iter().enumerate() {
            if Some(i) == http {
                continue;
            }
            it.linker
                .instantiate_pre(&it.component)
                .map_err(|e| fail(Stage::FirstCall, format!("component '{}': {e:#}", it.name)))?;
        }
        Ok(())
    }
}

struct Item {
    name: String,
    component: Component,
    linker: Linker<Ctx>,
    world: World,
}

/// Upstream `WorkloadComponent::world` (`engine/workload.rs`): instance imports and exports,
/// merged per `namespace:package@version` (and `(implements ..)` label).
fn world_of(component: &Component) -> World {
    let ty = component.component_type();
    let engine = component.engine();
    let mut w = World::default();
    for (name, ext) in ty.imports(engine) {
        if let ComponentItem::ComponentInstance(_) = ext.ty {
            let iface = match ext.implements {
                Some(id) => {
                    let mut i = Iface::parse(id);
                    i.name = Some(name.to_string());
                    i
                }
                None => Iface::parse(name),
            };
            World::push(&mut w.imports, iface);
        }
    }
    for (name, ext) in ty.exports(engine) {
        if let ComponentItem::ComponentInstance(_) = ext.ty {
            World::push(&mut w.exports, Iface::parse(name));
        }
    }
    w
}

fn entry_iface(e: &Entry) -> Iface {
    Iface {
        namespace: e.namespace.clone(),
        package: e.package.clone(),
        interfaces: e.interfaces.iter().cloned().collect(),
        version: e
            .version
            .as_deref()
            .filter(|v| !v.is_empty())
            .and_then(|v| semver::Version::parse(v).ok()),
        name: e.name.clone().filter(|n| !n.is_empty()),
    }
}

fn plugin_world(p: &Plugin) -> World {
    let conv = |w: &WitInterface| Iface {
        namespace: w.namespace.clone(),
        package: w.package.clone(),
        interfaces: w.interfaces.iter().cloned().collect(),
        version: w
            .version
            .as_deref()
            .and_then(|v| semver::Version::parse(v).ok()),
        name: None,
    };
    World {
        imports: p.world_imports.iter().map(conv).collect(),
        exports: p.world_exports.iter().map(conv).collect(),
    }
}

/// Upstream `other_plugin_serves`.
fn other_plugin_serves(plugins: &[(&Plugin, World)], me: &str, e: &Iface, named: bool) -> bool {
    plugins.iter().any(|(q, w)| {
        q.id != me && q.supports_named_instances == named && w.includes_bidirectional(e)
    })
}

/// Upstream `UnresolvedWorkload::bind_plugins` (`engine/workload.rs`).
fn bind_plugins(items: &mut [Item], entries: &[Entry], plugins: &[Plugin]) -> Result<(), Verdict> {
    // The host serves wasi:http itself: entries listing only its handler interfaces are
    // never bound (a subset check against this unversioned set).
    let http = Iface::parse("wasi:http/incoming-handler,outgoing-handler,handler");
    let wanted: Vec<Iface> = entries
        .iter()
        .map(entry_iface)
        .filter(|e| !http.contains(e))
        .collect();
    let worlds: Vec<(String, World)> = items
        .iter()
        .map(|it| (it.name.clone(), it.world.clone()))
        .collect();
    let mut unmatched: BTreeMap<usize, BTreeSet<Iface>> = BTreeMap::new();
    for (idx, (_, w)) in worlds.iter().enumerate() {
        let required: BTreeSet<Iface> = wanted
            .iter()
            .filter(|e| w.includes_bidirectional(e) && !served_within_workload(e, idx, &worlds))
            .cloned()
            .collect();
        if !required.is_empty() {
            unmatched.insert(idx, required);
        }
    }
    if unmatched.is_empty() {
        return Ok(());
    }

    // Plugins in id order (upstream iterates a BTreeMap of the plugin map).
    let mut sorted: Vec<(&Plugin, World)> = plugins.iter().map(|p| (p, plugin_world(p))).collect();
    sorted.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    sorted.dedup_by(|a, b| a.0.id == b.0.id);
    let ids: HashSet<&str> = sorted.iter().map(|(p, _)| p.id.as_str()).collect();

    for (p, pw) in &sorted {
        let mut bindings: Vec<(usize, BTreeSet<Iface>)> = Vec::new();
        for (idx, required) in &unmatched {
            let mut matching = BTreeSet::new();
            for e in required {
                if let Some(n) = &e.name {
                    if ids.contains(n.as_str()) {
                        if *n == p.id && pw.includes_bidirectional(e) {
                            matching.insert(e.clone());
                        }
                        continue;
                    }
                }
                if pw.includes_bidirectional(e) {
                    let defer = if e.name.is_some() {
                        !p.supports_named_instances && other_plugin_serves(&sorted, &p.id, e, true)
                    } else {
                        p.supports_named_instances && other_plugin_serves(&sorted, &p.id, e, false)
                    };
                    if !defer {
                        matching.insert(e.clone());
                    }
                }
            }
            if !matching.is_empty() {
                bindings.push((*idx, matching));
            }
        }
        if bindings.is_empty() {
            continue;
        }
        let mut named: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
        for (_, m) in &bindings {
            for i in m {
                if let Some(n) = &i.name {
                    named
                        .entry((i.namespace.as_str(), i.package.as_str()))
                        .or_default()
                        .insert(n.as_str());
                }
            }
        }
        for ((ns, pkg), names) in named {
            if names.len() > 1 && !p.supports_named_instances {
                let list: Vec<&str> = names.into_iter().collect();
                return Err(fail(
                    Stage::BindPlugins,
                    format!(
                        "plugin '{}' does not support named instances, but workload requires {} \
                         named entries for {ns}:{pkg} (names: {}). The plugin must implement \
                         supports_named_instances() to handle multiplexed interfaces.",
                        p.id,
                        list.len(),
                        list.join(", ")
                    ),
                ));
            }
        }
        let package = stubs::Package::parse(p).map_err(|e| {
            fail(
                Stage::Input,
                format!("plugin '{}' bindings do not parse: {e:#}", p.id),
            )
        })?;
        for (idx, matching) in bindings {
            package.define(&mut items[idx].linker).map_err(|e| {
                fail(
                    Stage::BindPlugins,
                    format!(
                        "plugin '{}' failed to bind component '{}': {e:#}",
                        p.id, items[idx].name
                    ),
                )
            })?;
            if let Some(u) = unmatched.get_mut(&idx) {
                for i in &matching {
                    u.remove(i);
                }
            }
        }
    }

    for (idx, u) in &unmatched {
        if !u.is_empty() {
            let list: Vec<String> = u.iter().map(ToString::to_string).collect();
            return Err(fail(
                Stage::BindPlugins,
                format!(
                    "workload component {} requested interfaces that are not available on this \
                     host: {{{}}}",
                    items[*idx].name,
                    list.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Upstream `ResolvedWorkload::link_components` and `resolve_workload_imports`.
fn link_components(items: &mut [Item]) -> Result<(), Verdict> {
    let link_fail = |m: String| fail(Stage::LinkComponents, m);
    // build_export_map: instance exports by exact name; a second exporter makes it ambiguous.
    let mut map: HashMap<String, usize> = HashMap::new();
    let mut ambiguous: HashSet<String> = HashSet::new();
    for (idx, it) in items.iter().enumerate() {
        let ty = it.component.component_type();
        for (name, ext) in ty.exports(it.component.engine()) {
            if name == "wasmcloud:wash/plugin" || name.starts_with("wasmcloud:wash/plugin@") {
                continue;
            }
            if !matches!(ext.ty, ComponentItem::ComponentInstance(_)) || ambiguous.contains(name) {
                continue;
            }
            if map.remove(name).is_some() {
                ambiguous.insert(name.to_string());
            } else {
                map.insert(name.to_string(), idx);
            }
        }
    }
    // The dependency graph, with the ambiguity check on every instance import.
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); items.len()];
    for (idx, it) in items.iter().enumerate() {
        let ty = it.component.component_type();
        for (name, ext) in ty.imports(it.component.engine()) {
            if !matches!(ext.ty, ComponentItem::ComponentInstance(_)) {
                continue;
            }
            if ambiguous.contains(name) {
                return Err(link_fail(format!(
                    "component '{}' imports interface '{name}', which is exported by multiple \
                     components in the workload; cannot disambiguate the provider",
                    it.name
                )));
            }
            if let Some(&exp) = map.get(name) {
                if exp != idx {
                    deps[idx].insert(exp);
                }
            }
        }
    }
    let order = topological_order(&deps).map_err(|cycle| {
        let names: Vec<&str> = cycle.iter().map(|i| items[*i].name.as_str()).collect();
        link_fail(format!(
            "failed to determine component processing order - possible circular dependency: \
             circular dependency detected among components: {names:?}"
        ))
    })?;
    for idx in order {
        resolve_component_imports(items, idx, &map)?;
    }
    Ok(())
}

/// Kahn's algorithm; `Err` holds the components left in a cycle.
fn topological_order(deps: &[BTreeSet<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let mut indegree: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut ready: Vec<usize> = (0..deps.len()).filter(|i| indegree[*i] == 0).collect();
    let mut out = Vec::with_capacity(deps.len());
    while let Some(i) = ready.pop() {
        out.push(i);
        for (j, d) in deps.iter().enumerate() {
            if d.contains(&i) {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.push(j);
                }
            }
        }
    }
    if out.len() == deps.len() {
        Ok(out)
    } else {
        Err((0..deps.len()).filter(|i| !out.contains(i)).collect())
    }
}

/// Upstream `resolve_component_imports`: for each instance import another component exports
/// under the exact name, pre-instantiate the exporter and define the importer's expected
/// functions and resources as forwarding shims (here: stubs) in an instance of that name.
fn resolve_component_imports(
    items: &mut [Item],
    idx: usize,
    map: &HashMap<String, usize>,
) -> Result<(), Verdict> {
    let link_fail = |m: String| fail(Stage::LinkComponents, m);
    let component = items[idx].component.clone();
    let engine = component.engine().clone();
    let ty = component.component_type();
    for (import_name, ext) in ty.imports(&engine) {
        let ComponentItem::ComponentInstance(import_ty) = ext.ty else {
            continue;
        };
        let Some(&exp) = map.get(import_name) else {
            // Host-provided (or missing: the pre-instantiation says so).
            continue;
        };
        if exp == idx {
            // Upstream takes the component being linked out of the workload's map, so its
            // own export cannot be found.
            return Err(link_fail(format!(
                "exporting component '{}' for import '{import_name}' not found",
                items[idx].name
            )));
        }
        let (exporter, importer) = pair(items, exp, idx);
        let Some((ComponentItem::ComponentInstance(_), instance_idx)) =
            exporter.component.get_export(None, import_name)
        else {
            continue;
        };
        exporter
            .linker
            .instantiate_pre(&exporter.component)
            .map_err(|e| {
                link_fail(format!(
                    "failed to pre-instantiate during component linking: component '{}': {e:#}",
                    exporter.name
                ))
            })?;
        let Ok(mut instance) = importer.linker.instance(import_name) else {
            // Already defined (by the host or a plugin): upstream skips the link.
            continue;
        };
        for (export_name, export_ty) in import_ty.exports(&engine) {
            match export_ty.ty {
                ComponentItem::ComponentFunc(func_ty) => {
                    let Some((item, _)) = exporter
                        .component
                        .get_export(Some(&instance_idx), export_name)
                    else {
                        continue;
                    };
                    if !matches!(item, ComponentItem::ComponentFunc(_)) {
                        return Err(link_fail("expected function export, found other".into()));
                    }
                    let r = if func_ty.async_() {
                        stubs::concurrent_stub(&mut instance, export_name)
                    } else {
                        stubs::sync_stub(&mut instance, export_name)
                    };
                    r.map_err(|e| link_fail(format!("{e:#}")))?;
                }
                ComponentItem::Resource(_) => {
                    let Some((ComponentItem::Resource(_), _)) = exporter
                        .component
                        .get_export(Some(&instance_idx), export_name)
                    else {
                        continue;
                    };
                    // Upstream skips these names (host resource types it shares as-is).
                    if matches!(
                        export_name,
                        "output-stream"
                            | "input-stream"
                            | "pollable"
                            | "tcp-socket"
                            | "incoming-value-async-body"
                    ) {
                        continue;
                    }
                    // Errors are ignored upstream too.
                    let _ = instance.resource(
                        export_name,
                        ResourceType::host::<ResourceAny>(),
                        |_, _| Ok(()),
                    );
                }
                _ => continue,
            }
        }
    }
    Ok(())
}

/// `(&items[a], &mut items[b])` for `a != b`.
fn pair(items: &mut [Item], a: usize, b: usize) -> (&Item, &mut Item) {
    assert_ne!(a, b);
    if a < b {
        let (l, r) = items.split_at_mut(b);
        (&l[a], &mut r[0])
    } else {
        let (l, r) = items.split_at_mut(a);
        (&r[0], &mut l[b])
    }
}
