//! The state snapshot: opening from it gives the state a full replay gives,
//! a snapshot that does not fit the chain is ignored at open, and verify
//! reports any snapshot that differs from the state the entries make.

#[macro_use]
mod util;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde_json::Value;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use fundledger::event::{
    Attest, Call, Contribution, Event, FundAmount, FundCreate, PartnerAdd, Reversal,
};
use fundledger::ledger::{Appended, Ledger, SNAPSHOT_INTERVAL_ENTRIES};
use fundledger::state::{Account, AccountKey, Piece, State};
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

/// The stored snapshot: seq, entry hash, and its pieces' bytes.
fn snapshot_row(path: &Path) -> (u64, [u8; 32], Vec<u8>) {
    let snapshot = Store::open_read_only(path)
        .unwrap()
        .snapshot()
        .unwrap()
        .unwrap();
    (snapshot.seq, snapshot.entry_hash, snapshot.state.unwrap())
}

/// Replace the stored snapshot with `state` (stored as one piece).
fn set_snapshot(path: &Path, seq: u64, entry_hash: &[u8; 32], state: &[u8]) {
    Store::open(path)
        .unwrap()
        .write_snapshot(seq, entry_hash, state)
        .unwrap();
}

fn stored_entry_hash(path: &Path, seq: u64) -> [u8; 32] {
    let row = Store::open_read_only(path)
        .unwrap()
        .get(seq)
        .unwrap()
        .unwrap();
    row.entry_hash.try_into().unwrap()
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
    let (seq, entry_hash, bytes) = snapshot_row(path);
    let mut state = State::decode_snapshot(&bytes).unwrap();
    let fund = state.funds.values_mut().next().unwrap();
    assert!(!fund.cash().is_zero(), "the demo fund holds cash");
    fund.balances.insert(
        AccountKey::new(Account::Cash, ""),
        "987654321.00".parse().unwrap(),
    );
    let tampered = state.encode_snapshot().unwrap();
    assert_ne!(tampered, bytes);
    set_snapshot(path, seq, &entry_hash, &tampered);
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
    set_snapshot(&path, seq, &stored_entry_hash(&path, seq), &[0x00, 0xff]);
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
        State::decode_snapshot(snapshot.state.as_ref().unwrap())
            .unwrap()
            .encode_snapshot()
            .unwrap(),
        ledger.state().encode_snapshot().unwrap()
    );
}

#[test]
fn a_damaged_snapshot_piece_is_ignored_at_open_and_reported_by_verify() {
    let (dir, path) = big_ledger();
    let (seq, _, _) = snapshot_row(&path);
    let honest = cash(&full_replay(&path));
    let conn = Connection::open(&path).unwrap();
    let pieces: i64 = conn
        .query_row("SELECT count(*) FROM state_snapshot_pieces", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(pieces > 1, "the snapshot is stored in pieces");
    conn.execute(
        "UPDATE state_snapshot_pieces SET bytes = x'00000002' WHERE rowid = (SELECT min(rowid) FROM state_snapshot_pieces)",
        [],
    )
    .unwrap();
    assert_eq!(cash(Ledger::open_read_only(&path).unwrap().state()), honest);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "snapshot", "{report}");
    assert_eq!(report["failure"]["seq"], seq, "{report}");
    let message = report["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("damaged") && message.contains("does not hash to its name"),
        "{message}"
    );
}

/// Write `state` in pieces to a sink holding `stored` (name to bytes):
/// the concatenated bytes, and how many stored pieces were reused.
fn write_in_pieces(state: &State, stored: &HashMap<[u8; 32], Vec<u8>>) -> (Vec<u8>, usize) {
    let mut state = state.clone();
    let (mut bytes, mut reused) = (Vec::new(), 0);
    state
        .write_snapshot_pieces(&mut |piece| match piece {
            Piece::Bytes(b) => {
                bytes.extend_from_slice(b);
                Ok(Some(Sha256::digest(b).into()))
            }
            Piece::Stored(name) => match stored.get(name) {
                Some(b) => {
                    bytes.extend_from_slice(b);
                    reused += 1;
                    Ok(Some(*name))
                }
                None => Ok(None),
            },
        })
        .unwrap();
    (bytes, reused)
}

fn stored_pieces(path: &Path) -> HashMap<[u8; 32], Vec<u8>> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT hash, bytes FROM state_snapshot_pieces")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let name: Vec<u8> = r.get(0)?;
            Ok((name.try_into().unwrap(), r.get(1)?))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// A snapshot reuses the stored piece of every block of calls (1,024
/// calls each) that did not change since it was stored, and encodes again
/// the blocks that did: a payment, a reversal, a partner new to the calls.
#[test]
fn a_snapshot_encodes_again_only_the_blocks_of_calls_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.sqlite");
    let admin = SigningKey::from_bytes(&[1; 32]);
    let mut ledger = Ledger::init(&path, "calls.example.org/fund", &admin, "admin", 0).unwrap();
    let fund = "f";
    let date = "2024-01-02";
    let partner = |id: &str| {
        Event::PartnerAdd(PartnerAdd {
            partner: id.into(),
            legal_name: format!("Partner {id}"),
            partner_type: "private".into(),
            country: "AE".into(),
            lei: None,
            date: date.into(),
        })
    };
    let commitment = |id: &str| {
        Event::Commitment(FundAmount {
            fund: fund.into(),
            partner: id.into(),
            amount: "1000000.00".into(),
            currency: "USD".into(),
            date: date.into(),
            memo: None,
        })
    };
    let call = || {
        Event::Call(Call {
            fund: fund.into(),
            amount: "2.00".into(),
            currency: "USD".into(),
            purpose: "investment".into(),
            date: date.into(),
            due_date: date.into(),
            memo: None,
        })
    };
    let mut events = vec![
        Event::FundCreate(FundCreate {
            fund: fund.into(),
            name: "Fund".into(),
            currency: "USD".into(),
            jurisdiction: "AE".into(),
            vintage: 2024,
            management_fee_rate: "0.02".into(),
            management_fee_basis: "committed".into(),
            date: date.into(),
        }),
        partner("m"),
        partner("n"),
        commitment("m"),
        commitment("n"),
    ];
    events.extend((0..2100).map(|_| call()));
    let append = |ledger: &mut Ledger, events: Vec<Event>| -> Vec<u64> {
        let requests = events.into_iter().map(|e| (e, None)).collect();
        ledger
            .append_batch(requests, &[&admin], 1)
            .unwrap()
            .iter()
            .map(|a| match a {
                Appended::New { seq, .. } => *seq,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let seqs = append(&mut ledger, events);
    let call_1500 = seqs[5 + 1499];
    let calls = |l: &Ledger| l.state().funds[fund].calls.len();
    assert_eq!(calls(&ledger), 2100);

    // Just after the ledger stored its snapshot: all three blocks reused.
    let (bytes, reused) = write_in_pieces(ledger.state(), &stored_pieces(&path));
    assert!(
        bytes == ledger.state().encode_snapshot().unwrap(),
        "the pieces differ"
    );
    assert_eq!(reused, 3);
    // So by another process, which opened from the stored pieces.
    let opened = Ledger::open_read_only(&path).unwrap();
    let (bytes, reused) = write_in_pieces(opened.state(), &stored_pieces(&path));
    assert!(
        bytes == ledger.state().encode_snapshot().unwrap(),
        "the pieces differ"
    );
    assert_eq!(reused, 3);
    drop(opened);

    // A payment on call 1 (block 0) and a reversal of call 1500 (block 1).
    append(
        &mut ledger,
        vec![
            Event::Contribution(Contribution {
                fund: fund.into(),
                partner: "m".into(),
                call: 1,
                amount: "1.00".into(),
                currency: "USD".into(),
                date: date.into(),
                memo: None,
            }),
            Event::Reversal(Reversal {
                seq: call_1500,
                reason: "entered twice".into(),
                date: date.into(),
            }),
        ],
    );
    let (bytes, reused) = write_in_pieces(ledger.state(), &stored_pieces(&path));
    assert!(
        bytes == ledger.state().encode_snapshot().unwrap(),
        "the pieces differ"
    );
    assert_eq!(reused, 1);

    // A partner new to the calls, sorting first, moves every partner's
    // position: no block is reused.
    append(&mut ledger, vec![partner("a"), commitment("a"), call()]);
    let (bytes, reused) = write_in_pieces(ledger.state(), &stored_pieces(&path));
    assert!(
        bytes == ledger.state().encode_snapshot().unwrap(),
        "the pieces differ"
    );
    assert_eq!(reused, 0);

    // The ledger's own snapshots, written with what it reused, are the
    // state the entries make.
    append(&mut ledger, (0..1024).map(|_| call()).collect());
    drop(ledger);
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 0, "{report}");
    let (_, _, bytes) = snapshot_row(&path);
    assert!(
        bytes == full_replay(&path).encode_snapshot().unwrap(),
        "the snapshot differs"
    );
}

fn attest(i: u64) -> Event {
    Event::Attest(Attest {
        file_name: format!("single-{i}.pdf"),
        sha256: hex::encode([(i % 251) as u8; 32]),
        size: i,
        note: format!("single attestation {i}"),
    })
}

/// A single (durable) append at a due entry writes the snapshot of the
/// state after it, in the entry's own transaction; the next one leaves it.
#[test]
fn a_single_append_at_a_due_entry_writes_its_snapshot() {
    let (dir, path) = big_ledger();
    let admin =
        fundledger::keys::load_signing_key(&dir.path().join("keys/administrator.key")).unwrap();
    let mut ledger = Ledger::open(&path).unwrap();
    let count = ledger.store().count().unwrap();
    // The next entry due a snapshot: seq + 1 a multiple of the interval.
    let due = count.div_ceil(SNAPSHOT_INTERVAL_ENTRIES) * SNAPSHOT_INTERVAL_ENTRIES - 1;
    let filler = (count..due).map(|i| (attest(i), None)).collect();
    ledger.append_batch(filler, &[&admin], 1).unwrap();
    assert_eq!(ledger.store().count().unwrap(), due);
    let before = snapshot_row(&path).0;
    assert!(before < due);
    for i in 0..2 {
        let appended = ledger
            .append(fundledger::ledger::AppendRequest {
                event: attest(due + i),
                idempotency_key: None,
                signers: &[&admin],
                now_unix_ms: 1,
            })
            .unwrap();
        assert!(matches!(appended, Appended::New { seq, .. } if seq == due + i));
        assert_eq!(snapshot_row(&path).0, due, "after entry {}", due + i);
    }
    assert_eq!(
        ledger.state().encode_snapshot().unwrap(),
        full_replay(&path).encode_snapshot().unwrap()
    );
    drop(ledger);
    // Verify recomputes the state at `due` and compares it with the snapshot.
    let (code, report) = verify_json(dir.path(), &path);
    assert_eq!(code, 0, "{report}");
}
