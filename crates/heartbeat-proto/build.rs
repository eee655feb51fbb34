//! Generates the heartbeat types with prost and their proto3 JSON mapping with pbjson, as
//! wasmCloud's host does for its own messages; protox compiles the .proto (no protoc needed).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/host_heartbeat.proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = protox::compile(["proto/host_heartbeat.proto"], ["proto"])?;
    let descriptor_path = out.join("descriptors.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;
    // Well-known types come from pbjson-types (they carry the JSON mapping), not prost-types.
    prost_build::Config::new()
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;
    let descriptor_bytes = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .build(&[".wasmcloud.runtime.v2"])?;
    Ok(())
}
