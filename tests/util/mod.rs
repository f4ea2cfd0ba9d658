//! Shared helpers for fundledger's integration tests: a ledger in a
//! temporary directory, driven through the built binary.
//!
//! Every command runs the real `fundledger` executable (cargo builds it for
//! integration tests and names it in `CARGO_BIN_EXE_fundledger`), with the
//! `FUNDLEDGER_*` environment variables removed so that a developer's own
//! settings cannot leak into a test.

// Not every test binary that includes this module uses every helper.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rusqlite::Connection;
use serde_json::Value;

/// The origin every test ledger is created with.
pub const ORIGIN: &str = "ledger.example.org/integration-test";

/// The built binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fundledger")
}

/// A `Command` for the binary, with a clean environment for its settings.
pub fn command() -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_remove("FUNDLEDGER_LEDGER")
        .env_remove("FUNDLEDGER_KEY")
        .stdin(Stdio::null());
    cmd
}

/// Exit code, stdout and stderr of a finished command. A process killed by
/// a signal reports 128 + the signal number, as a shell would.
pub fn outcome(output: Output) -> (i32, String, String) {
    let code = match output.status.code() {
        Some(code) => code,
        None => {
            use std::os::unix::process::ExitStatusExt;
            128 + output.status.signal().unwrap_or(0)
        }
    };
    (
        code,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Run the binary with exactly `args` in directory `dir`.
pub fn run_raw<I, S>(dir: &Path, args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("cannot run the fundledger binary");
    outcome(output)
}

/// Build an argument list from anything path- or string-like.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        vec![$(::std::ffi::OsString::from($a)),*]
    };
}

/// A ledger with a genesis entry, in its own temporary directory, plus the
/// administrator key that created it.
pub struct TempLedger {
    pub dir: tempfile::TempDir,
    /// The ledger file.
    pub path: PathBuf,
    /// Directory holding the key files.
    pub keys: PathBuf,
    /// The founding administrator's private key.
    pub admin: PathBuf,
}

impl TempLedger {
    /// A fresh ledger whose genesis entry enrolls the key `admin`.
    pub fn new() -> TempLedger {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let keys = dir.path().join("keys");
        let path = dir.path().join("ledger.sqlite");
        let mut ledger = TempLedger {
            dir,
            path,
            admin: PathBuf::new(),
            keys,
        };
        ledger.admin = ledger.generate_key("admin").0;
        ledger.ok(Some(&ledger.admin), args!["init", "--origin", ORIGIN]);
        ledger
    }

    /// The temporary directory's path.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Generate `keys/NAME.key` and `keys/NAME.pub` with the binary.
    pub fn generate_key(&self, name: &str) -> (PathBuf, PathBuf) {
        let (code, out, err) = run_raw(
            self.root(),
            args!["key", "generate", name, "--dir", &self.keys],
        );
        assert_eq!(code, 0, "key generate {name} failed: {out}{err}");
        (
            self.keys.join(format!("{name}.key")),
            self.keys.join(format!("{name}.pub")),
        )
    }

    /// Generate a key and enroll it (signed by the administrator) with `role`.
    /// Returns the private key's path.
    pub fn enroll(&self, name: &str, role: &str) -> PathBuf {
        let (private, public) = self.generate_key(name);
        self.ok(
            Some(&self.admin),
            args!["key", "enroll", &public, "--role", role],
        );
        private
    }

    /// Run a command against `ledger` signed with `key` (if any).
    pub fn run_on(
        &self,
        ledger: &Path,
        key: Option<&Path>,
        args: Vec<OsString>,
    ) -> (i32, String, String) {
        let mut all: Vec<OsString> = vec!["--ledger".into(), ledger.into()];
        if let Some(key) = key {
            all.push("--key".into());
            all.push(key.into());
        }
        all.extend(args);
        run_raw(self.root(), all)
    }

    /// Run a command against this ledger signed with `key` (if any).
    pub fn run(&self, key: Option<&Path>, args: Vec<OsString>) -> (i32, String, String) {
        self.run_on(&self.path, key, args)
    }

    /// Run a command that must succeed; returns its stdout.
    pub fn ok(&self, key: Option<&Path>, args: Vec<OsString>) -> String {
        let shown = format!("{args:?}");
        let (code, out, err) = self.run(key, args);
        assert_eq!(code, 0, "{shown} failed with {code}:\n{out}\n{err}");
        out
    }

    /// Write a small file to attest and return its path.
    pub fn write_file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.root().join(name);
        std::fs::write(&path, contents).expect("cannot write a test file");
        path
    }

    /// `verify --json` on `ledger`: exit code and the parsed report.
    pub fn verify_json_on(&self, ledger: &Path) -> (i32, Value) {
        let (code, out, err) = self.run_on(ledger, None, args!["verify", "--json"]);
        let report: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {out}{err}"));
        (code, report)
    }

    /// `verify --json` on this ledger.
    pub fn verify_json(&self) -> (i32, Value) {
        self.verify_json_on(&self.path)
    }

    /// `log --json` on `ledger`: one JSON value per entry.
    pub fn log_on(&self, ledger: &Path) -> Vec<Value> {
        let (code, out, err) = self.run_on(ledger, None, args!["log", "--json"]);
        assert_eq!(code, 0, "log --json failed: {err}");
        out.lines()
            .map(|l| serde_json::from_str(l).expect("log --json printed a line that is not JSON"))
            .collect()
    }

    /// `log --json` on this ledger.
    pub fn log(&self) -> Vec<Value> {
        self.log_on(&self.path)
    }

    /// The ledger file's bytes after folding any write-ahead log into it.
    ///
    /// A fundledger ledger runs in WAL mode, so committed entries may sit in
    /// `ledger.sqlite-wal` rather than in the main file, and a read-only
    /// command (verify, log) leaves an empty `-wal`/`-shm` pair behind.
    /// Comparing raw main-file bytes alone could therefore miss a change
    /// that is still in the WAL. `PRAGMA wal_checkpoint(TRUNCATE)` copies
    /// every committed frame into the main file and empties the WAL; after
    /// it, the main file's bytes are the whole database, so two snapshots
    /// compare the complete committed content. A checkpoint of an already
    /// empty WAL writes nothing, so taking a snapshot does not itself change
    /// the bytes.
    pub fn bytes(&self) -> Vec<u8> {
        ledger_bytes(&self.path)
    }

    /// A copy of this ledger (checkpointed first) at `root/NAME`.
    pub fn copy_ledger(&self, name: &str) -> PathBuf {
        checkpoint(&self.path);
        let copy = self.root().join(name);
        std::fs::copy(&self.path, &copy).expect("cannot copy the ledger");
        copy
    }
}

impl Default for TempLedger {
    fn default() -> Self {
        TempLedger::new()
    }
}

/// Fold the WAL of the SQLite database at `path` into its main file.
pub fn checkpoint(path: &Path) {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .expect("cannot open the ledger with rusqlite");
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("wal_checkpoint failed");
    assert_eq!(busy, 0, "wal_checkpoint(TRUNCATE) could not complete");
}

/// See [`TempLedger::bytes`].
pub fn ledger_bytes(path: &Path) -> Vec<u8> {
    checkpoint(path);
    std::fs::read(path).expect("cannot read the ledger file")
}

/// Open a ledger with rusqlite for tampering, with the append-only
/// triggers dropped (those of `entries`, and of the Merkle tree and the
/// checkpoint history where the schema has them).
pub fn open_for_tampering(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("cannot open the ledger with rusqlite");
    conn.execute_batch(
        "DROP TRIGGER entries_no_update;
         DROP TRIGGER entries_no_delete;
         DROP TRIGGER IF EXISTS merkle_nodes_no_update;
         DROP TRIGGER IF EXISTS merkle_nodes_no_delete;
         DROP TRIGGER IF EXISTS checkpoints_no_update;
         DROP TRIGGER IF EXISTS checkpoints_no_delete;",
    )
    .expect("cannot drop the append-only triggers");
    conn
}

/// Assert a command failed the way every refused command must: exit code 2
/// and exactly one line on stderr starting with "fundledger: error:".
#[track_caller]
pub fn assert_refused(outcome: &(i32, String, String), what: &str) {
    let (code, out, err) = outcome;
    assert_eq!(
        *code, 2,
        "{what}: expected exit code 2, got {code}\nstdout: {out}\nstderr: {err}"
    );
    assert!(
        err.starts_with("fundledger: error:"),
        "{what}: stderr does not start with \"fundledger: error:\": {err:?}"
    );
    assert_eq!(
        err.trim_end_matches('\n').lines().count(),
        1,
        "{what}: stderr is not one line: {err:?}"
    );
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
}

/// A small deterministic pseudo-random generator (xorshift64*), seeded by
/// the caller, so that a failing run can be repeated.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A seed from the clock.
    pub fn seed_from_clock() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// The secret scalar of [`torsion_in_r_signature`]'s signer.
fn torsion_signer() -> curve25519_dalek::scalar::Scalar {
    curve25519_dalek::scalar::Scalar::from_bytes_mod_order([5; 32])
}

/// The raw public key of [`torsion_in_r_signature`]'s signer (canonical
/// and torsion-free, so enrollment accepts it).
pub fn torsion_signer_public() -> [u8; 32] {
    (torsion_signer() * curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .compress()
        .to_bytes()
}

/// A signature over `entry_hash` (schema/FORMAT.md section 2) by
/// [`torsion_signer_public`] whose R carries a point of order 8: the
/// cofactored equation (ZIP 215) holds, RFC 8032's strict rules refuse it.
/// Made from fixed scalars, so it never changes for the same hash.
pub fn torsion_in_r_signature(entry_hash: &[u8; 32]) -> [u8; 64] {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};
    let a = torsion_signer();
    let r = Scalar::from_bytes_mod_order([9; 32]);
    let r_bytes = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(r_bytes)
            .chain_update(torsion_signer_public())
            .chain_update(fundledger::entry::signed_message(entry_hash))
            .finalize()
            .into(),
    );
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r_bytes);
    signature[32..].copy_from_slice((r + k * a).as_bytes());
    signature
}
