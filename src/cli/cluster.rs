//! `linkmesh cluster status|join-token|remove|transfer-leader|rebalance`: thin REST calls on the
//! contract's cluster endpoints (`api-contract.md`, "Cluster"). Any member answers for the whole
//! cluster, so `--url` may name any node.
//!
//! A server that predates clustering answers these paths with "no such route" (404) or 405; that is
//! reported as "this server does not support …" rather than as a missing member.

use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{call, print_json, text, ClientError};
use super::{ClientArgs, OutputFormat};
use crate::config::human::parse_duration;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Members (id, name, addresses, role, state, lag, slots, last contact), leader and term.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Mint a join token (admins); prints it once with the command to run on the new node.
    JoinToken {
        #[command(flatten)]
        client: ClientArgs,
        /// How long the token is valid (`1h`, `30m`; server default: 1h).
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
        /// How many nodes may join with it (server default: 1).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
        /// The URL the new node dials to join, when it differs from --url (say --url is a tunnel).
        #[arg(long, env = "LINKMESH_JOIN_URL")]
        join_url: Option<String>,
    },
    /// Remove a member: its slots are drained to the others first, then it leaves the membership.
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        /// Node id, or a member's name.
        node: String,
    },
    /// Move the leadership to this voter.
    TransferLeader {
        #[command(flatten)]
        client: ClientArgs,
        /// Node id, or a member's name.
        node: String,
    },
    /// Spread the slots evenly over the live members.
    Rebalance {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// A call on a cluster endpoint; `feature` names it in the "does not support" message.
async fn cluster_call(
    client: &ClientArgs,
    method: Method,
    path: &str,
    body: Option<Value>,
    feature: &'static str,
) -> Result<Value, ClientError> {
    call(client, method, path, body).await.map_err(|error| unsupported(error, feature))
}

/// A missing route (not a missing member) means the server has no such endpoint.
fn unsupported(error: ClientError, feature: &'static str) -> ClientError {
    match error {
        ClientError::Api { status: 404, message } if message.starts_with("no such route") => {
            ClientError::Unsupported { feature }
        }
        ClientError::Api { status: 405, .. } => ClientError::Unsupported { feature },
        other => other,
    }
}

/// A node id, or the id of the member with this name.
async fn node_id(client: &ClientArgs, node: &str) -> Result<u64, ClientError> {
    if let Ok(id) = node.parse::<u64>() {
        return Ok(id);
    }
    let cluster = cluster_call(client, Method::GET, "/api/v1/cluster", None, "cluster status").await?;
    let members = cluster["members"].as_array().map_or(&[][..], Vec::as_slice);
    members
        .iter()
        .find(|member| member["name"] == node)
        .and_then(|member| member["id"].as_u64())
        .ok_or_else(|| ClientError::Input(format!("no member named {node:?} (give its id or name)")))
}

/// `12ms`, `3.4s`, `2m10s`; `-` when unknown.
fn since(milliseconds: &Value) -> String {
    let Some(ms) = milliseconds.as_u64() else { return "-".to_owned() };
    match ms {
        0..=999 => format!("{ms}ms ago"),
        1_000..=59_999 => format!("{:.1}s ago", ms as f64 / 1000.0),
        _ => format!("{}m{}s ago", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn print_status(cluster: &Value) {
    let members = cluster["members"].as_array().map_or(&[][..], Vec::as_slice);
    let leader = &cluster["leader_id"];
    let leader_name = members
        .iter()
        .find(|member| member["id"] == *leader && !leader.is_null())
        .and_then(|member| member["name"].as_str())
        .map(|name| format!(" ({name})"))
        .unwrap_or_default();
    let leader = if leader.is_null() { "none (election in progress)".to_owned() } else { text(leader) };
    println!(
        "cluster {}  leader {leader}{leader_name}  term {}  commit {}",
        text(&cluster["cluster_id"]),
        text(&cluster["term"]),
        text(&cluster["commit_index"])
    );
    println!(
        "{:<17} {:<16} {:<22} {:<22} {:<8} {:<12} {:>6} {:>6} {:>13}",
        "ID", "NAME", "HTTP", "RPC", "ROLE", "STATE", "LAG", "SLOTS", "LAST CONTACT"
    );
    for member in members {
        let marker = if member["id"] == cluster["leader_id"] { "*" } else { "" };
        println!(
            "{:<17} {:<16} {:<22} {:<22} {:<8} {:<12} {:>6} {:>6} {:>13}",
            format!("{}{marker}", text(&member["id"])),
            text(&member["name"]),
            text(&member["http_addr"]),
            text(&member["rpc_addr"]),
            text(&member["role"]),
            text(&member["state"]),
            text(&member["lag"]),
            text(&member["slots"]),
            since(&member["last_contact_ms"]),
        );
    }
}

/// The command that joins a new node with `token` through `join_url`.
fn join_command(join_url: &str, token: &str) -> String {
    format!("linkmesh serve --join {join_url} --join-token {token}")
}

/// The contract's join-token request body: only the fields given.
fn join_token_body(ttl: Option<Duration>, uses: Option<u32>) -> Value {
    let mut body = json!({});
    if let Some(ttl) = ttl {
        // A token valid for less than a second is useless: round up.
        body["ttl_seconds"] = json!(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0));
    }
    if let Some(uses) = uses {
        body["uses"] = json!(uses);
    }
    body
}

/// What an accepted (202) change prints: what was asked, and whatever the server said about it.
fn accepted(client: &ClientArgs, action: &str, node: Option<u64>, reply: Value, meaning: &str) {
    match client.output {
        OutputFormat::Json => {
            let mut report = json!({ "accepted": action });
            if let Some(node) = node {
                report["node_id"] = json!(node);
            }
            if !reply.is_null() {
                report["reply"] = reply;
            }
            print_json(&report);
        }
        OutputFormat::Table => {
            let target = node.map(|node| format!(" of node {node}")).unwrap_or_default();
            println!("accepted: {action}{target}; {meaning}");
            if let Some(fields) = reply.as_object().filter(|fields| !fields.is_empty()) {
                for (key, value) in fields {
                    println!("  {key}: {}", text(value));
                }
            }
            println!("follow it with `linkmesh cluster status`");
        }
    }
}

pub async fn cluster(command: ClusterCommand) -> Result<(), ClientError> {
    match command {
        ClusterCommand::Status { client } => {
            let value = cluster_call(&client, Method::GET, "/api/v1/cluster", None, "cluster status").await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => print_status(&value),
            }
        }
        ClusterCommand::JoinToken { client, ttl, uses, join_url } => {
            let body = join_token_body(ttl, uses);
            let value =
                cluster_call(&client, Method::POST, "/api/v1/cluster/join-tokens", Some(body), "join tokens")
                    .await?;
            let token = value["token"].as_str().unwrap_or_default();
            let join_url = join_url.unwrap_or_else(|| client.url.trim_end_matches('/').to_owned());
            let command = join_command(&join_url, token);
            match client.output {
                OutputFormat::Json => {
                    let mut value = value.clone();
                    value["join_command"] = json!(command);
                    print_json(&value);
                }
                OutputFormat::Table => {
                    println!("join token (shown once): {token}");
                    println!("expires {}; id {}", text(&value["expires_at"]), text(&value["id"]));
                    println!("\nrun on the new node (with its own --data-dir, --http-addr, --rpc-addr):");
                    println!("  {command}");
                }
            }
        }
        ClusterCommand::Remove { client, node } => {
            let id = node_id(&client, &node).await?;
            let path = format!("/api/v1/cluster/members/{id}");
            let reply = cluster_call(&client, Method::DELETE, &path, None, "removing members").await?;
            accepted(
                &client,
                "removal",
                Some(id),
                reply,
                "its slots move to the other members first, then it leaves the membership",
            );
        }
        ClusterCommand::TransferLeader { client, node } => {
            let id = node_id(&client, &node).await?;
            let body = json!({ "node_id": id });
            let reply = cluster_call(
                &client,
                Method::POST,
                "/api/v1/cluster/leader",
                Some(body),
                "leadership transfer",
            )
            .await?;
            accepted(&client, "leadership transfer", Some(id), reply, "the leadership moves to that voter");
        }
        ClusterCommand::Rebalance { client } => {
            let reply =
                cluster_call(&client, Method::POST, "/api/v1/cluster/rebalance", None, "rebalancing").await?;
            accepted(&client, "rebalance", None, reply, "the slots spread evenly over the live members");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_route_is_unsupported_but_a_missing_member_is_not() {
        let route =
            ClientError::Api { status: 404, message: "no such route: DELETE /api/v1/cluster/x".into() };
        let message = unsupported(route, "removing members").to_string();
        assert!(message.contains("does not support removing members"), "{message}");
        let method = ClientError::Api { status: 405, message: "method POST not allowed".into() };
        assert!(matches!(unsupported(method, "rebalancing"), ClientError::Unsupported { .. }));
        let member = ClientError::Api { status: 404, message: "node 7 not found".into() };
        assert!(matches!(unsupported(member, "removing members"), ClientError::Api { status: 404, .. }));
    }

    #[test]
    fn join_token_body_has_only_the_fields_given() {
        assert_eq!(join_token_body(None, None), json!({}));
        assert_eq!(
            join_token_body(Some(Duration::from_secs(1800)), Some(2)),
            json!({ "ttl_seconds": 1800, "uses": 2 })
        );
        assert_eq!(join_token_body(Some(Duration::from_millis(1500)), None), json!({ "ttl_seconds": 2 }));
    }

    #[test]
    fn the_join_command_is_ready_to_paste() {
        assert_eq!(
            join_command("http://10.0.0.1:8080", "lmjt_abc"),
            "linkmesh serve --join http://10.0.0.1:8080 --join-token lmjt_abc"
        );
    }

    fn parse(argv: &[&str]) -> Result<ClusterCommand, clap::Error> {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["linkmesh", "cluster"].iter().chain(argv))?;
        match cli.command {
            crate::cli::Command::Cluster(command) => Ok(command),
            _ => panic!("not a cluster command"),
        }
    }

    #[test]
    fn subcommands_parse_with_their_arguments() {
        let Ok(ClusterCommand::JoinToken { ttl, uses, .. }) =
            parse(&["join-token", "--ttl", "30m", "--uses", "2"])
        else {
            panic!("join-token parses")
        };
        assert_eq!((ttl, uses), (Some(Duration::from_secs(1800)), Some(2)));
        let Ok(ClusterCommand::Remove { node, client }) =
            parse(&["remove", "node-3", "--url", "http://10.0.0.2:8080", "--output", "json"])
        else {
            panic!("remove parses")
        };
        assert_eq!(node, "node-3");
        assert_eq!(client.url, "http://10.0.0.2:8080");
        assert!(client.output == OutputFormat::Json);
        assert!(
            matches!(parse(&["transfer-leader", "42"]), Ok(ClusterCommand::TransferLeader { node, .. }) if node == "42")
        );
        assert!(matches!(parse(&["rebalance"]), Ok(ClusterCommand::Rebalance { .. })));
        assert!(matches!(parse(&["status", "--output", "table"]), Ok(ClusterCommand::Status { .. })));
    }

    #[test]
    fn bad_arguments_are_refused_before_any_call() {
        assert!(parse(&["remove"]).is_err(), "remove needs a node");
        assert!(parse(&["transfer-leader"]).is_err(), "transfer-leader needs a node");
        assert!(parse(&["join-token", "--uses", "0"]).is_err(), "a token for no one");
        assert!(parse(&["join-token", "--ttl", "soon"]).is_err());
        assert!(parse(&["rebalance", "extra"]).is_err());
    }

    #[test]
    fn last_contact_reads_as_a_duration() {
        assert_eq!(since(&json!(12)), "12ms ago");
        assert_eq!(since(&json!(3_400)), "3.4s ago");
        assert_eq!(since(&json!(130_000)), "2m10s ago");
        assert_eq!(since(&Value::Null), "-");
    }
}
