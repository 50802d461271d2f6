//! Collector tokens for the simulation: created and minted through the REST API (`sim-<n>` collectors),
//! or read from a tokens file that earlier runs appended to, so large fleets are provisioned once.
//!
//! Collectors are created in batches (`POST /collectors:batch`, one Raft entry per batch, tokens
//! minted in the same entry). A batch refused because a name exists (an earlier run without the tokens
//! file) is provisioned one collector at a time instead: created or looked up, then its token minted.
//! A batch size of 1 always takes that per-collector path (the Raft write benchmark rows).
//!
//! Tokens file: one collector per line, `name<TAB>collector_id<TAB>token`; `#` starts a comment. It
//! holds live credentials: it is created with mode 0600. Tokens are tied to the server's data dir; a
//! wiped server makes them stale (every call then fails with `http_401`).

use std::collections::HashMap;
use std::io::{BufRead as _, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use parking_lot::Mutex;
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use serde_json::{json, Value};

use super::http_client::{error_message, CallError};
use super::nodes::Nodes;
use super::stats::{CallKind, Outcome, Stats};

const SESSION_COOKIE: &str = "linkmesh_session";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot read tokens file {path}: {source}")]
    ReadTokens { path: String, source: std::io::Error },
    #[error("cannot write tokens file {path}: {source}")]
    WriteTokens { path: String, source: std::io::Error },
    #[error("tokens file {path} line {line}: expected name<TAB>collector_id<TAB>token")]
    MalformedTokens { path: String, line: usize },
    #[error(
        "{missing} of {wanted} collector tokens are missing and no admin credentials were given: pass \
         --admin-token lmsat_… (or LINKMESH_TOKEN), or --admin-password"
    )]
    NoAdminCredentials { missing: usize, wanted: usize },
    #[error("cannot sign in as {user}: {message}")]
    Login { user: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// One simulated collector's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimToken {
    pub name: String,
    pub collector_id: String,
    pub token: String,
}

/// How operators authenticate the REST calls.
#[derive(Clone)]
pub enum AdminAuth {
    ServiceAccountToken(String),
    Password { user: String, password: String },
}

/// What to provision.
pub struct ProvisionPlan {
    pub count: usize,
    pub name_prefix: String,
    pub concurrency: usize,
    pub tokens_file: Option<PathBuf>,
    /// False: create collectors only (a Raft write benchmark); no tokens come back.
    pub mint_tokens: bool,
    /// Collectors per `POST /collectors:batch` (at most [`MAX_BATCH`]); 1: one create (and one mint)
    /// call per collector.
    pub batch_size: usize,
}

/// Collectors one `POST /collectors:batch` creates at most (the server's limit).
pub const MAX_BATCH: usize = 1000;

impl ProvisionPlan {
    pub fn name(&self, number: usize) -> String {
        format!("{}{number}", self.name_prefix)
    }
}

/// A REST client signed in as an operator; every call goes to a node picked at random.
pub struct AdminApi {
    http: reqwest::Client,
    nodes: Nodes,
    authorization: (reqwest::header::HeaderName, String),
}

impl AdminApi {
    /// With a password, signs in once (on a random node): sessions are replicated state, so the
    /// session cookie is good on every node of a cluster.
    pub async fn sign_in(
        nodes: Nodes,
        auth: AdminAuth,
        connections: usize,
        stats: &Stats,
    ) -> Result<Self, ProvisionError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(60))
            .build()?;
        let authorization = match auth {
            AdminAuth::ServiceAccountToken(token) => (AUTHORIZATION, format!("Bearer {token}")),
            AdminAuth::Password { user, password } => {
                let body = json!({ "username": user, "password": password });
                let session = nodes
                    .call(CallKind::SignIn, stats, |_| Outcome::Ok, |url| sign_in_once(&http, url, &body))
                    .await
                    .map_err(|error| ProvisionError::Login { user, message: error.to_string() })?;
                (COOKIE, format!("{SESSION_COOKIE}={session}"))
            }
        };
        Ok(AdminApi { http, nodes, authorization })
    }

    /// One REST call on `base_url`.
    async fn call_once(
        &self,
        base_url: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut request = self
            .http
            .request(method, format!("{base_url}/api/v1{path}"))
            .header(self.authorization.0.clone(), &self.authorization.1);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(CallError::from_reqwest)?;
        let status = response.status();
        let text = response.text().await.map_err(CallError::from_reqwest)?;
        if !status.is_success() {
            return Err(CallError::Status {
                status: status.as_u16(),
                message: error_message(text.as_bytes()),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn call(
        &self,
        kind: CallKind,
        stats: &Stats,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        self.nodes
            .call(
                kind,
                stats,
                |_| Outcome::Ok,
                |url| self.call_once(url, method.clone(), path, body.as_ref()),
            )
            .await
    }

    /// One `POST` of `body` to `path` (under `/api/v1`), on a node picked at random.
    pub(super) async fn post(
        &self,
        kind: CallKind,
        stats: &Stats,
        path: &str,
        body: Value,
    ) -> Result<Value, CallError> {
        self.call(kind, stats, reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates the collector; one that already exists (an earlier run) is looked up by name.
    async fn create_collector(&self, name: &str, stats: &Stats) -> Result<String, CallError> {
        let body = json!({ "name": name, "mode": "alloy-remotecfg" });
        match self
            .call(CallKind::CreateCollector, stats, reqwest::Method::POST, "/collectors", Some(body))
            .await
        {
            Ok(created) => Ok(created["id"].as_str().unwrap_or_default().to_owned()),
            Err(CallError::Status { status: 409, .. }) => self.find_collector(name, stats).await,
            Err(error) => Err(error),
        }
    }

    /// Creates `names` in one batch call, minting their tokens when `mint`; `(name, id, token)` in
    /// request order (empty tokens without `mint`).
    async fn create_batch(
        &self,
        names: &[String],
        mint: bool,
        stats: &Stats,
    ) -> Result<Vec<SimToken>, CallError> {
        let collectors: Vec<Value> =
            names.iter().map(|name| json!({ "name": name, "mode": "alloy-remotecfg" })).collect();
        let body = json!({ "collectors": collectors, "mint_tokens": mint });
        let created = self
            .call(CallKind::CreateBatch, stats, reqwest::Method::POST, "/collectors:batch", Some(body))
            .await?;
        Ok(created["collectors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|collector| SimToken {
                name: collector["name"].as_str().unwrap_or_default().to_owned(),
                collector_id: collector["id"].as_str().unwrap_or_default().to_owned(),
                token: collector["token"].as_str().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    async fn find_collector(&self, name: &str, stats: &Stats) -> Result<String, CallError> {
        let path = format!("/collectors?q={name}");
        let found = self.call(CallKind::FindCollector, stats, reqwest::Method::GET, &path, None).await?;
        found["collectors"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|collector| collector["name"] == name)
            .and_then(|collector| collector["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| CallError::Status {
                status: 404,
                message: format!("collector {name:?} not found"),
            })
    }

    async fn mint_token(&self, collector_id: &str, stats: &Stats) -> Result<String, CallError> {
        let path = format!("/collectors/{collector_id}/token");
        let minted = self.call(CallKind::MintToken, stats, reqwest::Method::POST, &path, None).await?;
        Ok(minted["token"].as_str().unwrap_or_default().to_owned())
    }
}

/// `POST /api/v1/auth/login` on one node; the session cookie's value.
async fn sign_in_once(http: &reqwest::Client, base_url: &str, body: &Value) -> Result<String, CallError> {
    let response = http
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(body)
        .send()
        .await
        .map_err(CallError::from_reqwest)?;
    let session =
        response.headers().get_all(SET_COOKIE).iter().filter_map(|value| value.to_str().ok()).find_map(
            |cookie| {
                let pair = cookie.split(';').next()?.trim();
                let (name, value) = pair.split_once('=')?;
                (name == SESSION_COOKIE).then(|| value.to_owned())
            },
        );
    let status = response.status();
    match session {
        Some(session) if status.is_success() => Ok(session),
        _ => {
            let text = response.text().await.unwrap_or_default();
            Err(CallError::Status { status: status.as_u16(), message: error_message(text.as_bytes()) })
        }
    }
}

/// Reads `name → token` entries; a missing file is empty.
pub fn read_tokens_file(path: &Path) -> Result<HashMap<String, SimToken>, ProvisionError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(source) => return Err(ProvisionError::ReadTokens { path: path.display().to_string(), source }),
    };
    let mut tokens = HashMap::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line =
            line.map_err(|source| ProvisionError::ReadTokens { path: path.display().to_string(), source })?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(name), Some(collector_id), Some(token), None) if !token.is_empty() => {
                tokens.insert(
                    name.to_owned(),
                    SimToken {
                        name: name.to_owned(),
                        collector_id: collector_id.to_owned(),
                        token: token.to_owned(),
                    },
                );
            }
            _ => {
                return Err(ProvisionError::MalformedTokens {
                    path: path.display().to_string(),
                    line: index + 1,
                })
            }
        }
    }
    Ok(tokens)
}

struct TokensWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl TokensWriter {
    fn open(path: &Path) -> Result<Self, ProvisionError> {
        let write_error = |source| ProvisionError::WriteTokens { path: path.display().to_string(), source };
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(write_error)?;
        Ok(TokensWriter { path: path.to_owned(), out: BufWriter::new(file) })
    }

    fn append(&mut self, token: &SimToken) -> Result<(), ProvisionError> {
        writeln!(self.out, "{}\t{}\t{}", token.name, token.collector_id, token.token)
            .map_err(|source| ProvisionError::WriteTokens { path: self.path.display().to_string(), source })
    }

    fn flush(&mut self) -> Result<(), ProvisionError> {
        self.out
            .flush()
            .map_err(|source| ProvisionError::WriteTokens { path: self.path.display().to_string(), source })
    }
}

/// The tokens of collectors `1..=count` (in order), provisioning the missing ones through the REST API
/// of `nodes` (signing in only when some are missing). Collectors whose provisioning failed are
/// left out (their errors are in `stats`).
pub async fn provision(
    nodes: &Nodes,
    auth: Option<AdminAuth>,
    plan: &ProvisionPlan,
    stats: &Stats,
) -> Result<Vec<SimToken>, ProvisionError> {
    let mut known = match &plan.tokens_file {
        Some(path) if plan.mint_tokens => read_tokens_file(path)?,
        _ => HashMap::new(),
    };
    let missing: Vec<usize> =
        (1..=plan.count).filter(|number| !known.contains_key(&plan.name(*number))).collect();
    if !missing.is_empty() {
        let Some(auth) = auth else {
            return Err(ProvisionError::NoAdminCredentials { missing: missing.len(), wanted: plan.count });
        };
        let api = &AdminApi::sign_in(nodes.clone(), auth, plan.concurrency, stats).await?;
        let writer = match &plan.tokens_file {
            Some(path) if plan.mint_tokens => Some(Arc::new(Mutex::new(TokensWriter::open(path)?))),
            _ => None,
        };
        let batch_size = plan.batch_size.clamp(1, MAX_BATCH);
        let batches: Vec<Vec<String>> =
            missing.chunks(batch_size).map(|chunk| chunk.iter().map(|n| plan.name(*n)).collect()).collect();
        let mut results = futures_util::stream::iter(batches)
            .map(|names| provision_batch(api, names, plan.mint_tokens, plan.concurrency, stats))
            .buffer_unordered(plan.concurrency.max(1));
        while let Some(tokens) = results.next().await {
            for token in tokens {
                if let Some(writer) = &writer {
                    writer.lock().append(&token)?;
                }
                known.insert(token.name.clone(), token);
            }
        }
        if let Some(writer) = &writer {
            writer.lock().flush()?;
        }
    }
    Ok((1..=plan.count).filter_map(|number| known.remove(&plan.name(number))).collect())
}

/// Provisions `names`: one batch call, or, for a batch of one or a batch refused because a name
/// exists already, each collector on its own. Only minted tokens come back.
async fn provision_batch(
    api: &AdminApi,
    names: Vec<String>,
    mint: bool,
    concurrency: usize,
    stats: &Stats,
) -> Vec<SimToken> {
    if names.len() > 1 {
        match api.create_batch(&names, mint, stats).await {
            Ok(created) if mint => return created,
            Ok(_) => return Vec::new(),
            Err(CallError::Status { status: 409, .. }) => {}
            Err(failure) => {
                tracing::debug!(collectors = names.len(), error = %failure, "cannot create a batch of collectors");
                return Vec::new();
            }
        }
    }
    futures_util::stream::iter(names)
        .map(|name| provision_one(api, name, mint, stats))
        .buffer_unordered(concurrency.max(1))
        .filter_map(|token| async move { token })
        .collect()
        .await
}

async fn provision_one(api: &AdminApi, name: String, mint: bool, stats: &Stats) -> Option<SimToken> {
    let collector_id = match api.create_collector(&name, stats).await {
        Ok(id) => id,
        Err(failure) => {
            tracing::debug!(name = %name, error = %failure, "cannot create collector");
            return None;
        }
    };
    if !mint {
        return None;
    }
    match api.mint_token(&collector_id, stats).await {
        Ok(token) => Some(SimToken { name, collector_id, token }),
        Err(failure) => {
            tracing::debug!(name = %name, error = %failure, "cannot mint collector token");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_round_trips_and_rejects_malformed_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tokens.tsv");
        {
            let mut writer = TokensWriter::open(&path).expect("open");
            for number in 1..=3 {
                writer
                    .append(&SimToken {
                        name: format!("sim-{number}"),
                        collector_id: format!("col_{number}"),
                        token: format!("lmct_{number}"),
                    })
                    .expect("append");
            }
            writer.flush().expect("flush");
        }
        let tokens = read_tokens_file(&path).expect("read");
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens["sim-2"].token, "lmct_2");

        std::fs::write(&path, "# comment\nsim-1\tcol_1\n").expect("write");
        assert!(matches!(read_tokens_file(&path), Err(ProvisionError::MalformedTokens { line: 2, .. })));
        assert!(read_tokens_file(&dir.path().join("absent")).expect("absent is empty").is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn tokens_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tokens.tsv");
        TokensWriter::open(&path).expect("open").flush().expect("flush");
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn without_credentials_missing_tokens_are_an_error() {
        let plan = ProvisionPlan {
            count: 2,
            name_prefix: "sim-".into(),
            concurrency: 1,
            tokens_file: None,
            mint_tokens: true,
            batch_size: MAX_BATCH,
        };
        let nodes = Nodes::new(vec!["http://127.0.0.1:9".to_owned()]);
        let error = provision(&nodes, None, &plan, &Stats::new()).await.expect_err("no credentials");
        assert!(matches!(error, ProvisionError::NoAdminCredentials { missing: 2, wanted: 2 }));
    }
}
