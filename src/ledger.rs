//! The ledger: a store plus the state at its head, and the append path.
//!
//! Append is one IMMEDIATE transaction: read the head, catch the in-memory
//! state up with any entries other processes appended, check the idempotency
//! key, let [`State::prepare`] check the event and compute its postings,
//! check the signers, hash, sign, decode and verify the record once more
//! (check twice), insert, commit, and only then advance the state.

use std::path::Path;

use base64::Engine;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::entry::{
    self, key_id, Content, EntrySignature, Record, SignatureCheck, GENESIS_PREV_HASH,
};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Body, Event, Genesis, KeyEnroll};
use crate::merkle::{self, MerkleError, NodeSource};
use crate::state::{Prepared, State};
use crate::store::{AppendTx, Head, NewRow, RowWriter, Store, StoredRow};

/// Entries between two state snapshots: the snapshot is replaced after
/// every entry whose `seq + 1` is a multiple of this. 1024 bounds what an
/// open replays to at most 1023 entries (about 30 ms at the ~30 µs an entry
/// takes to decode, prepare and apply), while encoding and writing a small
/// state once per 1024 entries adds well under 1% to the append work.
/// (A batch chunk of [`BATCH_CHUNK_ENTRIES`] encodes the state once, after
/// its last entry, when a snapshot fell due anywhere in it.)
pub const SNAPSHOT_INTERVAL_ENTRIES: u64 = 1024;

/// Whether the snapshot is replaced after entry `seq`.
fn snapshot_due(seq: u64) -> bool {
    (seq + 1) % SNAPSHOT_INTERVAL_ENTRIES == 0
}

/// Replace the snapshot in `tx` with that of `state` (the state after its
/// last entry, whose hash is `entry_hash`), encoded piece by piece into the
/// store, which writes only the pieces it does not hold already. On error
/// the previous snapshot stays (the snapshot is derived data: callers never
/// fail an append for want of one).
fn write_snapshot(tx: &AppendTx<'_>, state: &mut State, entry_hash: [u8; 32]) -> Result<()> {
    let Some(seq) = state.last_seq else {
        return Ok(());
    };
    tx.write_snapshot_pieces(seq, &entry_hash, |sink| state.write_snapshot_pieces(sink))
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// A new entry was written.
    New { seq: u64, entry_hash: [u8; 32] },
    /// An entry with the same idempotency key and content already exists;
    /// nothing was written.
    AlreadyRecorded { seq: u64 },
}

impl Appended {
    pub fn seq(&self) -> u64 {
        match self {
            Appended::New { seq, .. } | Appended::AlreadyRecorded { seq } => *seq,
        }
    }
}

/// A tree size and its Merkle root (schema/FORMAT.md section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub tree_size: u64,
    pub root_hash: [u8; 32],
}

/// A request to append one entry.
pub struct AppendRequest<'a> {
    pub event: Event,
    pub idempotency_key: Option<String>,
    pub signers: &'a [&'a SigningKey],
    /// Wall-clock time of the append; the entry records
    /// `max(now, previous entry's time)` so recording times never go back.
    pub now_unix_ms: i64,
}

/// An open ledger.
pub struct Ledger {
    store: Store,
    state: State,
}

/// Reads perfect Merkle nodes from the store.
struct Nodes<'a>(&'a Store);

impl NodeSource for Nodes<'_> {
    fn perfect_node(&self, level: u32, index: u64) -> Result<merkle::Hash, MerkleError> {
        match self.0.merkle_node(level, index) {
            Ok(Some(h)) => Ok(h),
            _ => Err(MerkleError::MissingNode { level, index }),
        }
    }
}

fn merkle_error(e: MerkleError) -> Error {
    Error::input(e.to_string())
}

/// The right edge of the Merkle tree as far as one transaction has built
/// it: the last node completed at each level (level, then index and hash).
/// Extending the tree needs only such nodes, so an edge kept across the
/// appends of one transaction reads each level back at most once.
///
/// Not [`merkle::RightEdge`], which builds a tree from its first leaf: an
/// append starts in the middle of a stored tree, and this edge reads from
/// the store only the nodes that append combines with (one on average),
/// where seeding a `RightEdge` would read the whole stored edge (a node per
/// set bit of the tree size, ten on average at a million) before every
/// single append.
#[derive(Debug, Default)]
struct MerkleEdge(Vec<Option<(u64, merkle::Hash)>>);

impl MerkleEdge {
    fn get(&self, level: u32, index: u64) -> Option<merkle::Hash> {
        match self.0.get(level as usize) {
            Some(Some((i, h))) if *i == index => Some(*h),
            _ => None,
        }
    }

    fn set(&mut self, level: u32, index: u64, hash: merkle::Hash) {
        let level = level as usize;
        if self.0.len() <= level {
            self.0.resize(level + 1, None);
        }
        self.0[level] = Some((index, hash));
    }
}

/// Add the Merkle leaf of entry `seq` (whose stored record is `record`) and
/// the perfect nodes it completes. `edge` must hold only nodes of this
/// transaction's tree (a fresh edge always does).
fn add_leaf(
    tx: &AppendTx<'_>,
    writer: &mut RowWriter<'_>,
    seq: u64,
    record: &[u8],
    edge: &mut MerkleEdge,
) -> Result<()> {
    let nodes =
        merkle::completed_nodes_after_append(seq, merkle::leaf_hash(record), |level, index| {
            match edge.get(level, index) {
                Some(h) => Ok(h),
                None => match tx.merkle_node(level, index) {
                    Ok(Some(h)) => Ok(h),
                    _ => Err(MerkleError::MissingNode { level, index }),
                },
            }
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Store,
                format!("cannot extend the Merkle tree: {e}"),
            )
        })?;
    writer.insert_merkle_nodes(&nodes)?;
    for &(level, index, hash) in &nodes {
        edge.set(level, index, hash);
    }
    Ok(())
}

/// Insert an entry's row, every column derived from its record (`bytes`
/// is the record encoded, moved into the row), and its Merkle leaf.
fn store_record(
    tx: &AppendTx<'_>,
    writer: &mut RowWriter<'_>,
    record: &Record,
    bytes: &[u8],
    entry_hash: &[u8; 32],
    idempotency_key: Option<&str>,
    edge: &mut MerkleEdge,
) -> Result<()> {
    let seq = record.content.seq;
    add_leaf(tx, writer, seq, bytes, edge)?;
    writer.insert(&NewRow {
        seq,
        entry_hash,
        prev_hash: &record.content.prev_hash,
        recorded_at_unix_ms: record.content.recorded_at_unix_ms,
        kind: &record.content.kind,
        idempotency_key,
        record: bytes,
    })
}

/// The first steps of every append transaction: read the head once, catch
/// the state up with it and give every entry its Merkle leaf. Returns the
/// head.
fn start_append(state: &mut State, tx: &AppendTx<'_>) -> Result<Option<Head>> {
    let head = tx.head()?;
    catch_up(state, tx, head)?;
    complete_tree(tx, head)?;
    Ok(head)
}

/// Give every stored entry its Merkle leaf (ledgers made before the tree
/// existed, or a tree cut short).
fn complete_tree(tx: &AppendTx<'_>, head: Option<Head>) -> Result<()> {
    let leaves = tx.merkle_leaf_count()?;
    if head.map_or(0, |h| h.seq + 1) == leaves {
        return Ok(());
    }
    let mut edge = MerkleEdge::default();
    let mut writer = tx.row_writer()?;
    tx.scan(leaves, None, |row| {
        add_leaf(tx, &mut writer, row.seq as u64, &row.record, &mut edge)?;
        Ok(true)
    })
}

/// Decode a stored row into its record and body (no signature checks).
pub fn decode_row(row: &StoredRow) -> Result<(Record, Body)> {
    let seq = u64::try_from(row.seq).unwrap_or(u64::MAX);
    let record = Record::decode(&row.record).map_err(|e| e.at_seq(seq))?;
    let body =
        Body::decode(&record.content.kind, &record.content.body).map_err(|e| e.at_seq(seq))?;
    Ok((record, body))
}

/// Advance `state` by one stored entry, re-checking its rules (used when
/// opening a ledger and when catching up with other writers).
fn advance(
    state: &mut State,
    row: &StoredRow,
    lookup: &dyn Fn(u64) -> Result<Option<(String, Body)>>,
) -> Result<()> {
    let (record, body) = decode_row(row)?;
    let seq = record.content.seq;
    let prepared = state.prepare(seq, &body.event, lookup).map_err(|e| {
        Error::new(
            ErrorKind::Verification,
            format!("the stored ledger breaks a rule: {}", e.message()),
        )
        .at_seq(seq)
        .with_hint("run `fundledger verify` for a full report")
    })?;
    if seq == 0 {
        state.origin = Some(record.content.origin.clone());
    }
    state.apply(seq, prepared);
    Ok(())
}

fn lookup_in(
    get: impl Fn(u64) -> Result<Option<StoredRow>>,
) -> impl Fn(u64) -> Result<Option<(String, Body)>> {
    move |seq| match get(seq)? {
        None => Ok(None),
        Some(row) => {
            let (record, body) = decode_row(&row)?;
            Ok(Some((record.content.kind, body)))
        }
    }
}

impl Ledger {
    /// Create a ledger at `path` whose genesis entry names `origin` and
    /// enrolls `key` as its first administrator. Refuses an existing file.
    pub fn init(
        path: &Path,
        origin: &str,
        key: &SigningKey,
        key_name: &str,
        now_unix_ms: i64,
    ) -> Result<Ledger> {
        entry::check_origin(origin).map_err(|e| {
            Error::input(e.message().to_string())
                .with_hint("an origin looks like ledger.example.org/ae-ai-fund")
        })?;
        let store = Store::create(path)?;
        let mut ledger = Ledger {
            store,
            state: State::default(),
        };
        let event = Event::Genesis(Genesis {
            key: KeyEnroll {
                name: key_name.to_string(),
                public_key: base64::engine::general_purpose::STANDARD
                    .encode(key.verifying_key().as_bytes()),
                role: "administrator".into(),
                partner: None,
            },
            policy: Some(crate::policy::Policy::default_policy()),
        });
        let result = ledger.append_with_origin(
            AppendRequest {
                event,
                idempotency_key: None,
                signers: &[key],
                now_unix_ms,
            },
            Some(origin),
        );
        if let Err(e) = result {
            drop(ledger);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            return Err(e);
        }
        Ok(ledger)
    }

    /// Open a ledger for appending; replays it to build the head state.
    pub fn open(path: &Path) -> Result<Ledger> {
        let mut ledger = Ledger::replay(Store::open(path)?)?;
        if ledger.store.merkle_leaf_count()? < ledger.store.count()? {
            let tx = ledger.store.begin_append()?;
            complete_tree(&tx, tx.head()?)?;
            tx.commit()?;
        }
        // A ledger made before snapshots existed, or whose snapshot the
        // migration to another layout dropped, gets one at its head, so
        // that the next open is fast. (A snapshot that is present but does
        // not fit is left for verify to report; appends replace it.)
        if ledger.state.last_seq >= Some(SNAPSHOT_INTERVAL_ENTRIES - 1)
            && matches!(ledger.store.has_snapshot(), Ok(false))
        {
            let _ = ledger.write_head_snapshot();
        }
        Ok(ledger)
    }

    /// A ledger from a store and the state `verify` rebuilt from every one
    /// of its entries (a restored bundle), with a snapshot written at its
    /// head: what [`Ledger::open`] would make, without its replay.
    pub(crate) fn from_verified(store: Store, state: State) -> Result<Ledger> {
        let mut ledger = Ledger { store, state };
        if ledger.state.last_seq >= Some(SNAPSHOT_INTERVAL_ENTRIES - 1) {
            ledger.write_head_snapshot()?;
        }
        Ok(ledger)
    }

    /// Replace the snapshot with the state at the head, if no other process
    /// appended since this one caught up.
    fn write_head_snapshot(&mut self) -> Result<()> {
        let Ledger { store, state } = self;
        let tx = store.begin_append()?;
        match tx.head()? {
            Some(head) if Some(head.seq) == state.last_seq => {
                write_snapshot(&tx, state, head.entry_hash)?;
                tx.commit()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Record a signed checkpoint note in the ledger's checkpoint history.
    pub fn record_checkpoint(
        &mut self,
        tree_size: u64,
        note: &str,
        now_unix_ms: i64,
    ) -> Result<()> {
        self.store.record_checkpoint(tree_size, note, now_unix_ms)
    }

    /// Open a ledger read-only (queries); replays it to build the head state.
    pub fn open_read_only(path: &Path) -> Result<Ledger> {
        Ledger::replay(Store::open_read_only(path)?)
    }

    fn replay(store: Store) -> Result<Ledger> {
        let state = replay_state(&store)?;
        if state.last_seq.is_none() {
            return Err(Error::new(
                ErrorKind::NotALedger,
                format!("{} has no genesis entry", store.path().display()),
            ));
        }
        Ok(Ledger { store, state })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The ledger state an export or report describes: the Merkle tree size
    /// (the number of entries) and the RFC 9162 root hash over them,
    /// computed from the stored perfect nodes in O(log n).
    pub fn tree_head(&self) -> Result<TreeHead> {
        let tree_size = self.store.count()?;
        Ok(TreeHead {
            tree_size,
            root_hash: self.root_at(tree_size)?,
        })
    }

    /// The Merkle root over the first `tree_size` entries.
    pub fn root_at(&self, tree_size: u64) -> Result<[u8; 32]> {
        self.check_tree(tree_size)?;
        merkle::root(&Nodes(&self.store), tree_size).map_err(merkle_error)
    }

    /// RFC 9162 inclusion proof of entry `index` in the tree of `tree_size`.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<[u8; 32]>> {
        self.check_tree(tree_size)?;
        merkle::inclusion_proof(&Nodes(&self.store), index, tree_size).map_err(merkle_error)
    }

    /// RFC 9162 consistency proof between two tree sizes.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<[u8; 32]>> {
        self.check_tree(new_size)?;
        merkle::consistency_proof(&Nodes(&self.store), old_size, new_size).map_err(merkle_error)
    }

    fn check_tree(&self, tree_size: u64) -> Result<()> {
        let entries = self.store.count()?;
        if tree_size > entries {
            return Err(Error::input(format!(
                "tree size {tree_size} is larger than the ledger ({entries} entries)"
            )));
        }
        let leaves = self.store.merkle_leaf_count()?;
        if leaves < tree_size {
            return Err(Error::new(
                ErrorKind::Store,
                format!("the stored Merkle tree has {leaves} leaves but the ledger has {entries} entries"),
            )
            .with_hint("run a writing command (for example `fundledger checkpoint`) to rebuild it"));
        }
        Ok(())
    }

    /// The ledger's origin.
    pub fn origin(&self) -> &str {
        self.state.origin().unwrap_or_default()
    }

    /// Append one entry (see the module docs for the steps).
    pub fn append(&mut self, request: AppendRequest<'_>) -> Result<Appended> {
        self.append_with_origin(request, None)
    }

    fn append_with_origin(
        &mut self,
        request: AppendRequest<'_>,
        genesis_origin: Option<&str>,
    ) -> Result<Appended> {
        let Ledger { store, state } = self;
        let tx = store.begin_append()?;
        let head = start_append(state, &tx)?;
        // Check the signers first, so that not even an "already recorded"
        // answer goes to a key that may not record this event.
        let ids: Vec<_> = request
            .signers
            .iter()
            .map(|k| key_id(&k.verifying_key()))
            .collect();
        let next_seq = head.map_or(0, |h| h.seq + 1);
        state.authorize(next_seq, &request.event, &ids)?;
        let draft = match draft_entry(
            state,
            &tx,
            head,
            request.event,
            request.idempotency_key,
            request.now_unix_ms,
            genesis_origin,
        )? {
            Ok(draft) => draft,
            Err(already) => return Ok(already),
        };
        let entry_hash = draft.entry_hash;
        let signatures = request
            .signers
            .iter()
            .map(|k| entry::sign(k, &entry_hash))
            .collect();
        let committed = commit_entry(state, tx, draft, signatures, entry::self_check);
        self.recover(committed)
    }

    /// Prepare an entry for several signers: check the event against the
    /// ledger as it is now and return the exact content to sign, bound to
    /// the next position (sequence number and previous hash). Appends nothing.
    pub fn propose(
        &mut self,
        event: Event,
        idempotency_key: Option<String>,
        now_unix_ms: i64,
    ) -> Result<Content> {
        let Ledger { store, state } = self;
        let tx = store.begin_append()?;
        let head = start_append(state, &tx)?;
        match draft_entry(state, &tx, head, event, idempotency_key, now_unix_ms, None)? {
            Ok(draft) => Ok(draft.content),
            Err(Appended::AlreadyRecorded { seq }) => Err(Error::new(
                ErrorKind::Conflict,
                format!("this event is already recorded as entry {seq} (same idempotency key and content)"),
            )),
            Err(Appended::New { .. }) => Err(Error::format("a proposal cannot append")),
        }
    }

    /// Append a proposed entry with the signatures collected for it, when
    /// they meet the policy in force. A proposal made before other entries
    /// were appended is stale and refused.
    pub fn submit(
        &mut self,
        content: &Content,
        signatures: Vec<EntrySignature>,
    ) -> Result<Appended> {
        let Ledger { store, state } = self;
        let tx = store.begin_append()?;
        let head = start_append(state, &tx)?;
        if Some(content.origin.as_str()) != state.origin() {
            return Err(Error::rule(format!(
                "the proposal was made for another ledger (origin {}, this ledger is {})",
                content.origin,
                state.origin().unwrap_or_default()
            )));
        }
        let (next, prev) = head.map_or((0, GENESIS_PREV_HASH), |h| (h.seq + 1, h.entry_hash));
        if content.seq == next && content.prev_hash != prev {
            return Err(Error::rule(format!(
                "the proposal was made on a different history: entry {} does not follow this ledger's entry {}",
                content.seq,
                next.saturating_sub(1)
            ))
            .with_hint("propose the event again on this ledger"));
        }
        if content.seq != next {
            return Err(Error::rule(format!(
                "the proposal is stale: it was made for entry {} but the ledger's next entry is {next}",
                content.seq
            ))
            .with_hint("propose the event again and collect the signatures anew"));
        }
        if head.is_some_and(|h| content.recorded_at_unix_ms < h.recorded_at_unix_ms) {
            return Err(Error::rule(
                "the proposal's recording time is earlier than the ledger's head",
            ));
        }
        content.check_header()?;
        let body = Body::decode(&content.kind, &content.body)?;
        if let Some(key) = &body.idempotency_key {
            if let Some(row) = tx.find_idempotency_key(key)? {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "idempotency key {key:?} was already used by entry {}",
                        row.seq
                    ),
                ));
            }
        }
        let lookup = lookup_in(|s| tx.get(s));
        let prepared = state.prepare(content.seq, &body.event, &lookup)?;
        drop(lookup);
        if prepared.postings() != body.postings {
            return Err(Error::rule(
                "the proposal's postings differ from what the event books now",
            ));
        }
        let (content_bytes, entry_hash) = content.encode_and_hash(signatures.len());
        for sig in &signatures {
            let key = state.keys.get(&sig.key_id).ok_or_else(|| {
                Error::rule(format!(
                    "signing key {} is not enrolled in this ledger",
                    hex::encode(sig.key_id)
                ))
            })?;
            if !entry::verify_signature(&key.public_key, &entry_hash, sig) {
                return Err(Error::rule(format!(
                    "the signature by key {} does not verify: the proposal was changed after it was signed",
                    key.name
                )));
            }
        }
        let ids: Vec<_> = signatures.iter().map(|s| s.key_id).collect();
        state.authorize(content.seq, &body.event, &ids)?;
        let draft = Draft {
            content: content.clone(),
            content_bytes,
            entry_hash,
            event: body.event,
            idempotency_key: body.idempotency_key,
            prepared,
        };
        let committed = commit_entry(state, tx, draft, signatures, entry::verify_signature);
        self.recover(committed)
    }
}

/// Most entries one batch append checks between two drains of its signing
/// pipeline; the state snapshot is written at most once per chunk, after
/// its last entry (memory is bounded by the signing groups in flight, not
/// by this).
pub const BATCH_CHUNK_ENTRIES: usize = 32768;

/// Entries batch append stores between two commits. Each commit is made
/// while the signing pipeline runs on, without waiting for the disk; the
/// last commit of each chunk syncs them all ([`Store::begin_batch_append`]).
/// A transaction this small fits SQLite's page cache (2 MB), so none of its
/// pages is written to the WAL twice: a page spilled and then changed again
/// in the same transaction makes SQLite rewrite the checksum of every WAL frame
/// after it at COMMIT (at 20,000 entries per transaction, about 5,900
/// frames read back and rewritten, and a 40 to 95 ms fsync, while neither
/// core worked).
pub const BATCH_COMMIT_ENTRIES: usize = 1024;

/// Entries whose signatures are made (and batch-verified) together while
/// the next ones are checked and hashed (batch append's pipeline).
const SIGNING_GROUP_ENTRIES: usize = 512;

/// Groups queued for signing before the checking thread stores the oldest
/// (signing queued groups itself until it is done).
const SIGNING_GROUPS_IN_FLIGHT: usize = 4;

/// A batch entry checked and hashed, waiting for its signatures.
struct Unsigned {
    content: Content,
    /// `content` encoded: the record's bytes begin with them.
    content_bytes: Vec<u8>,
    /// The entry hash, of `content_bytes`.
    hash: [u8; 32],
    idempotency_key: Option<String>,
}

/// What batch append made of one event.
enum Checked {
    /// Already recorded, as this entry, under the same idempotency key.
    Recorded(u64),
    /// A new entry, applied to the state, to sign and store.
    New(Unsigned),
}

/// Where the next entry of a batch goes.
struct Next<'a> {
    seq: u64,
    prev: [u8; 32],
    recorded_at: i64,
    origin: &'a str,
}

impl<'a> Next<'a> {
    /// The position after `head`, recorded at `now_unix_ms` (never before
    /// the head's own time).
    fn after(head: Head, now_unix_ms: i64, origin: &'a str) -> Next<'a> {
        Next {
            seq: head.seq + 1,
            prev: head.entry_hash,
            recorded_at: now_unix_ms.max(head.recorded_at_unix_ms),
            origin,
        }
    }
}

/// Why a batch chunk stopped.
enum Stop {
    /// An event was refused: every entry before it is committed, and the
    /// state is that of the store.
    Refused(Error),
    /// The store or signing failed: the entries since the last commit are
    /// rolled back, and the state is ahead of the store.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Stop {
        Stop::Failed(error)
    }
}

impl Ledger {
    /// Append many entries, all signed by the same `signers`: the path bulk
    /// imports use. Each event is checked and hashed in order (hashes
    /// chain); the signatures, which do not depend on each other, are made
    /// on every core. The entries are committed every
    /// [`BATCH_COMMIT_ENTRIES`], and at the end of each chunk of
    /// [`BATCH_CHUNK_ENTRIES`] and of the batch, where the write-ahead log
    /// is synced: every entry appended is durable when this returns, with
    /// an error or not. A crash of the process mid-batch loses at most the
    /// last [`BATCH_COMMIT_ENTRIES`] entries; a power loss may lose more of
    /// the unfinished chunk (the ledger stays a valid chain).
    ///
    /// A refused event stops the batch: every event before it is appended
    /// and committed, it and those after it are not, and the error names
    /// its index in `requests` (`batch event N: ...`), so the batch can go
    /// on from there once the event is mended (or be appended again whole
    /// when its events carry idempotency keys). Should the store or signing
    /// fail instead, the entries since the last commit are rolled back and
    /// the error names the ledger's head.
    pub fn append_batch(
        &mut self,
        requests: Vec<(Event, Option<String>)>,
        signers: &[&SigningKey],
        now_unix_ms: i64,
    ) -> Result<Vec<Appended>> {
        // Converted a chunk at a time, not into a second whole batch.
        let requests = requests.into_iter().map(BatchRequest::from);
        self.append_batch_from(requests, signers, now_unix_ms, None)
    }

    /// [`Ledger::append_batch`], where the batch's first new entry must
    /// get sequence number `next_seq` and its new entries must follow one
    /// another with no other writer's in between: the positions a
    /// [`Ledger::check_batch`] of the same batch found (a reversal in the
    /// batch names an entry of it by its position). Should another writer
    /// have appended, the chunk it would move is refused whole (a
    /// `Conflict`), and the entries of the chunks before it stay appended.
    ///
    /// With `next_seq` `None`, this is [`Ledger::append_batch`] of
    /// [`BatchRequest`]s (which may name the entries they reverse by key).
    pub fn append_batch_at(
        &mut self,
        requests: Vec<BatchRequest>,
        signers: &[&SigningKey],
        now_unix_ms: i64,
        next_seq: Option<u64>,
    ) -> Result<Vec<Appended>> {
        self.append_batch_from(requests.into_iter(), signers, now_unix_ms, next_seq)
    }

    fn append_batch_from(
        &mut self,
        requests: impl ExactSizeIterator<Item = BatchRequest>,
        signers: &[&SigningKey],
        now_unix_ms: i64,
        mut next_seq: Option<u64>,
    ) -> Result<Vec<Appended>> {
        let ids: Vec<_> = signers.iter().map(|k| key_id(&k.verifying_key())).collect();
        self.store.start_writeback()?;
        let mut out = Vec::with_capacity(requests.len());
        let mut requests = requests.enumerate().peekable();
        while requests.peek().is_some() {
            let chunk: Vec<_> = requests.by_ref().take(BATCH_CHUNK_ENTRIES).collect();
            match self.append_chunk(chunk, signers, &ids, now_unix_ms, next_seq) {
                Ok(mut done) => {
                    out.append(&mut done);
                    // The next chunk goes on from this one's last entry.
                    if next_seq.is_some() {
                        next_seq = Some(self.state.last_seq.map_or(0, |s| s + 1));
                    }
                }
                Err(Stop::Refused(e)) => return Err(e),
                Err(Stop::Failed(e)) => {
                    // The transaction rolled back: so does the state, rebuilt
                    // from the store (no copy of the state is kept, which
                    // would double the memory of a bulk import).
                    self.state = replay_state(&self.store)?;
                    let head = self.state.last_seq.map_or("none".into(), |s| s.to_string());
                    return Err(e.map_message(|m| {
                        format!("{m} (the batch stopped; the ledger's last entry is now {head})")
                    }));
                }
            }
        }
        Ok(out)
    }

    /// Check a batch as [`Ledger::append_batch`] would append it, and
    /// write nothing: every event in order against a copy of the state,
    /// with the same rules, signer policy and idempotency keys, under the
    /// write lock, which is released (the transaction rolled back) before
    /// this returns. `Ok(Err((index, error)))` names the first event
    /// refused; `Err` is an error of the store itself. A batch that
    /// passes can still be refused by `append_batch` only when another
    /// writer appends in between. The requests are read one at a time (a
    /// refused event is the last one read), so a batch need not be held
    /// in memory; the contents of the entries whose sequence numbers are
    /// in `reversal_targets` are kept, so that a reversal may name an
    /// entry of the batch. `progress(checked)` is called every
    /// [`BATCH_COMMIT_ENTRIES`] events.
    pub fn check_batch(
        &mut self,
        requests: &mut dyn Iterator<Item = BatchRequest>,
        reversal_targets: &ReversalTargets,
        signers: &[&SigningKey],
        now_unix_ms: i64,
        progress: &mut dyn FnMut(usize),
    ) -> Result<std::result::Result<BatchChecked, (usize, Error)>> {
        let ids: Vec<_> = signers.iter().map(|k| key_id(&k.verifying_key())).collect();
        let Ledger { store, state } = self;
        let tx = store.begin_append()?;
        let Some(head) = start_append(state, &tx)? else {
            return Err(Error::input("an empty ledger needs `fundledger init`"));
        };
        let origin = state.origin().unwrap_or_default().to_string();
        let mut state = state.clone();
        let mut next = Next::after(head, now_unix_ms, &origin);
        let mut outcome = BatchChecked {
            new: 0,
            already_recorded: 0,
            first_seq: next.seq,
        };
        let mut drafted: std::collections::HashMap<u64, Content> = Default::default();
        let mut batch_keys = Default::default();
        for (index, request) in requests.enumerate() {
            if index % BATCH_COMMIT_ENTRIES == 0 {
                progress(index);
            }
            let pending = |s: u64| drafted.get(&s);
            let checked = check_batch_event(
                &mut state,
                &tx,
                &next,
                &ids,
                &mut batch_keys,
                &pending,
                request,
            );
            match checked {
                Err(e) => return Ok(Err((index, e))),
                Ok(Checked::Recorded(_)) => outcome.already_recorded += 1,
                Ok(Checked::New(unsigned)) => {
                    outcome.new += 1;
                    if reversal_targets.names(next.seq, unsigned.idempotency_key.as_deref()) {
                        drafted.insert(next.seq, unsigned.content);
                    }
                    next.prev = unsigned.hash;
                    next.seq += 1;
                }
            }
        }
        Ok(Ok(outcome))
    }

    /// Append one chunk of a batch; `next_seq`, when given, is the
    /// position its first new entry must get (see
    /// [`Ledger::append_batch_at`]).
    fn append_chunk(
        &mut self,
        chunk: Vec<(usize, BatchRequest)>,
        signers: &[&SigningKey],
        ids: &[crate::entry::KeyId],
        now_unix_ms: i64,
        next_seq: Option<u64>,
    ) -> std::result::Result<Vec<Appended>, Stop> {
        let Ledger { store, state } = self;
        let tx = store.begin_batch_append()?;
        let head = start_append(state, &tx)?;
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut batch_keys = BatchKeys::default();
        let Some(head) = head else {
            return Err(Stop::Refused(Error::input(
                "an empty ledger needs `fundledger init`",
            )));
        };
        let origin = state.origin().unwrap_or_default().to_string();
        let mut next = Next::after(head, now_unix_ms, &origin);
        if let Some(expected) = next_seq.filter(|expected| *expected != next.seq) {
            return Err(Stop::Refused(
                Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "the ledger's next entry is {}, not {expected} as when the batch was checked: another writer appended in between",
                        next.seq
                    ),
                )
                .with_hint("check the batch again before appending it; a reversal in it that names an entry of the batch by number must name the new number"),
            ));
        }
        let mut snapshot_needed = false;
        let mut refused = None;
        // A pipeline: while this thread checks and hashes entries in order,
        // the signatures of earlier groups are made and checked by the
        // signing threads; when this thread gets ahead, it signs too.
        let queue = SignQueue::default();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .max(1);
        std::thread::scope(|scope| -> Result<()> {
            for _ in 0..workers {
                scope.spawn(|| queue.work(signers));
            }
            // Stop the workers however this closure ends.
            let _close = CloseOnDrop(&queue);
            let mut in_flight: std::collections::VecDeque<(u64, Vec<Unsigned>)> =
                Default::default();
            let mut group: Vec<Unsigned> = Vec::with_capacity(SIGNING_GROUP_ENTRIES);
            let mut edge = MerkleEdge::default();
            let mut uncommitted = 0;
            let mut store_group =
                |tx: &AppendTx<'_>, (job, drafts): (u64, Vec<Unsigned>)| -> Result<()> {
                    tx.check_open()?;
                    let signatures = queue.wait_for(job, signers)?;
                    if signatures.len() != drafts.len() {
                        return Err(Error::format(
                            "signing produced the wrong number of signatures",
                        ));
                    }
                    let mut last = None;
                    let mut writer = tx.row_writer()?;
                    for (draft, sigs) in drafts.into_iter().zip(signatures) {
                        let Unsigned {
                            content,
                            content_bytes,
                            hash,
                            idempotency_key,
                        } = draft;
                        let record = Record::new(content, sigs)?;
                        store_record(
                            tx,
                            &mut writer,
                            &record,
                            &record.encode_after_content(content_bytes),
                            &hash,
                            idempotency_key.as_deref(),
                            &mut edge,
                        )?;
                        uncommitted += 1;
                        last = Some((record.content.seq, hash));
                    }
                    drop(writer);
                    if uncommitted >= BATCH_COMMIT_ENTRIES {
                        tx.commit_and_continue()?;
                        uncommitted = 0;
                        // Another writer may have taken the lock in between; the
                        // chain (and the Merkle edge) go on only from this batch's
                        // own last entry.
                        if tx.head()?.map(|h| (h.seq, h.entry_hash)) != last {
                            return Err(Error::new(
                                ErrorKind::Conflict,
                                "another writer appended to the ledger during the batch",
                            )
                            .with_hint("append the remaining events again"));
                        }
                    } else {
                        tx.hint_sync_wal();
                    }
                    Ok(())
                };
            for (index, request) in chunk {
                let pending = |s: u64| {
                    group
                        .iter()
                        .chain(in_flight.iter().flat_map(|(_, drafts)| drafts.iter()))
                        .find(|draft| draft.content.seq == s)
                        .map(|draft| &draft.content)
                };
                let checked =
                    check_batch_event(state, &tx, &next, ids, &mut batch_keys, &pending, request);
                match checked {
                    Err(e) => {
                        refused = Some(e.map_message(|m| format!("batch event {index}: {m}")));
                        break;
                    }
                    Ok(Checked::Recorded(seq)) => outcomes.push(Appended::AlreadyRecorded { seq }),
                    Ok(Checked::New(unsigned)) => {
                        let hash = unsigned.hash;
                        outcomes.push(Appended::New {
                            seq: next.seq,
                            entry_hash: hash,
                        });
                        // Encode the state at most once per chunk: after the
                        // chunk's last entry, when a snapshot fell due
                        // anywhere in it.
                        snapshot_needed |= snapshot_due(next.seq);
                        next.prev = hash;
                        next.seq += 1;
                        group.push(unsigned);
                    }
                }
                if group.len() == SIGNING_GROUP_ENTRIES {
                    let drafts =
                        std::mem::replace(&mut group, Vec::with_capacity(SIGNING_GROUP_ENTRIES));
                    let job = queue.push(drafts.iter().map(|d| d.hash).collect());
                    in_flight.push_back((job, drafts));
                    if in_flight.len() > SIGNING_GROUPS_IN_FLIGHT {
                        if let Some(done) = in_flight.pop_front() {
                            store_group(&tx, done)?;
                        }
                    }
                }
            }
            if !group.is_empty() {
                let job = queue.push(group.iter().map(|d| d.hash).collect());
                in_flight.push_back((job, group));
            }
            while let Some(done) = in_flight.pop_front() {
                store_group(&tx, done)?;
            }
            Ok(())
        })?;
        // In the last transaction: the snapshot and the entries commit
        // together. Best effort: a snapshot that cannot be written costs a
        // longer replay at the next open, never an entry.
        if snapshot_needed {
            let _ = write_snapshot(&tx, state, next.prev);
        }
        tx.check_open()?;
        tx.commit()?;
        match refused {
            Some(e) => Err(Stop::Refused(e)),
            None => Ok(outcomes),
        }
    }
}

/// One event of a batch and its idempotency key. A reversal may name the
/// entry it reverses by that entry's idempotency key (`reverses`) instead
/// of its sequence number: the key is looked up (among the batch's entries
/// before it, then the ledger's) when the event is checked, and its entry's
/// number set in the reversal, so that it holds wherever the batch lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    pub event: Event,
    pub idempotency_key: Option<String>,
    /// For a reversal: the idempotency key of the entry it reverses (its
    /// `seq` is then set from it).
    pub reverses: Option<String>,
}

impl From<(Event, Option<String>)> for BatchRequest {
    fn from((event, idempotency_key): (Event, Option<String>)) -> BatchRequest {
        BatchRequest {
            event,
            idempotency_key,
            reverses: None,
        }
    }
}

/// The entries a batch's reversals name, by sequence number or by
/// idempotency key: [`Ledger::check_batch`] keeps the drafted contents of
/// those among the batch's own entries (a reversal reads the entry it
/// negates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReversalTargets {
    pub seqs: std::collections::HashSet<u64>,
    pub keys: std::collections::HashSet<String>,
}

impl ReversalTargets {
    /// Whether the entry at `seq` with `idempotency_key` is named.
    fn names(&self, seq: u64, idempotency_key: Option<&str>) -> bool {
        self.seqs.contains(&seq) || idempotency_key.is_some_and(|k| self.keys.contains(k))
    }
}

/// What [`Ledger::check_batch`] found for a batch that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchChecked {
    /// Events that would be appended.
    pub new: usize,
    /// Events already recorded under their idempotency key.
    pub already_recorded: usize,
    /// The sequence number the first new event would get (the entries
    /// would be `first_seq .. first_seq + new`, if no other writer
    /// appends first).
    pub first_seq: u64,
}

/// The idempotency keys a batch has used so far: each key's entry and the
/// SHA-256 of its event's kind, a zero byte and its canonical fields (a
/// digest rather than the bytes, so that a large batch holds 32 bytes per
/// key).
type BatchKeys = std::collections::HashMap<String, (u64, [u8; 32])>;

/// Check one event of a batch for position `next`, apply it to the state
/// and build its content (to be signed); `pending` finds the entries of
/// the batch that are not stored yet (a reversal may name one). An error
/// refuses the event: the batch stops before it.
#[allow(clippy::too_many_arguments)]
fn check_batch_event<'p>(
    state: &mut State,
    tx: &AppendTx<'_>,
    next: &Next<'_>,
    ids: &[crate::entry::KeyId],
    batch_keys: &mut BatchKeys,
    pending: &dyn Fn(u64) -> Option<&'p Content>,
    request: BatchRequest,
) -> Result<Checked> {
    let BatchRequest {
        mut event,
        idempotency_key,
        reverses,
    } = request;
    if let Some(key) = &reverses {
        let seq = match batch_keys.get(key) {
            Some((seq, _)) => *seq,
            None => match tx.find_idempotency_key(key)? {
                // The row's own column: the reversal's check reads (and
                // decodes) the entry it names anyway.
                Some(row) => u64::try_from(row.seq)
                    .map_err(|_| Error::format(format!("entry number {} is negative", row.seq)))?,
                None => {
                    return Err(Error::input(format!(
                        "no entry has the idempotency key {key:?}, which the reversal names"
                    )))
                }
            },
        };
        match &mut event {
            Event::Reversal(r) => r.seq = seq,
            _ => {
                return Err(Error::input(
                    "only a reversal names the entry it reverses by idempotency key",
                ))
            }
        }
    }
    if let Some(key) = &idempotency_key {
        crate::event::check_idempotency_key(key)?;
        let canonical = event.canonical_bytes()?;
        // Kind and fields: a commitment and a reduction have the same fields.
        let digest: [u8; 32] = {
            let mut hasher = Sha256::new();
            hasher.update(event.kind().as_bytes());
            hasher.update([0]);
            hasher.update(&canonical);
            hasher.finalize().into()
        };
        let earlier = match batch_keys.get(key) {
            Some((seq, earlier_digest)) => Some((*seq, *earlier_digest == digest)),
            None => match tx.find_idempotency_key(key)? {
                Some(row) => {
                    let (record, body) = decode_row(&row)?;
                    let same = record.content.kind == event.kind()
                        && body.event.canonical_bytes()? == canonical;
                    Some((record.content.seq, same))
                }
                None => None,
            },
        };
        match earlier {
            Some((seq, true)) => return Ok(Checked::Recorded(seq)),
            Some((seq, false)) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("idempotency key {key:?} was already used by entry {seq} with different content"),
                ))
            }
            None => {
                batch_keys.insert(key.clone(), (next.seq, digest));
            }
        }
    }
    state.authorize(next.seq, &event, ids)?;
    let stored = lookup_in(|s| tx.get(s));
    let lookup = |s: u64| -> Result<Option<(String, Body)>> {
        match pending(s) {
            Some(content) => Ok(Some((
                content.kind.clone(),
                Body::decode(&content.kind, &content.body)?,
            ))),
            None => stored(s),
        }
    };
    let prepared = state.prepare(next.seq, &event, &lookup)?;
    let content = Content {
        origin: next.origin.to_string(),
        seq: next.seq,
        prev_hash: next.prev,
        recorded_at_unix_ms: next.recorded_at,
        kind: event.kind().to_string(),
        body: Body::encode_with_postings(
            &event,
            idempotency_key.as_deref(),
            prepared.encode_postings().as_deref(),
        )?,
    };
    content.check_header()?;
    let (content_bytes, hash) = content.encode_and_hash(ids.len());
    state.apply(next.seq, prepared);
    Ok(Checked::New(Unsigned {
        content,
        content_bytes,
        hash,
        idempotency_key,
    }))
}

/// Sign every hash with every key, then check the signatures made (batch
/// verification: "check twice", so that a fault while signing never
/// reaches the ledger).
fn sign_group(hashes: &[[u8; 32]], signers: &[&SigningKey]) -> Result<Vec<Vec<EntrySignature>>> {
    let public: Vec<_> = signers.iter().map(|k| k.verifying_key()).collect();
    // Each key signs the whole group at once; then each entry takes its
    // signature from every key, in the signers' order.
    let mut by_key: Vec<_> = signers
        .iter()
        .map(|k| entry::sign_many(k, hashes).into_iter())
        .collect();
    let signed: Option<Vec<Vec<EntrySignature>>> = hashes
        .iter()
        .map(|_| by_key.iter_mut().map(Iterator::next).collect())
        .collect();
    let signed = signed.ok_or_else(|| Error::format("signing produced too few signatures"))?;
    let checks: Vec<SignatureCheck> = hashes
        .iter()
        .zip(&signed)
        .flat_map(|(h, sigs)| {
            sigs.iter()
                .zip(&public)
                .map(|(sig, key)| SignatureCheck::new(key, h, sig))
        })
        .collect();
    match entry::verify_signatures(&checks) {
        None => Ok(signed),
        Some(_) => Err(Error::format("a fresh signature does not verify")),
    }
}

/// Groups of hashes waiting to be signed, and the signatures made, shared
/// by batch append's checking thread and its signing threads.
#[derive(Default)]
struct SignQueue {
    state: std::sync::Mutex<SignQueueState>,
    /// Signalled when a group is queued or signed, or the queue closes.
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct SignQueueState {
    next_job: u64,
    pending: std::collections::VecDeque<(u64, Vec<[u8; 32]>)>,
    signed: std::collections::HashMap<u64, Result<Vec<Vec<EntrySignature>>>>,
    closed: bool,
}

impl SignQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, SignQueueState> {
        // A panic while holding the lock leaves nothing half-updated here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a group; returns its job number.
    fn push(&self, hashes: Vec<[u8; 32]>) -> u64 {
        let mut state = self.lock();
        let job = state.next_job;
        state.next_job += 1;
        state.pending.push_back((job, hashes));
        drop(state);
        self.changed.notify_all();
        job
    }

    /// Sign group `job` on this thread and hand the outcome over.
    fn sign(&self, job: u64, hashes: &[[u8; 32]], signers: &[&SigningKey]) {
        // A panic while signing must not leave a waiter waiting forever.
        let signed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sign_group(hashes, signers)))
                .unwrap_or_else(|_| Err(Error::format("a signing thread failed")));
        self.lock().signed.insert(job, signed);
        self.changed.notify_all();
    }

    /// A signing thread: sign queued groups until the queue closes.
    fn work(&self, signers: &[&SigningKey]) {
        let mut state = self.lock();
        loop {
            if let Some((job, hashes)) = state.pending.pop_front() {
                drop(state);
                self.sign(job, &hashes, signers);
                state = self.lock();
            } else if state.closed {
                return;
            } else {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// The signatures of group `job`; signs queued groups on this thread
    /// while it waits.
    fn wait_for(&self, job: u64, signers: &[&SigningKey]) -> Result<Vec<Vec<EntrySignature>>> {
        let mut state = self.lock();
        loop {
            if let Some(signed) = state.signed.remove(&job) {
                return signed;
            }
            if let Some((other, hashes)) = state.pending.pop_front() {
                drop(state);
                self.sign(other, &hashes, signers);
                state = self.lock();
            } else {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// Closes a [`SignQueue`] when dropped, so that its signing threads end on
/// every path out of the pipeline.
struct CloseOnDrop<'a>(&'a SignQueue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// An entry ready to be signed.
struct Draft {
    content: Content,
    /// `content` encoded (the record's bytes begin with them), and its
    /// hash, the entry hash the signatures cover: made once.
    content_bytes: Vec<u8>,
    entry_hash: [u8; 32],
    event: Event,
    idempotency_key: Option<String>,
    prepared: Prepared,
}

/// Inside an append transaction that [`start_append`] began (`head` is its
/// head): check the idempotency key, check the event and build the content. `Err(Appended)` when the same event is
/// already recorded under the key.
fn draft_entry(
    state: &State,
    tx: &AppendTx<'_>,
    head: Option<Head>,
    event: Event,
    idempotency_key: Option<String>,
    now_unix_ms: i64,
    genesis_origin: Option<&str>,
) -> Result<std::result::Result<Draft, Appended>> {
    if let Some(key) = &idempotency_key {
        crate::event::check_idempotency_key(key)?;
    }
    if let Some(key) = &idempotency_key {
        if let Some(row) = tx.find_idempotency_key(key)? {
            let (record, body) = decode_row(&row)?;
            let same = record.content.kind == event.kind()
                && body.event.canonical_bytes()? == event.canonical_bytes()?;
            if same {
                return Ok(Err(Appended::AlreadyRecorded {
                    seq: record.content.seq,
                }));
            }
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "idempotency key {key:?} was already used by entry {} with different content",
                    record.content.seq
                ),
            )
            .with_hint("use a new idempotency key for a different event"));
        }
    }
    let seq = head.map_or(0, |h: Head| h.seq + 1);
    let lookup = lookup_in(|s| tx.get(s));
    let prepared = state.prepare(seq, &event, &lookup)?;
    let origin = match (seq, genesis_origin) {
        (0, Some(origin)) => origin.to_string(),
        (0, None) => return Err(Error::input("an empty ledger needs `fundledger init`")),
        _ => state.origin().unwrap_or_default().to_string(),
    };
    let body = Body {
        event: event.clone(),
        idempotency_key: idempotency_key.clone(),
        postings: prepared.postings(),
    };
    let content = Content {
        origin,
        seq,
        prev_hash: head.map_or(GENESIS_PREV_HASH, |h| h.entry_hash),
        recorded_at_unix_ms: head.map_or(now_unix_ms, |h| now_unix_ms.max(h.recorded_at_unix_ms)),
        kind: event.kind().to_string(),
        body: body.encode()?,
    };
    content.check_header()?;
    // Room for one signature, the usual count (more costs only a copy).
    let (content_bytes, entry_hash) = content.encode_and_hash(1);
    Ok(Ok(Draft {
        content,
        content_bytes,
        entry_hash,
        event,
        idempotency_key,
        prepared,
    }))
}

/// Sign-checked insert: build the record, decode it again and verify every
/// signature against the authorized keys with `check` (check twice), insert
/// the row and its Merkle leaf, commit, then advance the state. `check` is
/// [`entry::self_check`] for signatures this process just made and
/// [`entry::verify_signature`], the ledger's rule, for signatures collected
/// from others (submit).
///
/// When the entry is due a snapshot, the entry is applied to the state
/// before COMMIT and the state's snapshot written in the same transaction,
/// so the snapshot can never describe an entry that was not committed; if
/// COMMIT then fails, the error says the state is ahead of the store, and
/// [`Ledger::recover`] rebuilds it (no copy of the state is made: at a
/// million entries a copy cost about 15 ms, to make and to free, per
/// [`SNAPSHOT_INTERVAL_ENTRIES`] entries).
fn commit_entry(
    state: &mut State,
    tx: AppendTx<'_>,
    draft: Draft,
    signatures: Vec<EntrySignature>,
    check: fn(&ed25519_dalek::VerifyingKey, &[u8; 32], &EntrySignature) -> bool,
) -> std::result::Result<Appended, Uncommitted> {
    let Draft {
        content,
        content_bytes,
        entry_hash,
        event,
        idempotency_key,
        prepared,
    } = draft;
    let seq = content.seq;
    let record = Record::new(content, signatures)?;
    let bytes = record.encode_after_content(content_bytes);
    let decoded = Record::decode(&bytes)?;
    if decoded != record {
        return Err(Error::format("encoded record does not decode to itself").into());
    }
    let ids: Vec<_> = decoded.signatures.iter().map(|s| s.key_id).collect();
    let keys = state.authorize(seq, &event, &ids)?;
    for (sig, key) in decoded.signatures.iter().zip(&keys) {
        if !check(key, &entry_hash, sig) {
            return Err(Error::rule(format!(
                "the signature by key {} does not verify",
                hex::encode(&sig.key_id[..8])
            ))
            .into());
        }
    }
    store_record(
        &tx,
        &mut tx.row_writer()?,
        &record,
        &bytes,
        &entry_hash,
        idempotency_key.as_deref(),
        &mut MerkleEdge::default(),
    )?;
    let step = |state: &mut State| {
        if seq == 0 {
            state.origin = Some(record.content.origin.clone());
        }
        state.apply(seq, prepared);
    };
    if snapshot_due(seq) {
        step(state);
        // Best effort: a snapshot that cannot be written costs a longer
        // replay at the next open, never the entry.
        let _ = write_snapshot(&tx, state, entry_hash);
        tx.commit().map_err(|error| Uncommitted {
            error,
            state_ahead: true,
        })?;
    } else {
        tx.commit()?;
        step(state);
    }
    Ok(Appended::New { seq, entry_hash })
}

/// Why [`commit_entry`] did not commit, and whether it had already
/// applied the entry to the in-memory state (which must then be rebuilt
/// from the store: [`Ledger::recover`]).
struct Uncommitted {
    error: Error,
    state_ahead: bool,
}

impl From<Error> for Uncommitted {
    fn from(error: Error) -> Uncommitted {
        Uncommitted {
            error,
            state_ahead: false,
        }
    }
}

impl Ledger {
    /// The outcome of [`commit_entry`]: a failure that left the state ahead
    /// of the store rebuilds it from the store (the snapshot and the
    /// entries after it) before the error is returned.
    fn recover(
        &mut self,
        committed: std::result::Result<Appended, Uncommitted>,
    ) -> Result<Appended> {
        match committed {
            Ok(appended) => Ok(appended),
            Err(u) => {
                if u.state_ahead {
                    self.state = replay_state(&self.store)?;
                }
                Err(u.error)
            }
        }
    }
}

/// The state after every stored entry: from the stored snapshot when it
/// fits the chain, replaying only the entries after it; from genesis
/// otherwise.
fn replay_state(store: &Store) -> Result<State> {
    let mut state = usable_snapshot(store).unwrap_or_default();
    let from = state.last_seq.map_or(0, |s| s + 1);
    let lookup = lookup_in(|seq| store.get(seq));
    store.scan(from, None, |row| {
        advance(&mut state, &row, &lookup)?;
        Ok(true)
    })?;
    Ok(state)
}

/// The state the stored snapshot holds, when it can be used: it decodes,
/// it is the state after an entry the ledger holds, and that entry's stored
/// hash is the one the snapshot names. None otherwise (absent, damaged, undecodable,
/// beyond the head, from another history): the caller replays from genesis.
/// Whether the snapshot equals the state the entries make is verify's check.
fn usable_snapshot(store: &Store) -> Option<State> {
    let snapshot = store.snapshot().ok()??;
    if snapshot.seq >= store.count().ok()? {
        return None;
    }
    let row = store.get(snapshot.seq).ok()??;
    if row.entry_hash != snapshot.entry_hash {
        return None;
    }
    let bytes = snapshot.state.as_ref().ok()?;
    let state = State::decode_snapshot_in_pieces(bytes, &snapshot.pieces).ok()?;
    if state.last_seq != Some(snapshot.seq) || state.origin.is_none() {
        return None;
    }
    Some(state)
}

/// Bring `state` up to `head` inside an append transaction.
fn catch_up(state: &mut State, tx: &AppendTx<'_>, head: Option<Head>) -> Result<()> {
    if head.map(|h| h.seq) == state.last_seq {
        return Ok(());
    }
    let from = state.last_seq.map_or(0, |s| s + 1);
    let lookup = lookup_in(|s| tx.get(s));
    tx.scan(from, None, |row| {
        advance(state, &row, &lookup)?;
        Ok(true)
    })
}

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attest(name: String) -> Event {
        Event::Attest(crate::event::Attest {
            file_name: name,
            sha256: "cd".repeat(32),
            size: 1,
            note: "n".into(),
        })
    }

    /// Another writer that appends between two of a batch's commits stops
    /// the batch there: the batch's committed entries stay, nothing of it
    /// follows the other writer's entry, and the state is the store's.
    #[test]
    fn a_batch_stops_when_another_writer_appends_between_its_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let admin = SigningKey::from_bytes(&[1; 32]);
        let mut ledger = Ledger::init(&path, "test.example.org/l", &admin, "admin", 1).unwrap();
        let other_path = path.clone();
        let other_key = admin.clone();
        crate::store::BETWEEN_COMMITS.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move || {
                let mut other = Ledger::open(&other_path).unwrap();
                other
                    .append(AppendRequest {
                        event: attest("other".into()),
                        idempotency_key: None,
                        signers: &[&other_key],
                        now_unix_ms: 2,
                    })
                    .unwrap();
            }));
        });
        let events = (0..3 * BATCH_COMMIT_ENTRIES)
            .map(|i| (attest(format!("batch-{i}")), None))
            .collect();
        let err = ledger.append_batch(events, &[&admin], 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{}", err.message());
        let last = BATCH_COMMIT_ENTRIES as u64 + 1;
        assert_eq!(
            err.message(),
            format!("another writer appended to the ledger during the batch (the batch stopped; the ledger's last entry is now {last})")
        );
        // Genesis, the batch's first commit, the other writer's entry.
        assert_eq!(ledger.store().count().unwrap(), last + 1);
        assert_eq!(ledger.state().last_seq, Some(last));
        let row = ledger.store().get(last).unwrap().unwrap();
        let (_, body) = decode_row(&row).unwrap();
        assert_eq!(body.event, attest("other".into()));
        // The ledger goes on from the other writer's entry.
        let done = ledger
            .append_batch(vec![(attest("after".into()), None)], &[&admin], 3)
            .unwrap();
        assert_eq!(done[0].seq(), last + 1);
        drop(ledger);
        let store = crate::store::Store::open_read_only(&path).unwrap();
        let report = crate::verify::verify(&store, &mut |_, _| {}).unwrap();
        assert!(report.is_intact(), "{report:?}");
    }

    fn hashes(job: u64, n: usize) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| crate::merkle::leaf_hash(format!("{job}/{i}").as_bytes()))
            .collect()
    }

    /// Every queued group comes back signed by every signer, in the order
    /// of its hashes, whether a signing thread or the waiting thread
    /// signed it, and whatever order the groups are waited for in.
    #[test]
    fn sign_queue_signs_every_group_on_either_thread() {
        let keys = [
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        ];
        let signers: Vec<&SigningKey> = keys.iter().collect();
        let check = |job: u64, signed: Vec<Vec<EntrySignature>>| {
            let expected = hashes(job, 5 + job as usize);
            assert_eq!(signed.len(), expected.len());
            for (hash, sigs) in expected.iter().zip(&signed) {
                assert_eq!(sigs.len(), 2);
                for (sig, key) in sigs.iter().zip(&keys) {
                    assert_eq!(sig.key_id, key_id(&key.verifying_key()));
                    assert!(entry::verify_signature(&key.verifying_key(), hash, sig));
                }
            }
        };
        // No signing thread: the waiting thread signs every queued group,
        // the one it waits for and those before it.
        let queue = SignQueue::default();
        let jobs: Vec<u64> = (0..4)
            .map(|j| queue.push(hashes(j, 5 + j as usize)))
            .collect();
        assert_eq!(jobs, vec![0, 1, 2, 3]);
        check(2, queue.wait_for(2, &signers).unwrap());
        check(0, queue.wait_for(0, &signers).unwrap());
        check(3, queue.wait_for(3, &signers).unwrap());
        check(1, queue.wait_for(1, &signers).unwrap());
        // With a signing thread racing the waiting one.
        let queue = SignQueue::default();
        std::thread::scope(|scope| {
            scope.spawn(|| queue.work(&signers));
            let _close = CloseOnDrop(&queue);
            let jobs: Vec<u64> = (0..8)
                .map(|j| queue.push(hashes(j, 5 + j as usize)))
                .collect();
            for job in jobs {
                check(job, queue.wait_for(job, &signers).unwrap());
            }
        });
    }
}
