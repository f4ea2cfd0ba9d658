//! Audit bundles (schema/BUNDLE.md): the whole ledger as one text file, so
//! that an auditor with no copy of the database can recompute every hash,
//! signature, rule and balance.
//!
//! A bundle holds every entry's record, exactly the bytes that were hashed
//! and signed, and the checkpoint history; nothing derived (columns,
//! Merkle nodes, the state snapshot) is in it. [`write()`] streams it from a
//! store; [`restore`] reads it back into a new store, deriving the rest
//! from the records as an append does; [`verify_bundle`] restores into a
//! temporary store and runs the same `verify` as a ledger file gets. A
//! bundle is read once, line by line, and never held whole.
//!
//! The file's own SHA-256 (its last line) only catches damage in
//! transfer: whoever changes a bundle can recompute it. What a bundle
//! proves comes from the signatures in its records and from a checkpoint
//! the auditor trusts (`verify --bundle FILE --checkpoint CP`), which
//! catches a truncated or forked history.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::entry::{self, Record};
use crate::error::{Error, ErrorKind, Result};
use crate::event::BodyRawPostings;
use crate::ledger::Ledger;
use crate::merkle;
use crate::state::State;
use crate::store::{NewRow, Store};
use crate::verify::{self, Failure, Report};

/// The first line of every bundle, naming its format and version.
pub const BUNDLE_MAGIC: &str = "fundledger-bundle/v1";

/// The largest record a bundle line may carry: a body of at most
/// [`entry::BODY_LEN_MAX`] bytes plus room for the header, origin, kind and
/// [`entry::SIGNERS_MAX`] signatures (about 2 KiB at most). Bounds the
/// memory a hostile line can take before it is refused.
pub const RECORD_BYTES_MAX: usize = entry::BODY_LEN_MAX + 8 * 1024;

/// The largest checkpoint note a bundle line may carry (a body and up to
/// [`crate::note::MAX_SIGNATURES`] signature lines fit in a few KiB).
pub const NOTE_BYTES_MAX: usize = 64 * 1024;

/// Entries restored per transaction.
const RESTORE_COMMIT_ENTRIES: u64 = 4096;

/// Progress callbacks are made every this many entries.
const PROGRESS_EVERY: u64 = 4096;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What [`write()`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub entries: u64,
    pub checkpoints: u64,
    pub bytes: u64,
    /// SHA-256 of the bundle up to its last line (the value on that line).
    pub sha256: [u8; 32],
}

/// Counts bytes and hashes them on their way to `inner`.
struct HashingWriter<'w> {
    inner: &'w mut dyn Write,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter<'_> {
    fn line(&mut self, text: &str) -> Result<()> {
        for part in [text.as_bytes(), b"\n"] {
            self.hasher.update(part);
            self.bytes += part.len() as u64;
            self.inner
                .write_all(part)
                .map_err(|e| Error::io("cannot write the bundle", e))?;
        }
        Ok(())
    }
}

/// Write the bundle of the whole ledger in `store` to `out`, as of one
/// consistent view (appends made meanwhile are not in it). `progress` is
/// called with the entries written and their total.
pub fn write(
    store: &Store,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Written> {
    let _read = store.read_transaction()?;
    let total = store.count()?;
    let checkpoints = store.checkpoint_records()?;
    let mut w = HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        bytes: 0,
    };
    w.line(BUNDLE_MAGIC)?;
    w.line(&format!("entries {total}"))?;
    let mut written = 0u64;
    let mut line = String::new();
    store.scan(0, Some(total), |row| {
        if row.seq != written as i64 {
            return Err(Error::new(
                ErrorKind::Verification,
                format!("expected entry {written}, found entry {}", row.seq),
            )
            .with_hint("run `fundledger verify`"));
        }
        if written % PROGRESS_EVERY == 0 {
            progress(written, total);
        }
        line.clear();
        B64.encode_string(&row.record, &mut line);
        w.line(&line)?;
        written += 1;
        Ok(true)
    })?;
    if written != total {
        return Err(Error::new(
            ErrorKind::Verification,
            format!("the ledger counts {total} entries but {written} were read"),
        )
        .with_hint("run `fundledger verify`"));
    }
    w.line(&format!("checkpoints {}", checkpoints.len()))?;
    for cp in &checkpoints {
        w.line(&format!(
            "{} {} {}",
            cp.tree_size,
            cp.recorded_at_unix_ms,
            B64.encode(cp.note.as_bytes())
        ))?;
    }
    let sha256: [u8; 32] = std::mem::take(&mut w.hasher).finalize().into();
    // The last line is not part of what it hashes.
    let last = format!("sha256 {}\n", hex::encode(sha256));
    w.inner
        .write_all(last.as_bytes())
        .and_then(|()| w.inner.flush())
        .map_err(|e| Error::io("cannot write the bundle", e))?;
    progress(written, total);
    Ok(Written {
        entries: written,
        checkpoints: checkpoints.len() as u64,
        bytes: w.bytes + last.len() as u64,
        sha256,
    })
}

/// Write the bundle of the ledger in `store` to a new file at `path`, as
/// [`write()`] does. The file appears whole or not at all: it is written to
/// `<path>.partial`, synced, then linked to `path`, which is never
/// replaced.
pub fn write_file(
    store: &Store,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Written> {
    let exists = || {
        Error::input(format!("{} already exists", path.display()))
            .with_hint("a bundle is never overwritten; choose another --out path")
    };
    if path.exists() {
        return Err(exists());
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
                "another export may be writing it; if none is, remove the partial file"
            } else {
                "check that the directory exists and is writable"
            };
            Error::io(format!("cannot create {}", partial.display()), e).with_hint(hint)
        })?;
    let result = (|| {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        let written = write(store, &mut out, progress)?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io("cannot write the bundle", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("cannot write the bundle", e))?;
        std::fs::hard_link(&partial, path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists()
            } else {
                Error::io(format!("cannot create {}", path.display()), e)
            }
        })?;
        Ok(written)
    })();
    let _ = std::fs::remove_file(&partial);
    result
}

/// What [`restore`] read and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Entries in the bundle.
    pub entries: u64,
    /// Entries stored: all of them, unless `stopped`.
    pub stored: u64,
    pub checkpoints: u64,
    /// The first entry that could not be stored as a ledger holds it (it
    /// does not decode, carries another sequence number, or reuses an
    /// idempotency key), named as `verify` names it; no entry after it is
    /// stored.
    pub stopped: Option<Failure>,
    /// SHA-256 of the bundle up to its last line, which matched it.
    pub sha256: [u8; 32],
}

/// Reads a bundle line by line, hashing each line as it is read.
struct LineReader<'r> {
    input: &'r mut (dyn BufRead + Send),
    hasher: Sha256,
    buf: Vec<u8>,
    number: u64,
}

impl LineReader<'_> {
    /// The next line without its LF, at most `max` bytes long; hashed
    /// unless it is the last line.
    fn next(&mut self, what: &str, max: usize, hash: bool) -> Result<&str> {
        self.number += 1;
        self.buf.clear();
        let limit = (max + 1) as u64;
        let read = std::io::Read::take(&mut *self.input, limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| Error::io("cannot read the bundle", e))?;
        if read == 0 {
            return Err(self.damaged(format!("the file ends where {what} should be")));
        }
        if self.buf.last() != Some(&b'\n') {
            return Err(if self.buf.len() as u64 >= limit {
                self.damaged(format!("{what} is longer than {max} bytes"))
            } else {
                self.damaged(format!("{what} does not end with a line feed"))
            });
        }
        if hash {
            self.hasher.update(&self.buf);
        }
        self.buf.pop();
        std::str::from_utf8(&self.buf).map_err(|_| {
            Error::new(
                ErrorKind::Format,
                format!("bundle line {}: {what} is not UTF-8", self.number),
            )
            .with_hint(DAMAGED_HINT)
        })
    }

    fn damaged(&self, message: String) -> Error {
        Error::new(
            ErrorKind::Format,
            format!("bundle line {}: {message}", self.number),
        )
        .with_hint(DAMAGED_HINT)
    }

    /// A line `<label> <count>`.
    fn count(&mut self, label: &str) -> Result<u64> {
        let what = format!("the `{label}` line");
        let line = self.next(&what, 64, true)?.to_string();
        let parsed = line
            .strip_prefix(label)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(canonical_u64);
        parsed.ok_or_else(|| self.damaged(format!("expected `{label} <count>`, found {line:?}")))
    }
}

const DAMAGED_HINT: &str =
    "the file is not a bundle fundledger wrote, or was damaged since; get it again from the ledger's keeper (`fundledger export bundle`)";

/// A decimal without sign or leading zeros (schema/BUNDLE.md).
fn canonical_u64(text: &str) -> Option<u64> {
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if ok {
        text.parse().ok()
    } else {
        None
    }
}

/// As [`canonical_u64`], with a `-` before a value below zero.
fn canonical_i64(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(digits) if digits != "0" => canonical_u64(digits)
            .and_then(|v| i64::try_from(v).ok().map(|v| -v))
            .or_else(|| (digits == "9223372036854775808").then_some(i64::MIN)),
        Some(_) => None,
        None => canonical_u64(text).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Read the bundle from `input` into `store`, a new empty ledger (made by
/// [`Store::create`]). The whole file is read and its framing and SHA-256
/// checked even when an entry stops the restore; a bundle that is not well
/// formed is an error (the file is damaged), while an entry that cannot be
/// stored is reported in [`Restored::stopped`] for `verify` to weigh
/// against what it finds before it. `progress` is called with the entries
/// read and their total.
pub fn restore(
    input: &mut (dyn BufRead + Send),
    store: &mut Store,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Restored> {
    if store.count()? != 0 {
        return Err(Error::input("a bundle is restored only into a new ledger"));
    }
    let mut lines = LineReader {
        input,
        hasher: Sha256::new(),
        buf: Vec::new(),
        number: 0,
    };
    let magic = lines.next("the first line", 64, true)?.to_string();
    if magic != BUNDLE_MAGIC {
        return Err(lines.damaged(format!(
            "expected {BUNDLE_MAGIC:?}, found {magic:?} (not a bundle, or a version this fundledger does not read)"
        )));
    }
    let total = lines.count("entries")?;
    // Two threads: this one stores what the reading thread has read,
    // checked, decoded and hashed into Merkle nodes. At a million entries
    // `verify --bundle` took 44 s with the restore on one thread, 38 s so
    // (verify itself about 15 s); storing, SQLite's index inserts above
    // all, is now the slower side.
    let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(RESTORE_CHUNKS_IN_FLIGHT);
    let (read, stored) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_rest(lines, total, send));
        let stored = store_rows(store, receive, total, progress);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (read, stored)
    });
    // A damaged file is reported as damaged, whatever else happened.
    let Some(tail) = read? else {
        // The reading thread stopped because this one had.
        return Err(stored.err().unwrap_or_else(|| {
            Error::new(ErrorKind::Store, "the restore stopped reading the bundle")
        }));
    };
    let (stored, stopped) = stored?;
    progress(total, total);
    let Tail {
        checkpoints,
        sha256,
    } = tail;
    for (size, at, note) in &checkpoints {
        store.record_checkpoint(*size, note, *at)?;
    }
    Ok(Restored {
        entries: total,
        stored,
        checkpoints: checkpoints.len() as u64,
        stopped,
        sha256,
    })
}

/// Entries the reading thread hands over at a time, and how many such
/// chunks may wait (about 2 MB of records at this workload's 900 bytes).
const RESTORE_CHUNK_ENTRIES: usize = 256;
const RESTORE_CHUNKS_IN_FLIGHT: usize = 8;

/// A record as the reading thread decoded it: the row's parts, or why a
/// ledger could not hold it.
struct Parsed {
    seq: u64,
    bytes: Vec<u8>,
    row: std::result::Result<(Record, [u8; 32], Option<String>), Failure>,
    /// The Merkle nodes the entry completes, its leaf first.
    nodes: Vec<(u32, u64, merkle::Hash)>,
}

/// What follows the records.
struct Tail {
    checkpoints: Vec<(u64, i64, String)>,
    sha256: [u8; 32],
}

/// The reading thread: every record line (decoded, and its Merkle nodes
/// computed, until the first that stops the restore; then only checked),
/// then the checkpoints and the SHA-256 line. `Ok(None)` when the storing thread hung up first.
fn read_rest(
    mut lines: LineReader<'_>,
    total: u64,
    send: std::sync::mpsc::SyncSender<Vec<Parsed>>,
) -> Result<Option<Tail>> {
    // Base64 of the largest record, rounded up to whole quanta.
    let line_max = RECORD_BYTES_MAX.div_ceil(3) * 4;
    let mut chunk = Vec::with_capacity(RESTORE_CHUNK_ENTRIES);
    let mut stopped = false;
    let mut scratch = Vec::new();
    let mut tree = merkle::RightEdge::default();
    for seq in 0..total {
        let line = lines.next(&format!("the record of entry {seq}"), line_max, true)?;
        let mut bytes = if stopped {
            std::mem::take(&mut scratch)
        } else {
            Vec::with_capacity(line.len() / 4 * 3)
        };
        bytes.clear();
        if line.is_empty() || B64.decode_vec(line, &mut bytes).is_err() {
            return Err(lines.damaged(format!(
                "the record of entry {seq} is not canonical base64 (RFC 4648, padded)"
            )));
        }
        if bytes.len() > RECORD_BYTES_MAX {
            return Err(lines.damaged(format!(
                "the record of entry {seq} is longer than {RECORD_BYTES_MAX} bytes"
            )));
        }
        if stopped {
            scratch = bytes;
            continue;
        }
        let row = parse_row(seq, &bytes);
        stopped = row.is_err();
        let mut nodes = Vec::new();
        if !stopped {
            tree.push(merkle::leaf_hash(&bytes), &mut nodes);
        }
        chunk.push(Parsed {
            seq,
            bytes,
            row,
            nodes,
        });
        if chunk.len() == RESTORE_CHUNK_ENTRIES || stopped {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(RESTORE_CHUNK_ENTRIES));
            if send.send(full).is_err() {
                return Ok(None);
            }
        }
    }
    if !chunk.is_empty() && send.send(chunk).is_err() {
        return Ok(None);
    }
    drop(send);
    let checkpoint_count = lines.count("checkpoints")?;
    let note_line_max = NOTE_BYTES_MAX.div_ceil(3) * 4 + 2 * 21;
    let mut checkpoints = Vec::new();
    let mut last_size = 0u64;
    for i in 0..checkpoint_count {
        let line = lines.next(&format!("checkpoint {}", i + 1), note_line_max, true)?;
        let mut parts = line.split(' ');
        let (size, at, note) = (parts.next(), parts.next(), parts.next());
        let parsed = match (size, at, note, parts.next()) {
            (Some(size), Some(at), Some(note), None) => {
                match (canonical_u64(size), canonical_i64(at), B64.decode(note)) {
                    (Some(size), Some(at), Ok(note)) if note.len() <= NOTE_BYTES_MAX => {
                        String::from_utf8(note).ok().map(|note| (size, at, note))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((size, at, note)) = parsed else {
            return Err(lines.damaged(format!(
                "checkpoint {} is not `<tree size> <recorded at, unix ms> <base64 of the note>`",
                i + 1
            )));
        };
        if size < last_size || size > total {
            return Err(lines.damaged(format!(
                "checkpoint {} has tree size {size}: sizes must not decrease nor exceed the {total} entries",
                i + 1
            )));
        }
        last_size = size;
        checkpoints.push((size, at, note));
    }
    let sha256: [u8; 32] = lines.hasher.clone().finalize().into();
    let last = lines.next("the `sha256` line", 80, false)?.to_string();
    let expected = format!("sha256 {}", hex::encode(sha256));
    if last != expected {
        return Err(lines.damaged(format!(
            "the file's SHA-256 does not match its last line ({last:?}; the file hashes to {})",
            hex::encode(sha256)
        )));
    }
    let mut extra = [0u8; 1];
    let more = std::io::Read::read(&mut lines.input, &mut extra)
        .map_err(|e| Error::io("cannot read the bundle", e))?;
    if more != 0 {
        return Err(lines.damaged("bytes follow the `sha256` line".to_string()));
    }
    Ok(Some(Tail {
        checkpoints,
        sha256,
    }))
}

/// The storing thread: each entry the reading thread sends, with its
/// Merkle nodes, until one stops the restore. Returns the entries stored
/// and what stopped it. Dropping `receive` (on return) lets the reading
/// thread stop early when this one fails.
fn store_rows(
    store: &mut Store,
    receive: std::sync::mpsc::Receiver<Vec<Parsed>>,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, Option<Failure>)> {
    let mut stopped: Option<Failure> = None;
    let mut stored = 0u64;
    let tx = store.begin_batch_append()?;
    let mut writer = tx.row_writer()?;
    for chunk in receive.iter() {
        for Parsed {
            seq,
            bytes,
            row,
            nodes,
        } in chunk
        {
            if seq % PROGRESS_EVERY == 0 {
                progress(seq, total);
            }
            let (record, hash, idempotency_key) = match row {
                Ok(row) => row,
                Err(failure) => {
                    stopped = Some(failure);
                    break;
                }
            };
            if let Some(key) = &idempotency_key {
                if let Some(first) = tx.find_idempotency_key(key)? {
                    stopped = Some(verify::mismatch(
                        seq,
                        "idempotency_key",
                        &format!("idempotency key {key:?} was already used by an earlier entry"),
                        seq.to_string(),
                        format!("Some({})", first.seq),
                    ));
                    break;
                }
            }
            writer.insert_merkle_nodes(&nodes)?;
            writer.insert(&NewRow {
                seq,
                entry_hash: &hash,
                prev_hash: &record.content.prev_hash,
                recorded_at_unix_ms: record.content.recorded_at_unix_ms,
                kind: &record.content.kind,
                idempotency_key: idempotency_key.as_deref(),
                record: &bytes,
            })?;
            stored += 1;
            if stored % RESTORE_COMMIT_ENTRIES == 0 {
                tx.commit_and_continue()?;
            }
        }
        if stopped.is_some() {
            // The reading thread still reads the rest (and sends nothing).
            for _ in receive.iter() {}
            break;
        }
    }
    drop(writer);
    tx.commit()?;
    Ok((stored, stopped))
}

/// The parts of entry `seq`'s row, or why a ledger could not hold it (the
/// idempotency key is checked against the store by [`store_rows`]).
#[allow(clippy::type_complexity)]
fn parse_row(
    seq: u64,
    bytes: &[u8],
) -> std::result::Result<(Record, [u8; 32], Option<String>), Failure> {
    let decoded = Record::decode_hashed(bytes).and_then(|(record, hash)| {
        let body = BodyRawPostings::decode(&record.content.kind, &record.content.body)?;
        Ok((record, hash, body.idempotency_key))
    });
    let (record, hash, key) = match decoded {
        Ok(x) => x,
        Err(e) => return Err(verify::fail(seq, "decode", e.message())),
    };
    if record.content.seq != seq {
        return Err(verify::mismatch(
            seq,
            "sequence",
            &format!("the bundle's entry {seq} carries another sequence number"),
            seq.to_string(),
            record.content.seq.to_string(),
        ));
    }
    Ok((record, hash, key))
}

/// A directory removed with everything in it when dropped.
struct TempDir(PathBuf);

/// The prefix of the temporary directories `verify --bundle` makes; the
/// process id follows it.
const TEMP_DIR_PREFIX: &str = "fundledger-bundle-";

impl TempDir {
    fn new() -> Result<TempDir> {
        let base = std::env::temp_dir();
        remove_stale_temp_dirs(&base);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..100u32 {
            let dir = base.join(format!(
                "{TEMP_DIR_PREFIX}{}-{nanos}-{attempt}",
                std::process::id()
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot create a directory in {}", base.display()),
                        e,
                    )
                    .with_hint("set TMPDIR to a writable directory with room for the ledger"))
                }
            }
        }
        Err(Error::input(format!(
            "cannot find a free directory name in {}",
            base.display()
        )))
    }
}

/// Remove the temporary directories of `verify --bundle` runs whose
/// process is gone (killed, or stopped by Ctrl-C, before it could remove
/// its own: a restored ledger is about as large as the bundle). Only where
/// /proc tells which processes run; elsewhere nothing is removed.
fn remove_stale_temp_dirs(base: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Restore the bundle read from `input` into `store` (new and empty) and
/// verify the result with `options`: the report is `verify`'s, with the
/// entry that stopped the restore (if any) as its failure unless `verify`
/// found one before it. `progress` is called with a stage (`restoring`,
/// then `verifying`), entries done and their total.
fn restore_and_verify(
    input: &mut (dyn BufRead + Send),
    store: &mut Store,
    options: &verify::Options,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<(Restored, Report, State)> {
    let restored = restore(input, store, &mut |d, t| progress("restoring", d, t))?;
    let (mut report, state) =
        verify::verify_with_state(store, options, &mut |d, t| progress("verifying", d, t))?;
    if let Some(stop) = &restored.stopped {
        if report.failure.as_ref().is_none_or(|f| f.seq >= stop.seq) {
            report.entries_verified = report.entries_verified.min(stop.seq);
            report.failure = Some(stop.clone());
            report.status = "failed";
        }
    }
    Ok((restored, report, state))
}

/// The bundle at `path`, or standard input for `-` (so that a bundle can
/// be checked as it arrives: `... export bundle --out - | fundledger
/// verify --bundle -`).
fn open_bundle(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            std::io::stdin(),
        )));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, file)))
}

/// Make a new ledger at `ledger_path` (which must not exist) from the
/// bundle at `bundle`, and verify it as `verify --bundle` does. The
/// ledger is kept only when it verifies intact, with a state snapshot at
/// its head made from the state verify rebuilt (no replay); otherwise, or
/// on an error, the files made are removed.
pub fn restore_ledger(
    bundle: &Path,
    ledger_path: &Path,
    options: &verify::Options,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<(Restored, Report)> {
    let mut input = open_bundle(bundle)?;
    // Refuses an existing file: whatever is removed below was made here.
    let mut store = Store::create(ledger_path)?;
    let result = restore_and_verify(&mut input, &mut store, options, progress).and_then(
        |(restored, report, state)| {
            if report.is_intact() {
                Ledger::from_verified(store, state)?;
            } else {
                drop(store);
            }
            Ok((restored, report))
        },
    );
    if !matches!(&result, Ok((_, report)) if report.is_intact()) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = ledger_path.as_os_str().to_owned();
            path.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(path));
        }
    }
    result
}

/// Verify the bundle at `path` as `verify` checks a ledger file, through
/// a ledger restored in a temporary directory (under `TMPDIR`; it needs
/// about the ledger's size on disk) and removed after.
pub fn verify_bundle(
    path: &Path,
    options: &verify::Options,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Report> {
    let mut input = open_bundle(path)?;
    let dir = TempDir::new()?;
    let mut store = Store::create(&dir.0.join("ledger.sqlite"))?;
    let (_, report, _) = restore_and_verify(&mut input, &mut store, options, progress)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_canonical() {
        assert_eq!(canonical_u64("0"), Some(0));
        assert_eq!(canonical_u64("17"), Some(17));
        for bad in [
            "",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1a",
            "18446744073709551616",
        ] {
            assert_eq!(canonical_u64(bad), None, "{bad:?}");
        }
        assert_eq!(canonical_i64("-5"), Some(-5));
        assert_eq!(canonical_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(canonical_i64("9223372036854775807"), Some(i64::MAX));
        for bad in ["-0", "--1", "-01", "9223372036854775808", "-"] {
            assert_eq!(canonical_i64(bad), None, "{bad:?}");
        }
    }
}
