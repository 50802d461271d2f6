//! The client subcommands: thin REST calls with table or JSON output.

use reqwest::Method;
use serde_json::Value;

use super::{ClientArgs, CollectorsCommand, OutputFormat};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no token: set LINKMESH_TOKEN (or --token) to a service-account token")]
    MissingToken,
    #[error("cannot reach {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("{status}: {message}")]
    Api { status: u16, message: String },
    #[error("{0}")]
    Input(String),
    #[error(
        "this server does not support {feature}: it has no endpoint for it (an older linkmesh; upgrade it)"
    )]
    Unsupported { feature: &'static str },
}

pub(super) async fn call(
    client: &ClientArgs,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let token = client.token.as_deref().ok_or(ClientError::MissingToken)?;
    let url = format!("{}{path}", client.url.trim_end_matches('/'));
    let mut request = reqwest::Client::new().request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let transport = |source| ClientError::Transport { url: url.clone(), source };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let text = response.text().await.map_err(transport)?;
    let value: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if !status.is_success() {
        let message =
            value["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
        return Err(ClientError::Api { status: status.as_u16(), message });
    }
    Ok(value)
}

pub(super) fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

pub(super) fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn print_collector_rows(collectors: &[Value]) {
    println!("{:<26} {:<24} {:<16} {:<20} {:<24} {:>7}", "ID", "NAME", "MODE", "STATUS", "HOST", "VERSION");
    for collector in collectors {
        println!(
            "{:<26} {:<24} {:<16} {:<20} {:<24} {:>7}",
            text(&collector["id"]),
            text(&collector["name"]),
            text(&collector["mode"]),
            text(&collector["status"]),
            text(&collector["host_id"]),
            text(&collector["config"]["version"]),
        );
    }
}

pub async fn collectors(command: CollectorsCommand) -> Result<(), ClientError> {
    match command {
        CollectorsCommand::List { client, status, mode } => {
            let mut query = Vec::new();
            if let Some(status) = status {
                query.push(format!("status={status}"));
            }
            if let Some(mode) = mode {
                query.push(format!("mode={mode}"));
            }
            let path = format!("/api/v1/collectors?{}", query.join("&"));
            let value = call(&client, Method::GET, &path, None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => {
                    print_collector_rows(value["collectors"].as_array().map_or(&[], Vec::as_slice))
                }
            }
        }
        CollectorsCommand::Create { client, name, mode, stability_level } => {
            let mut body = serde_json::json!({ "name": name, "mode": mode });
            if let Some(level) = stability_level {
                body["stability_level"] = serde_json::Value::from(level);
            }
            let value = call(&client, Method::POST, "/api/v1/collectors", Some(body)).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => print_collector_rows(std::slice::from_ref(&value)),
            }
        }
        CollectorsCommand::Get { client, collector_id } => {
            let value =
                call(&client, Method::GET, &format!("/api/v1/collectors/{collector_id}"), None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => print_collector_rows(std::slice::from_ref(&value)),
            }
        }
        CollectorsCommand::SetStabilityLevel { client, collector_id, level } => {
            let body = serde_json::json!({ "stability_level": level });
            let path = format!("/api/v1/collectors/{collector_id}");
            let value = call(&client, Method::PATCH, &path, Some(body)).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => print_collector_rows(std::slice::from_ref(&value)),
            }
        }
        CollectorsCommand::Delete { client, collector_id } => {
            call(&client, Method::DELETE, &format!("/api/v1/collectors/{collector_id}"), None).await?;
            match client.output {
                OutputFormat::Json => print_json(&serde_json::json!({ "deleted": collector_id })),
                OutputFormat::Table => println!("deleted {collector_id}"),
            }
        }
        CollectorsCommand::Token { client, collector_id } => {
            let path = format!("/api/v1/collectors/{collector_id}/token");
            let value = call(&client, Method::POST, &path, None).await?;
            match client.output {
                OutputFormat::Json => print_json(&value),
                OutputFormat::Table => {
                    println!("token (shown once): {}", text(&value["token"]));
                    if let Some(config) = value["config_alloy"].as_str() {
                        println!("\n# /etc/alloy/config.alloy\n{config}");
                    }
                }
            }
        }
    }
    Ok(())
}

pub async fn events(
    client: ClientArgs,
    collector_id: String,
    after: u64,
    limit: usize,
) -> Result<(), ClientError> {
    let path = format!("/api/v1/collectors/{collector_id}/events?after={after}&limit={limit}");
    let value = call(&client, Method::GET, &path, None).await?;
    match client.output {
        OutputFormat::Json => print_json(&value),
        OutputFormat::Table => {
            for event in value["events"].as_array().map_or(&[][..], Vec::as_slice) {
                println!(
                    "{:>5}  {}  {:<22} {}",
                    text(&event["id"]),
                    text(&event["ts"]),
                    text(&event["type"]),
                    text(&event["message"])
                );
            }
        }
    }
    Ok(())
}

pub async fn config(client: ClientArgs, collector_id: String) -> Result<(), ClientError> {
    let value =
        call(&client, Method::GET, &format!("/api/v1/collectors/{collector_id}/config"), None).await?;
    match client.output {
        OutputFormat::Json => print_json(&value),
        OutputFormat::Table => {
            println!(
                "# version {} hash {} ({})",
                text(&value["version"]),
                text(&value["hash"]),
                text(&value["format"])
            );
            print!("{}", text(&value["content"]));
        }
    }
    Ok(())
}
