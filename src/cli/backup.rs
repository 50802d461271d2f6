//! `linkmesh backup --url U --out FILE` and `linkmesh restore --from FILE --data-dir D`
//! (`crate::backup`; `docs/operations.md`, "Backup and restore").
//!
//! A backup file is only ever complete: the document is fetched, parsed and checked (its key against
//! its fingerprint, every sealed credential against the key) before it is written to a temporary file
//! (0600) next to `FILE`, flushed to disk and renamed over it. Without `--force` an existing `FILE` is
//! never replaced, not even by a backup taken at the same moment elsewhere (the new name is linked,
//! which fails when the name exists).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::client::{print_json, ClientError};
use super::{ClientArgs, OutputFormat};
use crate::backup::{restore, Backup};

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The file to write (mode 0600). It holds the data key: keep it as secret as the data dir.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A file written by `linkmesh backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// The new node's data dir: must not exist, or be empty.
    #[arg(long, env = "LINKMESH_DATA_DIR")]
    pub data_dir: PathBuf,
}

const BACKUP_PATH: &str = "/api/v1/backup";

pub async fn backup(args: BackupArgs) -> Result<(), ClientError> {
    let BackupArgs { client, out, force } = args;
    if !force && out.symlink_metadata().is_ok() {
        return Err(ClientError::Input(format!(
            "{} exists; choose another --out, or add --force to replace it",
            out.display()
        )));
    }
    let token = client.token.as_deref().ok_or(ClientError::MissingToken)?;
    let url = format!("{}{BACKUP_PATH}", client.url.trim_end_matches('/'));
    let transport = |source| ClientError::Transport { url: url.clone(), source };
    let response = reqwest::Client::new().get(&url).bearer_auth(token).send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(transport)?;
    if status != 200 {
        return Err(refusal(status, &bytes));
    }
    let (backup, _key) = Backup::parse(&bytes).map_err(|error| {
        ClientError::Input(format!("the server's answer is not a usable backup: {error}"))
    })?;
    write_atomically(&out, &bytes, force)
        .map_err(|error| ClientError::Input(format!("cannot write {}: {error}", out.display())))?;
    let summary = backup.summary();
    match client.output {
        OutputFormat::Json => print_json(&json!({
            "file": out.display().to_string(),
            "bytes": bytes.len(),
            "cluster_id": backup.source.cluster_id,
            "applied_index": summary.applied_index,
            "collectors": summary.collectors,
            "pipelines": summary.pipelines,
            "users": summary.users,
            "service_accounts": summary.service_accounts,
            "sealed_credentials": summary.sealed_credentials,
        })),
        OutputFormat::Table => println!(
            "backup of cluster {} written to {} ({} bytes): {summary}",
            backup.source.cluster_id,
            out.display(),
            bytes.len()
        ),
    }
    Ok(())
}

/// A refused backup request, said so that the fix is clear.
fn refusal(status: u16, body: &[u8]) -> ClientError {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let message = value["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    let message = match status {
        401 => format!(
            "the token was not accepted ({message}); set LINKMESH_TOKEN (or --token) to an admin's token"
        ),
        403 => format!("backups need an admin service account token ({message})"),
        404 | 405 => {
            return ClientError::Unsupported { feature: "backups" };
        }
        _ => message,
    };
    ClientError::Api { status, message }
}

/// Temporary file (0600, same directory), fsync, then the final name, then fsync of the directory.
fn write_atomically(out: &Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    let directory = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out.file_name().ok_or_else(|| std::io::Error::other("--out names no file"))?;
    let temp = directory.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let placed = written.and_then(|()| {
        if replace {
            std::fs::rename(&temp, out)
        } else {
            // Fails if `out` appeared meanwhile; the temporary name goes either way.
            std::fs::hard_link(&temp, out).and_then(|()| std::fs::remove_file(&temp))
        }
    });
    if placed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    placed?;
    std::fs::File::open(&directory)?.sync_all()
}

/// `linkmesh restore`: exit 0 restored, 1 refused (file, data dir, key), 4 storage failed.
pub fn restore(args: RestoreArgs) -> u8 {
    match restore::run(&args.from, &args.data_dir) {
        Ok(restored) => {
            println!(
                "restored {} from cluster {} into {} as the new cluster {} (node {}); start it with `linkmesh \
                 serve --data-dir {}`",
                restored.summary,
                restored.source_cluster_id,
                args.data_dir.display(),
                restored.cluster_id,
                restored.node_id,
                args.data_dir.display()
            );
            0
        }
        Err(error) => {
            eprintln!("linkmesh: {error}");
            error.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("backup.json");
        write_atomically(&out, b"one", false).expect("first write");
        assert!(write_atomically(&out, b"two", false).is_err(), "no overwrite without --force");
        assert_eq!(std::fs::read(&out).expect("read"), b"one");
        write_atomically(&out, b"three", true).expect("forced");
        assert_eq!(std::fs::read(&out).expect("read"), b"three");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    fn parse(argv: &[&str]) -> Result<crate::cli::Command, clap::Error> {
        use clap::Parser as _;
        crate::cli::Cli::try_parse_from(std::iter::once(&"linkmesh").chain(argv)).map(|cli| cli.command)
    }

    #[test]
    fn backup_and_restore_take_their_flags() {
        let Ok(crate::cli::Command::Backup(args)) =
            parse(&["backup", "--url", "http://10.0.0.1:8080", "--out", "f.json", "--force"])
        else {
            panic!("backup parses")
        };
        assert_eq!(
            (args.client.url.as_str(), args.out.as_path(), args.force),
            ("http://10.0.0.1:8080", Path::new("f.json"), true)
        );
        assert!(parse(&["backup"]).is_err(), "--out is required");
        let Ok(crate::cli::Command::Restore(args)) =
            parse(&["restore", "--from", "f.json", "--data-dir", "d"])
        else {
            panic!("restore parses")
        };
        assert_eq!((args.from.as_path(), args.data_dir.as_path()), (Path::new("f.json"), Path::new("d")));
        assert!(parse(&["restore", "--data-dir", "d"]).is_err(), "--from is required");
    }

    #[test]
    fn refusals_say_what_to_fix() {
        let body = br#"{"error":{"code":"permission_denied","message":"admins only"}}"#;
        assert!(refusal(403, body).to_string().contains("admin service account token"));
        assert!(refusal(401, b"").to_string().contains("LINKMESH_TOKEN"));
        assert!(matches!(refusal(404, b""), ClientError::Unsupported { .. }));
    }
}
