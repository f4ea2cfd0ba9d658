//! Audit bundles (schema/BUNDLE.md): the vectors in schema/vectors/bundle/
//! (a golden bundle of a ledger built from fixed keys and times, and
//! bundles that each break one rule), then `export bundle`, `verify
//! --bundle` and `restore` end to end through the binary.
//!
//! `FUNDLEDGER_BLESS=1 cargo test --test bundle` rewrites the vectors after
//! a deliberate change of the format (change schema/BUNDLE.md with them).

#[macro_use]
mod util;

use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use fundledger::event::{Attest, Event, KeyEnroll};
use fundledger::ledger::{AppendRequest, Ledger};
use util::{assert_refused, run_raw, TempLedger};

const ORIGIN: &str = "ledger.example.org/bundle-test";
/// 2026-01-01T00:00:00Z, the recording time of the fixed ledger's genesis.
const T0: i64 = 1_767_225_600_000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/vectors/bundle")
}

fn bless() -> bool {
    std::env::var("FUNDLEDGER_BLESS").is_ok_and(|v| v == "1")
}

fn attest(note: &str) -> Event {
    Event::Attest(Attest {
        file_name: format!("{note}.pdf"),
        sha256: hex::encode(Sha256::digest(note.as_bytes())),
        size: note.len() as u64,
        note: note.to_string(),
    })
}

/// The fixed ledger at `path`: genesis by the administrator (seed 7), an
/// auditor enrolled (seed 9), two attestations (one with an idempotency
/// key), a checkpoint of those four entries signed by the administrator,
/// then one more attestation. Every byte is a function of the keys and
/// times, so its bundle is the golden `valid.bundle`.
fn fixed_ledger(path: &Path) {
    let admin = SigningKey::from_bytes(&[7; 32]);
    let auditor = SigningKey::from_bytes(&[9; 32]);
    let mut ledger = Ledger::init(path, ORIGIN, &admin, "admin", T0).unwrap();
    let mut append = |event: Event, key: Option<&str>, at: i64| {
        ledger
            .append(AppendRequest {
                event,
                idempotency_key: key.map(str::to_string),
                signers: &[&admin],
                now_unix_ms: at,
            })
            .unwrap();
    };
    append(
        Event::KeyEnroll(KeyEnroll {
            name: "auditor".into(),
            public_key: B64.encode(auditor.verifying_key().as_bytes()),
            role: "auditor".into(),
            partner: None,
        }),
        None,
        T0 + 1_000,
    );
    append(attest("board minutes 2026-01"), None, T0 + 2_000);
    append(
        attest("subscription agreement"),
        Some("doc-2026-0001"),
        T0 + 3_000,
    );
    let (cp, note) = fundledger::checkpoint::sign_checkpoint(&ledger, &admin).unwrap();
    ledger
        .record_checkpoint(cp.tree_size, &note, T0 + 3_500)
        .unwrap();
    ledger
        .append(AppendRequest {
            event: attest("board minutes 2026-02"),
            idempotency_key: None,
            signers: &[&admin],
            now_unix_ms: T0 + 4_000,
        })
        .unwrap();
}

/// The bundle of the fixed ledger, written by the library.
fn fixed_bundle() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    fixed_ledger(&path);
    let store = fundledger::store::Store::open_read_only(&path).unwrap();
    let mut out = Vec::new();
    fundledger::bundle::write(&store, &mut out, &mut |_, _| {}).unwrap();
    out
}

/// The lines of a bundle, without their LFs.
fn lines_of(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    text.strip_suffix('\n')
        .unwrap()
        .split('\n')
        .map(str::to_string)
        .collect()
}

/// Lines joined with LFs, the last replaced by the SHA-256 line of the rest.
fn reseal(mut lines: Vec<String>) -> Vec<u8> {
    lines.pop();
    let mut bytes: Vec<u8> = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let sha = hex::encode(Sha256::digest(&bytes));
    bytes.extend(format!("sha256 {sha}\n").into_bytes());
    bytes
}

/// RFC 9162 section 2.1.1, written here again so that the expected roots
/// do not come from the code under test.
fn merkle_root(leaves: &[Vec<u8>]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(&leaves[0]);
            h.finalize().into()
        }
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(merkle_root(&leaves[..k]));
            h.update(merkle_root(&leaves[k..]));
            h.finalize().into()
        }
    }
}

/// A vector: file name, the one change it makes, its bytes, its outcome.
struct Vector {
    file: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    outcome: Value,
}

/// Every vector, derived from the golden bundle. Lines of the fixed
/// bundle: 1 the magic, 2 `entries 5`, 3 to 7 the records of entries 0 to
/// 4, 8 `checkpoints 1`, 9 the checkpoint, 10 `sha256`.
fn vectors(valid: &[u8]) -> Vec<Vector> {
    let lines = lines_of(valid);
    assert_eq!(lines.len(), 10, "the fixed bundle's shape changed");
    let records: Vec<Vec<u8>> = lines[2..7].iter().map(|l| B64.decode(l).unwrap()).collect();
    let head = fundledger::entry::Record::decode_hashed(&records[4])
        .unwrap()
        .1;
    let with = |f: &dyn Fn(&mut Vec<String>)| {
        let mut l = lines.clone();
        f(&mut l);
        l
    };
    let record_line = |i: usize, f: &dyn Fn(&mut Vec<u8>)| {
        let mut r = records[i].clone();
        f(&mut r);
        B64.encode(r)
    };
    let failed = |check: &str, seq: u64| json!({"outcome": "failed", "check": check, "seq": seq});
    let damaged =
        |line: u64, error: &str| json!({"outcome": "damaged", "line": line, "error": error});
    // A record line whose base64 ends in padding, with the unused bits of
    // its last character set.
    let (pad_line, pad_text) = (2..7)
        .find_map(|i| {
            let l = &lines[i];
            let pad = l.len() - l.trim_end_matches('=').len();
            (pad > 0).then(|| {
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                let at = l.len() - pad - 1;
                let value = alphabet
                    .iter()
                    .position(|&c| c == l.as_bytes()[at])
                    .unwrap();
                let unused = if pad == 2 { 0x0f } else { 0x03 };
                let mut text = l.clone().into_bytes();
                text[at] = alphabet[value | unused];
                (i, String::from_utf8(text).unwrap())
            })
        })
        .expect("a record whose length is not a multiple of 3");
    let mut crlf = valid.to_vec();
    crlf = String::from_utf8(crlf)
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    let half = valid.len() / 2;
    let truncated = valid[..half].to_vec();
    let truncated_line = truncated.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    // Entry 4 made again with entry 3's body, so its idempotency key, and
    // signed by the administrator: a good signature on a reused key.
    let reused_key = {
        let (mut record, _) = fundledger::entry::Record::decode_hashed(&records[4]).unwrap();
        let (entry3, _) = fundledger::entry::Record::decode_hashed(&records[3]).unwrap();
        record.content.body = entry3.content.body;
        let admin = SigningKey::from_bytes(&[7; 32]);
        let signature = fundledger::entry::sign(&admin, &record.content.hash());
        let record = fundledger::entry::Record::new(record.content, vec![signature]).unwrap();
        B64.encode(record.encode())
    };
    let mut trailing = valid.to_vec();
    trailing.push(b'\n');
    vec![
        Vector {
            file: "valid.bundle",
            description: "the fixed ledger of tests/bundle.rs: five entries, a checkpoint of the first four",
            bytes: valid.to_vec(),
            outcome: json!({
                "outcome": "intact",
                "entries": 5,
                "head_hash": hex::encode(head),
                "root_hash": hex::encode(merkle_root(&records)),
            }),
        },
        Vector {
            file: "failed-signature.bundle",
            description: "entry 2: one bit of its signature flipped",
            bytes: reseal(with(&|l| {
                l[4] = record_line(2, &|r| *r.last_mut().unwrap() ^= 1)
            })),
            outcome: failed("signature", 2),
        },
        Vector {
            file: "failed-sequence.bundle",
            description: "the records of entries 2 and 3 swapped",
            bytes: reseal(with(&|l| l.swap(4, 5))),
            outcome: failed("sequence", 2),
        },
        Vector {
            file: "failed-decode.bundle",
            description: "entry 1: its record's last byte removed",
            bytes: reseal(with(&|l| {
                l[3] = record_line(1, &|r| {
                    r.pop();
                })
            })),
            outcome: failed("decode", 1),
        },
        Vector {
            file: "failed-gap.bundle",
            description: "entry 3 removed (the count says 4): entry 4's record follows entry 2",
            bytes: reseal(with(&|l| {
                l.remove(5);
                l[1] = "entries 4".into();
            })),
            outcome: failed("sequence", 3),
        },
        Vector {
            file: "failed-idempotency-key.bundle",
            description: "entry 4 signed again with entry 3's body, reusing its idempotency key",
            bytes: reseal(with(&|l| l[6] = reused_key.clone())),
            outcome: failed("idempotency_key", 4),
        },
        Vector {
            file: "failed-checkpoint-history.bundle",
            description: "the checkpoint of 4 entries said to be recorded at tree size 3",
            bytes: reseal(with(&|l| l[8] = l[8].replacen("4 ", "3 ", 1))),
            outcome: failed("checkpoint_history", 2),
        },
        Vector {
            file: "damaged-magic.bundle",
            description: "a first line naming version 2",
            bytes: reseal(with(&|l| l[0] = "fundledger-bundle/v2".into())),
            outcome: damaged(1, "expected \"fundledger-bundle/v1\""),
        },
        Vector {
            file: "damaged-count.bundle",
            description: "`entries 05`: a count with a leading zero",
            bytes: reseal(with(&|l| l[1] = "entries 05".into())),
            outcome: damaged(2, "expected `entries <count>`"),
        },
        Vector {
            file: "damaged-base64.bundle",
            description: "entry 0's record with a `*` in its base64",
            bytes: reseal(with(&|l| l[2].replace_range(10..11, "*"))),
            outcome: damaged(3, "not canonical base64"),
        },
        Vector {
            file: "damaged-base64-bits.bundle",
            description: "a record's base64 with the unused bits of its last character set (it decodes to the same bytes, but is not canonical)",
            bytes: reseal(with(&|l| l[pad_line] = pad_text.clone())),
            outcome: damaged(pad_line as u64 + 1, "not canonical base64"),
        },
        Vector {
            file: "damaged-missing-record.bundle",
            description: "entry 4's record removed, the count left at 5: the `checkpoints` line comes where a record should",
            bytes: reseal(with(&|l| {
                l.remove(6);
            })),
            outcome: damaged(7, "not canonical base64"),
        },
        Vector {
            file: "damaged-checkpoint-size.bundle",
            description: "the checkpoint's tree size 6, beyond the 5 entries",
            bytes: reseal(with(&|l| l[8] = l[8].replacen("4 ", "6 ", 1))),
            outcome: damaged(9, "sizes must not decrease nor exceed"),
        },
        Vector {
            file: "damaged-sha256.bundle",
            description: "the last line's SHA-256 with one digit changed",
            bytes: {
                let mut l = lines.clone();
                let last = l.last_mut().unwrap();
                let flipped = if last.ends_with('0') { "1" } else { "0" };
                last.replace_range(last.len() - 1.., flipped);
                l.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect()
            },
            outcome: damaged(10, "SHA-256 does not match"),
        },
        Vector {
            file: "damaged-trailing.bundle",
            description: "an empty line after the `sha256` line",
            bytes: trailing,
            outcome: damaged(10, "bytes follow the `sha256` line"),
        },
        Vector {
            file: "damaged-crlf.bundle",
            description: "CR LF line ends",
            bytes: crlf,
            outcome: damaged(1, "expected \"fundledger-bundle/v1\""),
        },
        Vector {
            file: "damaged-truncated.bundle",
            description: "the first half of the file only",
            bytes: truncated,
            outcome: damaged(truncated_line, "does not end with a line feed"),
        },
    ]
}

/// The golden bundle is what the fixed ledger exports, its own SHA-256
/// line checks, and every vector file is what its rule makes of it, listed
/// in vectors.json with its outcome; no other file is there.
#[test]
fn vectors_are_what_the_rules_make() {
    let valid = fixed_bundle();
    let vectors = vectors(&valid);
    let index: Vec<Value> = vectors
        .iter()
        .map(|v| {
            let mut entry = json!({"file": v.file, "description": v.description});
            for (k, val) in v.outcome.as_object().unwrap() {
                entry[k] = val.clone();
            }
            entry
        })
        .collect();
    let dir = vectors_dir();
    if bless() {
        std::fs::create_dir_all(&dir).unwrap();
        for v in &vectors {
            std::fs::write(dir.join(v.file), &v.bytes).unwrap();
        }
        let text = serde_json::to_string_pretty(&index).unwrap() + "\n";
        std::fs::write(dir.join("vectors.json"), text).unwrap();
    }
    // The golden file's last line is the SHA-256 of the rest.
    let body = &valid[..valid.len() - 72];
    assert_eq!(
        &valid[valid.len() - 72..],
        format!("sha256 {}\n", hex::encode(Sha256::digest(body))).as_bytes()
    );
    for v in &vectors {
        let stored = std::fs::read(dir.join(v.file))
            .unwrap_or_else(|e| panic!("{}: {e} (run with FUNDLEDGER_BLESS=1)", v.file));
        assert!(
            stored == v.bytes,
            "{} differs from what its rule makes (run with FUNDLEDGER_BLESS=1 after a deliberate change)",
            v.file
        );
    }
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vectors.json")).unwrap()).unwrap();
    assert_eq!(stored, Value::Array(index), "vectors.json");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = vectors.iter().map(|v| v.file.to_string()).collect();
    expected.push("vectors.json".into());
    expected.sort();
    assert_eq!(
        files,
        expected,
        "stray or missing files in {}",
        dir.display()
    );
}

/// Each vector file, as stored, gets the outcome vectors.json gives it
/// from `verify --bundle`, and `restore` agrees and keeps no ledger but
/// for the intact one.
#[test]
fn vectors_get_their_outcome() {
    let dir = vectors_dir();
    let index: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vectors.json")).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    for v in &index {
        let file = v["file"].as_str().unwrap();
        let path = dir.join(file);
        let outcome = run_raw(work.path(), args!["verify", "--bundle", &path, "--json"]);
        let replica = work.path().join(format!("{file}.sqlite"));
        let restored = run_raw(
            work.path(),
            args!["--ledger", &replica, "restore", "--bundle", &path],
        );
        match v["outcome"].as_str().unwrap() {
            "intact" => {
                assert_eq!(outcome.0, 0, "{file}: {outcome:?}");
                let report: Value = serde_json::from_str(&outcome.1).unwrap();
                assert_eq!(report["status"], "intact", "{file}");
                assert_eq!(report["entries_verified"], v["entries"], "{file}");
                assert_eq!(report["head_hash"], v["head_hash"], "{file}");
                assert_eq!(report["root_hash"], v["root_hash"], "{file}");
                assert_eq!(report["checkpoints_verified"], 1, "{file}");
                assert_eq!(restored.0, 0, "{file}: {restored:?}");
                assert!(replica.exists(), "{file}");
            }
            "failed" => {
                assert_eq!(outcome.0, 1, "{file}: {outcome:?}");
                let report: Value = serde_json::from_str(&outcome.1).unwrap();
                assert_eq!(report["status"], "failed", "{file}");
                assert_eq!(report["failure"]["check"], v["check"], "{file}: {report}");
                assert_eq!(report["failure"]["seq"], v["seq"], "{file}: {report}");
                assert_eq!(restored.0, 1, "{file}: {restored:?}");
                assert!(
                    !replica.exists(),
                    "{file}: a failed restore kept its ledger"
                );
            }
            "damaged" => {
                assert_refused(&outcome, file);
                let at = format!("bundle line {}: ", v["line"]);
                let phrase = v["error"].as_str().unwrap();
                assert!(
                    outcome.2.contains(&at) && outcome.2.contains(phrase),
                    "{file}: stderr lacks {at:?} or {phrase:?}: {}",
                    outcome.2
                );
                assert_refused(&restored, file);
                assert!(
                    !replica.exists(),
                    "{file}: a refused restore kept its ledger"
                );
            }
            other => panic!("{file}: unknown outcome {other}"),
        }
    }
}

/// The demo's ledger: exported, verified with no ledger, restored into a
/// replica whose balances, positions, verify and bundle equal the
/// original's.
#[test]
fn a_replica_reads_like_the_original() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let (code, out, err) = run_raw(root, args!["demo", "--out", "demo"]);
    assert_eq!(code, 0, "{out}{err}");
    let original = root.join("demo/ledger.sqlite");
    let bundle = root.join("demo.bundle");
    let (code, out, err) = run_raw(
        root,
        args!["--ledger", &original, "export", "bundle", "--out", &bundle],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("wrote the bundle of "), "{out}");
    assert!(
        err.is_empty(),
        "progress must stay silent when piped: {err}"
    );
    assert!(!root.join("demo.bundle.partial").exists());

    let (code, out, err) = run_raw(root, args!["verify", "--bundle", &bundle]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("intact: "), "{out}");
    assert!(err.is_empty(), "{err}");

    let replica = root.join("replica.sqlite");
    let (code, out, err) = run_raw(
        root,
        args!["--ledger", &replica, "restore", "--bundle", &bundle],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("restored "), "{out}");
    for args in [
        args!["balances", "--json"],
        args!["position", "--fund", "gaif-1", "--json"],
        args!["verify", "--json"],
        args!["log", "--json"],
    ] {
        let of = |ledger: &Path| {
            let mut full = args!["--ledger", ledger];
            full.extend(args.clone());
            let (code, out, err) = run_raw(root, full);
            assert_eq!(code, 0, "{args:?}: {out}{err}");
            out
        };
        assert_eq!(of(&original), of(&replica), "{args:?}");
    }
    let again = root.join("again.bundle");
    let (code, out, err) = run_raw(
        root,
        args!["--ledger", &replica, "export", "bundle", "--out", &again],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(&bundle).unwrap(),
        std::fs::read(&again).unwrap(),
        "the replica's bundle differs from the one it was restored from"
    );
    // `--out -` writes the same bytes to stdout, and its summary to stderr.
    let output = util::command()
        .current_dir(root)
        .args(args![
            "--ledger", &original, "export", "bundle", "--out", "-"
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout, std::fs::read(&bundle).unwrap());
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("wrote the bundle of "));
    // `verify --bundle -` reads it from stdin, as it arrives.
    let mut child = util::command()
        .current_dir(root)
        .args(args!["verify", "--bundle", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&output.stdout).unwrap();
    }
    let verified = child.wait_with_output().unwrap();
    assert!(verified.status.success(), "{verified:?}");
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["status"], "intact");
}

/// `verify --bundle` removes its temporary ledger, and those that runs
/// killed before they could left behind (their process is gone), but not
/// another running process's, nor anything else in TMPDIR.
#[test]
fn verify_bundle_leaves_no_temporary_ledger() {
    let l = TempLedger::new();
    let bundle = l.root().join("ledger.bundle");
    l.ok(None, args!["export", "bundle", "--out", &bundle]);
    let tmp = l.root().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // No process has pid 4,000,000,000 (Linux caps pids at 2^22).
    let stale = tmp.join("fundledger-bundle-4000000000-1-0");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("ledger.sqlite"), b"left by a killed run").unwrap();
    let running = tmp.join(format!("fundledger-bundle-{}-1-0", std::process::id()));
    std::fs::create_dir(&running).unwrap();
    let other = tmp.join("fundledger-bundle-notes");
    std::fs::create_dir(&other).unwrap();
    let output = util::command()
        .current_dir(l.root())
        .env("TMPDIR", &tmp)
        .args(args!["verify", "--bundle", &bundle])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut expected = vec![
        "fundledger-bundle-notes".to_string(),
        running.file_name().unwrap().to_string_lossy().into_owned(),
    ];
    expected.sort();
    assert_eq!(left, expected);
}

/// What must never be replaced: an existing bundle file, an existing
/// ledger. Both refusals leave the file byte-for-byte as it was.
#[test]
fn nothing_is_overwritten() {
    let l = TempLedger::new();
    let bundle = l.root().join("ledger.bundle");
    l.ok(None, args!["export", "bundle", "--out", &bundle]);
    let before = std::fs::read(&bundle).unwrap();
    let outcome = l.run(None, args!["export", "bundle", "--out", &bundle]);
    assert_refused(&outcome, "export bundle over an existing file");
    assert!(outcome.2.contains("already exists"), "{outcome:?}");
    assert_eq!(std::fs::read(&bundle).unwrap(), before);
    assert!(!l.root().join("ledger.bundle.partial").exists());

    let ledger_before = l.bytes();
    let outcome = l.run(None, args!["restore", "--bundle", &bundle]);
    assert_refused(&outcome, "restore over an existing ledger");
    assert!(outcome.2.contains("already exists"), "{outcome:?}");
    assert_eq!(l.bytes(), ledger_before);

    let outcome = l.run(
        None,
        args!["export", "bundle", "--out", l.root().join("no/such/dir/b")],
    );
    assert_refused(&outcome, "export bundle into a missing directory");
    let outcome = run_raw(
        l.root(),
        args!["verify", "--bundle", l.root().join("missing.bundle")],
    );
    assert_refused(&outcome, "verify a missing bundle");
}

/// A bundle cut short, or resealed after a change, is caught by a
/// checkpoint signed by a key the auditor trusts, and only such a key may
/// vouch for the checkpoint a bundle is checked against.
#[test]
fn a_trusted_checkpoint_catches_a_shortened_bundle() {
    let l = TempLedger::new();
    let doc = l.write_file("doc.txt", b"minutes");
    for i in 0..4 {
        l.ok(
            Some(&l.admin),
            args!["attest", "--file", &doc, "--note", format!("minutes {i}")],
        );
    }
    let cp = l.root().join("cp.txt");
    l.ok(Some(&l.admin), args!["checkpoint", "--out", &cp]);
    let bundle = l.root().join("ledger.bundle");
    l.ok(None, args!["export", "bundle", "--out", &bundle]);
    let admin_pub = l.keys.join("admin.pub");
    let verify = |b: &Path, extra: Vec<std::ffi::OsString>| {
        let mut a = args!["verify", "--bundle", b, "--json"];
        a.extend(extra);
        run_raw(l.root(), a)
    };
    let (code, out, err) = verify(
        &bundle,
        args!["--checkpoint", &cp, "--trusted-key", &admin_pub],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["checkpoint"]["status"], "extends");

    // The bundle's own keys cannot vouch for the checkpoint.
    let outcome = verify(&bundle, args!["--checkpoint", &cp]);
    assert_refused(&outcome, "--checkpoint without --trusted-key");
    assert!(outcome.2.contains("--trusted-key"), "{outcome:?}");

    // The last entry cut off, the count and SHA-256 made to fit: every
    // signature still verifies, the trusted checkpoint does not.
    // The checkpoint history goes too (its checkpoint is of every entry).
    let lines = lines_of(&std::fs::read(&bundle).unwrap());
    let n: usize = lines[1]["entries ".len()..].parse().unwrap();
    let mut lines: Vec<String> = lines[..2 + n - 1].to_vec();
    lines[1] = format!("entries {}", n - 1);
    lines.push("checkpoints 0".into());
    lines.push(String::new());
    let short = l.root().join("short.bundle");
    std::fs::write(&short, reseal(lines)).unwrap();
    let (code, out, _) = verify(&short, args![]);
    assert_eq!(code, 0, "alone, the shortened bundle is intact: {out}");
    let (code, out, err) = verify(
        &short,
        args!["--checkpoint", &cp, "--trusted-key", &admin_pub],
    );
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["failure"]["check"], "checkpoint", "{report}");
    assert_eq!(report["checkpoint"]["status"], "failed", "{report}");
}
