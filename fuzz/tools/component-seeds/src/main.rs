//! Writes the component_binary seeds: one real component per `wit/*.wit` world (a dummy core
//! module with the world's metadata, encoded by wit-component, as tests/common/mod.rs builds
//! test components), plus a WIT package encoded as wasm.
//!
//!     cd fuzz/tools/component-seeds && cargo run -- ../../seeds/component_binary wit

use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

fn build(wit: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("c.wit", wit).expect("the WIT parses");
    let world = resolve.select_world(&[pkg], None).expect("one world");
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)
        .expect("metadata");
    ComponentEncoder::default()
        .module(&module)
        .expect("the module")
        .validate(true)
        .encode()
        .expect("a component")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: component-seeds OUT_DIR WIT_DIR");
        std::process::exit(2);
    };
    let out = std::path::PathBuf::from(out);
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("the WIT directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    paths.sort();
    for p in paths {
        let wit = std::fs::read_to_string(&p).expect("WIT text");
        let name = p.file_stem().and_then(|s| s.to_str()).expect("a name");
        let bytes = build(&wit);
        std::fs::write(out.join(format!("{name}.wasm")), &bytes).expect("written");
        println!("{name}.wasm: {} bytes", bytes.len());
    }
    let mut resolve = Resolve::default();
    let pkg = resolve
        .push_str(
            "p.wit",
            "package example:pkg@1.0.0;\ninterface api { f: func(x: u32) -> string; }\nworld w { export api; }\n",
        )
        .expect("the WIT parses");
    let bytes = wit_component::encode(&resolve, pkg, true).expect("a WIT package");
    std::fs::write(out.join("wit-package.wasm"), &bytes).expect("written");
    println!("wit-package.wasm: {} bytes", bytes.len());
}
