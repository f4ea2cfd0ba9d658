//! An audit bundle (schema/BUNDLE.md) restored into a new ledger and
//! verified: never a panic, whatever the bytes. A bundle restored whole
//! (framing and SHA-256 good, no entry stopped) is written back by
//! `export bundle` as exactly the same bytes: a bundle has one spelling.
//! The first byte of an input chooses whether its SHA-256 line is made to
//! fit, so that changed records get past the file's hash.
#![no_main]

use std::path::PathBuf;

use fundledger::bundle::{restore, write};
use fundledger::store::Store;
use fundledger::verify::verify;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn ledger_path() -> PathBuf {
    // tmpfs when there is one: a new SQLite file per input.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("fundledger-fuzz-bundle-{}.sqlite", std::process::id()))
}

/// The bundle with its last line replaced by the SHA-256 line of the rest,
/// so that a changed record reaches the restore and verify instead of
/// stopping at the file's hash.
fn resealed(bytes: &[u8]) -> Vec<u8> {
    let body = match bytes.strip_suffix(b"\n") {
        Some(text) => match text.iter().rposition(|&b| b == b'\n') {
            Some(at) if text[at + 1..].starts_with(b"sha256 ") => &bytes[..at + 1],
            _ => bytes,
        },
        None => bytes,
    };
    let mut out = body.to_vec();
    out.extend_from_slice(format!("sha256 {}\n", hex::encode(Sha256::digest(body))).as_bytes());
    out
}

fuzz_target!(|input: &[u8]| {
    // The first byte chooses: odd, reseal the rest; even, take it as is.
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let owned;
    let bytes: &[u8] = if mode & 1 == 1 {
        owned = resealed(rest);
        &owned
    } else {
        rest
    };
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
