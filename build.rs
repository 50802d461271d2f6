//! Compiles `proto/` with a vendored `protoc` (none is installed on build machines) and generates
//! proto3-JSON serde impls with pbjson, so the Connect JSON codec follows the canonical mapping.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/collector/v1/collector.proto"];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptor_path = PathBuf::from(std::env::var("OUT_DIR")?).join("linkmesh_descriptor.bin");

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.file_descriptor_set_path(&descriptor_path);
    config.compile_protos(&protos, &["proto"])?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .ignore_unknown_fields()
        .build(&[".collector"])?;
    Ok(())
}
