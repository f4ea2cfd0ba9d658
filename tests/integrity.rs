//! Integrity tests for fundledger, run against the built binary: tamper
//! detection, concurrent writers, crash safety, refused input, OpenSSL
//! interoperability and hostile input.

#[macro_use]
mod util;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use serde_json::Value;

use fundledger::entry::{self, Content, Record};
use fundledger::event::{Body, Contribution, Event, FundAmount, Posting, Realization, Side};
use fundledger::ledger::Ledger;

use util::{assert_refused, open_for_tampering, Rng, TempLedger};

// ---------------------------------------------------------------------------
// 1. Tamper detection
// ---------------------------------------------------------------------------

/// The middle row every tampering case edits.
const MIDDLE: i64 = 5;
/// Entries in the tampering base ledger: 0 genesis, 1 key.enroll, 2..=9 attest.
const BASE_ENTRIES: i64 = 10;

/// A ledger of exactly ten entries: genesis, a recorder's enrollment and
/// eight attestations signed by the recorder, the ones at seq 4, 5 and 7
/// with idempotency keys `idem-4`, `idem-5`, `idem-7`.
fn tamper_base() -> TempLedger {
    let l = TempLedger::new();
    let recorder = l.enroll("recorder", "recorder");
    let doc = l.write_file("minutes.pdf", b"board minutes, 2024-03-01");
    for seq in 2..BASE_ENTRIES {
        let mut args = args!["attest", "--file", &doc, "--note", format!("note-{seq}")];
        if [4, 5, 7].contains(&seq) {
            args.push("--idempotency-key".into());
            args.push(format!("idem-{seq}").into());
        }
        let out = l.ok(Some(&recorder), args);
        assert!(out.contains(&format!("appended entry {seq} ")), "{out}");
    }
    let (code, report) = l.verify_json();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["entries_verified"], BASE_ENTRIES);
    l
}

/// Run `verify` (text and JSON) on a tampered copy and check that it fails
/// at `seq` with `check`. Returns the JSON failure object.
fn assert_fails_at(l: &TempLedger, ledger: &Path, case: &str, seq: i64, check: &str) -> Value {
    let (code, report) = l.verify_json_on(ledger);
    assert_eq!(code, 1, "{case}: verify should exit 1, report: {report}");
    assert_eq!(report["status"], "failed", "{case}: {report}");
    let failure = &report["failure"];
    assert_eq!(failure["seq"], seq, "{case}: wrong failing entry: {report}");
    assert_eq!(failure["check"], check, "{case}: wrong check: {report}");
    // Everything before the failing entry verified, nothing after it.
    assert_eq!(report["entries_verified"], seq, "{case}: {report}");
    // The text form agrees and names the entry.
    let (code, out, _) = l.run_on(ledger, None, args!["verify"]);
    assert_eq!(code, 1, "{case}: text verify should exit 1: {out}");
    assert!(
        out.starts_with(&format!("FAILED at entry {seq}: ")) && out.contains(&format!("[{check}]")),
        "{case}: {out}"
    );
    failure.clone()
}

/// Read the stored record bytes of one row.
fn record_of(conn: &Connection, seq: i64) -> Vec<u8> {
    conn.query_row("SELECT record FROM entries WHERE seq = ?1", [seq], |r| {
        r.get(0)
    })
    .expect("no such row")
}

fn set_record(conn: &Connection, seq: i64, record: &[u8]) {
    let n = conn
        .execute(
            "UPDATE entries SET record = ?1 WHERE seq = ?2",
            params![record, seq],
        )
        .unwrap();
    assert_eq!(n, 1);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

/// Every stored column of `entries`, changed in the middle row.
#[test]
fn tampering_with_any_column_is_detected_at_that_entry() {
    let base = tamper_base();
    // (case, SQL run after dropping the triggers, failing seq, failing check)
    let cases: &[(&str, &str, i64, &str)] = &[
        (
            // Renumbering row 5 (here to 1000, past the end) leaves a gap:
            // the rows are read in seq order, so after entry 4 verify finds
            // the row numbered 6 where it expects 5 and reports entry 5 as
            // missing. The moved row itself is never reached, because verify
            // stops at the first failure; the failure is still reported at
            // the sequence number that was tampered with.
            "seq",
            "UPDATE entries SET seq = 1000 WHERE seq = 5",
            MIDDLE,
            "sequence",
        ),
        (
            "entry_hash",
            "UPDATE entries SET entry_hash = zeroblob(32) WHERE seq = 5",
            MIDDLE,
            "column.entry_hash",
        ),
        (
            "prev_hash",
            "UPDATE entries SET prev_hash = zeroblob(32) WHERE seq = 5",
            MIDDLE,
            "column.prev_hash",
        ),
        (
            "recorded_at_unix_ms",
            "UPDATE entries SET recorded_at_unix_ms = recorded_at_unix_ms + 1 WHERE seq = 5",
            MIDDLE,
            "column.recorded_at_unix_ms",
        ),
        (
            "kind",
            "UPDATE entries SET kind = 'fee' WHERE seq = 5",
            MIDDLE,
            "column.kind",
        ),
        (
            "idempotency_key (changed)",
            "UPDATE entries SET idempotency_key = 'forged' WHERE seq = 5",
            MIDDLE,
            "column.idempotency_key",
        ),
        (
            "idempotency_key (removed)",
            "UPDATE entries SET idempotency_key = NULL WHERE seq = 5",
            MIDDLE,
            "column.idempotency_key",
        ),
        (
            // Entry 6 was recorded without a key; giving its row one is caught
            // at entry 6 (entries 0..=5 are untouched and verify).
            "idempotency_key (added)",
            "UPDATE entries SET idempotency_key = 'forged' WHERE seq = 6",
            6,
            "column.idempotency_key",
        ),
        (
            "record (garbage)",
            "UPDATE entries SET record = x'00010203' WHERE seq = 5",
            MIDDLE,
            "decode",
        ),
        (
            // A record cut short by one byte no longer decodes.
            "record (truncated)",
            "UPDATE entries SET record = substr(record, 1, length(record) - 1) WHERE seq = 5",
            MIDDLE,
            "decode",
        ),
        (
            "record (entry 4's record in row 5)",
            "UPDATE entries SET record = (SELECT record FROM entries WHERE seq = 4) WHERE seq = 5",
            MIDDLE,
            "column.seq",
        ),
        (
            // Not a column of `entries`, but stored beside it: the Merkle
            // leaf of entry 5.
            "merkle_nodes (leaf 5)",
            "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 5",
            MIDDLE,
            "merkle",
        ),
        (
            "row deleted",
            "DELETE FROM entries WHERE seq = 5",
            MIDDLE,
            "sequence",
        ),
    ];
    for (i, (case, sql, seq, check)) in cases.iter().enumerate() {
        let copy = base.copy_ledger(&format!("tampered-{i}.sqlite"));
        let conn = open_for_tampering(&copy);
        conn.execute_batch(sql)
            .unwrap_or_else(|e| panic!("{case}: {sql}: {e}"));
        drop(conn);
        let failure = assert_fails_at(&base, &copy, case, *seq, check);
        if *check == "sequence" {
            assert_eq!(failure["expected"], "5", "{case}: {failure}");
            assert_eq!(failure["found"], "6", "{case}: {failure}");
        }
    }
    // The base ledger itself was never touched.
    assert_eq!(base.verify_json().0, 0);
}

/// Byte flips inside a record, swapped rows, and a re-hashed forgery.
#[test]
fn record_byte_flips_swaps_and_forgeries_are_detected() {
    let base = tamper_base();

    // One byte of the body (inside the note "note-5", so the body is still
    // canonical JSON and decodes): the content hash no longer matches the
    // stored entry_hash.
    let copy = base.copy_ledger("body-flip.sqlite");
    let conn = open_for_tampering(&copy);
    let mut record = record_of(&conn, MIDDLE);
    let at = find(&record, b"note-5");
    record[at] ^= 0x01; // 'n' -> 'o'
    set_record(&conn, MIDDLE, &record);
    drop(conn);
    assert_fails_at(&base, &copy, "body byte", MIDDLE, "column.entry_hash");

    // One byte of the signature (the last 64 bytes of a one-signer record).
    let copy = base.copy_ledger("sig-flip.sqlite");
    let conn = open_for_tampering(&copy);
    let mut record = record_of(&conn, MIDDLE);
    let at = record.len() - 64;
    record[at] ^= 0x80;
    set_record(&conn, MIDDLE, &record);
    drop(conn);
    assert_fails_at(&base, &copy, "signature byte", MIDDLE, "signature");

    // One byte of the signer's key id: the entry now names a key that is
    // not enrolled.
    let copy = base.copy_ledger("keyid-flip.sqlite");
    let conn = open_for_tampering(&copy);
    let mut record = record_of(&conn, MIDDLE);
    let at = record.len() - 64 - 32;
    record[at] ^= 0x01;
    set_record(&conn, MIDDLE, &record);
    drop(conn);
    assert_fails_at(&base, &copy, "key id byte", MIDDLE, "signer");

    // Swap the records of rows 5 and 6: row 5 now holds an entry whose
    // signed sequence number is 6.
    let copy = base.copy_ledger("swap-records.sqlite");
    let conn = open_for_tampering(&copy);
    let (r5, r6) = (record_of(&conn, 5), record_of(&conn, 6));
    set_record(&conn, 5, &r6);
    set_record(&conn, 6, &r5);
    drop(conn);
    assert_fails_at(&base, &copy, "swapped records", MIDDLE, "column.seq");

    // Swap the whole rows 5 and 6 (every column but seq), as if the two
    // entries had been recorded in the other order.
    let copy = base.copy_ledger("swap-rows.sqlite");
    let conn = open_for_tampering(&copy);
    conn.execute_batch(
        "CREATE TEMP TABLE saved AS SELECT * FROM entries WHERE seq IN (5, 6);
         DELETE FROM entries WHERE seq IN (5, 6);
         INSERT INTO entries SELECT 11 - seq, entry_hash, prev_hash, recorded_at_unix_ms,
                                    kind, idempotency_key, record FROM saved;",
    )
    .unwrap();
    let moved: i64 = conn
        .query_row(
            "SELECT count(*) FROM entries e JOIN saved s ON e.entry_hash = s.entry_hash AND e.seq != s.seq",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(moved, 2);
    drop(conn);
    assert_fails_at(&base, &copy, "swapped rows", MIDDLE, "column.seq");

    // A forger who edits the body and recomputes the hash (and fixes the
    // entry_hash column) still cannot sign: the old signature does not
    // cover the new hash.
    let copy = base.copy_ledger("rehashed.sqlite");
    let conn = open_for_tampering(&copy);
    let bytes = record_of(&conn, MIDDLE);
    let mut record = Record::decode(&bytes).unwrap();
    let text = String::from_utf8(record.content.body.clone()).unwrap();
    assert!(text.contains("note-5"), "{text}");
    record.content.body = text.replace("note-5", "note-X").into_bytes();
    let hash = record.content.hash();
    let n = conn
        .execute(
            "UPDATE entries SET record = ?1, entry_hash = ?2 WHERE seq = ?3",
            params![record.encode(), hash.to_vec(), MIDDLE],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    assert_fails_at(&base, &copy, "re-hashed forgery", MIDDLE, "signature");

    assert_eq!(base.verify_json().0, 0);
}

/// Cutting entries off the end of the chain.
/// A ledger long enough for verify's pipeline to run several steps
/// (decoding, rules and batch signature checks overlap across steps of
/// 2048 entries): genesis, a recorder's enrollment, then attestations.
fn long_ledger(dir: &Path) -> PathBuf {
    use fundledger::event::{Attest, KeyEnroll};
    use fundledger::ledger::AppendRequest;
    let path = dir.join("long.sqlite");
    let admin = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let recorder = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let mut ledger = Ledger::init(&path, "long.example.org/l", &admin, "admin", 1).unwrap();
    use base64::Engine;
    let public =
        base64::engine::general_purpose::STANDARD.encode(recorder.verifying_key().as_bytes());
    ledger
        .append(AppendRequest {
            event: Event::KeyEnroll(KeyEnroll {
                name: "recorder".into(),
                public_key: public,
                role: "recorder".into(),
                partner: None,
            }),
            idempotency_key: None,
            signers: &[&admin],
            now_unix_ms: 1,
        })
        .unwrap();
    let events = (2..LONG_ENTRIES)
        .map(|i| {
            let event = Event::Attest(Attest {
                file_name: format!("f{i}.pdf"),
                sha256: "ab".repeat(32),
                size: i,
                note: "n".into(),
            });
            (event, None)
        })
        .collect();
    ledger.append_batch(events, &[&recorder], 2).unwrap();
    // Dropping the ledger also ends batch append's background writeback
    // and closes its connection: SQLite removes the WAL once the last
    // connection has closed.
    drop(ledger);
    assert!(!dir.join("long.sqlite-wal").exists());
    path
}

const LONG_ENTRIES: u64 = 10_000;

/// Flip a bit in the (only) signature of entry `seq`.
fn break_signature(conn: &Connection, seq: i64) {
    let mut record = record_of(conn, seq);
    let at = record.len() - 40;
    record[at] ^= 1;
    set_record(conn, seq, &record);
}

fn verify_long(path: &Path) -> fundledger::verify::Report {
    let store = fundledger::store::Store::open_read_only(path).unwrap();
    fundledger::verify::verify(&store, &mut |_, _| {}).unwrap()
}

#[test]
fn a_refused_event_stops_its_batch_after_the_events_before_it() {
    use fundledger::event::Attest;
    let dir = tempfile::tempdir().unwrap();
    let path = long_ledger(dir.path());
    let recorder = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let mut ledger = Ledger::open(&path).unwrap();
    let attest = |i: u64, sha256: String| {
        let event = Event::Attest(Attest {
            file_name: format!("g{i}.pdf"),
            sha256,
            size: i,
            note: "n".into(),
        });
        (event, None)
    };
    // Event 2500 is refused (not a SHA-256) while earlier groups are being
    // signed, stored and committed (every BATCH_COMMIT_ENTRIES), and with a
    // group of it unfinished: all 2500 events before it are appended, none
    // after it.
    const { assert!(2500 > 2 * fundledger::ledger::BATCH_COMMIT_ENTRIES) };
    let events = (0..3000)
        .map(|i| {
            attest(
                i,
                if i == 2500 {
                    "xyz".into()
                } else {
                    "cd".repeat(32)
                },
            )
        })
        .collect();
    let err = ledger.append_batch(events, &[&recorder], 3).unwrap_err();
    assert!(
        err.message().starts_with("batch event 2500: "),
        "{}",
        err.message()
    );
    assert_eq!(ledger.store().count().unwrap(), LONG_ENTRIES + 2500);
    assert_eq!(ledger.state().last_seq, Some(LONG_ENTRIES + 2499));
    // The state is the store's: the ledger goes on from there, in this
    // process and in the next.
    let done = ledger
        .append_batch(vec![attest(2500, "cd".repeat(32))], &[&recorder], 3)
        .unwrap();
    assert_eq!(done[0].seq(), LONG_ENTRIES + 2500);
    drop(ledger);
    let report = verify_long(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries_verified, LONG_ENTRIES + 2501);
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(ledger.state().last_seq, Some(LONG_ENTRIES + 2500));
}

#[test]
fn a_refusal_at_a_group_or_commit_boundary_keeps_exactly_the_events_before_it() {
    use fundledger::event::Attest;
    use fundledger::ledger::BATCH_COMMIT_ENTRIES as COMMIT;
    let dir = tempfile::tempdir().unwrap();
    let path = long_ledger(dir.path());
    let recorder = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let mut ledger = Ledger::open(&path).unwrap();
    let mut expected = LONG_ENTRIES;
    // Signing groups are 512 entries, commits every COMMIT: a refusal just
    // before, at and just after each boundary.
    for refused in [
        COMMIT / 2 - 1,
        COMMIT / 2,
        COMMIT - 1,
        COMMIT,
        COMMIT + 1,
        2 * COMMIT,
    ] {
        let events = (0..2 * COMMIT + 100)
            .map(|i| {
                let event = Event::Attest(Attest {
                    file_name: format!("r{refused}-{i}.pdf"),
                    sha256: if i == refused {
                        "xyz".into()
                    } else {
                        "cd".repeat(32)
                    },
                    size: 1,
                    note: "n".into(),
                });
                (event, None)
            })
            .collect();
        let err = ledger.append_batch(events, &[&recorder], 3).unwrap_err();
        assert!(
            err.message()
                .starts_with(&format!("batch event {refused}: ")),
            "{}",
            err.message()
        );
        expected += refused as u64;
        assert_eq!(
            ledger.store().count().unwrap(),
            expected,
            "refused at {refused}"
        );
        assert_eq!(ledger.state().last_seq, Some(expected - 1));
    }
    drop(ledger);
    let report = verify_long(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries_verified, expected);
}

#[test]
fn a_batch_refused_at_its_first_event_appends_nothing() {
    use fundledger::event::Attest;
    let dir = tempfile::tempdir().unwrap();
    let path = long_ledger(dir.path());
    let recorder = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let mut ledger = Ledger::open(&path).unwrap();
    let bad = Event::Attest(Attest {
        file_name: "bad.pdf".into(),
        sha256: "xyz".into(),
        size: 1,
        note: "n".into(),
    });
    let err = ledger
        .append_batch(vec![(bad, None)], &[&recorder], 3)
        .unwrap_err();
    assert!(
        err.message().starts_with("batch event 0: "),
        "{}",
        err.message()
    );
    assert_eq!(ledger.store().count().unwrap(), LONG_ENTRIES);
    assert_eq!(ledger.state().last_seq, Some(LONG_ENTRIES - 1));
}

#[test]
fn a_batch_and_another_writer_keep_one_linear_chain() {
    use fundledger::event::Attest;
    use fundledger::ledger::AppendRequest;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = long_ledger(dir.path());
    let recorder = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let attest = |name: String| {
        Event::Attest(Attest {
            file_name: name,
            sha256: "cd".repeat(32),
            size: 1,
            note: "n".into(),
        })
    };
    let mut ledger = Ledger::open(&path).unwrap();
    let done = AtomicBool::new(false);
    let (batch, singles) = std::thread::scope(|s| {
        // Another writer (its own connection) appends one entry at a time
        // for as long as the batch runs: before the batch, while it waits
        // for the batch's lock, or between two of the batch's commits (a
        // unit test in ledger.rs makes that last case happen every time).
        let other = s.spawn(|| {
            let mut other = Ledger::open(&path).unwrap();
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                other
                    .append(AppendRequest {
                        event: attest(format!("single-{n}")),
                        idempotency_key: None,
                        signers: &[&recorder],
                        now_unix_ms: 3,
                    })
                    .unwrap();
                n += 1;
            }
            n
        });
        let events = (0..8 * fundledger::ledger::BATCH_COMMIT_ENTRIES)
            .map(|i| (attest(format!("batch-{i}")), None))
            .collect();
        let batch = ledger.append_batch(events, &[&recorder], 3);
        done.store(true, Ordering::Relaxed);
        (batch, other.join().unwrap())
    });
    if let Err(e) = &batch {
        assert_eq!(
            e.kind(),
            fundledger::error::ErrorKind::Conflict,
            "{}",
            e.message()
        );
        assert!(
            e.message()
                .contains("another writer appended to the ledger during the batch"),
            "{}",
            e.message()
        );
    }
    // Whatever the interleaving: one intact chain, every single append in
    // it, and of the batch a prefix of its events, in order.
    drop(ledger);
    let report = verify_long(&path);
    assert!(report.is_intact(), "{report:?}");
    let store = fundledger::store::Store::open_read_only(&path).unwrap();
    let (mut batch_seen, mut singles_seen) = (0usize, 0u64);
    store
        .scan(LONG_ENTRIES, None, |row| {
            let (_, body) = fundledger::ledger::decode_row(&row)?;
            let Event::Attest(a) = body.event else {
                panic!("unexpected event at {}", row.seq)
            };
            if let Some(i) = a.file_name.strip_prefix("batch-") {
                assert_eq!(
                    i,
                    batch_seen.to_string(),
                    "the batch's entries are out of order"
                );
                batch_seen += 1;
            } else {
                singles_seen += 1;
            }
            Ok(true)
        })
        .unwrap();
    assert_eq!(singles_seen, singles);
    match batch {
        Ok(done) => assert_eq!(done.len(), batch_seen),
        Err(_) => assert!(batch_seen % fundledger::ledger::BATCH_COMMIT_ENTRIES == 0),
    }
}

#[test]
fn a_batch_may_reverse_an_entry_it_appended_itself() {
    use fundledger::event::{FundCreate, PartnerAdd, Reversal};
    let dir = tempfile::tempdir().unwrap();
    let path = long_ledger(dir.path());
    let recorder = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let mut ledger = Ledger::open(&path).unwrap();
    let mut events: Vec<(Event, Option<String>)> = vec![
        Event::FundCreate(FundCreate {
            fund: "f1".into(),
            name: "Fund One".into(),
            currency: "USD".into(),
            jurisdiction: "AE".into(),
            vintage: 2024,
            management_fee_rate: "0.02".into(),
            management_fee_basis: "committed".into(),
            date: "2024-01-01".into(),
        }),
        Event::PartnerAdd(PartnerAdd {
            partner: "p1".into(),
            legal_name: "Partner One".into(),
            partner_type: "government".into(),
            country: "AE".into(),
            lei: None,
            date: "2024-01-01".into(),
        }),
    ]
    .into_iter()
    .map(|e| (e, None))
    .collect();
    for _ in 0..3000 {
        let event = Event::Commitment(FundAmount {
            fund: "f1".into(),
            partner: "p1".into(),
            amount: "1.00".into(),
            currency: "USD".into(),
            date: "2024-01-01".into(),
            memo: None,
        });
        events.push((event, None));
    }
    let reverse = |seq: u64| {
        let event = Event::Reversal(Reversal {
            seq,
            reason: "entered twice".into(),
            date: "2024-01-02".into(),
        });
        (event, None)
    };
    // Reversals of an entry of the group being checked, and of one three
    // groups back (being signed, or stored but not committed).
    let first = LONG_ENTRIES;
    events.push(reverse(first + 3001));
    events.push(reverse(first + 10));
    let done = ledger.append_batch(events, &[&recorder], 3).unwrap();
    assert_eq!(done.len(), 3004);
    let fund = ledger.state().fund("f1").unwrap();
    assert_eq!(fund.committed("p1").to_string(), "2998.00");
    drop(ledger);
    let report = verify_long(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries_verified, LONG_ENTRIES + 3004);
}

#[test]
fn verify_names_the_first_failure_across_pipeline_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = long_ledger(dir.path());
    let report = verify_long(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries_verified, LONG_ENTRIES);
    assert_eq!(report.signatures_verified, LONG_ENTRIES);
    // (bad signatures, edited kind columns, expected seq and check)
    let cases: [(&[i64], &[i64], i64, &str); 6] = [
        (&[9000], &[], 9000, "signature"),
        (&[3], &[], 3, "signature"),
        // Both in one step: the earlier one.
        (&[5000], &[6000], 5000, "signature"),
        (&[6000], &[5000], 5000, "column.kind"),
        // The signature is checked while the next step's rules are: the
        // earlier failure still wins.
        (&[8000], &[8500], 8000, "signature"),
        (&[8500, 9999], &[4095], 4095, "column.kind"),
    ];
    for (signatures, kinds, seq, check) in cases {
        let copy = dir.path().join(format!("case-{seq}-{check}.sqlite"));
        std::fs::copy(&path, &copy).unwrap();
        {
            let conn = open_for_tampering(&copy);
            for s in signatures {
                break_signature(&conn, *s);
            }
            for s in kinds {
                conn.execute("UPDATE entries SET kind = 'fee' WHERE seq = ?1", [s])
                    .unwrap();
            }
        }
        let report = verify_long(&copy);
        let failure = report.failure.as_ref().expect("a failure");
        assert_eq!(
            (failure.seq as i64, failure.check.as_str()),
            (seq, check),
            "{report:?}"
        );
        assert_eq!(report.entries_verified, seq as u64, "{report:?}");
        // One signature per entry, every one before the failure checked.
        assert_eq!(report.signatures_verified, seq as u64, "{report:?}");
        let head = report.head_hash.as_deref().unwrap();
        let conn = Connection::open(&copy).unwrap();
        let stored: Vec<u8> = conn
            .query_row(
                "SELECT entry_hash FROM entries WHERE seq = ?1",
                [seq - 1],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(head, hex::encode(stored));
    }
}

#[test]
fn truncating_the_tail_needs_a_checkpoint_to_be_detected() {
    let base = tamper_base();
    // A checkpoint of the full ten-entry tree, signed by the administrator
    // and kept outside the ledger (as an auditor or a partner would keep
    // it). It is issued on a copy, because `checkpoint` also records it in
    // the ledger's own checkpoint history, which the truncated copy below
    // must not have.
    let issued = base.copy_ledger("issued.sqlite");
    let cp = base.root().join("checkpoint-10.txt");
    let out = base.run_on(
        &issued,
        Some(&base.admin),
        args!["checkpoint", "--out", &cp],
    );
    assert_eq!(out.0, 0, "{out:?}");
    assert!(out.1.contains("tree size 10"), "{out:?}");

    // The attacker deletes the last two entries and the Merkle nodes that
    // cover them, so that what remains is a consistent eight-entry ledger.
    let cut = |name: &str| {
        let copy = base.copy_ledger(name);
        let conn = open_for_tampering(&copy);
        assert_eq!(
            conn.execute("DELETE FROM entries WHERE seq >= 8", [])
                .unwrap(),
            2
        );
        conn.execute(
            "DELETE FROM merkle_nodes WHERE ((idx + 1) << level) > 8",
            [],
        )
        .unwrap();
        copy
    };
    let truncated = cut("truncated.sqlite");

    // Every remaining hash, link, signature and Merkle node is genuine: the
    // chain alone cannot show that entries are missing at its end.
    let (code, report) = base.verify_json_on(&truncated);
    assert_eq!(
        code, 0,
        "a truncated chain still verifies on its own: {report}"
    );
    assert_eq!(report["status"], "intact");
    assert_eq!(report["entries_verified"], 8);
    assert!(report["failure"].is_null());

    // What catches it is a checkpoint kept outside the ledger:
    // `verify --checkpoint` finds the ledger shorter than the signed tree.
    let (code, out, err) = base.run_on(
        &truncated,
        None,
        args!["verify", "--json", "--checkpoint", &cp],
    );
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "checkpoint", "{report}");
    assert_eq!(report["failure"]["seq"], 8, "{report}");
    assert_eq!(report["checkpoint"]["status"], "failed", "{report}");
    // The untouched ledger extends the same checkpoint.
    let (code, out, err) = base.run_on(
        &base.path,
        None,
        args!["verify", "--json", "--checkpoint", &cp],
    );
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["checkpoint"]["status"], "extends", "{report}");
    assert_eq!(report["checkpoint"]["tree_size"], 10, "{report}");

    // A ledger that recorded the checkpoint in its own history catches a
    // truncation by itself (unless the attacker also deletes the history).
    let conn = open_for_tampering(&issued);
    assert_eq!(
        conn.execute("DELETE FROM entries WHERE seq >= 8", [])
            .unwrap(),
        2
    );
    conn.execute(
        "DELETE FROM merkle_nodes WHERE ((idx + 1) << level) > 8",
        [],
    )
    .unwrap();
    drop(conn);
    let (code, report) = base.verify_json_on(&issued);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "checkpoint_history", "{report}");
    assert_eq!(report["failure"]["seq"], 9, "{report}");
}

/// Build, sign and insert (behind the program's back) an entry at the head
/// of `ledger`, signed by the private key at `key`.
fn insert_signed_entry(ledger: &Path, key: &Path, event: Event, postings: Vec<Posting>) -> i64 {
    let signing_key = fundledger::keys::load_signing_key(key).unwrap();
    let opened = Ledger::open_read_only(ledger).unwrap();
    let head = opened.store().head().unwrap().unwrap();
    let origin = opened.origin().to_string();
    drop(opened);
    let body = Body {
        event,
        idempotency_key: None,
        postings,
    };
    let content = Content {
        origin,
        seq: head.seq + 1,
        prev_hash: head.entry_hash,
        recorded_at_unix_ms: head.recorded_at_unix_ms + 1,
        kind: body.event.kind().to_string(),
        body: body.encode().unwrap(),
    };
    content.check_header().unwrap();
    Body::decode(&content.kind, &content.body).unwrap();
    let hash = content.hash();
    let signature = entry::sign(&signing_key, &hash);
    let record = Record::new(content, vec![signature]).unwrap();
    let seq = record.content.seq as i64;
    let conn = Connection::open(ledger).unwrap();
    conn.execute(
        "INSERT INTO entries (seq, entry_hash, prev_hash, recorded_at_unix_ms, kind, idempotency_key, record)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
        params![
            seq,
            hash.to_vec(),
            record.content.prev_hash.to_vec(),
            record.content.recorded_at_unix_ms,
            record.content.kind,
            record.encode()
        ],
    )
    .unwrap();
    seq
}

fn posting(account: &str, partner: Option<&str>, side: Side, amount: &str) -> Posting {
    Posting {
        account: account.into(),
        partner: partner.map(str::to_string),
        startup: None,
        side,
        amount: amount.into(),
        currency: "USD".into(),
    }
}

/// A validly signed entry that breaks an accounting rule is reported.
#[test]
fn signed_entries_that_break_accounting_rules_are_detected() {
    let l = TempLedger::new();
    let rec = l.enroll("recorder", "recorder");
    let r = Some(rec.as_path());
    l.ok(
        r,
        args![
            "fund",
            "create",
            "--id",
            "f1",
            "--name",
            "Fund One",
            "--currency",
            "USD",
            "--jurisdiction",
            "AE",
            "--vintage",
            "2024",
            "--fee-rate",
            "0.02",
            "--date",
            "2024-01-01"
        ],
    );
    l.ok(
        r,
        args![
            "partner",
            "add",
            "--id",
            "p1",
            "--name",
            "Partner One",
            "--type",
            "private",
            "--country",
            "AE",
            "--date",
            "2024-01-01"
        ],
    );
    l.ok(
        r,
        args![
            "commit",
            "--fund",
            "f1",
            "--partner",
            "p1",
            "--amount",
            "1000.00 USD",
            "--date",
            "2024-01-02"
        ],
    );
    l.ok(
        r,
        args![
            "call",
            "--fund",
            "f1",
            "--amount",
            "100.00 USD",
            "--purpose",
            "investment",
            "--due-date",
            "2024-02-01",
            "--date",
            "2024-01-03"
        ],
    );
    assert_eq!(l.verify_json().0, 0);
    assert_eq!(l.log().len(), 6);

    // A contribution of 500.00 against call 1, which asked p1 for 100.00:
    // well-formed, canonically encoded, hash-chained and signed by an
    // enrolled recorder, but above what is outstanding.
    let copy = l.copy_ledger("overpaid.sqlite");
    let seq = insert_signed_entry(
        &copy,
        &rec,
        Event::Contribution(Contribution {
            fund: "f1".into(),
            partner: "p1".into(),
            call: 1,
            amount: "500.00".into(),
            currency: "USD".into(),
            date: "2024-01-10".into(),
            memo: None,
        }),
        vec![
            posting("cash", None, Side::Debit, "500.00"),
            posting("call_receivable", Some("p1"), Side::Credit, "500.00"),
        ],
    );
    assert_eq!(seq, 6);
    let failure = assert_fails_at(&l, &copy, "contribution above outstanding", 6, "rule");
    let message = failure["message"].as_str().unwrap();
    assert!(message.contains("exceeds"), "{message}");
    // The program refuses to append on top of a ledger that breaks a rule
    // (exit 1: it found a verification problem) and leaves it unchanged.
    let before = util::ledger_bytes(&copy);
    let doc = l.write_file("doc.txt", b"appended after the bad entry");
    let (code, _, err) = l.run_on(
        &copy,
        Some(&rec),
        args!["attest", "--file", &doc, "--note", "after the bad entry"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("fundledger: error: entry 6: the stored ledger breaks a rule"),
        "{err}"
    );
    assert_eq!(util::ledger_bytes(&copy), before);

    // A commitment whose signed postings do not balance (debit 10.00,
    // credit 5.00): the event itself is fine, but verify books it again and
    // the result differs from what was signed.
    let copy = l.copy_ledger("unbalanced.sqlite");
    let seq = insert_signed_entry(
        &copy,
        &rec,
        Event::Commitment(FundAmount {
            fund: "f1".into(),
            partner: "p1".into(),
            amount: "10.00".into(),
            currency: "USD".into(),
            date: "2024-01-10".into(),
            memo: None,
        }),
        vec![
            posting("unfunded", Some("p1"), Side::Debit, "10.00"),
            posting("commitment", Some("p1"), Side::Credit, "5.00"),
        ],
    );
    assert_eq!(seq, 6);
    let failure = assert_fails_at(&l, &copy, "unbalanced postings", 6, "postings");
    assert!(
        failure["found"].as_str().unwrap().contains("5.00"),
        "{failure}"
    );

    // The original ledger is still intact.
    assert_eq!(l.verify_json().0, 0);
}

// ---------------------------------------------------------------------------
// 2. Concurrency
// ---------------------------------------------------------------------------

/// Concurrent writer processes.
const WRITERS: usize = 4;
/// Appends per writer. Each append is a separate run of the binary (a
/// process start, a replay of the whole ledger, an fsync'd commit), and the
/// replay makes the k-th append cost O(k), so the run grows faster than
/// linearly. Measured on the 2-core test machine under load from other
/// builds: 4 x 100 appends took 13 s, 4 x 200 took 29 s; 4 x 500 would
/// take well over a minute. 200 each keeps the test near 30 s while every
/// writer contends with the other three for the write lock hundreds of
/// times.
const APPENDS_PER_WRITER: usize = 200;

#[test]
fn concurrent_writers_keep_one_linear_chain() {
    let l = TempLedger::new();
    let rec = l.enroll("recorder", "recorder");
    let doc = l.write_file("doc.txt", b"concurrency");
    let started = Instant::now();
    // Each writer is one process (sh) that runs the binary APPENDS_PER_WRITER
    // times in a row, so the four write concurrently for the whole run.
    let script = r#"bin=$1; ledger=$2; key=$3; file=$4; writer=$5; n=$6; i=0
while [ "$i" -lt "$n" ]; do
  "$bin" --ledger "$ledger" --key "$key" attest --file "$file" --note "writer-$writer-$i" >/dev/null || exit 1
  i=$((i + 1))
done"#;
    let children: Vec<(usize, Child, PathBuf)> = (0..WRITERS)
        .map(|w| {
            let errors = l.root().join(format!("writer-{w}.err"));
            let child = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .arg("writer")
                .arg(util::bin())
                .arg(&l.path)
                .arg(&rec)
                .arg(&doc)
                .arg(w.to_string())
                .arg(APPENDS_PER_WRITER.to_string())
                .env_remove("FUNDLEDGER_LEDGER")
                .env_remove("FUNDLEDGER_KEY")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&errors).unwrap())
                .spawn()
                .expect("cannot start a writer");
            (w, child, errors)
        })
        .collect();
    for (w, mut child, errors) in children {
        let status = child.wait().unwrap();
        let err = std::fs::read_to_string(&errors).unwrap();
        assert!(status.success(), "writer {w} failed ({status}): {err}");
        assert!(err.is_empty(), "writer {w} wrote to stderr: {err}");
    }
    eprintln!(
        "concurrency: {} appends by {WRITERS} writers in {:?}",
        WRITERS * APPENDS_PER_WRITER,
        started.elapsed()
    );

    let total = 2 + WRITERS * APPENDS_PER_WRITER; // genesis + key.enroll + appends
    let (code, report) = l.verify_json();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "intact");
    assert_eq!(report["entries_verified"], total);
    let log = l.log();
    assert_eq!(log.len(), total);
    for (i, entry) in log.iter().enumerate() {
        assert_eq!(entry["seq"], i, "sequence numbers are not contiguous");
    }
    // Every append landed exactly once: no write lost, none duplicated.
    let notes: BTreeSet<String> = log[2..]
        .iter()
        .map(|e| e["event"]["note"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = (0..WRITERS)
        .flat_map(|w| (0..APPENDS_PER_WRITER).map(move |i| format!("writer-{w}-{i}")))
        .collect();
    assert_eq!(notes, expected);
    // Each writer's own appends are in its order.
    for w in 0..WRITERS {
        let mine: Vec<usize> = log[2..]
            .iter()
            .filter_map(|e| {
                let note = e["event"]["note"].as_str().unwrap();
                note.strip_prefix(&format!("writer-{w}-"))
                    .map(|i| i.parse().unwrap())
            })
            .collect();
        assert_eq!(mine, (0..APPENDS_PER_WRITER).collect::<Vec<_>>());
    }
}

// ---------------------------------------------------------------------------
// 3. Crash safety
// ---------------------------------------------------------------------------

const CRASH_ITERATIONS: usize = 30;

#[test]
fn killed_writers_never_leave_a_partial_entry() {
    let l = TempLedger::new();
    let rec = l.enroll("recorder", "recorder");
    let doc = l.write_file("doc.txt", b"crash safety");
    let seed = Rng::seed_from_clock();
    eprintln!("crash safety: seed {seed}");
    let mut rng = Rng::new(seed);
    let mut killed = 0;
    let mut completed = 0;
    for iteration in 0..CRASH_ITERATIONS {
        // A writer appends in a loop (one process per append, as a user's
        // script would); after a random delay the process that is running
        // at that moment is sent SIGKILL (`Child::kill` on Unix), wherever
        // it is: starting, replaying, inside the append transaction,
        // committing, or exiting.
        let deadline = Instant::now() + Duration::from_millis(rng.range(1, 60));
        let mut n = 0;
        loop {
            let mut child = util::command()
                .current_dir(l.root())
                .arg("--ledger")
                .arg(&l.path)
                .arg("--key")
                .arg(&rec)
                .args(["attest", "--file"])
                .arg(&doc)
                .arg("--note")
                .arg(format!("crash-{iteration}-{n}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            n += 1;
            let finished = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if Instant::now() >= deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_micros(500));
            };
            match finished {
                Some(status) => {
                    let (code, _, err) = util::outcome(child.wait_with_output().unwrap());
                    assert_eq!(
                        code, 0,
                        "an append that was not killed failed ({status}): {err}"
                    );
                    completed += 1;
                }
                None => {
                    // Kill may race with a normal exit; either is fine.
                    let _ = child.kill();
                    child.wait().unwrap();
                    killed += 1;
                    break;
                }
            }
        }

        // The ledger opens, verifies, and every row is a whole entry.
        let (code, report) = l.verify_json();
        assert_eq!(code, 0, "iteration {iteration}: {report}");
        assert_eq!(report["status"], "intact");
        let conn = Connection::open_with_flags(&l.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
        let (rows, max_seq): (i64, i64) = conn
            .query_row("SELECT count(*), max(seq) FROM entries", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        assert_eq!(integrity, "ok", "iteration {iteration}");
        assert_eq!(report["entries_verified"], rows, "iteration {iteration}");
        assert_eq!(max_seq + 1, rows, "iteration {iteration}");
    }
    eprintln!("crash safety: {killed} writers killed, {completed} appends completed");
    assert_eq!(killed, CRASH_ITERATIONS);

    // After all that the ledger still takes appends.
    let out = l.ok(
        Some(&rec),
        args!["attest", "--file", &doc, "--note", "after the crashes"],
    );
    assert!(out.starts_with("appended entry "), "{out}");
    assert_eq!(l.verify_json().0, 0);
}

// ---------------------------------------------------------------------------
// 4. Refused input
// ---------------------------------------------------------------------------

/// A ledger with a recorder, fund f1 (USD) and partner p1.
fn fund_ledger() -> (TempLedger, PathBuf) {
    let l = TempLedger::new();
    let rec = l.enroll("recorder", "recorder");
    l.ok(
        Some(&rec),
        args![
            "fund",
            "create",
            "--id",
            "f1",
            "--name",
            "Fund One",
            "--currency",
            "USD",
            "--jurisdiction",
            "AE",
            "--vintage",
            "2024",
            "--fee-rate",
            "0.02",
            "--date",
            "2024-01-01"
        ],
    );
    l.ok(
        Some(&rec),
        args![
            "partner",
            "add",
            "--id",
            "p1",
            "--name",
            "Partner One",
            "--type",
            "private",
            "--country",
            "AE",
            "--date",
            "2024-01-01"
        ],
    );
    (l, rec)
}

/// Run a command that must be refused, and check the ledger is unchanged:
/// the same main-file bytes after a WAL checkpoint (see
/// `TempLedger::bytes`) and the same `log --json` output.
fn assert_refused_unchanged(
    l: &TempLedger,
    key: Option<&Path>,
    args: Vec<OsString>,
    what: &str,
) -> String {
    let before = l.bytes();
    let log_before = l.log();
    let outcome = l.run(key, args);
    assert_refused(&outcome, what);
    assert_eq!(l.log(), log_before, "{what}: the entries changed");
    assert!(l.bytes() == before, "{what}: the ledger file changed");
    outcome.2
}

fn sidecars(path: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn missing_or_foreign_ledger_files_are_refused_and_untouched() {
    let (l, rec) = fund_ledger();
    let doc = l.write_file("doc.txt", b"x");

    // A ledger path that does not exist: refused, and not created.
    let missing = l.root().join("missing.sqlite");
    for args in [
        args!["verify"],
        args!["log"],
        args!["attest", "--file", &doc, "--note", "n"],
    ] {
        let what = format!("missing ledger {args:?}");
        let outcome = l.run_on(&missing, Some(&rec), args);
        assert_refused(&outcome, &what);
        assert!(outcome.2.contains("no ledger at"), "{what}: {}", outcome.2);
        assert!(!missing.exists(), "{what}: created the ledger file");
        assert!(sidecars(&missing).is_empty(), "{what}");
    }

    // A text file, and an SQLite database of another application.
    let text = l.write_file("notes.txt", b"this is not a ledger\njust some text\n");
    let other = l.root().join("other-app.sqlite");
    {
        let conn = Connection::open(&other).unwrap();
        conn.execute_batch(
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO contacts (name) VALUES ('Ada'), ('Grace');",
        )
        .unwrap();
    }
    for file in [&text, &other] {
        let before = std::fs::read(file).unwrap();
        for args in [
            args!["verify"],
            args!["verify", "--json"],
            args!["log"],
            args!["show", "0"],
            args!["attest", "--file", &doc, "--note", "n"],
            args!["key", "list"],
        ] {
            let what = format!("{} {args:?}", file.display());
            let outcome = l.run_on(file, Some(&rec), args);
            assert_refused(&outcome, &what);
            assert!(
                outcome.2.contains("is not a fundledger ledger"),
                "{what}: {}",
                outcome.2
            );
            assert_eq!(std::fs::read(file).unwrap(), before, "{what}: file changed");
            assert!(sidecars(file).is_empty(), "{what}: {:?}", sidecars(file));
        }
        // init refuses to overwrite it.
        let outcome = l.run_on(
            file,
            Some(&l.admin),
            args!["init", "--origin", "ledger.example.org/other"],
        );
        assert_refused(&outcome, "init over a foreign file");
        assert!(outcome.2.contains("already exists"), "{}", outcome.2);
        assert_eq!(std::fs::read(file).unwrap(), before);
    }

    // init over an existing ledger.
    let err = assert_refused_unchanged(
        &l,
        Some(&l.admin),
        args!["init", "--origin", "ledger.example.org/again"],
        "init over an existing ledger",
    );
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn bad_keys_are_refused_and_the_ledger_is_unchanged() {
    let (l, rec) = fund_ledger();
    let doc = l.write_file("doc.txt", b"x");
    let attest = || args!["attest", "--file", &doc, "--note", "n"];

    // A key file that does not exist.
    let missing = l.keys.join("nobody.key");
    let err = assert_refused_unchanged(&l, Some(&missing), attest(), "missing key file");
    assert!(err.contains("nobody.key"), "{err}");

    // A key file others can read.
    let loose = l.keys.join("loose.key");
    std::fs::copy(&rec, &loose).unwrap();
    set_mode(&loose, 0o644);
    let err = assert_refused_unchanged(&l, Some(&loose), attest(), "key with mode 0644");
    assert!(err.contains("chmod 600"), "{err}");

    // The public key passed as --key, as written (mode 0644): refused as
    // not a private key (the file kind is checked before its mode).
    let public = l.keys.join("recorder.pub");
    let err = assert_refused_unchanged(&l, Some(&public), attest(), "public key as --key");
    assert!(err.contains("not a private key"), "{err}");
    // ... and with private-key permissions: still not a private key.
    let public_600 = l.keys.join("recorder-copy.pub");
    std::fs::copy(&public, &public_600).unwrap();
    set_mode(&public_600, 0o600);
    let err = assert_refused_unchanged(
        &l,
        Some(&public_600),
        attest(),
        "public key (0600) as --key",
    );
    assert!(err.contains("not a private key"), "{err}");

    // A key that was enrolled and then revoked.
    let gone = l.enroll("gone", "recorder");
    l.ok(Some(&gone), attest()); // it could sign while enrolled
    let list: Value = serde_json::from_str(&l.ok(None, args!["key", "list", "--json"])).unwrap();
    let key_id = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "gone")
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    l.ok(
        Some(&l.admin),
        args!["key", "revoke", &key_id[..16], "--reason", "left the firm"],
    );
    let err = assert_refused_unchanged(&l, Some(&gone), attest(), "revoked key");
    assert!(err.contains("revoked"), "{err}");

    assert_eq!(l.verify_json().0, 0);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn bad_amounts_funds_and_currencies_are_refused_and_the_ledger_is_unchanged() {
    let (l, rec) = fund_ledger();
    let commit = |fund: &str, amount: &str| {
        args![
            "commit",
            "--fund",
            fund,
            "--partner",
            "p1",
            "--amount",
            amount,
            "--date",
            "2024-01-02"
        ]
    };
    let err = assert_refused_unchanged(
        &l,
        Some(&rec),
        commit("f1", "10.123 USD"),
        "too many decimals",
    );
    assert!(err.contains("10.123"), "{err}");
    let err = assert_refused_unchanged(&l, Some(&rec), commit("nope", "10.00 USD"), "unknown fund");
    assert!(err.contains("unknown fund"), "{err}");
    let err = assert_refused_unchanged(&l, Some(&rec), commit("f1", "10.00 EUR"), "wrong currency");
    assert!(err.contains("EUR") && err.contains("USD"), "{err}");
    // The same commitment in the right form is accepted.
    l.ok(Some(&rec), commit("f1", "10.00 USD"));
    assert_eq!(l.verify_json().0, 0);
}

/// Usage errors (an unknown flag, a sequence number that is not a number)
/// are refused like every other error: exit 2, one line on stderr starting
/// with "fundledger: error:", the ledger unchanged.
#[test]
fn malformed_options_are_refused_with_one_line() {
    let (l, _) = fund_ledger();
    for (args, what) in [
        (args!["verify", "--no-such-flag"], "unknown flag"),
        (args!["show", "abc"], "non-numeric seq"),
        (args!["log", "--from", "-1"], "negative --from"),
    ] {
        assert_refused_unchanged(&l, None, args, what);
    }
}

// ---------------------------------------------------------------------------
// 5. OpenSSL interoperability
// ---------------------------------------------------------------------------

fn have_openssl() -> bool {
    std::process::Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn openssl(dir: &Path, args: Vec<OsString>) -> (i32, String, String) {
    let output = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    util::outcome(output)
}

#[test]
fn openssl_reads_keys_and_verifies_entry_signatures() {
    if !have_openssl() {
        eprintln!("openssl is not on PATH: skipping the OpenSSL interoperability test");
        return;
    }
    let l = TempLedger::new();
    let rec = l.enroll("recorder", "recorder");
    let doc = l.write_file("doc.txt", b"signed by the recorder");
    l.ok(
        Some(&rec),
        args!["attest", "--file", &doc, "--note", "for openssl"],
    );

    for (name, seq) in [("admin", 0), ("recorder", 2)] {
        let private = l.keys.join(format!("{name}.key"));
        let public = l.keys.join(format!("{name}.pub"));
        let (code, _, err) = openssl(l.root(), args!["pkey", "-in", &private, "-noout"]);
        assert_eq!(code, 0, "openssl cannot read {name}.key: {err}");

        let msg = l.root().join(format!("entry-{seq}.msg"));
        let sig = l.root().join(format!("entry-{seq}.sig"));
        l.ok(
            None,
            args![
                "show",
                seq.to_string(),
                "--signed-message",
                &msg,
                "--signature",
                &sig
            ],
        );
        // The signed message is the context string and the entry hash.
        let shown: Value =
            serde_json::from_str(&l.ok(None, args!["show", seq.to_string(), "--json"])).unwrap();
        let message = std::fs::read(&msg).unwrap();
        assert_eq!(message.len(), 62);
        assert_eq!(&message[..30], b"fundledger/entry-signature/v1\n");
        assert_eq!(
            hex::encode(&message[30..]),
            shown["entry_hash"].as_str().unwrap()
        );
        assert_eq!(std::fs::read(&sig).unwrap().len(), 64);

        let verify = |m: &Path| {
            openssl(
                l.root(),
                args![
                    "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", &public, "-in", m,
                    "-sigfile", &sig
                ],
            )
        };
        let (code, out, err) = verify(&msg);
        assert_eq!(
            code, 0,
            "openssl rejects entry {seq}'s signature: {out}{err}"
        );
        assert!(
            out.contains("Signature Verified Successfully"),
            "{out}{err}"
        );

        // One flipped byte in the message and the signature no longer verifies.
        let mut flipped = message.clone();
        flipped[40] ^= 0x01;
        let bad = l.root().join(format!("entry-{seq}-flipped.msg"));
        std::fs::write(&bad, &flipped).unwrap();
        let (code, out, err) = verify(&bad);
        assert_ne!(code, 0, "openssl accepted a flipped message: {out}{err}");
        assert!(!out.contains("Signature Verified Successfully"), "{out}");
    }
}

// ---------------------------------------------------------------------------
// 6. No panics on hostile input
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_no_panic(outcome: &(i32, String, String), what: &str) {
    let (code, out, err) = outcome;
    assert!(
        !err.contains("panicked") && *code != 101,
        "{what}: panicked (exit {code}):\n{out}\n{err}"
    );
    // Hostile input is refused or handled, never a crash by signal.
    assert!(
        *code == 0 || *code == 1 || *code == 2,
        "{what}: exit {code}: {err}"
    );
}

#[test]
fn hostile_input_never_panics() {
    use std::os::unix::ffi::OsStringExt;
    let (l, rec) = fund_ledger();
    let r = Some(rec.as_path());
    let doc = l.write_file("doc.txt", b"x");
    let non_utf8 = |prefix: &str| {
        let mut bytes = l.root().as_os_str().to_owned().into_vec();
        bytes.extend_from_slice(format!("/{prefix}-\u{e9}").as_bytes());
        bytes.extend_from_slice(b"\xff\xfe.sqlite");
        OsString::from_vec(bytes)
    };
    // A file whose name is not UTF-8.
    let odd_file = non_utf8("doc");
    std::fs::write(&odd_file, b"odd name").unwrap();
    let huge = "9".repeat(400);
    let long_text = "x".repeat(100_000);
    let commit = |amount: &str| {
        args![
            "commit",
            "--fund",
            "f1",
            "--partner",
            "p1",
            "--amount",
            amount,
            "--date",
            "2024-01-02"
        ]
    };

    let cases: Vec<(&str, Vec<OsString>)> = vec![
        ("empty command", args![]),
        ("empty subcommand", args![""]),
        ("show u64::MAX", args!["show", "18446744073709551615"]),
        ("show i64::MAX + 1", args!["show", "9223372036854775808"]),
        ("show beyond u64", args!["show", &huge]),
        (
            "log --from u64::MAX",
            args!["log", "--from", "18446744073709551615"],
        ),
        (
            "log --limit u64::MAX",
            args!["log", "--limit", "18446744073709551615"],
        ),
        ("log --limit 0", args!["log", "--limit", "0"]),
        ("show --signer empty", args!["show", "0", "--signer", ""]),
        (
            "reverse u64::MAX",
            args![
                "reverse",
                "18446744073709551615",
                "--reason",
                "r",
                "--date",
                "2024-01-02"
            ],
        ),
        (
            "reverse genesis",
            args!["reverse", "0", "--reason", "r", "--date", "2024-01-02"],
        ),
        (
            "reverse itself",
            args!["reverse", "4", "--reason", "r", "--date", "2024-01-02"],
        ),
        ("amount empty", commit("")),
        ("amount blank", commit("   ")),
        ("amount huge", commit(&format!("{huge} USD"))),
        ("amount 21 digits", commit("999999999999999999999 USD")),
        ("amount exponent", commit("1e999 USD")),
        ("amount negative zero", commit("-0 USD")),
        ("amount zero", commit("0.00 USD")),
        ("amount NaN", commit("NaN USD")),
        ("amount only currency", commit("USD USD")),
        ("amount unicode digits", commit("\u{0661}\u{0662} USD")),
        (
            "date empty",
            args![
                "commit",
                "--fund",
                "f1",
                "--partner",
                "p1",
                "--amount",
                "1.00 USD",
                "--date",
                ""
            ],
        ),
        (
            "date year 99999",
            args![
                "commit",
                "--fund",
                "f1",
                "--partner",
                "p1",
                "--amount",
                "1.00 USD",
                "--date",
                "99999-01-01"
            ],
        ),
        (
            "date -0001",
            args![
                "commit",
                "--fund",
                "f1",
                "--partner",
                "p1",
                "--amount",
                "1.00 USD",
                "--date",
                "-0001-01-01"
            ],
        ),
        (
            "contribute call u64::MAX",
            args![
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p1",
                "--call",
                "18446744073709551615",
                "--amount",
                "1.00 USD",
                "--date",
                "2024-01-02"
            ],
        ),
        (
            "contribute call 0",
            args![
                "contribute",
                "--fund",
                "f1",
                "--partner",
                "p1",
                "--call",
                "0",
                "--amount",
                "1.00 USD",
                "--date",
                "2024-01-02"
            ],
        ),
        (
            "vintage u32::MAX",
            args![
                "fund",
                "create",
                "--id",
                "f2",
                "--name",
                "F",
                "--currency",
                "USD",
                "--jurisdiction",
                "AE",
                "--vintage",
                "4294967295",
                "--fee-rate",
                "0.02",
                "--date",
                "2024-01-01"
            ],
        ),
        (
            "fee rate tiny",
            args![
                "fund",
                "create",
                "--id",
                "f3",
                "--name",
                "F",
                "--currency",
                "USD",
                "--jurisdiction",
                "AE",
                "--vintage",
                "2024",
                "--fee-rate",
                format!("0.{}1", "0".repeat(60)),
                "--date",
                "2024-01-01"
            ],
        ),
        (
            "fee rate huge",
            args![
                "fund",
                "create",
                "--id",
                "f4",
                "--name",
                "F",
                "--currency",
                "USD",
                "--jurisdiction",
                "AE",
                "--vintage",
                "2024",
                "--fee-rate",
                &huge,
                "--date",
                "2024-01-01"
            ],
        ),
        (
            "fund id empty",
            args![
                "fund",
                "create",
                "--id",
                "",
                "--name",
                "",
                "--currency",
                "",
                "--jurisdiction",
                "",
                "--vintage",
                "2024",
                "--fee-rate",
                "",
                "--date",
                "2024-01-01"
            ],
        ),
        ("note empty", args!["attest", "--file", &doc, "--note", ""]),
        (
            "note 100k",
            args!["attest", "--file", &doc, "--note", &long_text],
        ),
        (
            "note with NUL-like controls",
            args!["attest", "--file", &doc, "--note", "a\u{1}b\u{7f}"],
        ),
        (
            "idempotency key 100k",
            args![
                "attest",
                "--file",
                &doc,
                "--note",
                "n",
                "--idempotency-key",
                &long_text
            ],
        ),
        (
            "idempotency key empty",
            args![
                "attest",
                "--file",
                &doc,
                "--note",
                "n",
                "--idempotency-key",
                ""
            ],
        ),
        (
            "attest missing file",
            args!["attest", "--file", l.root().join("nope"), "--note", "n"],
        ),
        (
            "attest a directory",
            args!["attest", "--file", l.root(), "--note", "n"],
        ),
        (
            "attest non-UTF-8 file name",
            args!["attest", "--file", &odd_file, "--note", "odd name"],
        ),
        (
            "note not UTF-8",
            args![
                "attest",
                "--file",
                &doc,
                "--note",
                OsString::from_vec(b"\xff\xfe".to_vec())
            ],
        ),
        (
            "key revoke empty",
            args!["key", "revoke", "", "--reason", "r"],
        ),
        (
            "key revoke non-hex",
            args!["key", "revoke", "zzzzzzzzzzzzzzzz", "--reason", "r"],
        ),
        (
            "key enroll missing",
            args!["key", "enroll", "", "--role", "recorder"],
        ),
        (
            "key enroll bad role",
            args![
                "key",
                "enroll",
                l.keys.join("admin.pub"),
                "--role",
                &long_text
            ],
        ),
        (
            "key generate empty name",
            args!["key", "generate", "", "--dir", l.root()],
        ),
        (
            "key generate traversal",
            args!["key", "generate", "../../x", "--dir", l.root()],
        ),
        (
            "key generate non-UTF-8 dir",
            args!["key", "generate", "odd", "--dir", non_utf8("keys")],
        ),
        (
            "position unknown fund",
            args!["position", "--fund", "", "--as-of", "0000-00-00"],
        ),
        (
            "balances as-of far",
            args!["balances", "--as-of", "9999-12-31"],
        ),
    ];
    for (what, args) in cases {
        let outcome = l.run(r, args);
        assert_no_panic(&outcome, what);
    }

    // Hostile ledger and key paths.
    let path_cases: Vec<(&str, Vec<OsString>)> = vec![
        ("empty --ledger", args!["--ledger", "", "verify"]),
        (
            "empty --key",
            args!["--ledger", &l.path, "--key", "", "attest", "--file", &doc, "--note", "n"],
        ),
        (
            "directory as --ledger",
            args!["--ledger", l.root(), "verify"],
        ),
        (
            "directory as --key",
            args![
                "--ledger",
                &l.path,
                "--key",
                l.root(),
                "attest",
                "--file",
                &doc,
                "--note",
                "n"
            ],
        ),
        (
            "non-UTF-8 --ledger",
            args!["--ledger", non_utf8("missing"), "verify"],
        ),
        (
            "non-UTF-8 --key",
            args![
                "--ledger",
                &l.path,
                "--key",
                non_utf8("key"),
                "attest",
                "--file",
                &doc,
                "--note",
                "n"
            ],
        ),
        (
            "init non-UTF-8 ledger",
            args![
                "--ledger",
                non_utf8("new"),
                "--key",
                &l.admin,
                "init",
                "--origin",
                "ledger.example.org/odd"
            ],
        ),
        (
            "init empty origin",
            args![
                "--ledger",
                l.root().join("e.sqlite"),
                "--key",
                &l.admin,
                "init",
                "--origin",
                ""
            ],
        ),
        (
            "init huge origin",
            args![
                "--ledger",
                l.root().join("h.sqlite"),
                "--key",
                &l.admin,
                "init",
                "--origin",
                &long_text
            ],
        ),
        (
            "init origin with spaces",
            args![
                "--ledger",
                l.root().join("s.sqlite"),
                "--key",
                &l.admin,
                "init",
                "--origin",
                "a b"
            ],
        ),
        (
            "init key name traversal",
            args![
                "--ledger",
                l.root().join("k.sqlite"),
                "--key",
                &l.admin,
                "init",
                "--origin",
                "ledger.example.org/k",
                "--key-name",
                "../x"
            ],
        ),
    ];
    for (what, args) in path_cases {
        let outcome = util::run_raw(l.root(), args);
        assert_no_panic(&outcome, what);
    }

    // Whatever was accepted above, the ledger is still intact.
    let (code, report) = l.verify_json();
    assert_eq!(code, 0, "{report}");
}

/// Amounts at the 20-integer-digit limit the input accepts must not
/// overflow the arithmetic of a later entry: a partial realization of a
/// revalued holding multiplies two such amounts.
#[test]
fn huge_amounts_never_panic() {
    let l = TempLedger::new();
    let rec = l.enroll("recorder", "recorder");
    let a = Some(l.admin.as_path());
    let big = "99999999999999999999.00 USD";
    #[rustfmt::skip]
    let steps: Vec<Vec<OsString>> = vec![
        args!["fund", "create", "--id", "f1", "--name", "Fund One", "--currency", "USD",
              "--jurisdiction", "AE", "--vintage", "2024", "--fee-rate", "0.02", "--date", "2024-01-01"],
        args!["partner", "add", "--id", "p1", "--name", "Partner One", "--type", "private",
              "--country", "AE", "--date", "2024-01-01"],
        args!["startup", "add", "--id", "s1", "--name", "Startup One", "--country", "AE",
              "--sector", "ai", "--date", "2024-01-01"],
        args!["commit", "--fund", "f1", "--partner", "p1", "--amount", big, "--date", "2024-01-02"],
        args!["call", "--fund", "f1", "--amount", big, "--purpose", "investment",
              "--due-date", "2024-02-01", "--date", "2024-01-03"],
        args!["contribute", "--fund", "f1", "--partner", "p1", "--call", "1", "--amount", big,
              "--date", "2024-01-04"],
    ];
    for args in steps {
        l.ok(a, args);
    }
    // An investment this large needs two signers under the default policy.
    let proposal = l.root().join("invest.json");
    #[rustfmt::skip]
    l.ok(a, args!["propose", "--out", &proposal, "invest", "--fund", "f1", "--startup", "s1",
                  "--amount", "50000000000000000000.00 USD", "--date", "2024-01-05"]);
    l.ok(Some(&rec), args!["cosign", &proposal]);
    l.ok(None, args!["submit", &proposal]);
    #[rustfmt::skip]
    l.ok(a, args!["value", "--fund", "f1", "--startup", "s1", "--fair-value", big,
                  "--date", "2024-01-06"]);
    assert_eq!(l.verify_json().0, 0);

    // Release a quarter of the cost of a holding carried at twice its cost.
    #[rustfmt::skip]
    let outcome = l.run(a, args!["realize", "--fund", "f1", "--startup", "s1",
                                 "--proceeds", "10.00 USD", "--cost", "25000000000000000000.00 USD",
                                 "--date", "2024-01-07"]);
    // The same event, signed with the administrator's key and inserted
    // behind the program's back, must be reported by verify (exit 1), not
    // crash it: verify books every entry again with the same arithmetic.
    let copy = l.copy_ledger("huge-realization.sqlite");
    let seq = insert_signed_entry(
        &copy,
        &l.admin,
        Event::Realization(Realization {
            fund: "f1".into(),
            startup: "s1".into(),
            proceeds: "10.00".into(),
            cost_released: "25000000000000000000.00".into(),
            currency: "USD".into(),
            date: "2024-01-07".into(),
            memo: None,
        }),
        Vec::new(),
    );
    let verified = l.run_on(&copy, None, args!["verify", "--json"]);

    assert_no_panic(&outcome, "partial realization of a huge holding");
    assert_no_panic(&verified, "verify of a huge partial realization");
    let report: Value = serde_json::from_str(&verified.1).unwrap();
    assert_eq!(verified.0, 1, "{report}");
    assert_eq!(report["failure"]["seq"], seq, "{report}");
    assert_eq!(l.verify_json().0, 0);
}
