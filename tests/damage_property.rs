//! Random damage (flipped bytes, truncation, zeroed ranges) to a copy of a stopped node's data dir:
//! the node either starts with every collector it acknowledged or refuses with exit code 3 — never
//! starts with fewer, never panics, never hangs. A bounded number of cases, each a real process.

mod data_dirs;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use data_dirs::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const CONFIG: &str = r#"
activity_flush_interval = "30ms"
shutdown_timeout = "5s"
[raft]
snapshot_after_logs = 20
logs_kept_after_snapshot = 5
"#;

#[derive(Debug, Clone)]
enum Change {
    /// Inverts `len` bytes from a point (per mille of the file).
    Flip {
        at: u16,
        len: usize,
    },
    Truncate {
        at: u16,
    },
    Zero {
        at: u16,
        len: usize,
    },
}

#[derive(Debug, Clone)]
struct Damage {
    file: &'static str,
    change: Change,
}

fn damage() -> impl Strategy<Value = Damage> {
    let file = prop_oneof![
        6 => Just("raft/db"),
        1 => Just("identity.json"),
        1 => Just("durable-facts"),
        1 => Just("data-key"),
        1 => Just("raft/conf"),
    ];
    let change = prop_oneof![
        (0u16..1000, 1usize..128).prop_map(|(at, len)| Change::Flip { at, len }),
        (0u16..1000).prop_map(|at| Change::Truncate { at }),
        (0u16..1000, 1usize..8192).prop_map(|(at, len)| Change::Zero { at, len }),
    ];
    (file, change).prop_map(|(file, change)| Damage { file, change })
}

fn apply(data_dir: &Path, damage: &Damage) {
    edit_file(&data_dir.join(damage.file), |bytes| {
        let point = |at: u16| bytes.len() * usize::from(at) / 1000;
        match damage.change {
            Change::Flip { at, len } => {
                let start = point(at);
                let end = (start + len).min(bytes.len());
                bytes[start..end].iter_mut().for_each(|byte| *byte = !*byte);
            }
            Change::Truncate { at } => bytes.truncate(point(at)),
            Change::Zero { at, len } => {
                let start = point(at);
                let end = (start + len).min(bytes.len());
                bytes[start..end].fill(0);
            }
        }
    });
}

#[test]
fn random_damage_never_starts_a_node_with_fewer_collectors() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let temp = tempfile::tempdir().expect("temp");
    let origin = temp.path().join("origin");
    let acknowledged: BTreeSet<String> = runtime.block_on(async {
        let mut node = launch(&origin, CONFIG, "127.0.0.1:0").serving();
        let ids = create_collectors(&node.base_url, "p", 60, 6).await;
        assert!(node.terminate().success(), "clean stop; log:\n{}", node.log());
        ids
    });

    let mut runner = TestRunner::new(Config {
        cases: 10,
        max_shrink_iters: 8,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&damage(), |damage| {
        let number = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let copy: PathBuf = temp.path().join(format!("case-{number}"));
        copy_dir(&origin, &copy);
        apply(&copy, &damage);
        match launch(&copy, CONFIG, "127.0.0.1:0") {
            Outcome::Exited { code, log } => {
                prop_assert_eq!(code, Some(3), "{:?} must be refused with exit 3; log:\n{}", damage, log);
                prop_assert!(refusal_line(&log).contains("is damaged"), "{:?}: {}", damage, log);
            }
            Outcome::Serving(node) => {
                let kept = runtime.block_on(collector_ids(&node.base_url));
                let lost: Vec<_> = acknowledged.difference(&kept).collect();
                if !lost.is_empty() {
                    return Err(TestCaseError::fail(format!(
                        "{damage:?} started with {} of {} collectors; log:\n{}",
                        kept.len(),
                        acknowledged.len(),
                        node.log()
                    )));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&copy);
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}
