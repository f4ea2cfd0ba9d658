//! The `fundledger` binary: parse the command line, call the library, print
//! the result, and map errors to exit codes (0 ok, 1 verification found a
//! problem, 2 could not run). All logic lives in the library.

mod cli;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use sha2::{Digest, Sha256};

use cli::{
    Cli, Command, EventCommand, FundCommand, KeyCommand, PartnerCommand, PolicyCommand,
    ProveCommand, Recording, StartupCommand, WitnessCommand,
};
use fundledger::entry::{self, key_id};
use fundledger::error::{Error, Result};
use fundledger::event::*;
use fundledger::input::{amount_with_currency, optional_date, required_date};
use fundledger::ledger::{decode_row, now_unix_ms, AppendRequest, Appended, Ledger};
use fundledger::store::Store;
use fundledger::{keys, query, verify};

/// mimalloc instead of the system allocator: verify, import and export
/// allocate and free a few small objects per entry, which took glibc's
/// malloc about a sixth of verify's CPU (BENCHMARKS.md, "What bounds each
/// figure"). .cargo/config.toml sets how it commits memory.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // Help and version go to stdout with exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage errors: one line, like every other error, and exit 2.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("fundledger: error: {first} (hint: see `fundledger --help`)");
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fundledger: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Init { origin, key_name } => {
            let key_path = key_path(cli)?;
            let key = load_key(key_path)?;
            let name = match key_name {
                Some(n) => n.clone(),
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
        Command::Log { from, limit, json } => log(cli, *from, *limit, *json),
        Command::Show {
            seq,
            json,
            signed_message,
            signature,
            signer,
        } => show(cli, *seq, *json, signed_message, signature, signer),
        Command::Verify {
            json,
            checkpoint,
            trusted_key,
        } => {
            let store = Store::open_read_only(&cli.ledger)?;
            let options = verify::Options {
                checkpoint: checkpoint.as_deref().map(read_text).transpose()?,
                trusted: match checkpoint {
                    Some(path) => {
                        let origin = fundledger::checkpoint::note_origin(&read_text(path)?)?;
                        trusted_key
                            .iter()
                            .map(|p| {
                                let key = keys::load_public_key(p)?;
                                fundledger::note::Verifier::ed25519(&origin, &key.to_bytes())
                                    .map_err(|e| Error::input(e.to_string()))
                            })
                            .collect::<Result<Vec<_>>>()?
                    }
                    None => Vec::new(),
                },
            };
            let mut progress = Progress::new("verifying", *json);
            let report = verify::verify_with(&store, &options, &mut |d, t| progress.update(d, t))?;
            progress.finish();
            if *json {
                print_json(&report);
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
            Ok(if report.is_intact() { 0 } else { 1 })
        }
        Command::Checkpoint { out } => {
            let key = load_key(key_path(cli)?)?;
            let mut ledger = Ledger::open(&cli.ledger)?;
            let (cp, note) = fundledger::checkpoint::sign_checkpoint(&ledger, &key)?;
            ledger.record_checkpoint(cp.tree_size, &note, now_unix_ms())?;
            write_or_print(out, &note)?;
            if out.is_some() {
                println!(
                    "signed checkpoint of tree size {} root {}",
                    cp.tree_size,
                    hex::encode(cp.root_hash)
                );
            }
            Ok(0)
        }
        Command::Prove(prove) => {
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            match prove {
                ProveCommand::Inclusion { seq, size, json } => {
                    let p = fundledger::checkpoint::prove_inclusion(&ledger, *seq, *size)?;
                    if *json {
                        print_json(&p);
                    } else {
                        println!(
                            "inclusion proof: entry {} in tree of size {}",
                            p.leaf_index, p.tree_size
                        );
                        println!("origin    {}", p.origin);
                        println!("leaf_hash {}", p.leaf_hash);
                        println!("root_hash {}", p.root_hash);
                        for h in &p.proof {
                            println!("proof     {h}");
                        }
                    }
                }
                ProveCommand::Consistency { old, new, json } => {
                    let p = fundledger::checkpoint::prove_consistency(&ledger, *old, *new)?;
                    if *json {
                        print_json(&p);
                    } else {
                        println!(
                            "consistency proof: tree of size {} extends size {}",
                            p.new_size, p.old_size
                        );
                        println!("origin    {}", p.origin);
                        println!("old_root  {}", p.old_root);
                        println!("new_root  {}", p.new_root);
                        for h in &p.proof {
                            println!("proof     {h}");
                        }
                    }
                }
            }
            Ok(0)
        }
        Command::VerifyProof {
            proof,
            checkpoint,
            old_checkpoint,
            trusted_key,
            vkey,
            json,
        } => {
            let cp_text = read_text(checkpoint)?;
            let origin = fundledger::checkpoint::note_origin(&cp_text)?;
            let verifiers = fundledger::checkpoint::trusted_verifiers(&origin, trusted_key, vkey)?;
            let old = old_checkpoint.as_deref().map(read_text).transpose()?;
            let verdict = fundledger::checkpoint::verify_proof(
                &read_text(proof)?,
                &cp_text,
                old.as_deref(),
                &verifiers,
            )?;
            if *json {
                print_json(&verdict);
            } else {
                println!("verified: {}", verdict.detail);
            }
            Ok(0)
        }
        Command::Witness(WitnessCommand::Cosign {
            checkpoint,
            state,
            log_key,
            proof,
            name,
            out,
        }) => {
            let key_file = key_path(cli)?;
            let key = load_key(key_file)?;
            let log_keys = log_key
                .iter()
                .map(|p| keys::load_public_key(p))
                .collect::<Result<Vec<_>>>()?;
            let proof = proof.as_deref().map(read_text).transpose()?;
            let name = name.clone().unwrap_or_else(|| file_stem(key_file));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let cosigned =
                fundledger::checkpoint::witness_cosign(&fundledger::checkpoint::WitnessRequest {
                    checkpoint: &read_text(checkpoint)?,
                    log_keys: &log_keys,
                    proof: proof.as_deref(),
                    key: &key,
                    name: &name,
                    state_dir: state,
                    now_unix_s: now,
                })?;
            write_or_print(out, &cosigned)?;
            Ok(0)
        }
        Command::Witness(WitnessCommand::Record { checkpoint }) => {
            let mut ledger = Ledger::open(&cli.ledger)?;
            let cp = fundledger::checkpoint::record_checkpoint(
                &mut ledger,
                &read_text(checkpoint)?,
                now_unix_ms(),
            )?;
            println!(
                "recorded the checkpoint of tree size {} in the ledger's history",
                cp.tree_size
            );
            Ok(0)
        }
        Command::Event(ev) => event_command(cli, ev, None),
        Command::Propose(p) => {
            let out = p
                .out
                .as_deref()
                .ok_or_else(|| Error::input("propose needs --out FILE"))?;
            event_command(cli, &p.event, Some(out))
        }
        Command::Cosign { file } => {
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
                    &fundledger::event::Body::decode(
                        &proposal.content.kind,
                        &proposal.content.body,
                    )?
                    .event,
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
        Command::Submit { file, json } => {
            let proposal = fundledger::proposal::Proposal::parse(&read_text(file)?)?;
            let mut ledger = Ledger::open(&cli.ledger)?;
            let outcome = ledger.submit(&proposal.content, proposal.signatures.clone())?;
            report_outcome(&outcome, &proposal.content.kind, *json);
            Ok(0)
        }
        Command::Balances { fund, as_of, json } => {
            let as_of = optional_date(as_of)?;
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            let b = query::balances(&ledger, fund.as_deref(), as_of)?;
            if *json {
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
        Command::Position {
            fund,
            partner,
            as_of,
            json,
        } => {
            let as_of = optional_date(as_of)?;
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            let p = query::position(&ledger, fund, partner.as_deref(), as_of)?;
            if *json {
                print_json(&p);
            } else {
                print!("{}", query::render_position(&p));
            }
            Ok(0)
        }
        Command::Demo { out } => {
            let summary = fundledger::demo::run(out)?;
            print!("{summary}");
            Ok(0)
        }
        Command::Export(command) => export_command(cli, command),
        Command::Report { fund, out, as_of } => report_command(cli, fund, out, as_of),
        Command::VerifyExport {
            dir,
            trusted_key,
            json,
        } => verify_export_command(cli, dir, trusted_key.as_deref(), *json),
    }
}

fn event_command(cli: &Cli, ev: &EventCommand, propose: Option<&Path>) -> Result<u8> {
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

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
}

fn write_or_print(out: &Option<PathBuf>, text: &str) -> Result<()> {
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e)),
        None => {
            print!("{text}");
            Ok(())
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

/// Load a private key; an encrypted key's passphrase comes from
/// FUNDLEDGER_KEY_PASSPHRASE, or is asked on the terminal.
fn load_key(path: &Path) -> Result<ed25519_dalek::SigningKey> {
    keys::load_signing_key_with(path, &|| {
        if std::env::var_os(keys::PASSPHRASE_ENV).is_some() || !std::io::stdin().is_terminal() {
            return keys::passphrase_from_env();
        }
        rpassword::prompt_password(format!("passphrase for {}: ", path.display()))
            .map(zeroize::Zeroizing::new)
            .map_err(|e| Error::io("cannot read the passphrase", e))
    })
}

/// A new passphrase: from FUNDLEDGER_KEY_PASSPHRASE, or asked twice.
fn new_passphrase() -> Result<zeroize::Zeroizing<String>> {
    if std::env::var_os(keys::PASSPHRASE_ENV).is_some() || !std::io::stdin().is_terminal() {
        return keys::passphrase_from_env();
    }
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("new passphrase: ")
            .map_err(|e| Error::io("cannot read the passphrase", e))?,
    );
    let second = zeroize::Zeroizing::new(
        rpassword::prompt_password("repeat passphrase: ")
            .map_err(|e| Error::io("cannot read the passphrase", e))?,
    );
    if first != second {
        return Err(Error::key("the two passphrases differ"));
    }
    Ok(first)
}

fn key_path(cli: &Cli) -> Result<&Path> {
    cli.key.as_deref().ok_or_else(|| {
        Error::key("this command signs an entry and needs a private key")
            .with_hint("pass --key PATH or set FUNDLEDGER_KEY")
    })
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into())
}

/// Progress of a long pass over the ledger's entries, on stderr: shown
/// only when stderr is a terminal (and the output is not JSON), so piped
/// and scripted runs stay silent.
struct Progress {
    label: &'static str,
    /// What is done to each file of an export, after the entries are read.
    files: &'static str,
    enabled: bool,
    shown: bool,
    /// The longest line shown so far (a shorter one is padded over it).
    width: usize,
}

impl Progress {
    fn new(label: &'static str, json: bool) -> Progress {
        Progress {
            label,
            files: "writing",
            enabled: !json && std::io::stderr().is_terminal(),
            shown: false,
            width: 0,
        }
    }

    /// Name what is done to each file (`writing` unless told).
    fn files(self, files: &'static str) -> Progress {
        Progress { files, ..self }
    }

    fn update(&mut self, done: u64, total: u64) {
        let text = format!("{} {done}/{total} entries", self.label);
        self.show(text);
    }

    /// A stage of a pass over a fund's history (`fundledger::history::Progress`):
    /// `reading` the entries, then each file by name.
    fn stage(&mut self, stage: &str, done: u64, total: u64) {
        if stage == "reading" {
            self.update(done, total);
        } else {
            let text = format!("{} {stage}: {done}/{total} entries", self.files);
            self.show(text);
        }
    }

    fn show(&mut self, text: String) {
        if self.enabled {
            eprint!("\r{text:<width$}", width = self.width);
            let _ = std::io::stderr().flush();
            self.width = self.width.max(text.len());
            self.shown = true;
        }
    }

    /// End the progress line (before the command prints its result).
    fn finish(self) {
        if self.shown {
            eprintln!();
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("fundledger: error: cannot encode JSON: {e}"),
    }
}

/// Append one event signed by --key and report what happened; or, with
/// `propose`, write a proposal file for several signers instead.
fn record(cli: &Cli, propose: Option<&Path>, event: Event, rec: &Recording) -> Result<u8> {
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

fn key_command(cli: &Cli, command: &KeyCommand, propose: Option<&Path>) -> Result<u8> {
    match command {
        KeyCommand::Generate { .. } | KeyCommand::List { .. } if propose.is_some() => Err(
            Error::input("only commands that record an entry can be proposed"),
        ),
        KeyCommand::Rotate {
            old,
            new_public_key,
            name,
            reason,
            rec,
        } => {
            let key = keys::load_public_key(new_public_key)?;
            let name = name.clone().unwrap_or_else(|| file_stem(new_public_key));
            let old_key_id = {
                let ledger = Ledger::open_read_only(&cli.ledger)?;
                resolve_key_id(ledger.state(), old)?
            };
            use base64::Engine;
            record(
                cli,
                propose,
                Event::KeyRotate(KeyRotate {
                    old_key_id,
                    name,
                    public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
                    reason: reason.clone(),
                }),
                rec,
            )
        }
        KeyCommand::Generate { name, dir, encrypt } => {
            let passphrase = if *encrypt {
                Some(new_passphrase()?)
            } else {
                None
            };
            let (paths, public) =
                keys::generate_with(dir, name, passphrase.as_deref().map(|p| p.as_str()))?;
            println!(
                "wrote {} (private, mode 0600) and {}; key id {}",
                paths.private.display(),
                paths.public.display(),
                hex::encode(key_id(&public))
            );
            Ok(0)
        }
        KeyCommand::Enroll {
            public_key,
            role,
            partner,
            name,
            rec,
        } => {
            let key = keys::load_public_key(public_key)?;
            let name = name.clone().unwrap_or_else(|| file_stem(public_key));
            use base64::Engine;
            record(
                cli,
                propose,
                Event::KeyEnroll(KeyEnroll {
                    name,
                    public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
                    role: role.clone(),
                    partner: partner.clone(),
                }),
                rec,
            )
        }
        KeyCommand::Revoke {
            key_id,
            reason,
            rec,
        } => {
            let full = {
                let ledger = Ledger::open_read_only(&cli.ledger)?;
                resolve_key_id(ledger.state(), key_id)?
            };
            record(
                cli,
                propose,
                Event::KeyRevoke(KeyRevoke {
                    key_id: full,
                    reason: reason.clone(),
                }),
                rec,
            )
        }
        KeyCommand::List { json } => {
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            let keys: Vec<serde_json::Value> = ledger
                .state()
                .keys
                .values()
                .map(|k| {
                    serde_json::json!({
                        "key_id": hex::encode(k.key_id),
                        "name": k.name,
                        "role": k.role,
                        "partner": k.partner,
                        "status": if k.revoked_seq.is_some() { "revoked" } else { "active" },
                        "enrolled_seq": k.enrolled_seq,
                        "revoked_seq": k.revoked_seq,
                    })
                })
                .collect();
            if *json {
                print_json(&serde_json::json!({"format_version": 1, "keys": keys}));
            } else {
                let mut rows = vec![[
                    "key id", "name", "role", "partner", "status", "enrolled", "revoked",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()];
                for k in ledger.state().keys.values() {
                    rows.push(vec![
                        hex::encode(&k.key_id[..8]),
                        k.name.clone(),
                        k.role.clone(),
                        k.partner.clone().unwrap_or_else(|| "-".into()),
                        if k.revoked_seq.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                        .into(),
                        k.enrolled_seq.to_string(),
                        k.revoked_seq
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                print!("{}", query::render_table(&rows, 5));
            }
            Ok(0)
        }
    }
}

/// The full hex key id of the enrolled key whose id starts with `prefix`
/// (at least 8 hex digits, unambiguous).
fn resolve_key_id(state: &fundledger::state::State, prefix: &str) -> Result<String> {
    let prefix = prefix.to_ascii_lowercase();
    let matches: Vec<String> = state
        .keys
        .keys()
        .map(hex::encode)
        .filter(|k| k.starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] if prefix.len() >= 8 => Ok(one.clone()),
        [] => Err(
            Error::input(format!("no enrolled key id starts with {prefix:?}"))
                .with_hint("see `fundledger key list`"),
        ),
        _ => Err(Error::input(format!(
            "key id {prefix:?} is ambiguous or shorter than 8 hex digits"
        ))),
    }
}

fn format_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn log(cli: &Cli, from: u64, limit: Option<u64>, json: bool) -> Result<u8> {
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

fn show(
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

/// `export csv` and `export hledger`.
fn export_command(cli: &Cli, command: &cli::ExportCommand) -> Result<u8> {
    use fundledger::export;
    match command {
        cli::ExportCommand::Csv {
            fund,
            out,
            as_of,
            from,
            excel,
        } => {
            let key = load_key(cli.key.as_deref().ok_or_else(|| {
                Error::key("export csv signs its MANIFEST and needs a private key").with_hint(
                    "pass --key PATH (an enrolled administrator, recorder or auditor key)",
                )
            })?)?;
            let options = export::CsvOptions {
                as_of: optional_date(as_of)?,
                from: optional_date(from)?,
                excel: *excel,
            };
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            let mut progress = Progress::new("reading", false);
            let written = export::export_csv(&ledger, fund, options, &key, out, &mut |s, d, t| {
                progress.stage(s, d, t)
            })?;
            progress.finish();
            println!(
                "wrote {} CSV files and a signed MANIFEST to {} (ledger state: tree size {}, root {})",
                written.files.len(),
                written.dir.display(),
                written.state.tree_size,
                hex::encode(written.state.root_hash)
            );
            Ok(0)
        }
        cli::ExportCommand::Hledger { fund, out, as_of } => {
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            let mut progress = Progress::new("reading", false);
            let count = fundledger::hledger::write_journal(
                &ledger,
                fund,
                optional_date(as_of)?,
                out,
                &mut |s, d, t| progress.stage(s, d, t),
            )?;
            progress.finish();
            println!("wrote {} ({count} transactions)", out.display());
            Ok(0)
        }
    }
}

/// `report`: signed when --key is given.
fn report_command(cli: &Cli, fund: &str, out: &Path, as_of: &Option<String>) -> Result<u8> {
    let key = cli.key.as_deref().map(load_key).transpose()?;
    let ledger = Ledger::open_read_only(&cli.ledger)?;
    let mut progress = Progress::new("reading", false);
    let html = fundledger::report::write_report(
        &ledger,
        fund,
        optional_date(as_of)?,
        key.as_ref(),
        out,
        &mut |s, d, t| progress.stage(s, d, t),
    )?;
    progress.finish();
    println!(
        "wrote {} and {}{}",
        html.display(),
        out.join(fundledger::report::REPORT_MARKDOWN).display(),
        if key.is_some() {
            " with a signed MANIFEST"
        } else {
            ""
        }
    );
    Ok(0)
}

/// Whether --ledger (or FUNDLEDGER_LEDGER) was given, rather than defaulted.
fn ledger_given() -> bool {
    use clap::CommandFactory;
    Cli::command()
        .try_get_matches_from(std::env::args_os())
        .ok()
        .and_then(|m| m.value_source("ledger"))
        .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue)
}

/// `verify-export DIR`: exit 0 good, 1 mismatch, 2 could not run.
fn verify_export_command(
    cli: &Cli,
    dir: &Path,
    trusted_key: Option<&Path>,
    json: bool,
) -> Result<u8> {
    use fundledger::export;
    let trusted = trusted_key.map(keys::load_public_key).transpose()?;
    let ledger = if ledger_given() {
        Some(Ledger::open_read_only(&cli.ledger)?)
    } else {
        None
    };
    let mut progress = Progress::new("recomputing", json).files("comparing");
    let check = export::verify_export(
        dir,
        &export::TrustAnchors {
            ledger: ledger.as_ref(),
            trusted_key: trusted.as_ref(),
        },
        &mut |s, d, t| progress.stage(s, d, t),
    )?;
    progress.finish();
    let code = if check.is_good() { 0 } else { 1 };
    if json {
        let manifest = check.manifest.as_ref().map(|m| {
            serde_json::json!({
                "kind": m.kind.as_str(),
                "fund": m.fund,
                "as_of": m.as_of.map(|d| d.to_string()),
                "from": m.from.map(|d| d.to_string()),
                "excel": m.excel,
                "origin": m.origin,
                "tree_size": m.tree_size,
                "root_hash": hex::encode(m.root_hash),
                "head_hash": hex::encode(m.head_hash),
                "signer": hex::encode(m.signer),
            })
        });
        print_json(&serde_json::json!({
            "format_version": 1,
            "status": if code == 0 { "good" } else { "bad" },
            "manifest": manifest,
            "passed": check.passed,
            "findings": check
                .findings
                .iter()
                .map(|f| serde_json::json!({"file": f.file, "problem": f.problem}))
                .collect::<Vec<_>>(),
        }));
        return Ok(code);
    }
    if let Some(m) = &check.manifest {
        println!(
            "{}: {} export of fund {} (as of {}) from {} at tree size {}",
            dir.display(),
            m.kind.as_str(),
            m.fund,
            m.as_of
                .map(|d| d.to_string())
                .unwrap_or_else(|| "latest".into()),
            m.origin,
            m.tree_size
        );
    }
    for passed in &check.passed {
        println!("  ok        {passed}");
    }
    for f in &check.findings {
        println!("  MISMATCH  {}: {}", f.file, f.problem);
    }
    if check.is_good() {
        println!("good: the export is exactly what the MANIFEST and its signer say");
        Ok(0)
    } else {
        println!("BAD: {} problem(s)", check.findings.len());
        Ok(1)
    }
}
