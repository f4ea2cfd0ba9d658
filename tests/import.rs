//! `fundledger import`: a JSON Lines file of events (schema/IMPORT.md)
//! appended through the batch path, run against the built binary. Every
//! line is parsed and every event checked before the first is recorded, so
//! a bad line leaves the ledger byte for byte as it was; a second run of
//! the same file appends nothing.

#[macro_use]
mod util;

use serde_json::Value;
use util::*;

/// One import line.
fn line(kind: &str, event: &str, key: &str) -> String {
    format!(r#"{{"kind":"{kind}","event":{event},"idempotency_key":"{key}"}}"#)
}

fn fund_create() -> String {
    line(
        "fund.create",
        r#"{"fund":"f1","name":"Fund One","currency":"USD","jurisdiction":"AE","vintage":2026,"management_fee_rate":"0.02","management_fee_basis":"committed","date":"2026-01-01"}"#,
        "fund-f1",
    )
}

fn partner(id: &str, partner_type: &str) -> String {
    line(
        "partner.add",
        &format!(
            r#"{{"partner":"{id}","legal_name":"Partner {id}","partner_type":"{partner_type}","country":"AE","date":"2026-01-01"}}"#
        ),
        &format!("partner-{id}"),
    )
}

fn commitment(partner: &str, amount: &str, key: &str) -> String {
    line(
        "commitment",
        &format!(
            r#"{{"fund":"f1","partner":"{partner}","amount":"{amount}","currency":"USD","date":"2026-01-02"}}"#
        ),
        key,
    )
}

/// Nine lines: a fund, two partners, their commitments, a call, a payment,
/// and a commitment reversed by the last line (a reversal naming an entry
/// of the same file).
fn nine_lines() -> Vec<String> {
    vec![
        fund_create(),
        partner("gov", "government"),
        partner("vc", "private"),
        commitment("gov", "600000.00", "commit-gov"),
        commitment("vc", "400000.00", "commit-vc"),
        line(
            "call",
            r#"{"fund":"f1","amount":"100000.00","currency":"USD","purpose":"investment","date":"2026-02-01","due_date":"2026-03-01"}"#,
            "call-1",
        ),
        line(
            "contribution",
            r#"{"fund":"f1","partner":"gov","call":1,"amount":"60000.00","currency":"USD","date":"2026-02-10"}"#,
            "pay-gov-1",
        ),
        commitment("vc", "1.00", "commit-vc-typo"),
        line(
            "reversal",
            r#"{"seq":8,"reason":"recorded by mistake","date":"2026-02-11"}"#,
            "reverse-8",
        ),
    ]
}

fn write_lines(ledger: &TempLedger, name: &str, lines: &[String]) -> std::path::PathBuf {
    ledger.write_file(name, format!("{}\n", lines.join("\n")).as_bytes())
}

/// Run `args` with `key`: the import must be refused (exit code 2) with
/// `expected` in its message, and leave the ledger byte for byte as it was.
fn assert_import_refused(
    ledger: &TempLedger,
    key: &std::path::Path,
    args: Vec<std::ffi::OsString>,
    what: &str,
    expected: &str,
) {
    let before = ledger.bytes();
    let outcome = ledger.run(Some(key), args);
    assert_refused(&outcome, what);
    assert!(outcome.2.contains(expected), "{what}: {}", outcome.2);
    assert_eq!(ledger.bytes(), before, "{what} changed the ledger");
}

#[test]
fn import_appends_every_line_and_running_it_again_appends_nothing() {
    let ledger = TempLedger::new();
    let file = write_lines(&ledger, "events.jsonl", &nine_lines());
    let out = ledger.ok(Some(&ledger.admin), args!["import", &file]);
    assert_eq!(
        out.trim(),
        "imported 9 events: appended 9 (entries 1 to 9), 0 already recorded"
    );
    let (code, report) = ledger.verify_json();
    assert_eq!(code, 0, "{report}");
    let log = ledger.log();
    assert_eq!(log.len(), 10);
    assert_eq!(log[9]["kind"], "reversal");

    let before = ledger.bytes();
    let out = ledger.ok(Some(&ledger.admin), args!["import", &file, "--json"]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({
            "format_version": 1, "dry_run": false, "events": 9, "appended": 0,
            "already_recorded": 9, "first_seq": null, "last_seq": null
        })
    );
    assert_eq!(ledger.bytes(), before, "a second run changed the ledger");
}

/// `--dry-run` checks every event as the import would and records
/// nothing: what would be appended, what is already recorded, and the
/// first event refused.
#[test]
fn a_dry_run_says_what_the_import_would_do_and_records_nothing() {
    let ledger = TempLedger::new();
    let file = write_lines(&ledger, "events.jsonl", &nine_lines());
    let before = ledger.bytes();
    let out = ledger.ok(Some(&ledger.admin), args!["import", &file, "--dry-run"]);
    assert_eq!(
        out.trim(),
        "checked 9 events: 9 would be appended (entries 1 to 9), 0 already recorded; nothing was recorded (dry run)"
    );
    assert_eq!(ledger.bytes(), before, "a dry run changed the ledger");

    // Half of it recorded: the dry run of the whole counts the rest.
    let half = write_lines(&ledger, "half.jsonl", &nine_lines()[..5]);
    ledger.ok(Some(&ledger.admin), args!["import", &half]);
    let before = ledger.bytes();
    let out = ledger.ok(
        Some(&ledger.admin),
        args!["import", &file, "--dry-run", "--json"],
    );
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({
            "format_version": 1, "dry_run": true, "events": 9, "appended": 4,
            "already_recorded": 5, "first_seq": 6, "last_seq": 9
        })
    );
    assert_eq!(ledger.bytes(), before, "a dry run changed the ledger");

    // A refused event is named as by the import itself.
    let mut lines = nine_lines();
    lines[6] = lines[6].replace("60000.00", "60000.001");
    let bad = write_lines(&ledger, "bad.jsonl", &lines);
    assert_import_refused(
        &ledger,
        &ledger.admin,
        args!["import", &bad, "--dry-run"],
        "a dry run of a bad line",
        "line 7: ",
    );
}

#[test]
fn an_event_the_rules_refuse_records_nothing_and_names_its_line() {
    let ledger = TempLedger::new();
    let mut lines = nine_lines()[..5].to_vec();
    // Line 6 pays a call that does not exist.
    lines.push(line(
        "contribution",
        r#"{"fund":"f1","partner":"gov","call":1,"amount":"60000.00","currency":"USD","date":"2026-02-10"}"#,
        "pay-gov-1",
    ));
    let file = write_lines(&ledger, "events.jsonl", &lines);
    let before = ledger.bytes();
    let outcome = ledger.run(Some(&ledger.admin), args!["import", &file]);
    assert_refused(&outcome, "a contribution to no call");
    assert!(
        outcome.2.contains("line 6: ") && outcome.2.contains("nothing was recorded"),
        "{}",
        outcome.2
    );
    assert_eq!(
        ledger.bytes(),
        before,
        "a refused import changed the ledger"
    );

    // The same for a reversal naming an entry that does not exist.
    let mut lines = nine_lines();
    lines[8] = line(
        "reversal",
        r#"{"seq":42,"reason":"no such entry","date":"2026-02-11"}"#,
        "reverse-42",
    );
    let file = write_lines(&ledger, "events.jsonl", &lines);
    assert_import_refused(
        &ledger,
        &ledger.admin,
        args!["import", &file],
        "a reversal of no entry",
        "line 9: ",
    );
    assert_eq!(ledger.bytes(), before);
}

/// One idempotency key for two different events is a reuse, not a repeat:
/// another amount, or another kind with the same fields (a commitment and
/// a reduction of the same amount), whether the first event is earlier in
/// the file or recorded by an earlier run.
#[test]
fn one_idempotency_key_for_two_different_events_is_refused() {
    let reduce = commitment("gov", "600000.00", "commit-gov")
        .replace(r#""kind":"commitment""#, r#""kind":"commitment.reduce""#);
    for (what, second) in [
        (
            "another amount",
            commitment("gov", "700000.00", "commit-gov"),
        ),
        ("another kind, the same fields", reduce),
    ] {
        let ledger = TempLedger::new();
        let lines = vec![
            fund_create(),
            partner("gov", "government"),
            commitment("gov", "600000.00", "commit-gov"),
            second.clone(),
        ];
        let file = write_lines(&ledger, "events.jsonl", &lines);
        let before = ledger.bytes();
        let outcome = ledger.run(Some(&ledger.admin), args!["import", &file]);
        assert_refused(&outcome, what);
        assert!(
            outcome.2.contains("line 4: ") && outcome.2.contains("idempotency key"),
            "{what}: {}",
            outcome.2
        );
        assert_eq!(ledger.bytes(), before, "{what}");
        // The first event recorded by an earlier run.
        let first = write_lines(&ledger, "first.jsonl", &lines[..3]);
        ledger.ok(Some(&ledger.admin), args!["import", &first]);
        let later = write_lines(&ledger, "later.jsonl", &[second]);
        let before = ledger.bytes();
        let outcome = ledger.run(Some(&ledger.admin), args!["import", &later]);
        assert_refused(&outcome, what);
        assert_eq!(ledger.bytes(), before, "{what}");
    }
}

#[test]
fn the_signing_policy_applies_to_every_imported_event() {
    let ledger = TempLedger::new();
    let auditor = ledger.enroll("auditor", "auditor");
    let file = write_lines(&ledger, "events.jsonl", &nine_lines());
    assert_import_refused(
        &ledger,
        &auditor,
        args!["import", &file],
        "an auditor importing fund events",
        "line 1: ",
    );
}

#[test]
fn malformed_files_are_refused_with_their_line_and_record_nothing() {
    let ledger = TempLedger::new();
    let good = fund_create();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("an empty file", b"\n\n".to_vec(), "holds no events"),
        (
            "not JSON",
            format!("{good}\nnot json\n").into_bytes(),
            "line 2: not an import line",
        ),
        (
            "no idempotency key",
            br#"{"kind":"attest","event":{"file_name":"a","sha256":"00","size":1,"note":"n"}}"#
                .to_vec(),
            "line 1: not an import line",
        ),
        (
            "an unknown member",
            format!("{}\n", good.replace(r#""kind""#, r#""extra":1,"kind""#)).into_bytes(),
            "line 1: not an import line",
        ),
        (
            "an unknown kind",
            line("fund.delete", "{}", "k").into_bytes(),
            "line 1: ",
        ),
        (
            "an event with a missing field",
            line("commitment", r#"{"fund":"f1"}"#, "k").into_bytes(),
            "line 1: commitment event does not decode",
        ),
        (
            "an empty idempotency key",
            line("fund.delete", "{}", "").into_bytes(),
            "line 1: ",
        ),
        (
            "a genesis event",
            line(
                "genesis",
                r#"{"key":{"name":"x","public_key":"AA==","role":"administrator"}}"#,
                "g",
            )
            .into_bytes(),
            "line 1: a genesis entry cannot be imported",
        ),
        (
            "bytes that are not UTF-8",
            b"\n\xff\xfe\n".to_vec(),
            "line 2: is not UTF-8",
        ),
    ];
    let before = ledger.bytes();
    for (what, bytes, expected) in cases {
        let file = ledger.write_file("bad.jsonl", &bytes);
        assert_import_refused(
            &ledger,
            &ledger.admin,
            args!["import", &file],
            what,
            expected,
        );
        assert_eq!(ledger.bytes(), before, "{what} changed the ledger");
    }
    let outcome = ledger.run(
        Some(&ledger.admin),
        args!["import", ledger.root().join("missing.jsonl")],
    );
    assert_refused(&outcome, "a missing file");
    // A directory stands for any file that is not a regular one (a pipe).
    assert_import_refused(
        &ledger,
        &ledger.admin,
        args!["import", ledger.root()],
        "a directory",
        "not a regular file",
    );
    let outcome = ledger.run(
        None,
        args!["import", ledger.write_file("ok.jsonl", good.as_bytes())],
    );
    assert_refused(&outcome, "no --key");
    let outcome = ledger.run(
        Some(&ledger.admin),
        args![
            "propose",
            "--out",
            ledger.root().join("p.json"),
            "import",
            ledger.root().join("ok.jsonl")
        ],
    );
    assert_refused(&outcome, "a proposed import");
    assert_eq!(ledger.bytes(), before);
}

/// A ledger opened through the library (not the binary), its admin key,
/// and where an import file goes, in a directory removed on drop.
struct LibraryLedger {
    dir: tempfile::TempDir,
    admin: ed25519_dalek::SigningKey,
    ledger: fundledger::ledger::Ledger,
    file: std::path::PathBuf,
}

impl LibraryLedger {
    fn new(origin: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let ledger = fundledger::ledger::Ledger::init(
            &dir.path().join("ledger.sqlite"),
            origin,
            &admin,
            "admin",
            1,
        )
        .unwrap();
        let file = dir.path().join("events.jsonl");
        LibraryLedger {
            dir,
            admin,
            ledger,
            file,
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("ledger.sqlite")
    }
}

/// [`fundledger::import::import`] with no progress shown.
fn import_quietly(
    ledger: &mut fundledger::ledger::Ledger,
    file: &std::path::Path,
    scanned: &fundledger::import::Scanned,
    admin: &ed25519_dalek::SigningKey,
    now_unix_ms: i64,
) -> fundledger::Result<fundledger::import::Imported> {
    fundledger::import::import(
        ledger,
        file,
        scanned,
        &[admin],
        now_unix_ms,
        &mut |_, _, _| {},
    )
}

/// Import `lines` into `lib` while another writer appends an attestation
/// under `other_key` between the check and the append (from the import's
/// progress callback). Returns the file's scan and the import's outcome.
fn import_with_a_writer_in_between(
    lib: &mut LibraryLedger,
    lines: &[String],
    other_key: &str,
) -> (
    fundledger::import::Scanned,
    fundledger::Result<fundledger::import::Imported>,
) {
    use fundledger::import;
    std::fs::write(&lib.file, lines.join("\n")).unwrap();
    let scanned = import::scan_file(&lib.file, &mut |_| {}).unwrap();
    let mut other = Some(fundledger::ledger::Ledger::open(&lib.path()).unwrap());
    let admin = lib.admin.clone();
    let mut progress = |stage: &str, done: u64, _total: u64| {
        if stage == "appending" && done == 0 {
            if let Some(mut other) = other.take() {
                attest_from(&mut other, &admin, other_key);
            }
        }
    };
    let outcome = import::import(
        &mut lib.ledger,
        &lib.file,
        &scanned,
        &[&lib.admin],
        3,
        &mut progress,
    );
    (scanned, outcome)
}

/// Another writer takes the idempotency key of line 4 of a file that
/// reverses none of its own entries, between the check and the append:
/// the import stops with the line and the ledger's last entry named, keeps
/// what it recorded before, and running it again names line 4.
#[test]
fn a_writer_between_the_check_and_the_append_stops_the_import_cleanly() {
    let mut lib = LibraryLedger::new("import.example.org/race");
    let (scanned, outcome) =
        import_with_a_writer_in_between(&mut lib, &nine_lines()[..8], "commit-gov");
    let e = outcome.unwrap_err();
    assert!(
        e.message()
            .starts_with("the import stopped in lines 1 to 8")
            && e.message().contains("the ledger's last entry is now 4")
            && e.message().contains("commit-gov"),
        "{}",
        e.message()
    );
    // Lines 1 to 3 were recorded (entries 2 to 4, after the attestation);
    // line 4 can never be, its key being taken: the rerun names it.
    assert_eq!(lib.ledger.state().last_seq, Some(4));
    let e = import_quietly(&mut lib.ledger, &lib.file, &scanned, &lib.admin, 4).unwrap_err();
    assert!(e.message().starts_with("line 4: "), "{}", e.message());
    assert_eq!(lib.ledger.state().last_seq, Some(4));
}

/// A file whose line 9 reverses the entry line 8 is to become (entry 8):
/// another writer's entry between the check and the append would move
/// line 8 to entry 9 and make line 9 reverse line 7's payment instead.
/// The import stops before recording anything.
#[test]
fn a_writer_between_the_check_and_the_append_cannot_move_the_entries_a_reversal_names() {
    let mut lib = LibraryLedger::new("import.example.org/moved");
    let (_, outcome) = import_with_a_writer_in_between(&mut lib, &nine_lines(), "someone-else");
    let e = outcome.unwrap_err();
    assert!(
        e.message()
            .starts_with("the import stopped in lines 1 to 9")
            && e.message()
                .contains("the ledger's next entry is 2, not 1 as when the batch was checked"),
        "{}",
        e.message()
    );
    assert!(
        e.hint().is_some_and(|h| h.contains("correct them")),
        "{:?}",
        e.hint()
    );
    assert_eq!(
        lib.ledger.state().last_seq,
        Some(1),
        "the file's events were recorded"
    );
}

/// A reversal that names the entry it reverses by its idempotency key
/// (`reverses`) reverses that entry wherever the file's entries land: here
/// another writer appends between the check and the append, and line 9
/// still reverses line 8's commitment; a rerun appends nothing.
#[test]
fn a_reversal_naming_its_entry_by_key_reverses_it_wherever_it_lands() {
    let mut lib = LibraryLedger::new("import.example.org/by-key");
    let mut lines = nine_lines();
    lines[8] = r#"{"kind":"reversal","event":{"reason":"recorded by mistake","date":"2026-02-11"},"reverses":"commit-vc-typo","idempotency_key":"reverse-typo"}"#.into();
    let (scanned, outcome) = import_with_a_writer_in_between(&mut lib, &lines, "someone-else");
    let done = outcome.unwrap();
    assert_eq!(
        (done.appended, done.first_seq, done.last_seq),
        (9, Some(2), Some(10))
    );
    // Line 8 became entry 9, and entry 10 reverses it.
    assert_eq!(lib.ledger.state().last_seq, Some(10));
    let reversal = lib.ledger.store().get(10).unwrap().unwrap();
    let (_, body) = fundledger::ledger::decode_row(&reversal).unwrap();
    match body.event {
        fundledger::event::Event::Reversal(r) => assert_eq!(r.seq, 9),
        other => panic!("entry 10 is {other:?}"),
    }
    let again = import_quietly(&mut lib.ledger, &lib.file, &scanned, &lib.admin, 4).unwrap();
    assert_eq!((again.appended, again.already_recorded), (0, 9));
}

/// `reverses` is for reversals only, with no `seq` beside it, and names a
/// key that an earlier line or entry has.
#[test]
fn a_reversal_by_key_of_no_entry_or_on_another_kind_is_refused() {
    let ledger = TempLedger::new();
    let by_key = |event: &str, reverses: &str| {
        format!(
            r#"{{"kind":"reversal","event":{event},"reverses":"{reverses}","idempotency_key":"r"}}"#
        )
    };
    let reason = r#"{"reason":"r","date":"2026-02-11"}"#;
    for (what, last, expected) in [
        (
            "a key no entry has",
            by_key(reason, "nobody"),
            "line 4: no entry has the idempotency key \"nobody\"",
        ),
        (
            "a key of a later line",
            by_key(reason, "commit-gov-2"),
            "line 4: no entry has the idempotency key",
        ),
        (
            "seq and reverses both",
            by_key(
                r#"{"seq":3,"reason":"r","date":"2026-02-11"}"#,
                "commit-gov",
            ),
            "line 4: a reversal names its entry by `seq` or by `reverses`, not both",
        ),
        (
            "reverses on a commitment",
            commitment("gov", "1.00", "c2").replace(
                r#","idempotency_key""#,
                r#","reverses":"commit-gov","idempotency_key""#,
            ),
            "line 4: only a reversal names the entry it reverses",
        ),
    ] {
        let lines = vec![
            fund_create(),
            partner("gov", "government"),
            commitment("gov", "600000.00", "commit-gov"),
            last,
            commitment("gov", "1.00", "commit-gov-2"),
        ];
        let file = write_lines(&ledger, "events.jsonl", &lines);
        assert_import_refused(
            &ledger,
            &ledger.admin,
            args!["import", &file],
            what,
            expected,
        );
    }
}

/// Another writer's attestation, under `idempotency_key`.
fn attest_from(
    other: &mut fundledger::ledger::Ledger,
    admin: &ed25519_dalek::SigningKey,
    idempotency_key: &str,
) {
    let attest = fundledger::event::Event::Attest(fundledger::event::Attest {
        file_name: "a.pdf".into(),
        sha256: "00".repeat(32),
        size: 1,
        note: "n".into(),
    });
    other
        .append(fundledger::ledger::AppendRequest {
            event: attest,
            idempotency_key: Some(idempotency_key.into()),
            signers: &[admin],
            now_unix_ms: 2,
        })
        .unwrap();
}

/// The file is read three times (parse, check, append): a file changed
/// after its events were parsed, or after they were checked, is refused
/// before anything is recorded from the changed part.
#[test]
fn a_file_changed_during_the_import_is_refused_and_records_nothing() {
    use fundledger::import;

    let lib = LibraryLedger::new("import.example.org/change");
    let (path, admin, mut ledger, file) = (lib.path(), lib.admin, lib.ledger, lib.file);
    let original = nine_lines().join("\n");
    let edited = original.replace("600000.00", "600001.00");
    let ledger_bytes = || std::fs::read(&path).unwrap();

    // Changed between the parse and the check.
    std::fs::write(&file, &original).unwrap();
    let scanned = import::scan_file(&file, &mut |_| {}).unwrap();
    std::fs::write(&file, &edited).unwrap();
    let before = ledger_bytes();
    let e = import_quietly(&mut ledger, &file, &scanned, &admin, 2).unwrap_err();
    assert!(
        e.message().contains("changed while it was imported"),
        "{}",
        e.message()
    );
    assert_eq!(ledger.state().last_seq, Some(0));
    assert_eq!(ledger_bytes(), before);

    // Changed between the check and the append; grown, too.
    for changed in [edited.clone(), format!("{original}\n{}", fund_create())] {
        std::fs::write(&file, &original).unwrap();
        let scanned = import::scan_file(&file, &mut |_| {}).unwrap();
        let mut progress = |stage: &str, done: u64, _total: u64| {
            if stage == "appending" && done == 0 {
                std::fs::write(&file, &changed).unwrap();
            }
        };
        let e =
            import::import(&mut ledger, &file, &scanned, &[&admin], 3, &mut progress).unwrap_err();
        assert!(
            e.message().contains("changed while it was imported")
                && e.message()
                    .contains("before line 1 are recorded, none from it on"),
            "{}",
            e.message()
        );
        assert_eq!(ledger.state().last_seq, Some(0));
    }

    // Unchanged, it imports.
    std::fs::write(&file, &original).unwrap();
    let scanned = import::scan_file(&file, &mut |_| {}).unwrap();
    let done = import_quietly(&mut ledger, &file, &scanned, &admin, 4).unwrap();
    assert_eq!((done.events, done.appended), (9, 9));
}

mod check_agrees_with_append {
    //! The contract `import --dry-run` and the import's all-or-nothing
    //! rest on: `Ledger::check_batch` refuses exactly the event that
    //! `Ledger::append_batch_at` would stop at, with the same error, and
    //! otherwise counts exactly what it appends.

    use ed25519_dalek::SigningKey;
    use fundledger::event::{Attest, Call, Contribution, Event, FundAmount, Reversal};
    use fundledger::ledger::{Appended, BatchRequest, Ledger, ReversalTargets};
    use proptest::prelude::*;

    const FUND: &str = "f1";

    fn usd(units: u64) -> String {
        format!("{}.{:02}", units / 100, units % 100)
    }

    /// One event of a small alphabet (rules refuse some: calls above the
    /// commitments, payments of calls that do not exist, reversals of
    /// entries that cannot be reversed, reused keys).
    fn request() -> impl Strategy<Value = BatchRequest> {
        let key = prop::option::weighted(0.5, (0u8..12).prop_map(|k| format!("k{k}")));
        let partner = prop::sample::select(vec!["gov", "vc"]);
        prop_oneof![
            3 => (partner.clone(), 0u64..40_000, key.clone()).prop_map(|(p, cents, key)| {
                request_of(
                    Event::Commitment(FundAmount {
                        fund: FUND.into(),
                        partner: p.into(),
                        amount: usd(cents),
                        currency: "USD".into(),
                        date: "2026-01-02".into(),
                        memo: None,
                    }),
                    key,
                )
            }),
            2 => (1u64..50_000, key.clone()).prop_map(|(cents, key)| {
                request_of(
                    Event::Call(Call {
                        fund: FUND.into(),
                        amount: usd(cents),
                        currency: "USD".into(),
                        purpose: "investment".into(),
                        date: "2026-02-01".into(),
                        due_date: "2026-03-01".into(),
                        memo: None,
                    }),
                    key,
                )
            }),
            3 => (partner, prop::sample::select(vec![1u64, 1, 1, 2]), 1u64..25_000, key.clone()).prop_map(|(p, call, cents, key)| {
                request_of(
                    Event::Contribution(Contribution {
                        fund: FUND.into(),
                        partner: p.into(),
                        call,
                        amount: usd(cents),
                        currency: "USD".into(),
                        date: "2026-02-10".into(),
                        memo: None,
                    }),
                    key,
                )
            }),
            1 => (4u64..14, key.clone()).prop_map(|(seq, key)| request_of(reversal(seq), key)),
            1 => ((0u8..12).prop_map(|k| format!("k{k}")), key.clone()).prop_map(|(target, key)| {
                BatchRequest {
                    reverses: Some(target),
                    ..request_of(reversal(0), key)
                }
            }),
            2 => key.prop_map(|key| request_of(
                Event::Attest(Attest {
                    file_name: "a.pdf".into(),
                    sha256: "00".repeat(32),
                    size: 1,
                    note: "n".into(),
                }),
                key,
            )),
        ]
    }

    fn reversal(seq: u64) -> Event {
        Event::Reversal(Reversal {
            seq,
            reason: "r".into(),
            date: "2026-02-11".into(),
        })
    }

    fn request_of(event: Event, idempotency_key: Option<String>) -> BatchRequest {
        BatchRequest {
            event,
            idempotency_key,
            reverses: None,
        }
    }

    /// A ledger with the fund, its two partners, their commitments and a
    /// first call (entries 0 to 6).
    fn ledger(dir: &std::path::Path, admin: &SigningKey) -> Ledger {
        let mut ledger = Ledger::init(
            &dir.join("l.sqlite"),
            "import.example.org/agree",
            admin,
            "admin",
            1,
        )
        .unwrap();
        let setup = [
            r#"{"fund.create":{"fund":"f1","name":"Fund One","currency":"USD","jurisdiction":"AE","vintage":2026,"management_fee_rate":"0.02","management_fee_basis":"committed","date":"2026-01-01"}}"#,
            r#"{"partner.add":{"partner":"gov","legal_name":"Gov","partner_type":"government","country":"AE","date":"2026-01-01"}}"#,
            r#"{"partner.add":{"partner":"vc","legal_name":"VC","partner_type":"private","country":"AE","date":"2026-01-01"}}"#,
            r#"{"commitment":{"fund":"f1","partner":"gov","amount":"100000.00","currency":"USD","date":"2026-01-02"}}"#,
            r#"{"commitment":{"fund":"f1","partner":"vc","amount":"100000.00","currency":"USD","date":"2026-01-02"}}"#,
            r#"{"call":{"fund":"f1","amount":"1000.00","currency":"USD","purpose":"investment","date":"2026-02-01","due_date":"2026-03-01"}}"#,
        ];
        let events = setup
            .iter()
            .map(|json| (serde_json::from_str::<Event>(json).unwrap(), None))
            .collect();
        ledger.append_batch(events, &[admin], 1).unwrap();
        ledger
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn check_batch_refuses_and_counts_what_append_batch_does(
            mut requests in prop::collection::vec(request(), 1..14),
            repeats in prop::collection::vec(
                (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
                0..3,
            ),
        ) {
            // Some events again, later in the batch (a repeat with its
            // key is already recorded; without one, a new entry).
            for (from, to) in repeats {
                let from = from.index(requests.len());
                let to = from + 1 + to.index(requests.len() - from);
                requests.insert(to, requests[from].clone());
            }
            let admin = SigningKey::from_bytes(&[9; 32]);
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mut checked_ledger = ledger(a.path(), &admin);
            let mut appended_ledger = ledger(b.path(), &admin);
            let before = std::fs::read(a.path().join("l.sqlite")).unwrap();

            let targets = ReversalTargets {
                seqs: requests.iter().filter_map(|r| match &r.event {
                    Event::Reversal(rev) if r.reverses.is_none() => Some(rev.seq),
                    _ => None,
                }).collect(),
                keys: requests.iter().filter_map(|r| r.reverses.clone()).collect(),
            };
            let checked = checked_ledger
                .check_batch(&mut requests.clone().into_iter(), &targets, &[&admin], 2, &mut |_| {})
                .unwrap();
            prop_assert_eq!(std::fs::read(a.path().join("l.sqlite")).unwrap(), before);
            let appended = appended_ledger.append_batch_at(requests.clone(), &[&admin], 2, Some(7));
            match (checked, appended) {
                (Ok(counts), Ok(outcomes)) => {
                    let new = outcomes.iter().filter(|o| matches!(o, Appended::New { .. })).count();
                    prop_assert_eq!((counts.new, counts.already_recorded), (new, outcomes.len() - new));
                    prop_assert_eq!(counts.first_seq, 7);
                }
                (Err((index, e)), Err(stopped)) => {
                    prop_assert_eq!(
                        stopped.message().to_string(),
                        format!("batch event {index}: {}", e.message())
                    );
                }
                (checked, appended) => prop_assert!(
                    false,
                    "check {:?} but append {:?}",
                    checked.map_err(|(i, e)| (i, e.message().to_string())),
                    appended.map_err(|e| e.message().to_string())
                ),
            }
        }
    }
}

/// The idempotency keys of the ledger's entries, in order.
fn recorded_keys(ledger: &TempLedger) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        &ledger.path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT idempotency_key FROM entries WHERE seq > 0 ORDER BY seq")
        .unwrap();
    let keys = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    keys
}

/// An import killed (SIGKILL) wherever it is (reading, checking, or
/// between and inside the batch path's commits) leaves whole entries: the
/// ledger verifies, and what it holds is the file's first events, in order.
/// Running the import again appends exactly the rest.
#[test]
fn a_killed_import_leaves_the_first_events_and_a_rerun_appends_the_rest() {
    const COMMITMENTS: usize = 6000;
    let ledger = TempLedger::new();
    let mut lines = vec![fund_create(), partner("gov", "government")];
    let mut keys = vec!["fund-f1".to_string(), "partner-gov".to_string()];
    for i in 0..COMMITMENTS {
        let key = format!("commit-{i}");
        lines.push(commitment("gov", "1.00", &key));
        keys.push(key);
    }
    let file = write_lines(&ledger, "events.jsonl", &lines);
    let seed = Rng::seed_from_clock();
    eprintln!("killed import: seed {seed}");
    let mut rng = Rng::new(seed);
    for round in 0..6 {
        let mut child = util::command()
            .arg("--ledger")
            .arg(&ledger.path)
            .arg("--key")
            .arg(&ledger.admin)
            .arg("import")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if round % 2 == 0 {
            // While it appends: once the entries committed pass a random
            // count (the batch path commits every 1,024), so that the kill
            // lands inside a later chunk.
            let target = recorded_keys(&ledger).len() as u64 + rng.range(1, 4000);
            while child.try_wait().unwrap().is_none()
                && (recorded_keys(&ledger).len() as u64) < target
            {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        } else {
            // Anywhere: reading, checking or appending.
            std::thread::sleep(std::time::Duration::from_millis(rng.range(5, 800)));
        }
        // The kill may come after the import ended; either is fine.
        let _ = child.kill();
        child.wait().unwrap();
        let (code, report) = ledger.verify_json();
        assert_eq!(code, 0, "round {round}: {report}");
        let recorded = recorded_keys(&ledger);
        assert_eq!(
            recorded[..],
            keys[..recorded.len()],
            "round {round}: the ledger does not hold the file's first events in order"
        );
        eprintln!(
            "round {round}: {} of {} events recorded",
            recorded.len(),
            keys.len()
        );
    }
    let before = recorded_keys(&ledger).len();
    let out = ledger.ok(Some(&ledger.admin), args!["import", &file, "--json"]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["appended"], keys.len() - before, "{summary}");
    assert_eq!(summary["already_recorded"], before, "{summary}");
    assert_eq!(recorded_keys(&ledger), keys);
    assert_eq!(ledger.verify_json().0, 0);
}
