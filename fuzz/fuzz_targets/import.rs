//! An import file (JSON Lines of events) against the demo fund: reading
//! and checking it (every event against the rules, the signing policy and
//! the idempotency keys, as `import --dry-run` does) never panics, and
//! the check records nothing.
#![no_main]

use std::path::PathBuf;
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use fundledger::import::{check, scan_file};
use fundledger::ledger::Ledger;
use libfuzzer_sys::fuzz_target;

struct Base {
    file: PathBuf,
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
    let _ = check(
        &mut base.ledger,
        &base.file,
        &scanned,
        &signers,
        1_767_225_600_000,
        &mut |_, _, _| {},
    );
    assert_eq!(
        base.ledger.store().count().unwrap(),
        base.entries,
        "a check recorded an entry"
    );
});
