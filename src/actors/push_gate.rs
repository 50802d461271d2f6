//! `PushGate`: admission of own_metrics pushes, before their body is read.
//!
//! A bounded number of pushes may be in flight per collector (429 beyond) and per node (503 beyond), so
//! a flood costs bounded memory and never queues without limit in front of an actor. Both bounds are
//! checked at the edge, before the body is read; in a cluster the per-node bound stays with the node
//! that reads the body and the per-collector count with the node where the collector's actor lives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::slot_of;

/// Shards of the per-collector counts, to keep lock hold times short.
const GATE_SHARDS: usize = 64;

/// Which bound refused a push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRefused {
    /// The collector has `collectors.max_pushes_in_flight_per_collector` pushes in flight already.
    #[error("collector {0:?} has too many own_metrics pushes in flight")]
    PerCollector(String),
    /// This node has `collectors.max_pushes_in_flight` pushes in flight already.
    #[error("too many own_metrics pushes in flight on this node")]
    Node,
}

/// Counts own_metrics pushes in flight, per collector and per node.
pub struct PushGate {
    total: AtomicUsize,
    per_collector: Vec<Mutex<HashMap<String, usize>>>,
    max_per_collector: usize,
    max_total: usize,
}

/// Admission of one push; released when dropped. `collector_id` is `None` for the edge's per-node
/// admission of a push the owner's per-collector count admits (forwarded pushes); `counts_node` is
/// false for the owner's per-collector admission of a push another node read.
pub struct PushPermit {
    gate: Arc<PushGate>,
    collector_id: Option<String>,
    counts_node: bool,
}

impl PushGate {
    pub fn new(max_per_collector: usize, max_total: usize) -> Arc<Self> {
        Arc::new(PushGate {
            total: AtomicUsize::new(0),
            per_collector: (0..GATE_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_collector,
            max_total,
        })
    }

    fn shard(&self, collector_id: &str) -> &Mutex<HashMap<String, usize>> {
        &self.per_collector[slot_of(collector_id) % GATE_SHARDS]
    }

    /// Admits a push, or says which bound it hit.
    pub fn admit(self: &Arc<Self>, collector_id: &str) -> Result<PushPermit, PushRefused> {
        let mut shard = self.shard(collector_id).lock();
        let in_flight = shard.get(collector_id).copied().unwrap_or(0);
        if in_flight >= self.max_per_collector {
            return Err(PushRefused::PerCollector(collector_id.to_owned()));
        }
        let admitted = self.total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |total| {
            (total < self.max_total).then_some(total + 1)
        });
        if admitted.is_err() {
            return Err(PushRefused::Node);
        }
        shard.insert(collector_id.to_owned(), in_flight + 1);
        Ok(PushPermit { gate: self.clone(), collector_id: Some(collector_id.to_owned()), counts_node: true })
    }

    /// The per-node bound only: a push this node reads and forwards to the collector's owner.
    pub fn admit_node(self: &Arc<Self>) -> Result<PushPermit, PushRefused> {
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |total| {
                (total < self.max_total).then_some(total + 1)
            })
            .map_err(|_| PushRefused::Node)?;
        Ok(PushPermit { gate: self.clone(), collector_id: None, counts_node: true })
    }

    /// The per-collector bound only: a push another node read (and admitted per node) forwarded here.
    pub fn admit_collector(self: &Arc<Self>, collector_id: &str) -> Result<PushPermit, PushRefused> {
        let mut shard = self.shard(collector_id).lock();
        let in_flight = shard.get(collector_id).copied().unwrap_or(0);
        if in_flight >= self.max_per_collector {
            return Err(PushRefused::PerCollector(collector_id.to_owned()));
        }
        shard.insert(collector_id.to_owned(), in_flight + 1);
        Ok(PushPermit { gate: self.clone(), collector_id: Some(collector_id.to_owned()), counts_node: false })
    }

    pub fn in_flight(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for PushPermit {
    fn drop(&mut self) {
        if let Some(collector_id) = &self.collector_id {
            let mut shard = self.gate.shard(collector_id).lock();
            if let Some(count) = shard.get_mut(collector_id) {
                *count -= 1;
                if *count == 0 {
                    shard.remove(collector_id);
                }
            }
        }
        if self.counts_node {
            self.gate.total.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_gate_bounds_each_collector_and_the_node() {
        let gate = PushGate::new(2, 3);
        let first = gate.admit("col_a").expect("first");
        let _second = gate.admit("col_a").expect("second");
        assert!(matches!(gate.admit("col_a"), Err(PushRefused::PerCollector(_))));
        let _third = gate.admit("col_b").expect("other collector");
        assert!(matches!(gate.admit("col_c"), Err(PushRefused::Node)));
        drop(first);
        assert_eq!(gate.in_flight(), 2);
        let _again = gate.admit("col_a").expect("released");
        assert!(matches!(gate.admit("col_a"), Err(PushRefused::PerCollector(_))));
    }

    #[test]
    fn forwarded_pushes_count_per_node_at_the_edge_and_per_collector_at_the_owner() {
        let gate = PushGate::new(1, 2);
        let edge = gate.admit_node().expect("edge");
        let owner = gate.admit_collector("col_a").expect("owner");
        assert_eq!(gate.in_flight(), 1, "the owner's count is not the node's");
        assert!(matches!(gate.admit_collector("col_a"), Err(PushRefused::PerCollector(_))));
        let _second_edge = gate.admit_node().expect("second");
        assert!(matches!(gate.admit_node(), Err(PushRefused::Node)));
        drop(edge);
        drop(owner);
        assert_eq!(gate.in_flight(), 1);
        assert!(gate.shard("col_a").lock().is_empty());
    }

    #[test]
    fn a_refused_push_holds_no_slot() {
        let gate = PushGate::new(1, 1);
        let held = gate.admit("col_a").expect("admitted");
        assert!(gate.admit("col_b").is_err());
        assert!(gate.admit("col_a").is_err());
        drop(held);
        assert_eq!(gate.in_flight(), 0);
        assert!(gate.shard("col_a").lock().is_empty());
        gate.admit("col_b").expect("admitted after release");
    }
}
