//! The state snapshot: opening from it gives the state a full replay gives,
//! a snapshot that does not fit the chain is ignored at open, and verify
//! reports any snapshot that differs from the state the entries make.

#[macro_use]
mod util;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde_json::Value;

use fundledger::event::{Attest, Event};
use fundledger::ledger::{Ledger, SNAPSHOT_INTERVAL_ENTRIES};
use fundledger::state::{Account, AccountKey, State, SNAPSHOT_FORMAT_VERSION};
use fundledger::store::Store;

/// Attest entries appended after the demo: more than two snapshot intervals.
const EXTRA: u64 = 2 * SNAPSHOT_INTERVAL_ENTRIES + 100;

/// The demo fund (balances, keys, calls) plus `EXTRA` attest entries
/// appended with `append_batch`.
fn big_ledger() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fundledger::demo::run(dir.path()).unwrap();
    let path = dir.path().join("ledger.sqlite");
    let admin =
        fundledger::keys::load_signing_key(&dir.path().join("keys/administrator.key")).unwrap();
    let mut ledger = Ledger::open(&path).unwrap();
    let events = (0..EXTRA)
        .map(|i| {
            (
                Event::Attest(Attest {
                    file_name: format!("file-{i}.pdf"),
                    sha256: hex::encode([(i % 251) as u8; 32]),
                    size: i,
                    note: format!("attestation {i}"),
                }),
                None,
            )
        })
        .collect();
    ledger
        .append_batch(events, &[&admin], fundledger::ledger::now_unix_ms())
        .unwrap();
    (dir, path)
}

/// Point the stored snapshot row at another entry hash.
fn set_snapshot_entry_hash(path: &Path, hash: &[u8]) {
    Connection::open(path)
        .unwrap()
        .execute("UPDATE state_snapshot SET entry_hash = ?1", params![hash])
        .unwrap();
}

/// The state a full replay gives: a copy of the ledger without its
/// snapshot row, opened read-only.
fn full_replay(path: &Path) -> State {
    let copy = path.with_file_name("full-replay.sqlite");
    let _ = std::fs::remove_file(&copy);
    Connection::open(path)
        .unwrap()
        .execute("VACUUM INTO ?1", params![copy.to_str().unwrap()])
        .unwrap();
    Connection::open(&copy)
        .unwrap()
        .execute("DELETE FROM state_snapshot", [])
        .unwrap();
    assert_eq!(
        Store::open_read_only(&copy).unwrap().snapshot().unwrap(),
        None
    );
    Ledger::open_read_only(&copy).unwrap().state().clone()
}

fn snapshot_row(path: &Path) -> (u64, Vec<u8>, Vec<u8>) {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT seq, entry_hash, state FROM state_snapshot",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

fn cash(state: &State) -> Vec<String> {
    state
        .funds
        .values()
        .map(|f| f.balance(Account::Cash, "").to_string())
        .collect()
}

/// Change the first fund's cash balance inside the stored snapshot (still
/// a canonical, decodable encoding).
fn tamper_cash(path: &Path) {
    let (_, _, bytes) = snapshot_row(path);
    let mut state = State::decode_snapshot(&bytes).unwrap();
    let fund = state.funds.values_mut().next().unwrap();
    assert!(!fund.cash().is_zero(), "the demo fund holds cash");
    fund.balances.insert(
        AccountKey::new(Account::Cash, ""),
        "987654321.00".parse().unwrap(),
    );
    let tampered = state.encode_snapshot().unwrap();
    assert_ne!(tampered, bytes);
    Connection::open(path)
        .unwrap()
        .execute("UPDATE state_snapshot SET state = ?1", params![tampered])
        .unwrap();
}

fn verify_json(dir: &Path, path: &Path) -> (i32, Value) {
    let (code, out, err) = util::run_raw(dir, args!["--ledger", path, "verify", "--json"]);
    let report: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {out}{err}"));
    (code, report)
}

fn expected_snapshot_seq(entries: u64) -> u64 {
    (entries / SNAPSHOT_INTERVAL_ENTRIES) * SNAPSHOT_INTERVAL_ENTRIES - 1
}

#[test]
fn reopening_from_the_snapshot_gives_the_full_replay_state() {
    let (dir, path) = big_ledger();
    let store = Store::open_read_only(&path).unwrap();
    let entries = store.count().unwrap();
    assert!(entries > 2 * SNAPSHOT_INTERVAL_ENTRIES);
    let snapshot = store.snapshot().unwrap().expect("a snapshot was written");
    // Single appends snapshot at each due entry; a batch chunk snapshots
    // once, after its last entry, when one fell due within it.
    assert!(
        snapshot.seq >= expected_snapshot_seq(entries) && snapshot.seq < entries,
        "snapshot at {} for {entries} entries",
        snapshot.seq
    );
    assert_eq!(
        snapshot.entry_hash.to_vec(),
        store.get(snapshot.seq).unwrap().unwrap().entry_hash
    );
    drop(store);

    let opened = Ledger::open_read_only(&path).unwrap().state().clone();
    let full = full_replay(&path);
    assert_eq!(opened.last_seq, Some(entries - 1));
    assert_eq!(opened.keys.len(), full.keys.len());
    assert!(opened
        .keys
        .iter()
        .zip(&full.keys)
        .all(|(a, b)| a.0 == b.0 && a.1.public_key == b.1.public_key && a.1.role == b.1.role));
    for (id, fund) in &full.funds {
        assert_eq!(opened.funds[id].balances, fund.balances, "fund {id}");
        assert_eq!(opened.funds[id].flows, fund.flows, "fund {id}");
    }
    assert_eq!(
        opened.encode_snapshot().unwrap(),
        full.encode_snapshot().unwrap()
    );

    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["entries_verified"], entries);

    // Appending one entry after opening from the snapshot, then verifying.
    let admin =
        fundledger::keys::load_signing_key(&dir.path().join("keys/administrator.key")).unwrap();
    let mut ledger = Ledger::open(&path).unwrap();
    ledger
        .append_batch(
            vec![(
                Event::Attest(Attest {
                    file_name: "last.pdf".into(),
                    sha256: hex::encode([7u8; 32]),
                    size: 1,
                    note: "after the snapshot".into(),
                }),
                None,
            )],
            &[&admin],
            fundledger::ledger::now_unix_ms(),
        )
        .unwrap();
    drop(ledger);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn a_tampered_snapshot_is_reported_by_verify() {
    let (dir, path) = big_ledger();
    let (seq, _, _) = snapshot_row(&path);
    let honest = cash(&full_replay(&path));
    tamper_cash(&path);
    // Open trusts a snapshot that fits the chain: only verify re-derives it.
    assert_ne!(cash(Ledger::open_read_only(&path).unwrap().state()), honest);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["status"], "failed");
    assert_eq!(report["failure"]["check"], "snapshot", "{report}");
    assert_eq!(report["failure"]["seq"], seq, "{report}");
}

#[test]
fn a_snapshot_of_another_entry_is_ignored_at_open_and_reported_by_verify() {
    let (dir, path) = big_ledger();
    let (seq, _, _) = snapshot_row(&path);
    let honest = cash(&full_replay(&path));
    tamper_cash(&path);
    set_snapshot_entry_hash(&path, &[0xab; 32]);
    // The snapshot does not name the stored entry: a full replay.
    assert_eq!(cash(Ledger::open_read_only(&path).unwrap().state()), honest);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "snapshot", "{report}");
    assert_eq!(report["failure"]["seq"], seq, "{report}");

    // A snapshot beyond the head is ignored too, and reported.
    let beyond = 10 * EXTRA;
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE state_snapshot SET seq = ?1", params![beyond as i64])
        .unwrap();
    assert_eq!(cash(Ledger::open_read_only(&path).unwrap().state()), honest);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "snapshot", "{report}");
    assert_eq!(report["failure"]["seq"], beyond, "{report}");

    // An undecodable snapshot is ignored, and reported.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE state_snapshot SET seq = ?1, state = x'00ff'",
            params![seq as i64],
        )
        .unwrap();
    assert_eq!(cash(Ledger::open_read_only(&path).unwrap().state()), honest);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "snapshot", "{report}");
}

#[test]
fn opening_for_writing_adds_a_missing_snapshot_at_the_head() {
    let (_dir, path) = big_ledger();
    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM state_snapshot", [])
        .unwrap();
    let ledger = Ledger::open(&path).unwrap();
    let head = ledger.state().last_seq.unwrap();
    let snapshot = ledger.store().snapshot().unwrap().unwrap();
    assert_eq!(snapshot.seq, head);
    assert_eq!(
        State::decode_snapshot(&snapshot.state)
            .unwrap()
            .encode_snapshot()
            .unwrap(),
        ledger.state().encode_snapshot().unwrap()
    );
}

/// What a format-version-1 snapshot looked like: compact JSON.
fn version_1_snapshot(seq: u64) -> Vec<u8> {
    format!(
        "{{\"format_version\":1,\"last_seq\":{seq},\"origin\":\"old\",\"keys\":[],\"policy\":{{\"rules\":[]}},\"policy_seq\":null,\"funds\":[],\"partners\":[],\"startups\":[],\"reversed\":[]}}"
    )
    .into_bytes()
}

#[test]
fn a_snapshot_of_the_older_format_is_replayed_past_verified_and_replaced() {
    let (dir, path) = big_ledger();
    let (seq, _, current) = snapshot_row(&path);
    assert_eq!(current[..4], SNAPSHOT_FORMAT_VERSION.to_be_bytes());
    assert_eq!(SNAPSHOT_FORMAT_VERSION, 2);
    let full = full_replay(&path);
    // As the previous version left it: the row names the right entry, but
    // holds JSON this version does not read.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE state_snapshot SET state = ?1",
            params![version_1_snapshot(seq)],
        )
        .unwrap();
    assert!(State::decode_snapshot(&version_1_snapshot(seq)).is_err());

    // Open replays from genesis; verify does not compare the old snapshot.
    let opened = Ledger::open_read_only(&path).unwrap().state().clone();
    assert_eq!(cash(&opened), cash(&full));
    assert_eq!(
        opened.encode_snapshot().unwrap(),
        full.encode_snapshot().unwrap()
    );
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "intact", "{report}");

    // The row's entry hash is still checked.
    set_snapshot_entry_hash(&path, &[0xab; 32]);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "snapshot", "{report}");
    let head = full.last_seq.unwrap();
    let stored = Store::open_read_only(&path)
        .unwrap()
        .get(seq)
        .unwrap()
        .unwrap()
        .entry_hash;
    set_snapshot_entry_hash(&path, &stored);

    // A writable open replaces it with the current format, at the head.
    let ledger = Ledger::open(&path).unwrap();
    let snapshot = ledger.store().snapshot().unwrap().unwrap();
    assert_eq!(snapshot.seq, head);
    assert!(ledger.state().snapshot_matches(&snapshot.state).unwrap());
    drop(ledger);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 0, "{report}");
}
