//! The faults, each a small function over the [`Lab`]: network faults are nftables rules in a node's
//! namespace (flushed by [`heal`]); delay is the peer proxy's (`proxy.rs`); pauses, kills and restarts
//! act on the node processes (`run.rs`); the full disk is `disk.rs`.

use super::lab::Lab;

/// Every kind of fault the run injects; the report lists the ones executed and the run fails when one
/// is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// One follower cut off from the other nodes (clients still reach it).
    PartitionOne,
    /// The leader cut off with a minority (in three nodes: alone).
    IsolateLeader,
    /// Packets from one node to another dropped, the other way untouched.
    OneWay,
    /// Random loss on every node's traffic.
    PacketLoss,
    /// Delay and jitter on every peer connection.
    DelayJitter,
    /// SIGSTOP for longer than the election timeout and `node_down_after`, then SIGCONT.
    Pause,
    /// SIGKILL and restart.
    KillRestart,
    /// Every node stopped (SIGTERM) and started again, one at a time.
    RollingRestart,
    /// The data dir's file system filled up: the node must stop itself (exit 4) and rejoin after restart.
    DiskFull,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::PartitionOne,
        FaultKind::IsolateLeader,
        FaultKind::OneWay,
        FaultKind::PacketLoss,
        FaultKind::DelayJitter,
        FaultKind::Pause,
        FaultKind::KillRestart,
        FaultKind::RollingRestart,
        FaultKind::DiskFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::PartitionOne => "partition-one",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::OneWay => "one-way",
            FaultKind::PacketLoss => "packet-loss",
            FaultKind::DelayJitter => "delay-jitter",
            FaultKind::Pause => "pause",
            FaultKind::KillRestart => "kill-restart",
            FaultKind::RollingRestart => "rolling-restart",
            FaultKind::DiskFull => "disk-full",
        }
    }
}

/// Cuts node `node` off from every other node, both ways. The clients' namespace still reaches it, as
/// a load balancer on the node's side of the cut would.
pub fn isolate(lab: &Lab, node: usize) {
    let peers: Vec<String> =
        (1..=lab.nodes).filter(|&other| other != node).map(|other| lab.node_ip(other)).collect();
    let set = peers.join(", ");
    lab.nft(
        node,
        &format!(
            "add rule inet chaos output ip daddr {{ {set} }} drop\n\
             add rule inet chaos input ip saddr {{ {set} }} drop\n"
        ),
    );
}

/// Drops every packet `from` sends to `to`; `to`'s packets to `from` still arrive.
pub fn one_way(lab: &Lab, from: usize, to: usize) {
    lab.nft(from, &format!("add rule inet chaos output ip daddr {} drop\n", lab.node_ip(to)));
}

/// Drops `percent` % of the packets node `node` sends into the lab's network, at random.
pub fn loss(lab: &Lab, node: usize, percent: u32) {
    lab.nft(
        node,
        &format!("add rule inet chaos output ip daddr 10.77.0.0/24 numgen random mod 100 < {percent} drop\n"),
    );
}

/// Removes every rule from every node's table.
pub fn heal(lab: &Lab) {
    for node in 1..=lab.nodes {
        lab.nft(node, "flush chain inet chaos input\nflush chain inet chaos output\n");
    }
}
