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
        CollectorsCommand::List { client, status, mode, selector, attr, limit, cursor, sort } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            let optional = [("status", status), ("mode", mode), ("selector", selector), ("cursor", cursor)];
            query.extend(optional.into_iter().filter_map(|(key, value)| Some((key, value?))));
            query.extend(attr.into_iter().map(|pair| ("attr", pair)));
            query.extend(limit.map(|limit| ("limit", limit.to_string())));
            query.extend(sort.map(|sort| ("sort", sort)));
            let path = format!("/api/v1/collectors?{}", encode_query(&query));
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
        CollectorsCommand::Restart { client, collector_id } => {
            let path = format!("/api/v1/collectors/{collector_id}/restart");
            let reply = call(&client, Method::POST, &path, None).await?;
            match client.output {
                OutputFormat::Json => print_json(&reply),
                OutputFormat::Table => println!(
                    "restart requested for {collector_id}; `linkmesh events {collector_id}` shows restart_outcome"
                ),
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
                    if let Some(config) = value["supervisor_config"].as_str() {
                        println!("\n# /etc/otelcol-supervisor/supervisor.yaml\n{config}");
                    }
                }
            }
        }
        CollectorsCommand::Label { client, args, remove, selector } => {
            label(client, args, remove, selector).await?;
        }
        CollectorsCommand::Bulk { client, selector, action, yes } => {
            bulk(client, selector, action, yes).await?;
        }
        CollectorsCommand::Prune { client, inactive_for, selector, apply } => {
            prune(client, inactive_for, selector, apply).await?;
        }
        // `main.rs` hands it to `import.rs`, which builds on this file's calls.
        CollectorsCommand::Import { .. } => {
            return Err(ClientError::Input("collectors import is run by cli::import".into()))
        }
    }
    Ok(())
}

/// `key=value&…`, each part percent-encoded (selectors hold `=`, `,` and `!`).
fn encode_query(pairs: &[(&str, String)]) -> String {
    let mut url = reqwest::Url::parse("http://query.invalid/").expect("a valid url");
    url.query_pairs_mut().extend_pairs(pairs.iter().map(|(key, value)| (*key, value.as_str())));
    url.query().unwrap_or_default().to_owned()
}

const BULK_PATH: &str = "/api/v1/collectors:bulk";

/// A collector's id from its id or name.
async fn resolve_collector(client: &ClientArgs, id_or_name: &str) -> Result<String, ClientError> {
    let path = format!("/api/v1/collectors/{}", encode_segment(id_or_name));
    match call(client, Method::GET, &path, None).await {
        Ok(found) => return Ok(text(&found["id"])),
        Err(ClientError::Api { status: 404, .. }) => {}
        Err(error) => return Err(error),
    }
    let listed = call(client, Method::GET, "/api/v1/collectors", None).await?;
    listed["collectors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|collector| collector["name"] == id_or_name)
        .map(|collector| text(&collector["id"]))
        .ok_or_else(|| ClientError::Input(format!("no collector with id or name {id_or_name:?}")))
}

fn encode_segment(segment: &str) -> String {
    let mut url = reqwest::Url::parse("http://segment.invalid/").expect("a valid url");
    url.path_segments_mut().expect("a base url").push(segment);
    url.path().trim_start_matches('/').to_owned()
}

async fn label(
    client: ClientArgs,
    args: Vec<String>,
    remove: Vec<String>,
    selector: Option<String>,
) -> Result<(), ClientError> {
    let (target, pairs) = match &selector {
        Some(_) => (None, args.as_slice()),
        None => (args.first(), args.get(1..).unwrap_or_default()),
    };
    let mut set = serde_json::Map::new();
    for pair in pairs {
        let (key, value) =
            pair.split_once('=').ok_or_else(|| ClientError::Input(format!("{pair:?} is not key=value")))?;
        set.insert(key.to_owned(), Value::from(value));
    }
    if set.is_empty() && remove.is_empty() {
        return Err(ClientError::Input("nothing to change: give key=value pairs or --remove KEY".into()));
    }
    let mut body = serde_json::json!({ "action": "label", "labels": { "set": set, "remove": remove } });
    match (selector, target) {
        (Some(selector), _) => body["selector"] = Value::from(selector),
        (None, Some(target)) => body["ids"] = serde_json::json!([resolve_collector(&client, target).await?]),
        (None, None) => return Err(ClientError::Input("name a collector, or pass --selector".into())),
    }
    let value = call(&client, Method::POST, BULK_PATH, Some(body)).await?;
    match client.output {
        OutputFormat::Json => print_json(&value),
        OutputFormat::Table => println!("labelled {} collectors", text(&value["count"])),
    }
    Ok(())
}

async fn bulk(
    client: ClientArgs,
    selector: String,
    action: super::BulkActionArg,
    yes: bool,
) -> Result<(), ClientError> {
    let action = match action {
        super::BulkActionArg::Rotate => "rotate",
        super::BulkActionArg::Delete => "delete",
    };
    let mut body = serde_json::json!({ "selector": selector, "action": action });
    if !yes {
        let mut preview = body.clone();
        preview["dry_run"] = Value::from(true);
        let selected = call(&client, Method::POST, BULK_PATH, Some(preview)).await?;
        let count = selected["count"].as_u64().unwrap_or_default();
        if count == 0 {
            eprintln!("no collector matches {selector:?}");
            return Ok(());
        }
        let question = match action {
            "rotate" => {
                format!("rotate the tokens of {count} collectors (their current tokens stop working)?")
            }
            _ => format!("delete {count} collectors (their tokens stop working)?"),
        };
        if !confirm(&question)? {
            return Err(ClientError::Input("cancelled: nothing was changed".into()));
        }
        // Refused (409) if the selection changed since the count was shown.
        body["expected_count"] = Value::from(count);
    }
    let value = call(&client, Method::POST, BULK_PATH, Some(body)).await?;
    match (client.output, action) {
        (OutputFormat::Json, _) => print_json(&value),
        (OutputFormat::Table, "rotate") => {
            eprintln!("new tokens (shown once; the previous ones no longer work):");
            println!("collector_id,name,token");
            for token in value["tokens"].as_array().into_iter().flatten() {
                println!(
                    "{},{},{}",
                    csv_field(&text(&token["collector_id"])),
                    csv_field(&text(&token["name"])),
                    csv_field(&text(&token["token"]))
                );
            }
        }
        (OutputFormat::Table, _) => println!("deleted {} collectors", text(&value["count"])),
    }
    Ok(())
}

/// Asks on the terminal; anything but `y`/`yes` is a no.
pub(super) fn confirm(question: &str) -> Result<bool, ClientError> {
    use std::io::Write as _;
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|error| ClientError::Input(format!("no answer on stdin ({error}); pass --yes")))?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// One prune call lists (or deletes) at most 1000; `--apply` calls again while more remain.
async fn prune(
    client: ClientArgs,
    inactive_for: String,
    selector: Option<String>,
    apply: bool,
) -> Result<(), ClientError> {
    let mut body = serde_json::json!({ "inactive_for": inactive_for, "dry_run": !apply });
    if let Some(selector) = selector {
        body["selector"] = Value::from(selector);
    }
    let mut pages = Vec::new();
    let mut pruned = 0;
    loop {
        let page = call(&client, Method::POST, "/api/v1/collectors:prune", Some(body.clone())).await?;
        let count = page["count"].as_u64().unwrap_or_default();
        let remaining = page["remaining"].as_u64().unwrap_or_default();
        pruned += count;
        let more = apply && count > 0 && remaining > 0;
        if apply && (more || pruned > count) {
            eprintln!("pruned {pruned} collectors, {remaining} more inactive");
        }
        pages.push(page);
        if !more {
            break;
        }
    }
    match client.output {
        OutputFormat::Json if pages.len() == 1 => print_json(&pages[0]),
        OutputFormat::Json => {
            let collectors: Vec<Value> = pages
                .iter()
                .flat_map(|page| page["collectors"].as_array().cloned().unwrap_or_default())
                .collect();
            let remaining = pages.last().map_or(Value::Null, |page| page["remaining"].clone());
            print_json(&serde_json::json!({
                "dry_run": !apply, "count": collectors.len(), "remaining": remaining, "collectors": collectors,
            }));
        }
        OutputFormat::Table => {
            println!("{:<26} {:<24} {:<20} {:<26}", "ID", "NAME", "STATUS", "LAST SEEN");
            for collector in pages.iter().flat_map(|page| page["collectors"].as_array().into_iter().flatten())
            {
                println!(
                    "{:<26} {:<24} {:<20} {:<26}",
                    text(&collector["id"]),
                    text(&collector["name"]),
                    text(&collector["status"]),
                    text(&collector["last_seen_at"]),
                );
            }
            let remaining = pages.last().and_then(|page| page["remaining"].as_u64()).unwrap_or_default();
            match (apply, remaining) {
                (true, _) => eprintln!("deleted {pruned} collectors"),
                (false, 0) => eprintln!("{pruned} collectors would be deleted (dry run: pass --apply)"),
                (false, more) => eprintln!(
                    "{pruned} collectors listed and {more} more would be deleted (dry run: pass --apply)"
                ),
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
