//! The OpAMP WebSocket connections this node holds, by collector, so that a change to a collector's
//! config reaches its agent at once (the server may send a `ServerToAgent` at any time on a
//! WebSocket) instead of at the agent's next heartbeat. Every node applies every change, so the node
//! holding a connection hears of it itself, whichever node owns the collector; the connection then
//! asks the owner what to send.
//!
//! A `watch` channel per collector: a connection busy with a message when a change lands still sees
//! it afterwards (`next()` remembers), and several connections of one collector all see it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

#[derive(Debug)]
pub struct OpampConnections {
    by_collector: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Set once the node stops: every connection closes (1001, Going Away) so that its agent
    /// reconnects, to another node behind the load balancer, at once.
    stopping: watch::Sender<bool>,
}

impl Default for OpampConnections {
    fn default() -> Self {
        OpampConnections { by_collector: Mutex::default(), stopping: watch::channel(false).0 }
    }
}

/// One connection's view of its collector's changes; leaving (drop) forgets the collector once no
/// connection of it is left.
#[derive(Debug)]
pub struct ConnectionWatch {
    connections: Arc<OpampConnections>,
    collector_id: String,
    changes: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
}

impl OpampConnections {
    /// A connection of `collector_id` opened on this node.
    pub fn watch(self: &Arc<Self>, collector_id: &str) -> ConnectionWatch {
        let mut by_collector = self.by_collector.lock();
        let sender = by_collector.entry(collector_id.to_owned()).or_insert_with(|| watch::channel(0).0);
        ConnectionWatch {
            connections: self.clone(),
            collector_id: collector_id.to_owned(),
            changes: sender.subscribe(),
            stopping: self.stopping.subscribe(),
        }
    }

    /// The collector's rendered config may have changed (or it was deleted): its connections here
    /// ask the owner what to send.
    pub fn changed(&self, collector_id: &str) {
        if let Some(sender) = self.by_collector.lock().get(collector_id) {
            sender.send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }

    /// [`changed`](Self::changed) for every collector with a connection here that `affected` names.
    pub fn changed_where(&self, affected: impl Fn(&str) -> bool) {
        for (collector_id, sender) in self.by_collector.lock().iter() {
            if affected(collector_id) {
                sender.send_modify(|generation| *generation = generation.wrapping_add(1));
            }
        }
    }

    /// The node stops: every connection closes.
    pub fn close_all(&self) {
        self.stopping.send_replace(true);
    }

    /// Collectors with at least one connection on this node.
    pub fn collectors(&self) -> usize {
        self.by_collector.lock().len()
    }

    /// Connections open on this node.
    pub fn connections(&self) -> usize {
        self.by_collector.lock().values().map(watch::Sender::receiver_count).sum()
    }
}

/// What a connection hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Its collector changed since the last notice.
    Changed,
    /// The node stops.
    Stopping,
}

impl ConnectionWatch {
    /// The next notice: a change after the last one seen (at once if one came meanwhile), or the
    /// node stopping (at once, and again at every call, once it has).
    pub async fn next(&mut self) -> Notice {
        tokio::select! {
            biased;
            _ = self.stopping.wait_for(|stopping| *stopping) => Notice::Stopping,
            changed = self.changes.changed() => match changed {
                Ok(()) => Notice::Changed,
                // The sender lives while this watch does (the map keeps it): never reached.
                Err(_) => std::future::pending().await,
            },
        }
    }
}

impl Drop for ConnectionWatch {
    fn drop(&mut self) {
        let mut by_collector = self.connections.by_collector.lock();
        // This watch's receiver still counts: the last one leaving sees a count of 1.
        if by_collector.get(&self.collector_id).is_some_and(|sender| sender.receiver_count() <= 1) {
            by_collector.remove(&self.collector_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Notice, OpampConnections};

    async fn sees_change(watch: &mut super::ConnectionWatch) -> bool {
        tokio::time::timeout(Duration::from_millis(50), watch.next()).await == Ok(Notice::Changed)
    }

    #[tokio::test]
    async fn every_connection_of_the_collector_sees_a_change_even_one_made_while_it_was_busy() {
        let connections = Arc::new(OpampConnections::default());
        let mut first = connections.watch("c1");
        let mut second = connections.watch("c1");
        let mut other = connections.watch("c2");
        assert!(!sees_change(&mut first).await, "nothing changed yet");
        connections.changed("c1");
        assert!(sees_change(&mut first).await);
        assert!(sees_change(&mut second).await, "changed before it waited");
        assert!(!sees_change(&mut other).await, "another collector");
        assert!(!sees_change(&mut first).await, "seen once");
    }

    #[tokio::test]
    async fn stopping_reaches_every_connection_even_one_opened_after() {
        let connections = Arc::new(OpampConnections::default());
        let mut open = connections.watch("c1");
        let pending = tokio::time::timeout(Duration::from_millis(50), open.next()).await;
        assert!(pending.is_err(), "not stopping yet");
        connections.close_all();
        let told = tokio::time::timeout(Duration::from_millis(50), open.next()).await;
        assert_eq!(told, Ok(Notice::Stopping));
        let mut late = connections.watch("c2");
        let told = tokio::time::timeout(Duration::from_millis(50), late.next()).await;
        assert_eq!(told, Ok(Notice::Stopping), "told at once");
    }

    #[tokio::test]
    async fn the_last_connection_leaving_forgets_the_collector() {
        let connections = Arc::new(OpampConnections::default());
        let first = connections.watch("c1");
        let second = connections.watch("c1");
        assert_eq!((connections.collectors(), connections.connections()), (1, 2));
        drop(first);
        assert_eq!((connections.collectors(), connections.connections()), (1, 1), "one connection left");
        drop(second);
        assert_eq!(connections.collectors(), 0);
        connections.changed("c1");
        let mut again = connections.watch("c1");
        assert!(!sees_change(&mut again).await, "a change with no connection is not kept");
    }
}
