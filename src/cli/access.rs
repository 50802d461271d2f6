//! Client subcommands for access and audit: `linkmesh users …`, `linkmesh service-accounts …`,
//! `linkmesh sessions …`, `linkmesh audit`. Thin REST calls (contract: "Access lifecycle and audit").
//!
//! Passwords are read from standard input, never from flags: flags end up in shell history and in
//! every process listing.

use std::io::BufRead as _;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{call, print_json, text, ClientError};
use super::{ClientArgs, OutputFormat};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List users.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Disable a user (they cannot sign in; their sessions end at once).
    Disable {
        #[command(flatten)]
        client: ClientArgs,
        /// User id or username.
        user: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[command(flatten)]
        client: ClientArgs,
        user: String,
    },
    /// Give a user another role (admin, operator, pipeline_engineer, viewer).
    SetRole {
        #[command(flatten)]
        client: ClientArgs,
        user: String,
        role: String,
    },
    /// Delete a user (their sessions end at once).
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        user: String,
    },
    /// Set a user's password (admin token); the new password is read from standard input.
    Password {
        #[command(flatten)]
        client: ClientArgs,
        user: String,
    },
    /// End all of a user's sessions (sign them out everywhere).
    SignOut {
        #[command(flatten)]
        client: ClientArgs,
        user: String,
    },
}

#[derive(Subcommand)]
pub enum ServiceAccountsCommand {
    /// List service accounts.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a service account; all of its tokens stop working at once.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        account_id: String,
    },
    /// A service account's tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// List an account's tokens (never the token itself).
    List {
        #[command(flatten)]
        client: ClientArgs,
        account_id: String,
    },
    /// Revoke one token; it stops working at once.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        account_id: String,
        token_id: String,
    },
}

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List sessions (an admin token sees everyone's).
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only this user's sessions.
        #[arg(long)]
        user_id: Option<String>,
    },
    /// End one session at once.
    End {
        #[command(flatten)]
        client: ClientArgs,
        session_id: String,
    },
}

fn done(client: &ClientArgs, what: &str, id: &str) {
    match client.output {
        OutputFormat::Json => print_json(&json!({ what: id })),
        OutputFormat::Table => println!("{what} {id}"),
    }
}

/// A user id, or the id of the user with this name.
async fn user_id(client: &ClientArgs, user: &str) -> Result<String, ClientError> {
    if user.starts_with("usr_") {
        return Ok(user.to_owned());
    }
    let users = call(client, Method::GET, "/api/v1/users", None).await?;
    users["users"]
        .as_array()
        .and_then(|users| users.iter().find(|candidate| candidate["username"] == user))
        .and_then(|found| found["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Api { status: 404, message: format!("no user named {user:?}") })
}

fn read_password() -> Result<String, ClientError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| ClientError::Input(format!("cannot read the new password from stdin: {error}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(ClientError::Input("give the new password on standard input".into()));
    }
    Ok(password)
}

pub async fn users(command: UsersCommand) -> Result<(), ClientError> {
    match command {
        UsersCommand::List { client } => {
            let value = call(&client, Method::GET, "/api/v1/users", None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => {
                    println!(
                        "{:<26} {:<24} {:<18} {:<9} {:<24}",
                        "ID", "USERNAME", "ROLE", "DISABLED", "CREATED"
                    );
                    for user in value["users"].as_array().map_or(&[][..], Vec::as_slice) {
                        println!(
                            "{:<26} {:<24} {:<18} {:<9} {:<24}",
                            text(&user["id"]),
                            text(&user["username"]),
                            text(&user["role"]),
                            text(&user["disabled"]),
                            text(&user["created_at"])
                        );
                    }
                }
            }
        }
        UsersCommand::Disable { client, user } => {
            patch_user(&client, &user, json!({ "disabled": true })).await?
        }
        UsersCommand::Enable { client, user } => {
            patch_user(&client, &user, json!({ "disabled": false })).await?
        }
        UsersCommand::SetRole { client, user, role } => {
            patch_user(&client, &user, json!({ "role": role })).await?
        }
        UsersCommand::Delete { client, user } => {
            let id = user_id(&client, &user).await?;
            call(&client, Method::DELETE, &format!("/api/v1/users/{id}"), None).await?;
            done(&client, "deleted", &id);
        }
        UsersCommand::Password { client, user } => {
            let id = user_id(&client, &user).await?;
            let password = read_password()?;
            let body = json!({ "new_password": password });
            call(&client, Method::POST, &format!("/api/v1/users/{id}/password"), Some(body)).await?;
            done(&client, "password_changed", &id);
        }
        UsersCommand::SignOut { client, user } => {
            let id = user_id(&client, &user).await?;
            call(&client, Method::DELETE, &format!("/api/v1/users/{id}/sessions"), None).await?;
            done(&client, "signed_out", &id);
        }
    }
    Ok(())
}

async fn patch_user(client: &ClientArgs, user: &str, body: Value) -> Result<(), ClientError> {
    let id = user_id(client, user).await?;
    let value = call(client, Method::PATCH, &format!("/api/v1/users/{id}"), Some(body)).await?;
    match client.output {
        OutputFormat::Json => print_json(&value),
        OutputFormat::Table => println!(
            "{} {} role={} disabled={}",
            text(&value["id"]),
            text(&value["username"]),
            text(&value["role"]),
            text(&value["disabled"])
        ),
    }
    Ok(())
}

pub async fn service_accounts(command: ServiceAccountsCommand) -> Result<(), ClientError> {
    match command {
        ServiceAccountsCommand::List { client } => {
            let value = call(&client, Method::GET, "/api/v1/service-accounts", None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => {
                    println!("{:<26} {:<32} {:<18} {:<24}", "ID", "NAME", "ROLE", "CREATED");
                    for account in value["service_accounts"].as_array().map_or(&[][..], Vec::as_slice) {
                        println!(
                            "{:<26} {:<32} {:<18} {:<24}",
                            text(&account["id"]),
                            text(&account["name"]),
                            text(&account["role"]),
                            text(&account["created_at"])
                        );
                    }
                }
            }
        }
        ServiceAccountsCommand::Delete { client, account_id } => {
            call(&client, Method::DELETE, &format!("/api/v1/service-accounts/{account_id}"), None).await?;
            done(&client, "deleted", &account_id);
        }
        ServiceAccountsCommand::Tokens(TokensCommand::List { client, account_id }) => {
            let path = format!("/api/v1/service-accounts/{account_id}/tokens");
            let value = call(&client, Method::GET, &path, None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => {
                    println!(
                        "{:<26} {:<20} {:<14} {:<24} {:<24} {:<24}",
                        "ID", "LABEL", "PREFIX", "CREATED", "EXPIRES", "LAST USED"
                    );
                    for token in value["tokens"].as_array().map_or(&[][..], Vec::as_slice) {
                        println!(
                            "{:<26} {:<20} {:<14} {:<24} {:<24} {:<24}",
                            text(&token["id"]),
                            text(&token["label"]),
                            text(&token["prefix"]),
                            text(&token["created_at"]),
                            text(&token["expires_at"]),
                            text(&token["last_used_at"])
                        );
                    }
                }
            }
        }
        ServiceAccountsCommand::Tokens(TokensCommand::Revoke { client, account_id, token_id }) => {
            let path = format!("/api/v1/service-accounts/{account_id}/tokens/{token_id}");
            call(&client, Method::DELETE, &path, None).await?;
            done(&client, "revoked", &token_id);
        }
    }
    Ok(())
}

pub async fn sessions(command: SessionsCommand) -> Result<(), ClientError> {
    match command {
        SessionsCommand::List { client, user_id } => {
            let path = match user_id {
                Some(user_id) => format!("/api/v1/auth/sessions?user_id={user_id}"),
                None => "/api/v1/auth/sessions".to_owned(),
            };
            let value = call(&client, Method::GET, &path, None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => {
                    println!(
                        "{:<18} {:<24} {:<40} {:<24} {:<24}",
                        "ID", "USER", "FROM", "CREATED", "EXPIRES"
                    );
                    for session in value["sessions"].as_array().map_or(&[][..], Vec::as_slice) {
                        println!(
                            "{:<18} {:<24} {:<40} {:<24} {:<24}",
                            text(&session["id"]),
                            text(&session["username"]),
                            text(&session["remote_addr"]),
                            text(&session["created_at"]),
                            text(&session["expires_at"])
                        );
                    }
                }
            }
        }
        SessionsCommand::End { client, session_id } => {
            call(&client, Method::DELETE, &format!("/api/v1/auth/sessions/{session_id}"), None).await?;
            done(&client, "ended", &session_id);
        }
    }
    Ok(())
}

/// `linkmesh audit`: the audit log, oldest first.
pub async fn audit(client: ClientArgs, after: u64, limit: usize) -> Result<(), ClientError> {
    let value =
        call(&client, Method::GET, &format!("/api/v1/audit?after={after}&limit={limit}"), None).await?;
    match client.output {
        OutputFormat::Json => print_json(&value),
        OutputFormat::Table => {
            for entry in value["entries"].as_array().map_or(&[][..], Vec::as_slice) {
                println!(
                    "{:>6}  {}  {:<24} {:<16} {:<20} {} {}",
                    text(&entry["id"]),
                    text(&entry["ts"]),
                    text(&entry["actor"]),
                    text(&entry["remote_addr"]),
                    text(&entry["outcome"]),
                    text(&entry["action"]),
                    text(&entry["target"])
                );
            }
        }
    }
    Ok(())
}
