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

use std::collections::BTreeMap;

use crate::checkpoint::{ledger_verifiers, open_checkpoint};
use crate::entry::{self, SignatureCheck, GENESIS_PREV_HASH};
use crate::error::Result;
use crate::event::{Body, BodyRawPostings};
use crate::ledger::decode_row;
use crate::merkle::{self, Hash};
use crate::note::{Verifier, SIG_TYPE_COSIGNATURE_V1};
use crate::state::State;
use crate::store::{Store, StoredRow, StoredSnapshot};

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
    /// RFC 9162 root over all verified entries, recomputed from the
    /// records (the stored tree was checked node by node against it).
    pub root_hash: Option<String>,
    /// Checkpoints in the ledger's history that were checked.
    pub checkpoints_verified: u64,
    /// Each enrolled witness' latest cosigned tree size in the history.
    pub witnesses: Vec<WitnessStatus>,
    /// The outcome of `--checkpoint`, when one was given.
    pub checkpoint: Option<CheckpointStatus>,
    pub failure: Option<Failure>,
}

/// A witness' latest cosignature found in the checkpoint history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WitnessStatus {
    pub name: String,
    pub latest_tree_size: u64,
    pub timestamp_unix_s: u64,
}

/// The outcome of checking the ledger against an external checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointStatus {
    pub tree_size: u64,
    /// "extends" (the ledger contains the checkpointed tree) or "failed".
    pub status: &'static str,
}

/// What to check besides the chain.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A signed checkpoint (C2SP note text) the ledger must extend.
    pub checkpoint: Option<String>,
    /// Extra keys trusted to sign checkpoints (besides the ledger's own
    /// administrator and auditor keys).
    pub trusted: Vec<Verifier>,
    /// Trust only `trusted` to sign `checkpoint`, not the keys the ledger
    /// enrolls: a bundle's keys come from the file being checked, so they
    /// cannot vouch for it.
    pub only_trusted: bool,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.failure.is_none()
    }
}

pub(crate) fn fail(seq: u64, check: &str, message: impl Into<String>) -> Failure {
    Failure {
        seq,
        check: check.to_string(),
        message: message.into(),
        expected: None,
        found: None,
    }
}

pub(crate) fn mismatch(
    seq: u64,
    check: &str,
    message: &str,
    expected: String,
    found: String,
) -> Failure {
    Failure {
        seq,
        check: check.to_string(),
        message: message.to_string(),
        expected: Some(expected),
        found: Some(found),
    }
}

struct ChainVerifier<'a> {
    store: &'a Store,
    state: State,
    expected_seq: u64,
    prev_hash: [u8; 32],
    prev_recorded_at: i64,
    origin: Option<String>,
    signatures: u64,
    tree: merkle::RightEdge,
    /// The nodes the last leaf completed (reused from entry to entry).
    completed: Vec<(u32, u64, Hash)>,
    /// The stored Merkle nodes the current step's entries complete, per
    /// level, in index order (read with one range query per level).
    stored_nodes: Vec<Vec<(u64, Hash)>>,
    /// Roots wanted at these tree sizes (checkpoints), filled in as the
    /// stream passes them.
    roots: BTreeMap<u64, Option<Hash>>,
    /// The stored state snapshot, checked when the stream passes its seq.
    snapshot: Option<StoredSnapshot>,
}

/// Whose signature a [`SignatureCheck`] is.
struct SigJob {
    seq: u64,
    key_id: entry::KeyId,
}

/// Entries per step of the pipeline: while the main thread checks the rules
/// of one step's entries in order (then reads the rows of the step after
/// next), worker threads decode the next step's rows and batch-verify the
/// previous step's signatures. Large enough to amortise thread start-up and
/// give the workers several tasks each, small enough that the four steps
/// in flight (read, being decoded, being checked, being freed) stay near
/// 30 MiB.
const ROWS_PER_STEP: usize = 2048;

/// A stored row and what a worker derived from it.
struct Decoded {
    row: StoredRow,
    /// The record and body (its postings left as bytes, compared with
    /// the postings the rules book), or why they do not decode.
    parsed: std::result::Result<(entry::Record, BodyRawPostings), String>,
    /// The content hash (zero when the row does not decode).
    hash: Hash,
    /// The Merkle leaf hash of the stored record.
    leaf: Hash,
}

fn decode(row: StoredRow) -> Decoded {
    let leaf = merkle::leaf_hash(&row.record);
    let seq = u64::try_from(row.seq).unwrap_or(u64::MAX);
    let decoded = entry::Record::decode_hashed(&row.record).and_then(|(record, hash)| {
        let body = BodyRawPostings::decode(&record.content.kind, &record.content.body)?;
        Ok((record, body, hash))
    });
    match decoded.map_err(|e| e.at_seq(seq)) {
        Ok((record, body, hash)) => Decoded {
            hash,
            parsed: Ok((record, body)),
            row,
            leaf,
        },
        Err(e) => Decoded {
            parsed: Err(e.message().to_string()),
            hash: [0; 32],
            row,
            leaf,
        },
    }
}

/// Rows one decoding task of [`parallel_step`] takes.
const DECODE_TASK_ROWS: usize = 256;

/// Signatures one batch-verification task of [`parallel_step`] takes.
const VERIFY_TASK_SIGNATURES: usize = 512;

/// Run `main` on this thread while workers (one per core but one) decode
/// `rows`, batch-verify `checks` and free `garbage`, in small tasks that
/// this thread joins in on once `main` is done, so that every core stays
/// busy whichever side has more to do. Returns the decoded rows in order,
/// the index of the first check that fails, and what `main` returned.
fn parallel_step<R>(
    rows: Vec<StoredRow>,
    checks: &[SignatureCheck],
    garbage: Vec<Decoded>,
    threads: usize,
    main: impl FnOnce() -> R,
) -> (Vec<Decoded>, Option<usize>, R) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};
    let mut row_parts: Vec<Mutex<Vec<StoredRow>>> = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        row_parts.push(Mutex::new(rows.by_ref().take(DECODE_TASK_ROWS).collect()));
    }
    let check_parts: Vec<&[SignatureCheck]> = checks.chunks(VERIFY_TASK_SIGNATURES).collect();
    let verified: Vec<OnceLock<Option<usize>>> =
        check_parts.iter().map(|_| OnceLock::new()).collect();
    let decoded: Vec<OnceLock<Vec<Decoded>>> = row_parts.iter().map(|_| OnceLock::new()).collect();
    let garbage = Mutex::new(garbage);
    // Tasks: the signature batches (the largest) first, then decoding,
    // then freeing the previous step's rows.
    let tasks = check_parts.len() + row_parts.len() + 1;
    let next = AtomicUsize::new(0);
    let run_tasks = || loop {
        let task = next.fetch_add(1, Ordering::Relaxed);
        if task >= tasks {
            return;
        }
        // A task that panics leaves its slot empty (counted as a failure
        // below); the other tasks go on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if task < check_parts.len() {
                let failed = entry::verify_signatures(check_parts[task]);
                let _ = verified[task].set(failed);
            } else if task - check_parts.len() < row_parts.len() {
                let part = task - check_parts.len();
                let rows =
                    std::mem::take(&mut *row_parts[part].lock().unwrap_or_else(|e| e.into_inner()));
                let _ = decoded[part].set(rows.into_iter().map(decode).collect());
            } else {
                drop(std::mem::take(
                    &mut *garbage.lock().unwrap_or_else(|e| e.into_inner()),
                ));
            }
        }));
    };
    let result = std::thread::scope(|scope| {
        for _ in 1..threads.max(2) {
            scope.spawn(run_tasks);
        }
        let result = main();
        run_tasks();
        result
    });
    // A batch whose task panicked counts as failing at its first check; a
    // decoding task that panicked loses its rows, which ends the stream
    // there (the sequence check reports the gap).
    let failed = verified
        .into_iter()
        .enumerate()
        .find_map(|(i, slot)| match slot.into_inner() {
            Some(None) => None,
            Some(Some(at)) => Some(i * VERIFY_TASK_SIGNATURES + at),
            None => Some(i * VERIFY_TASK_SIGNATURES),
        });
    let mut out = Vec::with_capacity(decoded.len() * DECODE_TASK_ROWS);
    for slot in decoded {
        match slot.into_inner() {
            Some(part) => out.extend(part),
            None => break,
        }
    }
    (out, failed, result)
}

fn signature_failure(job: &SigJob) -> Failure {
    fail(
        job.seq,
        "signature",
        format!(
            "signature by key {} does not verify",
            hex::encode(&job.key_id[..8])
        ),
    )
}

impl ChainVerifier<'_> {
    /// Read the stored Merkle nodes that entries `from..to` complete.
    fn fetch_nodes(&mut self, from: u64, to: u64) -> Result<()> {
        self.stored_nodes.clear();
        let mut level = 0u32;
        while level < 64 && (to >> level) > 0 {
            let nodes = self
                .store
                .merkle_nodes_in(level, from >> level, (to >> level) + 1)?;
            self.stored_nodes.push(nodes);
            level += 1;
        }
        Ok(())
    }

    fn stored_node(&self, level: u32, index: u64) -> Option<Hash> {
        let nodes = self.stored_nodes.get(level as usize)?;
        let at = nodes.binary_search_by_key(&index, |(i, _)| *i).ok()?;
        Some(nodes[at].1)
    }

    /// Check one step's rows in order, queueing their signatures; stops at
    /// the first failure and returns it.
    fn check_step(
        &mut self,
        step: &[Decoded],
        jobs: &mut Vec<SigJob>,
        checks: &mut Vec<SignatureCheck>,
    ) -> Result<Option<Failure>> {
        let from = self.expected_seq;
        self.fetch_nodes(from, from + step.len() as u64)?;
        for decoded in step {
            if let Err(f) = self.check_row(decoded, jobs, checks)? {
                return Ok(Some(f));
            }
        }
        Ok(None)
    }

    /// Check one row; Ok(Err(failure)) when the ledger is bad.
    fn check_row(
        &mut self,
        decoded: &Decoded,
        jobs: &mut Vec<SigJob>,
        signature_checks: &mut Vec<SignatureCheck>,
    ) -> Result<Result<(), Failure>> {
        let row = &decoded.row;
        let seq = self.expected_seq;
        if row.seq != seq as i64 {
            return Ok(Err(if row.seq > seq as i64 {
                mismatch(
                    seq,
                    "sequence",
                    &format!("entry {seq} is missing"),
                    seq.to_string(),
                    row.seq.to_string(),
                )
            } else {
                mismatch(
                    seq,
                    "sequence",
                    "sequence numbers are out of order",
                    seq.to_string(),
                    row.seq.to_string(),
                )
            }));
        }
        let (record, body) = match &decoded.parsed {
            Ok(x) => x,
            Err(message) => return Ok(Err(fail(seq, "decode", message.clone()))),
        };
        let c = &record.content;
        let hash = decoded.hash;
        // (check, holds, expected, found): the texts are made only for a
        // failure.
        type Texts<'t> = &'t dyn Fn() -> (String, String);
        let columns: [(&str, bool, Texts<'_>); 6] = [
            ("column.seq", c.seq == seq, &|| {
                (seq.to_string(), c.seq.to_string())
            }),
            ("column.entry_hash", row.entry_hash == hash, &|| {
                (hex::encode(hash), hex::encode(&row.entry_hash))
            }),
            ("column.prev_hash", row.prev_hash == c.prev_hash, &|| {
                (hex::encode(c.prev_hash), hex::encode(&row.prev_hash))
            }),
            (
                "column.recorded_at_unix_ms",
                row.recorded_at_unix_ms == c.recorded_at_unix_ms,
                &|| {
                    (
                        c.recorded_at_unix_ms.to_string(),
                        row.recorded_at_unix_ms.to_string(),
                    )
                },
            ),
            ("column.kind", row.kind == c.kind, &|| {
                (c.kind.clone(), row.kind.clone())
            }),
            (
                "column.idempotency_key",
                row.idempotency_key == body.idempotency_key,
                &|| {
                    (
                        format!("{:?}", body.idempotency_key),
                        format!("{:?}", row.idempotency_key),
                    )
                },
            ),
        ];
        for (check, ok, texts) in columns {
            if !ok {
                let (expected, found) = texts();
                return Ok(Err(mismatch(
                    seq,
                    check,
                    &format!(
                        "stored column {} does not match the entry's bytes",
                        &check[7..]
                    ),
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
                return Ok(Err(mismatch(
                    seq,
                    "origin",
                    "origin differs from the genesis entry's",
                    origin.clone(),
                    c.origin.clone(),
                )))
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
        let signers = match self.state.signer_records(seq, &body.event, &signer_ids) {
            Ok(records) => records,
            Err(e) => return Ok(Err(fail(seq, "signer", e.message()))),
        };
        if let Err(e) = self.state.check_policy(&body.event, &signers) {
            return Ok(Err(fail(seq, "policy", e.message())));
        }
        // Signatures are batch-verified by the workers of the next step.
        for (sig, key) in record.signatures.iter().zip(signers.iter()) {
            jobs.push(SigJob {
                seq,
                key_id: sig.key_id,
            });
            signature_checks.push(SignatureCheck::new(&key.public_key, &hash, sig));
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
        // Comparing the canonical encoding of the booked postings with the
        // signed bytes also checks that those are in canonical form.
        let booked = prepared.encode_postings();
        let signed = body.postings.clone().map(|range| &c.body[range]);
        if booked.as_deref() != signed {
            let text = |p: Option<&[u8]>| String::from_utf8_lossy(p.unwrap_or(b"[]")).into_owned();
            return Ok(Err(mismatch(
                seq,
                "postings",
                "the signed postings differ from what the event books",
                text(booked.as_deref()),
                text(signed),
            )));
        }
        self.tree.push(decoded.leaf, &mut self.completed);
        for &(level, index, node) in &self.completed {
            let stored = self.stored_node(level, index);
            if stored != Some(node) {
                return Ok(Err(mismatch(
                    seq,
                    "merkle",
                    &format!("stored Merkle node (level {level}, index {index}) does not match the records"),
                    hex::encode(node),
                    stored.map(hex::encode).unwrap_or_else(|| "missing".into()),
                )));
            }
        }
        if let Some(slot) = self.roots.get_mut(&self.tree.len()) {
            *slot = Some(self.tree.root());
        }
        if seq == 0 {
            self.state.origin = Some(c.origin.clone());
        }
        self.state.apply(seq, prepared);
        if let Some(snapshot) = self.snapshot.as_ref().filter(|s| s.seq == seq) {
            if snapshot.entry_hash != hash {
                return Ok(Err(mismatch(
                    seq,
                    "snapshot",
                    "the stored state snapshot names another entry hash",
                    hex::encode(hash),
                    hex::encode(snapshot.entry_hash),
                )));
            }
            match &snapshot.state {
                Err(damage) => {
                    return Ok(Err(fail(
                        seq,
                        "snapshot",
                        format!("the stored state snapshot is damaged: {damage}"),
                    )))
                }
                Ok(state) if !self.state.snapshot_matches(state)? => {
                    return Ok(Err(fail(
                        seq,
                        "snapshot",
                        "the stored state snapshot differs from the state the entries make",
                    )))
                }
                Ok(_) => {}
            }
        }
        self.prev_hash = hash;
        self.prev_recorded_at = c.recorded_at_unix_ms;
        self.expected_seq += 1;
        Ok(Ok(()))
    }
}

/// Verify a whole ledger. `progress` is called with the number of entries
/// checked so far and the total (for a progress display).
pub fn verify(store: &Store, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    verify_with(store, &Options::default(), progress)
}

/// Verify a whole ledger, and optionally that it extends a checkpoint.
pub fn verify_with(
    store: &Store,
    options: &Options,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report> {
    verify_with_state(store, options, progress).map(|(report, _)| report)
}

/// As [`verify_with`], and the state the verified entries make (that of
/// the whole ledger when it is intact): what a replay would rebuild.
pub(crate) fn verify_with_state(
    store: &Store,
    options: &Options,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Report, State)> {
    // One consistent view of the file, even while others append.
    let _read = store.read_transaction()?;
    let total = store.count()?;
    let history = store.checkpoints()?;
    let external = options.checkpoint.as_deref().and_then(|text| {
        let (body, _) = crate::note::parse_note(text).ok()?;
        crate::note::Checkpoint::parse_body(&body).ok()
    });
    let mut roots: BTreeMap<u64, Option<Hash>> =
        history.iter().map(|(size, _)| (*size, None)).collect();
    if let Some(cp) = &external {
        roots.insert(cp.tree_size, None);
    }
    if let Some(slot) = roots.get_mut(&0) {
        *slot = Some(merkle::empty_root());
    }
    let mut v = ChainVerifier {
        store,
        state: State::default(),
        expected_seq: 0,
        prev_hash: GENESIS_PREV_HASH,
        prev_recorded_at: i64::MIN,
        origin: None,
        signatures: 0,
        tree: merkle::RightEdge::default(),
        completed: Vec::new(),
        stored_nodes: Vec::new(),
        roots,
        snapshot: store.snapshot()?,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let read_step = |from: u64| -> Result<Vec<StoredRow>> {
        let mut rows = Vec::with_capacity(ROWS_PER_STEP);
        store.scan(from, Some(ROWS_PER_STEP as u64), |row| {
            rows.push(row);
            Ok(true)
        })?;
        Ok(rows)
    };
    let next_from = |rows: &[StoredRow]| rows.last().map_or(u64::MAX, |r| r.seq as u64 + 1);
    // The pipeline: step k's rules are checked on this thread (which then
    // reads step k + 2's rows) while the workers decode step k + 1 and
    // batch-verify step k - 1's signatures.
    let first = read_step(0)?;
    let mut from = next_from(&first);
    let mut next_rows = if first.len() == ROWS_PER_STEP {
        read_step(from)?
    } else {
        Vec::new()
    };
    from = next_from(&next_rows).max(from);
    let (mut current, _, ()) = parallel_step(first, &[], Vec::new(), threads, || ());
    let (mut prev_jobs, mut prev_checks): (Vec<SigJob>, Vec<SignatureCheck>) =
        (Vec::new(), Vec::new());
    let mut failure: Option<Failure> = None;
    let mut garbage = Vec::new();
    while !current.is_empty() {
        let rows = std::mem::take(&mut next_rows);
        let more = rows.len() == ROWS_PER_STEP;
        let (mut jobs, mut checks) = (Vec::new(), Vec::new());
        let (decoded, bad_signature, (checked, read)) =
            parallel_step(rows, &prev_checks, garbage, threads, || {
                let checked = v.check_step(&current, &mut jobs, &mut checks);
                let read = match &checked {
                    Ok(None) if more => read_step(from),
                    _ => Ok(Vec::new()),
                };
                (checked, read)
            });
        next_rows = read?;
        from = next_from(&next_rows).max(from);
        let checked = checked?;
        if let Some(i) = bad_signature {
            // Step k - 1 comes before anything step k found.
            let job = &prev_jobs[i];
            v.signatures += prev_jobs.iter().filter(|j| j.seq < job.seq).count() as u64;
            failure = Some(signature_failure(job));
            break;
        }
        v.signatures += prev_jobs.len() as u64;
        progress(v.expected_seq, total);
        if let Some(f) = checked {
            // This step's signatures up to the failing entry; a bad one
            // comes first (signatures are checked before the rules).
            let (_, bad, ()) = parallel_step(Vec::new(), &checks, Vec::new(), threads, || ());
            failure = Some(match bad.map(|i| &jobs[i]) {
                Some(job) if job.seq <= f.seq => {
                    v.signatures += jobs.iter().filter(|j| j.seq < job.seq).count() as u64;
                    signature_failure(job)
                }
                _ => {
                    v.signatures += jobs.len() as u64;
                    f
                }
            });
            prev_jobs.clear();
            prev_checks.clear();
            break;
        }
        garbage = std::mem::replace(&mut current, decoded);
        prev_jobs = jobs;
        prev_checks = checks;
    }
    // The last step's signatures.
    if !prev_checks.is_empty() {
        let (_, bad, ()) = parallel_step(Vec::new(), &prev_checks, Vec::new(), threads, || ());
        match bad.map(|i| &prev_jobs[i]) {
            Some(job) => {
                v.signatures += prev_jobs.iter().filter(|j| j.seq < job.seq).count() as u64;
                failure = Some(signature_failure(job));
            }
            None => v.signatures += prev_jobs.len() as u64,
        }
    }
    progress(v.expected_seq, total);
    let good_entries = failure
        .as_ref()
        .map_or(v.expected_seq, |f| f.seq.min(v.expected_seq));
    if failure.is_none() && v.expected_seq == 0 {
        failure = Some(fail(0, "genesis", "the ledger has no entries"));
    }
    if let (None, Some(snapshot)) = (&failure, &v.snapshot) {
        if snapshot.seq >= v.expected_seq {
            failure = Some(mismatch(
                snapshot.seq,
                "snapshot",
                "the stored state snapshot is of an entry beyond the ledger's last",
                format!("at most {}", v.expected_seq.saturating_sub(1)),
                snapshot.seq.to_string(),
            ));
        }
    }
    if failure.is_none() {
        let leaves = store.merkle_leaf_count()?;
        if leaves != v.expected_seq {
            failure = Some(mismatch(
                v.expected_seq.min(leaves),
                "merkle",
                "the stored Merkle tree does not have one leaf per entry",
                v.expected_seq.to_string(),
                leaves.to_string(),
            ));
        }
    }
    if failure.is_none() {
        // A tree of n leaves has exactly sum over levels of floor(n / 2^level)
        // perfect nodes; any other count means nodes beyond the entries.
        let n = v.expected_seq;
        let expected_nodes: u64 = (0..64).map(|level| n >> level).sum();
        let stored_nodes = store.merkle_node_count()?;
        if stored_nodes != expected_nodes {
            failure = Some(mismatch(
                n.saturating_sub(1),
                "merkle",
                "the stored Merkle tree holds a different number of nodes than the entries make",
                expected_nodes.to_string(),
                stored_nodes.to_string(),
            ));
        }
    }
    let mut checkpoints_verified = 0;
    let mut witnesses: BTreeMap<String, WitnessStatus> = BTreeMap::new();
    if failure.is_none() {
        let verifiers = ledger_verifiers(&v.state);
        for (size, text) in &history {
            let seq = size.saturating_sub(1);
            let (cp, verified) = match open_checkpoint(text, &verifiers) {
                Ok(x) => x,
                Err(e) => {
                    failure = Some(fail(
                        seq,
                        "checkpoint_history",
                        format!("a recorded checkpoint does not verify: {}", e.message()),
                    ));
                    break;
                }
            };
            let expected = v.roots.get(size).copied().flatten();
            if cp.tree_size != *size || Some(cp.root_hash) != expected {
                failure = Some(fail(
                    seq,
                    "checkpoint_history",
                    format!(
                        "the recorded checkpoint of size {size} does not match the ledger's tree"
                    ),
                ));
                break;
            }
            checkpoints_verified += 1;
            for s in verified
                .verified
                .iter()
                .filter(|s| s.sig_type == SIG_TYPE_COSIGNATURE_V1)
            {
                let ts = s.timestamp.unwrap_or_default();
                let entry = witnesses.entry(s.name.clone()).or_insert(WitnessStatus {
                    name: s.name.clone(),
                    latest_tree_size: 0,
                    timestamp_unix_s: 0,
                });
                if (cp.tree_size, ts) > (entry.latest_tree_size, entry.timestamp_unix_s) {
                    entry.latest_tree_size = cp.tree_size;
                    entry.timestamp_unix_s = ts;
                }
            }
        }
    }
    let mut checkpoint = None;
    if let (None, Some(text)) = (&failure, &options.checkpoint) {
        let mut verifiers = if options.only_trusted {
            Vec::new()
        } else {
            ledger_verifiers(&v.state)
        };
        verifiers.extend(options.trusted.iter().cloned());
        let (status, problem) = match open_checkpoint(text, &verifiers) {
            Err(e) => (
                0,
                Some(fail(
                    v.expected_seq,
                    "checkpoint",
                    format!("{} (a checkpoint signed by a key this ledger does not know may come from a newer or a different ledger)", e.message()),
                )),
            ),
            Ok((cp, _)) => {
                let origin = v.origin.clone().unwrap_or_default();
                if cp.origin != origin {
                    (cp.tree_size, Some(mismatch(0, "checkpoint", "the checkpoint is for another ledger", origin, cp.origin.clone())))
                } else if cp.tree_size > v.expected_seq {
                    (
                        cp.tree_size,
                        Some(mismatch(
                            v.expected_seq,
                            "checkpoint",
                            "the ledger is shorter than the signed checkpoint: entries were cut off the end, or this is an older backup",
                            format!("at least {} entries", cp.tree_size),
                            format!("{} entries", v.expected_seq),
                        )),
                    )
                } else if v.roots.get(&cp.tree_size).copied().flatten() != Some(cp.root_hash) {
                    (
                        cp.tree_size,
                        Some(mismatch(
                            cp.tree_size.saturating_sub(1),
                            "checkpoint",
                            "the first entries of the ledger do not have the checkpoint's root: history before the checkpoint was rewritten, or this is a fork",
                            hex::encode(cp.root_hash),
                            v.roots.get(&cp.tree_size).copied().flatten().map(hex::encode).unwrap_or_default(),
                        )),
                    )
                } else {
                    (cp.tree_size, None)
                }
            }
        };
        checkpoint = Some(CheckpointStatus {
            tree_size: status,
            status: if problem.is_none() {
                "extends"
            } else {
                "failed"
            },
        });
        failure = problem;
    }
    // The last good entry's stored hash (verified equal to its content's).
    let head_hash = match good_entries.checked_sub(1) {
        Some(seq) => store.get(seq)?.map(|row| hex::encode(row.entry_hash)),
        None => None,
    };
    let state = std::mem::take(&mut v.state);
    let report = Report {
        format_version: REPORT_FORMAT_VERSION,
        status: if failure.is_none() {
            "intact"
        } else {
            "failed"
        },
        origin: v.origin,
        entries_verified: good_entries,
        head_hash,
        signatures_verified: v.signatures,
        root_hash: Some(hex::encode(v.tree.root())),
        checkpoints_verified,
        witnesses: witnesses.into_values().collect(),
        checkpoint,
        failure,
    };
    Ok((report, state))
}
