//! `linkmesh enrollment-tokens …`: OpAMP enrollment tokens for OpenTelemetry Collectors run by the
//! `opampsupervisor` (contract: "OpAMP enrollment"). Thin REST calls.

use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{call, confirm, print_json, text, ClientError};
use super::import::parse_labels;
use super::{ClientArgs, OutputFormat};
use crate::config::human::parse_duration;

#[derive(Subcommand)]
pub enum EnrollmentTokensCommand {
    /// Create an enrollment token and print it (shown once) with a ready-to-paste supervisor.yaml.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// How long it enrolls new agents (`24h`, `30d`; server default: 1 day). The agents it
        /// enrolled keep connecting with it until it is revoked.
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
        /// How many agents it may enroll (default: any number until it expires).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
        /// Labels given to the collectors it creates: `env=prod;team=a`.
        #[arg(long, value_parser = parse_labels)]
        labels: Option<std::collections::BTreeMap<String, String>>,
    },
    /// List enrollment tokens (never the tokens), with the collectors still using each.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token: the agents still using it are disconnected and refused. Asks for confirmation
    /// when collectors use it, unless `--yes`.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        id: String,
        #[arg(long)]
        yes: bool,
    },
}

pub async fn enrollment_tokens(command: EnrollmentTokensCommand) -> Result<(), ClientError> {
    match command {
        EnrollmentTokensCommand::Create { client, ttl, uses, labels } => {
            let mut body = json!({});
            if let Some(ttl) = ttl {
                body["ttl_seconds"] = json!(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0));
            }
            if let Some(uses) = uses {
                body["uses"] = json!(uses);
            }
            if let Some(labels) = labels {
                body["labels"] = json!(labels);
            }
            let created = call(&client, Method::POST, "/api/v1/enrollment-tokens", Some(body)).await?;
            match client.output {
                OutputFormat::Json => print_json(&created),
                OutputFormat::Table => {
                    println!("enrollment token (shown once): {}", text(&created["token"]));
                    println!(
                        "enrolls new agents until {}; id {}",
                        text(&created["expires_at"]),
                        text(&created["id"])
                    );
                    println!("\nsupervisor.yaml for the opampsupervisor:\n");
                    print!("{}", text(&created["supervisor_config"]));
                }
            }
        }
        EnrollmentTokensCommand::List { client } => {
            let value = call(&client, Method::GET, "/api/v1/enrollment-tokens", None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => print_table(&value),
            }
        }
        EnrollmentTokensCommand::Revoke { client, id, yes } => {
            let listed = call(&client, Method::GET, "/api/v1/enrollment-tokens", None).await?;
            let token = listed["enrollment_tokens"]
                .as_array()
                .and_then(|tokens| tokens.iter().find(|token| token["id"] == id.as_str()))
                .ok_or_else(|| ClientError::Input(format!("no enrollment token {id:?}")))?;
            let in_use = token["collectors"].as_u64().unwrap_or(0);
            if in_use > 0 && !yes {
                let question = format!(
                    "{in_use} collector(s) still authenticate with {}…; their agents will be disconnected \
                     and refused until they get another token. Revoke it?",
                    text(&token["prefix"])
                );
                if !confirm(&question)? {
                    return Err(ClientError::Input("not revoked".into()));
                }
            }
            call(&client, Method::DELETE, &format!("/api/v1/enrollment-tokens/{id}"), None).await?;
            match client.output {
                OutputFormat::Json => print_json(&json!({ "revoked": id, "collectors": in_use })),
                OutputFormat::Table => println!("revoked {id} ({in_use} collector(s) were using it)"),
            }
        }
    }
    Ok(())
}

fn print_table(value: &Value) {
    println!(
        "{:<26} {:<14} {:<8} {:>6} {:>6} {:>10} {:<24}",
        "ID", "PREFIX", "STATE", "USED", "USES", "COLLECTORS", "EXPIRES"
    );
    for token in value["enrollment_tokens"].as_array().map_or(&[][..], Vec::as_slice) {
        let uses = token["uses"].as_u64().map_or_else(|| "-".to_owned(), |uses| uses.to_string());
        println!(
            "{:<26} {:<14} {:<8} {:>6} {:>6} {:>10} {:<24}",
            text(&token["id"]),
            text(&token["prefix"]),
            text(&token["state"]),
            text(&token["used"]),
            uses,
            text(&token["collectors"]),
            text(&token["expires_at"])
        );
    }
}
