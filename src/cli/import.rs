//! `linkmesh collectors import FILE`: creates the collectors a CSV or JSON file lists through
//! `POST /api/v1/collectors:batch`, in batches, with progress on stderr.
//!
//! - CSV: a header row naming `name`, `mode` and optionally `labels` (any order; other columns are
//!   refused), labels as `k=v;k=v`; fields may be quoted (RFC 4180: `"a, b"`, `""` for a quote). An
//!   empty mode is `alloy-remotecfg`. JSON: an array of `{"name","mode","labels"?}`, or a batch body
//!   `{"collectors":[…]}`. The format comes from the extension (`.csv`, `.json`), else from the
//!   content (JSON starts with `[` or `{`).
//! - Batches hold at most `--batch-size` (≤ 1000) collectors and stay under the server's body limit.
//!   Each is all or nothing on the server. On a refused batch the import stops and says which batch,
//!   which row and why, and how many collectors the earlier batches created.
//! - `--mint-tokens` needs `--tokens-out PATH`: tokens are shown once, so they go to a new file
//!   (mode 0600, never overwritten) as CSV `id,name,token`, flushed after every batch so that a failed
//!   import keeps the tokens of what it created.
//! - `--skip-existing` reads the names that exist first (the list API, 1000 per page) and leaves those
//!   rows out, so a re-run after a failure continues where it stopped; a name created meanwhile by
//!   someone else (the batch's 409 names its index) is dropped from the batch, which is sent again.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{call, print_json, ClientError};
use super::{ClientArgs, OutputFormat};

/// Collectors one batch call creates at most (the server's limit).
pub const MAX_BATCH: usize = 1000;

/// Batches are cut before their JSON body passes this (the server refuses bodies over 4 MiB).
const MAX_BATCH_BODY_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;

const BATCH_PATH: &str = "/api/v1/collectors:batch";

/// What `linkmesh collectors import` was asked.
pub struct ImportArgs {
    pub client: ClientArgs,
    pub file: PathBuf,
    pub mint_tokens: bool,
    pub tokens_out: Option<PathBuf>,
    pub skip_existing: bool,
    pub batch_size: usize,
}

/// One collector to create, with where it came from in the file (a CSV line, or a JSON position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub row: String,
    pub name: String,
    pub mode: String,
    pub labels: BTreeMap<String, String>,
}

impl ImportRow {
    fn body(&self) -> Value {
        if self.labels.is_empty() {
            json!({ "name": self.name, "mode": self.mode })
        } else {
            json!({ "name": self.name, "mode": self.mode, "labels": self.labels })
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonItem {
    name: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonFile {
    Items(Vec<JsonItem>),
    Batch {
        collectors: Vec<JsonItem>,
        // A batch body's own flag; `--mint-tokens` decides.
        #[serde(default, rename = "mint_tokens")]
        _mint_tokens: Option<bool>,
    },
}

const DEFAULT_MODE: &str = "alloy-remotecfg";

/// Reads the rows of `text`; `path` decides the format by its extension, else the content does.
pub fn parse_rows(path: &Path, text: &str) -> Result<Vec<ImportRow>, ClientError> {
    let extension = path.extension().and_then(|ext| ext.to_str()).map(str::to_ascii_lowercase);
    let is_json = match extension.as_deref() {
        Some("json") => true,
        Some("csv") => false,
        _ => text.trim_start().starts_with(['[', '{']),
    };
    if is_json {
        parse_json(text)
    } else {
        parse_csv(text)
    }
}

fn parse_json(text: &str) -> Result<Vec<ImportRow>, ClientError> {
    let file: JsonFile = serde_json::from_str(text).map_err(|error| {
        ClientError::Input(format!(
            "not an array of {{\"name\",\"mode\",\"labels\"}} nor a batch body {{\"collectors\":[…]}}: {error}"
        ))
    })?;
    let items = match file {
        JsonFile::Items(items) | JsonFile::Batch { collectors: items, .. } => items,
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| ImportRow {
            row: format!("item {}", index + 1),
            name: item.name,
            mode: item.mode.filter(|mode| !mode.is_empty()).unwrap_or_else(|| DEFAULT_MODE.to_owned()),
            labels: item.labels,
        })
        .collect())
}

fn parse_csv(text: &str) -> Result<Vec<ImportRow>, ClientError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers =
        reader.headers().map_err(|error| ClientError::Input(format!("CSV header: {error}")))?.clone();
    let column = |name: &str| headers.iter().position(|header| header.eq_ignore_ascii_case(name));
    if let Some(unknown) = headers
        .iter()
        .find(|header| !["name", "mode", "labels"].contains(&header.to_ascii_lowercase().as_str()))
    {
        return Err(ClientError::Input(format!(
            "CSV header: unknown column {unknown:?} (expected name,mode,labels)"
        )));
    }
    let name_column =
        column("name").ok_or_else(|| ClientError::Input("CSV header: no \"name\" column".into()))?;
    let (mode_column, labels_column) = (column("mode"), column("labels"));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| ClientError::Input(format!("CSV: {error}")))?;
        let line = record.position().map_or(0, csv::Position::line);
        let row = format!("line {line}");
        let field = |column: Option<usize>| column.and_then(|column| record.get(column)).unwrap_or_default();
        let name = field(Some(name_column)).to_owned();
        let mode = match field(mode_column) {
            "" => DEFAULT_MODE.to_owned(),
            mode => mode.to_owned(),
        };
        let labels = parse_labels(field(labels_column))
            .map_err(|problem| ClientError::Input(format!("CSV {row}: labels: {problem}")))?;
        rows.push(ImportRow { row, name, mode, labels });
    }
    Ok(rows)
}

/// `k=v;k=v` (spaces around each part ignored; an empty text is no labels).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for pair in text.split(';').map(str::trim).filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not key=value"))?;
        if labels.insert(key.trim().to_owned(), value.trim().to_owned()).is_some() {
            return Err(format!("key {:?} is given twice", key.trim()));
        }
    }
    Ok(labels)
}

/// Consecutive batches of at most `max_items` rows whose bodies stay under the size limit.
fn batches(rows: &[ImportRow], max_items: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, row) in rows.iter().enumerate() {
        // The item's JSON plus its comma; the envelope is far below the margin kept.
        let size = row.body().to_string().len() + 1;
        if index > start && (index - start == max_items || bytes + size > MAX_BATCH_BODY_BYTES) {
            ranges.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < rows.len() {
        ranges.push(start..rows.len());
    }
    ranges
}

/// Where the minted tokens go: a file created for this import only, private to its owner.
struct TokensOut {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl TokensOut {
    fn create(path: &Path) -> Result<TokensOut, ClientError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|error| {
            let why = if error.kind() == std::io::ErrorKind::AlreadyExists {
                "it exists already, and tokens files are never overwritten".to_owned()
            } else {
                error.to_string()
            };
            ClientError::Input(format!("cannot create --tokens-out {}: {why}", path.display()))
        })?;
        let mut out = TokensOut { path: path.to_owned(), file: std::io::BufWriter::new(file) };
        out.write_line("id,name,token")?;
        Ok(out)
    }

    fn write_line(&mut self, line: &str) -> Result<(), ClientError> {
        writeln!(self.file, "{line}")
            .map_err(|error| ClientError::Input(format!("cannot write {}: {error}", self.path.display())))
    }

    fn flush(&mut self) -> Result<(), ClientError> {
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().sync_data())
            .map_err(|error| ClientError::Input(format!("cannot write {}: {error}", self.path.display())))
    }
}

fn csv_line(fields: &[&str]) -> String {
    let mut writer =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(fields);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end_matches('\n').to_owned()
}

/// The names of every collector on the server, page by page.
async fn existing_names(client: &ClientArgs) -> Result<HashSet<String>, ClientError> {
    let mut names = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/collectors?limit=1000".to_owned();
        if let Some(cursor) = &cursor {
            let query: String =
                form_urlencoded::Serializer::new(String::new()).append_pair("cursor", cursor).finish();
            path = format!("{path}&{query}");
        }
        let page = call(client, Method::GET, &path, None).await?;
        names.extend(
            page["collectors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|collector| collector["name"].as_str().map(str::to_owned)),
        );
        match page["next"].as_str() {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => return Ok(names),
        }
    }
}

/// `POST` one batch; a refusal keeps its whole error envelope (`details.index` names the item).
async fn post_batch(client: &ClientArgs, body: &Value) -> Result<Value, (u16, Value)> {
    let Some(token) = client.token.as_deref() else {
        return Err((0, json!({ "error": { "message": ClientError::MissingToken.to_string() } })));
    };
    let url = format!("{}{BATCH_PATH}", client.url.trim_end_matches('/'));
    let response =
        reqwest::Client::new().post(&url).bearer_auth(token).json(body).send().await.map_err(|error| {
            (0, json!({ "error": { "message": format!("cannot reach {url}: {error}") } }))
        })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        Ok(value)
    } else {
        Err((status.as_u16(), value))
    }
}

pub async fn import(args: ImportArgs) -> Result<(), ClientError> {
    let ImportArgs { client, file, mint_tokens, tokens_out, skip_existing, batch_size } = args;
    if client.token.is_none() {
        return Err(ClientError::MissingToken);
    }
    if !(1..=MAX_BATCH).contains(&batch_size) {
        return Err(ClientError::Input(format!("--batch-size must be 1 to {MAX_BATCH}")));
    }
    let tokens_out = match (mint_tokens, tokens_out) {
        (true, None) => {
            return Err(ClientError::Input(
                "--mint-tokens needs --tokens-out PATH: tokens are shown only once".into(),
            ))
        }
        (false, Some(_)) => return Err(ClientError::Input("--tokens-out is only for --mint-tokens".into())),
        (_, path) => path,
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|error| ClientError::Input(format!("cannot read {}: {error}", file.display())))?;
    let mut rows = parse_rows(&file, &text)?;
    let listed = rows.len();
    let mut skipped = 0;
    if skip_existing {
        let existing = existing_names(&client).await?;
        rows.retain(|row| !existing.contains(&row.name));
        skipped = listed - rows.len();
    }
    // Created before the first call, so a file that cannot be written stops the import first.
    let mut out = tokens_out.as_deref().map(TokensOut::create).transpose()?;
    let total = rows.len();
    let mut created = 0usize;
    let mut skipped_meanwhile = 0usize;
    let ranges = batches(&rows, batch_size);
    for (number, range) in ranges.iter().enumerate() {
        let mut batch: Vec<&ImportRow> = rows[range.clone()].iter().collect();
        let answer = loop {
            let body = json!({
                "collectors": batch.iter().map(|row| row.body()).collect::<Vec<_>>(),
                "mint_tokens": mint_tokens,
            });
            match post_batch(&client, &body).await {
                Ok(answer) => break answer,
                Err((409, refusal)) if skip_existing && refused_index(&refusal).is_some() => {
                    // Created by someone else since the names were read: skip it as existing.
                    let index = refused_index(&refusal).unwrap_or_default();
                    if index >= batch.len() {
                        return Err(batch_failed(
                            number,
                            &batch,
                            (409, refusal),
                            created,
                            total,
                            out.as_ref(),
                        ));
                    }
                    batch.remove(index);
                    skipped_meanwhile += 1;
                    if batch.is_empty() {
                        break json!({ "collectors": [] });
                    }
                }
                Err(refusal) => {
                    return Err(batch_failed(number, &batch, refusal, created, total, out.as_ref()));
                }
            }
        };
        let answered = answer["collectors"].as_array().map_or(0, Vec::len);
        if let Some(out) = &mut out {
            for collector in answer["collectors"].as_array().into_iter().flatten() {
                let field = |key: &str| collector[key].as_str().unwrap_or_default().to_owned();
                out.write_line(&csv_line(&[&field("id"), &field("name"), &field("token")]))?;
            }
            out.flush()?;
        }
        created += answered;
        let done = created + skipped_meanwhile;
        eprintln!(
            "imported {done}/{total} ({:.1}%)",
            if total == 0 { 100.0 } else { 100.0 * done as f64 / total as f64 }
        );
    }
    skipped += skipped_meanwhile;
    match client.output {
        OutputFormat::Json => print_json(&json!({
            "created": created,
            "skipped_existing": skipped,
            "listed": listed,
            "tokens_out": tokens_out.map(|path| path.display().to_string()),
        })),
        OutputFormat::Table => {
            let mut line = format!("created {created} collectors");
            if skipped > 0 {
                line.push_str(&format!(", skipped {skipped} that exist"));
            }
            if let Some(path) = &tokens_out {
                line.push_str(&format!("; tokens in {} (shown nowhere else)", path.display()));
            }
            println!("{line}");
        }
    }
    Ok(())
}

fn refused_index(refusal: &Value) -> Option<usize> {
    refusal["error"]["details"]["index"].as_u64().and_then(|index| usize::try_from(index).ok())
}

/// Says which batch and row failed and why, and what the earlier batches did.
fn batch_failed(
    number: usize,
    batch: &[&ImportRow],
    (status, refusal): (u16, Value),
    created: usize,
    total: usize,
    out: Option<&TokensOut>,
) -> ClientError {
    let message = refusal["error"]["message"].as_str().map_or_else(|| refusal.to_string(), str::to_owned);
    let rows = match (batch.first(), batch.last()) {
        (Some(first), Some(last)) => format!("{} to {}", first.row, last.row),
        _ => "none".to_owned(),
    };
    let culprit = refused_index(&refusal)
        .and_then(|index| batch.get(index))
        .map(|row| format!(" at {} (name {:?})", row.row, row.name))
        .unwrap_or_default();
    // 503 may mean "outcome unknown": the batch may have been created, its tokens unseen.
    let unknown = if status == 503 {
        " If that batch was created after all, --skip-existing leaves it out; with --mint-tokens its \
         tokens were never shown: rotate them (POST /api/v1/collectors:bulk, action rotate)."
    } else {
        ""
    };
    let status = if status == 0 { String::new() } else { format!("{status} ") };
    let tokens = out.map(|out| format!("; their tokens are in {}", out.path.display())).unwrap_or_default();
    ClientError::Input(format!(
        "batch {} ({rows}) was refused{culprit}: {status}{message}\n\
         nothing of that batch was created; {created} of {total} collectors were created by the \
         batches before it{tokens}. Fix the row and run again with --skip-existing to continue \
         (with --mint-tokens, give a new --tokens-out file).{unknown}",
        number + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_quoted_commas_and_parse_labels() {
        let text = "name,mode,labels\n\
                    edge-1,alloy-remotecfg,env=prod;team=a\n\
                    \"edge, 2\",opamp,\"region=eu,west; tier = gold\"\n\
                    edge-3,,\n";
        let rows = parse_rows(Path::new("fleet.csv"), text).expect("parses");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(rows[1].name, "edge, 2");
        assert_eq!(rows[1].mode, "opamp");
        assert_eq!(rows[1].labels.get("region").map(String::as_str), Some("eu,west"));
        assert_eq!(rows[1].labels.get("tier").map(String::as_str), Some("gold"));
        assert_eq!((rows[2].mode.as_str(), rows[2].labels.len()), ("alloy-remotecfg", 0));
        assert_eq!(rows[2].row, "line 4");
    }

    #[test]
    fn a_malformed_label_or_column_names_the_problem() {
        let bad_label = parse_rows(Path::new("f.csv"), "name,labels\na,env\n").expect_err("bad label");
        assert!(bad_label.to_string().contains("line 2"), "{bad_label}");
        let unknown = parse_rows(Path::new("f.csv"), "name,colour\na,red\n").expect_err("unknown column");
        assert!(unknown.to_string().contains("colour"), "{unknown}");
        assert!(parse_labels("a=1;a=2").is_err(), "a key twice");
    }

    #[test]
    fn json_is_an_array_or_a_batch_body_detected_by_content() {
        let array = r#"[{"name":"a","mode":"opamp","labels":{"env":"prod"}},{"name":"b"}]"#;
        let rows = parse_rows(Path::new("fleet.txt"), array).expect("array");
        assert_eq!((rows[0].mode.as_str(), rows[1].mode.as_str()), ("opamp", "alloy-remotecfg"));
        let body = r#"{"collectors":[{"name":"a","mode":"opamp"}],"mint_tokens":true}"#;
        assert_eq!(parse_rows(Path::new("fleet"), body).expect("batch body").len(), 1);
        assert_eq!(parse_rows(Path::new("fleet"), "name\na\n").expect("csv by content").len(), 1);
    }

    #[test]
    fn batches_are_cut_by_count_and_by_size() {
        let row = |name: String, value: &str| ImportRow {
            row: String::new(),
            name,
            mode: DEFAULT_MODE.into(),
            labels: [("k".to_owned(), value.to_owned())].into(),
        };
        let small: Vec<ImportRow> = (0..2500).map(|n| row(format!("c{n}"), "v")).collect();
        let lengths: Vec<usize> = batches(&small, 1000).iter().map(ExactSizeIterator::len).collect();
        assert_eq!(lengths, [1000, 1000, 500]);
        let long_value = "x".repeat(250);
        let large: Vec<ImportRow> = (0..1000)
            .map(|n| {
                let mut large = row(format!("c{n}"), &long_value);
                for key in 0..20 {
                    large.labels.insert(format!("key{key}"), long_value.clone());
                }
                large
            })
            .collect();
        let cut = batches(&large, 1000);
        assert!(cut.len() > 1, "a 5 MB batch is split");
        assert_eq!(cut.iter().map(ExactSizeIterator::len).sum::<usize>(), 1000);
        assert!(cut.iter().all(|range| {
            large[range.clone()].iter().map(|row| row.body().to_string().len() + 1).sum::<usize>()
                <= MAX_BATCH_BODY_BYTES
        }));
    }

    #[test]
    fn token_lines_are_quoted_csv() {
        assert_eq!(csv_line(&["col_1", "edge, 2", "lmct_x"]), "col_1,\"edge, 2\",lmct_x");
    }
}
