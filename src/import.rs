//! Importing events in bulk: a JSON Lines file (schema/IMPORT.md), one
//! event per line, appended through the batch path
//! ([`Ledger::append_batch`]) all or nothing as far as the input goes:
//! every line is parsed, and every event checked against the ledger
//! ([`Ledger::check_batch`]), before the first entry is written. A line
//! that does not parse or an event the rules refuse stops the import with
//! its line number and leaves the ledger unchanged.
//!
//! Every line carries an idempotency key, so that running the same file
//! again appends nothing twice: should the append itself stop (a full
//! disk, another writer in between), the entries before are recorded and
//! the same import, run again, records the rest.

use ed25519_dalek::SigningKey;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::event::{check_idempotency_key, decode_event, Event};
use crate::ledger::{Appended, Ledger, BATCH_CHUNK_ENTRIES};

/// Most lines one import reads: its events, and the contents of the
/// entries its reversals name, are held in memory while it runs (about a
/// kilobyte per event). Split a larger file; with idempotency keys the
/// parts can be imported in any number of runs.
pub const IMPORT_LINES_MAX: usize = 100_000;

/// Longest line, in bytes (an event's JSON; the largest body an entry
/// may carry is 4 MiB, but no event written by hand comes near this).
pub const IMPORT_LINE_BYTES_MAX: usize = 1024 * 1024;

/// Largest import file, in bytes: it is read whole, since every line is
/// parsed before anything is written.
pub const IMPORT_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// One event to import, and the line it came from (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    pub line: usize,
    pub event: Event,
    pub idempotency_key: String,
}

/// A line as written: exactly these three members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn<'a> {
    kind: String,
    #[serde(borrow)]
    event: &'a serde_json::value::RawValue,
    idempotency_key: String,
}

fn line_error(line: usize, message: impl std::fmt::Display) -> Error {
    Error::input(format!("line {line}: {message}; nothing was recorded"))
        .with_hint("fix the line and run the import again (schema/IMPORT.md)")
}

/// Parse a whole import file. Empty lines, a `\r` before each `\n` and a
/// UTF-8 byte order mark at the start (as spreadsheet tools write) are
/// allowed; anything else that is not an import line is an error naming
/// its line.
pub fn parse(bytes: &[u8]) -> Result<Vec<ImportLine>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines = Vec::new();
    for (at, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = at + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if raw.len() > IMPORT_LINE_BYTES_MAX {
            return Err(line_error(
                line,
                format!(
                    "the line is {} bytes, more than the limit of {IMPORT_LINE_BYTES_MAX}",
                    raw.len()
                ),
            ));
        }
        if lines.len() == IMPORT_LINES_MAX {
            return Err(Error::input(format!(
                "the file has more than {IMPORT_LINES_MAX} events (line {line})"
            ))
            .with_hint("split the file and import the parts one after the other"));
        }
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
        let event =
            decode_event(&parsed.kind, parsed.event).map_err(|e| line_error(line, e.message()))?;
        check_idempotency_key(&parsed.idempotency_key)
            .map_err(|e| line_error(line, e.message()))?;
        lines.push(ImportLine {
            line,
            event,
            idempotency_key: parsed.idempotency_key,
        });
    }
    if lines.is_empty() {
        return Err(Error::input("the file holds no events")
            .with_hint("write one event per line (schema/IMPORT.md)"));
    }
    Ok(lines)
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

/// Import `lines`, signed by `signers`: check every event first (nothing
/// is written unless all pass), then append them through the batch path,
/// a chunk at a time. `progress(stage, done, total)` is called with
/// `"checking"`, then `"appending"`, as the import goes.
pub fn import(
    ledger: &mut Ledger,
    lines: Vec<ImportLine>,
    signers: &[&SigningKey],
    now_unix_ms: i64,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Imported> {
    let total = lines.len() as u64;
    let line_numbers: Vec<usize> = lines.iter().map(|l| l.line).collect();
    let requests: Vec<(Event, Option<String>)> = lines
        .into_iter()
        .map(|l| (l.event, Some(l.idempotency_key)))
        .collect();
    let checked = ledger.check_batch(&requests, signers, now_unix_ms, &mut |done| {
        progress("checking", done as u64, total)
    })?;
    if let Err((index, e)) = checked {
        let line = line_numbers[index];
        let e = e.map_message(|m| format!("line {line}: {m}; nothing was recorded"));
        return Err(match e.hint() {
            Some(_) => e,
            None => e.with_hint("fix the line and run the import again"),
        });
    }
    progress("checking", total, total);
    let mut done = Imported {
        events: requests.len(),
        appended: 0,
        already_recorded: 0,
        first_seq: None,
        last_seq: None,
    };
    let mut requests = requests.into_iter().peekable();
    // The index of the next chunk's first event.
    let mut from = 0;
    progress("appending", 0, total);
    while requests.peek().is_some() {
        let chunk: Vec<_> = requests.by_ref().take(BATCH_CHUNK_ENTRIES).collect();
        let to = from + chunk.len() - 1;
        let outcomes = match ledger.append_batch(chunk, signers, now_unix_ms) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                // What the batch committed before it stopped is recorded;
                // the state is the store's again.
                let head = match ledger.state().last_seq {
                    Some(seq) => format!("the ledger's last entry is now {seq}"),
                    None => "the ledger is empty".into(),
                };
                return Err(e
                    .map_message(|m| {
                        format!(
                            "the import stopped in lines {} to {}, after every event had passed its check ({head}): {m}",
                            line_numbers[from], line_numbers[to]
                        )
                    })
                    .with_hint("run the same import again: the lines already recorded are skipped by their idempotency keys"));
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
        from = to + 1;
        progress("appending", from as u64, total);
    }
    Ok(done)
}

/// Read an import file whole.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let context = || format!("cannot read the import file {}", path.display());
    let file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let size = file.metadata().map_err(|e| Error::io(context(), e))?.len();
    if size > IMPORT_FILE_BYTES_MAX {
        return Err(Error::input(format!(
            "the import file {} is {size} bytes, more than the limit of {IMPORT_FILE_BYTES_MAX}",
            path.display()
        ))
        .with_hint("split the file and import the parts one after the other"));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, IMPORT_FILE_BYTES_MAX + 1),
        &mut bytes,
    )
    .map_err(|e| Error::io(context(), e))?;
    if bytes.len() as u64 > IMPORT_FILE_BYTES_MAX {
        return Err(Error::input(format!(
            "the import file {} grew past the limit of {IMPORT_FILE_BYTES_MAX} bytes while it was read",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTEST: &str = r#"{"kind":"attest","event":{"file_name":"a.pdf","sha256":"00","size":1,"note":"n"},"idempotency_key":"k"}"#;

    #[test]
    fn lines_are_numbered_as_written_and_a_bom_crlf_and_blank_lines_are_allowed() {
        let text = format!("\u{feff}\r\n{ATTEST}\r\n\n  \n{ATTEST}");
        let lines = parse(text.as_bytes()).unwrap();
        assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(lines[0].idempotency_key, "k");
        assert!(matches!(lines[0].event, Event::Attest(_)));
    }

    #[test]
    fn more_lines_than_the_limit_are_refused_before_any_is_kept() {
        let text = format!("{ATTEST}\n").repeat(IMPORT_LINES_MAX + 1);
        let e = parse(text.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Input);
        assert!(
            e.message()
                .contains(&format!("line {}", IMPORT_LINES_MAX + 1)),
            "{}",
            e.message()
        );
        let text = format!("{ATTEST}\n").repeat(IMPORT_LINES_MAX);
        assert_eq!(parse(text.as_bytes()).unwrap().len(), IMPORT_LINES_MAX);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused() {
        let long = format!(
            r#"{{"kind":"attest","event":{{"file_name":"a","sha256":"00","size":1,"note":"{}"}},"idempotency_key":"k"}}"#,
            "n".repeat(IMPORT_LINE_BYTES_MAX)
        );
        let e = parse(long.as_bytes()).unwrap_err();
        assert!(
            e.message().starts_with("line 1: the line is"),
            "{}",
            e.message()
        );
    }
}
