//! Reads from any node: the live fields of collectors (status being computed, poll cadence, the
//! effective config not written yet) come from the actors on their slots' owners. [`gather`] groups the
//! asked collectors by owner on the local replica, asks the local registry for this node's and every
//! other owner in one `LiveState` call, all at once, each call bounded by [`LIVE_READ_LIMIT`]; an owner
//! that does not answer in time leaves its collectors [`LiveRead::OwnerNotAsked`] (the API then shows
//! the replicated record marked `"live": false`). [`answer`] is the owner's side.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::payload;
use super::peers::PeerPool;
use crate::actors::collector_actor::{LiveApply, LiveView};
use crate::actors::registry::CollectorRegistry;
use crate::actors::throughput::{
    ComponentThroughput, FlowTotals, ProcessStats, RateSample, ThroughputSnapshot,
};
use crate::model::{slot_of, CollectorStatus, RemoteConfigState, UnixMillis};
use crate::opamp::components::AgentView;
use crate::own_metrics::metric_rules::{ComponentKey, IdSpace};
use crate::proto::cluster::v1::{LiveStateReply, LiveStateRequest};
use crate::raft::RaftNode;

/// How long a read waits for a remote owner. A UI list or an SSE tick should not stall on a stopped
/// or partitioned node: an owner on a healthy network answers a batch in a few milliseconds (one
/// mailbox round trip per resident actor), so half a second separates "slow" from "not there" while
/// keeping a page load, and a stream tick (1 s), well within a second.
pub const LIVE_READ_LIMIT: Duration = Duration::from_millis(500);

/// The most collector ids one `LiveState` call may carry (the owner refuses more): a list of every
/// collector of a large fleet stays far below the peer message limit.
pub const MAX_IDS_PER_CALL: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum LiveReadError {
    #[error("a live state request names {0} collectors, at most {MAX_IDS_PER_CALL} are answered")]
    TooManyIds(usize),
    #[error("this node does not serve live state yet (its actors are not started)")]
    NotStarted,
    #[error("live state payload: {0}")]
    Payload(#[from] payload::PayloadError),
}

/// What a read learned about one collector's live fields.
#[derive(Debug, Clone)]
pub enum LiveRead {
    /// The owner's actor answered.
    Live(Box<LiveView>),
    /// The owner answered, but no actor of this collector is resident there (never polled since the
    /// owner started): the replicated record is all there is, as on a single node.
    NotResident,
    /// The owner could not be asked in time (stopped, partitioned, or not serving yet).
    OwnerNotAsked,
}

/// One collector's owner (`None` before bootstrap) and its live fields.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub owner: Option<u64>,
    pub read: LiveRead,
}

impl Gathered {
    pub fn live(&self) -> Option<LiveView> {
        match &self.read {
            LiveRead::Live(view) => Some(view.as_ref().clone()),
            LiveRead::NotResident | LiveRead::OwnerNotAsked => None,
        }
    }

    /// Whether the owner was asked (`false`: the view shows replicated fields only).
    pub fn owner_asked(&self) -> bool {
        !matches!(self.read, LiveRead::OwnerNotAsked)
    }
}

/// The late-bound registry the owner's side answers from: the peer service starts before the
/// registry (a joining node serves Raft before it has a replica to activate actors from).
#[derive(Clone, Default)]
pub struct LiveSource(Arc<OnceLock<CollectorRegistry>>);

impl LiveSource {
    /// Called once the registry is started; later calls are ignored.
    pub fn set(&self, registry: CollectorRegistry) {
        let _ = self.0.set(registry);
    }

    fn get(&self) -> Option<&CollectorRegistry> {
        self.0.get()
    }
}

/// [`LiveView`] on the wire between nodes (JSON inside `LiveStateReply.live`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LiveWire {
    status: CollectorStatus,
    host_id: Option<String>,
    last_seen_at: Option<UnixMillis>,
    local_attributes: BTreeMap<String, String>,
    delivered_hash: Option<String>,
    remote_status: Option<RemoteConfigState>,
    remote_error: Option<String>,
    expected_poll_interval_ms: u64,
    own_metrics_last_seen_at: Option<UnixMillis>,
    effective_config: Option<String>,
    /// Absent from owners running a build before apply-status inference.
    #[serde(default)]
    apply: LiveApply,
    /// Absent from owners running a build before OpAMP agent views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opamp: Option<AgentView>,
}

impl From<LiveView> for LiveWire {
    fn from(view: LiveView) -> Self {
        LiveWire {
            status: view.status,
            host_id: view.host_id,
            last_seen_at: view.last_seen_at,
            local_attributes: view.local_attributes,
            delivered_hash: view.delivered_hash,
            remote_status: view.remote_status,
            remote_error: view.remote_error,
            expected_poll_interval_ms: u64::try_from(view.expected_poll_interval.as_millis())
                .unwrap_or(u64::MAX),
            own_metrics_last_seen_at: view.own_metrics_last_seen_at,
            effective_config: view.effective_config.map(|config| config.to_string()),
            apply: view.apply,
            opamp: view.opamp,
        }
    }
}

impl From<LiveWire> for LiveView {
    fn from(wire: LiveWire) -> Self {
        LiveView {
            status: wire.status,
            host_id: wire.host_id,
            last_seen_at: wire.last_seen_at,
            local_attributes: wire.local_attributes,
            delivered_hash: wire.delivered_hash,
            remote_status: wire.remote_status,
            remote_error: wire.remote_error,
            expected_poll_interval: Duration::from_millis(wire.expected_poll_interval_ms),
            own_metrics_last_seen_at: wire.own_metrics_last_seen_at,
            effective_config: wire.effective_config.map(Arc::from),
            apply: wire.apply,
            opamp: wire.opamp,
        }
    }
}

/// The collectors this node answers itself, and those of each other owner.
#[derive(Debug, Default, PartialEq)]
struct Groups {
    local: Vec<String>,
    remote: BTreeMap<u64, Vec<String>>,
}

/// Groups `ids` by owner; a collector whose slot has no owner yet (before bootstrap) is local.
fn group(
    ids: Vec<String>,
    me: u64,
    owner_of: impl Fn(&str) -> Option<u64>,
) -> (Groups, HashMap<String, Option<u64>>) {
    let mut groups = Groups::default();
    let mut owners = HashMap::with_capacity(ids.len());
    for id in ids {
        let owner = owner_of(&id);
        owners.insert(id.clone(), owner);
        match owner {
            Some(owner) if owner != me => groups.remote.entry(owner).or_default().push(id),
            _ => groups.local.push(id),
        }
    }
    (groups, owners)
}

/// Live fields of `ids` (collectors of the local replica; unknown ids are answered as not resident).
pub async fn gather(
    raft: &RaftNode,
    registry: &CollectorRegistry,
    ids: Vec<String>,
) -> HashMap<String, Gathered> {
    let (groups, owners) = {
        let state = raft.state();
        group(ids, raft.node_id(), |id| state.fleet.slot_owner(slot_of(id)))
    };
    let addresses: HashMap<u64, String> = groups
        .remote
        .keys()
        .filter_map(|owner| owner_address(raft, *owner).map(|addr| (*owner, addr)))
        .collect();
    let local = async {
        let reads = groups.local.iter().map(|id| async move {
            let read = registry
                .observe(id)
                .await
                .map_or(LiveRead::NotResident, |view| LiveRead::Live(Box::new(view)));
            (id.clone(), read)
        });
        futures_util::future::join_all(reads).await
    };
    let remote = futures_util::future::join_all(groups.remote.into_iter().map(|(owner, ids)| {
        let addr = addresses.get(&owner).cloned().unwrap_or_default();
        ask_owner(raft.peers(), owner, addr, ids, LIVE_READ_LIMIT)
    }));
    let (local, remote) = futures_util::future::join(local, remote).await;
    local
        .into_iter()
        .chain(remote.into_iter().flatten())
        .map(|(id, read)| {
            let owner = owners.get(&id).copied().flatten();
            (id, Gathered { owner, read })
        })
        .collect()
}

/// One `LiveState` call to `owner` at `addr`, bounded by `limit`; `None`: the owner could not be asked.
async fn call_owner(
    peers: &PeerPool,
    owner: u64,
    addr: &str,
    request: LiveStateRequest,
    limit: Duration,
) -> Option<LiveStateReply> {
    if addr.is_empty() {
        tracing::debug!(owner, "live read: the owner has no cluster address in the membership");
        return None;
    }
    let reply =
        peers
            .call(owner, addr, request, limit, |mut client, request| async move {
                client.live_state(request).await
            })
            .await;
    reply
        .map_err(|error| tracing::debug!(owner, error = %error, "live read: the owner could not be asked"))
        .ok()
}

fn decode<T: serde::de::DeserializeOwned>(owner: u64, bytes: &[u8]) -> Option<T> {
    payload::from_json(bytes)
        .map_err(
            |error| tracing::warn!(owner, error = %error, "live read: the owner's answer does not decode"),
        )
        .ok()
}

/// The live views of `ids` from `owner`; every id is answered.
async fn ask_owner(
    peers: &PeerPool,
    owner: u64,
    addr: String,
    ids: Vec<String>,
    limit: Duration,
) -> Vec<(String, LiveRead)> {
    let request = LiveStateRequest { collector_ids: ids.clone(), ..LiveStateRequest::default() };
    let answered = call_owner(peers, owner, &addr, request, limit)
        .await
        .and_then(|reply| decode::<HashMap<String, LiveWire>>(owner, &reply.live));
    match answered {
        Some(mut live) => ids
            .into_iter()
            .map(|id| {
                let read = live
                    .remove(&id)
                    .map_or(LiveRead::NotResident, |wire| LiveRead::Live(Box::new(wire.into())));
                (id, read)
            })
            .collect(),
        None => ids.into_iter().map(|id| (id, LiveRead::OwnerNotAsked)).collect(),
    }
}

/// A collector's throughput as its owner knows it (the topology API).
#[derive(Debug)]
pub enum ThroughputRead {
    /// The owner's actor answered.
    Live(ThroughputSnapshot),
    /// No actor of this collector on its owner: no push arrived since the owner activated it.
    NotResident,
    /// The owner could not be asked in time.
    OwnerNotAsked,
}

/// The throughput of `collector_id` from its owner (this node's actor, or one bounded call).
pub async fn gather_throughput(
    raft: &RaftNode,
    registry: &CollectorRegistry,
    collector_id: &str,
    history: bool,
) -> ThroughputRead {
    let owner = raft.state().fleet.slot_owner(slot_of(collector_id));
    let owner = match owner {
        Some(owner) if owner != raft.node_id() => owner,
        _ => {
            return registry
                .throughput(collector_id, history)
                .await
                .map_or(ThroughputRead::NotResident, ThroughputRead::Live);
        }
    };
    let addr = owner_address(raft, owner).unwrap_or_default();
    let request = LiveStateRequest {
        collector_ids: vec![collector_id.to_owned()],
        throughput: true,
        throughput_history: history,
    };
    let Some(reply) = call_owner(raft.peers(), owner, &addr, request, LIVE_READ_LIMIT).await else {
        return ThroughputRead::OwnerNotAsked;
    };
    match decode::<HashMap<String, ThroughputWire>>(owner, &reply.throughput) {
        Some(mut snapshots) => snapshots
            .remove(collector_id)
            .map_or(ThroughputRead::NotResident, |wire| ThroughputRead::Live(wire.into())),
        None => ThroughputRead::OwnerNotAsked,
    }
}

/// `owner`'s cluster address as the local membership knows it.
fn owner_address(raft: &RaftNode, owner: u64) -> Option<String> {
    let metrics = raft.openraft().metrics();
    let metrics = metrics.borrow();
    metrics.membership_config.membership().get_node(&owner).map(|node| node.rpc_addr.clone())
}

/// The owner's side of `LiveState`: the live view (and, when asked, the throughput) of every asked
/// collector resident here.
pub async fn answer(source: &LiveSource, request: LiveStateRequest) -> Result<LiveStateReply, LiveReadError> {
    if request.collector_ids.len() > MAX_IDS_PER_CALL {
        return Err(LiveReadError::TooManyIds(request.collector_ids.len()));
    }
    let registry = source.get().ok_or(LiveReadError::NotStarted)?;
    let LiveStateRequest { collector_ids, throughput, throughput_history } = request;
    let reads = collector_ids.iter().map(|id| async move {
        let view = registry.observe(id).await?;
        let snapshot = match throughput {
            true => registry.throughput(id, throughput_history).await.map(ThroughputWire::from),
            false => None,
        };
        Some((id.clone(), LiveWire::from(view), snapshot))
    });
    let mut live = HashMap::new();
    let mut snapshots = HashMap::new();
    for (id, view, snapshot) in futures_util::future::join_all(reads).await.into_iter().flatten() {
        if let Some(snapshot) = snapshot {
            snapshots.insert(id.clone(), snapshot);
        }
        live.insert(id, view);
    }
    let throughput = if throughput { payload::to_json(&snapshots)? } else { Vec::new() };
    Ok(LiveStateReply { live: payload::to_json(&live)?, throughput })
}

/// [`ThroughputSnapshot`] on the wire between nodes (JSON inside `LiveStateReply.throughput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ThroughputWire {
    updated_at: Option<UnixMillis>,
    components: Vec<ComponentWire>,
    graph_connections: Vec<(String, String)>,
    cpu_cores: Option<f64>,
    resident_memory_bytes: Option<f64>,
    uptime_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ComponentWire {
    space: SpaceWire,
    id: String,
    receiver: bool,
    exporter: bool,
    latest: Option<SampleWire>,
    total_in: Option<f64>,
    total_out: Option<f64>,
    total_error: Option<f64>,
    queue_size: Option<f64>,
    queue_capacity: Option<f64>,
    history: Vec<SampleWire>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SpaceWire {
    Alloy,
    Receiver,
    Processor,
    Exporter,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct SampleWire {
    at: UnixMillis,
    in_rate: Option<f64>,
    out_rate: Option<f64>,
    error_rate: Option<f64>,
}

impl From<RateSample> for SampleWire {
    fn from(sample: RateSample) -> Self {
        SampleWire {
            at: sample.at,
            in_rate: sample.in_rate,
            out_rate: sample.out_rate,
            error_rate: sample.error_rate,
        }
    }
}

impl From<SampleWire> for RateSample {
    fn from(wire: SampleWire) -> Self {
        RateSample {
            at: wire.at,
            in_rate: wire.in_rate,
            out_rate: wire.out_rate,
            error_rate: wire.error_rate,
        }
    }
}

impl From<ThroughputSnapshot> for ThroughputWire {
    fn from(snapshot: ThroughputSnapshot) -> Self {
        let components = snapshot
            .components
            .into_iter()
            .map(|component| ComponentWire {
                space: match component.key.space {
                    IdSpace::Alloy => SpaceWire::Alloy,
                    IdSpace::Receiver => SpaceWire::Receiver,
                    IdSpace::Processor => SpaceWire::Processor,
                    IdSpace::Exporter => SpaceWire::Exporter,
                },
                id: component.key.id,
                receiver: component.receiver,
                exporter: component.exporter,
                latest: component.latest.map(SampleWire::from),
                total_in: component.totals.into,
                total_out: component.totals.out,
                total_error: component.totals.error,
                queue_size: component.queue_size,
                queue_capacity: component.queue_capacity,
                history: component.history.into_iter().map(SampleWire::from).collect(),
            })
            .collect();
        ThroughputWire {
            updated_at: snapshot.updated_at,
            components,
            graph_connections: snapshot.graph_connections,
            cpu_cores: snapshot.process.cpu_cores,
            resident_memory_bytes: snapshot.process.resident_memory_bytes,
            uptime_seconds: snapshot.process.uptime_seconds,
        }
    }
}

impl From<ThroughputWire> for ThroughputSnapshot {
    fn from(wire: ThroughputWire) -> Self {
        let components = wire
            .components
            .into_iter()
            .map(|component| ComponentThroughput {
                key: ComponentKey {
                    space: match component.space {
                        SpaceWire::Alloy => IdSpace::Alloy,
                        SpaceWire::Receiver => IdSpace::Receiver,
                        SpaceWire::Processor => IdSpace::Processor,
                        SpaceWire::Exporter => IdSpace::Exporter,
                    },
                    id: component.id,
                },
                receiver: component.receiver,
                exporter: component.exporter,
                latest: component.latest.map(RateSample::from),
                totals: FlowTotals {
                    into: component.total_in,
                    out: component.total_out,
                    error: component.total_error,
                },
                queue_size: component.queue_size,
                queue_capacity: component.queue_capacity,
                history: component.history.into_iter().map(RateSample::from).collect(),
            })
            .collect();
        ThroughputSnapshot {
            updated_at: wire.updated_at,
            components,
            graph_connections: wire.graph_connections,
            process: ProcessStats {
                cpu_cores: wire.cpu_cores,
                resident_memory_bytes: wire.resident_memory_bytes,
                uptime_seconds: wire.uptime_seconds,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply_status::InferredOutcome;
    use crate::cluster::credential::ClusterCredential;
    use crate::model::InferredApply;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn collectors_are_grouped_by_owner_and_unowned_slots_are_local() {
        let owner_of = |id: &str| match id {
            "a" | "d" => Some(1),
            "b" => Some(2),
            "c" | "e" => Some(3),
            _ => None,
        };
        let (groups, owners) = group(ids(&["a", "b", "c", "d", "e", "f"]), 1, owner_of);
        assert_eq!(groups.local, ids(&["a", "d", "f"]));
        assert_eq!(groups.remote, BTreeMap::from([(2, ids(&["b"])), (3, ids(&["c", "e"]))]));
        assert_eq!(owners.get("f"), Some(&None));
        assert_eq!(owners.get("c"), Some(&Some(3)));
    }

    #[test]
    fn the_wire_form_keeps_every_live_field() {
        let view = LiveView {
            status: CollectorStatus::Connected,
            host_id: Some("host-1".to_owned()),
            last_seen_at: Some(UnixMillis(1_800_000_000_000)),
            local_attributes: BTreeMap::from([("os".to_owned(), "linux".to_owned())]),
            delivered_hash: Some("abc".to_owned()),
            remote_status: Some(RemoteConfigState::Applied),
            remote_error: None,
            expected_poll_interval: Duration::from_secs(30),
            own_metrics_last_seen_at: Some(UnixMillis(1_800_000_000_500)),
            effective_config: Some(Arc::from("logging {}")),
            apply: LiveApply {
                inferred: Some(InferredApply {
                    version: 3,
                    outcome: InferredOutcome::Failed,
                    reason: "the remotecfg module is unhealthy".to_owned(),
                    signals: vec!["alloy_component_controller_running_components".to_owned()],
                    at: UnixMillis(1_800_000_000_100),
                }),
                pending_version: None,
                disagreement: Some("Alloy reports version 3 applied".to_owned()),
            },
            opamp: Some(AgentView {
                capabilities: vec!["reports status".to_owned()],
                health: Some(crate::opamp::components::AgentHealth {
                    healthy: false,
                    status: "StatusRecoverableError".to_owned(),
                    last_error: "exporter failed".to_owned(),
                }),
                available_components: None,
            }),
        };
        let wire = LiveWire::from(view);
        let decoded: LiveWire =
            payload::from_json(&payload::to_json(&wire).expect("encode")).expect("decode");
        assert_eq!(decoded, wire);
        let back = LiveView::from(decoded);
        assert_eq!(back.expected_poll_interval, Duration::from_secs(30));
        assert_eq!(back.effective_config.as_deref(), Some("logging {}"));
        assert_eq!(back.apply.inferred.map(|inferred| inferred.outcome), Some(InferredOutcome::Failed));
        assert_eq!(
            back.opamp.and_then(|agent| agent.health).map(|health| health.last_error).as_deref(),
            Some("exporter failed")
        );
    }

    #[test]
    fn the_throughput_wire_form_keeps_the_snapshot() {
        let sample = |at, rate| RateSample {
            at: UnixMillis(at),
            in_rate: Some(rate),
            out_rate: None,
            error_rate: Some(0.0),
        };
        let snapshot = ThroughputSnapshot {
            updated_at: Some(UnixMillis(1_800_000_030_000)),
            components: vec![ComponentThroughput {
                key: ComponentKey::alloy("otelcol.receiver.otlp.src_1"),
                receiver: true,
                exporter: false,
                latest: Some(sample(1_800_000_030_000, 12.5)),
                totals: FlowTotals { into: Some(375.0), out: None, error: Some(0.0) },
                queue_size: None,
                queue_capacity: Some(1000.0),
                history: vec![sample(1_800_000_000_000, 10.0), sample(1_800_000_030_000, 12.5)],
            }],
            graph_connections: vec![("a".to_owned(), "b".to_owned())],
            process: ProcessStats {
                cpu_cores: Some(0.25),
                resident_memory_bytes: Some(1e8),
                uptime_seconds: None,
            },
        };
        let wire = ThroughputWire::from(snapshot.clone());
        let decoded: ThroughputWire =
            payload::from_json(&payload::to_json(&wire).expect("encode")).expect("decode");
        assert_eq!(ThroughputSnapshot::from(decoded), snapshot);
    }

    fn pool() -> PeerPool {
        let key = crate::secrets::DataKey::from_bytes(&[3; 32]).expect("key");
        PeerPool::new(ClusterCredential::derive(&key, "clu_test"), None, tokio::runtime::Handle::current())
    }

    #[tokio::test]
    async fn an_owner_that_never_answers_is_reported_not_asked_at_the_limit() {
        // Accepts the connection and then says nothing, like a SIGSTOPped node.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let reads = ask_owner(&pool(), 2, addr, ids(&["a", "b"]), LIVE_READ_LIMIT).await;
        assert_eq!(reads.len(), 2);
        assert!(reads.iter().all(|(_, read)| matches!(read, LiveRead::OwnerNotAsked)), "{reads:?}");
        held.abort();
    }

    #[tokio::test]
    async fn an_owner_without_an_address_is_not_asked() {
        let reads = ask_owner(&pool(), 2, String::new(), ids(&["a"]), LIVE_READ_LIMIT).await;
        assert!(matches!(reads.as_slice(), [(_, LiveRead::OwnerNotAsked)]), "{reads:?}");
    }

    #[tokio::test]
    async fn an_owner_without_a_registry_refuses_and_too_many_ids_are_refused() {
        let source = LiveSource::default();
        let request = LiveStateRequest { collector_ids: ids(&["a"]), ..LiveStateRequest::default() };
        assert!(matches!(answer(&source, request).await, Err(LiveReadError::NotStarted)));
        let request = LiveStateRequest {
            collector_ids: vec![String::new(); MAX_IDS_PER_CALL + 1],
            ..LiveStateRequest::default()
        };
        assert!(matches!(answer(&source, request).await, Err(LiveReadError::TooManyIds(_))));
    }
}
