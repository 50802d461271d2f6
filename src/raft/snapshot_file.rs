//! Snapshot files: the applied state, streamed to `<data-dir>/snapshots/` and read back the same way.
//!
//! Two encodings are read; which one is written is the caller's choice ([`SnapshotEncoding`]):
//!
//! - **Binary** (store format 4 on): `MAGIC` (8 bytes, the first not UTF-8, so never JSON), the
//!   format version (u16 LE), the state as MessagePack with field names (`rmp-serde`'s struct maps:
//!   self-describing, so `#[serde(default)]`, `skip_serializing_if`, tagged and untagged enums all work
//!   as in JSON), then a CRC-32 of everything before it (u32 LE), so a torn or damaged file is detected
//!   by the file alone — a snapshot received from a peer included. See docs/adr/0008.
//!   From feature level 3 on (format version 2), the state is followed by the history tree's entries
//!   (`raft/history_store.rs`), each `key length (u32 LE, at least 1), key, value length (u32 LE),
//!   value`, ended by a key length of 0, before the CRC-32. They are written after the state's read
//!   lock is released (ADR 0009 says why a copy taken while applies go on is still exact once the log
//!   after the snapshot is applied).
//! - **JSON**: the bare serialization every earlier linkmesh wrote and reads. Still written while a
//!   node that reads nothing else is a member (the cluster's apply level decides, in
//!   [`super::state_machine::snapshot_encoding`]); always read, detected by the absence of `MAGIC`.
//!
//! Whatever the encoding, the store records each file's length and CRC-32 (in sled, framed) and checks
//! them at every start and in `linkmesh check`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The directory of snapshot files, in the data dir beside `raft/`.
pub const SNAPSHOT_DIR: &str = "snapshots";
pub const MAGIC: [u8; 8] = *b"\x89LMSNAP\n";
pub const FORMAT_VERSION: u16 = 1;
/// The version of a binary file whose state is followed by the history tree's entries.
pub const FORMAT_VERSION_WITH_HISTORY: u16 = 2;
const HEADER_LEN: u64 = 10;
const TRAILER_LEN: u64 = 4;
/// Large enough that the encoder's many small writes reach the kernel as few large ones.
const BUFFER_BYTES: usize = 1 << 20;

/// How a snapshot is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotEncoding {
    /// What linkmesh wrote before store format 4; the only one older nodes read.
    Json,
    /// [`MAGIC`], version, MessagePack body, CRC-32.
    Binary,
    /// [`MAGIC`], version 2, MessagePack body, the history tree's entries, CRC-32.
    BinaryWithHistory,
}

/// A snapshot file as the store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// A name inside [`SNAPSHOT_DIR`].
    pub name: String,
    pub bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("{SNAPSHOT_DIR}/{name} is missing")]
    Missing { name: String },
    #[error("{SNAPSHOT_DIR}/{name} cannot be read: {source}")]
    Io { name: String, source: io::Error },
    #[error("{SNAPSHOT_DIR}/{name} holds {found} bytes but the store recorded {expected}")]
    Length { name: String, found: u64, expected: u64 },
    #[error("{SNAPSHOT_DIR}/{name} fails its checksum")]
    Checksum { name: String },
    #[error("{SNAPSHOT_DIR}/{name} has an unknown snapshot format version {version}")]
    UnknownVersion { name: String, version: u16 },
    #[error("{SNAPSHOT_DIR}/{name} cannot be decoded: {what}")]
    Decode { name: String, what: String },
}

impl SnapshotFileError {
    /// The I/O error underneath, when there is one (a failing device is not damage).
    pub fn io_source(&self) -> Option<&io::Error> {
        match self {
            SnapshotFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Counts and checksums what passes through to `inner`.
struct Summing<W> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.crc.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encodes `state` into `out` (buffered by the caller). Returns nothing but errors: the caller's
/// [`SnapshotWriter`] sums what was written.
fn encode_into<W: Write, T: Serialize>(
    out: &mut BufWriter<Summing<W>>,
    state: &T,
    encoding: SnapshotEncoding,
) -> io::Result<()> {
    match encoding {
        SnapshotEncoding::Json => serde_json::to_writer(&mut *out, state).map_err(io::Error::other),
        SnapshotEncoding::Binary | SnapshotEncoding::BinaryWithHistory => {
            let with_history = encoding == SnapshotEncoding::BinaryWithHistory;
            let version = if with_history { FORMAT_VERSION_WITH_HISTORY } else { FORMAT_VERSION };
            out.write_all(&MAGIC)?;
            out.write_all(&version.to_le_bytes())?;
            state
                .serialize(&mut rmp_serde::Serializer::new(&mut *out).with_struct_map())
                .map_err(io::Error::other)?;
            if with_history {
                // The entries and the trailer follow (`SnapshotWriter::history_entry`, `end_history`).
                return Ok(());
            }
            write_trailer(out)
        }
    }
}

fn write_trailer<W: Write>(out: &mut BufWriter<Summing<W>>) -> io::Result<()> {
    out.flush()?;
    let body = out.get_ref().crc.clone().finalize();
    out.write_all(&body.to_le_bytes())
}

fn write_history_entry<W: Write>(
    out: &mut BufWriter<Summing<W>>,
    key: &[u8],
    value: &[u8],
) -> io::Result<()> {
    let length =
        |bytes: &[u8]| u32::try_from(bytes.len()).map_err(|_| io::Error::other("a history entry over 4 GiB"));
    if key.is_empty() {
        return Err(io::Error::other("a history entry with an empty key"));
    }
    out.write_all(&length(key)?.to_le_bytes())?;
    out.write_all(key)?;
    out.write_all(&length(value)?.to_le_bytes())?;
    out.write_all(value)
}

fn end_history_into<W: Write>(out: &mut BufWriter<Summing<W>>) -> io::Result<()> {
    out.write_all(&0u32.to_le_bytes())?;
    write_trailer(out)
}

/// Encodes a state into any writer (with an empty history section, for [`SnapshotEncoding::BinaryWithHistory`]);
/// what benchmarks and tests compare.
pub fn encode<W: Write, T: Serialize>(
    writer: W,
    state: &T,
    encoding: SnapshotEncoding,
) -> io::Result<(u64, u32)> {
    let mut out =
        BufWriter::with_capacity(BUFFER_BYTES, Summing { inner: writer, crc: Default::default(), bytes: 0 });
    encode_into(&mut out, state, encoding)?;
    if encoding == SnapshotEncoding::BinaryWithHistory {
        end_history_into(&mut out)?;
    }
    out.flush()?;
    let summing = out.into_inner().map_err(|error| error.into_error())?;
    Ok((summing.bytes, summing.crc.finalize()))
}

/// A snapshot file being written: [`create`](Self::create), [`encode`](Self::encode) (under the state's
/// read lock: it only fills the page cache), then [`finish`](Self::finish) (outside it: the fsyncs).
pub struct SnapshotWriter {
    name: String,
    dir: std::path::PathBuf,
    out: BufWriter<Summing<File>>,
    /// A history section was begun and not ended yet.
    history_open: bool,
}

impl SnapshotWriter {
    /// Creates `dir/name` (0600; `dir` 0700 if it is new). The name must not exist.
    pub fn create(dir: &Path, name: &str) -> io::Result<SnapshotWriter> {
        create_private_dir(dir)?;
        let file = private_options().write(true).create_new(true).open(dir.join(name))?;
        let out = BufWriter::with_capacity(
            BUFFER_BYTES,
            Summing { inner: file, crc: Default::default(), bytes: 0 },
        );
        Ok(SnapshotWriter { name: name.to_owned(), dir: dir.to_owned(), out, history_open: false })
    }

    /// Encodes the state. With [`SnapshotEncoding::BinaryWithHistory`], the history section follows:
    /// [`history_entry`](Self::history_entry) for each entry, then [`end_history`](Self::end_history).
    pub fn encode<T: Serialize>(&mut self, state: &T, encoding: SnapshotEncoding) -> io::Result<()> {
        encode_into(&mut self.out, state, encoding)?;
        self.history_open = encoding == SnapshotEncoding::BinaryWithHistory;
        Ok(())
    }

    pub fn history_entry(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        if !self.history_open {
            return Err(io::Error::other("no history section is open"));
        }
        write_history_entry(&mut self.out, key, value)
    }

    pub fn end_history(&mut self) -> io::Result<()> {
        if !self.history_open {
            return Err(io::Error::other("no history section is open"));
        }
        self.history_open = false;
        end_history_into(&mut self.out)
    }

    /// Flushes, fsyncs the file and its directory: from here on it is durable under its name.
    pub fn finish(mut self) -> io::Result<SnapshotFile> {
        if self.history_open {
            return Err(io::Error::other("the snapshot's history section was not ended"));
        }
        self.out.flush()?;
        let summing = self.out.into_inner().map_err(|error| error.into_error())?;
        summing.inner.sync_all()?;
        sync_dir(&self.dir)?;
        Ok(SnapshotFile { name: self.name, bytes: summing.bytes, crc32: summing.crc.finalize() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` as `dir/name` (replacing one of that name), durable when it returns.
pub fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<SnapshotFile> {
    create_private_dir(dir)?;
    let mut file = private_options().write(true).create(true).truncate(true).open(dir.join(name))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(SnapshotFile { name: name.to_owned(), bytes: bytes.len() as u64, crc32: crc32fast::hash(bytes) })
}

/// A file-system-safe name for a snapshot of id `snapshot_id` that does not exist yet in `dir`.
pub fn fresh_name(dir: &Path, snapshot_id: &str) -> String {
    let base: String = snapshot_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(120)
        .collect();
    let mut name = format!("{base}.snap");
    let mut attempt = 1;
    while dir.join(&name).symlink_metadata().is_ok() {
        attempt += 1;
        name = format!("{base}.{attempt}.snap");
    }
    name
}

/// Reads a whole file once: its length and CRC-32, and for a binary one whether its own trailer
/// matches (a JSON one carries no checksum of its own).
pub fn scan(dir: &Path, name: &str) -> Result<SnapshotFile, SnapshotFileError> {
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => SnapshotFileError::Missing { name: name.to_owned() },
        _ => SnapshotFileError::Io { name: name.to_owned(), source },
    };
    let mut file = File::open(dir.join(name)).map_err(io_error)?;
    let length = file.metadata().map_err(io_error)?.len();
    let mut whole = crc32fast::Hasher::new();
    let mut body = crc32fast::Hasher::new();
    let mut head = Vec::with_capacity(HEADER_LEN as usize);
    let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
    let body_end = length.saturating_sub(TRAILER_LEN);
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let mut position = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            break;
        }
        let chunk = &buffer[..read];
        whole.update(chunk);
        let in_body = (body_end.saturating_sub(position) as usize).min(read);
        body.update(&chunk[..in_body]);
        trailer.extend_from_slice(&chunk[in_body..]);
        let wanted = (HEADER_LEN as usize).saturating_sub(head.len()).min(read);
        head.extend_from_slice(&chunk[..wanted]);
        position += read as u64;
    }
    if position != length {
        return Err(SnapshotFileError::Length { name: name.to_owned(), found: position, expected: length });
    }
    if head.starts_with(&MAGIC) {
        if length < HEADER_LEN + TRAILER_LEN {
            return Err(SnapshotFileError::Checksum { name: name.to_owned() });
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != FORMAT_VERSION && version != FORMAT_VERSION_WITH_HISTORY {
            return Err(SnapshotFileError::UnknownVersion { name: name.to_owned(), version });
        }
        let stored = u32::from_le_bytes(trailer.as_slice().try_into().unwrap_or_default());
        if stored != body.finalize() {
            return Err(SnapshotFileError::Checksum { name: name.to_owned() });
        }
    }
    Ok(SnapshotFile { name: name.to_owned(), bytes: length, crc32: whole.finalize() })
}

/// Checks a recorded file: there, of its length, and intact (the whole file's CRC-32, and a binary
/// file's own trailer).
pub fn check(dir: &Path, recorded: &SnapshotFile) -> Result<(), SnapshotFileError> {
    // The length first: a torn file is better told as such than as a checksum failure.
    if let Ok(metadata) = std::fs::metadata(dir.join(&recorded.name)) {
        if metadata.len() != recorded.bytes {
            return Err(SnapshotFileError::Length {
                name: recorded.name.clone(),
                found: metadata.len(),
                expected: recorded.bytes,
            });
        }
    }
    let found = scan(dir, &recorded.name)?;
    if found.bytes != recorded.bytes {
        return Err(SnapshotFileError::Length {
            name: recorded.name.clone(),
            found: found.bytes,
            expected: recorded.bytes,
        });
    }
    if found.crc32 != recorded.crc32 {
        return Err(SnapshotFileError::Checksum { name: recorded.name.clone() });
    }
    Ok(())
}

/// Decodes a snapshot, binary or JSON (told apart by [`MAGIC`]), streaming from `reader`. Checksums
/// are [`scan`]'s business; this only decodes. The indexes are not rebuilt.
pub fn decode_from<T: DeserializeOwned, R: Read>(reader: R) -> Result<T, String> {
    decode_inner(reader, None).map(|(state, _)| state)
}

/// What a history section may hold per entry; more is damage, not a big entry (an event is a few
/// hundred bytes).
const MAX_HISTORY_PART: usize = 64 << 20;

/// Decodes a snapshot as [`decode_from`] does, handing each entry of its history section to
/// `on_entry` in order. Also says whether the file had a history section (format version 2).
pub fn decode_with_history<T: DeserializeOwned, R: Read>(
    reader: R,
    mut on_entry: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), String>,
) -> Result<(T, bool), String> {
    decode_inner(reader, Some(&mut on_entry))
}

/// One entry handler for the history section.
type OnEntry<'a> = &'a mut dyn FnMut(Vec<u8>, Vec<u8>) -> Result<(), String>;

/// Decodes a snapshot; the history section's entries go to `on_entry`, or are skipped unread without
/// it (a restart: the tree is already on disk).
fn decode_inner<T: DeserializeOwned, R: Read>(
    reader: R,
    mut on_entry: Option<OnEntry<'_>>,
) -> Result<(T, bool), String> {
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, reader);
    let mut prefix = Vec::with_capacity(HEADER_LEN as usize);
    (&mut reader).take(HEADER_LEN).read_to_end(&mut prefix).map_err(|error| error.to_string())?;
    if prefix.starts_with(&MAGIC) && prefix.len() == HEADER_LEN as usize {
        let version = u16::from_le_bytes([prefix[8], prefix[9]]);
        if version != FORMAT_VERSION && version != FORMAT_VERSION_WITH_HISTORY {
            return Err(format!("unknown snapshot format version {version}"));
        }
        let mut deserializer = rmp_serde::Deserializer::new(&mut reader);
        let state = crate::model::config_text::sharing(|| T::deserialize(&mut deserializer))
            .map_err(|error| error.to_string())?;
        let with_history = version == FORMAT_VERSION_WITH_HISTORY;
        if with_history {
            let section_error = |error: io::Error| format!("the history section: {error}");
            // Reads one length-prefixed part: its bytes when `keep`, else skips them (empty result),
            // and says whether it had any.
            let part = |reader: &mut BufReader<R>, keep: bool| -> Result<(Vec<u8>, bool), String> {
                let mut length = [0u8; 4];
                reader.read_exact(&mut length).map_err(section_error)?;
                let length = u32::from_le_bytes(length) as usize;
                if length > MAX_HISTORY_PART {
                    return Err(format!("a history entry of {length} bytes"));
                }
                if !keep {
                    let skipped = io::copy(&mut reader.by_ref().take(length as u64), &mut io::sink())
                        .map_err(section_error)?;
                    if skipped != length as u64 {
                        return Err("the history section ends inside an entry".to_owned());
                    }
                    return Ok((Vec::new(), length > 0));
                }
                let mut bytes = vec![0u8; length];
                reader.read_exact(&mut bytes).map_err(section_error)?;
                Ok((bytes, length > 0))
            };
            let keep = on_entry.is_some();
            loop {
                let (key, any) = part(&mut reader, keep)?;
                if !any {
                    break;
                }
                let (value, _) = part(&mut reader, keep)?;
                if let Some(on_entry) = on_entry.as_mut() {
                    on_entry(key, value)?;
                }
            }
        }
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).map_err(|error| error.to_string())?;
        if rest.len() != TRAILER_LEN as usize {
            return Err(format!(
                "{} bytes follow the body, expected its {TRAILER_LEN}-byte checksum",
                rest.len()
            ));
        }
        Ok((state, with_history))
    } else {
        let state = serde_json::from_reader(io::Cursor::new(prefix).chain(reader))
            .map_err(|error| error.to_string())?;
        Ok((state, false))
    }
}

/// Decodes the file `dir/name` (see [`decode_from`]).
pub fn decode_file<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<T, SnapshotFileError> {
    let mut file = File::open(dir.join(name)).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => SnapshotFileError::Missing { name: name.to_owned() },
        _ => SnapshotFileError::Io { name: name.to_owned(), source },
    })?;
    file.rewind().map_err(|source| SnapshotFileError::Io { name: name.to_owned(), source })?;
    decode_from(file).map_err(|what| SnapshotFileError::Decode { name: name.to_owned(), what })
}

/// Decodes the file `dir/name`, its history section into `on_entry` (see [`decode_with_history`]).
pub fn decode_file_with_history<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
    on_entry: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), String>,
) -> Result<(T, bool), SnapshotFileError> {
    let file = File::open(dir.join(name)).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => SnapshotFileError::Missing { name: name.to_owned() },
        _ => SnapshotFileError::Io { name: name.to_owned(), source },
    })?;
    decode_with_history(file, on_entry)
        .map_err(|what| SnapshotFileError::Decode { name: name.to_owned(), what })
}

/// Removes every file of `dir` but `keep` (older snapshots, and any that a crash left half-written
/// or half-received). Errors are ignored: a stale file costs only space.
pub fn remove_all_but(dir: &Path, keep: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if keep.is_some_and(|keep| entry.file_name() == keep) {
            continue;
        }
        if entry.file_type().is_ok_and(|kind| kind.is_file()) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::debug!(file = %entry.path().display(), "removed a stale snapshot file"),
                Err(error) => tracing::warn!(
                    file = %entry.path().display(),
                    error = %error,
                    "a stale snapshot file could not be removed"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::FleetState;

    /// The fixture's fleet (users, sessions, slot table, a polled collector with events) and one more
    /// collector with a token.
    fn sample_state() -> FleetState {
        let fixture = include_str!("../../tests/fixtures/snapshots/before_slot_epochs.json");
        let applied: serde_json::Value = serde_json::from_str(fixture).expect("fixture");
        let mut fleet: FleetState = serde_json::from_value(applied["fleet"].clone()).expect("fleet");
        fleet.rebuild_indexes();
        for command in [
            serde_json::json!({"op": "create_collector", "id": "col_00000000000000000001", "name": "binary",
                "mode": "alloy-remotecfg", "remote_attributes": {"os": "linux"}, "at": 5}),
            serde_json::json!({"op": "set_collector_token", "collector_id": "col_00000000000000000001",
                "token_hash": "ab".repeat(32), "prefix": "lmct_abcdef", "at": 6}),
        ] {
            let command: crate::model::Command = serde_json::from_value(command).expect("command");
            fleet.apply(&command).expect("applies");
        }
        fleet
    }

    #[test]
    fn both_encodings_round_trip_the_state_and_are_told_apart() {
        let state = sample_state();
        for encoding in [SnapshotEncoding::Json, SnapshotEncoding::Binary] {
            let mut bytes = Vec::new();
            let (length, crc) = encode(&mut bytes, &state, encoding).expect("encode");
            assert_eq!((length, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
            assert_eq!(bytes.starts_with(&MAGIC), encoding == SnapshotEncoding::Binary);
            let mut decoded: FleetState = decode_from(bytes.as_slice()).expect("decode");
            decoded.rebuild_indexes();
            assert_eq!(decoded, state, "{encoding:?}");
        }
    }

    #[test]
    fn a_history_section_follows_the_state_is_read_in_order_or_skipped_and_checked() {
        let dir = tempfile::tempdir().expect("dir");
        let state = sample_state();
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            (0u8..50).map(|i| (vec![0, 1, b'c', i], vec![i; usize::from(i)])).collect();
        let mut writer = SnapshotWriter::create(dir.path(), "h.snap").expect("create");
        writer.encode(&state, SnapshotEncoding::BinaryWithHistory).expect("state");
        for (key, value) in &entries {
            writer.history_entry(key, value).expect("entry");
        }
        assert!(writer.history_entry(&[], b"x").is_err(), "an empty key would end the section");
        writer.end_history().expect("end");
        let recorded = writer.finish().expect("finish");
        check(dir.path(), &recorded).expect("intact: version 2 passes the checks");

        let mut read = Vec::new();
        let (mut decoded, with_history): (FleetState, bool) =
            decode_file_with_history(dir.path(), "h.snap", |key, value| {
                read.push((key, value));
                Ok(())
            })
            .expect("decode");
        decoded.rebuild_indexes();
        assert!(with_history);
        assert_eq!((decoded, read), (state.clone(), entries));
        let mut skipped: FleetState = decode_file(dir.path(), "h.snap").expect("the section skipped");
        skipped.rebuild_indexes();
        assert_eq!(skipped, state);

        let bytes = std::fs::read(dir.path().join("h.snap")).expect("read");
        std::fs::write(dir.path().join("torn.snap"), &bytes[..bytes.len() - 40]).expect("write");
        assert!(decode_file::<FleetState>(dir.path(), "torn.snap").is_err(), "a torn section");
        let unfinished = SnapshotWriter::create(dir.path(), "u.snap").expect("create");
        let mut unfinished = unfinished;
        unfinished.encode(&state, SnapshotEncoding::BinaryWithHistory).expect("state");
        assert!(unfinished.finish().is_err(), "a section never ended is no snapshot");
    }

    #[test]
    fn a_damaged_or_torn_binary_file_fails_its_own_checksum() {
        let dir = tempfile::tempdir().expect("dir");
        let mut writer = SnapshotWriter::create(dir.path(), "a.snap").expect("create");
        writer.encode(&sample_state(), SnapshotEncoding::Binary).expect("encode");
        let recorded = writer.finish().expect("finish");
        assert_eq!(scan(dir.path(), "a.snap").expect("scan"), recorded);
        check(dir.path(), &recorded).expect("intact");
        let bytes = std::fs::read(dir.path().join("a.snap")).expect("read");
        for position in [0, 9, 10, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x20;
            std::fs::write(dir.path().join("b.snap"), &damaged).expect("write");
            assert!(scan(dir.path(), "b.snap").is_err() || position == 0, "flip at {position} passed");
            let checked = check(dir.path(), &SnapshotFile { name: "b.snap".into(), ..recorded.clone() });
            assert!(
                matches!(
                    checked,
                    Err(SnapshotFileError::Checksum { .. } | SnapshotFileError::UnknownVersion { .. })
                ),
                "flip at {position}: {checked:?}"
            );
        }
        std::fs::write(dir.path().join("torn.snap"), &bytes[..bytes.len() - 100]).expect("write");
        assert!(matches!(scan(dir.path(), "torn.snap"), Err(SnapshotFileError::Checksum { .. })));
        assert!(decode_file::<FleetState>(dir.path(), "torn.snap").is_err());
        assert!(matches!(
            check(dir.path(), &SnapshotFile { name: "gone.snap".into(), ..recorded }),
            Err(SnapshotFileError::Missing { .. })
        ));
    }

    #[test]
    fn fresh_names_are_safe_and_never_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let name = fresh_name(dir.path(), "T1-N7/../x");
        assert_eq!(name, "T1-N7____x.snap");
        std::fs::write(dir.path().join(&name), b"x").expect("write");
        assert_eq!(fresh_name(dir.path(), "T1-N7/../x"), "T1-N7____x.2.snap");
        remove_all_but(dir.path(), None);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
