//! Command-line syntax (clap). Only the binary sees this module; each
//! command is a thin function in src/commands/ over the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// fundledger: a verifiable ledger for joint AI startup funds.
///
/// Every entry is hash-chained and Ed25519-signed; money is exact decimal
/// double-entry. Exit codes: 0 ok, 1 verification found a problem, 2 could
/// not run or refused the input (the ledger is then unchanged).
#[derive(Debug, Parser)]
#[command(name = "fundledger", version, max_term_width = 100)]
pub struct Cli {
    /// The ledger file.
    #[arg(
        long,
        global = true,
        env = "FUNDLEDGER_LEDGER",
        default_value = "fundledger.sqlite"
    )]
    pub ledger: PathBuf,

    /// The private key that signs (PKCS#8 PEM, mode 0600).
    #[arg(long, global = true, env = "FUNDLEDGER_KEY")]
    pub key: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new ledger whose genesis entry enrolls --key as administrator.
    Init {
        /// The ledger's unique name, like ledger.example.org/ae-ai-fund.
        #[arg(long)]
        origin: String,
        /// Name recorded for the founding key (default: the key file's stem).
        #[arg(long)]
        key_name: Option<String>,
    },
    /// List entries.
    Log {
        /// The first entry listed (a sequence number).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// List at most N entries.
        #[arg(long)]
        limit: Option<u64>,
        /// One JSON object per line (schema/QUERIES_JSON.md).
        #[arg(long)]
        json: bool,
    },
    /// Show one entry; optionally write the bytes its signature covers.
    Show {
        /// The entry's sequence number.
        seq: u64,
        /// Print the entry as JSON (schema/QUERIES_JSON.md).
        #[arg(long)]
        json: bool,
        /// Write the exact signed message to FILE (for openssl pkeyutl -verify -rawin).
        #[arg(long, requires = "signature")]
        signed_message: Option<PathBuf>,
        /// Write the raw 64-byte signature to FILE.
        #[arg(long, requires = "signed_message")]
        signature: Option<PathBuf>,
        /// Which signer's signature (a key id prefix); default the first.
        #[arg(long)]
        signer: Option<String>,
    },
    /// Verify every hash, link, signature and accounting rule.
    Verify {
        /// Print the report as JSON (schema/VERIFY_JSON.md).
        #[arg(long)]
        json: bool,
        /// Verify this audit bundle (schema/BUNDLE.md; `-` for stdin)
        /// instead of --ledger: no database needed. With --checkpoint, only
        /// --trusted-key keys may have signed it.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Also check that the ledger extends this signed checkpoint.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A public key (SPKI PEM) trusted to sign checkpoints, besides the
        /// ledger's own administrator and auditor keys.
        #[arg(long)]
        trusted_key: Vec<PathBuf>,
    },
    /// Make a new ledger at --ledger from an audit bundle, a replica that
    /// queries and exports can read; kept only if it verifies.
    Restore {
        /// The bundle (schema/BUNDLE.md), from `export bundle`; `-` for stdin.
        #[arg(long)]
        bundle: PathBuf,
        /// Also check that the bundle extends this signed checkpoint (needs
        /// --trusted-key).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A public key (SPKI PEM) trusted to sign --checkpoint.
        #[arg(long)]
        trusted_key: Vec<PathBuf>,
        /// Print verify's report as JSON (schema/VERIFY_JSON.md).
        #[arg(long)]
        json: bool,
    },
    /// Sign a checkpoint (C2SP) of the current tree with --key and record it.
    Checkpoint {
        /// Write the signed checkpoint to FILE instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print an inclusion or consistency proof (RFC 9162).
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof against signed checkpoints, offline (no ledger needed).
    VerifyProof {
        /// The proof (JSON from `prove ... --json`).
        #[arg(long)]
        proof: PathBuf,
        /// The signed checkpoint the proof leads to.
        #[arg(long)]
        checkpoint: PathBuf,
        /// For a consistency proof: the older signed checkpoint.
        #[arg(long)]
        old_checkpoint: Option<PathBuf>,
        /// A public key (SPKI PEM) trusted to sign checkpoints.
        #[arg(long)]
        trusted_key: Vec<PathBuf>,
        /// A trusted verifier key, name+hex+base64 (C2SP signed-note form).
        #[arg(long)]
        vkey: Vec<String>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Act as an independent witness, or record witnessed checkpoints.
    #[command(subcommand)]
    Witness(WitnessCommand),
    #[command(flatten)]
    Event(EventCommand),
    /// Prepare an entry for several signers: `propose <event and its options> --out FILE`.
    Propose(ProposeArgs),
    /// Add a signature with --key to a proposal file.
    Cosign {
        /// The proposal (JSON, schema/POLICY.md), signed in place.
        file: PathBuf,
    },
    /// Append a proposal when its signatures meet the policy in force.
    Submit {
        /// The proposal (JSON, schema/POLICY.md).
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Trial balance: totals per account, summing to zero per currency.
    Balances {
        /// Only this fund's accounts (default: every fund).
        #[arg(long)]
        fund: Option<String>,
        /// Only entries with an effective date on or before DATE (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<String>,
        /// Print the balances as JSON (schema/QUERIES_JSON.md).
        #[arg(long)]
        json: bool,
    },
    /// Partner positions and fund performance.
    Position {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// Only this partner's position.
        #[arg(long)]
        partner: Option<String>,
        /// Only entries with an effective date on or before DATE (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<String>,
        /// Print the position as JSON (schema/QUERIES_JSON.md).
        #[arg(long)]
        json: bool,
    },
    /// Build a realistic demo fund in DIR, verify it and summarise it.
    Demo {
        /// A new directory for the ledger, keys, exports and report.
        #[arg(long)]
        out: PathBuf,
    },
    /// Export a fund: CSV files with a signed MANIFEST, or an hledger journal.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Write the regulator's report (report.html and report.md) into DIR.
    ///
    /// With --key (an enrolled administrator, recorder or auditor key), DIR
    /// also gets a signed MANIFEST, so that verify-export can check it.
    Report {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
        /// Only entries with an effective date on or before DATE (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Check an export or report directory against its signed MANIFEST.
    ///
    /// Checks the signature (against the key enrolled in --ledger, or
    /// --trusted-key), every file's size and SHA-256, that no file is missing
    /// or extra, and with --ledger that recomputing at the recorded ledger
    /// state gives byte-identical files. Exit 0 good, 1 mismatch, 2 could
    /// not run.
    VerifyExport {
        /// The export or report directory (with its MANIFEST).
        dir: PathBuf,
        /// The public key (SPKI PEM) expected to have signed the MANIFEST.
        #[arg(long)]
        trusted_key: Option<PathBuf>,
        /// Print the outcome as JSON (schema/EXPORTS.md section 6).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that entry SEQ is in the tree of size N (default: all entries).
    Inclusion {
        /// The entry's sequence number.
        seq: u64,
        /// The tree size N the proof is for (default: every entry).
        #[arg(long)]
        size: Option<u64>,
        /// Print the proof as JSON (schema/PROOFS.md), for verify-proof.
        #[arg(long)]
        json: bool,
    },
    /// Prove that the tree of size M extends the tree of size N.
    Consistency {
        /// The older tree size N.
        #[arg(long)]
        old: u64,
        /// The newer tree size M (default: every entry).
        #[arg(long)]
        new: Option<u64>,
        /// Print the proof as JSON (schema/PROOFS.md), for verify-proof.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Cosign CHECKPOINT if it is consistent with the last one this witness
    /// cosigned for its origin (needs no ledger).
    Cosign {
        /// The log's signed checkpoint (C2SP note).
        checkpoint: PathBuf,
        /// The witness's state directory (last cosigned checkpoint per origin).
        #[arg(long)]
        state: PathBuf,
        /// The log's public key (SPKI PEM) that signs its checkpoints.
        #[arg(long, required = true)]
        log_key: Vec<PathBuf>,
        /// Consistency proof from the witness's last size (JSON).
        #[arg(long)]
        proof: Option<PathBuf>,
        /// The witness's key name, as enrolled in the ledger (default: key file stem).
        #[arg(long)]
        name: Option<String>,
        /// Write the cosigned checkpoint to FILE instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Record a (cosigned) checkpoint in the ledger's checkpoint history.
    Record {
        /// The signed checkpoint (C2SP note).
        checkpoint: PathBuf,
    },
}

/// Commands that record an entry (and key and policy management).
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Generate, enroll, revoke and list keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Record the SHA-256, size and name of an external document.
    Attest {
        /// The document (read, never stored: only its digest, size and name).
        #[arg(long)]
        file: PathBuf,
        /// What the document is.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Funds.
    #[command(subcommand)]
    Fund(FundCommand),
    /// Partners (limited partners).
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Startups (portfolio companies).
    #[command(subcommand)]
    Startup(StartupCommand),
    /// Record a partner's commitment (or, with --reduce, a reduction).
    Commit {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// Amount with its currency, like "25000000.00 USD".
        #[arg(long)]
        amount: String,
        /// Reduce the commitment instead of increasing it.
        #[arg(long)]
        reduce: bool,
        #[command(flatten)]
        rec: Recording,
    },
    /// Issue a capital call, split pro rata to commitments.
    Call {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// Amount with its currency, like "25000000.00 USD".
        #[arg(long)]
        amount: String,
        /// investment | management_fee | expense
        #[arg(long)]
        purpose: String,
        /// Payment due date (YYYY-MM-DD); --date is the notice date.
        #[arg(long)]
        due_date: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Record a partner's payment against a call.
    Contribute {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// The call number (see `position` or `log`).
        #[arg(long)]
        call: u64,
        /// Amount with its currency, like "25000000.00 USD".
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Invest in a startup (initial or follow-on).
    Invest {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// The startup's id.
        #[arg(long)]
        startup: String,
        /// Amount with its currency, like "25000000.00 USD".
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Mark a holding at fair value.
    Value {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// The startup's id.
        #[arg(long)]
        startup: String,
        /// The holding's fair value with its currency, like "12000000.00 USD".
        #[arg(long)]
        fair_value: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Record proceeds from a sale or exit, releasing cost.
    Realize {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// The startup's id.
        #[arg(long)]
        startup: String,
        /// Cash received, with its currency, like "30000000.00 USD".
        #[arg(long)]
        proceeds: String,
        /// Cost released from the holding, with its currency.
        #[arg(long)]
        cost: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Distribute cash to partners, pro rata to paid-in capital.
    Distribute {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// Amount with its currency, like "25000000.00 USD".
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Pay a management fee (borne pro rata to commitments).
    Fee {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// Amount with its currency, like "25000000.00 USD".
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Pay a fund expense (borne pro rata to commitments).
    Expense {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// Amount with its currency, like "25000000.00 USD".
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Reverse an earlier entry with a new entry that negates it.
    Reverse {
        /// The sequence number of the entry to negate.
        seq: u64,
        /// Why the entry is reversed (recorded with the reversal).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Show or set the signing policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Append every event of a JSON Lines file (schema/IMPORT.md), signed
    /// by --key. Every line is parsed and every event checked before the
    /// first is recorded: a bad line stops the import and records nothing.
    Import {
        /// The events, one JSON object per line (a regular file: it is read
        /// three times).
        file: PathBuf,
        /// Check every event as the import would (rules, signing policy
        /// for --key, idempotency keys) and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// Where to write the proposal (JSON, schema/POLICY.md).
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    #[command(subcommand)]
    pub event: EventCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Put the policy in FILE (JSON, schema/POLICY.md) in force.
    Set {
        /// The policy (JSON, schema/POLICY.md).
        file: PathBuf,
        #[command(flatten)]
        rec: Recording,
    },
    /// Show the policy in force.
    Show {
        /// Print the policy as JSON (schema/POLICY.md).
        #[arg(long)]
        json: bool,
    },
}

/// Options every recording command takes.
#[derive(Debug, Args)]
pub struct Recording {
    /// Effective date (YYYY-MM-DD), distinct from the recording time.
    #[arg(long)]
    pub date: Option<String>,
    /// A key that makes a retried command append nothing.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// A note kept with the entry.
    #[arg(long)]
    pub memo: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write DIR/NAME.key (PKCS#8 PEM, 0600) and DIR/NAME.pub (SPKI PEM).
    Generate {
        /// The key's name: letters, digits, '-', '_' or '.' (files NAME.key, NAME.pub).
        name: String,
        /// The directory the two files go into.
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
        /// Encrypt the private key with a passphrase (FUNDLEDGER_KEY_PASSPHRASE,
        /// or asked on the terminal).
        #[arg(long)]
        encrypt: bool,
    },
    /// Enroll a public key with a role.
    Enroll {
        /// The key's public half (SPKI PEM, NAME.pub).
        public_key: PathBuf,
        /// administrator | recorder | partner | auditor | witness
        #[arg(long)]
        role: String,
        /// The partner a partner key signs for.
        #[arg(long)]
        partner: Option<String>,
        /// Name recorded for the key (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        rec: Recording,
    },
    /// Revoke a key: it signs nothing after this entry.
    Revoke {
        /// The key's id, or a prefix of it that names one key (`key list`).
        key_id: String,
        /// Why the key is revoked (recorded with the revocation).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Replace key OLD (a key id prefix) by NEW.pub with the same role.
    Rotate {
        /// The key being replaced: its id, or a prefix that names one key.
        old: String,
        /// The new key's public half (SPKI PEM).
        new_public_key: PathBuf,
        /// Name recorded for the new key (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        /// Why the key is replaced (recorded with the rotation).
        #[arg(long, default_value = "scheduled key rotation")]
        reason: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// List enrolled keys.
    List {
        /// Print the keys as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FundCommand {
    /// Register a fund.
    Create {
        /// The fund's id, used by every later command (like ai-fund-1).
        #[arg(long)]
        id: String,
        /// The fund's legal name.
        #[arg(long)]
        name: String,
        /// ISO 4217 base currency.
        #[arg(long)]
        currency: String,
        /// Where the fund is established, like AE.
        #[arg(long)]
        jurisdiction: String,
        /// The fund's vintage year.
        #[arg(long)]
        vintage: u32,
        /// Annual management fee rate as a fraction, like 0.02.
        #[arg(long)]
        fee_rate: String,
        /// committed | paid_in | invested
        #[arg(long, default_value = "committed")]
        fee_basis: String,
        #[command(flatten)]
        rec: Recording,
    },
}

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register a partner.
    Add {
        /// The partner's id, used by every later command.
        #[arg(long)]
        id: String,
        /// The partner's legal name.
        #[arg(long)]
        name: String,
        /// government | sovereign_fund | development_bank | private | other
        #[arg(long = "type")]
        partner_type: String,
        /// ISO 3166-1 alpha-2.
        #[arg(long)]
        country: String,
        /// ISO 17442 legal entity identifier.
        #[arg(long)]
        lei: Option<String>,
        #[command(flatten)]
        rec: Recording,
    },
}

#[derive(Debug, Subcommand)]
pub enum StartupCommand {
    /// Register a startup.
    Add {
        /// The startup's id, used by every later command.
        #[arg(long)]
        id: String,
        /// The startup's legal name.
        #[arg(long)]
        name: String,
        /// ISO 3166-1 alpha-2.
        #[arg(long)]
        country: String,
        /// The startup's sector, like "foundation models".
        #[arg(long)]
        sector: String,
        #[command(flatten)]
        rec: Recording,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write a fund's CSV files and a MANIFEST signed with --key into DIR
    /// (schema/EXPORTS.md).
    Csv {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
        /// Only entries with an effective date on or before DATE (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<String>,
        /// Start of the period (YYYY-MM-DD): row listings begin here and
        /// capital accounts open with the balance of the day before.
        #[arg(long)]
        from: Option<String>,
        /// Excel flavour: a UTF-8 byte-order mark and CRLF line ends.
        #[arg(long)]
        excel: bool,
    },
    /// Write the whole ledger as an audit bundle (schema/BUNDLE.md): every
    /// record and the checkpoint history, verifiable with no database.
    Bundle {
        /// The bundle file to write (never replaced; `-` for stdout).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a fund's books as an hledger journal to FILE.
    Hledger {
        /// The fund's id.
        #[arg(long)]
        fund: String,
        /// The journal file to write (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
        /// Only entries with an effective date on or before DATE (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command and every argument says what it is in `--help`.
    #[test]
    fn every_command_and_argument_has_help() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        let mut stack = vec![(String::from("fundledger"), cli)];
        while let Some((path, cmd)) = stack.pop() {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
