//! Verification: what an auditor runs. Streams the whole ledger once, in
//! bounded memory, and re-derives everything from the stored record bytes:
//! every derived column, sequence continuity, every hash and link, the
//! origin, recording-time order, every signature against a key enrolled and
//! not revoked at that point with a role allowed to sign that kind, and every
//! accounting rule (the postings are computed again and must equal the
//! signed ones). It stops at the first failure and names it.
//!
//! The JSON report is specified in schema/VERIFY_JSON.md.

use serde::Serialize;

use crate::entry::{self, GENESIS_PREV_HASH};
use crate::error::Result;
use crate::event::Body;
use crate::ledger::decode_row;
use crate::state::State;
use crate::store::{Store, StoredRow};

/// Version of the JSON report format.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// The first problem verify found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Sequence number of the first failing entry.
    pub seq: u64,
    /// Which check failed (a stable name, listed in schema/VERIFY_JSON.md).
    pub check: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

/// The outcome of verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub format_version: u32,
    /// "intact" or "failed".
    pub status: &'static str,
    pub origin: Option<String>,
    /// Entries checked and found good (all of them when intact).
    pub entries_verified: u64,
    /// Hash of the last good entry (the head when intact), hex.
    pub head_hash: Option<String>,
    pub signatures_verified: u64,
    pub failure: Option<Failure>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.failure.is_none()
    }
}

fn fail(seq: u64, check: &str, message: impl Into<String>) -> Failure {
    Failure {
        seq,
        check: check.to_string(),
        message: message.into(),
        expected: None,
        found: None,
    }
}

fn mismatch(seq: u64, check: &str, message: &str, expected: String, found: String) -> Failure {
    Failure {
        seq,
        check: check.to_string(),
        message: message.to_string(),
        expected: Some(expected),
        found: Some(found),
    }
}

struct Verifier<'a> {
    store: &'a Store,
    state: State,
    expected_seq: u64,
    prev_hash: [u8; 32],
    prev_recorded_at: i64,
    origin: Option<String>,
    signatures: u64,
}

impl Verifier<'_> {
    /// Check one row; Ok(Err(failure)) when the ledger is bad.
    fn check_row(&mut self, row: &StoredRow) -> Result<Result<(), Failure>> {
        let seq = self.expected_seq;
        if row.seq != seq as i64 {
            return Ok(Err(if row.seq > seq as i64 {
                mismatch(seq, "sequence", &format!("entry {seq} is missing"), seq.to_string(), row.seq.to_string())
            } else {
                mismatch(seq, "sequence", "sequence numbers are out of order", seq.to_string(), row.seq.to_string())
            }));
        }
        let (record, body) = match decode_row(row) {
            Ok(x) => x,
            Err(e) => return Ok(Err(fail(seq, "decode", e.message()))),
        };
        let c = &record.content;
        let hash = c.hash();
        let checks: [(&str, bool, String, String); 6] = [
            ("column.seq", c.seq == seq, seq.to_string(), c.seq.to_string()),
            ("column.entry_hash", row.entry_hash == hash, hex::encode(hash), hex::encode(&row.entry_hash)),
            ("column.prev_hash", row.prev_hash == c.prev_hash, hex::encode(c.prev_hash), hex::encode(&row.prev_hash)),
            (
                "column.recorded_at_unix_ms",
                row.recorded_at_unix_ms == c.recorded_at_unix_ms,
                c.recorded_at_unix_ms.to_string(),
                row.recorded_at_unix_ms.to_string(),
            ),
            ("column.kind", row.kind == c.kind, c.kind.clone(), row.kind.clone()),
            (
                "column.idempotency_key",
                row.idempotency_key == body.idempotency_key,
                format!("{:?}", body.idempotency_key),
                format!("{:?}", row.idempotency_key),
            ),
        ];
        for (check, ok, expected, found) in checks {
            if !ok {
                return Ok(Err(mismatch(
                    seq,
                    check,
                    &format!("stored column {} does not match the entry's bytes", &check[7..]),
                    expected,
                    found,
                )));
            }
        }
        if c.prev_hash != self.prev_hash {
            return Ok(Err(mismatch(
                seq,
                "link",
                "previous-entry hash does not match the entry before it",
                hex::encode(self.prev_hash),
                hex::encode(c.prev_hash),
            )));
        }
        match &self.origin {
            None => self.origin = Some(c.origin.clone()),
            Some(origin) if *origin != c.origin => {
                return Ok(Err(mismatch(seq, "origin", "origin differs from the genesis entry's", origin.clone(), c.origin.clone())))
            }
            Some(_) => {}
        }
        if c.recorded_at_unix_ms < self.prev_recorded_at {
            return Ok(Err(mismatch(
                seq,
                "recorded_at",
                "recording time goes back",
                format!(">= {}", self.prev_recorded_at),
                c.recorded_at_unix_ms.to_string(),
            )));
        }
        if let Some(key) = &body.idempotency_key {
            let first = self.store.first_seq_with_idempotency_key(key)?;
            if first != Some(row.seq) {
                return Ok(Err(mismatch(
                    seq,
                    "idempotency_key",
                    &format!("idempotency key {key:?} was already used by an earlier entry"),
                    seq.to_string(),
                    format!("{first:?}"),
                )));
            }
        }
        let signer_ids: Vec<_> = record.signatures.iter().map(|s| s.key_id).collect();
        let keys = match self.state.authorize(seq, &body.event, &signer_ids) {
            Ok(keys) => keys,
            Err(e) => return Ok(Err(fail(seq, "signer", e.message()))),
        };
        for (sig, key) in record.signatures.iter().zip(&keys) {
            if !entry::verify_signature(key, &hash, sig) {
                return Ok(Err(fail(
                    seq,
                    "signature",
                    format!("signature by key {} does not verify", hex::encode(&sig.key_id[..8])),
                )));
            }
            self.signatures += 1;
        }
        let store = self.store;
        let lookup = |s: u64| -> Result<Option<(String, Body)>> {
            match store.get(s)? {
                None => Ok(None),
                Some(row) => {
                    let (record, body) = decode_row(&row)?;
                    Ok(Some((record.content.kind, body)))
                }
            }
        };
        let prepared = match self.state.prepare(seq, &body.event, &lookup) {
            Ok(p) => p,
            Err(e) => return Ok(Err(fail(seq, "rule", e.message()))),
        };
        if prepared.postings != body.postings {
            return Ok(Err(mismatch(
                seq,
                "postings",
                "the signed postings differ from what the event books",
                serde_json::to_string(&prepared.postings).unwrap_or_default(),
                serde_json::to_string(&body.postings).unwrap_or_default(),
            )));
        }
        if seq == 0 {
            self.state.origin = Some(c.origin.clone());
        }
        self.state.apply(seq, &body.event, prepared);
        self.prev_hash = hash;
        self.prev_recorded_at = c.recorded_at_unix_ms;
        self.expected_seq += 1;
        Ok(Ok(()))
    }
}

/// Verify a whole ledger. `progress` is called with the number of entries
/// checked so far and the total (for a progress display).
pub fn verify(store: &Store, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    let total = store.count()?;
    let mut v = Verifier {
        store,
        state: State::default(),
        expected_seq: 0,
        prev_hash: GENESIS_PREV_HASH,
        prev_recorded_at: i64::MIN,
        origin: None,
        signatures: 0,
    };
    let mut failure = None;
    store.scan(0, None, |row| {
        match v.check_row(&row)? {
            Ok(()) => {
                if v.expected_seq % 4096 == 0 {
                    progress(v.expected_seq, total);
                }
                Ok(true)
            }
            Err(f) => {
                failure = Some(f);
                Ok(false)
            }
        }
    })?;
    progress(v.expected_seq, total);
    if failure.is_none() && v.expected_seq == 0 {
        failure = Some(fail(0, "genesis", "the ledger has no entries"));
    }
    let head_hash = (v.expected_seq > 0).then(|| hex::encode(v.prev_hash));
    Ok(Report {
        format_version: REPORT_FORMAT_VERSION,
        status: if failure.is_none() { "intact" } else { "failed" },
        origin: v.origin,
        entries_verified: v.expected_seq,
        head_hash,
        signatures_verified: v.signatures,
        failure,
    })
}
