//! Turning a component binary or WIT text into a [`ComponentWorld`].

use std::collections::HashMap;

use wit_parser::{
    AstItem, Interface, InterfaceId, PackageName, Resolve, Type, TypeDefKind, TypeId, TypeOwner,
    UnresolvedPackage, UnresolvedPackageGroup, World, WorldItem, WorldKey,
};

use super::{ComponentWorld, InterfaceRef, WorldItemRef};

/// Why a component's world could not be learned.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WitError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly binary (bad magic number)")]
    NotWasm,
    /// A core module was given where a component is needed.
    #[error("a core WebAssembly module, not a component (build it with wasm-tools component new or a component toolchain)")]
    CoreModule,
    /// The binary encodes a WIT package, not a component.
    #[error("a WIT package encoded as wasm, not a component")]
    WitPackage,
    /// The component's type information could not be decoded.
    #[error("corrupt component: {0}")]
    Corrupt(String),
    /// WIT text that does not parse.
    #[error("invalid WIT: {0}")]
    InvalidWit(String),
    /// WIT text without a world.
    #[error("the WIT text defines no world; describe the component as `world <name> {{ import ...; export ...; }}`")]
    NoWorld,
    /// WIT text with several worlds in its main package.
    #[error("the WIT text defines {0} worlds ({1}); keep exactly one")]
    AmbiguousWorld(usize, String),
    /// An `include` of a package whose definition was not given.
    #[error("world includes {0}, whose definition is not in the WIT text; inline its imports or add the package")]
    UnresolvedInclude(String),
    /// wit-parser or wit-component panicked on the input (a bug of theirs): refused rather
    /// than judged.
    #[error("{0} failed on this input ({1}); it cannot be checked")]
    ParserPanicked(&'static str, String),
}

/// Runs a wit-parser / wit-component call, turning a panic inside it into
/// [`WitError::ParserPanicked`]: their input is request input, and two of their panics have been
/// found by fuzzing already (see [`check_feature_gates`] and [`parse_world_text`]). The process's
/// panic hook still reports the panic.
fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T, WitError>) -> Result<T, WitError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(WitError::ParserPanicked(what, message))
    })
}

/// Decodes the world of a component binary with wit-component.
pub fn decode_component(bytes: &[u8]) -> Result<ComponentWorld, WitError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(WitError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(WitError::CoreModule);
    }
    check_section_sizes(bytes)?;
    guarded("wit-component", || match wit_component::decode(bytes) {
        Ok(wit_component::DecodedWasm::Component(resolve, world)) => {
            Ok(from_resolved(&resolve, &resolve.worlds[world]))
        }
        Ok(wit_component::DecodedWasm::WitPackage(..)) => Err(WitError::WitPackage),
        Err(e) => Err(WitError::Corrupt(format!("{e:#}"))),
    })
}

/// Walks every section of `bytes`, nested modules and components included, and refuses the
/// binary if any section claims more bytes than the binary has.
///
/// wit-parser 0.263 decodes an in-memory binary through its streaming reader
/// (`decoding.rs`, `ComponentInfo::from_reader`), which zero-fills a buffer of whatever size the
/// next section header claims before reading it. A 19-byte component whose first section claims
/// 3 GB therefore cost 3 GB and 2.5 s (found by fuzzing). Parsed here with the whole binary in
/// hand, such a size is an end-of-file error that costs nothing; once every size fits, the reader
/// never asks for more than the binary holds. Every binary refused here fails wit-parser's own
/// parse of the same bytes too, so no verdict changes.
fn check_section_sizes(bytes: &[u8]) -> Result<(), WitError> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        payload.map_err(|e| WitError::Corrupt(e.to_string()))?;
    }
    Ok(())
}

/// Parses WIT text describing one component world (the `wit.wasmgate.dev/<component>`
/// annotation).
///
/// The text may be self-contained (with nested `package ns:pkg { ... }` definitions of what it
/// uses), in which case it is fully resolved; or it may name foreign interfaces without defining
/// them, which is the common case for an annotation, and then the references are taken as written.
pub fn parse_world_text(text: &str) -> Result<ComponentWorld, WitError> {
    check_feature_gates(text)?;
    // wit-parser 0.263 reads the empty block comment `/**/` as a doc comment and then unwraps
    // the `*/` it expects after `/**` (`ast/resolve.rs`, `docs`): a panic (found by fuzzing).
    // `/* */` is the same empty comment.
    let text = text.replace("/**/", "/* */");
    guarded("wit-parser", || parse_world(&text))
}

fn parse_world(text: &str) -> Result<ComponentWorld, WitError> {
    let group = UnresolvedPackageGroup::parse("annotation.wit", text)
        .map_err(|(map, e)| WitError::InvalidWit(e.render(&map)))?;
    let main_worlds = group.main.worlds.len();
    match main_worlds {
        0 => return Err(WitError::NoWorld),
        1 => {}
        n => {
            let names: Vec<&str> = group
                .main
                .worlds
                .iter()
                .map(|(_, w)| w.name.as_str())
                .collect();
            return Err(WitError::AmbiguousWorld(n, names.join(", ")));
        }
    }
    let mut resolve = Resolve::default();
    match resolve.push_group(group.clone()) {
        Ok(pkg) => {
            let world = resolve
                .select_world(&[pkg], None)
                .map_err(|e| WitError::InvalidWit(format!("{e:#}")))?;
            Ok(from_resolved(&resolve, &resolve.worlds[world]))
        }
        // Missing foreign packages are expected: read the references as written. Any other
        // error (a type mismatch inside the text, say) is the author's to fix.
        Err(e) if group.main.foreign_deps.is_empty() => Err(WitError::InvalidWit(e.to_string())),
        Err(_) => from_unresolved(&group.main),
    }
}

/// Refuses feature-gate attributes that no item may carry, before wit-parser sees them.
///
/// wit-parser 0.263 validates the attributes of an item that names a foreign package (`import
/// wasi:io/streams@0.2.6;`, `use wasi:io/poll.{pollable};`) with an `unwrap()`
/// (`ast/resolve.rs`, `populate_foreign_deps`): `@deprecated(version = 0.2.0)` alone on such an
/// import panics instead of failing (found by fuzzing, `fuzz/fuzz_targets/wit_annotation.rs`).
/// An annotation is request input, so the same rules are checked here first, on every group of
/// attributes: at most one each of `@since`, `@unstable` and `@deprecated`, not both `@since`
/// and `@unstable`, and `@deprecated` only with one of them. wit-parser refuses all of these
/// wherever else they appear, so no text it accepts is refused here.
fn check_feature_gates(text: &str) -> Result<(), WitError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    // The attributes of the group being read (since, unstable, deprecated), and where it starts.
    let mut group: [usize; 3] = [0; 3];
    let mut group_at = 0;
    let check = |group: &[usize; 3], at: usize| -> Result<(), WitError> {
        let [since, unstable, deprecated] = *group;
        let problem = if since > 1 {
            "cannot specify @since twice"
        } else if unstable > 1 {
            "cannot specify @unstable twice"
        } else if deprecated > 1 {
            "cannot specify @deprecated twice"
        } else if since == 1 && unstable == 1 {
            "cannot specify both @since and @unstable"
        } else if deprecated == 1 && since == 0 && unstable == 0 {
            "@deprecated needs @since or @unstable on the same item"
        } else {
            return Ok(());
        };
        let line = text.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        Err(WitError::InvalidWit(format!("line {line}: {problem}")))
    };
    // Skips whitespace and comments (block comments nest, as in wit-parser's lexer).
    let skip_trivia = |mut i: usize| -> usize {
        loop {
            match bytes.get(i..) {
                Some([b, ..]) if b.is_ascii_whitespace() => i += 1,
                Some([b'/', b'/', ..]) => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                Some([b'/', b'*', ..]) => {
                    let mut depth = 0usize;
                    while i < bytes.len() {
                        match &bytes[i..] {
                            [b'/', b'*', ..] => {
                                depth += 1;
                                i += 2;
                            }
                            [b'*', b'/', ..] => {
                                depth -= 1;
                                i += 2;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => i += 1,
                        }
                    }
                }
                _ => return i,
            }
        }
    };
    // Skips a string literal starting at `i` (a `"`), with its escapes.
    let skip_string = |mut i: usize| -> usize {
        i += 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        i
    };
    loop {
        i = skip_trivia(i);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => {
                check(&group, group_at)?;
                group = [0; 3];
                i = skip_string(i);
            }
            b'@' => {
                // An attribute (`@name(...)`, the name possibly `%`-escaped), or a version.
                let start = skip_trivia(i + 1);
                let name_start = start + usize::from(bytes.get(start) == Some(&b'%'));
                let mut end = name_start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'-')
                {
                    end += 1;
                }
                let slot = match &text[name_start..end] {
                    "since" => Some(0),
                    "unstable" => Some(1),
                    "deprecated" => Some(2),
                    "external-id" => None,
                    _ => {
                        // A version (`@0.2.0`) ends the group.
                        check(&group, group_at)?;
                        group = [0; 3];
                        i += 1;
                        continue;
                    }
                };
                if group == [0; 3] {
                    group_at = i;
                }
                if let Some(slot) = slot {
                    group[slot] += 1;
                }
                // The arguments, up to the closing parenthesis.
                i = skip_trivia(end);
                if bytes.get(i) == Some(&b'(') {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b')' {
                        i = if bytes[i] == b'"' {
                            skip_string(i)
                        } else {
                            i + 1
                        };
                    }
                    i += 1;
                }
            }
            _ => {
                check(&group, group_at)?;
                group = [0; 3];
                i += 1;
            }
        }
    }
    check(&group, group_at)
}

fn interface_ref(name: &PackageName, interface: &str) -> InterfaceRef {
    InterfaceRef::new(&name.namespace, &name.name, interface, name.version.clone())
}

/// Whether an interface holds no functions and no resources, so that an import of it needs no
/// definition in the linker.
fn holds_only_types(iface: &Interface, kind: impl Fn(TypeId) -> Option<bool>) -> bool {
    iface.functions.is_empty() && iface.types.values().all(|t| kind(*t) == Some(false))
}

/// Resources the host's sibling shims leave alone (wash-runtime 2.7.0 `engine/workload.rs`
/// `resolve_component_imports` skips these names when it links a sibling's interface).
const SHIM_SKIPPED_RESOURCES: [&str; 5] = [
    "output-stream",
    "input-stream",
    "pollable",
    "tcp-socket",
    "incoming-value-async-body",
];

/// The interfaces owning resources that interface `id` uses (`use other.{res}`), other than
/// itself and the resources the host's sibling shims skip.
fn foreign_resource_owners(resolve: &Resolve, id: InterfaceId) -> Vec<InterfaceId> {
    let mut owners = Vec::new();
    for ty in resolve.interfaces[id].types.values() {
        // Follow `use` aliases to the defining type.
        let mut target = *ty;
        while let Some(TypeDefKind::Type(Type::Id(next))) =
            resolve.types.get(target).map(|t| &t.kind)
        {
            target = *next;
        }
        let Some(def) = resolve.types.get(target) else {
            continue;
        };
        let skipped = def
            .name
            .as_deref()
            .is_some_and(|n| SHIM_SKIPPED_RESOURCES.contains(&n));
        if let (TypeDefKind::Resource, TypeOwner::Interface(owner), false) =
            (&def.kind, def.owner, skipped)
        {
            if owner != id && !owners.contains(&owner) {
                owners.push(owner);
            }
        }
    }
    owners
}

fn from_resolved(resolve: &Resolve, world: &World) -> ComponentWorld {
    let iface_ref = |id: InterfaceId| {
        let iface = &resolve.interfaces[id];
        let pkg = iface.package?;
        let name = iface.name.as_deref()?;
        Some(interface_ref(&resolve.packages[pkg].name, name))
    };
    let mut out = convert_world(world, iface_ref);
    for (key, item) in &world.imports {
        if let (WorldKey::Interface(_), WorldItem::Interface { id, .. }) = (key, item) {
            let is_resource = |t: TypeId| {
                Some(matches!(
                    resolve.types.get(t)?.kind,
                    TypeDefKind::Resource | TypeDefKind::Unknown
                ))
            };
            if holds_only_types(&resolve.interfaces[*id], is_resource) {
                if let Some(r) = iface_ref(*id) {
                    out.types_only.insert(r);
                }
            }
            let owners: std::collections::BTreeSet<InterfaceRef> =
                foreign_resource_owners(resolve, *id)
                    .into_iter()
                    .filter_map(&iface_ref)
                    .collect();
            if let (false, Some(r)) = (owners.is_empty(), iface_ref(*id)) {
                out.resource_uses.insert(r, owners);
            }
        }
    }
    out
}

fn convert_world(
    world: &World,
    iface_ref: impl Fn(InterfaceId) -> Option<InterfaceRef>,
) -> ComponentWorld {
    let convert = |items: &mut dyn Iterator<Item = (&WorldKey, &WorldItem)>| {
        items
            .filter_map(|(key, item)| world_item(key, item, &iface_ref))
            .collect()
    };
    ComponentWorld::new(
        convert(&mut world.imports.iter()),
        convert(&mut world.exports.iter()),
    )
}

fn from_unresolved(pkg: &UnresolvedPackage) -> Result<ComponentWorld, WitError> {
    let mut foreign: HashMap<InterfaceId, InterfaceRef> = HashMap::new();
    for (pkg_name, items) in &pkg.foreign_deps {
        for (iface_name, (item, _)) in items {
            match item {
                AstItem::Interface(id) => {
                    foreign.insert(*id, interface_ref(pkg_name, iface_name));
                }
                AstItem::World(_) => {
                    return Err(WitError::UnresolvedInclude(format!(
                        "{pkg_name}/{iface_name}"
                    )))
                }
            }
        }
    }
    let Some((_, world)) = pkg.worlds.iter().next() else {
        return Err(WitError::NoWorld);
    };
    let iface_ref = |id: InterfaceId| {
        if let Some(r) = foreign.get(&id) {
            return Some(r.clone());
        }
        let iface = pkg.interfaces.get(id)?;
        Some(interface_ref(&pkg.name, iface.name.as_deref()?))
    };
    if !world.includes.is_empty() {
        return Err(WitError::UnresolvedInclude(format!(
            "another world (in world {})",
            world.name
        )));
    }
    Ok(convert_world(world, iface_ref))
}

fn world_item(
    key: &WorldKey,
    item: &WorldItem,
    iface_ref: &impl Fn(InterfaceId) -> Option<InterfaceRef>,
) -> Option<WorldItemRef> {
    match item {
        WorldItem::Interface { id, .. } => match (key, iface_ref(*id)) {
            (WorldKey::Interface(_), Some(r)) => Some(WorldItemRef::Interface(r)),
            (WorldKey::Name(label), Some(r)) => Some(WorldItemRef::Named {
                name: label.clone(),
                interface: r,
            }),
            (WorldKey::Name(label), None) => Some(WorldItemRef::Bare(label.clone())),
            (WorldKey::Interface(_), None) => None,
        },
        WorldItem::Function(f) => Some(WorldItemRef::Bare(f.name.clone())),
        WorldItem::Type { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_with_foreign_references() {
        let world = parse_world_text(
            r#"package acme:api;
            world api {
              import wasi:keyvalue/store@0.2.0-draft;
              import orders-db: wasmcloud:postgres/query@0.2.0;
              export wasi:http/incoming-handler@0.2.0;
            }"#,
        )
        .unwrap();
        assert_eq!(
            world.imports,
            vec![
                WorldItemRef::Interface("wasi:keyvalue/store@0.2.0-draft".parse().unwrap()),
                WorldItemRef::Named {
                    name: "orders-db".into(),
                    interface: "wasmcloud:postgres/query@0.2.0".parse().unwrap()
                },
            ]
        );
        assert_eq!(
            world.exports,
            vec![WorldItemRef::Interface(
                "wasi:http/incoming-handler@0.2.0".parse().unwrap()
            )]
        );
    }

    #[test]
    fn self_contained_annotation_resolves() {
        let world = parse_world_text(
            r#"package acme:app;
            interface greet { hello: func() -> string; }
            world app { export greet; import log: func(msg: string); }"#,
        )
        .unwrap();
        assert_eq!(world.imports, vec![WorldItemRef::Bare("log".into())]);
        assert_eq!(
            world.exports,
            vec![WorldItemRef::Interface("acme:app/greet".parse().unwrap())]
        );
    }

    #[test]
    fn resources_used_from_other_interfaces_and_types_only_imports() {
        let world = parse_world_text(
            r#"package acme:app@0.1.0;
            interface types { resource request; enum code { a, b } }
            interface codes { use types.{code}; }
            interface handler { use types.{request}; handle: func(r: request); }
            world w { import handler; import codes; }"#,
        )
        .unwrap();
        let handler: InterfaceRef = "acme:app/handler@0.1.0".parse().unwrap();
        let types: InterfaceRef = "acme:app/types@0.1.0".parse().unwrap();
        let codes: InterfaceRef = "acme:app/codes@0.1.0".parse().unwrap();
        assert_eq!(
            world.resource_uses.get(&handler),
            Some(&[types.clone()].into())
        );
        assert!(world.types_only.contains(&codes), "{world:?}");
        // `types` defines a resource: an import of it needs a definition.
        assert!(!world.types_only.contains(&types), "{world:?}");
    }

    #[test]
    fn invalid_wit_is_reported() {
        let err = parse_world_text("package a:b; world w { import }").unwrap_err();
        assert!(matches!(err, WitError::InvalidWit(_)), "{err}");
        assert_eq!(
            parse_world_text("package a:b;").unwrap_err(),
            WitError::NoWorld
        );
        assert!(matches!(
            parse_world_text("package a:b; world x {} world y {}").unwrap_err(),
            WitError::AmbiguousWorld(2, _)
        ));
    }

    /// Found by `fuzz/fuzz_targets/wit_annotation.rs` (5 minutes, 2026-12-05): wit-parser 0.263
    /// panics on the empty block comment `/**/` (it reads it as a doc comment and unwraps the
    /// missing `*/`). The crashing input, as the fuzzer wrote it, and the smallest one: each is
    /// read as if the comment were `/* */`.
    #[test]
    fn an_empty_block_comment_is_a_comment_not_a_panic() {
        let crash = "package example:hello;\nworld ho {/**///import value/atomios@0.3.0-draft;\n  import wasi:logging/ams@0.2.6;\n  export waraft;\n  import wasi:logging/ams@0.2.6;\n  export wasi:http/incoming-handler@0.2.0;\n}\n";
        assert_eq!(
            parse_world_text(crash),
            parse_world_text(&crash.replace("/**/", "/* */"))
        );
        let world =
            parse_world_text("package a:b;\nworld w {\n  /**/ import wasi:io/poll@0.2.6;\n}\n")
                .expect("an empty comment is allowed");
        assert_eq!(world.imports.len(), 1, "{world:?}");
    }

    /// A panic inside the parsers becomes an error naming the parser and the panic.
    #[test]
    fn a_parser_panic_is_an_error() {
        let err = guarded::<()>("wit-parser", || panic!("boom")).unwrap_err();
        assert_eq!(err, WitError::ParserPanicked("wit-parser", "boom".into()));
        assert_eq!(
            err.to_string(),
            "wit-parser failed on this input (boom); it cannot be checked"
        );
        let owned = guarded::<()>("wit-component", || panic!("{}", String::from("owned")));
        assert_eq!(
            owned.unwrap_err(),
            WitError::ParserPanicked("wit-component", "owned".into())
        );
    }

    /// Found by `fuzz/fuzz_targets/wit_annotation.rs`: wit-parser 0.263 panics (an `unwrap()`
    /// in `populate_foreign_deps`) on `@deprecated` without `@since` or `@unstable` before an
    /// item that names a foreign package. The crashing input, as the fuzzer wrote it.
    #[test]
    fn lone_deprecated_gate_on_a_foreign_import_is_invalid_not_a_panic() {
        let text = "package example:hello;\nworld hello {\n  import w2si:keyvalue/store@0.2.0-draft;\n  import wasi:keyvalue/atomics@0.2.0-draft;\n@deprecated(version = 0.2.0)  import wasi:logging/logging@0.1.0-draft;\n  import wasi:io/streams@0.2.6;\n  export wasi:http/incoming-handler@0.2.0;\n}\n";
        let err = parse_world_text(text).unwrap_err();
        assert_eq!(
            err,
            WitError::InvalidWit(
                "line 5: @deprecated needs @since or @unstable on the same item".into()
            )
        );
        // The other gate combinations wit-parser refuses, on foreign imports, exports, includes
        // and uses (each panicked the same way).
        for (gates, problem) in [
            (
                "@since(version = 1.0.0) @since(version = 1.0.0)",
                "cannot specify @since twice",
            ),
            (
                "@unstable(feature = a)\n@unstable(feature = b)",
                "cannot specify @unstable twice",
            ),
            (
                "@since(version = 1.0.0) /* c */ @unstable(feature = a)",
                "cannot specify both @since and @unstable",
            ),
            (
                "@unstable(feature = a) @deprecated(version = 1.0.0) @deprecated(version = 1.0.0)",
                "cannot specify @deprecated twice",
            ),
            (
                "// doc\n@%deprecated(version = 1.0.0)",
                "@deprecated needs @since or @unstable on the same item",
            ),
        ] {
            for item in [
                "import wasi:io/streams@0.2.6;",
                "export wasi:http/incoming-handler@0.2.0;",
                "include wasi:cli/imports@0.2.0;",
            ] {
                let text = format!("package a:b@1.0.0;\nworld w {{\n  {gates} {item}\n}}");
                match parse_world_text(&text) {
                    Err(WitError::InvalidWit(m)) => assert!(m.ends_with(problem), "{text}: {m}"),
                    other => panic!("{text}: {other:?}"),
                }
            }
            let text = format!(
                "package a:b@1.0.0;\ninterface i {{ {gates} use wasi:io/poll@0.2.6.{{pollable}}; }}\nworld w {{ import i; }}"
            );
            assert!(
                matches!(parse_world_text(&text), Err(WitError::InvalidWit(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn valid_feature_gates_still_parse() {
        let text = "package a:b@1.0.0;\n\
            world w {\n\
              @since(version = 1.0.0) import wasi:io/streams@0.2.6;\n\
              @unstable(feature = fancy) @deprecated(version = 1.0.0) import wasi:io/poll@0.2.6;\n\
              @since(version = 1.0.0)\n  /* @deprecated(version = 1.0.0) */\n  // @deprecated(version = 1.0.0)\n  \
              @deprecated(version = 1.0.0) export wasi:http/incoming-handler@0.2.0;\n\
            }";
        let world = parse_world_text(text).unwrap();
        assert_eq!(world.imports.len(), 2, "{world:?}");
        assert_eq!(world.exports.len(), 1, "{world:?}");
    }

    #[test]
    fn non_components_are_refused() {
        assert_eq!(decode_component(b"hello").unwrap_err(), WitError::NotWasm);
        // The smallest valid core module.
        let core = b"\0asm\x01\0\0\0";
        assert_eq!(decode_component(core).unwrap_err(), WitError::CoreModule);
        // A component header followed by garbage.
        let corrupt = b"\0asm\x0d\0\x01\0\xff\xff\xff";
        assert!(matches!(
            decode_component(corrupt).unwrap_err(),
            WitError::Corrupt(_)
        ));
    }
}
