//! WIT text as a `wit.wasmgate.dev/<component>` annotation carries it: the world parser
//! wasmgate-core uses, then (when it parses) the resolver and defaults over that world.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgate::wit::{parse_world_text, InterfaceRef, WorldItemRef};
use wasmgate_fuzz::resolve_world;

fuzz_target!(|data: &[u8]| {
    wasmgate_fuzz::contain_parser_panics();
    // Annotations are strings: the apiserver has already refused invalid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(world) = parse_world_text(text) else {
        return;
    };
    // Interface references print as they parse (messages and reports name them this way).
    for item in world.imports.iter().chain(&world.exports) {
        if let WorldItemRef::Interface(r) = item {
            let printed = r.to_string();
            if let Ok(back) = printed.parse::<InterfaceRef>() {
                assert_eq!(&back, r, "{printed} reparses differently");
            }
        }
    }
    resolve_world(world);
});
