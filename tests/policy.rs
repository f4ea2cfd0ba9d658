//! Integration tests for identities, roles, key rotation, the signing
//! policy, the multi-signature flow and encrypted keys (schema/POLICY.md),
//! run against the built binary in temporary directories. A few cases
//! build entries or proposals with the library, standing in for someone who
//! edits files or the database behind the program's back.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

use fundledger::entry::{self, Content, Record};
use fundledger::event::{Attest, Body, Event, StartupAmount};
use fundledger::ledger::Ledger;

const ORIGIN: &str = "ledger.example.org/policy-test";

/// What a finished command printed.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The binary with a clean environment: no ledger, key or passphrase from
/// the developer's shell, and stdin that is not a terminal.
fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fundledger"));
    cmd.env_remove("FUNDLEDGER_LEDGER")
        .env_remove("FUNDLEDGER_KEY")
        .env_remove("FUNDLEDGER_KEY_PASSPHRASE")
        .stdin(Stdio::null());
    cmd
}

fn finish(cmd: &mut Command) -> Out {
    let output = cmd.output().expect("cannot run the fundledger binary");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// The key id (hex SHA-256 of the raw 32-byte key) of an SPKI PEM public
/// key file, computed here independently of the program.
fn key_id_of(public_pem: &Path) -> String {
    let text = std::fs::read_to_string(public_pem).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(der.len(), 44, "an Ed25519 SPKI is 44 bytes");
    hex::encode(Sha256::digest(&der[12..]))
}

/// Assert a refusal: exit code 2 and a one-line error naming `phrase`.
fn assert_refusal(out: &Out, phrase: &str, what: &str) {
    assert_eq!(
        out.code, 2,
        "{what}: expected exit 2, got {}\nstdout: {}\nstderr: {}",
        out.code, out.stdout, out.stderr
    );
    let err = out.stderr.trim_end();
    assert_eq!(
        err.lines().count(),
        1,
        "{what}: not a one-line error: {err}"
    );
    assert!(
        err.starts_with("fundledger: error: "),
        "{what}: unexpected error form: {err}"
    );
    assert!(
        err.contains(phrase),
        "{what}: error does not say {phrase:?}: {err}"
    );
}

/// A ledger in its own temporary directory, created by key `admin`.
struct Env {
    dir: tempfile::TempDir,
    ledger: PathBuf,
    keys: PathBuf,
    admin: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.sqlite");
        let keys = dir.path().join("keys");
        let mut env = Env {
            dir,
            ledger,
            keys,
            admin: PathBuf::new(),
        };
        env.admin = env.generate("admin").0;
        env.ok(Some(&env.admin), &["init", "--origin", ORIGIN]);
        env
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// Run with --ledger and (optionally) --key.
    fn run(&self, key: Option<&Path>, args: &[&str]) -> Out {
        let mut cmd = command();
        cmd.current_dir(self.root())
            .arg("--ledger")
            .arg(&self.ledger);
        if let Some(key) = key {
            cmd.arg("--key").arg(key);
        }
        finish(cmd.args(args))
    }

    fn ok(&self, key: Option<&Path>, args: &[&str]) -> String {
        let out = self.run(key, args);
        assert_eq!(
            out.code, 0,
            "{args:?} failed with {}:\n{}{}",
            out.code, out.stdout, out.stderr
        );
        out.stdout
    }

    /// Record with `key` and return the new entry's sequence number.
    fn append(&self, key: &Path, args: &[&str]) -> u64 {
        let mut all = args.to_vec();
        all.push("--json");
        let out: Value = serde_json::from_str(&self.ok(Some(key), &all)).unwrap();
        assert_eq!(out["status"], "appended", "{args:?}: {out}");
        out["seq"].as_u64().unwrap()
    }

    /// `key generate NAME`: (private, public, key id printed).
    fn generate(&self, name: &str) -> (PathBuf, PathBuf, String) {
        let out = finish(
            command()
                .current_dir(self.root())
                .args(["key", "generate", name, "--dir"])
                .arg(&self.keys),
        );
        assert_eq!(out.code, 0, "key generate {name}: {}", out.stderr);
        let printed = out.stdout.trim().rsplit(' ').next().unwrap().to_string();
        let public = self.keys.join(format!("{name}.pub"));
        assert_eq!(printed, key_id_of(&public), "printed key id of {name}");
        (self.keys.join(format!("{name}.key")), public, printed)
    }

    /// Generate a key and enroll it (signed by the administrator).
    /// Returns the private key and the key id.
    fn enroll(&self, name: &str, role: &str, partner: Option<&str>) -> (PathBuf, String) {
        let (private, public, id) = self.generate(name);
        let mut args = vec!["key", "enroll", s(&public), "--role", role];
        if let Some(p) = partner {
            args.extend(["--partner", p]);
        }
        self.append(&self.admin, &args);
        (private, id)
    }

    fn log(&self) -> String {
        self.ok(None, &["log", "--json"])
    }

    fn entries(&self) -> usize {
        self.log().lines().count()
    }

    /// Run a command that must be refused (exit 2, one-line error naming
    /// `phrase`) and must leave the ledger exactly as it was.
    fn refused(&self, key: Option<&Path>, args: &[&str], phrase: &str) -> String {
        let before = self.log();
        let out = self.run(key, args);
        assert_refusal(&out, phrase, &format!("{args:?}"));
        let after = self.log();
        assert_eq!(before, after, "{args:?} changed the ledger");
        assert_eq!(before.lines().count(), after.lines().count());
        out.stderr
    }

    fn key_list(&self) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.ok(None, &["key", "list", "--json"])).unwrap();
        assert_eq!(v["format_version"], 1);
        v["keys"].as_array().unwrap().clone()
    }

    fn key_entry(&self, id: &str) -> Value {
        self.key_list()
            .into_iter()
            .find(|k| k["key_id"] == id)
            .unwrap_or_else(|| panic!("key {id} not listed"))
    }

    fn verify(&self) -> (i32, Value) {
        let out = self.run(None, &["verify", "--json"]);
        let report = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("verify --json: {e}: {}{}", out.stdout, out.stderr));
        (out.code, report)
    }

    fn assert_intact(&self) {
        let (code, report) = self.verify();
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["entries_verified"], self.entries() as u64);
    }

    fn policy_show(&self) -> Value {
        serde_json::from_str(&self.ok(None, &["policy", "show", "--json"])).unwrap()
    }

    fn show(&self, seq: u64) -> Value {
        serde_json::from_str(&self.ok(None, &["show", &seq.to_string(), "--json"])).unwrap()
    }

    /// A fund `f1` in USD with partners mof (60M committed, 30M paid) and
    /// adq (40M committed, 20M paid), startup acme, and 50M of cash.
    fn fund(&self, recorder: &Path) {
        let d = ["--date", "2026-01-05"];
        let steps: Vec<Vec<&str>> = vec![
            vec![
                "fund",
                "create",
                "--id",
                "f1",
                "--name",
                "Gulf AI Fund I",
                "--currency",
                "USD",
                "--jurisdiction",
                "AE",
                "--vintage",
                "2026",
                "--fee-rate",
                "0.02",
            ],
            vec![
                "partner",
                "add",
                "--id",
                "mof",
                "--name",
                "Ministry of Finance",
                "--type",
                "government",
                "--country",
                "AE",
            ],
            vec![
                "partner",
                "add",
                "--id",
                "adq",
                "--name",
                "ADQ",
                "--type",
                "sovereign_fund",
                "--country",
                "AE",
            ],
            vec![
                "startup",
                "add",
                "--id",
                "acme",
                "--name",
                "Acme AI",
                "--country",
                "AE",
                "--sector",
                "foundation models",
            ],
            vec![
                "commit",
                "--fund",
                "f1",
                "--partner",
                "mof",
                "--amount",
                "60000000.00 USD",
            ],
            vec![
                "commit",
                "--fund",
                "f1",
                "--partner",
                "adq",
                "--amount",
                "40000000.00 USD",
            ],
            vec![
                "call",
                "--fund",
                "f1",
                "--amount",
                "50000000.00 USD",
                "--purpose",
                "investment",
                "--due-date",
                "2026-02-15",
            ],
            vec![
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "mof",
                "--call",
                "1",
                "--amount",
                "30000000.00 USD",
            ],
            vec![
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "adq",
                "--call",
                "1",
                "--amount",
                "20000000.00 USD",
            ],
        ];
        for mut step in steps {
            step.extend(d);
            self.append(recorder, &step);
        }
    }

    /// `propose ... --out NAME` (signed by `key` when given); returns the path.
    fn propose(&self, key: Option<&Path>, name: &str, args: &[&str]) -> PathBuf {
        let out = self.path(name);
        let mut all = vec!["propose"];
        all.extend(args);
        all.extend(["--out", s(&out)]);
        let before = self.log();
        self.ok(key, &all);
        assert_eq!(before, self.log(), "propose appended something");
        out
    }

    fn cosign(&self, key: &Path, file: &Path) {
        self.ok(Some(key), &["cosign", s(file)]);
    }

    /// `submit FILE --json`: the appended sequence number.
    fn submit(&self, file: &Path) -> u64 {
        let out: Value =
            serde_json::from_str(&self.ok(None, &["submit", s(file), "--json"])).unwrap();
        assert_eq!(out["status"], "appended", "{out}");
        out["seq"].as_u64().unwrap()
    }

    /// The last entry's (seq, hash, recording time), read from the database.
    fn head(&self) -> (u64, [u8; 32], i64) {
        let conn = rusqlite::Connection::open(&self.ledger).unwrap();
        conn.query_row(
            "SELECT seq, entry_hash, recorded_at_unix_ms FROM entries ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                let hash: Vec<u8> = r.get(1)?;
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    hash.try_into().unwrap(),
                    r.get(2)?,
                ))
            },
        )
        .unwrap()
    }

    /// Build the next entry for `event` with the postings the program would
    /// compute, sign it with `signers` and INSERT it behind the program's
    /// back (the append-only triggers allow inserts). Returns its seq.
    fn forge(&self, event: Event, signers: &[&SigningKey]) -> u64 {
        let (head_seq, head_hash, head_time) = self.head();
        let seq = head_seq + 1;
        let postings = {
            let ledger = Ledger::open_read_only(&self.ledger).unwrap();
            let prepared = ledger.state().prepare(seq, &event, &|_| Ok(None)).unwrap();
            prepared.postings()
        };
        let body = Body {
            event,
            idempotency_key: None,
            postings,
        };
        let content = Content {
            origin: ORIGIN.into(),
            seq,
            prev_hash: head_hash,
            recorded_at_unix_ms: head_time + 1,
            kind: body.event.kind().into(),
            body: body.encode().unwrap(),
        };
        let hash = content.hash();
        let sigs = signers.iter().map(|k| entry::sign(k, &hash)).collect();
        let record = Record::new(content, sigs).unwrap();
        let conn = rusqlite::Connection::open(&self.ledger).unwrap();
        conn.execute(
            "INSERT INTO entries (seq, entry_hash, prev_hash, recorded_at_unix_ms, kind, idempotency_key, record)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
            rusqlite::params![
                seq as i64,
                &hash[..],
                &head_hash[..],
                head_time + 1,
                record.content.kind,
                record.encode()
            ],
        )
        .unwrap();
        seq
    }

    /// `verify --json` must fail at `seq` with `check`; returns the message.
    fn assert_verify_fails(&self, seq: u64, check: &str) -> String {
        let (code, report) = self.verify();
        assert_eq!(code, 1, "{report}");
        assert_eq!(report["status"], "failed", "{report}");
        assert_eq!(report["failure"]["seq"], seq, "{report}");
        assert_eq!(report["failure"]["check"], check, "{report}");
        assert_eq!(report["entries_verified"], seq, "{report}");
        report["failure"]["message"].as_str().unwrap().to_string()
    }
}

fn load(key: &Path) -> SigningKey {
    fundledger::keys::load_signing_key(key).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// The default policy exactly as schema/POLICY.md prints it.
fn default_policy() -> Value {
    serde_json::json!({"rules": [
      {"kinds": ["key.enroll", "key.revoke", "key.rotate", "policy.set"], "roles": ["administrator"], "signers": 1},
      {"kinds": ["attest"], "roles": ["administrator", "recorder", "auditor"], "signers": 1},
      {"kinds": ["fund.create", "partner.add", "startup.add", "call", "contribution", "valuation",
                 "realization", "fee", "expense", "reversal"], "roles": ["administrator", "recorder"], "signers": 1},
      {"kinds": ["investment", "distribution"], "roles": ["administrator", "recorder"], "signers": 1,
       "above": {"amount": "10000000", "signers": 2}},
      {"kinds": ["commitment", "commitment.reduce"], "roles": ["administrator", "recorder"], "signers": 1,
       "partner_key": "if_enrolled"}
    ]})
}

/// Remove `kind` from whichever rule lists it.
fn without_kind(policy: &mut Value, kind: &str) {
    for rule in policy["rules"].as_array_mut().unwrap() {
        rule["kinds"].as_array_mut().unwrap().retain(|k| k != kind);
    }
}

const DISTRIBUTE_15M: &[&str] = &[
    "distribute",
    "--fund",
    "f1",
    "--amount",
    "15000000.00 USD",
    "--date",
    "2026-10-01",
];
const FEE: &[&str] = &[
    "fee",
    "--fund",
    "f1",
    "--amount",
    "250000.00 USD",
    "--date",
    "2026-03-31",
];

// ---------------------------------------------------------------------------
// 1. Roles and the key list
// ---------------------------------------------------------------------------

#[test]
fn roles_limit_what_each_key_may_sign() {
    let l = Env::new();
    let (recorder, _) = l.enroll("recorder", "recorder", None);
    let (auditor, _) = l.enroll("auditor", "auditor", None);
    let (witness, _) = l.enroll("witness", "witness", None);
    l.fund(&recorder);
    let doc = l.path("minutes.txt");
    std::fs::write(&doc, b"board minutes").unwrap();
    let (_, spare_pub, _) = l.generate("spare");

    // A recorder cannot enroll keys (nor set policy).
    l.refused(
        Some(&recorder),
        &["key", "enroll", s(&spare_pub), "--role", "recorder"],
        "key recorder has role recorder, which may not sign key.enroll entries",
    );
    let policy_file = l.path("policy.json");
    write_json(&policy_file, &default_policy());
    l.refused(
        Some(&recorder),
        &["policy", "set", s(&policy_file)],
        "may not sign policy.set entries",
    );

    // An auditor cannot record a fund event, but may attest and sign checkpoints.
    l.refused(
        Some(&auditor),
        &[
            "fee",
            "--fund",
            "f1",
            "--amount",
            "1000.00 USD",
            "--date",
            "2026-03-01",
        ],
        "key auditor has role auditor, which may not sign fee entries",
    );
    l.refused(
        Some(&auditor),
        &[
            "startup",
            "add",
            "--id",
            "beta",
            "--name",
            "Beta",
            "--country",
            "AE",
            "--sector",
            "robotics",
            "--date",
            "2026-03-01",
        ],
        "may not sign startup.add entries",
    );
    l.append(
        &auditor,
        &["attest", "--file", s(&doc), "--note", "audited"],
    );
    l.ok(
        Some(&auditor),
        &["checkpoint", "--out", s(&l.path("cp.txt"))],
    );

    // A witness signs no entry at all, nor a checkpoint of the ledger.
    l.refused(
        Some(&witness),
        &["attest", "--file", s(&doc), "--note", "witnessed"],
        "key witness has role witness, which may not sign attest entries",
    );
    l.refused(
        Some(&witness),
        &[
            "fee",
            "--fund",
            "f1",
            "--amount",
            "1000.00 USD",
            "--date",
            "2026-03-01",
        ],
        "has role witness, which may not sign fee entries",
    );
    l.refused(
        Some(&witness),
        &["key", "enroll", s(&spare_pub), "--role", "auditor"],
        "has role witness, which may not sign key.enroll entries",
    );
    l.refused(Some(&witness), &["checkpoint"], "may not sign checkpoints");

    // A partner key alone cannot record its own partner's commitment.
    let (mof_key, _) = l.enroll("mof-key", "partner", Some("mof"));
    l.refused(
        Some(&mof_key),
        &[
            "commit", "--fund", "f1", "--partner", "mof", "--amount", "1000000.00 USD", "--date",
            "2026-04-01",
        ],
        "commitment entry needs 1 more signature from administrator or recorder keys (1 distinct needed, 0 present)",
    );
    // Nor another partner's commitment, nor anything else.
    l.refused(
        Some(&mof_key),
        &[
            "commit",
            "--fund",
            "f1",
            "--partner",
            "adq",
            "--amount",
            "1000000.00 USD",
            "--date",
            "2026-04-01",
        ],
        "key mof-key has role partner, which may not sign commitment entries",
    );
    l.refused(
        Some(&mof_key),
        &["attest", "--file", s(&doc), "--note", "mine"],
        "has role partner, which may not sign attest entries",
    );
    // A key the ledger never enrolled signs nothing.
    let (stranger, _, stranger_id) = l.generate("stranger");
    l.refused(
        Some(&stranger),
        &["attest", "--file", s(&doc), "--note", "who am I"],
        &format!("signing key {stranger_id} is not enrolled in this ledger"),
    );

    // Enrollment itself checks roles and partners.
    l.refused(
        Some(&l.admin),
        &["key", "enroll", s(&spare_pub), "--role", "king"],
        "role \"king\" must be one of",
    );
    l.refused(
        Some(&l.admin),
        &["key", "enroll", s(&spare_pub), "--role", "partner"],
        "a partner key must name its partner",
    );
    l.refused(
        Some(&l.admin),
        &[
            "key",
            "enroll",
            s(&spare_pub),
            "--role",
            "partner",
            "--partner",
            "nobody",
        ],
        "unknown partner \"nobody\"",
    );
    l.refused(
        Some(&l.admin),
        &[
            "key",
            "enroll",
            s(&spare_pub),
            "--role",
            "recorder",
            "--partner",
            "mof",
        ],
        "only a partner key names a partner",
    );
    l.assert_intact();
}

#[test]
fn key_list_shows_ids_names_roles_status_and_sequence_numbers() {
    let l = Env::new();
    let admin_id = key_id_of(&l.keys.join("admin.pub"));
    let (_, rec1) = l.enroll("rec1", "recorder", None); // entry 1
    let (_, rec2) = l.enroll("rec2", "recorder", None); // entry 2
    let (_, rec3_pub, rec3) = l.generate("rec3");
    let revoke = l.append(
        &l.admin,
        &["key", "revoke", &rec1[..12], "--reason", "left the fund"],
    );
    assert_eq!(revoke, 3);
    let rotate = l.append(
        &l.admin,
        &[
            "key",
            "rotate",
            &rec2,
            s(&rec3_pub),
            "--name",
            "rec2-2026",
            "--reason",
            "laptop replaced",
        ],
    );
    assert_eq!(rotate, 4);
    l.append(
        &l.keys.join("rec3.key"),
        &[
            "partner",
            "add",
            "--id",
            "mof",
            "--name",
            "Ministry of Finance",
            "--type",
            "government",
            "--country",
            "AE",
            "--date",
            "2026-01-05",
        ],
    );
    let (_, pk) = l.enroll("mof-key", "partner", Some("mof")); // entry 6

    let keys = l.key_list();
    assert_eq!(keys.len(), 5, "{keys:?}");
    let ids: Vec<&str> = keys.iter().map(|k| k["key_id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "listed in key id order");
    let expect = |id: &str,
                  name: &str,
                  role: &str,
                  partner: Value,
                  status: &str,
                  enrolled: u64,
                  revoked: Value| {
        let k = l.key_entry(id);
        assert_eq!(k["key_id"], id);
        assert_eq!(id.len(), 64);
        assert_eq!(k["name"], name, "{k}");
        assert_eq!(k["role"], role, "{k}");
        assert_eq!(k["partner"], partner, "{k}");
        assert_eq!(k["status"], status, "{k}");
        assert_eq!(k["enrolled_seq"], enrolled, "{k}");
        assert_eq!(k["revoked_seq"], revoked, "{k}");
    };
    expect(
        &admin_id,
        "admin",
        "administrator",
        Value::Null,
        "active",
        0,
        Value::Null,
    );
    expect(
        &rec1,
        "rec1",
        "recorder",
        Value::Null,
        "revoked",
        1,
        3.into(),
    );
    expect(
        &rec2,
        "rec2",
        "recorder",
        Value::Null,
        "revoked",
        2,
        4.into(),
    );
    expect(
        &rec3,
        "rec2-2026",
        "recorder",
        Value::Null,
        "active",
        4,
        Value::Null,
    );
    expect(
        &pk,
        "mof-key",
        "partner",
        "mof".into(),
        "active",
        6,
        Value::Null,
    );

    // The text form lists the same keys.
    let text = l.ok(None, &["key", "list"]);
    for name in ["admin", "rec1", "rec2", "rec2-2026", "mof-key"] {
        assert!(text.contains(name), "{text}");
    }
    l.assert_intact();
}

// ---------------------------------------------------------------------------
// 2. Revocation and rotation
// ---------------------------------------------------------------------------

#[test]
fn a_revoked_key_signs_nothing_after_its_revocation() {
    let l = Env::new();
    let (rec, rec_id) = l.enroll("rec", "recorder", None); // 1
    let doc = l.path("doc.txt");
    std::fs::write(&doc, b"a document").unwrap();
    l.append(&rec, &["attest", "--file", s(&doc), "--note", "before"]); // 2
    let r = l.append(
        &l.admin,
        &["key", "revoke", &rec_id, "--reason", "compromised"],
    );
    assert_eq!(r, 3);
    let err = l.refused(
        Some(&rec),
        &["attest", "--file", s(&doc), "--note", "after"],
        "signing key rec (",
    );
    assert!(
        err.contains("was revoked at entry 3 and signs nothing after it"),
        "{err}"
    );
    // A revoked key stays revoked: it is neither revoked twice nor enrolled again.
    l.refused(
        Some(&l.admin),
        &["key", "revoke", &rec_id, "--reason", "again"],
        "key rec is already revoked",
    );
    l.refused(
        Some(&l.admin),
        &[
            "key",
            "enroll",
            s(&l.keys.join("rec.pub")),
            "--role",
            "recorder",
        ],
        "is already enrolled",
    );
    // The last active administrator cannot be revoked.
    let admin_id = key_id_of(&l.keys.join("admin.pub"));
    l.refused(
        Some(&l.admin),
        &["key", "revoke", &admin_id, "--reason", "leaving"],
        "cannot revoke the last active administrator key",
    );
    // The revoking entry itself may be signed by the key it revokes.
    let (admin2, admin2_id) = l.enroll("admin2", "administrator", None); // 4
    let r2 = l.append(
        &admin2,
        &["key", "revoke", &admin2_id, "--reason", "stepping down"],
    );
    assert_eq!(r2, 5);
    l.refused(
        Some(&admin2),
        &["attest", "--file", s(&doc), "--note", "after"],
        "was revoked at entry 5 and signs nothing after it",
    );
    assert_eq!(l.key_entry(&admin2_id)["revoked_seq"], 5);
    l.assert_intact();
}

#[test]
fn verify_reports_an_entry_signed_by_a_revoked_key() {
    let l = Env::new();
    let (rec, rec_id) = l.enroll("rec", "recorder", None); // 1
    let revoked_at = l.append(
        &l.admin,
        &["key", "revoke", &rec_id, "--reason", "compromised"],
    );
    assert_eq!(revoked_at, 2);
    l.assert_intact();
    let seq = l.forge(
        Event::Attest(Attest {
            file_name: "backdated.pdf".into(),
            sha256: hex::encode(Sha256::digest(b"backdated")),
            size: 9,
            note: "inserted behind the program's back".into(),
        }),
        &[&load(&rec)],
    );
    assert_eq!(seq, 3);
    let message = l.assert_verify_fails(3, "signer");
    assert!(
        message.contains("was revoked at entry 2 and signs nothing after it"),
        "{message}"
    );
}

#[test]
fn verify_reports_an_entry_that_does_not_meet_the_policy_in_force() {
    let l = Env::new();
    let (rec, _) = l.enroll("rec", "recorder", None);
    l.fund(&rec);
    l.assert_intact();
    // An investment above the threshold with a single recorder's signature,
    // inserted behind the program's back, with correct postings.
    let seq = l.forge(
        Event::Investment(StartupAmount {
            fund: "f1".into(),
            startup: "acme".into(),
            amount: "12000000.00".into(),
            currency: "USD".into(),
            date: "2026-06-01".into(),
            memo: None,
        }),
        &[&load(&rec)],
    );
    let message = l.assert_verify_fails(seq, "policy");
    assert!(
        message.contains("2 distinct needed (the amount is above 10000000 USD), 1 present"),
        "{message}"
    );
}

#[test]
fn verify_reports_an_entry_signed_by_a_key_without_the_role() {
    let l = Env::new();
    let (witness, _) = l.enroll("witness", "witness", None);
    let seq = l.forge(
        Event::Attest(Attest {
            file_name: "w.pdf".into(),
            sha256: hex::encode(Sha256::digest(b"w")),
            size: 1,
            note: "a witness may not attest".into(),
        }),
        &[&load(&witness)],
    );
    let message = l.assert_verify_fails(seq, "policy");
    assert!(
        message.contains("has role witness, which may not sign attest entries"),
        "{message}"
    );
}

#[test]
fn rotation_retires_the_old_key_and_gives_the_new_one_its_role() {
    let l = Env::new();
    let (old, old_id) = l.enroll("rec-old", "recorder", None); // 1
    let (_, new_pub, new_id) = l.generate("rec-new");
    let new = l.keys.join("rec-new.key");
    let doc = l.path("doc.txt");
    std::fs::write(&doc, b"doc").unwrap();
    let two = l.append(&old, &["attest", "--file", s(&doc), "--note", "old works"]);
    assert_eq!(two, 2);
    // Only an administrator rotates keys, even the key's holder.
    l.refused(
        Some(&old),
        &["key", "rotate", &old_id[..8], s(&new_pub)],
        "may not sign key.rotate entries",
    );
    let seq = l.append(&l.admin, &["key", "rotate", &old_id[..8], s(&new_pub)]);
    assert_eq!(seq, 3);
    l.refused(
        Some(&old),
        &["attest", "--file", s(&doc), "--note", "old after rotation"],
        "was revoked at entry 3 and signs nothing after it",
    );
    // The new key has the same role: it records, and cannot enroll keys.
    l.append(&new, &["attest", "--file", s(&doc), "--note", "new works"]);
    l.append(
        &new,
        &[
            "partner",
            "add",
            "--id",
            "mof",
            "--name",
            "Ministry of Finance",
            "--type",
            "government",
            "--country",
            "AE",
            "--date",
            "2026-01-05",
        ],
    );
    l.refused(
        Some(&new),
        &[
            "key",
            "enroll",
            s(&l.keys.join("rec-old.pub")),
            "--role",
            "auditor",
        ],
        "key rec-new has role recorder, which may not sign key.enroll entries",
    );
    let k = l.key_entry(&new_id);
    assert_eq!(k["role"], "recorder");
    assert_eq!(k["name"], "rec-new");
    assert_eq!(k["enrolled_seq"], 3);
    assert_eq!(k["status"], "active");
    let o = l.key_entry(&old_id);
    assert_eq!(o["status"], "revoked");
    assert_eq!(o["revoked_seq"], 3);
    // A revoked key cannot be rotated again, nor can a key rotate to itself.
    let (_, other_pub, _) = l.generate("rec-other");
    l.refused(
        Some(&l.admin),
        &["key", "rotate", &old_id, s(&other_pub)],
        "key rec-old is already revoked",
    );
    l.refused(
        Some(&l.admin),
        &["key", "rotate", &new_id, s(&new_pub)],
        "is already enrolled",
    );

    // The sole administrator can rotate its own key (it cannot be revoked).
    let (_, admin_new_pub, admin_new_id) = l.generate("admin-2027");
    let admin_id = key_id_of(&l.keys.join("admin.pub"));
    let seq = l.append(&l.admin, &["key", "rotate", &admin_id, s(&admin_new_pub)]);
    l.refused(
        Some(&l.admin),
        &["attest", "--file", s(&doc), "--note", "old admin"],
        &format!("was revoked at entry {seq} and signs nothing after it"),
    );
    let admin_new = l.keys.join("admin-2027.key");
    l.append(
        &admin_new,
        &["key", "enroll", s(&other_pub), "--role", "auditor"],
    );
    assert_eq!(l.key_entry(&admin_new_id)["role"], "administrator");
    l.assert_intact();
}

// ---------------------------------------------------------------------------
// 3. Policy
// ---------------------------------------------------------------------------

#[test]
fn policy_set_changes_what_a_fee_needs() {
    let l = Env::new();
    let (rec, _) = l.enroll("rec", "recorder", None);
    let (rec2, _) = l.enroll("rec2", "recorder", None);
    l.fund(&rec);

    // init installed the documented default policy, in force since genesis.
    let shown = l.policy_show();
    assert_eq!(shown["format_version"], 1);
    assert_eq!(shown["in_force_since_seq"], 0);
    assert_eq!(shown["policy"], default_policy());

    let mut policy = default_policy();
    without_kind(&mut policy, "fee");
    policy["rules"].as_array_mut().unwrap().push(
        serde_json::json!({"kinds": ["fee"], "roles": ["administrator", "recorder"], "signers": 2}),
    );
    let file = l.path("policy.json");
    write_json(&file, &policy);
    let seq = l.append(&l.admin, &["policy", "set", s(&file)]);
    let shown = l.policy_show();
    assert_eq!(shown["in_force_since_seq"], seq);
    assert_eq!(shown["policy"], policy);
    let text = l.ok(None, &["policy", "show"]);
    assert!(
        text.contains(&format!("policy in force since entry {seq}")),
        "{text}"
    );

    l.refused(
        Some(&rec),
        FEE,
        "fee entry needs 1 more signature from administrator or recorder keys (2 distinct needed, 1 present)",
    );
    // Expenses still need one signature.
    l.append(
        &rec,
        &[
            "expense",
            "--fund",
            "f1",
            "--amount",
            "1000.00 USD",
            "--date",
            "2026-03-31",
        ],
    );
    // Two recorders together may pay the fee.
    let p = l.propose(Some(&rec), "fee.json", FEE);
    l.cosign(&rec2, &p);
    let fee = l.submit(&p);
    assert_eq!(l.show(fee)["kind"], "fee");
    assert_eq!(l.show(fee)["signatures"].as_array().unwrap().len(), 2);
    l.assert_intact();
}

#[test]
fn a_policy_takes_effect_from_the_entry_after_it() {
    let l = Env::new();
    let (admin2, _) = l.enroll("admin2", "administrator", None);
    // Key management and policy now need two administrators.
    let mut policy = default_policy();
    policy["rules"][0]["signers"] = 2.into();
    let file = l.path("policy.json");
    write_json(&file, &policy);
    // The policy.set entry is checked against the policy before it: one
    // administrator may put it in force.
    let seq = l.append(&l.admin, &["policy", "set", s(&file)]);
    assert_eq!(l.policy_show()["in_force_since_seq"], seq);
    let (_, rec_pub, _) = l.generate("rec");
    l.refused(
        Some(&l.admin),
        &["key", "enroll", s(&rec_pub), "--role", "recorder"],
        "key.enroll entry needs 1 more signature from administrator keys (2 distinct needed, 1 present)",
    );
    write_json(&file, &default_policy());
    l.refused(
        Some(&admin2),
        &["policy", "set", s(&file)],
        "policy.set entry needs 1 more signature",
    );
    let p = l.propose(
        Some(&l.admin),
        "enroll.json",
        &["key", "enroll", s(&rec_pub), "--role", "recorder"],
    );
    l.cosign(&admin2, &p);
    l.submit(&p);
    // Back to the default, with two signatures; then one is enough again.
    let p = l.propose(
        Some(&admin2),
        "policy-proposal.json",
        &["policy", "set", s(&file)],
    );
    l.cosign(&l.admin, &p);
    let back = l.submit(&p);
    assert_eq!(l.policy_show()["in_force_since_seq"], back);
    assert_eq!(l.policy_show()["policy"], default_policy());
    let (_, aud_pub, _) = l.generate("aud");
    l.append(
        &l.admin,
        &["key", "enroll", s(&aud_pub), "--role", "auditor"],
    );
    l.assert_intact();
}

#[test]
fn invalid_policy_files_are_refused() {
    let l = Env::new();
    let file = l.path("bad.json");
    let before = l.policy_show();

    let mut missing = default_policy();
    without_kind(&mut missing, "expense");
    let mut unknown_role = default_policy();
    unknown_role["rules"][1]["roles"]
        .as_array_mut()
        .unwrap()
        .push("treasurer".into());
    let mut twice = default_policy();
    twice["rules"][1]["kinds"]
        .as_array_mut()
        .unwrap()
        .push("fee".into());
    let mut zero = default_policy();
    zero["rules"][2]["signers"] = 0.into();
    let mut low_threshold = default_policy();
    low_threshold["rules"][3]["above"]["signers"] = 1.into();
    let mut partner_key_elsewhere = default_policy();
    partner_key_elsewhere["rules"][2]["partner_key"] = "required".into();
    let mut unknown_field = default_policy();
    unknown_field["rules"][0]["quorum"] = 3.into();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "a kind missing",
            missing,
            "kind expense is not covered by any rule",
        ),
        (
            "an unknown role",
            unknown_role,
            "unknown role \"treasurer\"",
        ),
        (
            "a kind in two rules",
            twice,
            "kind fee appears in two rules",
        ),
        ("signers 0", zero, "signers must be 1 to 16"),
        (
            "a threshold not above the rule",
            low_threshold,
            "a threshold must ask for more signers",
        ),
        (
            "partner_key on a kind without a partner",
            partner_key_elsewhere,
            "partner_key applies only to kinds naming a partner",
        ),
        ("an unknown field", unknown_field, "is not a policy"),
    ];
    for (case, policy, phrase) in cases {
        let _ = std::fs::remove_file(&file);
        write_json(&file, &policy);
        let stderr = l.refused(Some(&l.admin), &["policy", "set", s(&file)], phrase);
        assert!(stderr.contains("policy"), "{case}: {stderr}");
    }
    std::fs::write(&file, "rules: []").unwrap();
    l.refused(
        Some(&l.admin),
        &["policy", "set", s(&file)],
        "is not a policy",
    );
    assert_eq!(l.entries(), 1, "nothing was appended");
    assert_eq!(l.policy_show(), before);
}

#[test]
fn investments_above_the_threshold_need_two_signers() {
    let l = Env::new();
    let (rec, _) = l.enroll("rec", "recorder", None);
    l.fund(&rec);
    let invest = |amount: &'static str| -> Vec<&'static str> {
        vec![
            "invest",
            "--fund",
            "f1",
            "--startup",
            "acme",
            "--amount",
            amount,
            "--date",
            "2026-05-01",
        ]
    };
    l.refused(
        Some(&rec),
        &invest("10000000.01 USD"),
        "investment entry needs 1 more signature from administrator or recorder keys (2 distinct needed (the amount is above 10000000 USD), 1 present)",
    );
    // An administrator alone is held to the same rule.
    l.refused(
        Some(&l.admin),
        &invest("12000000.00 USD"),
        "2 distinct needed (the amount is above 10000000 USD), 1 present",
    );
    // At the threshold, one recorder is enough.
    let seq = l.append(&rec, &invest("10000000.00 USD"));
    assert_eq!(l.show(seq)["signatures"].as_array().unwrap().len(), 1);
    // Distributions follow the same rule.
    l.refused(
        Some(&rec),
        DISTRIBUTE_15M,
        "distribution entry needs 1 more signature",
    );
    l.append(
        &rec,
        &[
            "distribute",
            "--fund",
            "f1",
            "--amount",
            "10000000.00 USD",
            "--date",
            "2026-10-01",
        ],
    );
    l.assert_intact();
}

#[test]
fn a_partner_key_once_enrolled_must_sign_its_commitments() {
    let l = Env::new();
    let (rec, _) = l.enroll("rec", "recorder", None);
    l.fund(&rec);
    let commit = |partner: &'static str| -> Vec<&'static str> {
        vec![
            "commit",
            "--fund",
            "f1",
            "--partner",
            partner,
            "--amount",
            "5000000.00 USD",
            "--date",
            "2026-06-01",
        ]
    };
    // Without a partner key, a recorder alone records a commitment.
    l.append(&rec, &commit("mof"));
    let (mof_key, mof_id) = l.enroll("mof-key", "partner", Some("mof"));
    l.refused(
        Some(&rec),
        &commit("mof"),
        "commitment entry needs the signature of partner mof's own key",
    );
    let mut reduce = commit("mof");
    reduce.push("--reduce");
    l.refused(
        Some(&rec),
        &reduce,
        "commitment.reduce entry needs the signature of partner mof's own key",
    );
    // Another partner without a key is unaffected.
    l.append(&rec, &commit("adq"));
    // Recorder and partner key together, through a proposal.
    let p = l.propose(None, "commit.json", &commit("mof"));
    l.cosign(&rec, &p);
    // One signature is not enough yet: submit names what is missing.
    let stderr = l.refused(
        None,
        &["submit", s(&p)],
        "the signature of partner mof's own key",
    );
    assert!(!stderr.contains("more signature"), "{stderr}");
    l.cosign(&mof_key, &p);
    let seq = l.submit(&p);
    let entry = l.show(seq);
    assert_eq!(entry["kind"], "commitment");
    let signers: Vec<&str> = entry["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(signers.len(), 2);
    assert!(signers.contains(&mof_id.as_str()));
    // Once the partner key is revoked, a recorder alone suffices again.
    l.append(
        &l.admin,
        &["key", "revoke", &mof_id, "--reason", "rotated out"],
    );
    l.append(&rec, &commit("mof"));
    l.assert_intact();
}

#[test]
fn partner_key_required_by_policy() {
    let l = Env::new();
    let (rec, _) = l.enroll("rec", "recorder", None);
    l.fund(&rec);
    let mut policy = default_policy();
    policy["rules"][4]["partner_key"] = "required".into();
    let file = l.path("policy.json");
    write_json(&file, &policy);
    l.append(&l.admin, &["policy", "set", s(&file)]);
    // "required": without any partner key, no commitment can be recorded.
    l.refused(
        Some(&rec),
        &[
            "commit",
            "--fund",
            "f1",
            "--partner",
            "adq",
            "--amount",
            "1000.00 USD",
            "--date",
            "2026-06-01",
        ],
        "commitment entry needs the signature of partner adq's own key",
    );
    l.assert_intact();
}

// ---------------------------------------------------------------------------
// 4. Multi-signature refusals
// ---------------------------------------------------------------------------

/// A ledger with a fund and two recorders, and a distribution of 15,000,000
/// proposed by rec1 and cosigned by rec2: ready to submit.
fn signed_distribution() -> (Env, PathBuf, PathBuf, PathBuf) {
    let l = Env::new();
    let (rec1, _) = l.enroll("rec1", "recorder", None);
    let (rec2, _) = l.enroll("rec2", "recorder", None);
    l.fund(&rec1);
    let p = l.propose(Some(&rec1), "dist.json", DISTRIBUTE_15M);
    l.cosign(&rec2, &p);
    (l, p, rec1, rec2)
}

/// Refuse `submit FILE` (and leave the ledger unchanged).
fn refuse_submit(l: &Env, p: &Path, phrase: &str) -> String {
    l.refused(None, &["submit", s(p)], phrase)
}

/// Refuse `cosign FILE` with `key` and leave the file unchanged.
fn refuse_cosign(l: &Env, key: &Path, p: &Path, phrase: &str) {
    let before = std::fs::read(p).unwrap();
    l.refused(Some(key), &["cosign", s(p)], phrase);
    assert_eq!(before, std::fs::read(p).unwrap(), "cosign changed the file");
}

#[test]
fn a_proposal_changed_after_it_was_signed_is_refused() {
    let (l, p, _, _) = signed_distribution();
    // Raise the amount to 16,000,000 and rebuild everything a careful forger
    // would: the postings, the content bytes, the hash and the readable copy.
    let mut json = read_json(&p);
    let bytes = hex::decode(json["content"].as_str().unwrap()).unwrap();
    let mut content = Content::decode(&bytes).unwrap();
    let mut body = Body::decode(&content.kind, &content.body).unwrap();
    match &mut body.event {
        Event::Distribution(d) => d.amount = "16000000.00".into(),
        other => panic!("not a distribution: {other:?}"),
    }
    body.postings = {
        let ledger = Ledger::open_read_only(&l.ledger).unwrap();
        ledger
            .state()
            .prepare(content.seq, &body.event, &|_| Ok(None))
            .unwrap()
            .postings()
    };
    content.body = body.encode().unwrap();
    let encoded = content.encode();
    json["content"] = hex::encode(&encoded).into();
    json["entry_hash"] = hex::encode(Sha256::digest(&encoded)).into();
    json["body"] = serde_json::from_slice(&content.body).unwrap();
    assert_eq!(json["body"]["event"]["amount"], "16000000.00");
    write_json(&p, &json);
    // The file is self-consistent: only the signatures can tell.
    fundledger::proposal::Proposal::parse(&std::fs::read_to_string(&p).unwrap())
        .expect("the edited proposal parses");
    let err = refuse_submit(
        &l,
        &p,
        "does not verify: the proposal was changed after it was signed",
    );
    assert!(err.contains("the signature by key rec1"), "{err}");
    // A further cosigner with the ledger at hand is warned too.
    refuse_cosign(
        &l,
        &l.admin,
        &p,
        "does not verify: the proposal was changed after it was signed",
    );
}

#[test]
fn a_proposal_whose_readable_body_was_edited_is_refused() {
    let (l, p, _, _) = signed_distribution();
    let mut json = read_json(&p);
    json["body"]["event"]["amount"] = "16000000.00".into();
    write_json(&p, &json);
    refuse_submit(
        &l,
        &p,
        "the proposal's readable fields do not match its content: it was edited",
    );
    refuse_cosign(&l, &l.admin, &p, "it was edited");
}

#[test]
fn a_proposal_whose_content_no_longer_matches_its_hash_is_refused() {
    let (l, p, _, _) = signed_distribution();
    let mut json = read_json(&p);
    let content = json["content"].as_str().unwrap().to_string();
    let edited = content.replacen(&hex::encode("15000000.00"), &hex::encode("16000000.00"), 1);
    assert_ne!(content, edited);
    json["content"] = edited.into();
    write_json(&p, &json);
    refuse_submit(
        &l,
        &p,
        "the proposal was changed: its content no longer has the hash that was signed",
    );
}

#[test]
fn a_proposal_signed_by_an_unknown_key_is_refused() {
    let l = Env::new();
    let (rec, _) = l.enroll("rec", "recorder", None);
    l.fund(&rec);
    let (stranger, _, stranger_id) = l.generate("stranger");
    let p = l.propose(Some(&rec), "fee.json", FEE);
    // The stranger cosigns on its own machine, without the ledger.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = finish(
        command()
            .current_dir(elsewhere.path())
            .arg("--key")
            .arg(&stranger)
            .args(["cosign", s(&p)]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read_json(&p)["signatures"].as_array().unwrap().len(), 2);
    refuse_submit(
        &l,
        &p,
        &format!("signing key {stranger_id} is not enrolled in this ledger"),
    );
    refuse_cosign(
        &l,
        &l.admin,
        &p,
        &format!(
            "the proposal carries a signature by key {}, which is not enrolled in this ledger",
            &stranger_id[..16]
        ),
    );
}

#[test]
fn a_proposal_signed_by_a_revoked_key_is_refused() {
    let l = Env::new();
    let (rec1, _) = l.enroll("rec1", "recorder", None);
    let (rec2, rec2_id) = l.enroll("rec2", "recorder", None);
    l.fund(&rec1);
    let r = l.append(&l.admin, &["key", "revoke", &rec2_id, "--reason", "left"]);
    let p = l.propose(Some(&rec1), "fee.json", FEE);
    // rec2 signs on its own machine, where it cannot see its revocation.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = finish(
        command()
            .current_dir(elsewhere.path())
            .arg("--key")
            .arg(&rec2)
            .args(["cosign", s(&p)]),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    refuse_submit(
        &l,
        &p,
        &format!(
            "signing key rec2 ({}) was revoked at entry {r} and signs nothing after it",
            &rec2_id[..16]
        ),
    );
    refuse_cosign(
        &l,
        &l.admin,
        &p,
        "the proposal is signed by revoked key rec2",
    );
}

#[test]
fn the_same_key_cannot_sign_a_proposal_twice() {
    let l = Env::new();
    let (rec1, _) = l.enroll("rec1", "recorder", None);
    l.fund(&rec1);
    let p = l.propose(Some(&rec1), "dist.json", DISTRIBUTE_15M);
    refuse_cosign(
        &l,
        &rec1,
        &p,
        "this key already signed the proposal; each signer counts once",
    );
    // A file hand-edited to carry the same signature twice.
    let mut json = read_json(&p);
    let sig = json["signatures"][0].clone();
    json["signatures"].as_array_mut().unwrap().push(sig);
    write_json(&p, &json);
    refuse_submit(&l, &p, "signed the proposal twice");
    refuse_cosign(&l, &l.admin, &p, "signed the proposal twice");
}

#[test]
fn a_stale_proposal_is_refused() {
    let l = Env::new();
    let (rec, _) = l.enroll("rec", "recorder", None);
    l.fund(&rec);
    let p = l.propose(Some(&rec), "fee.json", FEE);
    let seq = read_json(&p)["seq"].as_u64().unwrap();
    assert_eq!(seq as usize, l.entries());
    l.append(
        &rec,
        &[
            "expense",
            "--fund",
            "f1",
            "--amount",
            "1000.00 USD",
            "--date",
            "2026-03-31",
        ],
    );
    let err = refuse_submit(
        &l,
        &p,
        &format!(
            "the proposal is stale: it was made for entry {seq} but the ledger's next entry is {}",
            seq + 1
        ),
    );
    assert!(err.contains("propose the event again"), "{err}");
}

#[test]
fn submit_with_too_few_signatures_says_what_is_missing() {
    let l = Env::new();
    let (rec1, _) = l.enroll("rec1", "recorder", None);
    l.fund(&rec1);
    let none = l.propose(None, "none.json", DISTRIBUTE_15M);
    refuse_submit(
        &l,
        &none,
        "distribution entry needs 2 more signatures from administrator or recorder keys (2 distinct needed (the amount is above 10000000 USD), 0 present)",
    );
    let one = l.propose(Some(&rec1), "one.json", DISTRIBUTE_15M);
    refuse_submit(
        &l,
        &one,
        "distribution entry needs 1 more signature from administrator or recorder keys (2 distinct needed (the amount is above 10000000 USD), 1 present)",
    );
    // A one-signature kind goes through the same flow with one signature.
    let fee = l.propose(Some(&rec1), "fee.json", FEE);
    l.submit(&fee);
    l.assert_intact();
}

#[test]
fn a_proposal_for_another_ledger_is_refused() {
    // Two ledgers at the same position (entry 2 next) with the same origin
    // but different histories: a proposal made for one must be refused by
    // the other as made on a different history, not as stale (which would
    // tell the user to propose again there).
    let a = Env::new();
    let b = Env::new();
    let (_, rec_pub, _) = a.generate("rec");
    a.append(
        &a.admin,
        &["key", "enroll", s(&rec_pub), "--role", "recorder"],
    );
    b.append(
        &b.admin,
        &["key", "enroll", s(&rec_pub), "--role", "recorder"],
    );
    let rec = a.keys.join("rec.key");
    let doc = a.path("doc.txt");
    std::fs::write(&doc, b"doc").unwrap();
    let p = a.propose(
        Some(&rec),
        "attest.json",
        &["attest", "--file", s(&doc), "--note", "n"],
    );
    assert_eq!(read_json(&p)["seq"], b.entries() as u64);
    let copy = b.path("attest.json");
    std::fs::copy(&p, &copy).unwrap();
    refuse_submit(&b, &copy, "different history");
}

#[test]
fn propose_refuses_commands_that_record_nothing() {
    let l = Env::new();
    let out = l.path("p.json");
    for (args, phrase) in [
        (
            &["propose", "key", "list", "--out", s(&out)][..],
            "only commands that record an entry can be proposed",
        ),
        (
            &["propose", "key", "generate", "x", "--out", s(&out)][..],
            "only commands that record an entry can be proposed",
        ),
        (
            &["propose", "policy", "show", "--out", s(&out)][..],
            "`policy show` records nothing and cannot be proposed",
        ),
    ] {
        l.refused(None, args, phrase);
        assert!(!out.exists());
    }
    // propose needs --out, and never overwrites a file.
    let doc = l.path("doc.txt");
    std::fs::write(&doc, b"doc").unwrap();
    l.refused(
        None,
        &["propose", "attest", "--file", s(&doc), "--note", "n"],
        "propose needs --out FILE",
    );
    std::fs::write(&out, b"keep me").unwrap();
    l.refused(
        None,
        &[
            "propose",
            "attest",
            "--file",
            s(&doc),
            "--note",
            "n",
            "--out",
            s(&out),
        ],
        "cannot create",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
}

// ---------------------------------------------------------------------------
// 5. End to end
// ---------------------------------------------------------------------------

#[test]
fn a_two_signer_distribution_from_proposal_to_verified_entry() {
    let l = Env::new();
    let (alice, alice_id) = l.enroll("alice", "recorder", None);
    let (bob, bob_id) = l.enroll("bob", "recorder", None);
    l.fund(&alice);
    let before = l.entries();
    let p = l.propose(None, "p.json", DISTRIBUTE_15M);
    let proposal = read_json(&p);
    assert_eq!(proposal["type"], "fundledger-proposal");
    assert_eq!(proposal["format_version"], 1);
    assert_eq!(proposal["origin"], ORIGIN);
    assert_eq!(proposal["kind"], "distribution");
    assert_eq!(proposal["seq"], before as u64);
    assert_eq!(proposal["signatures"], serde_json::json!([]));
    assert_eq!(proposal["body"]["event"]["amount"], "15000000.00");

    // Alice and Bob each run their own process with their own key. Bob works
    // on a machine without the ledger.
    let alice_out = finish(
        command()
            .current_dir(l.root())
            .arg("--ledger")
            .arg(&l.ledger)
            .arg("--key")
            .arg(&alice)
            .args(["cosign", s(&p)]),
    );
    assert_eq!(alice_out.code, 0, "{}", alice_out.stderr);
    assert!(
        alice_out.stdout.contains("(1 signatures)"),
        "{}",
        alice_out.stdout
    );
    let bobs_machine = tempfile::tempdir().unwrap();
    let bob_out = finish(
        command()
            .current_dir(bobs_machine.path())
            .arg("--key")
            .arg(&bob)
            .args(["cosign", s(&p)]),
    );
    assert_eq!(bob_out.code, 0, "{}", bob_out.stderr);
    assert!(
        bob_out.stdout.contains("(2 signatures)"),
        "{}",
        bob_out.stdout
    );
    assert_eq!(l.entries(), before, "cosigning appends nothing");

    let seq = l.submit(&p);
    assert_eq!(seq, before as u64);
    assert_eq!(l.entries(), before + 1);
    let (code, report) = l.verify();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "intact", "{report}");
    let entry = l.show(seq);
    assert_eq!(entry["kind"], "distribution");
    assert_eq!(entry["entry_hash"], proposal["entry_hash"]);
    let sigs = entry["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    let mut ids: Vec<&str> = sigs.iter().map(|s| s["key_id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = vec![alice_id.as_str(), bob_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    // Submitting the same proposal again is refused as stale.
    refuse_submit(&l, &p, "the proposal is stale");
}

// ---------------------------------------------------------------------------
// 6. Encrypted keys
// ---------------------------------------------------------------------------

const PASS: &str = "correct horse battery";

#[test]
fn encrypted_keys_need_the_right_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let keys = root.join("keys");
    let ledger = root.join("ledger.sqlite");
    let run = |pass: Option<&str>, key: Option<&Path>, args: &[&str]| -> Out {
        let mut cmd = command();
        cmd.current_dir(root).arg("--ledger").arg(&ledger);
        if let Some(p) = pass {
            cmd.env("FUNDLEDGER_KEY_PASSPHRASE", p);
        }
        if let Some(k) = key {
            cmd.arg("--key").arg(k);
        }
        finish(cmd.args(args))
    };

    // Too short a passphrase, or none at all without a terminal, is refused.
    let out = run(
        Some("short"),
        None,
        &["key", "generate", "x", "--dir", s(&keys), "--encrypt"],
    );
    assert_refusal(&out, "at least 8 characters", "short passphrase");
    let out = run(
        None,
        None,
        &["key", "generate", "x", "--dir", s(&keys), "--encrypt"],
    );
    assert_refusal(
        &out,
        "FUNDLEDGER_KEY_PASSPHRASE",
        "generate without passphrase",
    );
    assert!(!keys.join("x.key").exists());

    // One encrypted key, reused below (each use derives the key anew).
    let out = run(
        Some(PASS),
        None,
        &["key", "generate", "admin", "--dir", s(&keys), "--encrypt"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let key = keys.join("admin.key");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
        "{text}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    match Command::new("openssl")
        .args([
            "pkey",
            "-in",
            s(&key),
            "-passin",
            &format!("pass:{PASS}"),
            "-noout",
        ])
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "openssl cannot open the key: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("note: openssl is not installed; skipping the OpenSSL check"),
    }

    // Wrong passphrase, and no passphrase without a terminal: exit 2.
    let out = run(
        Some("not the passphrase"),
        Some(&key),
        &["init", "--origin", ORIGIN],
    );
    assert_refusal(&out, "wrong passphrase", "init with a wrong passphrase");
    assert!(!ledger.exists(), "a refused init leaves no ledger");
    let out = run(None, Some(&key), &["init", "--origin", ORIGIN]);
    assert_refusal(
        &out,
        "FUNDLEDGER_KEY_PASSPHRASE",
        "init without a passphrase",
    );
    assert!(!ledger.exists());

    // The right passphrase opens it.
    let out = run(Some(PASS), Some(&key), &["init", "--origin", ORIGIN]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = |ledger: &Path| {
        finish(
            command()
                .arg("--ledger")
                .arg(ledger)
                .args(["log", "--json"]),
        )
        .stdout
    };
    let before = log(&ledger);
    let out = run(Some("not the passphrase"), Some(&key), &["key", "list"]);
    assert_eq!(out.code, 0, "reading needs no key");
    let doc = root.join("doc.txt");
    std::fs::write(&doc, b"doc").unwrap();
    let out = run(
        Some("wrong wrong wrong"),
        Some(&key),
        &["attest", "--file", s(&doc), "--note", "n"],
    );
    assert_refusal(&out, "wrong passphrase", "attest with a wrong passphrase");
    assert_eq!(log(&ledger), before);

    // Unencrypted keys keep working alongside (passphrase set or not).
    let out = run(None, None, &["key", "generate", "rec", "--dir", s(&keys)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(std::fs::read_to_string(keys.join("rec.key"))
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    let out = run(
        Some(PASS),
        Some(&key),
        &[
            "key",
            "enroll",
            s(&keys.join("rec.pub")),
            "--role",
            "recorder",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rec = keys.join("rec.key");
    let out = run(
        None,
        Some(&rec),
        &["attest", "--file", s(&doc), "--note", "plain key"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(
        Some("irrelevant"),
        Some(&rec),
        &["attest", "--file", s(&doc), "--note", "plain key 2"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(None, None, &["verify"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(log(&ledger).lines().count(), 4);
}

/// A cosignature that the ledger's rule (ZIP 215) accepts but RFC 8032's
/// strict rules refuse (a point of order 8 in R, made by the key's holder)
/// is accepted by submit, as verify accepts it: the insert re-checks
/// collected signatures by the ledger's rule, not the strict one it applies
/// to signatures it made itself.
#[test]
fn submit_accepts_a_cosignature_valid_by_the_ledgers_rule() {
    use fundledger::event::KeyEnroll;
    use fundledger::ledger::AppendRequest;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let admin = SigningKey::from_bytes(&[1; 32]);
    let mut ledger = Ledger::init(&path, "zip215.example.org/l", &admin, "admin", 1).unwrap();
    // A recorder whose signatures the test makes by hand.
    let public = util::torsion_signer_public();
    ledger
        .append(AppendRequest {
            event: Event::KeyEnroll(KeyEnroll {
                name: "recorder".into(),
                public_key: base64::engine::general_purpose::STANDARD.encode(public),
                role: "recorder".into(),
                partner: None,
            }),
            idempotency_key: None,
            signers: &[&admin],
            now_unix_ms: 2,
        })
        .unwrap();
    let event = Event::Attest(Attest {
        file_name: "minutes.pdf".into(),
        sha256: "ab".repeat(32),
        size: 1,
        note: "board minutes".into(),
    });
    let content = ledger.propose(event, None, 3).unwrap();
    let hash = content.hash();
    let signature = util::torsion_in_r_signature(&hash);
    let sig = entry::EntrySignature {
        key_id: Sha256::digest(public).into(),
        signature,
    };
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    assert!(
        !entry::self_check(&vk, &hash, &sig),
        "the strict rules refuse it"
    );
    let appended = ledger.submit(&content, vec![sig]).unwrap();
    assert_eq!(appended.seq(), 2);
    let report = fundledger::verify::verify(ledger.store(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{report:?}");
}
