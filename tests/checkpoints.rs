//! Integration tests for the Merkle checkpoint features (schema/PROOFS.md,
//! schema/FORMAT.md section 8): signed checkpoints, inclusion and
//! consistency proofs checked offline, `verify --checkpoint`, witnesses and
//! the stored Merkle tree. Every command runs the built binary in a
//! temporary directory; rusqlite tampers with copies of ledgers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use serde_json::Value;
use sha2::{Digest, Sha256};

use fundledger::event::{Attest, Event};
use fundledger::ledger::{AppendRequest, Ledger};

/// The origin of every ledger here (except the "other ledger" of test 3d).
const ORIGIN: &str = "ledger.example.org/checkpoint-test";
/// The recording time of the deterministic ledgers built with the library
/// (2023-11-14), so that two of them can share their first entries.
const T0: i64 = 1_700_000_000_000;

macro_rules! args {
    ($($a:expr),* $(,)?) => {
        vec![$(::std::ffi::OsString::from($a)),*]
    };
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Exit code, stdout and stderr of one run of the binary.
#[derive(Debug)]
struct Out {
    code: i32,
    out: String,
    err: String,
}

/// A temporary directory holding ledgers, keys and the files the commands
/// read and write.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("cannot create a temporary directory"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Run the binary with `args` (in the directory, with a clean
    /// environment for its settings).
    fn run(&self, args: Vec<OsString>) -> Out {
        let output = Command::new(env!("CARGO_BIN_EXE_fundledger"))
            .current_dir(self.tmp.path())
            .env_remove("FUNDLEDGER_LEDGER")
            .env_remove("FUNDLEDGER_KEY")
            .stdin(Stdio::null())
            .args(args)
            .output()
            .expect("cannot run the fundledger binary");
        Out {
            code: output.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&output.stdout).into_owned(),
            err: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Run a command on `ledger`, signed with `key` if given.
    fn on(&self, ledger: &Path, key: Option<&Path>, args: Vec<OsString>) -> Out {
        let mut all = args!["--ledger", ledger];
        if let Some(key) = key {
            all.extend(args!["--key", key]);
        }
        all.extend(args);
        self.run(all)
    }

    /// Like [`Dir::on`] but the command must exit 0; returns its stdout.
    #[track_caller]
    fn ok(&self, ledger: &Path, key: Option<&Path>, args: Vec<OsString>) -> String {
        let shown = format!("{args:?}");
        let o = self.on(ledger, key, args);
        assert_eq!(o.code, 0, "{shown} failed: {o:?}");
        o.out
    }

    /// `key generate NAME`: the private and public key paths.
    fn key(&self, name: &str) -> (PathBuf, PathBuf) {
        let keys = self.path("keys");
        let o = self.run(args!["key", "generate", name, "--dir", &keys]);
        assert_eq!(o.code, 0, "key generate {name}: {o:?}");
        (
            keys.join(format!("{name}.key")),
            keys.join(format!("{name}.pub")),
        )
    }

    /// `init` a ledger with ORIGIN whose administrator is `admin`.
    fn init(&self, name: &str, admin: &Path) -> PathBuf {
        let ledger = self.path(name);
        self.ok(&ledger, Some(admin), args!["init", "--origin", ORIGIN]);
        ledger
    }

    /// Append `attest` entries signed by `key` until `ledger` has `size`
    /// entries.
    fn attest_to(&self, ledger: &Path, key: &Path, size: u64) {
        let doc = self.path("minutes.pdf");
        std::fs::write(&doc, b"board minutes").unwrap();
        let mut seq = count(ledger);
        while seq < size {
            let out = self.ok(
                ledger,
                Some(key),
                args!["attest", "--file", &doc, "--note", format!("minutes {seq}")],
            );
            assert!(out.contains(&format!("appended entry {seq} ")), "{out}");
            seq += 1;
        }
    }

    /// `checkpoint --out NAME` signed by `key`; checks the size it reports.
    fn checkpoint(&self, ledger: &Path, key: &Path, name: &str, size: u64) -> PathBuf {
        let cp = self.path(name);
        let out = self.ok(ledger, Some(key), args!["checkpoint", "--out", &cp]);
        assert!(
            out.contains(&format!("signed checkpoint of tree size {size} ")),
            "{out}"
        );
        assert_eq!(checkpoint_size(&read(&cp)), size);
        cp
    }

    /// `prove inclusion SEQ [--size N] --json` written to a file.
    fn prove_inclusion(&self, ledger: &Path, seq: u64, size: Option<u64>) -> PathBuf {
        let mut args = args!["prove", "inclusion", seq.to_string(), "--json"];
        if let Some(size) = size {
            args.extend(args!["--size", size.to_string()]);
        }
        let text = self.ok(ledger, None, args);
        let tree = size.map_or("all".to_string(), |s| s.to_string());
        let stem = ledger.file_stem().unwrap().to_string_lossy();
        let path = self.path(&format!("{stem}-inclusion-{seq}-in-{tree}.json"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `prove consistency --old N --new M --json` written to a file.
    fn prove_consistency(&self, ledger: &Path, old: u64, new: u64) -> PathBuf {
        let text = self.ok(
            ledger,
            None,
            args![
                "prove",
                "consistency",
                "--old",
                old.to_string(),
                "--new",
                new.to_string(),
                "--json"
            ],
        );
        let stem = ledger.file_stem().unwrap().to_string_lossy();
        let path = self.path(&format!("{stem}-consistency-{old}-{new}.json"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `verify-proof` with the given trust arguments (`--trusted-key P` or
    /// `--vkey V` pairs), and `--old-checkpoint` when given.
    fn verify_proof(
        &self,
        proof: &Path,
        checkpoint: &Path,
        old: Option<&Path>,
        trust: Vec<OsString>,
    ) -> Out {
        let mut args = args!["verify-proof", "--proof", proof, "--checkpoint", checkpoint];
        if let Some(old) = old {
            args.extend(args!["--old-checkpoint", old]);
        }
        args.extend(trust);
        self.run(args)
    }

    /// `verify --json [--checkpoint CP] [extra]`: exit code and report.
    fn verify_json(
        &self,
        ledger: &Path,
        checkpoint: Option<&Path>,
        extra: Vec<OsString>,
    ) -> (i32, Value) {
        let mut args = args!["verify", "--json"];
        if let Some(cp) = checkpoint {
            args.extend(args!["--checkpoint", cp]);
        }
        args.extend(extra);
        let o = self.on(ledger, None, args);
        let report: Value = serde_json::from_str(&o.out)
            .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {o:?}"));
        assert_eq!(
            o.code,
            if report["status"] == "intact" { 0 } else { 1 },
            "{o:?}"
        );
        (o.code, report)
    }

    /// Write `value` as JSON to a new file NAME.
    fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
        path
    }

    /// Write `text` to a new file NAME.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A copy of `ledger` at NAME, its write-ahead log folded in first.
    fn copy_ledger(&self, ledger: &Path, name: &str) -> PathBuf {
        fold_wal(ledger);
        let copy = self.path(name);
        std::fs::copy(ledger, &copy).expect("cannot copy the ledger");
        copy
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).expect("not JSON")
}

/// The tree size line of a checkpoint note.
fn checkpoint_size(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// The root line (base64) of a checkpoint note.
fn checkpoint_root_line(note: &str) -> String {
    note.lines().nth(2).unwrap().to_string()
}

/// The number of entries, read with rusqlite.
fn count(ledger: &Path) -> u64 {
    let conn = Connection::open(ledger).unwrap();
    conn.query_row("SELECT count(*) FROM entries", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

/// Fold the SQLite write-ahead log of `ledger` into its main file, so that
/// a byte copy of the main file is the whole database.
fn fold_wal(ledger: &Path) {
    let conn = Connection::open(ledger).unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "wal_checkpoint(TRUNCATE) could not complete");
}

/// Open a ledger with rusqlite with every append-only trigger dropped.
fn open_for_tampering(ledger: &Path) -> Connection {
    let conn = Connection::open(ledger).unwrap();
    conn.execute_batch(
        "DROP TRIGGER entries_no_update;
         DROP TRIGGER entries_no_delete;
         DROP TRIGGER merkle_nodes_no_update;
         DROP TRIGGER merkle_nodes_no_delete;
         DROP TRIGGER checkpoints_no_update;
         DROP TRIGGER checkpoints_no_delete;",
    )
    .expect("cannot drop the append-only triggers");
    conn
}

/// Cut `ledger` down to its first `keep` entries, with the Merkle nodes
/// that cover a removed leaf: node (level, idx) covers leaves
/// [idx * 2^level, (idx + 1) * 2^level), so it goes when
/// (idx + 1) * 2^level > keep, i.e. idx >= floor(keep / 2^level).
/// Returns the number of entries removed.
fn truncate(conn: &Connection, keep: u64) -> usize {
    let removed = conn
        .execute("DELETE FROM entries WHERE seq >= ?1", [keep as i64])
        .unwrap();
    conn.execute(
        "DELETE FROM merkle_nodes WHERE ((idx + 1) << level) > ?1",
        [keep as i64],
    )
    .unwrap();
    removed
}

/// `hex` with one bit of byte `at` flipped.
fn flip_hex(hex_text: &str, at: usize) -> String {
    let mut bytes = hex::decode(hex_text).unwrap();
    bytes[at] ^= 0x01;
    hex::encode(bytes)
}

/// The raw 32-byte Ed25519 public key of a `.pub` file.
fn public_key_bytes(path: &Path) -> [u8; 32] {
    fundledger::keys::load_public_key(path).unwrap().to_bytes()
}

fn trusted(public: &Path) -> Vec<OsString> {
    args!["--trusted-key", public]
}

/// `verify-proof` exited 0 and printed what it verified.
#[track_caller]
fn assert_verified(o: &Out, detail: &str) {
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.out.trim_end(), format!("verified: {detail}"), "{o:?}");
}

/// A command exited 1 with a one-line error containing `phrase`.
#[track_caller]
fn assert_fails(o: &Out, phrase: &str, case: &str) {
    assert_eq!(o.code, 1, "{case}: {o:?}");
    assert!(
        o.err.starts_with("fundledger: error: ") && o.err.contains(phrase),
        "{case}: stderr lacks {phrase:?}: {o:?}"
    );
    assert_eq!(o.err.trim_end().lines().count(), 1, "{case}: {o:?}");
    assert!(o.out.is_empty(), "{case}: {o:?}");
}

/// Create a ledger with the library, with a genesis fixed by `T0`, so that
/// two ledgers made with the same key have the same genesis entry.
fn init_fixed(path: &Path, key: &Path) {
    let key = fundledger::keys::load_signing_key(key).unwrap();
    Ledger::init(path, ORIGIN, &key, "admin", T0).unwrap();
}

/// Append attest entries signed by `key` until `ledger` has `size` entries,
/// entry `seq` recorded at `T0 + seq` seconds with a note `TAG SEQ`: the
/// entries are a function of (seq, tag, key, previous entries) only.
fn append_fixed(ledger: &Path, key: &Path, size: u64, tag: &str) {
    let key = fundledger::keys::load_signing_key(key).unwrap();
    let mut l = Ledger::open(ledger).unwrap();
    loop {
        let seq = l.store().count().unwrap();
        if seq >= size {
            break;
        }
        let note = format!("{tag} {seq}");
        l.append(AppendRequest {
            event: Event::Attest(Attest {
                file_name: format!("{tag}-{seq}.pdf"),
                sha256: hex::encode(Sha256::digest(note.as_bytes())),
                size: note.len() as u64,
                note,
            }),
            idempotency_key: None,
            signers: &[&key],
            now_unix_ms: T0 + seq as i64 * 1000,
        })
        .unwrap();
    }
}

// ---------------------------------------------------------------------------
// 1. Round trip
// ---------------------------------------------------------------------------

/// A ledger of 22 entries (genesis, an auditor's enrollment, 20
/// attestations) with auditor-signed checkpoints at 12 and 22 entries.
struct RoundTrip {
    dir: Dir,
    ledger: PathBuf,
    admin_pub: PathBuf,
    auditor_pub: PathBuf,
    cp12: PathBuf,
    cp22: PathBuf,
}

fn round_trip_ledger() -> RoundTrip {
    let dir = Dir::new();
    let (admin, admin_pub) = dir.key("admin");
    let (auditor, auditor_pub) = dir.key("auditor");
    let ledger = dir.init("ledger.sqlite", &admin);
    let out = dir.ok(
        &ledger,
        Some(&admin),
        args!["key", "enroll", &auditor_pub, "--role", "auditor"],
    );
    assert!(out.contains("appended entry 1 (key.enroll)"), "{out}");
    dir.attest_to(&ledger, &admin, 12);
    let cp12 = dir.checkpoint(&ledger, &auditor, "cp12.txt", 12);
    dir.attest_to(&ledger, &admin, 22);
    let cp22 = dir.checkpoint(&ledger, &auditor, "cp22.txt", 22);
    RoundTrip {
        dir,
        ledger,
        admin_pub,
        auditor_pub,
        cp12,
        cp22,
    }
}

#[test]
fn proofs_round_trip_against_auditor_signed_checkpoints() {
    let RoundTrip {
        dir,
        ledger,
        admin_pub,
        auditor_pub,
        cp12,
        cp22,
    } = round_trip_ledger();
    let note = read(&cp22);
    assert!(note.starts_with(&format!("{ORIGIN}\n22\n")), "{note}");
    assert!(note.contains(&format!("\n\n\u{2014} {ORIGIN} ")), "{note}");

    let vkey = fundledger::note::verifier_key_string(ORIGIN, &public_key_bytes(&auditor_pub));
    let trusts = [trusted(&auditor_pub), args!["--vkey", &vkey]];

    // Inclusion, in the older tree (--size) and in the whole tree.
    for (size, cp, seqs) in [
        (Some(12), &cp12, &[0u64, 1, 5, 10, 11][..]),
        (None, &cp22, &[0u64, 1, 7, 12, 16, 20, 21][..]),
    ] {
        let tree = size.unwrap_or(22);
        for &seq in seqs {
            let proof = dir.prove_inclusion(&ledger, seq, size);
            let p = read_json(&proof);
            assert_eq!(p["type"], "inclusion");
            assert_eq!(p["origin"], ORIGIN);
            assert_eq!(p["leaf_index"], seq);
            assert_eq!(p["tree_size"], tree);
            for trust in &trusts {
                let o = dir.verify_proof(&proof, cp, None, trust.clone());
                assert_verified(
                    &o,
                    &format!("entry {seq} is included in the signed tree of size {tree}"),
                );
            }
        }
    }
    // The --json verdict.
    let proof = dir.prove_inclusion(&ledger, 3, None);
    let mut args = trusted(&auditor_pub);
    args.push("--json".into());
    let o = dir.verify_proof(&proof, &cp22, None, args);
    assert_eq!(o.code, 0, "{o:?}");
    let verdict: Value = serde_json::from_str(&o.out).unwrap();
    assert_eq!(verdict["format_version"], 1, "{verdict}");
    assert_eq!(verdict["status"], "verified", "{verdict}");
    assert_eq!(verdict["origin"], ORIGIN, "{verdict}");
    assert_eq!(verdict["type"], "inclusion", "{verdict}");

    // Consistency between the two signed checkpoints.
    let proof = dir.prove_consistency(&ledger, 12, 22);
    let p = read_json(&proof);
    assert_eq!(p["type"], "consistency");
    assert_eq!(p["old_size"], 12);
    assert_eq!(p["new_size"], 22);
    assert!(!p["proof"].as_array().unwrap().is_empty());
    for trust in &trusts {
        let o = dir.verify_proof(&proof, &cp22, Some(&cp12), trust.clone());
        assert_verified(
            &o,
            "the tree of size 22 extends the tree of size 12 (nothing rewritten)",
        );
    }
    // Between equal sizes the proof is empty and still verifies.
    let proof = dir.prove_consistency(&ledger, 22, 22);
    assert_eq!(read_json(&proof)["proof"], Value::Array(vec![]));
    let o = dir.verify_proof(&proof, &cp22, Some(&cp22), trusted(&auditor_pub));
    assert_verified(
        &o,
        "the tree of size 22 extends the tree of size 22 (nothing rewritten)",
    );

    // The ledger's history holds both checkpoints, and verify re-checks
    // them; the auditor's checkpoints are trusted without --trusted-key.
    let (code, report) = dir.verify_json(&ledger, Some(&cp12), vec![]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checkpoints_verified"], 2, "{report}");
    assert_eq!(report["checkpoint"]["status"], "extends", "{report}");
    assert_eq!(report["checkpoint"]["tree_size"], 12, "{report}");
    // verify's recomputed root is the signed one.
    let root = hex::decode(report["root_hash"].as_str().unwrap()).unwrap();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(root),
        checkpoint_root_line(&read(&cp22))
    );
    // The administrator did not sign: its key alone verifies nothing.
    let proof = dir.prove_inclusion(&ledger, 5, None);
    let o = dir.verify_proof(&proof, &cp22, None, trusted(&admin_pub));
    assert_fails(&o, "does not verify with a trusted key", "admin key");
}

// ---------------------------------------------------------------------------
// 2. Forged proofs
// ---------------------------------------------------------------------------

#[test]
fn forged_proofs_and_checkpoints_fail() {
    let RoundTrip {
        dir,
        ledger,
        auditor_pub,
        cp12,
        cp22,
        ..
    } = round_trip_ledger();
    let trust = || trusted(&auditor_pub);
    let inclusion = read_json(&dir.prove_inclusion(&ledger, 5, None));
    let consistency = read_json(&dir.prove_consistency(&ledger, 12, 22));
    // The genuine ones verify (so each failure below is the forgery's).
    let good = dir.write_json("good-inclusion.json", &inclusion);
    assert_eq!(dir.verify_proof(&good, &cp22, None, trust()).code, 0);
    let good_c = dir.write_json("good-consistency.json", &consistency);
    assert_eq!(
        dir.verify_proof(&good_c, &cp22, Some(&cp12), trust()).code,
        0
    );

    let forged_inclusion = |case: &str, edit: &dyn Fn(&mut Value), phrase: &str| {
        let mut p = inclusion.clone();
        edit(&mut p);
        let path = dir.write_json(&format!("{case}.json"), &p);
        let o = dir.verify_proof(&path, &cp22, None, trust());
        assert_fails(&o, phrase, case);
    };
    let no_inclusion = "inclusion proof does not verify";
    for i in 0..inclusion["proof"].as_array().unwrap().len() {
        forged_inclusion(
            &format!("proof-hash-{i}"),
            &|p| {
                let h = p["proof"][i].as_str().unwrap().to_string();
                p["proof"][i] = flip_hex(&h, 17).into();
            },
            no_inclusion,
        );
    }
    forged_inclusion(
        "record-byte",
        &|p| {
            let r = p["record"].as_str().unwrap().to_string();
            p["record"] = flip_hex(&r, 120).into();
        },
        no_inclusion,
    );
    // The record of entry 6 with the path of entry 5.
    let record6 = read_json(&dir.prove_inclusion(&ledger, 6, None))["record"].clone();
    forged_inclusion(
        "other-record",
        &|p| p["record"] = record6.clone(),
        no_inclusion,
    );
    for index in [4u64, 6, 13] {
        forged_inclusion(
            &format!("leaf-index-{index}"),
            &|p| p["leaf_index"] = index.into(),
            no_inclusion,
        );
    }
    forged_inclusion(
        "leaf-index-past-the-end",
        &|p| p["leaf_index"] = 22.into(),
        no_inclusion,
    );
    forged_inclusion(
        "dropped-proof-hash",
        &|p| {
            p["proof"].as_array_mut().unwrap().pop();
        },
        no_inclusion,
    );
    // The stated roots are ignored in favour of the signed one: a proof
    // claiming another root_hash still verifies only against the signature.
    let mut p = inclusion.clone();
    p["root_hash"] = flip_hex(p["root_hash"].as_str().unwrap(), 0).into();
    let path = dir.write_json("claimed-root.json", &p);
    assert_eq!(dir.verify_proof(&path, &cp22, None, trust()).code, 0);

    // A checkpoint signed by a key that is not trusted: another generated
    // key passed as --trusted-key.
    let (_, stranger_pub) = dir.key("stranger");
    let o = dir.verify_proof(&good, &cp22, None, trusted(&stranger_pub));
    assert_fails(&o, "does not verify with a trusted key", "untrusted signer");
    // A checkpoint of the same tree signed by a key the verifier does not
    // trust, under the ledger's origin.
    let (stranger, _) = dir.key("stranger2");
    let body = read(&cp22).split("\n\n").next().unwrap().to_string() + "\n";
    let rogue = fundledger::note::sign_note(
        &body,
        ORIGIN,
        &fundledger::keys::load_signing_key(&stranger).unwrap(),
    )
    .unwrap();
    let rogue = dir.write("rogue-cp22.txt", &rogue);
    let o = dir.verify_proof(&good, &rogue, None, trust());
    assert_fails(&o, "does not verify with a trusted key", "rogue signer");

    // A checkpoint body edited after signing: another root, another size.
    let note = read(&cp22);
    let other_root = checkpoint_root_line(&read(&cp12));
    let edited = note.replacen(&checkpoint_root_line(&note), &other_root, 1);
    assert_ne!(edited, note);
    let edited = dir.write("edited-root.txt", &edited);
    let o = dir.verify_proof(&good, &edited, None, trust());
    assert_fails(&o, "does not verify with a trusted key", "edited root");
    let edited = note.replacen("\n22\n", "\n23\n", 1);
    let edited = dir.write("edited-size.txt", &edited);
    let o = dir.verify_proof(&good, &edited, None, trust());
    assert_fails(&o, "does not verify with a trusted key", "edited size");

    // An inclusion proof checked against a checkpoint of another size.
    let o = dir.verify_proof(&good, &cp12, None, trust());
    assert_fails(
        &o,
        "the proof is for tree size 22, the checkpoint has size 12",
        "other size",
    );
    // An inclusion proof in the tree of 12 against the checkpoint of 22.
    let small = dir.prove_inclusion(&ledger, 5, Some(12));
    let o = dir.verify_proof(&small, &cp22, None, trust());
    assert_fails(
        &o,
        "the proof is for tree size 12, the checkpoint has size 22",
        "other size (smaller)",
    );

    // Consistency proofs.
    let forged_consistency =
        |case: &str, edit: &dyn Fn(&mut Value), old: &Path, new: &Path, phrase: &str| {
            let mut p = consistency.clone();
            edit(&mut p);
            let path = dir.write_json(&format!("{case}.json"), &p);
            let o = dir.verify_proof(&path, new, Some(old), trust());
            assert_fails(&o, phrase, case);
        };
    // The sizes swapped in the proof only.
    forged_consistency(
        "sizes-swapped",
        &|p| {
            p["old_size"] = 22.into();
            p["new_size"] = 12.into();
        },
        &cp12,
        &cp22,
        "the proof links sizes 22 and 12, the checkpoints have 12 and 22",
    );
    // The sizes swapped in the proof and the checkpoints given the other
    // way round: a tree cannot extend a larger one.
    forged_consistency(
        "sizes-and-checkpoints-swapped",
        &|p| {
            p["old_size"] = 22.into();
            p["new_size"] = 12.into();
        },
        &cp22,
        &cp12,
        "consistency proof does not verify",
    );
    // The genuine proof with the checkpoints swapped.
    forged_consistency(
        "checkpoints-swapped",
        &|_| {},
        &cp22,
        &cp12,
        "the proof links sizes 12 and 22, the checkpoints have 22 and 12",
    );
    for i in 0..consistency["proof"].as_array().unwrap().len() {
        forged_consistency(
            &format!("consistency-hash-{i}"),
            &|p| {
                let h = p["proof"][i].as_str().unwrap().to_string();
                p["proof"][i] = flip_hex(&h, 3).into();
            },
            &cp12,
            &cp22,
            "consistency proof does not verify",
        );
    }
    // A consistency proof whose old checkpoint was edited after signing.
    forged_consistency(
        "edited-old-checkpoint",
        &|_| {},
        &edited,
        &cp22,
        "does not verify with a trusted key",
    );
}

// ---------------------------------------------------------------------------
// 3. verify --checkpoint
// ---------------------------------------------------------------------------

/// `verify --json --checkpoint` failed with check "checkpoint" at `seq`.
#[track_caller]
fn assert_checkpoint_failure(report: &Value, seq: u64, message: &str, case: &str) {
    assert_eq!(report["status"], "failed", "{case}: {report}");
    assert_eq!(report["failure"]["check"], "checkpoint", "{case}: {report}");
    assert_eq!(report["failure"]["seq"], seq, "{case}: {report}");
    let found = report["failure"]["message"].as_str().unwrap();
    assert!(found.contains(message), "{case}: {report}");
    assert_eq!(report["checkpoint"]["status"], "failed", "{case}: {report}");
}

#[test]
fn verify_checkpoint_detects_truncation_backups_forks_and_other_origins() {
    let dir = Dir::new();
    let (admin, admin_pub) = dir.key("admin");
    let ledger = dir.init("ledger.sqlite", &admin);
    dir.attest_to(&ledger, &admin, 10);
    let cp10 = dir.checkpoint(&ledger, &admin, "cp10.txt", 10);
    // (b) A backup taken at 10 entries.
    let backup = dir.copy_ledger(&ledger, "backup.sqlite");
    dir.attest_to(&ledger, &admin, 20);
    let cp20 = dir.checkpoint(&ledger, &admin, "cp20.txt", 20);

    // (e) The good case: the ledger extends both checkpoints.
    for (cp, size) in [(&cp10, 10), (&cp20, 20)] {
        let (code, report) = dir.verify_json(&ledger, Some(cp), vec![]);
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["status"], "intact", "{report}");
        assert_eq!(report["checkpoint"]["status"], "extends", "{report}");
        assert_eq!(report["checkpoint"]["tree_size"], size, "{report}");
        assert_eq!(report["checkpoints_verified"], 2, "{report}");
        assert!(report["failure"].is_null(), "{report}");
    }
    let o = dir.on(&ledger, None, args!["verify", "--checkpoint", &cp20]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.out
            .contains("the ledger extends the signed checkpoint of tree size 20"),
        "{o:?}"
    );

    // (b) The restored older backup is shorter than the checkpoint. Its own
    // history (the checkpoint of 10) is consistent, so the external
    // checkpoint is what catches it.
    let (code, report) = dir.verify_json(&backup, None, vec![]);
    assert_eq!(code, 0, "the backup on its own is intact: {report}");
    let (code, report) = dir.verify_json(&backup, Some(&cp20), vec![]);
    assert_eq!(code, 1);
    assert_checkpoint_failure(
        &report,
        10,
        "the ledger is shorter than the signed checkpoint",
        "backup",
    );
    assert_eq!(
        report["failure"]["expected"], "at least 20 entries",
        "{report}"
    );
    assert_eq!(report["failure"]["found"], "10 entries", "{report}");
    assert_eq!(report["checkpoint"]["tree_size"], 20, "{report}");
    assert_eq!(report["entries_verified"], 10, "{report}");
    let o = dir.on(&backup, None, args!["verify", "--checkpoint", &cp20]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.out
            .starts_with("FAILED at entry 10: the ledger is shorter"),
        "{o:?}"
    );
    assert!(o.out.contains("[checkpoint]"), "{o:?}");

    // (a) A truncated copy: the last five entries and their Merkle nodes
    // deleted. The copy's own history still holds the checkpoint of 20,
    // which verify re-checks before the external checkpoint: the truncation
    // is then reported as "checkpoint_history", at the history's last entry.
    let cut = dir.copy_ledger(&ledger, "truncated.sqlite");
    let conn = open_for_tampering(&cut);
    assert_eq!(truncate(&conn, 15), 5);
    let (code, report) = dir.verify_json(&cut, Some(&cp20), vec![]);
    assert_eq!(code, 1);
    assert_eq!(report["failure"]["check"], "checkpoint_history", "{report}");
    assert_eq!(report["failure"]["seq"], 19, "{report}");
    assert!(report["checkpoint"].is_null(), "{report}");
    // An attacker who truncates also erases that history; what remains is a
    // consistent 15-entry ledger that only the kept checkpoint can expose.
    assert_eq!(
        conn.execute("DELETE FROM checkpoints WHERE tree_size > 15", [])
            .unwrap(),
        1
    );
    drop(conn);
    let (code, report) = dir.verify_json(&cut, None, vec![]);
    assert_eq!(
        code, 0,
        "truncated and history erased: intact alone: {report}"
    );
    assert_eq!(report["entries_verified"], 15, "{report}");
    assert_eq!(report["checkpoints_verified"], 1, "{report}");
    let (code, report) = dir.verify_json(&cut, Some(&cp20), vec![]);
    assert_eq!(code, 1);
    assert_checkpoint_failure(&report, 15, "entries were cut off the end", "truncated");
    assert_eq!(report["failure"]["found"], "15 entries", "{report}");
    // The checkpoint of 10 is still extended by the truncated copy.
    let (code, report) = dir.verify_json(&cut, Some(&cp10), vec![]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checkpoint"]["status"], "extends", "{report}");

    // (c) A fork: ledgers A and B with the same origin, administrator key
    // and genesis, equal up to entry 5, then different: B's entry 6 is a
    // validly signed rewrite of A's, and every later entry differs too.
    let a = dir.path("fork-a.sqlite");
    let b = dir.path("fork-b.sqlite");
    for l in [&a, &b] {
        init_fixed(l, &admin);
        append_fixed(l, &admin, 6, "shared");
    }
    let shared = dir.checkpoint(&a, &admin, "fork-a-6.txt", 6);
    append_fixed(&a, &admin, 12, "history-a");
    append_fixed(&b, &admin, 12, "history-b");
    let cp_a = dir.checkpoint(&a, &admin, "fork-a-12.txt", 12);
    let cp_b = dir.checkpoint(&b, &admin, "fork-b-12.txt", 12);
    // Same genesis, same 6-entry prefix: the prefix checkpoint fits both.
    let (code, report) = dir.verify_json(&b, Some(&shared), vec![]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checkpoint"]["status"], "extends", "{report}");
    // A's checkpoint against B: same size, another root.
    let (code, report) = dir.verify_json(&b, Some(&cp_a), vec![]);
    assert_eq!(code, 1);
    assert_checkpoint_failure(
        &report,
        11,
        "the first entries of the ledger do not have the checkpoint's root: history before the checkpoint was rewritten, or this is a fork",
        "fork",
    );
    let (_, report_a) = dir.verify_json(&a, None, vec![]);
    assert_eq!(
        report["failure"]["expected"], report_a["root_hash"],
        "{report}"
    );
    assert_eq!(report["failure"]["found"], report["root_hash"], "{report}");
    assert_ne!(report["root_hash"], report_a["root_hash"]);
    // And the other way round.
    let (code, report) = dir.verify_json(&a, Some(&cp_b), vec![]);
    assert_eq!(code, 1);
    assert_checkpoint_failure(&report, 11, "this is a fork", "fork (reverse)");
    // A's checkpoint of 12 against B grown to 16: still the wrong root at 12.
    append_fixed(&b, &admin, 16, "history-b");
    let (code, report) = dir.verify_json(&b, Some(&cp_a), vec![]);
    assert_eq!(code, 1);
    assert_checkpoint_failure(&report, 11, "this is a fork", "fork, longer");

    // (d) A checkpoint of another ledger (another origin), signed by the
    // same administrator key.
    let other = dir.path("other.sqlite");
    dir.ok(
        &other,
        Some(&admin),
        args!["init", "--origin", "ledger.example.org/another-fund"],
    );
    dir.attest_to(&other, &admin, 3);
    let cp_other = dir.checkpoint(&other, &admin, "other-3.txt", 3);
    // Its signature is under the other origin, so no key of this ledger
    // verifies it.
    let (code, report) = dir.verify_json(&ledger, Some(&cp_other), vec![]);
    assert_eq!(code, 1);
    assert_checkpoint_failure(
        &report,
        20,
        "does not verify with a trusted key",
        "other origin, ledger keys",
    );
    // Trusting the key explicitly gets past the signature to the origin.
    let (code, report) = dir.verify_json(&ledger, Some(&cp_other), trusted(&admin_pub));
    assert_eq!(code, 1);
    assert_checkpoint_failure(
        &report,
        0,
        "the checkpoint is for another ledger",
        "other origin",
    );
    assert_eq!(report["failure"]["expected"], ORIGIN, "{report}");
    assert_eq!(
        report["failure"]["found"], "ledger.example.org/another-fund",
        "{report}"
    );
    assert_eq!(report["checkpoint"]["tree_size"], 3, "{report}");
}

// ---------------------------------------------------------------------------
// 4. Witness
// ---------------------------------------------------------------------------

#[test]
fn witness_cosigns_only_consistent_checkpoints_and_verify_lists_it() {
    let dir = Dir::new();
    let (admin, admin_pub) = dir.key("admin");
    let (witness, witness_pub) = dir.key("wit");
    let name = "witness-1";
    let state = dir.path("witness-state");

    // Ledger A: genesis, the witness's enrollment, attestations; checkpoints
    // at 4, 6 and 12. Ledger B: the same genesis (same origin and key),
    // grown to 12 entries along another history, checkpointed by the same
    // administrator: a fork of A at size 12.
    let a = dir.path("a.sqlite");
    let b = dir.path("b.sqlite");
    init_fixed(&a, &admin);
    init_fixed(&b, &admin);
    dir.ok(
        &a,
        Some(&admin),
        args![
            "key",
            "enroll",
            &witness_pub,
            "--role",
            "witness",
            "--name",
            name
        ],
    );
    append_fixed(&a, &admin, 4, "a");
    let cp4 = dir.checkpoint(&a, &admin, "a-4.txt", 4);
    append_fixed(&a, &admin, 6, "a");
    let cp6 = dir.checkpoint(&a, &admin, "a-6.txt", 6);
    append_fixed(&a, &admin, 12, "a");
    let cp12 = dir.checkpoint(&a, &admin, "a-12.txt", 12);
    append_fixed(&b, &admin, 12, "b");
    let fork12 = dir.checkpoint(&b, &admin, "b-12.txt", 12);
    assert_ne!(
        checkpoint_root_line(&read(&cp12)),
        checkpoint_root_line(&read(&fork12))
    );

    let cosign = |cp: &Path, proof: Option<&Path>, out: &str| -> Out {
        let mut args = args![
            "--key",
            &witness,
            "witness",
            "cosign",
            cp,
            "--state",
            &state,
            "--log-key",
            &admin_pub,
            "--name",
            name,
            "--out",
            dir.path(out)
        ];
        if let Some(p) = proof {
            args.extend(args!["--proof", p]);
        }
        dir.run(args)
    };
    let cosig_line = format!("\u{2014} {name} ");

    // First cosignature: no state yet, accepted.
    let o = cosign(&cp6, None, "cosigned-6.txt");
    assert_eq!(o.code, 0, "{o:?}");
    let cosigned6 = read(&dir.path("cosigned-6.txt"));
    assert!(cosigned6.starts_with(&read(&cp6)), "{cosigned6}");
    assert_eq!(cosigned6.matches(&cosig_line).count(), 1, "{cosigned6}");

    // An older checkpoint is refused.
    let o = cosign(&cp4, None, "cosigned-4.txt");
    assert_fails(
        &o,
        "older than the size 6 this witness already cosigned",
        "older",
    );
    assert!(!dir.path("cosigned-4.txt").exists());

    // A newer one needs a consistency proof from 6.
    let o = cosign(&cp12, None, "cosigned-12.txt");
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.err.contains("a consistency proof from it is needed")
            && o.err.contains("prove consistency --old 6 --json"),
        "{o:?}"
    );

    // A wrong proof (one hash altered) is refused.
    let proof = dir.prove_consistency(&a, 6, 12);
    let mut wrong = read_json(&proof);
    let h = wrong["proof"][0].as_str().unwrap().to_string();
    wrong["proof"][0] = flip_hex(&h, 0).into();
    let wrong = dir.write_json("wrong-6-12.json", &wrong);
    let o = cosign(&cp12, Some(&wrong), "cosigned-12.txt");
    assert_fails(
        &o,
        "refused: the checkpoint is not consistent with the last one cosigned",
        "wrong proof",
    );
    // A genuine proof from the fork's tree does not link A's checkpoints.
    let b_proof = dir.prove_consistency(&b, 6, 12);
    let o = cosign(&cp12, Some(&b_proof), "cosigned-12.txt");
    assert_fails(
        &o,
        "refused: the checkpoint is not consistent",
        "proof from the fork",
    );
    assert!(!dir.path("cosigned-12.txt").exists());

    // The right proof: accepted.
    let o = cosign(&cp12, Some(&proof), "cosigned-12.txt");
    assert_eq!(o.code, 0, "{o:?}");
    let cosigned12 = dir.path("cosigned-12.txt");
    assert!(read(&cosigned12).contains(&cosig_line));

    // The fork's checkpoint of the same size with another root is refused,
    // with or without a proof.
    let o = cosign(&fork12, None, "cosigned-fork.txt");
    assert_fails(&o, "a different root for tree size 12", "fork");
    assert!(o.err.contains("(a fork)"), "{o:?}");
    // The same checkpoint again is fine (same size, same root).
    let o = cosign(&cp12, None, "cosigned-12-again.txt");
    assert_eq!(o.code, 0, "{o:?}");
    // A checkpoint checked with a key that is not the log's is refused.
    let o = dir.run(args![
        "--key",
        &witness,
        "witness",
        "cosign",
        &cp12,
        "--state",
        &state,
        "--log-key",
        &witness_pub,
        "--name",
        name
    ]);
    assert_fails(&o, "does not verify with a trusted key", "not the log key");

    // Recording: the fork's cosigned checkpoint does not fit A.
    let o = dir.on(&a, None, args!["witness", "record", &fork12]);
    assert_fails(&o, "differs from this ledger's", "record the fork");
    // The cosigned checkpoints of 6 and 12 are recorded.
    let cosigned6 = dir.write("cosigned-6.txt", &cosigned6);
    for (cp, size) in [(&cosigned6, 6), (&cosigned12, 12)] {
        let out = dir.ok(&a, None, args!["witness", "record", cp]);
        assert_eq!(
            out.trim_end(),
            format!("recorded the checkpoint of tree size {size} in the ledger's history")
        );
    }
    let (code, report) = dir.verify_json(&a, None, vec![]);
    assert_eq!(code, 0, "{report}");
    // Three issued (4, 6, 12) and two recorded.
    assert_eq!(report["checkpoints_verified"], 5, "{report}");
    let witnesses = report["witnesses"].as_array().unwrap();
    assert_eq!(witnesses.len(), 1, "{report}");
    assert_eq!(witnesses[0]["name"], name, "{report}");
    assert_eq!(witnesses[0]["latest_tree_size"], 12, "{report}");
    assert!(
        witnesses[0]["timestamp_unix_s"].as_u64().unwrap() > 1_700_000_000,
        "{report}"
    );
    let o = dir.on(&a, None, args!["verify"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.out.contains(&format!(
            "witness {name}: latest cosigned tree size 12 at unix time "
        )),
        "{o:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. The stored Merkle tree
// ---------------------------------------------------------------------------

#[test]
fn tampered_merkle_nodes_fail_verify() {
    let dir = Dir::new();
    let (admin, admin_pub) = dir.key("admin");
    let ledger = dir.path("ledger.sqlite");
    init_fixed(&ledger, &admin);
    append_fixed(&ledger, &admin, 20, "doc");
    let cp20 = dir.checkpoint(&ledger, &admin, "cp20.txt", 20);
    let (code, report) = dir.verify_json(&ledger, None, vec![]);
    assert_eq!(code, 0, "{report}");

    // (level, idx, the entry whose append completes the node, an entry
    // whose inclusion proof uses the node).
    for (level, idx, seq, proven) in [
        (0u32, 9u64, 9u64, 8u64),
        (1, 2, 5, 6),
        (2, 1, 7, 0),
        (4, 0, 15, 19),
    ] {
        let copy = dir.copy_ledger(&ledger, &format!("node-{level}-{idx}.sqlite"));
        let conn = Connection::open(&copy).unwrap();
        conn.execute_batch("DROP TRIGGER merkle_nodes_no_update")
            .unwrap();
        let genuine: Vec<u8> = conn
            .query_row(
                "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2",
                [level as i64, idx as i64],
                |r| r.get(0),
            )
            .unwrap();
        let mut forged = genuine.clone();
        forged[31] ^= 0x80;
        assert_eq!(
            conn.execute(
                "UPDATE merkle_nodes SET hash = ?1 WHERE level = ?2 AND idx = ?3",
                rusqlite::params![forged, level as i64, idx as i64],
            )
            .unwrap(),
            1
        );
        drop(conn);
        let case = format!("node ({level}, {idx})");
        let (code, report) = dir.verify_json(&copy, None, vec![]);
        assert_eq!(code, 1, "{case}: {report}");
        let failure = &report["failure"];
        assert_eq!(failure["check"], "merkle", "{case}: {report}");
        assert_eq!(failure["seq"], seq, "{case}: {report}");
        assert_eq!(report["entries_verified"], seq, "{case}: {report}");
        assert_eq!(
            failure["message"],
            format!("stored Merkle node (level {level}, index {idx}) does not match the records"),
            "{case}: {report}"
        );
        assert_eq!(
            failure["expected"],
            hex::encode(&genuine),
            "{case}: {report}"
        );
        assert_eq!(failure["found"], hex::encode(&forged), "{case}: {report}");

        // Proofs served from the tampered tree do not verify against the
        // genuine checkpoint.
        let proof = dir.prove_inclusion(&copy, proven, None);
        let o = dir.verify_proof(&proof, &cp20, None, trusted(&admin_pub));
        assert_fails(&o, "inclusion proof does not verify", &case);
    }

    // A deleted interior node is reported as missing.
    let copy = dir.copy_ledger(&ledger, "missing-node.sqlite");
    let conn = Connection::open(&copy).unwrap();
    conn.execute_batch(
        "DROP TRIGGER merkle_nodes_no_delete;
         DELETE FROM merkle_nodes WHERE level = 3 AND idx = 1;",
    )
    .unwrap();
    drop(conn);
    let (code, report) = dir.verify_json(&copy, None, vec![]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "merkle", "{report}");
    assert_eq!(report["failure"]["seq"], 15, "{report}");
    assert_eq!(report["failure"]["found"], "missing", "{report}");

    // A leaf beyond the last entry: not one leaf per entry.
    let copy = dir.copy_ledger(&ledger, "extra-leaf.sqlite");
    let conn = Connection::open(&copy).unwrap();
    conn.execute(
        "INSERT INTO merkle_nodes (level, idx, hash) VALUES (0, 20, ?1)",
        [vec![7u8; 32]],
    )
    .unwrap();
    drop(conn);
    let (code, report) = dir.verify_json(&copy, None, vec![]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "merkle", "{report}");
    assert!(
        report["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("does not have one leaf per entry"),
        "{report}"
    );
}
