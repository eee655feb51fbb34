//! A component binary, as `--component IMAGE=FILE.wasm` and the OCI source hand it over: the
//! wit-component decoding into a world, then (when it decodes) the resolver over that world.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgate::wit::decode_component;
use wasmgate_fuzz::resolve_world;

fuzz_target!(|data: &[u8]| {
    wasmgate_fuzz::contain_parser_panics();
    if let Ok(world) = decode_component(data) {
        resolve_world(world);
    }
});
