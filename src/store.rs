//! The SQLite store: the only module that touches SQLite.
//!
//! It owns the connection, the pragmas, the numbered migrations in
//! schema/migrations (embedded at build time and tracked in
//! `PRAGMA user_version` and the `fundledger_migrations` table), and the
//! rows of the `entries` table. It knows nothing of entry formats: it stores
//! the columns it is given and hands back the columns it finds, for the
//! ledger and verify modules to check. Every statement is parameterized.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::state::Piece;

/// `PRAGMA application_id` of every fundledger ledger: "FLDG".
pub const APPLICATION_ID: i32 = 0x464C_4447;

/// How long a writer waits for another process's append to finish.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The shipped migrations, in order. Migration N sets user_version to N.
/// An applied migration is never edited: add a new one.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_entries",
        include_str!("../schema/migrations/0001_entries.sql"),
    ),
    (
        "0002_merkle",
        include_str!("../schema/migrations/0002_merkle.sql"),
    ),
    (
        "0003_state_snapshot",
        include_str!("../schema/migrations/0003_state_snapshot.sql"),
    ),
    (
        "0004_entries_hash_unindexed",
        include_str!("../schema/migrations/0004_entries_hash_unindexed.sql"),
    ),
    (
        "0005_state_snapshot_pieces",
        include_str!("../schema/migrations/0005_state_snapshot_pieces.sql"),
    ),
];

/// The bookkeeping table for migrations, created before migration 1.
const MIGRATIONS_TABLE: &str = "
CREATE TABLE fundledger_migrations (
    version INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    sha256  TEXT NOT NULL
) STRICT;
CREATE TRIGGER fundledger_migrations_no_update BEFORE UPDATE ON fundledger_migrations
BEGIN SELECT RAISE(ABORT, 'fundledger: migrations are never rewritten'); END;
CREATE TRIGGER fundledger_migrations_no_delete BEFORE DELETE ON fundledger_migrations
BEGIN SELECT RAISE(ABORT, 'fundledger: migrations are never rewritten'); END;
";

/// SHA-256 (hex) of a migration's SQL text.
pub fn migration_checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// One row of the `entries` table, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    pub seq: i64,
    pub entry_hash: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub recorded_at_unix_ms: i64,
    pub kind: String,
    pub idempotency_key: Option<String>,
    pub record: Vec<u8>,
}

/// A row to insert, borrowed from the entry it stores (nothing is
/// copied to insert it).
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    pub seq: u64,
    pub entry_hash: &'a [u8; 32],
    pub prev_hash: &'a [u8; 32],
    pub recorded_at_unix_ms: i64,
    pub kind: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub record: &'a [u8],
}

/// One checkpoint of the history, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCheckpoint {
    pub tree_size: u64,
    /// The signed note (C2SP), with any witness cosignatures.
    pub note: String,
    pub recorded_at_unix_ms: i64,
}

/// The last entry of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub entry_hash: [u8; 32],
    pub recorded_at_unix_ms: i64,
}

/// The stored state snapshot: derived data, trusted by nothing until it
/// is checked (open compares `entry_hash` with the entry at `seq`; verify
/// recomputes `state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The entry after which `state` is the ledger's state.
    pub seq: u64,
    /// That entry's hash.
    pub entry_hash: [u8; 32],
    /// The encoded state (`State::encode_snapshot`): its stored pieces
    /// concatenated, or what is wrong with them (a piece missing, or
    /// whose bytes do not hash to its name).
    pub state: std::result::Result<Vec<u8>, String>,
    /// The stored pieces' names and lengths, in order (empty when the
    /// state is damaged): `state` is their concatenation.
    pub pieces: Vec<([u8; 32], usize)>,
}

/// An open ledger database.
pub struct Store {
    /// Declared first so that it is dropped (its thread joined) before the
    /// connection closes.
    writeback: Option<Writeback>,
    conn: Connection,
    path: PathBuf,
}

/// WAL pages a writer connection checkpoints by itself once a background
/// [`Writeback`] runs (SQLite's default is 1000). A fallback only: the
/// background checkpoints keep the WAL far below it.
const WAL_AUTOCHECKPOINT_WITH_WRITEBACK: i64 = 32_768;

enum WritebackJob {
    /// Write the WAL's dirty pages to disk now, so that the commit's own
    /// fsync finds little left to write.
    SyncWal,
    /// Copy committed WAL frames into the database file (a PASSIVE
    /// checkpoint: it never blocks the writer).
    Checkpoint,
}

/// A background thread that takes the bulk of a large commit's disk
/// writes off the writer's path: it flushes the WAL ahead of the commit
/// (an extra fsync never weakens durability; the commit still syncs) and
/// checkpoints after it, on its own connection, while the writer goes on.
/// Best effort: a failure here costs time, never data.
struct Writeback {
    jobs: Option<std::sync::mpsc::Sender<WritebackJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writeback {
    fn start(path: &Path) -> Writeback {
        let (jobs, queue) = std::sync::mpsc::channel::<WritebackJob>();
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("fundledger-writeback".into())
            .spawn(move || {
                let wal_path = wal_path(&path);
                let mut conn: Option<Connection> = None;
                while let Ok(first) = queue.recv() {
                    // Coalesce what queued up meanwhile.
                    let (mut sync, mut checkpoint) = (false, false);
                    for job in std::iter::once(first).chain(queue.try_iter()) {
                        match job {
                            WritebackJob::SyncWal => sync = true,
                            WritebackJob::Checkpoint => checkpoint = true,
                        }
                    }
                    if checkpoint {
                        if conn.is_none() {
                            conn = Connection::open_with_flags(
                                &path,
                                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                            )
                            .ok();
                        }
                        if let Some(c) = &conn {
                            let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                        }
                    } else if sync {
                        if let Ok(wal) = fs::File::open(&wal_path) {
                            let _ = wal.sync_data();
                        }
                    }
                }
            })
            .ok();
        Writeback {
            jobs: thread.as_ref().map(|_| jobs),
            thread,
        }
    }

    fn send(&self, job: WritebackJob) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        // Closing the queue ends the thread after its current job.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn not_a_ledger(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::NotALedger,
        format!("{} is not a fundledger ledger ({why})", path.display()),
    )
    .with_hint("check --ledger PATH or FUNDLEDGER_LEDGER; create a ledger with `fundledger init`")
}

fn set_pragmas(conn: &Connection, read_only: bool) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Chosen explicitly, never left to defaults: WAL so readers never block
    // the writer, FULL so a committed append survives power loss, foreign
    // keys on, and a schema that cannot call untrusted functions.
    if !read_only {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::new(
                ErrorKind::Store,
                format!("cannot switch the ledger to WAL mode (got {mode})"),
            ));
        }
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;",
    )?;
    Ok(())
}

impl Store {
    /// Create a new, empty ledger database at `path`. Refuses an existing file.
    pub fn create(path: &Path) -> Result<Store> {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::input(format!("{} already exists", path.display()))
                        .with_hint("a ledger is never overwritten; choose another --ledger path")
                } else {
                    Error::io(format!("cannot create {}", path.display()), e)
                }
            })?;
        let result = (|| {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
            set_pragmas(&conn, false)?;
            conn.execute_batch(MIGRATIONS_TABLE)?;
            let mut store = Store {
                writeback: None,
                conn,
                path: path.to_path_buf(),
            };
            store.migrate()?;
            Ok(store)
        })();
        if result.is_err() {
            let _ = fs::remove_file(path);
        }
        result
    }

    /// Open an existing ledger for reading and appending, applying any
    /// migrations it lacks. Nothing is written to a file that is not a ledger.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, false)
    }

    /// Open an existing ledger read-only (verify, log, show, queries).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        Store::open_with(path, true)
    }

    fn open_with(path: &Path, read_only: bool) -> Result<Store> {
        match fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(not_a_ledger(path, "it is not a file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::input(format!("no ledger at {}", path.display()))
                    .with_hint("pass --ledger PATH (or set FUNDLEDGER_LEDGER), or create one with `fundledger init`"));
            }
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags).map_err(|e| not_a_ledger(path, e))?;
        // Read before writing anything: a file that is not ours stays untouched.
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| not_a_ledger(path, e))?;
        if app_id != APPLICATION_ID {
            return Err(not_a_ledger(
                path,
                format!("application_id is {app_id:#x}, expected {APPLICATION_ID:#x}"),
            ));
        }
        set_pragmas(&conn, read_only)?;
        let mut store = Store {
            writeback: None,
            conn,
            path: path.to_path_buf(),
        };
        if read_only {
            if store.check_migrations()? < MIGRATIONS.len() {
                return Err(Error::new(
                    ErrorKind::NotALedger,
                    format!("{} uses an older schema that must be upgraded first", path.display()),
                )
                .with_hint("run a writing command once (for example `fundledger checkpoint`) to upgrade it"));
            }
        } else {
            store.migrate()?;
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn user_version(&self) -> Result<usize> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(v.max(0) as usize)
    }

    /// Check that every applied migration is one this build ships, unedited.
    /// Returns how many are applied.
    fn check_migrations(&self) -> Result<usize> {
        let applied = self.user_version()?;
        if applied > MIGRATIONS.len() {
            return Err(Error::new(
                ErrorKind::NotALedger,
                format!(
                    "{} has schema version {applied}, newer than this fundledger knows ({})",
                    self.path.display(),
                    MIGRATIONS.len()
                ),
            )
            .with_hint("upgrade fundledger"));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT version, name, sha256 FROM fundledger_migrations ORDER BY version")
            .map_err(|e| not_a_ledger(&self.path, e))?;
        let rows: Vec<(i64, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for version in 1..=applied {
            let (name, sql) = MIGRATIONS[version - 1];
            match rows.iter().find(|r| r.0 == version as i64) {
                None => {
                    return Err(Error::new(
                        ErrorKind::NotALedger,
                        format!(
                        "applied migration {name} is missing from the ledger's migration history"
                    ),
                    ))
                }
                Some((_, found_name, sum)) => {
                    if found_name != name || *sum != migration_checksum(sql) {
                        return Err(Error::new(
                            ErrorKind::NotALedger,
                            format!(
                                "applied migration {version} ({found_name}) does not match the shipped {name}: it was edited"
                            ),
                        ));
                    }
                }
            }
        }
        if rows.len() != applied {
            return Err(Error::new(
                ErrorKind::NotALedger,
                format!(
                    "migration history lists {} migrations but user_version is {applied}",
                    rows.len()
                ),
            ));
        }
        Ok(applied)
    }

    fn migrate(&mut self) -> Result<()> {
        let applied = self.check_migrations()?;
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
            let version = index + 1;
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Another process may have migrated while we waited for the lock.
            let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if now as usize >= version {
                continue;
            }
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO fundledger_migrations (version, name, sha256) VALUES (?1, ?2, ?3)",
                params![version as i64, name, migration_checksum(sql)],
            )?;
            tx.pragma_update(None, "user_version", version as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The last entry, if any.
    pub fn head(&self) -> Result<Option<Head>> {
        head(&self.conn)
    }

    /// Number of entries: one more than the highest sequence number, read
    /// from the primary key in O(log n) (a `count(*)` reads the whole
    /// table). Entries are contiguous from 0; verify checks that.
    pub fn count(&self) -> Result<u64> {
        let next: i64 =
            self.conn
                .query_row("SELECT coalesce(max(seq) + 1, 0) FROM entries", [], |r| {
                    r.get(0)
                })?;
        Ok(next.max(0) as u64)
    }

    /// One row by sequence number.
    pub fn get(&self, seq: u64) -> Result<Option<StoredRow>> {
        get_row(&self.conn, seq)
    }

    /// The row that carries an idempotency key, if any.
    pub fn find_idempotency_key(&self, key: &str) -> Result<Option<StoredRow>> {
        find_idempotency_key(&self.conn, key)
    }

    /// Call `f` for each row with `seq >= from` in sequence order, at most
    /// `limit` rows, streaming (bounded memory). `f` returns false to stop.
    pub fn scan(
        &self,
        from: u64,
        limit: Option<u64>,
        f: impl FnMut(StoredRow) -> Result<bool>,
    ) -> Result<()> {
        scan(&self.conn, from, limit, f)
    }

    /// The lowest sequence number whose row carries `key`. Verify uses it to
    /// check, entry by entry, that no idempotency key is used twice.
    pub fn first_seq_with_idempotency_key(&self, key: &str) -> Result<Option<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT min(seq) FROM entries WHERE idempotency_key = ?1")?;
        Ok(stmt.query_row(params![key], |r| r.get(0))?)
    }

    /// A stored perfect Merkle node, if present.
    pub fn merkle_node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>> {
        merkle_node(&self.conn, level, index)
    }

    /// Number of leaves in the stored Merkle tree.
    pub fn merkle_leaf_count(&self) -> Result<u64> {
        merkle_leaf_count(&self.conn)
    }

    /// The stored perfect nodes of one level with `lo <= index < hi`, in
    /// index order.
    pub fn merkle_nodes_in(&self, level: u32, lo: u64, hi: u64) -> Result<Vec<(u64, [u8; 32])>> {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx, hash FROM merkle_nodes WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
        )?;
        let mut rows = stmt.query(params![level as i64, clamp(lo), clamp(hi)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let index: i64 = row.get(0)?;
            let hash = row
                .get_ref(1)?
                .as_blob()
                .ok()
                .and_then(|blob| <[u8; 32]>::try_from(blob).ok())
                .ok_or_else(|| {
                    Error::new(ErrorKind::Store, "a stored Merkle node is not 32 bytes")
                })?;
            out.push((index as u64, hash));
        }
        Ok(out)
    }

    /// Read everything that follows from one snapshot of the database
    /// (a read transaction) until the guard is dropped, even while other
    /// processes append.
    pub fn read_transaction(&self) -> Result<ReadTransaction<'_>> {
        ReadTransaction::begin(&self.conn)
    }

    /// Number of stored Merkle nodes at every level.
    pub fn merkle_node_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM merkle_nodes", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The checkpoint history, oldest first: (tree size, signed note).
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
        Ok(self
            .checkpoint_records()?
            .into_iter()
            .map(|c| (c.tree_size, c.note))
            .collect())
    }

    /// The checkpoint history as stored, oldest first (an audit bundle
    /// carries it whole).
    pub fn checkpoint_records(&self) -> Result<Vec<RecordedCheckpoint>> {
        let mut stmt = self
            .conn
            .prepare("SELECT tree_size, note, recorded_at_unix_ms FROM checkpoints ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(RecordedCheckpoint {
                    tree_size: r.get::<_, i64>(0)? as u64,
                    note: r.get(1)?,
                    recorded_at_unix_ms: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Add a signed checkpoint to the history (append-only).
    pub fn record_checkpoint(
        &mut self,
        tree_size: u64,
        note: &str,
        now_unix_ms: i64,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO checkpoints (tree_size, note, recorded_at_unix_ms) VALUES (?1, ?2, ?3)",
            params![tree_size as i64, note, now_unix_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The state snapshot, if one is stored. A row that cannot be read as
    /// a snapshot (a negative seq, a hash of the wrong length) reads as
    /// none: the snapshot is derived data and the caller replays instead.
    pub fn snapshot(&self) -> Result<Option<StoredSnapshot>> {
        snapshot(&self.conn)
    }

    /// Whether a state snapshot row is stored (usable or not).
    pub fn has_snapshot(&self) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM state_snapshot WHERE id = 1")?
            .exists([])?)
    }

    /// Replace the state snapshot in its own IMMEDIATE transaction, its
    /// encoded state stored as one piece (appends store theirs in many:
    /// [`AppendTx::write_snapshot_pieces`]).
    pub fn write_snapshot(&mut self, seq: u64, entry_hash: &[u8; 32], state: &[u8]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_snapshot_pieces(&tx, seq, entry_hash, |sink| match state.is_empty() {
            true => Ok(()),
            false => sink(Piece::Bytes(state)).map(drop),
        })?;
        tx.commit()?;
        Ok(())
    }

    /// Begin an append: an IMMEDIATE transaction, so that concurrent
    /// writers (other processes too) queue up and the chain stays linear.
    /// For bulk appends: move the WAL's disk writes and checkpoints to a
    /// background thread from now on (see `Writeback`). Idempotent.
    /// (A 16 MiB page cache for bulk appends, instead of SQLite's 2 MB,
    /// gained nothing once the snapshot was stored in pieces: 23,509 and
    /// 23,658/s against 23,793 and 23,295/s at a million entries, runs
    /// alternated, for 15 MiB more memory.)
    pub fn start_writeback(&mut self) -> Result<()> {
        if self.writeback.is_none() {
            self.conn.pragma_update(
                None,
                "wal_autocheckpoint",
                WAL_AUTOCHECKPOINT_WITH_WRITEBACK,
            )?;
            self.writeback = Some(Writeback::start(&self.path));
        }
        Ok(())
    }

    pub fn begin_append(&mut self) -> Result<AppendTx<'_>> {
        // Every commit of this transaction syncs the WAL. Said again on
        // every append (one PRAGMA statement) rather than trusted to have
        // been restored after a batch transaction.
        self.conn.execute_batch("PRAGMA synchronous = FULL")?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(AppendTx {
            tx,
            writeback: self.writeback.as_ref(),
            batch_wal: None,
        })
    }

    /// Begin a batch append: as [`Store::begin_append`], but the commits
    /// that [`AppendTx::commit_and_continue`] makes inside the batch do not
    /// wait for the disk (`synchronous = NORMAL`: SQLite keeps the ledger
    /// consistent; a power loss may lose the latest of those commits,
    /// never corrupt the chain). [`AppendTx::commit`] then syncs the WAL
    /// (and its directory) before it returns, which makes every commit of
    /// the batch durable, as dropping the transaction does (best effort);
    /// both set `synchronous = FULL` again. Measured (strace, 60,000
    /// entries): the appending thread waited 0.18 s in fsync, about 8% of
    /// the build, with a core idle, and now 0.03 s; 200,000-entry builds,
    /// eleven alternated pairs: 34,005 against 34,894 entries/s on average
    /// (+2.6%, seven pairs faster; a first prototype gained 8.5% in five
    /// pairs while the disk was slower).
    pub fn begin_batch_append(&mut self) -> Result<AppendTx<'_>> {
        self.conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        // A shared borrow, so that a failed BEGIN can restore the setting.
        match rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate) {
            Ok(tx) => Ok(AppendTx {
                tx,
                writeback: self.writeback.as_ref(),
                batch_wal: Some(wal_path(&self.path)),
            }),
            Err(e) => {
                let _ = self.conn.execute_batch("PRAGMA synchronous = FULL");
                Err(e.into())
            }
        }
    }
}

/// A read transaction on a [`Store`]; ends when dropped.
pub struct ReadTransaction<'a> {
    conn: &'a Connection,
}

impl ReadTransaction<'_> {
    fn begin(conn: &Connection) -> Result<ReadTransaction<'_>> {
        conn.execute_batch("BEGIN DEFERRED")?;
        Ok(ReadTransaction { conn })
    }
}

impl Drop for ReadTransaction<'_> {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

/// An open append transaction. Dropping it without `commit` rolls back.
pub struct AppendTx<'a> {
    tx: rusqlite::Transaction<'a>,
    writeback: Option<&'a Writeback>,
    /// For a batch ([`Store::begin_batch_append`]): the WAL, which its
    /// commits leave unsynced until the end.
    batch_wal: Option<PathBuf>,
}

/// The ledger's write-ahead log, beside it.
fn wal_path(ledger: &Path) -> PathBuf {
    let mut wal = ledger.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Write the WAL to disk, and on Unix its directory (a WAL created since
/// the last sync needs its directory entry on disk too, which SQLite
/// itself syncs on Unix only).
fn sync_wal(wal: &Path) -> std::io::Result<()> {
    fs::File::open(wal)?.sync_all()?;
    #[cfg(unix)]
    {
        let dir = wal.parent().filter(|d| !d.as_os_str().is_empty());
        fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
    }
    Ok(())
}

impl Drop for AppendTx<'_> {
    fn drop(&mut self) {
        if let Some(wal) = &self.batch_wal {
            // Roll back what was not committed, make what was durable
            // (best effort: a commit reports its own failure), and have
            // the next transaction sync again.
            if !self.tx.is_autocommit() {
                let _ = self.tx.execute_batch("ROLLBACK");
            }
            let _ = sync_wal(wal);
            let _ = self.tx.execute_batch("PRAGMA synchronous = FULL");
        }
    }
}

impl AppendTx<'_> {
    pub fn head(&self) -> Result<Option<Head>> {
        head(&self.tx)
    }

    pub fn find_idempotency_key(&self, key: &str) -> Result<Option<StoredRow>> {
        find_idempotency_key(&self.tx, key)
    }

    pub fn get(&self, seq: u64) -> Result<Option<StoredRow>> {
        get_row(&self.tx, seq)
    }

    pub fn scan(
        &self,
        from: u64,
        limit: Option<u64>,
        f: impl FnMut(StoredRow) -> Result<bool>,
    ) -> Result<()> {
        scan(&self.tx, from, limit, f)
    }

    pub fn merkle_node(&self, level: u32, index: u64) -> Result<Option<[u8; 32]>> {
        merkle_node(&self.tx, level, index)
    }

    pub fn merkle_leaf_count(&self) -> Result<u64> {
        merkle_leaf_count(&self.tx)
    }

    /// The statements that store entries and their Merkle nodes, prepared
    /// once for as many rows as the caller stores.
    pub fn row_writer(&self) -> Result<RowWriter<'_>> {
        Ok(RowWriter {
            entry: self.tx.prepare_cached(
                "INSERT INTO entries (seq, entry_hash, prev_hash, recorded_at_unix_ms, kind, idempotency_key, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            node: self
                .tx
                .prepare_cached("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?,
        })
    }

    /// Replace the state snapshot inside this append transaction with
    /// the pieces `write` hands its sink, in order: the pieces not already
    /// stored are written, and those the previous snapshot named and this
    /// one does not are deleted. Either the whole snapshot is replaced, or
    /// (on any error) the previous one stays.
    pub fn write_snapshot_pieces(
        &self,
        seq: u64,
        entry_hash: &[u8; 32],
        write: impl FnOnce(&mut dyn FnMut(Piece<'_>) -> Result<Option<[u8; 32]>>) -> Result<()>,
    ) -> Result<()> {
        self.tx.execute_batch("SAVEPOINT snapshot")?;
        let written = write_snapshot_pieces(&self.tx, seq, entry_hash, write);
        if written.is_err() {
            self.tx.execute_batch("ROLLBACK TO snapshot")?;
        }
        self.tx.execute_batch("RELEASE snapshot")?;
        written
    }

    /// Commit (durably: the WAL is synced; for a batch, with every commit
    /// the batch made before). With a background writeback running, the
    /// checkpoint that follows runs there.
    pub fn commit(mut self) -> Result<()> {
        self.tx.execute_batch("COMMIT")?;
        if let Some(wal) = self.batch_wal.take() {
            let synced = sync_wal(&wal);
            // The next append says FULL again before it begins, should
            // this fail.
            let _ = self.tx.execute_batch("PRAGMA synchronous = FULL");
            synced.map_err(|e| {
                Error::new(
                    ErrorKind::Store,
                    format!(
                        "the batch is committed but its write-ahead log {} could not be written to disk: {e}",
                        wal.display()
                    ),
                )
                .with_hint("check the disk: the entries are in the ledger, but a power loss before the disk takes writes again could lose them")
            })?;
        }
        if let Some(w) = self.writeback {
            w.send(WritebackJob::Checkpoint);
        }
        Ok(())
    }

    /// Commit what this transaction holds and begin the next IMMEDIATE one
    /// at once, keeping this handle: batch append commits every
    /// [`crate::ledger::BATCH_COMMIT_ENTRIES`] entries while its signing
    /// pipeline runs on. The commit is durable as [`AppendTx::commit`]'s,
    /// except in a batch transaction, where it does not wait for the disk
    /// and the batch's last [`AppendTx::commit`] makes it durable. Another
    /// writer may take the lock between the two, so the caller checks the
    /// head it then finds. Refused when the transaction has already ended
    /// (SQLite rolls some failed transactions back by itself): nothing must
    /// be written outside a transaction.
    pub fn commit_and_continue(&self) -> Result<()> {
        self.check_open()?;
        self.tx.execute_batch("COMMIT")?;
        if let Some(w) = self.writeback {
            w.send(WritebackJob::Checkpoint);
        }
        #[cfg(test)]
        BETWEEN_COMMITS.with(|hook| {
            if let Some(hook) = hook.borrow_mut().take() {
                hook();
            }
        });
        self.tx.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// An error when the transaction has ended: SQLite rolls a transaction
    /// back by itself after some failures (a full disk, for one), and
    /// statements run after that would each commit on their own.
    pub fn check_open(&self) -> Result<()> {
        if self.tx.is_autocommit() {
            return Err(Error::new(
                ErrorKind::Store,
                "the append transaction ended unexpectedly (SQLite rolled it back)",
            ));
        }
        Ok(())
    }

    /// With a background writeback running, have it write the WAL's
    /// dirty pages to disk now (ahead of the commit's fsync).
    pub fn hint_sync_wal(&self) {
        if let Some(w) = self.writeback {
            w.send(WritebackJob::SyncWal);
        }
    }
}

/// Inserts rows and Merkle nodes inside an [`AppendTx`] with statements
/// prepared once ([`AppendTx::row_writer`]): looking a cached statement up
/// for every row and node cost batch append about 1.5% of its CPU.
pub struct RowWriter<'t> {
    entry: rusqlite::CachedStatement<'t>,
    node: rusqlite::CachedStatement<'t>,
}

impl RowWriter<'_> {
    /// Insert one row. The caller has derived every column from `record`.
    pub fn insert(&mut self, row: &NewRow<'_>) -> Result<()> {
        self.entry.execute(params![
            row.seq as i64,
            &row.entry_hash[..],
            &row.prev_hash[..],
            row.recorded_at_unix_ms,
            row.kind,
            row.idempotency_key,
            row.record
        ])?;
        Ok(())
    }

    /// Insert perfect Merkle nodes `(level, index, hash)`.
    pub fn insert_merkle_nodes(&mut self, nodes: &[(u32, u64, [u8; 32])]) -> Result<()> {
        for (level, index, hash) in nodes {
            self.node
                .execute(params![*level as i64, *index as i64, &hash[..]])?;
        }
        Ok(())
    }
}

#[cfg(test)]
thread_local! {
    /// Run once between the COMMIT and the BEGIN of the next
    /// [`AppendTx::commit_and_continue`] on this thread (tests only: another
    /// writer taking the lock there).
    pub(crate) static BETWEEN_COMMITS: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

const ROW_COLUMNS: &str =
    "seq, entry_hash, prev_hash, recorded_at_unix_ms, kind, idempotency_key, record";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        seq: r.get(0)?,
        entry_hash: r.get(1)?,
        prev_hash: r.get(2)?,
        recorded_at_unix_ms: r.get(3)?,
        kind: r.get(4)?,
        idempotency_key: r.get(5)?,
        record: r.get(6)?,
    })
}

fn head(conn: &Connection) -> Result<Option<Head>> {
    let row = conn
        .prepare_cached(
            "SELECT seq, entry_hash, recorded_at_unix_ms FROM entries ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some((seq, hash, at)) => {
            let entry_hash: [u8; 32] = hash.try_into().map_err(|_| {
                Error::new(
                    ErrorKind::Store,
                    "the head entry's stored hash is not 32 bytes",
                )
            })?;
            Ok(Some(Head {
                seq: seq as u64,
                entry_hash,
                recorded_at_unix_ms: at,
            }))
        }
    }
}

fn snapshot(conn: &Connection) -> Result<Option<StoredSnapshot>> {
    // The row and its pieces from one snapshot of the database, even
    // while another process replaces them.
    let _read = match conn.is_autocommit() {
        true => Some(ReadTransaction::begin(conn)?),
        false => None,
    };
    let row: Option<(i64, Vec<u8>, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, entry_hash, pieces FROM state_snapshot WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((seq, hash, pieces)) = row else {
        return Ok(None);
    };
    let (Ok(seq), Ok(entry_hash)) = (u64::try_from(seq), hash.try_into()) else {
        return Ok(None);
    };
    let names = pieces.chunks(32);
    let count = names.len();
    let mut state = Vec::new();
    let mut listed = Vec::with_capacity(count);
    let mut stmt =
        conn.prepare_cached("SELECT bytes FROM state_snapshot_pieces WHERE hash = ?1")?;
    for (i, name) in names.enumerate() {
        let piece: Option<Vec<u8>> = stmt.query_row([name], |r| r.get(0)).optional()?;
        let damage = match piece {
            None => "is missing",
            Some(bytes) if Sha256::digest(&bytes)[..] == *name => {
                state.extend_from_slice(&bytes);
                listed.push((name.try_into().expect("32 bytes"), bytes.len()));
                continue;
            }
            Some(_) => "does not hash to its name",
        };
        let state = Err(format!(
            "piece {} of {count} ({}) {damage}",
            i + 1,
            hex::encode(name)
        ));
        return Ok(Some(StoredSnapshot {
            seq,
            entry_hash,
            state,
            pieces: Vec::new(),
        }));
    }
    Ok(Some(StoredSnapshot {
        seq,
        entry_hash,
        state: Ok(state),
        pieces: listed,
    }))
}

fn write_snapshot_pieces(
    conn: &Connection,
    seq: u64,
    entry_hash: &[u8; 32],
    write: impl FnOnce(&mut dyn FnMut(Piece<'_>) -> Result<Option<[u8; 32]>>) -> Result<()>,
) -> Result<()> {
    let seq = i64::try_from(seq).map_err(|_| Error::input("sequence number too large"))?;
    let mut names = Vec::new();
    {
        let mut insert = conn.prepare_cached(
            "INSERT OR IGNORE INTO state_snapshot_pieces (hash, bytes) VALUES (?1, ?2)",
        )?;
        let mut held =
            conn.prepare_cached("SELECT 1 FROM state_snapshot_pieces WHERE hash = ?1")?;
        write(&mut |piece: Piece<'_>| {
            let name: [u8; 32] = match piece {
                Piece::Bytes(bytes) => {
                    let name: [u8; 32] = Sha256::digest(bytes).into();
                    insert.execute(params![&name[..], bytes])?;
                    name
                }
                Piece::Stored(name) if held.exists([&name[..]])? => *name,
                Piece::Stored(_) => return Ok(None),
            };
            names.extend_from_slice(&name);
            Ok(Some(name))
        })?;
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO state_snapshot (id, seq, entry_hash, pieces) VALUES (1, ?1, ?2, ?3)",
    )?
    .execute(params![seq, &entry_hash[..], names])?;
    // The pieces no longer named (a few per snapshot: the names are few).
    let named: std::collections::HashSet<&[u8]> = names.chunks(32).collect();
    let stored: Vec<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM state_snapshot_pieces")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = conn.prepare_cached("DELETE FROM state_snapshot_pieces WHERE hash = ?1")?;
    for name in stored.iter().filter(|n| !named.contains(&n[..])) {
        delete.execute([name])?;
    }
    Ok(())
}

fn merkle_node(conn: &Connection, level: u32, index: u64) -> Result<Option<[u8; 32]>> {
    let Ok(index) = i64::try_from(index) else {
        return Ok(None);
    };
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2")?;
    let hash: Option<Vec<u8>> = stmt
        .query_row(params![level as i64, index], |r| r.get(0))
        .optional()?;
    match hash {
        None => Ok(None),
        Some(h) => Ok(Some(h.try_into().map_err(|_| {
            Error::new(ErrorKind::Store, "a stored Merkle node is not 32 bytes")
        })?)),
    }
}

fn merkle_leaf_count(conn: &Connection) -> Result<u64> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(idx) FROM merkle_nodes WHERE level = 0")?
        .query_row([], |r| r.get(0))?;
    Ok(max.map_or(0, |m| m as u64 + 1))
}

fn get_row(conn: &Connection, seq: u64) -> Result<Option<StoredRow>> {
    let seq = i64::try_from(seq).map_err(|_| Error::input("sequence number too large"))?;
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM entries WHERE seq = ?1"))?;
    Ok(stmt.query_row(params![seq], read_row).optional()?)
}

fn find_idempotency_key(conn: &Connection, key: &str) -> Result<Option<StoredRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM entries WHERE idempotency_key = ?1"
    ))?;
    Ok(stmt.query_row(params![key], read_row).optional()?)
}

fn scan(
    conn: &Connection,
    from: u64,
    limit: Option<u64>,
    mut f: impl FnMut(StoredRow) -> Result<bool>,
) -> Result<()> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let limit = limit
        .map(|l| i64::try_from(l).unwrap_or(i64::MAX))
        .unwrap_or(-1);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM entries WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![from, limit])?;
    while let Some(row) = rows.next()? {
        if !f(read_row(row)?)? {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shipped migrations are never edited: pin their checksums.
    #[test]
    fn shipped_migration_checksums_are_pinned() {
        let sums: Vec<String> = MIGRATIONS
            .iter()
            .map(|(_, sql)| migration_checksum(sql))
            .collect();
        assert_eq!(
            sums,
            vec![
                "f0d18d72f48531119df07dbe925e56f2c6d692e47a90365fd44c71a4a3e1e3f0".to_string(),
                "b19b17601ad943aab220cfc250e7f8adb925fb271e7ddd3ac3cb141a7941bca3".to_string(),
                "70da8168d0bb67159fb838cc0c67b404946414d01372d28753e65bea60ba2f24".to_string(),
                "89925dd90566676e5922fdadc5c5167b4dc5bf9780048a2eb0f73c33428068f5".to_string(),
                "80df02762ef2268f736e151768d7f835ae27275179da16a9379fc4620b374052".to_string(),
            ],
            "a shipped migration changed; add a new migration instead of editing one"
        );
    }

    /// The background writeback starts once, raises the writer's own
    /// checkpoint threshold to the fallback, checkpoints after a commit on
    /// its own connection, and is joined when the store is dropped.
    #[test]
    fn writeback_checkpoints_in_the_background_and_ends_with_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let mut store = Store::create(&path).unwrap();
        store.start_writeback().unwrap();
        store.start_writeback().unwrap();
        let threshold: i64 = store
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(threshold, WAL_AUTOCHECKPOINT_WITH_WRITEBACK);
        let tx = store.begin_append().unwrap();
        tx.tx
            .execute_batch("CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(100000));")
            .unwrap();
        tx.hint_sync_wal();
        tx.commit().unwrap();
        // The writer's own threshold is far off, so only the writeback's
        // checkpoint copies the blob from the WAL into the database file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while fs::metadata(&path).unwrap().len() < 100_000 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(store);
        assert!(!dir.path().join("l.sqlite-wal").exists());
    }

    #[test]
    fn create_refuses_existing_file_and_open_refuses_non_ledgers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        Store::create(&path).unwrap();
        assert!(Store::create(&path).is_err());
        assert!(Store::open(&path).is_ok());

        let junk = dir.path().join("junk");
        fs::write(&junk, b"not a database at all, just text").unwrap();
        let before = fs::read(&junk).unwrap();
        let err = Store::open(&junk).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::NotALedger);
        assert_eq!(fs::read(&junk).unwrap(), before);

        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        assert_eq!(
            Store::open(&other).err().unwrap().kind(),
            ErrorKind::NotALedger
        );
        assert!(Store::open(&dir.path().join("missing")).is_err());
    }

    /// A ledger file as the first `version` migrations left it.
    fn file_at_version(path: &Path, version: usize) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute_batch(MIGRATIONS_TABLE).unwrap();
        for (index, (name, sql)) in MIGRATIONS.iter().take(version).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO fundledger_migrations (version, name, sha256) VALUES (?1, ?2, ?3)",
                params![index as i64 + 1, name, migration_checksum(sql)],
            )
            .unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn
    }

    #[test]
    fn migration_5_drops_the_snapshot_of_the_previous_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.sqlite");
        file_at_version(&path, 4)
            .execute(
                "INSERT INTO state_snapshot (id, seq, entry_hash, state) VALUES (1, 0, ?1, x'00000002')",
                [&[9u8; 32][..]],
            )
            .unwrap();
        assert_eq!(
            Store::open_read_only(&path).map(drop).unwrap_err().kind(),
            ErrorKind::NotALedger
        );
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.user_version().unwrap(), 5);
        assert!(!store.has_snapshot().unwrap());
        assert_eq!(store.snapshot().unwrap(), None);
        store.write_snapshot(0, &[9; 32], b"state").unwrap();
        assert_eq!(
            store.snapshot().unwrap().unwrap().state,
            Ok(b"state".to_vec())
        );
    }

    #[test]
    fn migration_4_keeps_every_row_and_drops_the_hash_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.sqlite");
        {
            // A ledger file as migration 3 left it, with three rows.
            let conn = file_at_version(&path, 3);
            for seq in 0..3i64 {
                conn.execute(
                    "INSERT INTO entries VALUES (?1, ?2, ?3, ?4, 'attest', ?5, ?6)",
                    params![
                        seq,
                        vec![seq as u8; 32],
                        vec![0u8; 32],
                        seq * 10,
                        (seq == 1).then_some("key-1"),
                        vec![seq as u8; 5]
                    ],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.user_version().unwrap(), MIGRATIONS.len());
        let mut rows = Vec::new();
        store
            .scan(0, None, |row| {
                rows.push(row);
                Ok(true)
            })
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].entry_hash, vec![2u8; 32]);
        assert_eq!(rows[2].record, vec![2u8; 5]);
        assert_eq!(store.find_idempotency_key("key-1").unwrap().unwrap().seq, 1);
        let indexes: Vec<String> = store
            .conn
            .prepare("SELECT name FROM pragma_index_list('entries')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            indexes.len(),
            1,
            "only the idempotency key index: {indexes:?}"
        );
        // The triggers came back with the table.
        assert!(store
            .conn
            .execute("DELETE FROM entries WHERE seq = 0", [])
            .is_err());
    }

    #[test]
    fn edited_or_missing_migration_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        drop(Store::create(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER fundledger_migrations_no_update;
             UPDATE fundledger_migrations SET sha256 = 'x' WHERE version = 1;",
        )
        .unwrap();
        drop(conn);
        let err = Store::open(&path).err().unwrap();
        assert!(err.message().contains("edited"), "{err}");

        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER fundledger_migrations_no_delete; DELETE FROM fundledger_migrations;",
        )
        .unwrap();
        drop(conn);
        let err = Store::open(&path).err().unwrap();
        assert!(err.message().contains("missing"), "{err}");

        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(&path).err().unwrap();
        assert!(err.message().contains("newer"), "{err}");
    }

    fn synchronous(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    fn row(seq: u64) -> NewRow<'static> {
        NewRow {
            seq,
            entry_hash: &[1; 32],
            prev_hash: &[0; 32],
            recorded_at_unix_ms: 0,
            kind: "genesis",
            idempotency_key: None,
            record: &[1, 2, 3],
        }
    }

    /// A batch's commits do not wait for the disk (NORMAL, 1); its last
    /// commit syncs, and every transaction after it is FULL (2) again.
    #[test]
    fn batch_commits_are_relaxed_and_the_next_append_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let mut store = Store::create(&path).unwrap();
        let tx = store.begin_batch_append().unwrap();
        assert_eq!(synchronous(&tx.tx), 1);
        tx.row_writer().unwrap().insert(&row(0)).unwrap();
        tx.commit_and_continue().unwrap();
        assert_eq!(synchronous(&tx.tx), 1);
        tx.row_writer().unwrap().insert(&row(1)).unwrap();
        tx.commit().unwrap();
        assert_eq!(synchronous(&store.conn), 2);
        assert_eq!(store.count().unwrap(), 2);
        let tx = store.begin_append().unwrap();
        assert_eq!(synchronous(&tx.tx), 2);
        drop(tx);
        // Said again before every append, whatever the connection was left at.
        store
            .conn
            .execute_batch("PRAGMA synchronous = OFF")
            .unwrap();
        let tx = store.begin_append().unwrap();
        assert_eq!(synchronous(&tx.tx), 2);
    }

    /// A batch dropped without its last commit keeps what it committed,
    /// rolls back the rest, and leaves the connection FULL.
    #[test]
    fn dropped_batch_keeps_its_commits_and_restores_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let mut store = Store::create(&path).unwrap();
        let tx = store.begin_batch_append().unwrap();
        tx.row_writer().unwrap().insert(&row(0)).unwrap();
        tx.commit_and_continue().unwrap();
        tx.row_writer().unwrap().insert(&row(1)).unwrap();
        drop(tx);
        assert_eq!(synchronous(&store.conn), 2);
        assert_eq!(store.count().unwrap(), 1);
        drop(store);
        assert_eq!(Store::open(&path).unwrap().count().unwrap(), 1);
    }

    #[test]
    fn triggers_refuse_update_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let mut store = Store::create(&path).unwrap();
        let tx = store.begin_append().unwrap();
        tx.row_writer().unwrap().insert(&row(0)).unwrap();
        tx.commit().unwrap();
        let conn = Connection::open(&path).unwrap();
        assert!(conn.execute("UPDATE entries SET kind = 'x'", []).is_err());
        assert!(conn.execute("DELETE FROM entries", []).is_err());
    }

    #[test]
    fn a_snapshot_in_pieces_replaces_the_row_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let mut store = Store::create(&path).unwrap();
        assert!(!store.has_snapshot().unwrap());
        let hand = |sink: &mut dyn FnMut(Piece<'_>) -> Result<Option<[u8; 32]>>,
                    pieces: &[&[u8]]| {
            for p in pieces {
                sink(Piece::Bytes(p))?;
            }
            Ok(())
        };
        let tx = store.begin_append().unwrap();
        tx.write_snapshot_pieces(3, &[1; 32], |sink| hand(sink, &[b"hel", b"lo"]))
            .unwrap();
        // A writer that fails after storing a piece leaves the previous
        // snapshot and its pieces.
        let failed = tx.write_snapshot_pieces(9, &[2; 32], |sink| {
            hand(sink, &[b"other"])?;
            Err(Error::format("cannot encode"))
        });
        assert!(failed.is_err());
        tx.commit().unwrap();
        let snapshot = store.snapshot().unwrap().unwrap();
        assert_eq!(
            (snapshot.seq, snapshot.entry_hash, snapshot.state),
            (3, [1; 32], Ok(b"hello".to_vec()))
        );
        assert!(store.has_snapshot().unwrap());

        // The next snapshot reuses a stored piece by name, is refused one
        // that is not stored, and the piece no longer named is deleted.
        let lo: [u8; 32] = Sha256::digest(b"lo").into();
        let tx = store.begin_append().unwrap();
        tx.write_snapshot_pieces(4, &[3; 32], |sink| {
            assert_eq!(sink(Piece::Stored(&[7; 32]))?, None);
            hand(sink, &[b"say "])?;
            assert_eq!(sink(Piece::Stored(&lo))?, Some(lo));
            Ok(())
        })
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(
            store.snapshot().unwrap().unwrap().state,
            Ok(b"say lo".to_vec())
        );
        let conn = Connection::open(&path).unwrap();
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM state_snapshot_pieces", [], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!(count(&conn), 2);

        // A piece whose bytes do not hash to its name, or a missing one,
        // makes the snapshot damaged, named by its position.
        conn.execute(
            "UPDATE state_snapshot_pieces SET bytes = x'00' WHERE hash = ?1",
            [&lo[..]],
        )
        .unwrap();
        let damage = store.snapshot().unwrap().unwrap().state.unwrap_err();
        assert!(
            damage.starts_with("piece 2 of 2 (") && damage.ends_with("does not hash to its name"),
            "{damage}"
        );
        conn.execute(
            "DELETE FROM state_snapshot_pieces WHERE hash = ?1",
            [&lo[..]],
        )
        .unwrap();
        let damage = store.snapshot().unwrap().unwrap().state.unwrap_err();
        assert!(damage.ends_with(") is missing"), "{damage}");
        assert_eq!(count(&conn), 1);

        // A snapshot of one piece, in its own transaction.
        store.write_snapshot(5, &[4; 32], b"whole").unwrap();
        assert_eq!(
            store.snapshot().unwrap().unwrap().state,
            Ok(b"whole".to_vec())
        );
        assert_eq!(count(&conn), 1);
    }
}
