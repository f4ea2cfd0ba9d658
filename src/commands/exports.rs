//! `export`, `report` and `verify-export`.

use std::path::Path;

use super::{load_key, print_json, Progress};
use crate::cli::{Cli, ExportCommand};
use fundledger::error::{Error, Result};
use fundledger::input::optional_date;
use fundledger::keys;
use fundledger::ledger::Ledger;

/// `export csv`, `export bundle` and `export hledger`.
pub(super) fn export_command(cli: &Cli, command: &ExportCommand) -> Result<u8> {
    use fundledger::export;
    match command {
        ExportCommand::Csv {
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
        ExportCommand::Bundle { out } => {
            let store = fundledger::store::Store::open_read_only(&cli.ledger)?;
            let to_stdout = out.as_os_str() == "-";
            let mut progress = Progress::new("writing", false);
            let mut update = |d, t| progress.update(d, t);
            let written = if to_stdout {
                let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
                fundledger::bundle::write(&store, &mut stdout, &mut update)?
            } else {
                fundledger::bundle::write_file(&store, out, &mut update)?
            };
            progress.finish();
            let summary = format!(
                "wrote the bundle of {} entries and {} checkpoints to {} ({} bytes, sha256 {})",
                written.entries,
                written.checkpoints,
                if to_stdout {
                    "standard output".to_string()
                } else {
                    out.display().to_string()
                },
                written.bytes,
                hex::encode(written.sha256)
            );
            // On stdout only when the bundle is not there.
            if to_stdout {
                eprintln!("{summary}");
            } else {
                println!("{summary}");
            }
            Ok(0)
        }
        ExportCommand::Hledger { fund, out, as_of } => {
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
pub(super) fn report_command(
    cli: &Cli,
    fund: &str,
    out: &Path,
    as_of: &Option<String>,
) -> Result<u8> {
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
pub(super) fn verify_export_command(
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
