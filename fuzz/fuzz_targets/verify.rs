//! An auditor verifies a ledger file someone else kept: one record of the
//! demo ledger is replaced or changed by the input. `verify` must never
//! panic, and must report the ledger failed whenever a record differs from
//! the one that was signed (every byte of a record is covered by its hash
//! chain, its signatures or the Merkle tree).
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
        drop(conn);
        Base {
            dir,
            ledger,
            records,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let base = base();
    let seq = data[0] as usize % base.records.len();
    let original = &base.records[seq];
    let record = match data[1] % 3 {
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
    let work = base.dir.join(format!("work-{}.sqlite", std::process::id()));
    std::fs::copy(&base.ledger, &work).unwrap();
    {
        let conn = Connection::open(&work).unwrap();
        conn.execute_batch(
            "DROP TRIGGER entries_no_update;
             DROP TRIGGER IF EXISTS merkle_nodes_no_update;",
        )
        .unwrap();
        conn.execute(
            "UPDATE entries SET record = ?1 WHERE seq = ?2",
            params![record, seq as i64],
        )
        .unwrap();
    }
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
