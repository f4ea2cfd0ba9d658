//! Commands that read the ledger: `log`, `show`, `verify`, `balances` and
//! `position`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{print_json, read_text, Progress};
use crate::cli::Cli;
use fundledger::entry;
use fundledger::error::{Error, Result};
use fundledger::event::*;
use fundledger::input::optional_date;
use fundledger::ledger::{decode_row, Ledger};
use fundledger::store::Store;
use fundledger::{keys, query, verify};

fn format_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub(super) fn log(cli: &Cli, from: u64, limit: Option<u64>, json: bool) -> Result<u8> {
    let store = Store::open_read_only(&cli.ledger)?;
    let mut stdout = std::io::stdout().lock();
    let mut failed = None;
    store.scan(from, limit, |row| {
        let (record, body) = decode_row(&row)?;
        let c = &record.content;
        let line = if json {
            serde_json::json!({
                "seq": c.seq,
                "entry_hash": hex::encode(c.hash()),
                "recorded_at": format_time(c.recorded_at_unix_ms),
                "kind": c.kind,
                "date": body.event.date(),
                "fund": body.event.fund(),
                "event": body.event.to_value(),
            })
            .to_string()
        } else {
            format!(
                "{:>6}  {}  {:<18} {}  {}",
                c.seq,
                format_time(c.recorded_at_unix_ms),
                c.kind,
                &hex::encode(c.hash())[..16],
                summary(&body.event)
            )
        };
        if let Err(e) = writeln!(stdout, "{line}") {
            failed = Some(e);
            return Ok(false);
        }
        Ok(true)
    })?;
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = failed;
    Ok(0)
}

/// A one-line description of an event.
fn summary(event: &Event) -> String {
    match event {
        Event::Genesis(g) => format!("administrator {}", g.key.name),
        Event::KeyEnroll(k) => format!("{} as {}", k.name, k.role),
        Event::KeyRevoke(k) => format!("{}: {}", &k.key_id[..16.min(k.key_id.len())], k.reason),
        Event::KeyRotate(k) => format!(
            "{} replaces {}: {}",
            k.name,
            &k.old_key_id[..16.min(k.old_key_id.len())],
            k.reason
        ),
        Event::PolicySet(p) => format!("{} rules", p.policy.rules.len()),
        Event::Attest(a) => format!("{} ({} bytes) {}", a.file_name, a.size, a.note),
        Event::FundCreate(f) => format!("{} {} {}", f.fund, f.currency, f.name),
        Event::PartnerAdd(p) => format!("{} {} {}", p.partner, p.partner_type, p.legal_name),
        Event::StartupAdd(s) => format!("{} {} {}", s.startup, s.sector, s.name),
        Event::Commitment(c) | Event::CommitmentReduce(c) => {
            format!(
                "{} {} {} {} {}",
                c.date, c.fund, c.partner, c.amount, c.currency
            )
        }
        Event::Call(c) => format!(
            "{} {} {} {} {}",
            c.date, c.fund, c.purpose, c.amount, c.currency
        ),
        Event::Contribution(c) => format!(
            "{} {} {} call {} {} {}",
            c.date, c.fund, c.partner, c.call, c.amount, c.currency
        ),
        Event::Investment(i) => format!(
            "{} {} {} {} {}",
            i.date, i.fund, i.startup, i.amount, i.currency
        ),
        Event::Valuation(v) => format!(
            "{} {} {} {} {}",
            v.date, v.fund, v.startup, v.fair_value, v.currency
        ),
        Event::Realization(r) => format!(
            "{} {} {} proceeds {} cost {} {}",
            r.date, r.fund, r.startup, r.proceeds, r.cost_released, r.currency
        ),
        Event::Distribution(d) | Event::Fee(d) | Event::Expense(d) => {
            format!("{} {} {} {}", d.date, d.fund, d.amount, d.currency)
        }
        Event::Reversal(r) => format!("{} reverses {}: {}", r.date, r.seq, r.reason),
    }
}

pub(super) fn show(
    cli: &Cli,
    seq: u64,
    json: bool,
    signed_message: &Option<PathBuf>,
    signature: &Option<PathBuf>,
    signer: &Option<String>,
) -> Result<u8> {
    let store = Store::open_read_only(&cli.ledger)?;
    let row = store
        .get(seq)?
        .ok_or_else(|| Error::input(format!("no entry {seq} in {}", cli.ledger.display())))?;
    let (record, body) = decode_row(&row)?;
    let c = &record.content;
    let hash = c.hash();
    if let (Some(msg_path), Some(sig_path)) = (signed_message, signature) {
        let sig = match signer {
            None => record.signatures.first(),
            Some(prefix) => record
                .signatures
                .iter()
                .find(|s| hex::encode(s.key_id).starts_with(&prefix.to_ascii_lowercase())),
        }
        .ok_or_else(|| Error::input("no signature on this entry matches --signer"))?;
        std::fs::write(msg_path, entry::signed_message(&hash))
            .map_err(|e| Error::io(format!("cannot write {}", msg_path.display()), e))?;
        std::fs::write(sig_path, sig.signature)
            .map_err(|e| Error::io(format!("cannot write {}", sig_path.display()), e))?;
    }
    let body_json: serde_json::Value = serde_json::from_slice(&c.body).unwrap_or_default();
    let sigs: Vec<serde_json::Value> = record
        .signatures
        .iter()
        .map(|s| serde_json::json!({"key_id": hex::encode(s.key_id), "signature": hex::encode(s.signature)}))
        .collect();
    if json {
        print_json(&serde_json::json!({
            "format_version": 1,
            "seq": c.seq,
            "entry_hash": hex::encode(hash),
            "prev_hash": hex::encode(c.prev_hash),
            "origin": c.origin,
            "recorded_at": format_time(c.recorded_at_unix_ms),
            "recorded_at_unix_ms": c.recorded_at_unix_ms,
            "kind": c.kind,
            "body": body_json,
            "signatures": sigs,
        }));
    } else {
        println!("entry       {}", c.seq);
        println!("hash        {}", hex::encode(hash));
        println!("prev_hash   {}", hex::encode(c.prev_hash));
        println!("origin      {}", c.origin);
        println!("recorded_at {}", format_time(c.recorded_at_unix_ms));
        println!("kind        {}", c.kind);
        println!("summary     {}", summary(&body.event));
        println!("body        {}", String::from_utf8_lossy(&c.body));
        for s in &record.signatures {
            println!("signed by   {}", hex::encode(s.key_id));
        }
    }
    Ok(0)
}

/// What `verify` and `restore` check besides the chain. A bundle's own keys
/// cannot vouch for a checkpoint, so with a bundle one needs --trusted-key.
fn verify_options(
    checkpoint: Option<&Path>,
    trusted_key: &[PathBuf],
    bundle: bool,
) -> Result<verify::Options> {
    let Some(path) = checkpoint else {
        return Ok(verify::Options::default());
    };
    if bundle && trusted_key.is_empty() {
        return Err(Error::input(
            "a bundle's own keys cannot vouch for the checkpoint it is checked against",
        )
        .with_hint("pass --trusted-key PEM, the public key of whoever signed the checkpoint"));
    }
    let text = read_text(path)?;
    let origin = fundledger::checkpoint::note_origin(&text)?;
    let trusted = trusted_key
        .iter()
        .map(|p| {
            let key = keys::load_public_key(p)?;
            fundledger::note::Verifier::ed25519(&origin, &key.to_bytes())
                .map_err(|e| Error::input(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(verify::Options {
        checkpoint: Some(text),
        trusted,
        only_trusted: bundle,
    })
}

/// `verify`: the auditor's full check of --ledger or of a bundle; exit 1
/// when it fails.
pub(super) fn verify(
    cli: &Cli,
    json: bool,
    bundle: Option<&Path>,
    checkpoint: Option<&Path>,
    trusted_key: &[PathBuf],
) -> Result<u8> {
    let options = verify_options(checkpoint, trusted_key, bundle.is_some())?;
    let mut progress = Progress::new("verifying", json);
    let report = match bundle {
        Some(path) => fundledger::bundle::verify_bundle(path, &options, &mut |stage, d, t| {
            progress.show(format!("{stage} {d}/{t} entries"))
        })?,
        None => {
            let store = Store::open_read_only(&cli.ledger)?;
            verify::verify_with(&store, &options, &mut |d, t| progress.update(d, t))?
        }
    };
    progress.finish();
    print_report(&report, json);
    Ok(if report.is_intact() { 0 } else { 1 })
}

/// `restore`: a new ledger at --ledger from a bundle, kept if it verifies.
pub(super) fn restore(
    cli: &Cli,
    bundle: &Path,
    checkpoint: Option<&Path>,
    trusted_key: &[PathBuf],
    json: bool,
) -> Result<u8> {
    let options = verify_options(checkpoint, trusted_key, true)?;
    let mut progress = Progress::new("restoring", json);
    let (restored, report) =
        fundledger::bundle::restore_ledger(bundle, &cli.ledger, &options, &mut |stage, d, t| {
            progress.show(format!("{stage} {d}/{t} entries"))
        })?;
    progress.finish();
    print_report(&report, json);
    if !json {
        if report.is_intact() {
            println!(
                "restored {} entries and {} checkpoints into {}",
                restored.entries,
                restored.checkpoints,
                cli.ledger.display()
            );
        } else {
            println!(
                "nothing restored: the bundle does not verify, and {} was not kept",
                cli.ledger.display()
            );
        }
    }
    Ok(if report.is_intact() { 0 } else { 1 })
}

/// Print verify's report: JSON, or the first failure, or what is intact.
fn print_report(report: &verify::Report, json: bool) {
    if json {
        print_json(report);
    } else if let Some(f) = &report.failure {
        println!("FAILED at entry {}: {} [{}]", f.seq, f.message, f.check);
        if let Some(e) = &f.expected {
            println!("  expected: {e}");
        }
        if let Some(found) = &f.found {
            println!("  found:    {found}");
        }
        println!("{} entries before it verified", report.entries_verified);
    } else {
        println!(
            "intact: {} entries, {} signatures, head {} (origin {})",
            report.entries_verified,
            report.signatures_verified,
            report.head_hash.as_deref().unwrap_or("-"),
            report.origin.as_deref().unwrap_or("-")
        );
        println!(
            "merkle root {} over {} entries; {} recorded checkpoints verified",
            report.root_hash.as_deref().unwrap_or("-"),
            report.entries_verified,
            report.checkpoints_verified
        );
        for w in &report.witnesses {
            println!(
                "witness {}: latest cosigned tree size {} at unix time {}",
                w.name, w.latest_tree_size, w.timestamp_unix_s
            );
        }
        if let Some(c) = &report.checkpoint {
            println!(
                "the ledger extends the signed checkpoint of tree size {}",
                c.tree_size
            );
        }
    }
}

/// `balances`: the trial balance of each fund.
pub(super) fn balances(
    cli: &Cli,
    fund: Option<&str>,
    as_of: &Option<String>,
    json: bool,
) -> Result<u8> {
    let as_of = optional_date(as_of)?;
    let ledger = Ledger::open_read_only(&cli.ledger)?;
    let b = query::balances(&ledger, fund, as_of)?;
    if json {
        print_json(&b);
    } else {
        for f in &b.funds {
            println!("Fund {} ({})", f.fund, f.currency);
            let mut rows = vec![vec![
                "account".to_string(),
                "class".into(),
                "balance".into(),
            ]];
            for l in &f.lines {
                let dim = l.partner.as_ref().or(l.startup.as_ref());
                let name = match dim {
                    Some(d) => format!("{}:{d}", l.account),
                    None => l.account.clone(),
                };
                rows.push(vec![name, l.class.into(), l.balance.clone()]);
            }
            rows.push(vec!["total".into(), String::new(), f.total.clone()]);
            print!("{}", query::render_table(&rows, 2));
        }
    }
    Ok(0)
}

/// `position`: a fund's or a partner's position.
pub(super) fn position(
    cli: &Cli,
    fund: &str,
    partner: Option<&str>,
    as_of: &Option<String>,
    json: bool,
) -> Result<u8> {
    let as_of = optional_date(as_of)?;
    let ledger = Ledger::open_read_only(&cli.ledger)?;
    let p = query::position(&ledger, fund, partner, as_of)?;
    if json {
        print_json(&p);
    } else {
        print!("{}", query::render_position(&p));
    }
    Ok(0)
}
