//! The chaos run (issue 13): three real `linkmesh` nodes, each in its own network namespace, under
//! injected faults while a workload runs through random nodes; then checks on the recorded history and
//! the end state. Needs root, `ip` (iproute2) and `nft` (nftables): `scripts/check.sh` runs it with
//! `cargo test --test chaos -- --ignored`; a missing tool or privilege fails the run.
//!
//! `LINKMESH_CHAOS_DURATION=30m` turns it into a soak (`scripts/chaos.sh`); the report goes to
//! `target/chaos/<time>/report.md` (or `LINKMESH_CHAOS_DIR`).

#[path = "../../tests/support/mod.rs"]
mod support;

// The multi-node tests' process handling; the chaos run uses `Node` only.
#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

mod checks;
mod disk;
mod faults;
mod lab;
mod proxy;
mod report;
mod run;
mod simulator;
mod workload;

#[test]
#[ignore = "needs root, iproute2 and nftables: scripts/check.sh runs it (cargo test --test chaos -- --ignored)"]
fn the_cluster_keeps_its_promises_under_faults() {
    if let Err(missing) = lab::preflight() {
        panic!("{missing}");
    }
    let settings = run::Settings::from_env();
    let lab = lab::Lab::create(3);
    // This thread, the runtime's threads spawned from it and every process it starts live in the
    // clients' namespace; the nodes and their proxies enter their own.
    lab.enter_client_ns();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run::run(lab, settings));
}
