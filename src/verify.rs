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
use crate::entry::{self, GENESIS_PREV_HASH};
use crate::error::Result;
use crate::event::Body;
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
}

/// The right edge of the Merkle tree as it is rebuilt while streaming:
/// O(log n) memory.
#[derive(Default)]
struct RightEdge {
    nodes: Vec<(u32, Hash)>,
    leaves: u64,
}

impl RightEdge {
    /// Add a leaf; returns the perfect nodes it completes.
    fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut out = vec![(0, self.leaves, leaf)];
        let (mut level, mut index, mut node) = (0u32, self.leaves, leaf);
        while index & 1 == 1 {
            let Some((_, left)) = self.nodes.pop() else {
                break;
            };
            node = merkle::node_hash(&left, &node);
            level += 1;
            index >>= 1;
            out.push((level, index, node));
        }
        self.nodes.push((level, node));
        self.leaves += 1;
        out
    }

    fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        match iter.next() {
            None => merkle::empty_root(),
            Some((_, last)) => iter.fold(*last, |acc, (_, left)| merkle::node_hash(left, &acc)),
        }
    }
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

struct ChainVerifier<'a> {
    store: &'a Store,
    state: State,
    expected_seq: u64,
    prev_hash: [u8; 32],
    prev_recorded_at: i64,
    origin: Option<String>,
    signatures: u64,
    tree: RightEdge,
    /// Signatures waiting for the next parallel check.
    pending: Vec<SigJob>,
    /// Hashes of the entries checked since the last flush, from `chunk_base`.
    chunk_hashes: Vec<Hash>,
    chunk_base: u64,
    /// Hash of entry `chunk_base - 1`.
    flushed_hash: Option<Hash>,
    /// Roots wanted at these tree sizes (checkpoints), filled in as the
    /// stream passes them.
    roots: BTreeMap<u64, Option<Hash>>,
    /// The stored state snapshot, checked when the stream passes its seq.
    snapshot: Option<StoredSnapshot>,
}

/// One signature to check.
struct SigJob {
    seq: u64,
    key: ed25519_dalek::VerifyingKey,
    hash: Hash,
    signature: entry::EntrySignature,
}

/// Signatures checked per parallel batch: enough to keep every core busy,
/// few enough that the pending jobs stay well under a megabyte.
const SIGNATURE_BATCH: usize = 4096;

/// Check signatures on every core (each strictly, one by one, so that the
/// accepted set is exactly that of schema/FORMAT.md section 2). Returns the
/// first failing job.
fn check_signatures(jobs: &[SigJob]) -> Option<&SigJob> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = jobs.len().div_ceil(threads).max(1);
    let failures: Vec<Option<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(per_thread)
            .enumerate()
            .map(|(part, chunk)| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .position(|j| !entry::verify_signature(&j.key, &j.hash, &j.signature))
                        .map(|i| part * per_thread + i)
                })
            })
            .collect();
        // A thread that panicked counts as a failure at its first job.
        handles
            .into_iter()
            .enumerate()
            .map(|(part, h)| h.join().unwrap_or(Some(part * per_thread)))
            .collect()
    });
    failures.into_iter().flatten().min().map(|i| &jobs[i])
}

impl ChainVerifier<'_> {
    /// Check the pending signatures. On success the chunk is done; on
    /// failure, returns it.
    fn flush(&mut self) -> Option<Failure> {
        let failed = check_signatures(&self.pending).map(|j| {
            fail(
                j.seq,
                "signature",
                format!(
                    "signature by key {} does not verify",
                    hex::encode(&j.signature.key_id[..8])
                ),
            )
        });
        match &failed {
            None => {
                self.signatures += self.pending.len() as u64;
                self.flushed_hash = self.chunk_hashes.last().copied().or(self.flushed_hash);
                self.chunk_base = self.expected_seq;
                self.chunk_hashes.clear();
            }
            Some(f) => {
                self.signatures += self.pending.iter().filter(|j| j.seq < f.seq).count() as u64;
            }
        }
        self.pending.clear();
        failed
    }

    /// The hash of the last good entry before `seq`.
    fn hash_before(&self, seq: u64) -> Option<Hash> {
        if seq == 0 {
            return None;
        }
        if seq > self.chunk_base {
            self.chunk_hashes
                .get((seq - 1 - self.chunk_base) as usize)
                .copied()
        } else {
            self.flushed_hash
        }
    }

    /// Check one row; Ok(Err(failure)) when the ledger is bad.
    fn check_row(&mut self, row: &StoredRow) -> Result<Result<(), Failure>> {
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
        let (record, body) = match decode_row(row) {
            Ok(x) => x,
            Err(e) => return Ok(Err(fail(seq, "decode", e.message()))),
        };
        let c = &record.content;
        let hash = c.hash();
        let checks: [(&str, bool, String, String); 6] = [
            (
                "column.seq",
                c.seq == seq,
                seq.to_string(),
                c.seq.to_string(),
            ),
            (
                "column.entry_hash",
                row.entry_hash == hash,
                hex::encode(hash),
                hex::encode(&row.entry_hash),
            ),
            (
                "column.prev_hash",
                row.prev_hash == c.prev_hash,
                hex::encode(c.prev_hash),
                hex::encode(&row.prev_hash),
            ),
            (
                "column.recorded_at_unix_ms",
                row.recorded_at_unix_ms == c.recorded_at_unix_ms,
                c.recorded_at_unix_ms.to_string(),
                row.recorded_at_unix_ms.to_string(),
            ),
            (
                "column.kind",
                row.kind == c.kind,
                c.kind.clone(),
                row.kind.clone(),
            ),
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
        // Signatures are checked in parallel batches (see `flush`).
        for (sig, key) in record.signatures.iter().zip(signers.iter()) {
            self.pending.push(SigJob {
                seq,
                key: key.public_key,
                hash,
                signature: sig.clone(),
            });
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
        for (level, index, node) in self.tree.push(merkle::leaf_hash(&row.record)) {
            let stored = self.store.merkle_node(level, index)?;
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
        if let Some(slot) = self.roots.get_mut(&self.tree.leaves) {
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
            // A snapshot of an older format version is never read: not compared.
            if !crate::state::is_older_format_snapshot(&snapshot.state)
                && !self.state.snapshot_matches(&snapshot.state)?
            {
                return Ok(Err(fail(
                    seq,
                    "snapshot",
                    "the stored state snapshot differs from the state the entries make",
                )));
            }
        }
        self.chunk_hashes.push(hash);
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
        tree: RightEdge::default(),
        roots,
        pending: Vec::new(),
        chunk_hashes: Vec::new(),
        chunk_base: 0,
        flushed_hash: None,
        snapshot: store.snapshot()?,
    };
    let mut failure: Option<Failure> = None;
    store.scan(0, None, |row| match v.check_row(&row)? {
        Ok(()) => {
            if v.pending.len() >= SIGNATURE_BATCH {
                if let Some(f) = v.flush() {
                    failure = Some(f);
                    return Ok(false);
                }
                progress(v.expected_seq, total);
            }
            Ok(true)
        }
        Err(f) => {
            failure = Some(f);
            Ok(false)
        }
    })?;
    // The last signatures; a bad one before a later failure comes first.
    if let Some(f) = v.flush() {
        if failure.as_ref().is_none_or(|g| f.seq <= g.seq) {
            failure = Some(f);
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
        let mut verifiers = ledger_verifiers(&v.state);
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
    let head_hash = v.hash_before(good_entries).map(hex::encode);
    Ok(Report {
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
    })
}
