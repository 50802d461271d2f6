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
    let raft = RaftNode::start(store, NodeInfo::default(), &RaftSettings::default(), runtime, effects, peers)
        .await
        .expect("raft");
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
