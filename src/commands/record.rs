//! Commands that record entries: `init`, every event, `propose`, `cosign`,
//! `submit` and `import`.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::key::key_command;
use super::{file_stem, key_path, load_key, print_json, read_text, Progress};
use crate::cli::{
    Cli, EventCommand, FundCommand, PartnerCommand, PolicyCommand, Recording, StartupCommand,
};
use fundledger::entry::key_id;
use fundledger::error::{Error, Result};
use fundledger::event::*;
use fundledger::input::{amount_with_currency, required_date};
use fundledger::ledger::{now_unix_ms, AppendRequest, Appended, Ledger};
use fundledger::query;

/// `init`: a new ledger whose genesis entry enrolls --key as administrator.
pub(super) fn init(cli: &Cli, origin: &str, key_name: Option<&str>) -> Result<u8> {
    let key_path = key_path(cli)?;
    let key = load_key(key_path)?;
    let name = match key_name {
        Some(n) => n.to_string(),
        None => file_stem(key_path),
    };
    let ledger = Ledger::init(&cli.ledger, origin, &key, &name, now_unix_ms())?;
    let head = ledger.store().head()?.map(|h| hex::encode(h.entry_hash));
    println!(
        "created ledger {} for origin {origin}; genesis entry 0 {} enrolls key {name} ({}) as administrator",
        cli.ledger.display(),
        head.unwrap_or_default(),
        &hex::encode(key_id(&key.verifying_key()))[..16]
    );
    Ok(0)
}

pub(super) fn event_command(cli: &Cli, ev: &EventCommand, propose: Option<&Path>) -> Result<u8> {
    match ev {
        EventCommand::Key(k) => key_command(cli, k, propose),
        EventCommand::Import { .. } if propose.is_some() => Err(Error::input(
            "an import cannot be proposed; propose its events one at a time",
        )),
        EventCommand::Import {
            file,
            dry_run,
            json,
        } => import_command(cli, file, *dry_run, *json),
        EventCommand::Attest { file, note, rec } => {
            let mut f = std::fs::File::open(file)
                .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut size = 0u64;
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                hasher.update(&buf[..n]);
            }
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            record(
                cli,
                propose,
                Event::Attest(Attest {
                    file_name,
                    sha256: hex::encode(hasher.finalize()),
                    size,
                    note: note.clone(),
                }),
                rec,
            )
        }
        EventCommand::Fund(FundCommand::Create {
            id,
            name,
            currency,
            jurisdiction,
            vintage,
            fee_rate,
            fee_basis,
            rec,
        }) => record(
            cli,
            propose,
            Event::FundCreate(FundCreate {
                fund: id.clone(),
                name: name.clone(),
                currency: currency.clone(),
                jurisdiction: jurisdiction.clone(),
                vintage: *vintage,
                management_fee_rate: fee_rate.clone(),
                management_fee_basis: fee_basis.clone(),
                date: required_date(&rec.date)?,
            }),
            rec,
        ),
        EventCommand::Partner(PartnerCommand::Add {
            id,
            name,
            partner_type,
            country,
            lei,
            rec,
        }) => record(
            cli,
            propose,
            Event::PartnerAdd(PartnerAdd {
                partner: id.clone(),
                legal_name: name.clone(),
                partner_type: partner_type.clone(),
                country: country.clone(),
                lei: lei.clone(),
                date: required_date(&rec.date)?,
            }),
            rec,
        ),
        EventCommand::Startup(StartupCommand::Add {
            id,
            name,
            country,
            sector,
            rec,
        }) => record(
            cli,
            propose,
            Event::StartupAdd(StartupAdd {
                startup: id.clone(),
                name: name.clone(),
                country: country.clone(),
                sector: sector.clone(),
                date: required_date(&rec.date)?,
            }),
            rec,
        ),
        EventCommand::Commit {
            fund,
            partner,
            amount,
            reduce,
            rec,
        } => {
            let (amount, currency) = amount_with_currency(amount)?;
            let body = FundAmount {
                fund: fund.clone(),
                partner: partner.clone(),
                amount,
                currency: currency.code().into(),
                date: required_date(&rec.date)?,
                memo: rec.memo.clone(),
            };
            let event = if *reduce {
                Event::CommitmentReduce(body)
            } else {
                Event::Commitment(body)
            };
            record(cli, propose, event, rec)
        }
        EventCommand::Call {
            fund,
            amount,
            purpose,
            due_date,
            rec,
        } => {
            let (amount, currency) = amount_with_currency(amount)?;
            let due = required_date(&Some(due_date.clone()))?;
            record(
                cli,
                propose,
                Event::Call(Call {
                    fund: fund.clone(),
                    amount,
                    currency: currency.code().into(),
                    purpose: purpose.clone(),
                    date: required_date(&rec.date)?,
                    due_date: due,
                    memo: rec.memo.clone(),
                }),
                rec,
            )
        }
        EventCommand::Contribute {
            fund,
            partner,
            call,
            amount,
            rec,
        } => {
            let (amount, currency) = amount_with_currency(amount)?;
            record(
                cli,
                propose,
                Event::Contribution(Contribution {
                    fund: fund.clone(),
                    partner: partner.clone(),
                    call: *call,
                    amount,
                    currency: currency.code().into(),
                    date: required_date(&rec.date)?,
                    memo: rec.memo.clone(),
                }),
                rec,
            )
        }
        EventCommand::Invest {
            fund,
            startup,
            amount,
            rec,
        } => {
            let (amount, currency) = amount_with_currency(amount)?;
            record(
                cli,
                propose,
                Event::Investment(StartupAmount {
                    fund: fund.clone(),
                    startup: startup.clone(),
                    amount,
                    currency: currency.code().into(),
                    date: required_date(&rec.date)?,
                    memo: rec.memo.clone(),
                }),
                rec,
            )
        }
        EventCommand::Value {
            fund,
            startup,
            fair_value,
            rec,
        } => {
            let (fair_value, currency) = amount_with_currency(fair_value)?;
            record(
                cli,
                propose,
                Event::Valuation(Valuation {
                    fund: fund.clone(),
                    startup: startup.clone(),
                    fair_value,
                    currency: currency.code().into(),
                    date: required_date(&rec.date)?,
                    memo: rec.memo.clone(),
                }),
                rec,
            )
        }
        EventCommand::Realize {
            fund,
            startup,
            proceeds,
            cost,
            rec,
        } => {
            let (proceeds, currency) = amount_with_currency(proceeds)?;
            let (cost, cost_currency) = amount_with_currency(cost)?;
            if cost_currency != currency {
                return Err(Error::input(
                    "--proceeds and --cost must be in the same currency",
                ));
            }
            record(
                cli,
                propose,
                Event::Realization(Realization {
                    fund: fund.clone(),
                    startup: startup.clone(),
                    proceeds,
                    cost_released: cost,
                    currency: currency.code().into(),
                    date: required_date(&rec.date)?,
                    memo: rec.memo.clone(),
                }),
                rec,
            )
        }
        EventCommand::Distribute { fund, amount, rec } => record(
            cli,
            propose,
            Event::Distribution(fund_total(fund, amount, rec)?),
            rec,
        ),
        EventCommand::Fee { fund, amount, rec } => record(
            cli,
            propose,
            Event::Fee(fund_total(fund, amount, rec)?),
            rec,
        ),
        EventCommand::Expense { fund, amount, rec } => record(
            cli,
            propose,
            Event::Expense(fund_total(fund, amount, rec)?),
            rec,
        ),
        EventCommand::Reverse { seq, reason, rec } => record(
            cli,
            propose,
            Event::Reversal(Reversal {
                seq: *seq,
                reason: reason.clone(),
                date: required_date(&rec.date)?,
            }),
            rec,
        ),
        EventCommand::Policy(PolicyCommand::Set { file, rec }) => {
            let text = read_text(file)?;
            let policy: fundledger::policy::Policy = serde_json::from_str(&text).map_err(|e| {
                Error::input(format!("{} is not a policy: {e}", file.display()))
                    .with_hint("see schema/POLICY.md; `fundledger policy show --json` prints the policy in force")
            })?;
            policy
                .validate()
                .map_err(|e| Error::input(e.message().to_string()))?;
            record(cli, propose, Event::PolicySet(PolicySet { policy }), rec)
        }
        EventCommand::Policy(PolicyCommand::Show { json }) => {
            if propose.is_some() {
                return Err(Error::input(
                    "`policy show` records nothing and cannot be proposed",
                ));
            }
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            let state = ledger.state();
            if *json {
                print_json(&serde_json::json!({
                    "format_version": 1,
                    "in_force_since_seq": state.policy_seq,
                    "policy": state.policy,
                }));
            } else {
                match state.policy_seq {
                    Some(seq) => println!("policy in force since entry {seq}:"),
                    None => println!("built-in default policy (schema/POLICY.md):"),
                }
                let mut rows = vec![["kinds", "roles", "signers", "above", "partner key"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()];
                for r in &state.policy.rules {
                    rows.push(vec![
                        r.kinds.join(","),
                        r.roles.join(","),
                        r.signers.to_string(),
                        r.above
                            .as_ref()
                            .map(|t| format!("{} -> {}", t.amount, t.signers))
                            .unwrap_or_else(|| "-".into()),
                        r.partner_key.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                print!("{}", query::render_table(&rows, 5));
            }
            Ok(0)
        }
    }
}

fn fund_total(fund: &str, amount: &str, rec: &Recording) -> Result<FundTotal> {
    let (amount, currency) = amount_with_currency(amount)?;
    Ok(FundTotal {
        fund: fund.to_string(),
        amount,
        currency: currency.code().into(),
        date: required_date(&rec.date)?,
        memo: rec.memo.clone(),
    })
}

/// Append one event signed by --key and report what happened; or, with
/// `propose`, write a proposal file for several signers instead.
pub(super) fn record(
    cli: &Cli,
    propose: Option<&Path>,
    event: Event,
    rec: &Recording,
) -> Result<u8> {
    let kind = event.kind();
    if let Some(out) = propose {
        let mut ledger = Ledger::open(&cli.ledger)?;
        let content = ledger.propose(event, rec.idempotency_key.clone(), now_unix_ms())?;
        let mut proposal = fundledger::proposal::Proposal::new(content);
        // The proposer signs too when it has a key.
        if let Some(path) = &cli.key {
            proposal.sign(&load_key(path)?)?;
        }
        fundledger::proposal::write_new(out, &proposal.to_json()?)?;
        println!(
            "wrote proposal for entry {} ({kind}) to {} with {} signature(s); collect more with `fundledger cosign {}`, then `fundledger submit {}`",
            proposal.content.seq,
            out.display(),
            proposal.signatures.len(),
            out.display(),
            out.display()
        );
        return Ok(0);
    }
    let key = load_key(key_path(cli)?)?;
    let mut ledger = Ledger::open(&cli.ledger)?;
    let outcome = ledger.append(AppendRequest {
        event,
        idempotency_key: rec.idempotency_key.clone(),
        signers: &[&key],
        now_unix_ms: now_unix_ms(),
    })?;
    report_outcome(&outcome, kind, rec.json);
    Ok(0)
}

/// `cosign FILE`: add --key's signature to a proposal.
pub(super) fn cosign(cli: &Cli, file: &Path) -> Result<u8> {
    let key = load_key(key_path(cli)?)?;
    let text = read_text(file)?;
    let mut proposal = fundledger::proposal::Proposal::parse(&text)?;
    // Check the signatures already there when the ledger is at hand.
    if let Ok(ledger) = Ledger::open_read_only(&cli.ledger) {
        proposal.check_signatures(ledger.state())?;
        // And that this key may sign at all, before it adds a signature.
        let id = key_id(&key.verifying_key());
        ledger.state().signer_records(
            proposal.content.seq,
            &fundledger::event::Body::decode(&proposal.content.kind, &proposal.content.body)?.event,
            &[id],
        )?;
    }
    proposal.sign(&key)?;
    std::fs::write(file, proposal.to_json()?)
        .map_err(|e| Error::io(format!("cannot write {}", file.display()), e))?;
    println!(
        "added a signature by key {} to {} ({} signatures)",
        &hex::encode(key_id(&key.verifying_key()))[..16],
        file.display(),
        proposal.signatures.len()
    );
    Ok(0)
}

/// `submit FILE`: append a proposal once it has its signatures.
pub(super) fn submit(cli: &Cli, file: &Path, json: bool) -> Result<u8> {
    let proposal = fundledger::proposal::Proposal::parse(&read_text(file)?)?;
    let mut ledger = Ledger::open(&cli.ledger)?;
    let outcome = ledger.submit(&proposal.content, proposal.signatures.clone())?;
    report_outcome(&outcome, &proposal.content.kind, json);
    Ok(0)
}

/// `import`: parse the whole file, then check and (unless a dry run)
/// append its events.
fn import_command(cli: &Cli, file: &Path, dry_run: bool, json: bool) -> Result<u8> {
    let mut progress = Progress::new("importing", json);
    let scanned = fundledger::import::scan_file(file, &mut |read| {
        progress.show(format!("reading {read} events"))
    });
    progress.finish();
    let scanned = scanned?;
    let key = load_key(key_path(cli)?)?;
    let mut ledger = Ledger::open(&cli.ledger)?;
    let mut progress = Progress::new("importing", json);
    let run = if dry_run {
        fundledger::import::check
    } else {
        fundledger::import::import
    };
    let done = run(
        &mut ledger,
        file,
        &scanned,
        &[&key],
        now_unix_ms(),
        &mut |stage, done, total| progress.show(format!("{stage} {done}/{total} events")),
    );
    progress.finish();
    let done = done?;
    let range = match (done.first_seq, done.last_seq) {
        (Some(first), Some(last)) => format!("entries {first} to {last}"),
        _ => "no new entry".into(),
    };
    if json {
        print_json(&serde_json::json!({
            "format_version": 1,
            "dry_run": dry_run,
            "events": done.events,
            "appended": done.appended,
            "already_recorded": done.already_recorded,
            "first_seq": done.first_seq,
            "last_seq": done.last_seq,
        }));
    } else if dry_run {
        println!(
            "checked {} events: {} would be appended ({range}), {} already recorded; nothing was recorded (dry run)",
            done.events, done.appended, done.already_recorded
        );
    } else {
        println!(
            "imported {} events: appended {} ({range}), {} already recorded",
            done.events, done.appended, done.already_recorded
        );
    }
    Ok(0)
}

fn report_outcome(outcome: &Appended, kind: &str, json: bool) {
    if json {
        let value = match outcome {
            Appended::New { seq, entry_hash } => serde_json::json!({
                "format_version": 1, "status": "appended", "seq": seq, "kind": kind,
                "entry_hash": hex::encode(entry_hash)
            }),
            Appended::AlreadyRecorded { seq } => serde_json::json!({
                "format_version": 1, "status": "already_recorded", "seq": seq, "kind": kind
            }),
        };
        print_json(&value);
    } else {
        match outcome {
            Appended::New { seq, entry_hash } => {
                println!("appended entry {seq} ({kind}) {}", hex::encode(entry_hash))
            }
            Appended::AlreadyRecorded { seq } => println!(
                "already recorded as entry {seq} (same idempotency key and content); nothing appended"
            ),
        }
    }
}
