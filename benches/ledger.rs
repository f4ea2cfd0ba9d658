//! fundledger benchmarks: the raw primitives a ledger rests on, measured on
//! this machine, and the ledger itself at a given size, each printed as a
//! ratio to its limit.
//!
//!     cargo bench --bench ledger -- --entries 1000000
//!
//! Every ledger phase runs in its own child process (this binary, re-run
//! with `--phase`), so that each reports its own peak memory (VmHWM). The
//! phases whose ratio is a target measure their limit in short slices
//! interleaved with their own work ([`Interleaved`]), as this VM's speed
//! drifts within minutes. Numbers live here and in BENCHMARKS.md, never
//! in tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use fundledger::event::*;
use fundledger::ledger::{AppendRequest, Ledger};
use rusqlite::params;
use sha2::{Digest, Sha256};

/// The allocator the `fundledger` binary uses (src/main.rs), so that the
/// phases measure what the binary runs.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTNERS: usize = 10;
const STARTUPS: usize = 40;
const FUND: &str = "bench-fund";

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn per_second(count: usize, start: Instant) -> f64 {
    count as f64 / start.elapsed().as_secs_f64()
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------- limits

#[derive(Clone, Copy)]
struct Limits {
    sign: f64,
    verify: f64,
    batch_verify_core: f64,
    batch_verify_all: f64,
    zip215_batch_verify_all: f64,
    sha256_300: f64,
    sqlite_batched: f64,
    sqlite_durable: f64,
    pipeline_1_thread: f64,
    readback_verify_all: f64,
}

impl Limits {
    fn fields(&mut self) -> [&mut f64; 10] {
        [
            &mut self.sign,
            &mut self.verify,
            &mut self.batch_verify_core,
            &mut self.batch_verify_all,
            &mut self.zip215_batch_verify_all,
            &mut self.sha256_300,
            &mut self.sqlite_batched,
            &mut self.sqlite_durable,
            &mut self.pipeline_1_thread,
            &mut self.readback_verify_all,
        ]
    }

    /// The mean of two measurements, field by field.
    fn mean(mut self, mut other: Limits) -> Limits {
        for (a, b) in self.fields().into_iter().zip(other.fields()) {
            *a = (*a + *b) / 2.0;
        }
        self
    }
}

fn sample_sigs(
    n: usize,
) -> (
    Vec<ed25519_dalek::VerifyingKey>,
    Vec<[u8; 62]>,
    Vec<ed25519_dalek::Signature>,
) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let msgs: Vec<[u8; 62]> = (0..n)
        .map(|i| fundledger::entry::signed_message(&Sha256::digest(i.to_be_bytes()).into()))
        .collect();
    let sigs = msgs.iter().map(|m| key.sign(m)).collect();
    (vec![key.verifying_key(); n], msgs, sigs)
}

fn batch_verify(
    keys: &[ed25519_dalek::VerifyingKey],
    msgs: &[[u8; 62]],
    sigs: &[ed25519_dalek::Signature],
) {
    for ((k, m), s) in keys.chunks(64).zip(msgs.chunks(64)).zip(sigs.chunks(64)) {
        let refs: Vec<&[u8]> = m.iter().map(|x| &x[..]).collect();
        ed25519_dalek::verify_batch(&refs, s, k).expect("valid batch");
    }
}

/// The record the limits hash, sign and store: 300 bytes, about the size
/// of a small ledger entry (ours average 878).
const LIMIT_RECORD: [u8; 300] = [0x5a; 300];

/// Batch-verify on every core, the signatures split evenly.
fn batch_verify_on_every_core(
    keys: &[ed25519_dalek::VerifyingKey],
    msgs: &[[u8; 62]],
    sigs: &[ed25519_dalek::Signature],
) {
    let per = msgs.len().div_ceil(threads());
    std::thread::scope(|s| {
        for ((k, m), g) in keys.chunks(per).zip(msgs.chunks(per)).zip(sigs.chunks(per)) {
            s.spawn(move || batch_verify(k, m, g));
        }
    });
}

/// The limits' SQLite table: `seq`, a hash and a record.
fn limit_table(db: &Path) -> rusqlite::Connection {
    let _ = std::fs::remove_file(db);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE t (seq INTEGER PRIMARY KEY, h BLOB NOT NULL, r BLOB NOT NULL);",
    )
    .unwrap();
    conn
}

/// The batched-insert limit: `rows` 300-byte rows from `seq` 0, in
/// transactions of 10,000. It also brings the table's WAL to the size at
/// which SQLite checkpoints and then reuses it, where every durable
/// commit is measured (a commit that grows the WAL costs more).
fn batched_inserts(conn: &rusqlite::Connection, rows: u64) {
    for chunk in 0..rows / 10_000 {
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO t VALUES (?1, ?2, ?3)")
                .unwrap();
            for i in 0..10_000 {
                let seq = (chunk * 10_000 + i) as i64;
                st.execute(params![seq, &[1u8; 32][..], &LIMIT_RECORD[..]])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

/// Rows [`batched_inserts`] writes before durable commits are measured.
const DURABLE_WARM_ROWS: u64 = 200_000;

/// The one-thread pipeline limit: hash (chained), sign and insert `n`
/// 300-byte records from `seq` on, inside the caller's transaction.
/// Returns the last hash, which the next call chains from.
fn hash_sign_insert(
    conn: &rusqlite::Connection,
    key: &SigningKey,
    seq: u64,
    mut prev: [u8; 32],
    n: u64,
) -> [u8; 32] {
    let mut st = conn
        .prepare_cached("INSERT INTO t VALUES (?1, ?2, ?3)")
        .unwrap();
    for i in seq..seq + n {
        let mut h = Sha256::new();
        h.update(prev);
        h.update(LIMIT_RECORD);
        let hash: [u8; 32] = h.finalize().into();
        let sig = key.sign(&fundledger::entry::signed_message(&hash));
        let mut rec = LIMIT_RECORD.to_vec();
        rec.extend_from_slice(&sig.to_bytes());
        st.execute(params![i as i64, &hash[..], rec]).unwrap();
        prev = hash;
    }
    prev
}

/// The durable-commit limit: `n` rows from `seq` on, each its own
/// (synced) transaction.
fn durable_commits(conn: &rusqlite::Connection, seq: u64, n: u64) {
    for i in seq..seq + n {
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            params![i as i64, &[1u8; 32][..], &LIMIT_RECORD[..]],
        )
        .unwrap();
    }
}

/// A limit measured in short slices between the slices of a ledger phase,
/// so that both meet the VM at the same speed: the work done and the time
/// it took, summed over the slices.
#[derive(Default)]
struct Interleaved {
    work: f64,
    seconds: f64,
}

impl Interleaved {
    /// Run one slice of `work` units and count its time.
    fn slice(&mut self, work: u64, f: impl FnOnce()) {
        let t = Instant::now();
        f();
        self.seconds += t.elapsed().as_secs_f64();
        self.work += work as f64;
    }

    fn rate(&self) -> f64 {
        self.work / self.seconds
    }
}

fn measure_limits(dir: &Path) -> Limits {
    let key = SigningKey::from_bytes(&[7; 32]);
    let n = 20_000;
    let (keys, msgs, sigs) = sample_sigs(n);

    let t = Instant::now();
    for m in &msgs {
        std::hint::black_box(key.sign(m));
    }
    let sign = per_second(n, t);

    let t = Instant::now();
    for (m, s) in msgs.iter().zip(&sigs) {
        key.verifying_key().verify_strict(m, s).expect("valid");
    }
    let verify = per_second(n, t);

    let t = Instant::now();
    batch_verify(&keys, &msgs, &sigs);
    let batch_verify_core = per_second(n, t);

    let t = Instant::now();
    batch_verify_on_every_core(&keys, &msgs, &sigs);
    let batch_verify_all = per_second(n, t);

    // The batch verification verify uses (ZIP 215, ed25519-zebra),
    // signatures by two keys as in the ledger, on every core.
    let two = [key.clone(), SigningKey::from_bytes(&[8; 32])];
    let checks: Vec<fundledger::entry::SignatureCheck> = (0..n)
        .map(|i| {
            let hash: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
            let k = &two[i % 2];
            let sig = fundledger::entry::sign(k, &hash);
            fundledger::entry::SignatureCheck::new(&k.verifying_key(), &hash, &sig)
        })
        .collect();
    let t = Instant::now();
    let per = n.div_ceil(threads());
    std::thread::scope(|s| {
        for part in checks.chunks(per) {
            s.spawn(move || assert!(fundledger::entry::verify_signatures(part).is_none()));
        }
    });
    let zip215_batch_verify_all = per_second(n, t);

    let hashes = 1_000_000;
    let t = Instant::now();
    for i in 0..hashes {
        let mut h = Sha256::new();
        h.update(LIMIT_RECORD);
        h.update((i as u64).to_be_bytes());
        std::hint::black_box(h.finalize());
    }
    let sha256_300 = per_second(hashes, t);

    let db = dir.join("limits.sqlite");
    let conn = limit_table(&db);
    let t = Instant::now();
    batched_inserts(&conn, DURABLE_WARM_ROWS);
    let sqlite_batched = per_second(DURABLE_WARM_ROWS as usize, t);

    let commits = 1_000;
    let t = Instant::now();
    durable_commits(&conn, DURABLE_WARM_ROWS, commits);
    let sqlite_durable = per_second(commits as usize, t);

    // Hash, sign and insert 300-byte records on one thread.
    conn.execute("DELETE FROM t", []).unwrap();
    let n_pipe = 20_000;
    let t = Instant::now();
    let tx = conn.unchecked_transaction().unwrap();
    hash_sign_insert(&tx, &key, 0, [0; 32], n_pipe as u64);
    tx.commit().unwrap();
    let pipeline_1_thread = per_second(n_pipe, t);

    // Read back, re-chain and batch-verify on every core.
    let t = Instant::now();
    let mut st = conn.prepare("SELECT h, r FROM t ORDER BY seq").unwrap();
    let mut rows_iter = st.query([]).unwrap();
    let mut prev = [0u8; 32];
    let mut msgs = Vec::with_capacity(n_pipe);
    let mut sigs = Vec::with_capacity(n_pipe);
    while let Some(row) = rows_iter.next().unwrap() {
        let r: Vec<u8> = row.get(1).unwrap();
        let mut h = Sha256::new();
        h.update(prev);
        h.update(&r[..300]);
        let hash: [u8; 32] = h.finalize().into();
        msgs.push(fundledger::entry::signed_message(&hash));
        sigs.push(ed25519_dalek::Signature::from_bytes(
            &r[300..364].try_into().unwrap(),
        ));
        prev = hash;
    }
    let keys = vec![key.verifying_key(); msgs.len()];
    batch_verify_on_every_core(&keys, &msgs, &sigs);
    let readback_verify_all = per_second(n_pipe, t);
    drop(rows_iter);
    drop(st);
    drop(conn);
    let _ = std::fs::remove_file(&db);

    Limits {
        sign,
        verify,
        batch_verify_core,
        batch_verify_all,
        zip215_batch_verify_all,
        sha256_300,
        sqlite_batched,
        sqlite_durable,
        pipeline_1_thread,
        readback_verify_all,
    }
}

// ---------------------------------------------------------------- ledger

fn keys() -> (SigningKey, SigningKey) {
    (
        SigningKey::from_bytes(&[1; 32]),
        SigningKey::from_bytes(&[2; 32]),
    )
}

fn b64(k: &SigningKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(k.verifying_key().as_bytes())
}

fn amount(units: u64) -> String {
    format!("{units}.00")
}

fn fund_total(units: u64, date: &str) -> FundTotal {
    FundTotal {
        fund: FUND.into(),
        amount: amount(units),
        currency: "USD".into(),
        date: date.into(),
        memo: None,
    }
}

/// One round of fund activity: a capital call and every partner's payment,
/// investments, valuations, a fee and an attestation. Amounts keep every
/// rule satisfied without looking at the ledger. About a dozen rounds a
/// day: a million entries span some twelve years, the life of a fund.
fn cycle(i: u64, calls: &mut u64) -> Vec<Event> {
    let first =
        time::Date::from_calendar_date(2014, time::Month::January, 1).expect("a valid date");
    let date = (first + time::Duration::days((i / 12) as i64)).to_string();
    *calls += 1;
    let call_units = 100_000 * PARTNERS as u64;
    let mut out = vec![Event::Call(Call {
        fund: FUND.into(),
        amount: amount(call_units),
        currency: "USD".into(),
        purpose: "investment".into(),
        date: date.clone(),
        due_date: date.clone(),
        memo: None,
    })];
    for p in 0..PARTNERS {
        out.push(Event::Contribution(Contribution {
            fund: FUND.into(),
            partner: format!("p{p:02}"),
            call: *calls,
            amount: amount(call_units / PARTNERS as u64),
            currency: "USD".into(),
            date: date.clone(),
            memo: None,
        }));
    }
    for k in 0..3 {
        let startup = format!("s{:02}", (i * 3 + k) % STARTUPS as u64);
        out.push(Event::Investment(StartupAmount {
            fund: FUND.into(),
            startup: startup.clone(),
            amount: amount(250_000),
            currency: "USD".into(),
            date: date.clone(),
            memo: None,
        }));
        out.push(Event::Valuation(Valuation {
            fund: FUND.into(),
            startup,
            fair_value: amount(250_000 * (i + 1) + 1_000 * k),
            currency: "USD".into(),
            date: date.clone(),
            memo: None,
        }));
    }
    out.push(Event::Fee(fund_total(10_000, &date)));
    out.push(Event::Attest(Attest {
        file_name: format!("board-minutes-{i}.pdf"),
        sha256: hex::encode(Sha256::digest(i.to_be_bytes())),
        size: 1000 + i,
        note: "board minutes".into(),
    }));
    out
}

/// The fund, its partners and their commitments, and its startups: what
/// the build and the import append before the first call.
fn setup_events() -> Vec<Event> {
    let mut setup = vec![Event::FundCreate(FundCreate {
        fund: FUND.into(),
        name: "Benchmark Fund".into(),
        currency: "USD".into(),
        jurisdiction: "AE".into(),
        vintage: 2014,
        management_fee_rate: "0.02".into(),
        management_fee_basis: "committed".into(),
        date: "2014-01-01".into(),
    })];
    for p in 0..PARTNERS {
        setup.push(Event::PartnerAdd(PartnerAdd {
            partner: format!("p{p:02}"),
            legal_name: format!("Partner {p}"),
            partner_type: if p < 4 { "government" } else { "private" }.into(),
            country: "AE".into(),
            lei: None,
            date: "2014-01-01".into(),
        }));
        setup.push(Event::Commitment(FundAmount {
            fund: FUND.into(),
            partner: format!("p{p:02}"),
            amount: amount(10_000_000_000_000),
            currency: "USD".into(),
            date: "2014-01-01".into(),
            memo: None,
        }));
    }
    for s in 0..STARTUPS {
        setup.push(Event::StartupAdd(StartupAdd {
            startup: format!("s{s:02}"),
            name: format!("Startup {s}"),
            country: "AE".into(),
            sector: "AI".into(),
            date: "2014-01-01".into(),
        }));
    }
    setup
}

fn build(path: &Path, entries: u64) {
    let (admin, recorder) = keys();
    let t0 = 1_700_000_000_000;
    let mut ledger = Ledger::init(path, "bench.example.org/fund", &admin, "admin", t0).unwrap();
    ledger
        .append(AppendRequest {
            event: Event::KeyEnroll(KeyEnroll {
                name: "recorder".into(),
                public_key: b64(&recorder),
                role: "recorder".into(),
                partner: None,
            }),
            idempotency_key: None,
            signers: &[&admin],
            now_unix_ms: t0,
        })
        .unwrap();
    let signers = [&recorder];
    ledger
        .append_batch(
            setup_events().into_iter().map(|e| (e, None)).collect(),
            &signers,
            t0,
        )
        .unwrap();
    let start_count = ledger.store().count().unwrap();
    let target = entries.max(start_count);
    // After each call, a slice of the one-thread pipeline limit (after a
    // pause that lets the call's background checkpoint end).
    let limit_db = limit_table(&path.with_extension("limit.sqlite"));
    let (mut limit, mut limit_seq, mut limit_prev) = (Interleaved::default(), 0, [0; 32]);
    let mut appending = Interleaved::default();
    let (mut i, mut calls, mut appended) = (0u64, 0u64, 0u64);
    let mut batch = Vec::new();
    while start_count + appended < target {
        for e in cycle(i, &mut calls) {
            if start_count + appended + batch.len() as u64 >= target {
                break;
            }
            batch.push((e, None));
        }
        i += 1;
        if batch.len() >= BUILD_CALL_EVENTS || start_count + appended + batch.len() as u64 >= target
        {
            let n = batch.len() as u64;
            appended += n;
            appending.slice(n, || {
                ledger
                    .append_batch(std::mem::take(&mut batch), &signers, t0 + 1)
                    .unwrap();
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            // The slice's commit is left out of its time, as the limit
            // measured alone commits once per 20,000 records.
            let tx = limit_db.unchecked_transaction().unwrap();
            limit.slice(PIPELINE_SLICE_RECORDS, || {
                limit_prev = hash_sign_insert(
                    &tx,
                    &recorder,
                    limit_seq,
                    limit_prev,
                    PIPELINE_SLICE_RECORDS,
                );
            });
            tx.commit().unwrap();
            limit_seq += PIPELINE_SLICE_RECORDS;
        }
    }
    drop(limit_db);
    let _ = std::fs::remove_file(path.with_extension("limit.sqlite"));
    println!("RESULT append_eps {:.0}", appending.rate());
    println!("RESULT append_limit_eps {:.0}", limit.rate());
    println!("RESULT append_peak_mib {:.1}", peak_rss_mib());
}

/// Events the import phase imports at most (a million-entry run would
/// otherwise spend a minute more on it).
const IMPORT_EVENTS_MAX: u64 = 100_000;

/// `fundledger import`'s whole path (parse, check, append) on a fresh
/// ledger, from a JSON Lines file of the build's events (written first,
/// one cycle at a time, not timed).
fn import_phase(path: &Path, events: u64) {
    use std::io::Write;
    let (admin, _) = keys();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut ledger = Ledger::init(path, "bench.example.org/import", &admin, "admin", 0).unwrap();
    let file = path.with_extension("jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let mut written = 0u64;
    let (mut i, mut calls) = (0u64, 0u64);
    let mut pending = setup_events();
    while written < events {
        for event in pending.drain(..) {
            if written == events {
                break;
            }
            let fields = String::from_utf8(event.canonical_bytes().unwrap()).unwrap();
            writeln!(
                out,
                r#"{{"kind":"{}","event":{fields},"idempotency_key":"e{written}"}}"#,
                event.kind()
            )
            .unwrap();
            written += 1;
        }
        pending = cycle(i, &mut calls);
        i += 1;
    }
    drop(pending);
    out.flush().unwrap();
    drop(out);
    let t = Instant::now();
    let scanned = fundledger::import::scan_file(&file, &mut |_| {}).unwrap();
    let done = fundledger::import::import(
        &mut ledger,
        &file,
        &scanned,
        &[&admin],
        1,
        &mut |_, _, _| {},
    )
    .unwrap();
    let seconds = t.elapsed().as_secs_f64();
    assert_eq!(done.appended as u64, events);
    println!("RESULT import_events {events}");
    println!("RESULT import_eps {:.0}", events as f64 / seconds);
    println!("RESULT import_peak_mib {:.1}", peak_rss_mib());
    let _ = std::fs::remove_file(&file);
}

/// Events per `append_batch` call of the build.
const BUILD_CALL_EVENTS: usize = 20_000;

/// Records of one slice of the pipeline limit between two build calls
/// (about 120 ms; 50 slices at a million entries).
const PIPELINE_SLICE_RECORDS: u64 = 4_000;

/// Verify steps (of 2,048 entries) between two slices of the batch
/// verification limit (the first after the first step), and the
/// signatures of a slice (about 50 ms; 16 slices at a million entries).
const VERIFY_STEPS_PER_SLICE: u64 = 32;
const VERIFY_SLICE_SIGNATURES: usize = 4_000;

/// Single appends of the durable phase, and of one slice: each slice is
/// followed by as many durable commits of the limit.
const DURABLE_APPENDS: u64 = 1_000;
const DURABLE_SLICE_APPENDS: u64 = 100;

/// `n` single appends (`append(i)` for i in 0..n) in slices, each followed
/// by as many durable commits of the limit, on a table beside `path`
/// warmed as the limit measured alone is, and as many durable commits of
/// an entry's rows (see [`entry_rows_commits`]). Returns the appends', the
/// limit's and the entry rows' work and time.
fn interleaved_durable(
    path: &Path,
    n: u64,
    mut append: impl FnMut(u64),
) -> (Interleaved, Interleaved, Interleaved) {
    let limit_path = path.with_extension("limit.sqlite");
    let limit_db = limit_table(&limit_path);
    batched_inserts(&limit_db, DURABLE_WARM_ROWS);
    let rows_path = path.with_extension("rows.sqlite");
    let rows_db = entry_rows_table(&rows_path);
    let (mut appending, mut limit, mut rows): (Interleaved, Interleaved, Interleaved) =
        Default::default();
    for from in (0..n).step_by(DURABLE_SLICE_APPENDS as usize) {
        let to = (from + DURABLE_SLICE_APPENDS).min(n);
        appending.slice(to - from, || (from..to).for_each(&mut append));
        limit.slice(to - from, || {
            durable_commits(&limit_db, DURABLE_WARM_ROWS + from, to - from)
        });
        rows.slice(to - from, || {
            entry_rows_commits(&rows_db, DURABLE_WARM_ROWS + from, to - from)
        });
    }
    drop(limit_db);
    drop(rows_db);
    let _ = std::fs::remove_file(&limit_path);
    let _ = std::fs::remove_file(&rows_path);
    (appending, limit, rows)
}

/// A record of the size the durable phases append (an attestation and
/// its signature).
const ENTRY_ROW_RECORD: [u8; 400] = [0x5a; 400];

/// Tables shaped as the ledger's `entries` and `merkle_nodes` (schema/
/// migrations), warmed with [`DURABLE_WARM_ROWS`] entries and their
/// Merkle nodes in batched transactions.
fn entry_rows_table(db: &Path) -> rusqlite::Connection {
    let _ = std::fs::remove_file(db);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE e (seq INTEGER PRIMARY KEY, entry_hash BLOB NOT NULL,
             prev_hash BLOB NOT NULL, recorded_at_unix_ms INTEGER NOT NULL,
             kind TEXT NOT NULL, idempotency_key TEXT UNIQUE, record BLOB NOT NULL) STRICT;
         CREATE TABLE m (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
             PRIMARY KEY (level, idx)) STRICT, WITHOUT ROWID;",
    )
    .unwrap();
    for chunk in 0..DURABLE_WARM_ROWS / 10_000 {
        let tx = conn.unchecked_transaction().unwrap();
        insert_entry_rows(&tx, chunk * 10_000, 10_000);
        tx.commit().unwrap();
    }
    conn
}

/// Insert entries `seq..seq + n`: the row, and the Merkle nodes each
/// completes (its leaf, and every perfect subtree it closes), as an
/// append stores them.
fn insert_entry_rows(conn: &rusqlite::Connection, seq: u64, n: u64) {
    let mut row = conn
        .prepare_cached("INSERT INTO e VALUES (?1, ?2, ?3, ?4, 'attest', NULL, ?5)")
        .unwrap();
    let mut node = conn
        .prepare_cached("INSERT INTO m VALUES (?1, ?2, ?3)")
        .unwrap();
    for i in seq..seq + n {
        let hash: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
        row.execute(params![
            i as i64,
            &hash[..],
            &hash[..],
            1i64,
            &ENTRY_ROW_RECORD[..]
        ])
        .unwrap();
        let (mut level, mut idx) = (0i64, i);
        loop {
            node.execute(params![level, idx as i64, &hash[..]]).unwrap();
            if idx % 2 == 0 {
                break;
            }
            level += 1;
            idx /= 2;
        }
    }
}

/// One durable commit per entry of what an append stores (see
/// [`insert_entry_rows`]): the pages a single append writes, without its
/// checks, signing or hashing. Not a limit the issue names; it shows how
/// much of a durable append's time the commit of its rows takes.
fn entry_rows_commits(conn: &rusqlite::Connection, seq: u64, n: u64) {
    for i in seq..seq + n {
        let tx = conn.unchecked_transaction().unwrap();
        insert_entry_rows(&tx, i, 1);
        tx.commit().unwrap();
    }
}

/// One single (durable) append of an attestation named `file_name`.
fn append_attest(ledger: &mut Ledger, signer: &SigningKey, file_name: String, now_unix_ms: i64) {
    ledger
        .append(AppendRequest {
            event: Event::Attest(Attest {
                file_name,
                sha256: "00".repeat(32),
                size: 1,
                note: "n".into(),
            }),
            idempotency_key: None,
            signers: &[signer],
            now_unix_ms,
        })
        .unwrap();
}

fn phase(name: &str, path: &Path, entries: u64) {
    match name {
        "build" => build(path, entries),
        "verify" => {
            // Verify reports progress between its steps, when its workers
            // are idle: every few steps, a slice of the all-core batch
            // verification limit runs there, its time taken out of
            // verify's.
            let (keys, msgs, sigs) = sample_sigs(VERIFY_SLICE_SIGNATURES);
            let mut limit = Interleaved::default();
            let mut steps = 0u64;
            let store = fundledger::store::Store::open_read_only(path).unwrap();
            let t = Instant::now();
            let report = fundledger::verify::verify(&store, &mut |_, _| {
                steps += 1;
                if steps % VERIFY_STEPS_PER_SLICE == 1 {
                    limit.slice(VERIFY_SLICE_SIGNATURES as u64, || {
                        batch_verify_on_every_core(&keys, &msgs, &sigs)
                    });
                }
            })
            .unwrap();
            let seconds = t.elapsed().as_secs_f64() - limit.seconds;
            assert!(report.is_intact(), "{report:?}");
            println!(
                "RESULT verify_eps {:.0}",
                report.entries_verified as f64 / seconds
            );
            if limit.work > 0.0 {
                println!("RESULT verify_limit_eps {:.0}", limit.rate());
            }
            println!("RESULT verify_peak_mib {:.1}", peak_rss_mib());
        }
        "query" => {
            let t = Instant::now();
            let ledger = Ledger::open_read_only(path).unwrap();
            println!("RESULT open_ms {:.1}", t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let b = fundledger::query::balances(&ledger, Some(FUND), None).unwrap();
            assert_eq!(b.funds[0].total, "0.00");
            println!("RESULT balances_ms {:.1}", t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            fundledger::query::position(&ledger, FUND, None, None).unwrap();
            println!("RESULT position_ms {:.1}", t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let head = ledger.tree_head().unwrap();
            println!("RESULT tree_head_ms {:.3}", t.elapsed().as_secs_f64() * 1e3);
            let n = head.tree_size;
            let proofs = 1000u64;
            let t = Instant::now();
            for i in 0..proofs {
                std::hint::black_box(ledger.inclusion_proof((i * 7919) % n, n).unwrap());
            }
            println!(
                "RESULT inclusion_proof_ms {:.4}",
                t.elapsed().as_secs_f64() * 1e3 / proofs as f64
            );
            let t = Instant::now();
            for i in 0..proofs {
                std::hint::black_box(
                    ledger
                        .consistency_proof(1 + (i * 7919) % (n - 1), n)
                        .unwrap(),
                );
            }
            println!(
                "RESULT consistency_proof_ms {:.4}",
                t.elapsed().as_secs_f64() * 1e3 / proofs as f64
            );
            let (admin, _) = keys();
            let t = Instant::now();
            fundledger::checkpoint::sign_checkpoint(&ledger, &admin).unwrap();
            println!(
                "RESULT checkpoint_ms {:.3}",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        "durable" => {
            let (admin, _) = keys();
            let _ = std::fs::remove_file(path);
            let mut ledger =
                Ledger::init(path, "bench.example.org/durable", &admin, "admin", 0).unwrap();
            let (appending, limit, rows) = interleaved_durable(path, DURABLE_APPENDS, |i| {
                append_attest(&mut ledger, &admin, format!("f{i}"), 1)
            });
            println!("RESULT durable_append_eps {:.0}", appending.rate());
            println!("RESULT durable_limit_eps {:.0}", limit.rate());
            println!("RESULT durable_rows_eps {:.0}", rows.rate());
        }
        "import" => import_phase(path, entries.min(IMPORT_EVENTS_MAX)),
        "durable-large" => {
            // Single appends on the large ledger, in one process: three
            // of them fall due a state snapshot.
            let (_, recorder) = keys();
            let mut ledger = Ledger::open(path).unwrap();
            let n = 3 * fundledger::ledger::SNAPSHOT_INTERVAL_ENTRIES;
            let mut slowest = 0f64;
            let (appending, limit, rows) = interleaved_durable(path, n, |i| {
                let one = Instant::now();
                append_attest(
                    &mut ledger,
                    &recorder,
                    format!("large-{i}"),
                    1_800_000_000_000,
                );
                slowest = slowest.max(one.elapsed().as_secs_f64());
            });
            println!("RESULT durable_large_eps {:.0}", appending.rate());
            println!("RESULT durable_large_limit_eps {:.0}", limit.rate());
            println!("RESULT durable_large_rows_eps {:.0}", rows.rate());
            println!("RESULT durable_large_slowest_ms {:.1}", slowest * 1e3);
        }
        "export" => {
            let (admin, _) = keys();
            let out = path.with_extension("export");
            let _ = std::fs::remove_dir_all(&out);
            let t = Instant::now();
            let ledger = Ledger::open_read_only(path).unwrap();
            let options = fundledger::export::CsvOptions::default();
            let written = fundledger::export::export_csv(
                &ledger,
                FUND,
                options,
                &admin,
                &out,
                &mut |_, _, _| {},
            )
            .unwrap();
            let seconds = t.elapsed().as_secs_f64();
            // The export's own peak, before the files are read back.
            let peak = peak_rss_mib();
            // Data rows: every line of every CSV file but its header.
            let rows: usize = written
                .files
                .iter()
                .map(|(name, _)| {
                    use std::io::Read;
                    let mut file = std::fs::File::open(out.join(name)).unwrap();
                    let (mut buffer, mut lines) = (vec![0u8; 1 << 16], 0usize);
                    loop {
                        let n = file.read(&mut buffer).unwrap();
                        if n == 0 {
                            break;
                        }
                        lines += buffer[..n].iter().filter(|b| **b == b'\n').count();
                    }
                    lines.saturating_sub(1)
                })
                .sum();
            println!("RESULT export_rows {rows}");
            println!("RESULT export_ms {:.0}", seconds * 1e3);
            println!("RESULT export_rows_per_s {:.0}", rows as f64 / seconds);
            println!("RESULT export_peak_mib {peak:.1}");
            // Left for the verify-export phase.
        }
        "verify-export" => {
            // Check the export the export phase left: signature, every
            // file's size and hash, and every file recomputed and compared.
            let out = path.with_extension("export");
            let t = Instant::now();
            let ledger = Ledger::open_read_only(path).unwrap();
            let check = fundledger::export::verify_export(
                &out,
                &fundledger::export::TrustAnchors {
                    ledger: Some(&ledger),
                    trusted_key: None,
                },
                &mut |_, _, _| {},
            )
            .unwrap();
            assert!(check.is_good(), "{check:?}");
            println!(
                "RESULT verify_export_ms {:.0}",
                t.elapsed().as_secs_f64() * 1e3
            );
            println!("RESULT verify_export_peak_mib {:.1}", peak_rss_mib());
            let _ = std::fs::remove_dir_all(&out);
            // The export's gigabytes were written back to disk meanwhile;
            // the phases that time fsyncs start on a quiet disk.
            let _ = Command::new("sync").status();
        }
        "bundle" => {
            // Write the audit bundle of the ledger, then verify it with no
            // ledger (restored into a temporary directory, then verified).
            let out = path.with_extension("bundle");
            let _ = std::fs::remove_file(&out);
            let store = fundledger::store::Store::open_read_only(path).unwrap();
            let t = Instant::now();
            let written = fundledger::bundle::write_file(&store, &out, &mut |_, _| {}).unwrap();
            let seconds = t.elapsed().as_secs_f64();
            drop(store);
            println!(
                "RESULT bundle_write_eps {:.0}",
                written.entries as f64 / seconds
            );
            println!(
                "RESULT bundle_mib {:.0}",
                written.bytes as f64 / (1024.0 * 1024.0)
            );
            println!("RESULT bundle_write_peak_mib {:.1}", peak_rss_mib());
            let t = Instant::now();
            let report = fundledger::bundle::verify_bundle(
                &out,
                &fundledger::verify::Options::default(),
                &mut |_, _, _| {},
            )
            .unwrap();
            let seconds = t.elapsed().as_secs_f64();
            assert!(report.is_intact(), "{report:?}");
            println!(
                "RESULT bundle_verify_eps {:.0}",
                report.entries_verified as f64 / seconds
            );
            println!("RESULT bundle_verify_peak_mib {:.1}", peak_rss_mib());
            let _ = std::fs::remove_file(&out);
        }
        other => usage_error(&format!("unknown phase {other:?}")),
    }
}

fn run_phase(name: &str, path: &Path, entries: u64) -> Vec<(String, f64)> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--phase", name, "--ledger"])
        .arg(path)
        .args(["--entries", &entries.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "phase {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// A whole command's wall time in milliseconds: the median of three runs
/// (the first may meet a cold page cache after the export phase).
fn timed_cli(args: &[&str]) -> f64 {
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_fundledger"))
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[1]
}

const USAGE: &str = "fundledger benchmark (see BENCHMARKS.md)

  cargo bench --bench ledger -- [--entries N] [--dir DIR]
      the whole run: limits, every phase, the tables (N defaults to 100000,
      DIR to target/bench)
  <harness> --phase PHASE --ledger PATH [--entries N]
      one phase alone: build, verify, query, export, verify-export,
      durable, durable-large, import, bundle";

/// The harness's arguments: `--flag value` pairs (cargo adds `--bench`).
/// An unknown or malformed argument stops the run with exit code 2, rather
/// than running a benchmark that was not asked for.
fn parse_args() -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--entries" | "--phase" | "--ledger" | "--dir" => match args.next() {
                Some(value) => {
                    out.insert(arg, value);
                }
                None => usage_error(&format!("{arg} needs a value")),
            },
            other => usage_error(&format!("unknown argument {other:?}")),
        }
    }
    out
}

fn usage_error(what: &str) -> ! {
    eprintln!("error: {what}; see --help");
    std::process::exit(2);
}

fn main() {
    let args = parse_args();
    let arg = |flag: &str| args.get(flag).cloned();
    let entries: u64 = match arg("--entries") {
        None => 100_000,
        Some(n) => n
            .parse()
            .unwrap_or_else(|_| usage_error(&format!("--entries {n:?} is not a count"))),
    };
    if let Some(name) = arg("--phase") {
        let ledger = arg("--ledger").unwrap_or_else(|| usage_error("--phase needs --ledger PATH"));
        phase(&name, &PathBuf::from(ledger), entries);
        return;
    }
    let dir = PathBuf::from(arg("--dir").unwrap_or_else(|| "target/bench".into()));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = dir.join(format!("bench-{entries}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", ledger.display()));
    }
    println!(
        "fundledger benchmark: {entries} entries, {} threads",
        threads()
    );
    // This VM's speed drifts, by up to a third within minutes: each phase
    // a ratio is taken for measures its limit interleaved with its own
    // work (the headline ratio); the limits are also measured just before
    // and just after those phases, and at the start and the end of the
    // run, for the ratios printed beside it.
    let start = measure_limits(&dir);
    let mut results: Vec<(String, f64)> = Vec::new();
    results.extend(run_phase("build", &ledger, entries));
    let after_build = measure_limits(&dir);
    results.extend(run_phase("verify", &ledger, entries));
    let after_verify = measure_limits(&dir);
    results.extend(run_phase("durable", &dir.join("durable.sqlite"), entries));
    let after_durable = measure_limits(&dir);
    results.extend(run_phase("import", &dir.join("import.sqlite"), entries));
    results.extend(run_phase("query", &ledger, entries));
    results.extend(run_phase("export", &ledger, entries));
    results.extend(run_phase("verify-export", &ledger, entries));
    results.extend(run_phase("bundle", &ledger, entries));
    let l = ledger.to_str().unwrap();
    results.push((
        "cli_balances_ms".into(),
        timed_cli(&["--ledger", l, "balances", "--fund", FUND, "--json"]),
    ));
    results.push((
        "cli_position_ms".into(),
        timed_cli(&["--ledger", l, "position", "--fund", FUND, "--json"]),
    ));
    // Last: it appends to the large ledger.
    let before_large = measure_limits(&dir);
    results.extend(run_phase("durable-large", &ledger, entries));
    let end = measure_limits(&dir);
    let limits = start.mean(end);
    let get = |k: &str| {
        results
            .iter()
            .find(|(n, _)| n == k)
            .map_or(f64::NAN, |(_, v)| *v)
    };

    println!();
    println!("| primitive (this machine) | start of the run | end of the run | mean |");
    println!("| --- | ---: | ---: | ---: |");
    let primitive = |name: String, f: fn(&Limits) -> f64| {
        println!(
            "| {name} | {:.0}/s | {:.0}/s | {:.0}/s |",
            f(&start),
            f(&end),
            f(&limits)
        );
    };
    let cores = threads();
    primitive("Ed25519 sign, 1 core".into(), |l| l.sign);
    primitive("Ed25519 verify (strict), 1 core".into(), |l| l.verify);
    primitive("Ed25519 batch verify, 1 core".into(), |l| {
        l.batch_verify_core
    });
    primitive(format!("Ed25519 batch verify, {cores} cores"), |l| {
        l.batch_verify_all
    });
    primitive(
        format!("Ed25519 batch verify, ZIP 215 (ed25519-zebra, two keys), {cores} cores"),
        |l| l.zip215_batch_verify_all,
    );
    primitive("SHA-256 of 300 bytes".into(), |l| l.sha256_300);
    primitive("SQLite inserts, batched transactions".into(), |l| {
        l.sqlite_batched
    });
    primitive("SQLite one durable commit per row".into(), |l| {
        l.sqlite_durable
    });
    primitive("hash + sign + insert, 1 thread".into(), |l| {
        l.pipeline_1_thread
    });
    primitive(
        format!("read back + re-chain + batch verify, {cores} cores"),
        |l| l.readback_verify_all,
    );
    println!();
    println!(
        "| fundledger at {entries} entries | measured | limit (interleaved) | ratio | ratio to the limits just before and after | ratio to the run's start and end |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    // The headline ratio is against the limit measured in slices between
    // the phase's own slices (see `Interleaved`); the other two show how
    // far the VM's drift moves a ratio taken minutes away.
    let row = |name: &str,
               (v, interleaved): (f64, f64),
               around: (Limits, Limits),
               f: fn(&Limits) -> f64| {
        println!(
            "| {name} | {v:.0} entries/s | {interleaved:.0} entries/s | **{:.2}** | {:.2} | {:.2} |",
            v / interleaved,
            v / f(&around.0.mean(around.1)),
            v / f(&limits)
        );
    };
    row(
        "bulk append (batch path)",
        (get("append_eps"), get("append_limit_eps")),
        (start, after_build),
        |l| l.pipeline_1_thread,
    );
    row(
        "full verify",
        (get("verify_eps"), get("verify_limit_eps")),
        (after_build, after_verify),
        |l| l.batch_verify_all,
    );
    row(
        "single durable append",
        (get("durable_append_eps"), get("durable_limit_eps")),
        (after_verify, after_durable),
        |l| l.sqlite_durable,
    );
    row(
        &format!("single durable append on the {entries}-entry ledger (3 snapshots due)"),
        (get("durable_large_eps"), get("durable_large_limit_eps")),
        (before_large, end),
        |l| l.sqlite_durable,
    );
    println!(
        "| slowest of those appends | {:.1} ms | - | - | - | - |",
        get("durable_large_slowest_ms")
    );
    // For information, not a limit the issue names: the same appends
    // against one durable commit of the rows an append stores.
    for (name, append, rows) in [
        (
            "single durable append",
            "durable_append_eps",
            "durable_rows_eps",
        ),
        (
            "single durable append on the large ledger",
            "durable_large_eps",
            "durable_large_rows_eps",
        ),
    ] {
        println!(
            "| {name}, against one durable commit of an entry's rows (interleaved) | {:.0} entries/s | {:.0} entries/s | {:.2} | - | - |",
            get(append),
            get(rows),
            get(append) / get(rows)
        );
    }
    println!(
        "| peak memory, bulk append | {:.1} MiB | 100 MiB | {:.2} | - | - |",
        get("append_peak_mib"),
        get("append_peak_mib") / 100.0
    );
    println!(
        "| peak memory, verify | {:.1} MiB | 100 MiB | {:.2} | - | - |",
        get("verify_peak_mib"),
        get("verify_peak_mib") / 100.0
    );
    println!(
        "| open (replay to build the state) | {:.0} ms | - | - | - | - |",
        get("open_ms")
    );
    println!(
        "| balances after open | {:.1} ms | 200 ms | {:.2} | - | - |",
        get("balances_ms"),
        get("balances_ms") / 200.0
    );
    println!(
        "| position after open | {:.1} ms | 200 ms | {:.2} | - | - |",
        get("position_ms"),
        get("position_ms") / 200.0
    );
    println!(
        "| `fundledger balances` (whole command) | {:.0} ms | 200 ms | {:.2} | - | - |",
        get("cli_balances_ms"),
        get("cli_balances_ms") / 200.0
    );
    println!(
        "| `fundledger position` (whole command) | {:.0} ms | 200 ms | {:.2} | - | - |",
        get("cli_position_ms"),
        get("cli_position_ms") / 200.0
    );
    println!(
        "| tree head (root from stored nodes) | {:.3} ms | - | - | - | - |",
        get("tree_head_ms")
    );
    println!(
        "| inclusion proof | {:.4} ms | 1 ms | {:.2} | - | - |",
        get("inclusion_proof_ms"),
        get("inclusion_proof_ms")
    );
    println!(
        "| consistency proof | {:.4} ms | 1 ms | {:.2} | - | - |",
        get("consistency_proof_ms"),
        get("consistency_proof_ms")
    );
    println!(
        "| sign a checkpoint | {:.3} ms | - | - | - | - |",
        get("checkpoint_ms")
    );
    println!(
        "| CSV export of the fund ({:.0} rows, whole export) | {:.0} rows/s | - | - | - | - |",
        get("export_rows"),
        get("export_rows_per_s")
    );
    println!(
        "| peak memory, CSV export | {:.1} MiB | - | - | - | - |",
        get("export_peak_mib")
    );
    println!(
        "| verify-export with the ledger (every file hashed, recomputed and compared) | {:.0} rows/s | - | - | - | - |",
        get("export_rows") / (get("verify_export_ms") / 1e3)
    );
    println!(
        "| peak memory, verify-export | {:.1} MiB | - | - | - | - |",
        get("verify_export_peak_mib")
    );
    println!(
        "| `export bundle` ({:.0} MiB) | {:.0} entries/s | - | - | - | - |",
        get("bundle_mib"),
        get("bundle_write_eps")
    );
    println!(
        "| `verify --bundle` (restore into a temporary ledger, then verify) | {:.0} entries/s | - | - | - | - |",
        get("bundle_verify_eps")
    );
    println!(
        "| peak memory, `export bundle` / then `verify --bundle` (the phase's process) | {:.1} / {:.1} MiB | - | - | - | - |",
        get("bundle_write_peak_mib"),
        get("bundle_verify_peak_mib")
    );
    println!(
        "| `fundledger import` of {:.0} events (parse, check, append; a fresh ledger) | {:.0} events/s | - | - | - | - |",
        get("import_events"),
        get("import_eps")
    );
    println!(
        "| peak memory, import | {:.1} MiB | - | - | - | - |",
        get("import_peak_mib")
    );
}
