//! Snapshot build and install at fleet sizes (issue 17): `snapshot_bench [COLLECTORS...]`
//! (default 100000 1000000), in a release build.
//!
//! Fills a state through `FleetState::apply` of create and mint commands (every collector with a
//! token), then measures, in the same run:
//!
//! - before (store format 3): the state serialized as JSON into one `Vec` under the read lock, and
//!   installed by decoding that `Vec` (`serde_json::from_slice`);
//! - after (store format 4): the state streamed to a file through a buffered writer (binary, and JSON
//!   for the rolling-upgrade path), fsynced, and installed by a streaming decode from the file.
//!
//! For each: wall time, the time the read lock is held (what applies wait for), the size, and the
//! peak memory above what the process held before (Linux `VmHWM` after resetting it through
//! `/proc/self/clear_refs`). Each measurement runs in a process of its own (this binary, `--one N
//! MODE`), so that no peak hides in memory an earlier one freed. Ratios are against the
//! JSON-in-memory baseline of the same run.

use linkmesh::model::{Clock, Command, FleetState};
use linkmesh::raft::snapshot_file::{self, SnapshotEncoding, SnapshotWriter};
use linkmesh::raft::state_machine::{decode_state, AppliedState};

fn command(value: serde_json::Value) -> Command {
    serde_json::from_value(value).expect("a command")
}

fn fill(collectors: usize) -> AppliedState {
    let mut fleet = FleetState::default();
    for index in 0..collectors {
        let id = format!("col_{index:020x}");
        let create = command(serde_json::json!({
            "op": "create_collector", "id": id, "name": format!("host-{index}"), "mode": "alloy-remotecfg",
            "remote_attributes": {}, "at": 1_796_000_000_000u64 + index as u64,
        }));
        fleet.apply(&create).expect("create");
        let hash = format!("{:064x}", (index as u128 + 1) * 0x9e37_79b9_7f4a_7c15);
        let mint = command(serde_json::json!({
            "op": "set_collector_token", "collector_id": id, "token_hash": hash,
            "prefix": format!("lmct_{:06x}", index % 0xffffff), "at": 1_796_000_000_000u64 + index as u64,
        }));
        fleet.apply(&mint).expect("mint");
    }
    AppliedState { fleet, ..AppliedState::default() }
}

/// `VmRSS` or `VmHWM` in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

struct Measured {
    seconds: f64,
    peak_above: u64,
}

/// Runs `work`, measuring its wall time and the peak RSS above the RSS before it.
fn measure<T>(work: impl FnOnce() -> T) -> (T, Measured) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_bytes("VmRSS:");
    let clock = Clock::system();
    let started = clock.monotonic();
    let result = work();
    let seconds = clock.since(started).as_secs_f64();
    let peak_above = status_bytes("VmHWM:").saturating_sub(before);
    (result, Measured { seconds, peak_above })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

const MODES: [(&str, &str); 6] = [
    ("json-vec-build", "build: json Vec (format 3)"),
    ("json-vec-install", "install: json from Vec (format 3)"),
    ("binary-file-build", "build: binary file, fsynced"),
    ("binary-file-install", "install: binary file, streamed"),
    ("json-file-build", "build: json file, fsynced"),
    ("json-file-install", "install: json file, streamed"),
];

/// One measurement in this process: prints `seconds lock_seconds bytes peak_bytes`.
fn one(collectors: usize, mode: &str, dir: &std::path::Path) {
    if mode == "fill" {
        let (state, measured) = measure(|| fill(collectors));
        assert_eq!(state.fleet.collectors.len(), collectors);
        println!("{} 0 0 {}", measured.seconds, measured.peak_above);
        return;
    }
    let state = fill(collectors);
    let name = format!("{mode}-{collectors}.snap");
    let encoding = if mode.starts_with("binary") { SnapshotEncoding::Binary } else { SnapshotEncoding::Json };
    let (lock, bytes, measured) = match mode {
        "json-vec-build" => {
            let (json, measured) = measure(|| serde_json::to_vec(&state).expect("json"));
            (measured.seconds, json.len() as u64, measured)
        }
        "json-vec-install" => {
            let json = serde_json::to_vec(&state).expect("json");
            let (decoded, measured) = measure(|| decode_state(&json).expect("decode"));
            assert_eq!(decoded.fleet.collectors.len(), collectors);
            (0.0, json.len() as u64, measured)
        }
        "binary-file-build" | "json-file-build" => {
            let ((file, lock), measured) = measure(|| {
                let mut writer = SnapshotWriter::create(dir, &name).expect("create");
                let clock = Clock::system();
                let locked = clock.monotonic();
                writer.encode(&state, encoding).expect("encode");
                let lock = clock.since(locked).as_secs_f64();
                (writer.finish().expect("finish"), lock)
            });
            (lock, file.bytes, measured)
        }
        _ => {
            let mut writer = SnapshotWriter::create(dir, &name).expect("create");
            writer.encode(&state, encoding).expect("encode");
            let file = writer.finish().expect("finish");
            let (decoded, measured) = measure(|| {
                snapshot_file::check(dir, &file).expect("intact");
                let mut decoded: AppliedState = snapshot_file::decode_file(dir, &name).expect("decode");
                decoded.fleet.rebuild_indexes();
                decoded
            });
            assert_eq!(decoded.fleet.collectors.len(), collectors);
            (0.0, file.bytes, measured)
        }
    };
    let _ = std::fs::remove_file(dir.join(&name));
    println!("{} {lock} {bytes} {}", measured.seconds, measured.peak_above);
}

/// Runs `--one N MODE` in a child process: `[seconds, lock seconds, bytes, peak bytes]`.
fn run_one(me: &std::path::Path, collectors: usize, mode: &str) -> [f64; 4] {
    let output = std::process::Command::new(me)
        .args(["--one", &collectors.to_string(), mode])
        .output()
        .expect("run a measurement");
    assert!(output.status.success(), "{mode}: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<f64> = text.split_whitespace().map(|field| field.parse().expect("a number")).collect();
    fields.try_into().unwrap_or_else(|fields| panic!("{mode}: {fields:?}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::env::temp_dir().join(format!("linkmesh-snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    if args.first().map(String::as_str) == Some("--one") {
        one(args[1].parse().expect("a number"), &args[2], &dir);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let sizes: Vec<usize> = args.iter().map(|arg| arg.parse().expect("a number")).collect();
    let sizes = if sizes.is_empty() { vec![100_000, 1_000_000] } else { sizes };
    let me = std::env::current_exe().expect("this binary");
    for collectors in sizes {
        // In a child too: memory the fill frees stays with the process that did it.
        let filled = run_one(&me, collectors, "fill");
        println!(
            "\n== {collectors} collectors (filled in {:.1} s; the state takes {:.0} MiB of RSS)",
            filled[0],
            mib(filled[3] as u64)
        );
        println!(
            "{:<34} {:>9} {:>9} {:>10} {:>9} {:>8}",
            "", "time s", "lock s", "size MiB", "peak MiB", "vs json"
        );
        let mut baselines = [0.0f64; 2];
        for (index, (mode, label)) in MODES.iter().enumerate() {
            let [seconds, lock, bytes, peak] = run_one(&me, collectors, mode);
            // Builds compare with the JSON Vec build, installs with the JSON Vec install.
            let kind = index % 2;
            if index < 2 {
                baselines[kind] = seconds;
            }
            println!(
                "{label:<34} {seconds:>9.2} {lock:>9.2} {:>10.1} {:>9.0} {:>8.2}",
                mib(bytes as u64),
                mib(peak as u64),
                seconds / baselines[kind]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
