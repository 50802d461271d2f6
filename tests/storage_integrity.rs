//! A damaged data dir is refused (exit 3, one message, nothing served), never served from with less
//! than it acknowledged and never bootstrapped over; sound ones start without false alarms; data dirs
//! of the earlier store formats are adopted or migrated once; `linkmesh check` reports the same
//! verdicts.

mod data_dirs;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use data_dirs::*;

/// Fast batching, and a snapshot (with a purge) every 20 entries exactly, so stores hold both (no
/// jitter, and entries alone decide: the snapshot schedule's own rules have unit tests).
const CONFIG: &str = r#"
activity_flush_interval = "30ms"
shutdown_timeout = "5s"
[raft]
snapshot_after_logs = 20
snapshot_log_ratio = 0.0
snapshot_jitter = 0.0
logs_kept_after_snapshot = 5
"#;

/// A stopped node's data dir with `count` acknowledged collectors.
struct Origin {
    temp: tempfile::TempDir,
    data_dir: PathBuf,
    collectors: BTreeSet<String>,
}

async fn origin(count: usize) -> Origin {
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().join("origin");
    let mut node = launch(&data_dir, CONFIG, "127.0.0.1:0").serving();
    let collectors = create_collectors(&node.base_url, "c", count, 8).await;
    // A snapshot the schedule started during the writes has two files until it is recorded and the
    // one it replaces removed; a stop in between leaves the stale one for the next start to remove.
    // The damages below are made to the one recorded file, so the stop waits for it.
    let snapshots = data_dir.join("snapshots");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&snapshots).map_or(0, |entries| entries.count()) > 1 {
        assert!(tokio::time::Instant::now() < deadline, "a snapshot never finished");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(node.terminate().success(), "clean stop; log:\n{}", node.log());
    Origin { temp, data_dir, collectors }
}

impl Origin {
    fn copy(&self, name: &str) -> PathBuf {
        let copy = self.temp.path().join(name);
        copy_dir(&self.data_dir, &copy);
        copy
    }
}

/// Starts `data_dir`, expects exit 3 with one message naming the data dir, `what` and the remedy.
fn assert_refused(data_dir: &Path, what: &str) {
    let (code, log) = launch(data_dir, CONFIG, "127.0.0.1:0").refused();
    let line = refusal_line(&log);
    assert_eq!(code, Some(3), "exit code; log:\n{log}");
    assert!(line.contains(&data_dir.display().to_string()), "names the data dir: {line}");
    assert!(line.contains("is damaged") && line.contains(what), "says what ({what}): {line}");
    assert!(line.contains("restore the data dir from a backup"), "gives the remedy: {line}");
    assert!(!log.contains("created user admin") && !log.contains("linkmesh is serving"), "{log}");
    let (check_code, report) = check(data_dir);
    assert_eq!(check_code, Some(3), "check agrees:\n{report}");
}

fn raft_db(data_dir: &Path) -> PathBuf {
    data_dir.join("raft").join("db")
}

/// The one file of `snapshots/` (a new snapshot's file replaces the previous one's).
fn snapshot_file(data_dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("snapshots"))
        .expect("snapshots/")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one snapshot file: {files:?}");
    files.remove(0)
}

#[tokio::test]
async fn the_three_damages_of_the_issue_are_refused() {
    let origin = origin(150).await;
    let size = std::fs::metadata(raft_db(&origin.data_dir)).expect("db").len() as usize;

    let inverted = origin.copy("inverted");
    edit_file(&raft_db(&inverted), |bytes| bytes[size / 2..size / 2 + 64].iter_mut().for_each(|b| *b = !*b));
    assert_refused(&inverted, "identity record says");

    let halved = origin.copy("halved");
    edit_file(&raft_db(&halved), |bytes| bytes.truncate(size / 2));
    assert_refused(&halved, "identity record says");

    let zeroed = origin.copy("zeroed");
    edit_file(&raft_db(&zeroed), |bytes| bytes[..4096].fill(0));
    assert_refused(&zeroed, "has no identity");
}

/// Flips one byte of a value in sled behind linkmesh's back (sled's own checksum stays valid), the
/// way a bit flip before the write or a bug would.
fn flip_value(data_dir: &Path, tree: &str, key: &[u8]) {
    let db = sled::open(data_dir.join("raft")).expect("open sled");
    let tree = db.open_tree(tree).expect("tree");
    let mut value = tree.get(key).expect("get").expect("value present").to_vec();
    let last = value.len() - 1;
    value[last] ^= 0x20;
    tree.insert(key, value).expect("insert");
    db.flush().expect("flush");
}

#[tokio::test]
async fn damaged_values_missing_files_and_mixed_data_dirs_are_refused() {
    let origin = origin(40).await;

    let snapshot = origin.copy("snapshot");
    flip_value(&snapshot, "raft_snapshot", b"current_file");
    assert_refused(&snapshot, "raft_snapshot/current_file fails its checksum");

    let flipped = origin.copy("snapshot-flipped");
    let file = snapshot_file(&flipped);
    let name = file.file_name().expect("name").to_string_lossy().into_owned();
    edit_file(&file, |bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x08;
    });
    assert_refused(&flipped, &format!("snapshots/{name} fails its checksum"));

    let torn = origin.copy("snapshot-torn");
    edit_file(&snapshot_file(&torn), |bytes| bytes.truncate(bytes.len() / 2));
    assert_refused(&torn, &format!("snapshots/{name} holds"));

    let no_snapshot = origin.copy("snapshot-missing");
    std::fs::remove_file(snapshot_file(&no_snapshot)).expect("rm");
    assert_refused(&no_snapshot, &format!("snapshots/{name} is missing"));

    let entry = origin.copy("entry");
    let last_index = {
        let db = sled::open(entry.join("raft")).expect("open");
        let (key, _) = db.open_tree("raft_log").expect("tree").last().expect("read").expect("an entry");
        key.to_vec()
    };
    flip_value(&entry, "raft_log", &last_index);
    assert_refused(&entry, "fails its checksum");

    let no_key = origin.copy("no-key");
    std::fs::remove_file(no_key.join("data-key")).expect("rm");
    assert_refused(&no_key, "data-key is missing");

    let no_db = origin.copy("no-db");
    std::fs::remove_file(raft_db(&no_db)).expect("rm");
    assert_refused(&no_db, "raft/db is missing");

    let no_record = origin.copy("no-record");
    std::fs::remove_file(no_record.join("identity.json")).expect("rm");
    assert_refused(&no_record, "identity.json is missing");

    let bad_record = origin.copy("bad-record");
    edit_file(&bad_record.join("identity.json"), |bytes| bytes[10] ^= 0x01);
    assert_refused(&bad_record, "identity.json fails its checksum");

    let no_facts = origin.copy("no-facts");
    std::fs::remove_file(no_facts.join("durable-facts")).expect("rm");
    assert_refused(&no_facts, "durable-facts is missing");

    // identity.json alone must not pass for a first start that stopped before creating the store.
    let only_record = origin.copy("only-record");
    std::fs::remove_file(only_record.join("durable-facts")).expect("rm");
    std::fs::remove_dir_all(only_record.join("raft")).expect("rm");
    assert_refused(&only_record, "durable-facts is missing");

    let bad_facts = origin.copy("bad-facts");
    edit_file(&bad_facts.join("durable-facts"), |bytes| {
        bytes[100] ^= 0x01;
        bytes[4096 + 100] ^= 0x01;
    });
    assert_refused(&bad_facts, "durable-facts has no valid slot");

    let cut_facts = origin.copy("cut-facts");
    edit_file(&cut_facts.join("durable-facts"), |bytes| bytes.truncate(4096));
    assert_refused(&cut_facts, "durable-facts has 4096 bytes instead of 8192");

    let bad_key = origin.copy("bad-key");
    edit_file(&bad_key.join("data-key"), |bytes| bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' });
    assert_refused(&bad_key, "data-key");

    // Files from another node's data dir.
    let other = tempfile::tempdir().expect("temp");
    let other_dir = other.path().join("other");
    let mut other_node = launch(&other_dir, CONFIG, "127.0.0.1:0").serving();
    create_collectors(&other_node.base_url, "o", 3, 1).await;
    assert!(other_node.terminate().success());

    let foreign_store = origin.copy("foreign-store");
    std::fs::remove_dir_all(foreign_store.join("raft")).expect("rm");
    copy_dir(&other_dir.join("raft"), &foreign_store.join("raft"));
    assert_refused(&foreign_store, "belongs to cluster");

    let foreign_facts = origin.copy("foreign-facts");
    std::fs::copy(other_dir.join("durable-facts"), foreign_facts.join("durable-facts")).expect("cp");
    assert_refused(&foreign_facts, "durable-facts belongs to cluster");

    let foreign_key = origin.copy("foreign-key");
    std::fs::copy(other_dir.join("data-key"), foreign_key.join("data-key")).expect("cp");
    assert_refused(&foreign_key, "not the one this store's credentials are sealed with");
}

#[tokio::test]
async fn a_store_older_than_its_identity_record_is_refused() {
    let origin = origin(10).await;
    // A backup of raft/ alone, then the node goes on acknowledging writes.
    let old_raft = origin.temp.path().join("old-raft");
    copy_dir(&origin.data_dir.join("raft"), &old_raft);
    let mut node = launch(&origin.data_dir, CONFIG, "127.0.0.1:0").serving();
    create_collectors(&node.base_url, "later", 30, 4).await;
    assert!(node.terminate().success());

    let restored = origin.copy("restored-raft-only");
    std::fs::remove_dir_all(restored.join("raft")).expect("rm");
    copy_dir(&old_raft, &restored.join("raft"));
    assert_refused(&restored, "identity record says");
}

/// The slot in force, by the layout of `raft/facts.rs`: the valid one with the higher sequence.
fn slot_in_force(facts: &[u8]) -> usize {
    let sequence =
        |slot: usize| u64::from_le_bytes(facts[slot * 4096 + 8..slot * 4096 + 16].try_into().expect("8"));
    if sequence(0) > sequence(1) {
        0
    } else {
        1
    }
}

#[tokio::test]
async fn a_torn_newest_facts_slot_falls_back_to_the_other_only_while_the_store_covers_it() {
    let origin = origin(30).await;
    let facts_file = |data_dir: &Path| data_dir.join("durable-facts");
    let newest = slot_in_force(&std::fs::read(facts_file(&origin.data_dir)).expect("facts"));

    // A write torn by a crash: the other slot is one write older and the whole store holds more.
    let torn = origin.copy("torn-slot");
    edit_file(&facts_file(&torn), |bytes| bytes[newest * 4096 + 2048..(newest + 1) * 4096].fill(0));
    let node = launch(&torn, CONFIG, "127.0.0.1:0").serving();
    assert_eq!(collector_ids(&node.base_url).await, origin.collectors);
    assert!(node.log().contains("one slot of durable-facts fails its checksum"), "{}", node.log());
    let (code, report) = check_after(node, &torn);
    assert_eq!(code, Some(0), "{report}");

    // The older slot is still a lower bound: a store behind it is refused, torn newest slot or not.
    let old_raft = origin.temp.path().join("old-raft");
    copy_dir(&origin.data_dir.join("raft"), &old_raft);
    let mut node = launch(&origin.data_dir, CONFIG, "127.0.0.1:0").serving();
    create_collectors(&node.base_url, "later", 30, 4).await;
    assert!(node.terminate().success());
    let behind = origin.copy("torn-slot-store-behind");
    let newest = slot_in_force(&std::fs::read(facts_file(&behind)).expect("facts"));
    edit_file(&facts_file(&behind), |bytes| bytes[newest * 4096 + 20] ^= 0x40);
    std::fs::remove_dir_all(behind.join("raft")).expect("rm");
    copy_dir(&old_raft, &behind.join("raft"));
    assert_refused(&behind, "identity record says");
}

#[tokio::test]
async fn a_data_dir_with_linkmesh_files_but_no_store_is_never_bootstrapped_over() {
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().join("only-key");
    std::fs::create_dir(&data_dir).expect("mkdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    std::fs::write(data_dir.join("data-key"), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").expect("key");
    let (code, log) = launch(&data_dir, CONFIG, "127.0.0.1:0").refused();
    assert_eq!(code, Some(3), "{log}");
    assert!(refusal_line(&log).contains("never bootstrapped over"), "{log}");
    assert!(!data_dir.join("raft").exists(), "no store was created");
}

#[tokio::test]
async fn sigkill_mid_burst_and_clean_restarts_start_with_every_acknowledged_write() {
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().join("burst");
    // Snapshots and purges every few entries while the burst runs.
    let config = CONFIG.replace("snapshot_after_logs = 20", "snapshot_after_logs = 7");
    let mut node = launch(&data_dir, &config, "127.0.0.1:0").serving();
    let client = admin(&node.base_url).await;
    let (acknowledged_tx, mut acknowledged_rx) = tokio::sync::mpsc::unbounded_channel();
    for worker in 0..6 {
        let (client, base_url, acknowledged) =
            (client.clone(), node.base_url.clone(), acknowledged_tx.clone());
        tokio::spawn(async move {
            for index in 0.. {
                match create_collector(&client, &base_url, &format!("burst-{worker}-{index}")).await {
                    Ok(id) => {
                        if acknowledged.send(id).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
    }
    drop(acknowledged_tx);
    let mut acknowledged = BTreeSet::new();
    while acknowledged.len() < 80 {
        acknowledged.insert(acknowledged_rx.recv().await.expect("writers run"));
    }
    node.kill();
    while let Ok(id) = acknowledged_rx.try_recv() {
        acknowledged.insert(id);
    }

    let mut node = launch(&data_dir, &config, "127.0.0.1:0").serving();
    let after_kill = collector_ids(&node.base_url).await;
    assert!(acknowledged.is_subset(&after_kill), "lost: {:?}", acknowledged.difference(&after_kill));
    assert!(node.terminate().success(), "clean stop; log:\n{}", node.log());

    let node = launch(&data_dir, &config, "127.0.0.1:0").serving();
    assert_eq!(collector_ids(&node.base_url).await, after_kill);
    assert!(!node.log().contains("is damaged"));
    let (code, report) = check_after(node, &data_dir);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains(&format!("collectors: {}", after_kill.len())), "{report}");
}

/// A data dir written by an earlier linkmesh, under `tests/fixtures/`, and its `manifest.json` (what
/// it holds).
fn fixture(name: &str) -> (PathBuf, serde_json::Value) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let manifest = std::fs::read(fixture.join("manifest.json")).expect("manifest");
    (fixture, serde_json::from_slice(&manifest).expect("json"))
}

/// Stops `node` cleanly, then runs `linkmesh check` on its data dir.
fn check_after(mut node: Node, data_dir: &Path) -> (Option<i32>, String) {
    assert!(node.terminate().success());
    check(data_dir)
}

#[tokio::test]
async fn a_data_dir_of_the_previous_format_is_adopted_once() {
    let (fixture, manifest) = fixture("legacy-data-dir");
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().join("legacy");
    copy_dir(&fixture.join("data"), &data_dir);
    let (code, report) = check(&data_dir);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("identity: none"), "{report}");

    let mut node = launch(&data_dir, CONFIG, "127.0.0.1:0").serving();
    assert!(node.log().contains("adopting a data dir written by an earlier linkmesh"), "{}", node.log());
    let ids = assert_manifest_served(&node, &manifest).await;
    assert!(node.terminate().success());
    assert!(data_dir.join("identity.json").exists());

    let node = launch(&data_dir, CONFIG, "127.0.0.1:0").serving();
    let log = node.log();
    assert_eq!(log.matches("adopting a data dir").count(), 1, "adopted once:\n{log}");
    assert_eq!(collector_ids(&node.base_url).await, ids);
    let (code, report) = check_after(node, &data_dir);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("store format 4"), "{report}");
    assert!(data_dir.join("durable-facts").exists());
}

/// Every collector of a fixture's manifest is listed and its token (if it has one) still polls.
async fn assert_manifest_served(node: &Node, manifest: &serde_json::Value) -> BTreeSet<String> {
    let ids = collector_ids(&node.base_url).await;
    let http = reqwest::Client::new();
    for collector in manifest["collectors"].as_array().expect("collectors") {
        let id = collector["id"].as_str().expect("id");
        assert!(ids.contains(id), "{id} kept");
        let Some(token) = collector["token"].as_str() else { continue };
        let request =
            linkmesh::proto::collector::v1::GetConfigRequest { id: "h".into(), ..Default::default() };
        let response = http
            .post(node.url("/collector.v1.CollectorService/GetConfig"))
            .bearer_auth(token)
            .header("content-type", "application/proto")
            .body(prost::Message::encode_to_vec(&request))
            .send()
            .await
            .expect("poll");
        assert_eq!(response.status(), 200, "the token of {id} still works");
    }
    ids
}

/// A data dir written by store format 2 (the facts inside identity.json, `tests/fixtures/format2-data-dir`,
/// made by the commit before format 3) moves its facts to durable-facts at its first start, once; a
/// migration interrupted between its two steps (the facts file written, identity.json not yet
/// replaced) is done again at the next start.
#[tokio::test]
async fn a_data_dir_of_store_format_2_is_migrated_once() {
    let (fixture, manifest) = fixture("format2-data-dir");
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().join("format2");
    copy_dir(&fixture.join("data"), &data_dir);
    let old_record = std::fs::read(data_dir.join("identity.json")).expect("record");
    let (code, report) = check(&data_dir);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("store format 2") && report.contains("inline in identity.json"), "{report}");

    let mut node = launch(&data_dir, CONFIG, "127.0.0.1:0").serving();
    assert!(node.log().contains("moved the durable facts out of identity.json"), "{}", node.log());
    let ids = assert_manifest_served(&node, &manifest).await;
    create_collectors(&node.base_url, "after-migration", 5, 1).await;
    assert!(node.terminate().success());
    let record = std::fs::read_to_string(data_dir.join("identity.json")).expect("record");
    assert!(record.contains(r#""store_format":4"#) && !record.contains("facts"), "{record}");

    let node = launch(&data_dir, CONFIG, "127.0.0.1:0").serving();
    assert_eq!(node.log().matches("moved the durable facts").count(), 1, "migrated once:\n{}", node.log());
    let all = collector_ids(&node.base_url).await;
    assert!(ids.is_subset(&all) && all.len() == ids.len() + 5);
    let (code, report) = check_after(node, &data_dir);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("store format 4") && report.contains("durable-facts slot"), "{report}");

    // Interrupted migration: a fresh copy whose facts file exists but whose record is still format 2.
    let interrupted = temp.path().join("interrupted");
    copy_dir(&fixture.join("data"), &interrupted);
    let mut node = launch(&interrupted, CONFIG, "127.0.0.1:0").serving();
    assert_manifest_served(&node, &manifest).await;
    assert!(node.terminate().success());
    std::fs::write(interrupted.join("identity.json"), &old_record).expect("restore the format-2 record");
    let node = launch(&interrupted, CONFIG, "127.0.0.1:0").serving();
    assert_eq!(node.log().matches("moved the durable facts").count(), 2, "{}", node.log());
    assert_manifest_served(&node, &manifest).await;
}

/// A data dir written by store format 3 (`tests/fixtures/format3-data-dir`, made by linkmesh at bae8ad6:
/// 14 collectors, 10 with a token, 5 of those polled once, and a JSON snapshot inside sled; its
/// `raft/db` is gzipped) moves its snapshot to `snapshots/` at its first start, once: collectors,
/// tokens and events survive, and the next snapshot is written in the binary format and replaces it.
/// Either half of an interrupted migration is finished at the next start.
#[tokio::test]
async fn a_data_dir_of_store_format_3_moves_its_snapshot_to_a_file() {
    let (fixture, manifest) = fixture("format3-data-dir");
    let temp = tempfile::tempdir().expect("temp");
    let unpack = |name: &str| {
        let data_dir = temp.path().join(name);
        copy_dir(&fixture.join("data"), &data_dir);
        let gzipped = data_dir.join("raft/db.gz");
        let mut db = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&gzipped).expect("db.gz")),
            &mut db,
        )
        .expect("gunzip");
        std::fs::write(data_dir.join("raft/db"), db).expect("db");
        std::fs::remove_file(gzipped).expect("rm db.gz");
        data_dir
    };
    let data_dir = unpack("format3");
    let old_record = std::fs::read(data_dir.join("identity.json")).expect("record");
    let (code, report) = check(&data_dir);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("store format 3") && report.contains("inline in the raft store"), "{report}");
    assert!(report.contains("collectors: 14 (10 with a token)"), "{report}");

    let mut node = launch(&data_dir, CONFIG, "127.0.0.1:0").serving();
    assert!(node.log().contains("moved the snapshot out of the raft store"), "{}", node.log());
    assert_format3_fixture_served(&node, &manifest).await;
    assert!(snapshot_file(&data_dir).exists());
    // The data dir's release knew no feature levels: the sole member raises the level to this
    // release's, and from then on snapshots are binary and events are kept in the history tree (the
    // fixture's events, moved there by the raise, are read back below after restarts).
    wait_for_feature_level(&node.base_url, u64::from(linkmesh::model::feature_level::THIS_RELEASE.0)).await;
    // Enough entries for a snapshot of the new format (CONFIG: every 20).
    create_collectors(&node.base_url, "after-migration", 25, 1).await;
    assert!(node.terminate().success());
    let record = std::fs::read_to_string(data_dir.join("identity.json")).expect("record");
    assert!(record.contains(r#""store_format":4"#), "{record}");
    let bytes = std::fs::read(snapshot_file(&data_dir)).expect("snapshot file");
    assert!(bytes.starts_with(b"\x89LMSNAP\n"), "the new snapshot is binary");
    let (code, report) = check(&data_dir);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("store format 4") && report.contains("bytes in snapshots/"), "{report}");
    assert!(report.contains("collectors: 39 (10 with a token)"), "{report}");

    let node = launch(&data_dir, CONFIG, "127.0.0.1:0").serving();
    assert_eq!(node.log().matches("moved the snapshot out").count(), 1, "migrated once:\n{}", node.log());
    assert_format3_fixture_served(&node, &manifest).await;
    assert_eq!(collector_ids(&node.base_url).await.len(), 39);
    drop(node);

    // Interrupted after the file was written, before sled pointed at it: a stray file, inline data.
    let before_record = unpack("interrupted-early");
    std::fs::create_dir(before_record.join("snapshots")).expect("mkdir");
    std::fs::write(before_record.join("snapshots/half-written.snap"), b"{\"last_applied\":").expect("stray");
    let node = launch(&before_record, CONFIG, "127.0.0.1:0").serving();
    assert_format3_fixture_served(&node, &manifest).await;
    assert!(!before_record.join("snapshots/half-written.snap").exists(), "the stray file is removed");
    drop(node);

    // Interrupted after sled pointed at the file, before identity.json said format 4.
    let after_sled = unpack("interrupted-late");
    let mut node = launch(&after_sled, CONFIG, "127.0.0.1:0").serving();
    assert_format3_fixture_served(&node, &manifest).await;
    assert!(node.terminate().success(), "{}", node.log());
    std::fs::write(after_sled.join("identity.json"), &old_record).expect("the format-3 record back");
    let mut node = launch(&after_sled, CONFIG, "127.0.0.1:0").serving();
    assert_format3_fixture_served(&node, &manifest).await;
    assert!(node.terminate().success());
    let record = std::fs::read_to_string(after_sled.join("identity.json")).expect("record");
    assert!(record.contains(r#""store_format":4"#), "{record}");

    // A data dir of a format this release does not know is refused as such, untouched.
    let body = record.lines().next().expect("body").replace(r#""store_format":4"#, r#""store_format":5"#);
    let newer = format!("{body}\ncrc32 {:08x}\n", crc32fast::hash(body.as_bytes()));
    std::fs::write(after_sled.join("identity.json"), &newer).expect("a newer record");
    let (code, log) = launch(&after_sled, CONFIG, "127.0.0.1:0").refused();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        refusal_line(&log).contains("was written by a newer linkmesh (store format 5; this one reads 4)"),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(after_sled.join("identity.json")).expect("record"), newer);
}

/// The fixture's collectors are listed, its events kept, and its tokens still poll.
async fn assert_format3_fixture_served(node: &Node, manifest: &serde_json::Value) {
    let admin = admin(&node.base_url).await;
    for (id, recorded) in manifest["events"].as_object().expect("events") {
        let body: serde_json::Value = admin
            .get(node.url(&format!("/api/v1/collectors/{id}/events")))
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("json");
        let events = body["events"].as_array().expect("events");
        assert!(events.len() as u64 >= recorded.as_u64().expect("count"), "{id}: {body}");
        assert!(events.iter().any(|event| event["type"] == "token_minted"), "{id}: {body}");
    }
    assert_manifest_served(node, manifest).await;
}

#[tokio::test]
async fn check_reports_counts_and_refuses_a_running_node() {
    let origin = origin(30).await;
    let (code, report) = check(&origin.data_dir);
    assert_eq!(code, Some(0), "{report}");
    let collectors = format!("collectors: {}", origin.collectors.len());
    for expected in [collectors.as_str(), "users: 1", "log: ", "snapshot: up to index", "result: sound"] {
        assert!(report.contains(expected), "{expected:?} in:\n{report}");
    }
    let node = launch(&origin.data_dir, CONFIG, "127.0.0.1:0").serving();
    let (code, report) = check(&origin.data_dir);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("in use by another linkmesh process"), "{report}");
    drop(node);

    let empty = origin.temp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert_eq!(check(&empty).0, Some(1));
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_private_and_a_writable_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
    let origin = origin(1).await;
    assert_eq!(mode(&origin.data_dir), 0o700);
    assert_eq!(mode(&origin.data_dir.join("raft")), 0o700);
    for file in ["identity.json", "durable-facts", "data-key", "raft/db", "raft/conf"] {
        assert_eq!(mode(&origin.data_dir.join(file)), 0o600, "{file}");
    }
    std::fs::set_permissions(&origin.data_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (code, log) = launch(&origin.data_dir, CONFIG, "127.0.0.1:0").refused();
    assert_eq!(code, Some(1), "{log}");
    assert!(refusal_line(&log).contains("is writable by group or others (mode 777)"), "{log}");
    assert!(refusal_line(&log).contains("chmod 700"), "{log}");
}
