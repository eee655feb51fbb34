//! Stub definitions: a bound plugin's binding package(s), and the shims of sibling links.
//!
//! Upstream plugins call bindgen's `add_to_linker` for their whole package in
//! `on_workload_item_bind` (e.g. `crates/wash-runtime/src/plugin/wasi_keyvalue/nats.rs` adds
//! `store`, `atomics` and `batch` at the vendored `0.2.0-draft`). The oracle defines the same
//! instance names with functions that trap and host resource types.

use anyhow::Context as _;
use wasmtime::component::{LinkerInstance, ResourceType};
use wit_parser::{Resolve, TypeDefKind};

use crate::host::Ctx;
use crate::Plugin;

/// The resource type behind every plugin resource stub.
struct PluginResource;

/// One interface to define: its instance name, resources and functions (name, async).
struct Interface {
    instance: String,
    resources: Vec<String>,
    functions: Vec<(String, bool)>,
}

/// The interfaces a plugin defines when bound.
pub(crate) struct Package {
    interfaces: Vec<Interface>,
}

impl Package {
    /// Parses the plugin's `bindings_wit` texts (dependencies first) and keeps, in every
    /// package the plugin's world imports name, the interfaces listed there for that package (the
    /// ones its `on_workload_item_bind` adds: e.g. the keyvalue plugin adds `store`, `atomics`
    /// and `batch` but not `watcher`, which components export).
    pub(crate) fn parse(p: &Plugin) -> anyhow::Result<Package> {
        let mut resolve = Resolve::default();
        let mut pkgs = Vec::new();
        for (i, text) in p.bindings_wit.iter().enumerate() {
            let id = resolve
                .push_str(format!("{}-{i}.wit", p.id), text)
                .with_context(|| format!("bindings text {i}"))?;
            pkgs.push(id);
        }
        // Only what the plugin provides (its world's imports); what it calls on components (its
        // world's exports, e.g. a messaging `handler`) is not in the linker.
        let advertised = |ns: &str, name: &str, iface: &str| {
            p.world_imports.iter().any(|w| {
                w.namespace == ns && w.package == name && w.interfaces.iter().any(|i| i == iface)
            })
        };
        let mut interfaces = Vec::new();
        for pkg in pkgs {
            let package = &resolve.packages[pkg];
            for (name, &iface_id) in &package.interfaces {
                if !advertised(&package.name.namespace, &package.name.name, name) {
                    continue;
                }
                let iface = &resolve.interfaces[iface_id];
                let instance = resolve
                    .id_of(iface_id)
                    .context("a package interface has a name")?;
                let resources = iface
                    .types
                    .iter()
                    .filter(|(_, t)| matches!(resolve.types[**t].kind, TypeDefKind::Resource))
                    .map(|(n, _)| n.clone())
                    .collect();
                let functions = iface
                    .functions
                    .iter()
                    .map(|(n, f)| (n.clone(), f.kind.is_async()))
                    .collect();
                interfaces.push(Interface {
                    instance,
                    resources,
                    functions,
                });
            }
        }
        Ok(Package { interfaces })
    }

    /// Defines every interface in `linker` (fails like bindgen's `add_to_linker` when a name is
    /// already defined: "map entry `..` defined twice").
    pub(crate) fn define(
        &self,
        linker: &mut wasmtime::component::Linker<Ctx>,
    ) -> anyhow::Result<()> {
        for i in &self.interfaces {
            let mut inst = linker.instance(&i.instance)?;
            for r in &i.resources {
                inst.resource(r, ResourceType::host::<PluginResource>(), |_, _| Ok(()))?;
            }
            for (f, is_async) in &i.functions {
                if *is_async {
                    concurrent_stub(&mut inst, f)?;
                } else {
                    sync_stub(&mut inst, f)?;
                }
            }
        }
        Ok(())
    }
}

/// A synchronous function that traps when called.
pub(crate) fn sync_stub(inst: &mut LinkerInstance<'_, Ctx>, name: &str) -> wasmtime::Result<()> {
    inst.func_new(name, |_, _, _, _| {
        Err(wasmtime::Error::msg("oracle stub: never called"))
    })
}

/// An `async func` that traps when called.
pub(crate) fn concurrent_stub(
    inst: &mut LinkerInstance<'_, Ctx>,
    name: &str,
) -> wasmtime::Result<()> {
    inst.func_new_concurrent(name, |_, _, _, _| {
        Box::pin(async { Err(wasmtime::Error::msg("oracle stub: never called")) })
    })
}
