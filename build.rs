//! Compiles `proto/` with a vendored `protoc` (none is installed on build machines): the collector
//! protocol with proto3-JSON serde impls from pbjson, so the Connect JSON codec follows the canonical
//! mapping; the peer protocol (`linkmesh.cluster.v1`) with tonic's client and server; OpAMP
//! (`opamp.v1`, binary protobuf only).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/collector/v1/collector.proto"];
    let cluster_protos = ["proto/linkmesh/cluster/v1/cluster.proto"];
    let opamp_protos = ["proto/opamp/v1/opamp.proto"];
    for proto in protos.iter().chain(&cluster_protos).chain(&opamp_protos) {
        println!("cargo:rerun-if-changed={proto}");
    }
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let descriptor_path = PathBuf::from(std::env::var("OUT_DIR")?).join("linkmesh_descriptor.bin");

    let mut config = prost_build::Config::new();
    config.protoc_executable(&protoc);
    config.file_descriptor_set_path(&descriptor_path);
    config.compile_protos(&protos, &["proto"])?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .ignore_unknown_fields()
        .build(&[".collector"])?;

    let mut opamp_config = prost_build::Config::new();
    opamp_config.protoc_executable(&protoc);
    opamp_config.compile_protos(&opamp_protos, &["proto"])?;

    let mut cluster_config = prost_build::Config::new();
    cluster_config.protoc_executable(&protoc);
    tonic_prost_build::configure().build_client(true).build_server(true).compile_with_config(
        cluster_config,
        &cluster_protos,
        &["proto"],
    )?;
    Ok(())
}
