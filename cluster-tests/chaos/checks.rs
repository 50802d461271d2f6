//! The checks on the recorded history and the end state: linearizability of token validity (the Go
//! tool), acknowledged writes present on every node, availability of polls through the majority, and
//! convergence of every node to the same applied index, slot table and fleet model digest.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::workload::{Expected, ProbePoll};

/// One injected fault on the run's clock (nanoseconds).
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub kind: super::faults::FaultKind,
    /// The nodes (1-based) outside the serving majority while the fault lasts.
    pub nodes_out: Vec<usize>,
    pub start: i64,
    pub healed: i64,
    /// When every node was ready again.
    pub recovered: i64,
    pub note: String,
}

/// What the run sampled every 500 ms: the slot owners and the leader, with the time of each sample.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub owners: Vec<(i64, Vec<u64>)>,
    pub leaders: Vec<(i64, Option<u64>)>,
}

impl Samples {
    /// The times at which a sample showed a leader other than the sample before it.
    pub fn leader_changes(&self) -> Vec<i64> {
        self.leaders.windows(2).filter(|pair| pair[0].1 != pair[1].1).map(|pair| pair[1].0).collect()
    }

    /// Whether the owner of `collector`'s slot changed within `margin` of `[from, to]`.
    fn moved_near(&self, collector: &str, from: i64, to: i64, margin: i64) -> bool {
        let slot = linkmesh::model::slots::slot_of(collector);
        self.owners.windows(2).any(|pair| {
            pair[0].1[slot] != pair[1].1[slot] && pair[1].0 >= from - margin && pair[0].0 <= to + margin
        })
    }
}

/// Node ids are not node indexes: `ids[i - 1]` is node `i`'s id.
pub struct Availability {
    pub polls: usize,
    pub answered: usize,
    /// Unanswered polls excused, by reason.
    pub excused: BTreeMap<&'static str, usize>,
    pub violations: Vec<String>,
    /// Collector → its longest run of unanswered polls, in seconds.
    pub longest_outage: BTreeMap<String, f64>,
}

const MARGIN_NS: i64 = 2_000_000_000;

fn owner_at(samples: &Samples, collector: &str, at: i64) -> Option<u64> {
    let slot = linkmesh::model::slots::slot_of(collector);
    samples.owners.iter().take_while(|(time, _)| *time <= at).last().map(|(_, owners)| owners[slot])
}

/// Polls with the current token through a node of the majority must be answered (after at most one
/// retry), except: through a node the fault took out (until it recovered); for the collectors of a
/// lost owner until it is back or failover moved them (their outage is reported against the failover
/// bound); within one election and one lease of a fault, its healing or a leader change (owners renew
/// their leases through the leader); and while the collector's slot moves (the edge retries a wrong
/// owner once, a node that just restarted may still be catching up).
pub fn availability(
    polls: &[ProbePoll],
    faults: &[FaultRecord],
    samples: &Samples,
    node_ids: &[u64],
    lease: Duration,
    longest_election: Duration,
) -> Availability {
    let election_window = (longest_election + lease).as_nanos() as i64;
    let lease = lease.as_nanos() as i64;
    let leader_changes = samples.leader_changes();
    let mut result = Availability {
        polls: polls.len(),
        answered: 0,
        excused: BTreeMap::new(),
        violations: Vec::new(),
        longest_outage: BTreeMap::new(),
    };
    let mut outage_started: BTreeMap<&str, i64> = BTreeMap::new();
    for poll in polls {
        if poll.answered {
            result.answered += 1;
            if let Some(start) = outage_started.remove(poll.collector.as_str()) {
                let seconds = (poll.call - start) as f64 / 1e9;
                let longest = result.longest_outage.entry(poll.collector.clone()).or_default();
                *longest = longest.max(seconds);
            }
            continue;
        }
        outage_started.entry(poll.collector.as_str()).or_insert(poll.call);
        // Each window is compared with the whole poll, first try to last: it may have failed anywhere.
        let overlaps = |from: i64, to: i64| poll.end >= from - MARGIN_NS && poll.call <= to + MARGIN_NS;
        let edge_out = faults
            .iter()
            .any(|fault| fault.nodes_out.contains(&poll.node) && overlaps(fault.start, fault.recovered));
        let owner = owner_at(samples, &poll.collector, poll.call);
        // The rule: a lost owner's collectors are exempt from the one-retry rule until their
        // owner is back or failover moved them; their outage is reported against `failover_bound`.
        let owner_lost = faults.iter().any(|fault| {
            fault.nodes_out.iter().any(|&node| Some(node_ids[node - 1]) == owner)
                && overlaps(fault.start, fault.recovered)
        });
        // A fault, and its healing (a returning node's higher term), may cost the leader: lease renewals
        // go through the leader, so polls may fail for one election plus one lease after either.
        let election = leader_changes.iter().any(|&change| overlaps(change - lease, change + lease))
            || faults.iter().any(|fault| {
                overlaps(fault.start, fault.start + election_window)
                    || overlaps(fault.healed, fault.healed + election_window)
            });
        let moving = samples.moved_near(&poll.collector, poll.call, poll.end, MARGIN_NS);
        let reason = if edge_out {
            Some("through a node the fault took out")
        } else if owner_lost {
            Some("owner lost (until it was back or its slots moved)")
        } else if election {
            Some("within an election and a lease of a leader change, a fault or its healing")
        } else if moving {
            Some("while its slot moved")
        } else {
            None
        };
        if let Some(reason) = reason {
            *result.excused.entry(reason).or_default() += 1;
        } else {
            result.violations.push(format!(
                "poll of {} through node-{} at {:.3}s unanswered after one retry (owner {:?}; no fault excuses it)",
                poll.collector,
                poll.node,
                poll.call as f64 / 1e9,
                owner
            ));
        }
    }
    result
}

/// Runs `tools/linearcheck` on the history; `Ok(summary)` when linearizable.
pub fn linearizable(tool: &Path, history: &Path, html: &Path) -> Result<String, String> {
    let output = Command::new(tool)
        .arg("--history")
        .arg(history)
        .arg("--html")
        .arg(html)
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", tool.display()));
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("linearcheck exited with {}:\n{text}", output.status))
    }
}

/// GET with a bearer token; the status and JSON body, or `None` when the node did not answer.
async fn get(http: &reqwest::Client, url: &str, token: &str) -> Option<(u16, Value)> {
    let response = http.get(url).bearer_auth(token).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// What reading the acknowledged writes back found.
#[derive(Debug, Default)]
pub struct WritesReadBack {
    pub checked: usize,
    /// Acknowledged facts missing or wrong.
    pub lost: Vec<String>,
    /// Facts that show a write with an unknown outcome taking effect after a later acknowledged one:
    /// allowed (an unanswered write may take effect at any time after it was sent), and reported.
    pub overtaken: Vec<String>,
}

/// Every acknowledged write, read back on every node.
pub async fn acknowledged_writes(
    http: &reqwest::Client,
    nodes: &[String],
    token: &str,
    expected: &BTreeMap<String, Expected>,
) -> WritesReadBack {
    let mut checked = 0;
    let mut lost = Vec::new();
    let mut overtaken = Vec::new();
    for (collector, expect) in expected {
        for (index, node) in nodes.iter().enumerate() {
            let name = format!("node-{}", index + 1);
            let Some((status, body)) =
                get(http, &format!("{node}/api/v1/collectors/{collector}"), token).await
            else {
                lost.push(format!("{name} did not answer for {collector}"));
                continue;
            };
            match expect.exists {
                Some(false) => {
                    checked += 1;
                    if status != 404 {
                        lost.push(format!(
                            "{name}: {collector} was deleted (acknowledged) but answers {status}"
                        ));
                    }
                    continue;
                }
                Some(true) => {
                    checked += 1;
                    if status != 200 {
                        lost.push(format!(
                            "{name}: {collector} was created (acknowledged) but answers {status}"
                        ));
                        continue;
                    }
                }
                None => {
                    if status != 200 {
                        continue;
                    }
                }
            }
            if let Some(prefix) = &expect.token_prefix {
                checked += 1;
                let actual = body["token"]["prefix"].as_str().map(str::to_owned);
                if &actual != prefix {
                    let text = format!("{name}: {collector}'s token is {actual:?}, the last acknowledged rotation gave {prefix:?}");
                    if expect.unconfirmed_rotations > 0 {
                        overtaken.push(format!(
                            "{text}; one of its {} unanswered rotations",
                            expect.unconfirmed_rotations
                        ));
                    } else {
                        lost.push(text);
                    }
                }
            }
            for (route, priority) in &expect.route_priority {
                let Some(priority) = priority else { continue };
                checked += 1;
                let url = format!("{node}/api/v1/collectors/{collector}/routes/{route}");
                let unconfirmed = expect.route_unconfirmed.get(route).map_or(&[][..], Vec::as_slice);
                match get(http, &url, token).await {
                    Some((200, route_body)) if route_body["priority"].as_i64() == Some(*priority) => {}
                    Some((200, route_body))
                        if route_body["priority"].as_i64().is_some_and(|got| unconfirmed.contains(&got)) =>
                    {
                        overtaken.push(format!(
                            "{name}: route {route} of {collector} has priority {}, from an unanswered write \
                             (the last acknowledged one set {priority})",
                            route_body["priority"]
                        ));
                    }
                    other => lost.push(format!(
                        "{name}: route {route} of {collector} should have priority {priority} (acknowledged); got {other:?}"
                    )),
                }
            }
        }
    }
    WritesReadBack { checked, lost, overtaken }
}

/// What one node says about its replica.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    pub applied_index: Option<u64>,
    pub digest: String,
    pub slots: Value,
}

/// Waits (up to `deadline`) until every node shows the same applied index, fleet model digest and slot
/// table. Returns the last states read and whether they agreed.
pub async fn convergence(
    http: &reqwest::Client,
    nodes: &[String],
    token: &str,
    deadline: Duration,
) -> (Vec<Option<NodeState>>, bool) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let mut states = Vec::new();
        for node in nodes {
            let digest = get(http, &format!("{node}/api/v1/cluster/digest"), token).await;
            let slots = get(http, &format!("{node}/api/v1/cluster/slots"), token).await;
            states.push(match (digest, slots) {
                (Some((200, digest)), Some((200, slots))) => Some(NodeState {
                    applied_index: digest["applied_index"].as_u64(),
                    digest: digest["model_digest"].as_str().unwrap_or_default().to_owned(),
                    slots: slots["slots"].clone(),
                }),
                _ => None,
            });
        }
        let agree = states.iter().all(|state| state.is_some() && *state == states[0]);
        if agree || tokio::time::Instant::now() >= until {
            return (states, agree);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
