//! An audit bundle (schema/BUNDLE.md) restored into a new ledger and
//! verified: never a panic, whatever the bytes. A bundle restored whole
//! (framing and SHA-256 good, no entry stopped) is written back by
//! `export bundle` as exactly the same bytes: a bundle has one spelling.
#![no_main]

use std::path::PathBuf;

use fundledger::bundle::{restore, write};
use fundledger::store::Store;
use fundledger::verify::verify;
use libfuzzer_sys::fuzz_target;

fn ledger_path() -> PathBuf {
    // tmpfs when there is one: a new SQLite file per input.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("fundledger-fuzz-bundle-{}.sqlite", std::process::id()))
}

fuzz_target!(|bytes: &[u8]| {
    let path = ledger_path();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut store = Store::create(&path).unwrap();
    let Ok(restored) = restore(&mut &bytes[..], &mut store, &mut |_, _| {}) else {
        return;
    };
    verify(&store, &mut |_, _| {}).unwrap();
    if restored.stopped.is_none() {
        assert_eq!(restored.stored, restored.entries);
        let mut again = Vec::new();
        write(&store, &mut again, &mut |_, _| {}).unwrap();
        assert!(again == bytes, "a restored bundle writes back other bytes");
    }
});
