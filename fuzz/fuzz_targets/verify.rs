//! An auditor verifies a ledger file someone else kept: one record of the
//! demo ledger is replaced or changed by the input, or one node of its
//! stored Merkle tree. `verify` must never panic, must report the ledger
//! failed, at that entry, whenever a record differs from the one that was
//! signed (every byte of a record is covered by its hash chain, its
//! signatures or the Merkle tree), and must report it failed whenever a
//! stored node differs from the one the records give.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use fundledger::store::Store;
use libfuzzer_sys::fuzz_target;
use rusqlite::{params, Connection};

struct Base {
    dir: PathBuf,
    ledger: PathBuf,
    records: Vec<Vec<u8>>,
    /// (level, idx) of every stored Merkle node.
    nodes: Vec<(i64, i64)>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("fundledger-fuzz-verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let demo = dir.join("demo");
        fundledger::demo::run(&demo).expect("the demo builds");
        let ledger = demo.join("ledger.sqlite");
        let conn = Connection::open(&ledger).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        let records = conn
            .prepare("SELECT record FROM entries ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let nodes = conn
            .prepare("SELECT level, idx FROM merkle_nodes ORDER BY level, idx")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        drop(conn);
        Base {
            dir,
            ledger,
            records,
            nodes,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let base = base();
    let work = base.dir.join(format!("work-{}.sqlite", std::process::id()));
    std::fs::copy(&base.ledger, &work).unwrap();
    let conn = Connection::open(&work).unwrap();
    conn.execute_batch(
        "DROP TRIGGER entries_no_update;
         DROP TRIGGER IF EXISTS merkle_nodes_no_update;",
    )
    .unwrap();
    if data[1] % 4 == 3 {
        // One byte of one stored Merkle node changed.
        let (level, idx) = base.nodes[data[0] as usize % base.nodes.len()];
        let at = data.get(2).copied().unwrap_or(0) as usize % 32;
        let mask = data.get(3).copied().filter(|m| *m != 0).unwrap_or(1);
        let mut hash: Vec<u8> = conn
            .query_row(
                "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2",
                params![level, idx],
                |r| r.get(0),
            )
            .unwrap();
        hash[at] ^= mask;
        conn.execute(
            "UPDATE merkle_nodes SET hash = ?1 WHERE level = ?2 AND idx = ?3",
            params![hash, level, idx],
        )
        .unwrap();
        drop(conn);
        let store = Store::open_read_only(&work).expect("the copy opens");
        let report =
            fundledger::verify::verify(&store, &mut |_, _| {}).expect("verify reads the copy");
        assert_eq!(
            report.status, "failed",
            "a changed Merkle node ({level}, {idx}) verified"
        );
        return;
    }
    let seq = data[0] as usize % base.records.len();
    let original = &base.records[seq];
    let record = match data[1] % 4 {
        // The record replaced by the rest of the input.
        0 => data[2..].to_vec(),
        // Bytes changed: pairs of (offset, xor mask).
        1 => {
            let mut r = original.clone();
            for pair in data[2..].chunks_exact(2) {
                if !r.is_empty() {
                    let at = pair[0] as usize * 7 % r.len();
                    r[at] ^= pair[1];
                }
            }
            r
        }
        // Cut short, or grown by the rest of the input.
        _ => {
            let mut r = original.clone();
            if data.len() > 2 {
                r.truncate(r.len().saturating_sub(data[2] as usize));
                r.extend_from_slice(&data[3..]);
            }
            r
        }
    };
    conn.execute(
        "UPDATE entries SET record = ?1 WHERE seq = ?2",
        params![record, seq as i64],
    )
    .unwrap();
    drop(conn);
    let store = Store::open_read_only(&work).expect("the copy opens");
    let report = fundledger::verify::verify(&store, &mut |_, _| {}).expect("verify reads the copy");
    if &record != original {
        assert_eq!(
            report.status, "failed",
            "a changed record of entry {seq} verified"
        );
        let failure = report.failure.as_ref().expect("a failure is named");
        assert_eq!(
            failure.seq, seq as u64,
            "the failure is not named at the changed entry"
        );
    } else {
        assert_eq!(report.status, "intact");
    }
});
