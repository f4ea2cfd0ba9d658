//! An import file (JSON Lines of events) against the demo fund: reading
//! and checking it (every event against the rules, the signing policy and
//! the idempotency keys, as `import --dry-run` does) never panics, and
//! the check records nothing. What the check accepts, the import appends
//! (the same entries), and the ledger then verifies intact: an event the
//! rules let in at append time must never fail an audit.
#![no_main]

use std::path::PathBuf;
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use fundledger::import::{check, scan_file};
use fundledger::ledger::Ledger;
use fundledger::store::Store;
use fundledger::verify::verify;
use libfuzzer_sys::fuzz_target;

struct Base {
    file: PathBuf,
    /// The demo ledger, never written, and a copy to import into.
    pristine: PathBuf,
    work: PathBuf,
    ledger: Ledger,
    signers: Vec<SigningKey>,
    entries: u64,
}

fn base() -> &'static Mutex<Base> {
    static BASE: std::sync::OnceLock<Mutex<Base>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("fundledger-fuzz-import-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let demo = dir.join("demo");
        fundledger::demo::run(&demo).expect("the demo builds");
        // A copy made before the demo ledger is ever opened again.
        let pristine = dir.join("pristine.sqlite");
        std::fs::copy(demo.join("ledger.sqlite"), &pristine).unwrap();
        let ledger = Ledger::open(&demo.join("ledger.sqlite")).expect("the demo opens");
        let signers = ["recorder", "recorder-2"]
            .iter()
            .map(|name| {
                fundledger::keys::load_signing_key(&demo.join("keys").join(format!("{name}.key")))
                    .expect("a demo key loads")
            })
            .collect();
        let entries = ledger.store().count().expect("the demo counts");
        Mutex::new(Base {
            file: dir.join("import.jsonl"),
            pristine,
            work: dir.join("work.sqlite"),
            ledger,
            signers,
            entries,
        })
    })
}

fuzz_target!(|bytes: &[u8]| {
    let mut guard = base().lock().unwrap();
    let base = &mut *guard;
    std::fs::write(&base.file, bytes).unwrap();
    let Ok(scanned) = scan_file(&base.file, &mut |_| {}) else {
        return;
    };
    let signers: Vec<&SigningKey> = base.signers.iter().collect();
    let checked = check(
        &mut base.ledger,
        &base.file,
        &scanned,
        &signers,
        NOW_UNIX_MS,
        &mut |_, _, _| {},
    );
    assert_eq!(
        base.ledger.store().count().unwrap(),
        base.entries,
        "a check recorded an entry"
    );
    let Ok(checked) = checked else {
        return;
    };
    if checked.appended == 0 {
        return;
    }
    // The same file, imported into a copy of the same ledger.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", base.work.display()));
    }
    std::fs::copy(&base.pristine, &base.work).unwrap();
    let mut ledger = Ledger::open(&base.work).unwrap();
    let imported = fundledger::import::import(
        &mut ledger,
        &base.file,
        &scanned,
        &signers,
        NOW_UNIX_MS,
        &mut |_, _, _| {},
    )
    .expect("the import of a file the check accepted");
    assert_eq!(imported, checked, "the import differs from its check");
    drop(ledger);
    let store = Store::open_read_only(&base.work).unwrap();
    let report = verify(&store, &mut |_, _| {}).unwrap();
    assert_eq!(
        report.status, "intact",
        "an imported ledger failed verification: {:?}",
        report.failure
    );
    assert_eq!(
        report.entries_verified,
        base.entries + checked.appended as u64
    );
});

/// The import's recording time: after every demo entry.
const NOW_UNIX_MS: i64 = 1_890_000_000_000;
