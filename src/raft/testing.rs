//! Test support: a real one-node Raft member on a fresh data dir (sled, openraft, a peer pool that is
//! never dialled), for unit tests of the parts built on [`RaftNode`].

use std::path::Path;

use tokio::sync::mpsc::UnboundedSender;

use super::{NodeInfo, RaftNode};
use crate::cluster::credential::ClusterCredential;
use crate::cluster::peers::PeerPool;
use crate::config::RaftSettings;
use crate::model::Effect;
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
