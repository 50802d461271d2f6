//! The official parsers accept every rendered config: the golden models and random models, in both
//! formats.
//!
//! - Alloy: `tools/alloycheck -require-declare` (Grafana's own Alloy syntax parser plus the
//!   remotecfg module rules).
//! - OTel Collector: `tools/otelcheck` (the collector's own config resolution, unmarshalling,
//!   validation and pipeline graph build, as `otelcol validate`).
//!
//! Both are built with `go build` on first use, or taken from `LINKMESH_ALLOYCHECK` /
//! `LINKMESH_OTELCHECK`. Go is a required test dependency: without it these tests fail rather than
//! silently pass. The configs are checked as delivered: rendered with credential values that need
//! escaping ([`render_for_delivery`]).

#[path = "golden/support.rs"]
mod golden_support;
mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use golden_support::{arbitrary_model, golden_models, Model};
use linkmesh::model::CollectorMode;
use linkmesh::render::secrets::CredentialValues;
use linkmesh::render::{render_collector_config, render_for_delivery};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn alloycheck() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::go_tool("alloycheck", "LINKMESH_ALLOYCHECK"))
}

fn otelcheck() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::go_tool("otelcheck", "LINKMESH_OTELCHECK"))
}

/// Runs a checker on `text` (stdin); `Err` with its output when it rejects the text.
fn run_checker(binary: &PathBuf, args: &[&str], text: &str) -> Result<(), String> {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("run {}: {error}", binary.display()));
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("checker output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && stdout.trim() == "ok" {
        Ok(())
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)))
    }
}

/// Every credential of the model, with a value that needs escaping in both formats.
fn credential_values(model: &Model) -> CredentialValues {
    let mut values = CredentialValues::default();
    for destination in &model.destinations {
        for key in destination.credentials.keys() {
            values.insert(&destination.id, key, format!("s3cr\"et\\{key}${{env:HOME}}"));
        }
    }
    values
}

/// The content as delivered: rendered with the credential values.
fn delivered(model: &Model, mode: CollectorMode) -> String {
    render_for_delivery(&model.input(mode), &credential_values(model)).content
}

/// The comment a collector gets when nothing flows: valid for Alloy, but not an OTel config (which
/// needs at least one pipeline); the OTel Collector is not given one.
fn is_nothing_configured_comment(content: &str) -> bool {
    content.lines().all(|line| line.starts_with("# linkmesh: "))
}

/// Checks one model in both formats; returns every rejection.
fn check_model(name: &str, model: &Model) -> Vec<String> {
    let mut failures = Vec::new();
    let alloy = delivered(model, CollectorMode::AlloyRemotecfg);
    if let Err(message) = run_checker(alloycheck(), &["-require-declare"], &alloy) {
        failures.push(format!("alloycheck rejected {name}:\n{message}\n--- rendered ---\n{alloy}"));
    }
    let otel = delivered(model, CollectorMode::Opamp);
    if !is_nothing_configured_comment(&otel) {
        if let Err(message) = run_checker(otelcheck(), &["-q"], &otel) {
            failures.push(format!("otelcheck rejected {name}:\n{message}\n--- rendered ---\n{otel}"));
        }
    }
    failures
}

#[test]
fn golden_models_pass_the_official_parsers() {
    let mut failures = Vec::new();
    for (name, model) in golden_models() {
        failures.extend(check_model(&name, &model));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn random_models_pass_the_official_parsers() {
    // A fixed seed: the same models on every run, so a failure reproduces. `LINKMESH_RENDER_CHECK_CASES`
    // checks more (or fewer) than the default 50.
    let cases: usize =
        std::env::var("LINKMESH_RENDER_CHECK_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(50);
    let config = Config { rng_algorithm: RngAlgorithm::ChaCha, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let strategy = arbitrary_model();
    let mut failures = Vec::new();
    let mut checked_otel = 0;
    for case in 0..cases {
        let model = strategy.new_tree(&mut runner).expect("model").current();
        let otel = render_collector_config(&model.input(CollectorMode::Opamp)).content;
        if !is_nothing_configured_comment(&otel) {
            checked_otel += 1;
        }
        failures.extend(check_model(&format!("random model {case}"), &model));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        checked_otel >= cases / 5,
        "only {checked_otel} of {cases} random models rendered an OTel config"
    );
}
