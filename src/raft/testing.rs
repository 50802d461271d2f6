//! Test support: a real one-node Raft member on a fresh data dir (sled, openraft, a peer pool that is
//! never dialled), for unit tests of the parts built on [`RaftNode`].

use std::path::Path;

use tokio::sync::mpsc::UnboundedSender;

use super::{NodeInfo, RaftNode};
use crate::cluster::credential::ClusterCredential;
use crate::cluster::peers::PeerPool;
use crate::config::RaftSettings;
use crate::model::{CollectorMode, Command, Effect, UnixMillis};
use crate::secrets::DataKey;

/// Starts a one-voter member on the empty dir `data` (initialized, so it elects itself) and returns it
/// with its data key. Run inside a tokio runtime; openraft runs on that runtime.
pub(crate) async fn one_node(data: &Path, effects: UnboundedSender<Effect>) -> (RaftNode, DataKey) {
    one_node_with(data, effects, &RaftSettings::default()).await
}

/// [`one_node`] with its own Raft settings.
pub(crate) async fn one_node_with(
    data: &Path,
    effects: UnboundedSender<Effect>,
    settings: &RaftSettings,
) -> (RaftNode, DataKey) {
    let data_key = DataKey::load_or_create(None, data).expect("data key");
    let store = super::data_dir::open_store(
        data,
        super::data_dir::Contents::Empty,
        &data_key.fingerprint(),
        super::storage_health::StorageHealth::new(),
        None,
    )
    .expect("store");
    let credential = ClusterCredential::derive(&data_key, "clu_test");
    let peers = PeerPool::new(credential, None, tokio::runtime::Handle::current());
    let runtime = tokio::runtime::Handle::current();
    let raft =
        RaftNode::start(store, NodeInfo::default(), settings, runtime, effects, peers).await.expect("raft");
    (raft, data_key)
}

/// [`one_node`], elected and bootstrapped (an `admin` user, every slot its own) at `at`.
pub(crate) async fn bootstrapped_node(
    data: &Path,
    effects: UnboundedSender<Effect>,
    at: UnixMillis,
) -> (RaftNode, DataKey) {
    let (raft, data_key) = one_node(data, effects).await;
    assert!(raft.wait_for_leader(std::time::Duration::from_secs(30)).await, "no leader");
    let bootstrap = Command::Bootstrap {
        node_id: raft.node_id(),
        admin_user_id: "adm".into(),
        admin_password_hash: "x".into(),
        at,
    };
    raft.propose(bootstrap).await.expect("bootstrap");
    (raft, data_key)
}

/// Creates the Alloy collector `id` (named after it) at `at`.
pub(crate) async fn create_collector(raft: &RaftNode, id: &str, at: UnixMillis) {
    let create = Command::CreateCollector {
        id: id.into(),
        name: id.into(),
        mode: CollectorMode::AlloyRemotecfg,
        remote_attributes: std::collections::BTreeMap::new(),
        at,
        stability_level: Default::default(),
    };
    raft.propose(create).await.expect("create");
}

/// Mints (or rotates to) the token `token` of collector `id` at `at`; returns its hash.
pub(crate) async fn mint_token(
    raft: &RaftNode,
    id: &str,
    token: &str,
    at: UnixMillis,
) -> crate::model::TokenHash {
    let token_hash = crate::secrets::hash_token(token);
    let mint =
        Command::SetCollectorToken { collector_id: id.into(), token_hash, prefix: "lmc_test".into(), at };
    raft.propose(mint).await.expect("mint");
    token_hash
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{create_collector, one_node_with};
    use crate::config::RaftSettings;
    use crate::model::UnixMillis;

    /// `raft.snapshot_after_bytes` (`raft/node.rs`): far fewer entries than `snapshot_after_logs`, but
    /// more bytes than `snapshot_after_bytes`, make a snapshot: openraft's policy alone would not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_is_taken_once_the_log_reaches_snapshot_after_bytes() {
        let data = tempfile::tempdir().expect("dir");
        let (effects, _receiver) = tokio::sync::mpsc::unbounded_channel();
        let settings = RaftSettings {
            snapshot_after_logs: 1_000_000,
            snapshot_after_bytes: 8 << 10,
            ..RaftSettings::default()
        };
        let (raft, _key) = one_node_with(data.path(), effects, &settings).await;
        assert!(raft.wait_for_leader(Duration::from_secs(30)).await, "no leader");
        for index in 0..60 {
            create_collector(&raft, &format!("col_{index:020}"), UnixMillis(1)).await;
        }
        let metrics = raft
            .openraft()
            .wait(Some(Duration::from_secs(30)))
            .metrics(|metrics| metrics.snapshot.is_some(), "a snapshot taken by size")
            .await
            .expect("a snapshot");
        assert!(metrics.snapshot.expect("snapshot").index < 1_000_000);
        let files = std::fs::read_dir(data.path().join("snapshots")).expect("snapshots/").count();
        assert_eq!(files, 1);
        raft.shutdown().await;
    }
}
