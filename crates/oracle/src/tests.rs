//! Verdicts on small workloads built from WIT with wit-component. WASI WIT comes from the
//! wasmgate test fixtures (copied from the wasmtime 47.0.3 crates).

use std::path::Path;

use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

use crate::wit_text::rewrite_version;
use crate::{Entry, Oracle, Plugin, Stage, Verdict, WitInterface};

fn wasi(dir: &str, files: &[&str], from: &str, to: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fidelity/wit");
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(dir).join(format!("{f}.wit")))
                .expect("WASI WIT fixture");
            rewrite_version(&text, from, to)
        })
        .collect()
}

fn p2(version: &str) -> Vec<String> {
    wasi(
        "p2",
        &[
            "io",
            "clocks",
            "random",
            "filesystem",
            "sockets",
            "cli",
            "http",
        ],
        "0.2.12",
        version,
    )
}

fn p3(version: &str) -> Vec<String> {
    wasi(
        "p3",
        &["clocks", "random", "filesystem", "sockets", "cli", "http"],
        "0.3.0",
        version,
    )
}

fn kv(version: &str) -> String {
    format!(
        "package test:kv@{version};
interface types {{ record entry {{ key: string, value: list<u8> }} }}
interface store {{
  use types.{{entry}};
  resource bucket {{ get: func(key: string) -> option<entry>; }}
  open: func(name: string) -> bucket;
}}
interface query {{ run: async func(q: string) -> string; }}
"
    )
}

fn greet(version: &str) -> String {
    format!(
        "package example:greet@{version};\ninterface api {{ greet: func(n: string) -> string; }}\n"
    )
}

fn component(deps: &[String], world: &str) -> Vec<u8> {
    let mut r = Resolve::default();
    for d in deps {
        r.push_str("dep.wit", d).expect("dep WIT");
    }
    let pkg = r.push_str("world.wit", world).expect("world WIT");
    let w = r.select_world(&[pkg], None).expect("world");
    let mut module = dummy_module(&r, w, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &r, w, StringEncoding::UTF8, false).expect("embed");
    ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode")
}

fn one(deps: &[String], imports: &[&str], exports: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut w = String::from("package t:c;\nworld c {\n");
    for i in imports {
        w.push_str(&format!("  import {i};\n"));
    }
    for e in exports {
        w.push_str(&format!("  export {e};\n"));
    }
    w.push_str("}\n");
    vec![("c".to_string(), component(deps, &w))]
}

fn entry(ns: &str, pkg: &str, ifaces: &[&str], version: Option<&str>) -> Entry {
    Entry {
        namespace: ns.into(),
        package: pkg.into(),
        interfaces: ifaces.iter().map(|s| s.to_string()).collect(),
        version: version.map(Into::into),
        name: None,
    }
}

fn kv_plugin(advertised: Option<&str>, binding: &str) -> Plugin {
    Plugin {
        id: "test-kv".into(),
        world_imports: vec![WitInterface {
            namespace: "test".into(),
            package: "kv".into(),
            version: advertised.map(Into::into),
            interfaces: vec!["store".into(), "query".into()],
        }],
        world_exports: vec![],
        bindings_wit: vec![kv(binding)],
        supports_named_instances: false,
    }
}

fn stage(v: &Verdict) -> Option<Stage> {
    match v {
        Verdict::Links => None,
        Verdict::Fails { stage, .. } => Some(*stage),
    }
}

#[test]
fn wasi_p2_patch_versions_link_by_semver() {
    let o = Oracle::new().unwrap();
    for v in ["0.2.0", "0.2.3", "0.2.12", "0.2.99"] {
        let c = one(
            &p2(v),
            &[
                &format!("wasi:clocks/monotonic-clock@{v}"),
                &format!("wasi:cli/stdout@{v}"),
            ],
            &[],
        );
        assert_eq!(o.judge(&c, &[], &[]), Verdict::Links, "@{v}");
    }
    // Pre-releases match only exactly.
    let v = "0.2.0-rc-2023-12-05";
    let c = one(&p2(v), &[&format!("wasi:clocks/monotonic-clock@{v}")], &[]);
    let verdict = o.judge(&c, &[], &[]);
    assert_eq!(stage(&verdict), Some(Stage::FirstCall), "{verdict:?}");
}

#[test]
fn wasi_p3_and_http_link_only_when_used() {
    let o = Oracle::new().unwrap();
    let c = one(
        &p3("0.3.0"),
        &["wasi:clocks/monotonic-clock@0.3.0", "wasi:cli/types@0.3.0"],
        &["wasi:http/handler@0.3.0"],
    );
    let e = entry("wasi", "http", &["handler"], None);
    assert_eq!(o.judge(&c, std::slice::from_ref(&e), &[]), Verdict::Links);
    // An imported handler has no provider.
    let c = one(&p3("0.3.0"), &["wasi:http/handler@0.3.0"], &[]);
    assert_eq!(stage(&o.judge(&c, &[], &[])), Some(Stage::FirstCall));
    // An entry listing more than the handler interfaces is not dropped and needs a plugin.
    let c = one(
        &p3("0.3.0"),
        &["wasi:http/types@0.3.0"],
        &["wasi:http/handler@0.3.0"],
    );
    let e = entry("wasi", "http", &["handler", "types"], None);
    assert_eq!(stage(&o.judge(&c, &[e], &[])), Some(Stage::BindPlugins));
}

#[test]
fn plugin_interfaces_need_entry_and_plugin() {
    let o = Oracle::new().unwrap();
    let deps = vec![kv("0.2.0"), kv("0.2.1"), kv("0.2.0-draft2")];
    let c = one(&deps, &["test:kv/store@0.2.0"], &[]);
    // Undeclared: the linker has nothing.
    let v = o.judge(&c, &[], &[kv_plugin(Some("0.2.0"), "0.2.0")]);
    assert_eq!(stage(&v), Some(Stage::FirstCall), "{v:?}");
    // Declared, no plugin.
    let e = entry("test", "kv", &["store"], None);
    let v = o.judge(&c, std::slice::from_ref(&e), &[]);
    assert_eq!(stage(&v), Some(Stage::BindPlugins), "{v:?}");
    match v {
        Verdict::Fails { message, .. } => {
            assert!(message.contains("requested interfaces that are not available on this host"))
        }
        Verdict::Links => unreachable!(),
    }
    // Declared and bound; the binding 0.2.1 serves 0.2.0 by semver.
    assert_eq!(
        o.judge(
            &c,
            std::slice::from_ref(&e),
            &[kv_plugin(Some("0.2.1"), "0.2.1")]
        ),
        Verdict::Links
    );
    // A versioned entry must equal the advertised version.
    let e2 = entry("test", "kv", &["store"], Some("0.2.0"));
    let v = o.judge(&c, &[e2], &[kv_plugin(Some("0.2.1"), "0.2.1")]);
    assert_eq!(stage(&v), Some(Stage::BindPlugins), "{v:?}");
    // Entry listing an interface the component lacks: not required, nothing bound.
    let e3 = entry("test", "kv", &["store", "query"], None);
    let v = o.judge(&c, &[e3], &[kv_plugin(Some("0.2.0"), "0.2.0")]);
    assert_eq!(stage(&v), Some(Stage::FirstCall), "{v:?}");
    // Unversioned advertisement binds a pre-release the component does not import exactly.
    let c = one(
        &deps,
        &["test:kv/store@0.2.0-draft2", "test:kv/query@0.2.0-draft2"],
        &[],
    );
    let e4 = entry("test", "kv", &["store"], None);
    let mut p = kv_plugin(None, "0.2.0");
    p.bindings_wit = vec![kv("0.2.0")];
    let v = o.judge(&c, &[e4], &[p]);
    assert_eq!(stage(&v), Some(Stage::FirstCall), "{v:?}");
    // Types-only interfaces need nothing.
    let c = one(&deps, &["test:kv/types@0.2.0"], &[]);
    assert_eq!(o.judge(&c, &[], &[]), Verdict::Links);
}

#[test]
fn async_plugin_functions_link() {
    let o = Oracle::new().unwrap();
    let c = one(&[kv("1.0.0"), kv("1.3.0")], &["test:kv/query@1.0.0"], &[]);
    let e = entry("test", "kv", &["query"], None);
    let mut p = kv_plugin(Some("1.3.0"), "1.3.0");
    p.bindings_wit = vec![kv("1.3.0")];
    assert_eq!(o.judge(&c, &[e], &[p]), Verdict::Links);
}

#[test]
fn siblings_link_by_exact_name() {
    let o = Oracle::new().unwrap();
    let deps = vec![greet("0.2.0"), greet("0.2.1")];
    let mk = |name: &str, import: Option<&str>, export: Option<&str>| {
        let mut w = format!("package t:{name};\nworld {name} {{\n");
        if let Some(i) = import {
            w.push_str(&format!("import {i};\n"));
        }
        if let Some(e) = export {
            w.push_str(&format!("export {e};\n"));
        }
        w.push_str("}\n");
        (name.to_string(), component(&deps, &w))
    };
    let front = mk("front", Some("example:greet/api@0.2.0"), None);
    let same = mk("greeter", None, Some("example:greet/api@0.2.0"));
    let newer = mk("greeter", None, Some("example:greet/api@0.2.1"));
    assert_eq!(
        o.judge(&[front.clone(), same.clone()], &[], &[]),
        Verdict::Links
    );
    let v = o.judge(&[front.clone(), newer], &[], &[]);
    assert_eq!(stage(&v), Some(Stage::FirstCall), "{v:?}");
    let mut other = same.clone();
    other.0 = "greeter2".into();
    let v = o.judge(&[front, same, other], &[], &[]);
    assert_eq!(stage(&v), Some(Stage::LinkComponents), "{v:?}");
    // A cycle.
    let a = {
        let w = "package t:a;\nworld a { import example:greet/api@0.2.0; export example:greet/api@0.2.1; }\n";
        ("a".to_string(), component(&deps, w))
    };
    let b = {
        let w = "package t:b;\nworld b { import example:greet/api@0.2.1; export example:greet/api@0.2.0; }\n";
        ("b".to_string(), component(&deps, w))
    };
    let v = o.judge(&[a, b], &[], &[]);
    assert_eq!(stage(&v), Some(Stage::LinkComponents), "{v:?}");
}
