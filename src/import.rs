//! Importing events in bulk: a JSON Lines file (schema/IMPORT.md), one
//! event per line, appended through the batch path
//! ([`Ledger::append_batch`]) all or nothing as far as the input goes:
//! every line is parsed, and every event checked against the ledger
//! ([`Ledger::check_batch`]), before the first entry is written. A line
//! that does not parse or an event the rules refuse stops the import with
//! its line number and leaves the ledger unchanged.
//!
//! The file is never held whole: it is read three times, line by line
//! (parse, check, append), and each chunk of events is hashed on the first
//! reading and compared on the others, so a file that changes during the
//! import is refused before any of its changed part is recorded.
//!
//! Every line carries an idempotency key, so that running the same file
//! again appends nothing twice: should the append itself stop (a full
//! disk, another writer in between), the entries before are recorded and
//! the same import, run again, records the rest.

use std::io::{BufRead, Read};
use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::event::{check_idempotency_key, decode_event, Event};
use crate::ledger::{
    Appended, BatchChecked, BatchRequest, Ledger, ReversalTargets, BATCH_CHUNK_ENTRIES,
};

/// Most events one import reads. The file is read three times and never
/// held whole; what grows with it is each event's idempotency key and a
/// 32-byte digest (about 100 bytes per event with the map's own), the
/// contents of the entries its reversals name, and one chunk of
/// [`BATCH_CHUNK_ENTRIES`] events while it is appended. Split a larger
/// file; with idempotency keys the parts can be imported in any number of
/// runs.
pub const IMPORT_LINES_MAX: usize = 1_000_000;

/// Longest line, in bytes (an event's JSON; the largest body an entry
/// may carry is 4 MiB, but no event written by hand comes near this).
pub const IMPORT_LINE_BYTES_MAX: usize = 1024 * 1024;

/// One event to import, and the line it came from (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImportLine {
    line: usize,
    event: Event,
    idempotency_key: String,
    /// For a reversal: the idempotency key of the entry it reverses, when
    /// the line names it so (its `seq` is set when it is checked).
    reverses: Option<String>,
}

impl ImportLine {
    fn into_request(self) -> BatchRequest {
        BatchRequest {
            event: self.event,
            idempotency_key: Some(self.idempotency_key),
            reverses: self.reverses,
        }
    }
}

/// A line as written: exactly these three members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn<'a> {
    kind: String,
    #[serde(borrow)]
    event: &'a serde_json::value::RawValue,
    idempotency_key: String,
    #[serde(default)]
    reverses: Option<String>,
}

fn line_error(line: usize, message: impl std::fmt::Display) -> Error {
    Error::input(format!("line {line}: {message}; nothing was recorded"))
        .with_hint("fix the line and run the import again (schema/IMPORT.md)")
}

/// Parse one line (its `\n` and a `\r` before it removed).
fn parse_line(line: usize, raw: &[u8]) -> Result<ImportLine> {
    let text = std::str::from_utf8(raw).map_err(|_| line_error(line, "is not UTF-8"))?;
    let parsed: LineIn<'_> = serde_json::from_str(text).map_err(|e| {
        line_error(
            line,
            format!("not an import line ({e}); expected {{\"kind\": ..., \"event\": {{...}}, \"idempotency_key\": ...}}"),
        )
    })?;
    if parsed.kind == "genesis" {
        return Err(line_error(
            line,
            "a genesis entry cannot be imported; create the ledger with `fundledger init`",
        ));
    }
    let event = match &parsed.reverses {
        None => decode_event(&parsed.kind, parsed.event),
        Some(key) => {
            if parsed.kind != "reversal" {
                return Err(line_error(
                    line,
                    "only a reversal names the entry it reverses (`reverses`)",
                ));
            }
            check_idempotency_key(key).map_err(|e| line_error(line, e.message()))?;
            reversal_without_seq(parsed.event)
        }
    }
    .map_err(|e| line_error(line, e.message()))?;
    check_idempotency_key(&parsed.idempotency_key).map_err(|e| line_error(line, e.message()))?;
    Ok(ImportLine {
        line,
        event,
        idempotency_key: parsed.idempotency_key,
        reverses: parsed.reverses,
    })
}

/// A reversal event written without its `seq` (the line names the entry
/// by `reverses`): decoded as a reversal of entry 0 until the check sets
/// the entry's number.
fn reversal_without_seq(raw: &serde_json::value::RawValue) -> Result<Event> {
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw.get())
        .map_err(|e| Error::format(format!("reversal event does not decode: {e}")))?;
    if fields.contains_key("seq") {
        return Err(Error::format(
            "a reversal names its entry by `seq` or by `reverses`, not both",
        ));
    }
    fields.insert("seq".into(), 0.into());
    let json = serde_json::to_string(&fields).map_err(|e| Error::format(e.to_string()))?;
    let raw =
        serde_json::value::RawValue::from_string(json).map_err(|e| Error::format(e.to_string()))?;
    decode_event("reversal", &raw)
}

/// The events of an import file, parsed one line at a time. Empty lines,
/// a `\r` before each `\n` and a UTF-8 byte order mark at the start (as
/// spreadsheet tools write) are allowed; anything else that is not an
/// import line is an error naming its line. Each chunk of
/// [`BATCH_CHUNK_ENTRIES`] events is hashed as it is read (SHA-256 over
/// its lines as read), so that a later read of the same file can tell
/// that it changed.
struct EventReader<R> {
    reader: R,
    /// The number of the line last read (1-based).
    line: usize,
    events: usize,
    buffer: Vec<u8>,
    chunk: Sha256,
    /// The digest of each complete chunk, and at the end of the last one.
    digests: Vec<[u8; 32]>,
    finished: bool,
    /// [`IMPORT_LINES_MAX`] but in tests.
    events_max: usize,
}

impl<R: BufRead> EventReader<R> {
    fn new(reader: R) -> Self {
        EventReader {
            reader,
            line: 0,
            events: 0,
            buffer: Vec::new(),
            chunk: Sha256::new(),
            digests: Vec::new(),
            finished: false,
            events_max: IMPORT_LINES_MAX,
        }
    }

    /// The next event, or `None` at the end of the file.
    fn next_event(&mut self) -> Result<Option<ImportLine>> {
        loop {
            self.buffer.clear();
            let limit = IMPORT_LINE_BYTES_MAX as u64 + 2;
            let read = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buffer)
                .map_err(|e| Error::io("cannot read the import file", e))?;
            if read == 0 {
                if !self.finished {
                    self.finished = true;
                    if self.events % BATCH_CHUNK_ENTRIES != 0 {
                        let chunk = std::mem::take(&mut self.chunk);
                        self.digests.push(chunk.finalize().into());
                    }
                }
                return Ok(None);
            }
            self.line += 1;
            let line = self.line;
            let mut raw = &self.buffer[..];
            if line == 1 {
                raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
            }
            raw = raw.strip_suffix(b"\n").unwrap_or(raw);
            raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > IMPORT_LINE_BYTES_MAX {
                return Err(line_error(
                    line,
                    format!("the line is longer than the limit of {IMPORT_LINE_BYTES_MAX} bytes"),
                ));
            }
            if raw.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            if self.events == self.events_max {
                return Err(Error::input(format!(
                    "the file has more than {} events (line {line})",
                    self.events_max
                ))
                .with_hint("split the file and import the parts one after the other"));
            }
            let parsed = parse_line(line, raw)?;
            self.chunk.update((line as u64).to_be_bytes());
            self.chunk.update((raw.len() as u64).to_be_bytes());
            self.chunk.update(raw);
            self.events += 1;
            if self.events % BATCH_CHUNK_ENTRIES == 0 {
                let chunk = std::mem::take(&mut self.chunk);
                self.digests.push(chunk.finalize().into());
            }
            return Ok(Some(parsed));
        }
    }
}

/// What the first reading of an import file found: every line parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Events in the file.
    pub events: usize,
    /// The entries its reversals name.
    reversal_targets: ReversalTargets,
    /// The SHA-256 of each chunk of [`BATCH_CHUNK_ENTRIES`] events as read.
    digests: Vec<[u8; 32]>,
}

/// Read and parse every line of an import file, keeping nothing but what
/// the check needs (the entries its reversals name) and a digest of each
/// chunk, against which the file is read again.
/// `progress(read)` is called every [`BATCH_CHUNK_ENTRIES`] events.
pub fn scan(reader: impl BufRead, progress: &mut dyn FnMut(u64)) -> Result<Scanned> {
    let mut events = EventReader::new(reader);
    let mut reversal_targets = ReversalTargets::default();
    while let Some(line) = events.next_event()? {
        if let Event::Reversal(r) = &line.event {
            match &line.reverses {
                Some(key) => reversal_targets.keys.insert(key.clone()),
                None => reversal_targets.seqs.insert(r.seq),
            };
        }
        if events.events % BATCH_CHUNK_ENTRIES == 0 {
            progress(events.events as u64);
        }
    }
    if events.events == 0 {
        return Err(Error::input("the file holds no events")
            .with_hint("write one event per line (schema/IMPORT.md)"));
    }
    Ok(Scanned {
        events: events.events,
        reversal_targets,
        digests: events.digests,
    })
}

/// [`scan`] the import file at `path`.
pub fn scan_file(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<Scanned> {
    scan(open(path)?, progress)
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Events in the file.
    pub events: usize,
    /// Entries appended by this run.
    pub appended: usize,
    /// Events already recorded under their idempotency key (by an earlier
    /// run, or an earlier line with the same key and event).
    pub already_recorded: usize,
    /// The first and last entry this run appended.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

fn changed(path: &Path) -> Error {
    Error::input(format!(
        "the import file {} changed while it was imported",
        path.display()
    ))
    .with_hint("write the file whole before importing it, then run the import again")
}

fn open(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let context = || format!("cannot read the import file {}", path.display());
    let file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    // A pipe (`/dev/stdin`, `<(...)`) cannot be read three times.
    if !file
        .metadata()
        .map_err(|e| Error::io(context(), e))?
        .is_file()
    {
        return Err(Error::input(format!(
            "the import file {} is not a regular file (an import reads its file three times)",
            path.display()
        ))
        .with_hint("save the events to a file and import that"));
    }
    Ok(std::io::BufReader::with_capacity(1 << 16, file))
}

/// Check every event of the file at `path`, which [`scan_file`] read as
/// `scanned`, as an import signed by `signers` would, and record nothing
/// (the file's second reading, compared with the first). `Ok` says what
/// the import would do: `appended` counts the events it would append, and
/// `first_seq` and `last_seq` are the entries they would become if no
/// other writer appends first. `progress(stage, done, total)` is called
/// with `"checking"`.
pub fn check(
    ledger: &mut Ledger,
    path: &Path,
    scanned: &Scanned,
    signers: &[&SigningKey],
    now_unix_ms: i64,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Imported> {
    let checked = check_events(ledger, path, scanned, signers, now_unix_ms, progress)?;
    let last = checked.first_seq + checked.new as u64;
    Ok(Imported {
        events: scanned.events,
        appended: checked.new,
        already_recorded: checked.already_recorded,
        first_seq: (checked.new > 0).then_some(checked.first_seq),
        last_seq: (checked.new > 0).then(|| last - 1),
    })
}

/// [`check`], giving what [`Ledger::check_batch`] found.
fn check_events(
    ledger: &mut Ledger,
    path: &Path,
    scanned: &Scanned,
    signers: &[&SigningKey],
    now_unix_ms: i64,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<BatchChecked> {
    let total = scanned.events as u64;
    let mut reader = EventReader::new(open(path)?);
    let mut failed = None;
    let mut requests = std::iter::from_fn(|| match reader.next_event() {
        Ok(Some(l)) => Some(l.into_request()),
        Ok(None) => None,
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    let checked = ledger.check_batch(
        &mut requests,
        &scanned.reversal_targets,
        signers,
        now_unix_ms,
        &mut |done| progress("checking", done as u64, total),
    )?;
    let checked = match checked {
        Ok(checked) => checked,
        Err((_, e)) => {
            // The batch stops at the event refused: the last line read.
            let line = reader.line;
            let e = e.map_message(|m| format!("line {line}: {m}; nothing was recorded"));
            return Err(match e.hint() {
                Some(_) => e,
                None => e.with_hint("fix the line and run the import again"),
            });
        }
    };
    if let Some(e) = failed {
        return Err(e);
    }
    if reader.digests != scanned.digests {
        return Err(changed(path));
    }
    progress("checking", total, total);
    Ok(checked)
}

/// Import the file at `path`, which [`scan_file`] read as `scanned`,
/// signed by `signers`: [`check`] every event (nothing is written unless
/// all pass), then append them through the batch path a chunk at a time,
/// each chunk read again and compared with its digest from the first
/// reading (a file that changed in between is refused). `progress(stage,
/// done, total)` is called with `"checking"`, then `"appending"`, as the
/// import goes.
pub fn import(
    ledger: &mut Ledger,
    path: &Path,
    scanned: &Scanned,
    signers: &[&SigningKey],
    now_unix_ms: i64,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Imported> {
    let checked = check_events(ledger, path, scanned, signers, now_unix_ms, progress)?;
    let total = scanned.events as u64;
    let names_own_entries = scanned
        .reversal_targets
        .seqs
        .iter()
        .any(|seq| *seq >= checked.first_seq);

    // Third reading: append, a chunk at a time, each chunk first compared
    // with its digest from the first reading.
    let mut done = Imported {
        events: scanned.events,
        appended: 0,
        already_recorded: 0,
        first_seq: None,
        last_seq: None,
    };
    let mut reader = EventReader::new(open(path)?);
    progress("appending", 0, total);
    for (index, digest) in scanned.digests.iter().enumerate() {
        let mut chunk = Vec::with_capacity(BATCH_CHUNK_ENTRIES);
        let mut lines = (0, 0);
        while chunk.len() < BATCH_CHUNK_ENTRIES {
            let Some(l) = reader.next_event()? else { break };
            if chunk.is_empty() {
                lines.0 = l.line;
            }
            lines.1 = l.line;
            chunk.push(l.into_request());
        }
        // The last chunk must end the file (it did when it was checked).
        let grew = index + 1 == scanned.digests.len() && reader.next_event()?.is_some();
        if grew || reader.digests.last() != Some(digest) {
            return Err(changed(path).map_message(|m| {
                format!("{m} (after its check: the events before line {} are recorded, none from it on)", lines.0)
            }));
        }
        // A reversal that names an entry of the file names it by the
        // position the check gave it: then no other writer may move them.
        let next_seq = names_own_entries.then(|| checked.first_seq + done.appended as u64);
        let outcomes = match ledger.append_batch_at(chunk, signers, now_unix_ms, next_seq) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                // What the batch committed before it stopped is recorded;
                // the state is the store's again.
                let head = match ledger.state().last_seq {
                    Some(seq) => format!("the ledger's last entry is now {seq}"),
                    None => "the ledger is empty".into(),
                };
                let hint = if names_own_entries && e.kind() == ErrorKind::Conflict {
                    "the file's reversals of its own entries name numbers that have moved: correct them, then run the import again (the lines already recorded are skipped by their idempotency keys)"
                } else {
                    "run the same import again: the lines already recorded are skipped by their idempotency keys"
                };
                return Err(e
                    .map_message(|m| {
                        format!(
                            "the import stopped in lines {} to {}, after every event had passed its check ({head}): {m}",
                            lines.0, lines.1
                        )
                    })
                    .with_hint(hint));
            }
        };
        for outcome in outcomes {
            match outcome {
                Appended::New { seq, .. } => {
                    done.appended += 1;
                    done.first_seq.get_or_insert(seq);
                    done.last_seq = Some(seq);
                }
                Appended::AlreadyRecorded { .. } => done.already_recorded += 1,
            }
        }
        progress(
            "appending",
            (done.appended + done.already_recorded) as u64,
            total,
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTEST: &str = r#"{"kind":"attest","event":{"file_name":"a.pdf","sha256":"00","size":1,"note":"n"},"idempotency_key":"k"}"#;

    fn read_all(mut reader: EventReader<&[u8]>) -> Result<Vec<ImportLine>> {
        let mut lines = Vec::new();
        while let Some(line) = reader.next_event()? {
            lines.push(line);
        }
        Ok(lines)
    }

    #[test]
    fn lines_are_numbered_as_written_and_a_bom_crlf_and_blank_lines_are_allowed() {
        let text = format!("\u{feff}\r\n{ATTEST}\r\n\n  \n{ATTEST}");
        let lines = read_all(EventReader::new(text.as_bytes())).unwrap();
        assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(lines[0].idempotency_key, "k");
        assert!(matches!(lines[0].event, Event::Attest(_)));
        // A byte order mark anywhere but at the start is not allowed.
        let text = format!("{ATTEST}\n\u{feff}{ATTEST}");
        let e = read_all(EventReader::new(text.as_bytes())).unwrap_err();
        assert!(e.message().starts_with("line 2: "), "{}", e.message());
    }

    #[test]
    fn more_events_than_the_limit_are_refused() {
        let text = format!("{ATTEST}\n\n").repeat(4);
        let mut reader = EventReader::new(text.as_bytes());
        reader.events_max = 3;
        let e = read_all(reader).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Input);
        assert!(
            e.message().contains("more than 3 events (line 7)"),
            "{}",
            e.message()
        );
        let mut reader = EventReader::new(text.as_bytes());
        reader.events_max = 4;
        assert_eq!(read_all(reader).unwrap().len(), 4);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_and_one_at_the_limit_is_read() {
        let event = |note: usize| {
            format!(
                r#"{{"kind":"attest","event":{{"file_name":"a","sha256":"00","size":1,"note":"{}"}},"idempotency_key":"k"}}"#,
                "n".repeat(note)
            )
        };
        let fixed = event(0).len();
        for (note, ending) in [
            (IMPORT_LINE_BYTES_MAX - fixed + 1, "\n"),
            (IMPORT_LINE_BYTES_MAX, ""),
        ] {
            let text = format!("{ATTEST}\n{}{ending}{ATTEST}\n", event(note));
            let e = read_all(EventReader::new(text.as_bytes())).unwrap_err();
            assert!(
                e.message().starts_with("line 2: the line is longer than"),
                "{}",
                e.message()
            );
        }
        let at_limit = event(IMPORT_LINE_BYTES_MAX - fixed);
        let text = format!("{at_limit}\r\n{at_limit}");
        assert_eq!(
            read_all(EventReader::new(text.as_bytes())).unwrap().len(),
            2
        );
    }

    #[test]
    fn each_chunk_is_digested_and_a_changed_line_changes_its_digest() {
        let text = format!("{ATTEST}\n").repeat(BATCH_CHUNK_ENTRIES + 1);
        let scanned = scan(text.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(scanned.events, BATCH_CHUNK_ENTRIES + 1);
        assert_eq!(scanned.digests.len(), 2);
        let edited = text.replacen(r#""note":"n""#, r#""note":"m""#, 1);
        let other = scan(edited.as_bytes(), &mut |_| {}).unwrap();
        assert_ne!(other.digests[0], scanned.digests[0]);
        assert_eq!(other.digests[1], scanned.digests[1]);
        // A blank line moved is a change too (lines are numbered).
        let moved = format!("\n{text}");
        let other = scan(moved.as_bytes(), &mut |_| {}).unwrap();
        assert_ne!(other.digests[0], scanned.digests[0]);
    }

    proptest::proptest! {
        /// Whatever the bytes, reading them gives events or an error,
        /// never a panic; an error names a line of the input.
        #[test]
        fn any_bytes_read_to_events_or_an_error(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            line in proptest::sample::select(vec![ATTEST.as_bytes().to_vec(), b"{\"kind\":\"call\",\"event\":{},\"idempotency_key\":\"k\"}".to_vec()]),
            at in 0usize..400,
        ) {
            let mut input = bytes.clone();
            let at = at.min(input.len());
            input.splice(at..at, line.iter().copied().chain([b'\n']));
            let lines = input.split(|b| *b == b'\n').count();
            match read_all(EventReader::new(&input[..])) {
                Ok(events) => proptest::prop_assert!(events.len() <= lines),
                Err(e) => proptest::prop_assert!(
                    e.message().starts_with("line "),
                    "{}",
                    e.message()
                ),
            }
        }
    }

    #[test]
    fn a_file_with_no_event_is_refused() {
        let e = scan(&b"\n \r\n"[..], &mut |_| {}).unwrap_err();
        assert!(e.message().contains("no events"), "{}", e.message());
    }
}
