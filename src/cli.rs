//! Command-line syntax (clap). Only the binary sees this module; each
//! command is a thin function in main.rs over the library.

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
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Show one entry; optionally write the bytes its signature covers.
    Show {
        seq: u64,
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
        #[arg(long)]
        json: bool,
        /// Also check that the ledger extends this signed checkpoint.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A public key (SPKI PEM) trusted to sign checkpoints, besides the
        /// ledger's own administrator and auditor keys.
        #[arg(long)]
        trusted_key: Vec<PathBuf>,
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
    Cosign { file: PathBuf },
    /// Append a proposal when its signatures meet the policy in force.
    Submit {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Trial balance: totals per account, summing to zero per currency.
    Balances {
        #[arg(long)]
        fund: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Partner positions and fund performance.
    Position {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        partner: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Build a realistic demo fund in DIR, verify it and summarise it.
    Demo {
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
        seq: u64,
        #[arg(long)]
        size: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Prove that the tree of size M extends the tree of size N.
    Consistency {
        #[arg(long)]
        old: u64,
        #[arg(long)]
        new: Option<u64>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Cosign CHECKPOINT if it is consistent with the last one this witness
    /// cosigned for its origin (needs no ledger).
    Cosign {
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
    Record { checkpoint: PathBuf },
}

/// Commands that record an entry (and key and policy management).
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Generate, enroll, revoke and list keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Record the SHA-256, size and name of an external document.
    Attest {
        #[arg(long)]
        file: PathBuf,
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
        #[arg(long)]
        fund: String,
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
        #[arg(long)]
        fund: String,
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
        #[arg(long)]
        fund: String,
        #[arg(long)]
        partner: String,
        /// The call number (see `position` or `log`).
        #[arg(long)]
        call: u64,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Invest in a startup (initial or follow-on).
    Invest {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        startup: String,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Mark a holding at fair value.
    Value {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        startup: String,
        #[arg(long)]
        fair_value: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Record proceeds from a sale or exit, releasing cost.
    Realize {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        startup: String,
        #[arg(long)]
        proceeds: String,
        /// Cost released from the holding.
        #[arg(long)]
        cost: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Distribute cash to partners, pro rata to paid-in capital.
    Distribute {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Pay a management fee (borne pro rata to commitments).
    Fee {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Pay a fund expense (borne pro rata to commitments).
    Expense {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Reverse an earlier entry with a new entry that negates it.
    Reverse {
        seq: u64,
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
        file: PathBuf,
        #[command(flatten)]
        rec: Recording,
    },
    /// Show the policy in force.
    Show {
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
        name: String,
        #[arg(long, default_value = "keys")]
        dir: PathBuf,
        /// Encrypt the private key with a passphrase (FUNDLEDGER_KEY_PASSPHRASE,
        /// or asked on the terminal).
        #[arg(long)]
        encrypt: bool,
    },
    /// Enroll a public key with a role.
    Enroll {
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
        key_id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// Replace key OLD (a key id prefix) by NEW.pub with the same role.
    Rotate {
        old: String,
        new_public_key: PathBuf,
        /// Name recorded for the new key (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "scheduled key rotation")]
        reason: String,
        #[command(flatten)]
        rec: Recording,
    },
    /// List enrolled keys.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FundCommand {
    /// Register a fund.
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// ISO 4217 base currency.
        #[arg(long)]
        currency: String,
        #[arg(long)]
        jurisdiction: String,
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
        #[arg(long)]
        id: String,
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
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        country: String,
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
    /// Write a fund's books as an hledger journal to FILE.
    Hledger {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        out: PathBuf,
        /// Only entries with an effective date on or before DATE (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<String>,
    },
}
