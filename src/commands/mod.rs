//! The binary's commands: [`run`] dispatches each to a function of the
//! module that owns it, which calls the library and prints the result.
//! Shared here: reading and writing files, keys, progress and JSON output.

mod exports;
mod inspect;
mod key;
mod proofs;
mod record;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use fundledger::error::{Error, Result};
use fundledger::keys;

/// Run the parsed command; the exit code on success (1 when a check found
/// a problem).
pub fn run(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Init { origin, key_name } => record::init(cli, origin, key_name.as_deref()),
        Command::Log { from, limit, json } => inspect::log(cli, *from, *limit, *json),
        Command::Show {
            seq,
            json,
            signed_message,
            signature,
            signer,
        } => inspect::show(cli, *seq, *json, signed_message, signature, signer),
        Command::Verify {
            json,
            bundle,
            checkpoint,
            trusted_key,
        } => inspect::verify(
            cli,
            *json,
            bundle.as_deref(),
            checkpoint.as_deref(),
            trusted_key,
        ),
        Command::Restore {
            bundle,
            checkpoint,
            trusted_key,
            json,
        } => inspect::restore(cli, bundle, checkpoint.as_deref(), trusted_key, *json),
        Command::Checkpoint { out } => proofs::checkpoint(cli, out),
        Command::Prove(prove) => proofs::prove(cli, prove),
        Command::VerifyProof {
            proof,
            checkpoint,
            old_checkpoint,
            trusted_key,
            vkey,
            json,
        } => proofs::verify_proof(
            proof,
            checkpoint,
            old_checkpoint.as_deref(),
            trusted_key,
            vkey,
            *json,
        ),
        Command::Witness(command) => proofs::witness(cli, command),
        Command::Event(ev) => record::event_command(cli, ev, None),
        Command::Propose(p) => {
            let out = p
                .out
                .as_deref()
                .ok_or_else(|| Error::input("propose needs --out FILE"))?;
            record::event_command(cli, &p.event, Some(out))
        }
        Command::Cosign { file } => record::cosign(cli, file),
        Command::Submit { file, json } => record::submit(cli, file, *json),
        Command::Balances { fund, as_of, json } => {
            inspect::balances(cli, fund.as_deref(), as_of, *json)
        }
        Command::Position {
            fund,
            partner,
            as_of,
            json,
        } => inspect::position(cli, fund, partner.as_deref(), as_of, *json),
        Command::Demo { out } => {
            let summary = fundledger::demo::run(out)?;
            print!("{summary}");
            Ok(0)
        }
        Command::Export(command) => exports::export_command(cli, command),
        Command::Report { fund, out, as_of } => exports::report_command(cli, fund, out, as_of),
        Command::VerifyExport {
            dir,
            trusted_key,
            json,
        } => exports::verify_export_command(cli, dir, trusted_key.as_deref(), *json),
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
