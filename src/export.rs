//! CSV exports for treasuries, their signed MANIFEST, and `verify-export`.
//!
//! An export is a directory of CSV files (schema/EXPORTS.md, one table per
//! file, every column typed and documented) and a `MANIFEST`: a C2SP signed
//! note naming each file's size and SHA-256 and the ledger state the files
//! were computed from (tree size, Merkle root, head hash), signed by an
//! enrolled key. The files are a pure function of (the ledger's first
//! `tree_size` entries, fund, as-of, from, excel): no timestamps, no
//! randomness, and Ed25519 signatures are deterministic, so the same state
//! and options always give byte-identical directories, and `verify-export`
//! can recompute an export and compare bytes.
//!
//! CSV is written by the `csv` crate with every setting explicit (comma,
//! `"` quotes doubled, quoting only where needed, `\n` or, with `excel`,
//! `\r\n`). Text cells are neutralised against spreadsheet formula
//! injection ([`neutralise`]); numeric cells never are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::entry::{key_id, KeyId};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, Side};
use crate::history::{
    balance, format_timestamp_ms, money_group, History, LedgerState, Progress, Scope, MONEY_GROUPS,
    PROGRESS_EVERY,
};
use crate::ledger::Ledger;
use crate::query::{ratio, RATIO_PLACES};
use crate::state::{parse_date, Account};

/// The name of the signed manifest in every export directory.
pub const MANIFEST_NAME: &str = "MANIFEST";
/// First line of a manifest body: names the format and its version, and
/// (having a space) can never be read as a checkpoint's origin line.
pub const MANIFEST_HEADER: &str = "fundledger export manifest v1";
/// Roles whose keys may sign an export (an export is not an entry, so the
/// partner and witness roles, which sign for others, may not).
pub const EXPORT_SIGNER_ROLES: &[&str] = &["administrator", "recorder", "auditor"];
/// Most files a manifest may list: an export writes ten, a report two.
pub const MANIFEST_FILES_MAX: usize = 64;
/// Largest manifest read, in bytes (64 file lines of ~120 bytes, with room).
pub const MANIFEST_LEN_MAX: u64 = 64 * 1024;
/// Byte-order mark written first in each file by `--excel`.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

// ---------------------------------------------------------------------------
// Column types and tables: the single source of the CSV schema.
// ---------------------------------------------------------------------------

/// What a column holds. Decides how it is written and whether it is
/// neutralised against formula injection (numeric types never are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A whole number, ASCII digits (`0`, `17`).
    Integer,
    /// An exact amount in the currency of the row: optional `-`, digits,
    /// `.` and exactly the currency's minor-unit digits (`-1250.50`).
    Amount,
    /// A decimal fraction with 4 places (`0.4241`), rounded half-even.
    Ratio,
    /// An annual rate as a decimal fraction with 6 places (`0.064972`).
    Rate,
    /// A decimal number exactly as recorded in the ledger (`0.02`).
    Decimal,
    /// An ISO 8601 calendar date, `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 UTC time with milliseconds, `2022-01-03T09:00:00.001Z`.
    Timestamp,
    /// `true` or `false`.
    Boolean,
    /// An identifier from the ledger (a-z, 0-9, `-`, `_`), always text.
    Identifier,
    /// A code from a standard list (ISO 4217, ISO 3166-1 alpha-2, ISO 17442).
    Code,
    /// Lower-case hex of a SHA-256 hash, 64 digits.
    Hash,
    /// One of a fixed set of words, listed in the column's meaning.
    Enum,
    /// Free text from the ledger (names, memos, reasons).
    Text,
}

impl ColumnType {
    /// The type's name in schema/EXPORTS.md.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Amount => "amount",
            ColumnType::Ratio => "ratio",
            ColumnType::Rate => "rate",
            ColumnType::Decimal => "decimal",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Boolean => "boolean",
            ColumnType::Identifier => "identifier",
            ColumnType::Code => "code",
            ColumnType::Hash => "hash",
            ColumnType::Enum => "enum",
            ColumnType::Text => "text",
        }
    }

    /// Numeric columns are written as numbers and never neutralised.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnType::Integer
                | ColumnType::Amount
                | ColumnType::Ratio
                | ColumnType::Rate
                | ColumnType::Decimal
        )
    }
}

/// One documented column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub column_type: ColumnType,
    pub unit: &'static str,
    pub meaning: &'static str,
}

/// One documented file.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub file: &'static str,
    pub rows: &'static str,
    pub columns: &'static [Column],
}

macro_rules! col {
    ($name:expr, $ty:ident, $unit:expr, $meaning:expr) => {
        Column {
            name: $name,
            column_type: ColumnType::$ty,
            unit: $unit,
            meaning: $meaning,
        }
    };
}

const CUR: &str = "currency";
const NONE: &str = "-";
const FRACTION: &str = "fraction";
const PER_YEAR: &str = "fraction per year";

pub const JOURNAL: Table = Table {
    file: "journal.csv",
    rows: "one row per posting of each entry of the fund in scope and in the period, in seq order, then in signed posting order",
    columns: &[
        col!("seq", Integer, NONE, "sequence number of the ledger entry (0-based, recording order)"),
        col!("line", Integer, NONE, "position of the posting within its entry, from 1"),
        col!("entry_hash", Hash, NONE, "SHA-256 entry hash that the entry's signatures cover"),
        col!("effective_date", Date, NONE, "the entry's effective date"),
        col!("recorded_at", Timestamp, NONE, "when the entry was recorded (signed with it)"),
        col!("kind", Enum, NONE, "entry kind: commitment, commitment.reduce, call, contribution, investment, valuation, realization, distribution, fee, expense, reversal"),
        col!("fund", Identifier, NONE, "fund id"),
        col!("account", Enum, NONE, "account of the chart (schema/ACCOUNTS.md)"),
        col!("partner", Identifier, NONE, "partner id for accounts kept per partner, else empty"),
        col!("startup", Identifier, NONE, "startup id for accounts kept per startup, else empty"),
        col!("debit", Amount, CUR, "amount debited, else empty"),
        col!("credit", Amount, CUR, "amount credited, else empty"),
        col!("currency", Code, "ISO 4217", "currency of the amount"),
        col!("memo", Text, NONE, "the entry's memo, or a reversal's reason; empty if none"),
        col!("reverses_seq", Integer, NONE, "for a reversal: the seq of the entry it negates, else empty"),
    ],
};

pub const PARTNERS: Table = Table {
    file: "partners.csv",
    rows: "one row per partner with a commitment account in the fund, by partner id",
    columns: &[
        col!("partner", Identifier, NONE, "partner id"),
        col!("legal_name", Text, NONE, "legal name as registered"),
        col!(
            "partner_type",
            Enum,
            NONE,
            "government, sovereign_fund, development_bank, private or other"
        ),
        col!(
            "money_group",
            Enum,
            NONE,
            "public (government, sovereign_fund, development_bank), private or other"
        ),
        col!(
            "country",
            Code,
            "ISO 3166-1 alpha-2",
            "country of the partner"
        ),
        col!(
            "lei",
            Code,
            "ISO 17442",
            "legal entity identifier, empty if none was registered"
        ),
        col!(
            "registered_on",
            Date,
            NONE,
            "effective date of the partner's registration"
        ),
        col!(
            "registered_seq",
            Integer,
            NONE,
            "seq of the registering entry"
        ),
    ],
};

pub const COMMITMENTS: Table = Table {
    file: "commitments.csv",
    rows: "one row per commitment, commitment.reduce or reversal of one, in scope and in the period, in seq order",
    columns: &[
        col!("seq", Integer, NONE, "seq of the entry"),
        col!("kind", Enum, NONE, "commitment, commitment.reduce or reversal"),
        col!("effective_date", Date, NONE, "the entry's effective date"),
        col!("partner", Identifier, NONE, "partner id"),
        col!("change", Amount, CUR, "change of the partner's commitment: positive for a commitment, negative for a reduction; a reversal negates its original"),
        col!("committed_after", Amount, CUR, "the partner's commitment after this entry (running sum in seq order over the entries in scope)"),
        col!("currency", Code, "ISO 4217", "fund currency"),
        col!("reverses_seq", Integer, NONE, "for a reversal: the seq it negates, else empty"),
        col!("reversed_by_seq", Integer, NONE, "seq of the reversal (in scope) that negates this entry, else empty"),
        col!("memo", Text, NONE, "memo, or the reversal's reason"),
    ],
};

pub const CAPITAL_CALLS: Table = Table {
    file: "capital_calls.csv",
    rows: "one row per partner per capital call (ILPA capital call notice fields), calls whose notice date is in scope and in the period, by call number then partner id",
    columns: &[
        col!("call_number", Integer, NONE, "the fund's call number (1, 2, ... in recording order; a reversed call keeps its number)"),
        col!("call_seq", Integer, NONE, "seq of the call entry"),
        col!("notice_date", Date, NONE, "notice date (the call's effective date)"),
        col!("due_date", Date, NONE, "payment due date"),
        col!("purpose", Enum, NONE, "investment, management_fee or expense"),
        col!("partner", Identifier, NONE, "partner id"),
        col!("currency", Code, "ISO 4217", "fund currency"),
        col!("call_total", Amount, CUR, "the whole call, all partners"),
        col!("commitment_at_call", Amount, CUR, "the partner's commitment when the call was booked"),
        col!("amount_called", Amount, CUR, "the partner's share of this call"),
        col!("cumulative_called", Amount, CUR, "all capital called from the partner up to and including this call, as booked at the notice"),
        col!("unfunded_after_call", Amount, CUR, "commitment not yet called after this call, as booked at the notice (= commitment_at_call - cumulative_called)"),
        col!("paid", Amount, CUR, "contributions on this call by this partner in scope, net of reversed contributions"),
        col!("outstanding", Amount, CUR, "amount_called - paid; 0 for a reversed call"),
        col!("last_payment_date", Date, NONE, "date of the latest contribution on this call that is not reversed, else empty"),
        col!("status", Enum, NONE, "paid, partially_paid, unpaid or reversed"),
        col!("overdue", Boolean, NONE, "true when something is outstanding after the due date (as of the export's as-of date)"),
        col!("days_past_due", Integer, "days", "days after the due date that the call was last paid (paid) or is still open (as of the as-of date); 0 when on time; empty for a reversed call"),
        col!("reversed_by_seq", Integer, NONE, "seq of the reversal of the call, else empty"),
        col!("memo", Text, NONE, "the call's memo"),
    ],
};

pub const CONTRIBUTIONS: Table = Table {
    file: "contributions.csv",
    rows: "one row per contribution or reversal of one, in scope and in the period, in seq order",
    columns: &[
        col!("seq", Integer, NONE, "seq of the entry"),
        col!("kind", Enum, NONE, "contribution or reversal"),
        col!(
            "effective_date",
            Date,
            NONE,
            "the date the payment was received (or reversed)"
        ),
        col!("partner", Identifier, NONE, "partner id"),
        col!("call_number", Integer, NONE, "the call paid"),
        col!(
            "amount",
            Amount,
            CUR,
            "amount paid; negative for a reversal"
        ),
        col!("currency", Code, "ISO 4217", "fund currency"),
        col!(
            "reverses_seq",
            Integer,
            NONE,
            "for a reversal: the seq it negates, else empty"
        ),
        col!(
            "reversed_by_seq",
            Integer,
            NONE,
            "seq of the reversal (in scope) that negates this entry, else empty"
        ),
        col!("memo", Text, NONE, "memo, or the reversal's reason"),
    ],
};

pub const DISTRIBUTIONS: Table = Table {
    file: "distributions.csv",
    rows: "one row per partner per distribution or reversal of one, in scope and in the period, in seq order then partner id",
    columns: &[
        col!("seq", Integer, NONE, "seq of the entry"),
        col!("kind", Enum, NONE, "distribution or reversal"),
        col!("effective_date", Date, NONE, "payment date"),
        col!("partner", Identifier, NONE, "partner id"),
        col!("currency", Code, "ISO 4217", "fund currency"),
        col!("distribution_total", Amount, CUR, "the whole distribution, all partners; negative for a reversal"),
        col!("amount", Amount, CUR, "the partner's share (pro rata to paid-in capital); negative for a reversal"),
        col!("cumulative_distributed", Amount, CUR, "all distributions to the partner after this entry (running sum in seq order over the entries in scope)"),
        col!("reverses_seq", Integer, NONE, "for a reversal: the seq it negates, else empty"),
        col!("reversed_by_seq", Integer, NONE, "seq of the reversal (in scope) that negates this entry, else empty"),
        col!("memo", Text, NONE, "memo, or the reversal's reason"),
    ],
};

pub const CAPITAL_ACCOUNTS: Table = Table {
    file: "capital_accounts.csv",
    rows: "one row per partner with a commitment account in the fund, by partner id: the capital account statement for the period",
    columns: &[
        col!("partner", Identifier, NONE, "partner id"),
        col!("legal_name", Text, NONE, "legal name"),
        col!("partner_type", Enum, NONE, "partner type"),
        col!("currency", Code, "ISO 4217", "fund currency"),
        col!("period_start", Date, NONE, "first day of the period: --from, else the fund's creation date"),
        col!("period_end", Date, NONE, "last day of the period: --as-of, else the latest effective date of the fund"),
        col!("opening_balance", Amount, CUR, "capital account (NAV) at the start of the period: 0 at fund start, else as of the day before period_start"),
        col!("contributions", Amount, CUR, "paid-in capital received in the period"),
        col!("distributions", Amount, CUR, "distributions paid in the period (reduce the account)"),
        col!("management_fees", Amount, CUR, "management fees borne in the period (reduce the account)"),
        col!("fund_expenses", Amount, CUR, "fund expenses borne in the period (reduce the account)"),
        col!("realized_gain", Amount, CUR, "share of realized gains in the period; negative for a loss"),
        col!("unrealized_gain", Amount, CUR, "share of the change in unrealized gains in the period; negative for a loss"),
        col!("closing_balance", Amount, CUR, "NAV at period_end = opening_balance + contributions - distributions - management_fees - fund_expenses + realized_gain + unrealized_gain"),
        col!("commitment", Amount, CUR, "commitment at period_end"),
        col!("called", Amount, CUR, "capital called to date"),
        col!("paid_in", Amount, CUR, "capital paid in to date"),
        col!("unfunded", Amount, CUR, "commitment - called"),
        col!("outstanding", Amount, CUR, "called - paid_in"),
        col!("distributed_to_date", Amount, CUR, "distributions to date"),
        col!("nav_share", Ratio, FRACTION, "closing_balance / fund NAV; empty if the fund NAV is 0"),
        col!("dpi", Ratio, FRACTION, "distributed_to_date / paid_in; empty if paid_in is 0"),
        col!("rvpi", Ratio, FRACTION, "closing_balance / paid_in; empty if paid_in is 0"),
        col!("tvpi", Ratio, FRACTION, "(distributed_to_date + closing_balance) / paid_in; empty if paid_in is 0"),
        col!("irr", Rate, PER_YEAR, "XIRR (actual/365) of contributions, distributions and the closing NAV at period_end; empty when none exists"),
    ],
};

pub const HOLDINGS: Table = Table {
    file: "holdings.csv",
    rows: "one row per startup the fund invested in (in scope), by startup id",
    columns: &[
        col!("startup", Identifier, NONE, "startup id"),
        col!("name", Text, NONE, "startup name"),
        col!("country", Code, "ISO 3166-1 alpha-2", "startup's country"),
        col!("sector", Text, NONE, "sector"),
        col!("currency", Code, "ISO 4217", "fund currency"),
        col!("first_investment_date", Date, NONE, "date of the first investment that is not reversed, else empty"),
        col!("invested", Amount, CUR, "total invested at cost, net of reversals"),
        col!("cost_released", Amount, CUR, "cost released by realizations (sales, exits, write-offs)"),
        col!("cost", Amount, CUR, "cost still held = invested - cost_released"),
        col!("fair_value_adjustment", Amount, CUR, "fair value minus cost of what is held"),
        col!("fair_value", Amount, CUR, "fair value of what is held = cost + fair_value_adjustment"),
        col!("realized_proceeds", Amount, CUR, "proceeds received from realizations"),
        col!("realized_gain", Amount, CUR, "realized_proceeds - cost_released; negative for a loss"),
        col!("unrealized_gain", Amount, CUR, "equal to fair_value_adjustment"),
        col!("total_value", Amount, CUR, "fair_value + realized_proceeds"),
        col!("multiple", Ratio, FRACTION, "total_value / invested (gross MOIC); empty if invested is 0"),
        col!("last_valuation_date", Date, NONE, "date of the latest valuation that is not reversed, else empty"),
        col!("status", Enum, NONE, "held (cost > 0), exited (all cost released, proceeds > 0), written_off (all cost released, no proceeds) or reversed (every investment reversed)"),
    ],
};

const fn group_columns() -> [Column; 18] {
    [
        col!(
            "public_committed",
            Amount,
            CUR,
            "commitments of public partners (government, sovereign_fund, development_bank)"
        ),
        col!(
            "public_committed_share",
            Ratio,
            FRACTION,
            "public_committed / committed"
        ),
        col!(
            "public_paid_in",
            Amount,
            CUR,
            "paid-in capital of public partners"
        ),
        col!(
            "public_paid_in_share",
            Ratio,
            FRACTION,
            "public_paid_in / paid_in"
        ),
        col!(
            "public_distributed",
            Amount,
            CUR,
            "distributions to public partners"
        ),
        col!(
            "public_distributed_share",
            Ratio,
            FRACTION,
            "public_distributed / distributed"
        ),
        col!(
            "private_committed",
            Amount,
            CUR,
            "commitments of private partners"
        ),
        col!(
            "private_committed_share",
            Ratio,
            FRACTION,
            "private_committed / committed"
        ),
        col!(
            "private_paid_in",
            Amount,
            CUR,
            "paid-in capital of private partners"
        ),
        col!(
            "private_paid_in_share",
            Ratio,
            FRACTION,
            "private_paid_in / paid_in"
        ),
        col!(
            "private_distributed",
            Amount,
            CUR,
            "distributions to private partners"
        ),
        col!(
            "private_distributed_share",
            Ratio,
            FRACTION,
            "private_distributed / distributed"
        ),
        col!(
            "other_committed",
            Amount,
            CUR,
            "commitments of partners of type other"
        ),
        col!(
            "other_committed_share",
            Ratio,
            FRACTION,
            "other_committed / committed"
        ),
        col!(
            "other_paid_in",
            Amount,
            CUR,
            "paid-in capital of partners of type other"
        ),
        col!(
            "other_paid_in_share",
            Ratio,
            FRACTION,
            "other_paid_in / paid_in"
        ),
        col!(
            "other_distributed",
            Amount,
            CUR,
            "distributions to partners of type other"
        ),
        col!(
            "other_distributed_share",
            Ratio,
            FRACTION,
            "other_distributed / distributed"
        ),
    ]
}

const SUMMARY_COLUMNS: [Column; 52] = {
    let head = [
        col!("fund", Identifier, NONE, "fund id"),
        col!("name", Text, NONE, "fund name"),
        col!("currency", Code, "ISO 4217", "base currency"),
        col!("jurisdiction", Text, NONE, "jurisdiction as registered"),
        col!("vintage", Integer, "year", "vintage year"),
        col!(
            "management_fee_rate",
            Decimal,
            PER_YEAR,
            "management fee rate as registered (a decimal fraction, as signed: 0.02 is 2 % a year)"
        ),
        col!(
            "management_fee_basis",
            Enum,
            NONE,
            "committed, paid_in or invested"
        ),
        col!(
            "period_start",
            Date,
            NONE,
            "--from, else the fund's creation date"
        ),
        col!(
            "as_of",
            Date,
            NONE,
            "--as-of, else the latest effective date of the fund"
        ),
        col!("origin", Text, NONE, "the ledger's origin"),
        col!(
            "tree_size",
            Integer,
            "entries",
            "entries of the ledger the export describes (seq 0 to tree_size - 1)"
        ),
        col!(
            "root_hash",
            Hash,
            NONE,
            "RFC 9162 Merkle root over those entries (hex; the MANIFEST gives it in base64)"
        ),
        col!("head_hash", Hash, NONE, "entry hash of entry tree_size - 1"),
        col!(
            "partners",
            Integer,
            "count",
            "partners with a commitment account"
        ),
        col!(
            "holdings",
            Integer,
            "count",
            "startups with cost still held"
        ),
        col!("committed", Amount, CUR, "total commitments"),
        col!("called", Amount, CUR, "capital called"),
        col!("paid_in", Amount, CUR, "capital paid in"),
        col!("unfunded", Amount, CUR, "committed - called"),
        col!("outstanding", Amount, CUR, "called - paid_in"),
        col!("distributed", Amount, CUR, "distributions to partners"),
        col!(
            "nav",
            Amount,
            CUR,
            "net asset value: the sum of the partners' capital accounts"
        ),
        col!(
            "nav_from_assets",
            Amount,
            CUR,
            "cash + investments at cost + fair value adjustments (equals nav)"
        ),
        col!("cash", Amount, CUR, "cash"),
        col!("investments_at_cost", Amount, CUR, "cost of the holdings"),
        col!(
            "fair_value_adjustment",
            Amount,
            CUR,
            "fair value minus cost of the holdings"
        ),
        col!("management_fees", Amount, CUR, "management fees to date"),
        col!("fund_expenses", Amount, CUR, "fund expenses to date"),
        col!(
            "realized_gain",
            Amount,
            CUR,
            "realized gains to date; negative for a loss"
        ),
        col!(
            "unrealized_gain",
            Amount,
            CUR,
            "unrealized gains; negative for a loss"
        ),
        col!(
            "dpi",
            Ratio,
            FRACTION,
            "distributed / paid_in; empty if paid_in is 0"
        ),
        col!(
            "rvpi",
            Ratio,
            FRACTION,
            "nav / paid_in; empty if paid_in is 0"
        ),
        col!(
            "tvpi",
            Ratio,
            FRACTION,
            "(distributed + nav) / paid_in; empty if paid_in is 0"
        ),
        col!(
            "irr",
            Rate,
            PER_YEAR,
            "XIRR (actual/365) of all partners' flows and the NAV at as_of; empty when none exists"
        ),
    ];
    let groups = group_columns();
    let mut out = [head[0]; 52];
    let mut i = 0;
    while i < head.len() {
        out[i] = head[i];
        i += 1;
    }
    let mut j = 0;
    while j < groups.len() {
        out[head.len() + j] = groups[j];
        j += 1;
    }
    out
};

pub const FUND_SUMMARY: Table = Table {
    file: "fund_summary.csv",
    rows: "exactly one row: the fund as of the as-of date",
    columns: &SUMMARY_COLUMNS,
};

/// Every file of a CSV export, in file-name order.
pub const TABLES: &[Table] = &[
    CAPITAL_ACCOUNTS,
    CAPITAL_CALLS,
    COMMITMENTS,
    CONTRIBUTIONS,
    DISTRIBUTIONS,
    FUND_SUMMARY,
    HOLDINGS,
    JOURNAL,
    PARTNERS,
];

/// The per-file column tables of schema/EXPORTS.md, generated from
/// [`TABLES`] (a test keeps the document and the code in step).
pub fn schema_markdown() -> String {
    let mut out = String::new();
    for t in TABLES {
        out.push_str(&format!("### {}\n\nRows: {}.\n\n", t.file, t.rows));
        out.push_str("| column | type | unit | meaning |\n| --- | --- | --- | --- |\n");
        for c in t.columns {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.name,
                c.column_type.name(),
                c.unit,
                c.meaning
            ));
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------
// Writing CSV.
// ---------------------------------------------------------------------------

/// Characters that make a spreadsheet read a cell as a formula (OWASP "CSV
/// Injection"), plus the quote itself so that the rule can be undone.
pub const FORMULA_TRIGGERS: &[char] = &['=', '+', '-', '@', '\t', '\r', '\''];

/// Neutralise a text cell: prefix `'` when it starts with one of
/// [`FORMULA_TRIGGERS`]. Undo on import by removing one leading `'`.
pub fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some(c) if FORMULA_TRIGGERS.contains(&c) => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// Where the files of an export go, one after another: each file is
/// started, written in pieces and finished before the next starts, so that
/// no file need be held whole in memory.
pub trait FileSink {
    /// Start the file `name`; the bytes written next belong to it.
    fn start(&mut self, name: &str) -> Result<()>;
    /// More bytes of the current file.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// The current file is complete.
    fn finish(&mut self) -> Result<()>;
}

/// Write one whole file to `sink`.
pub fn write_file(sink: &mut dyn FileSink, name: &str, bytes: &[u8]) -> Result<()> {
    sink.start(name)?;
    sink.write(bytes)?;
    sink.finish()
}

/// The file a sink is at, for a write: one must have been started.
fn started<T>(current: Option<T>) -> Result<T> {
    current.ok_or_else(|| Error::format("bytes written before a file was started"))
}

/// The file a sink is at, for its finish.
fn finished<T>(current: Option<T>) -> Result<T> {
    current.ok_or_else(|| Error::format("a file was finished before it was started"))
}

/// Writes each file into a directory, computing its size and SHA-256 as
/// the bytes pass (what the MANIFEST lists).
struct DirSink {
    dir: PathBuf,
    current: Option<Writing>,
    files: Vec<ManifestFile>,
}

/// The file a [`DirSink`] is writing.
struct Writing {
    listed: ManifestFile,
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
}

impl DirSink {
    fn new(dir: &Path) -> DirSink {
        DirSink {
            dir: dir.to_path_buf(),
            current: None,
            files: Vec::new(),
        }
    }
}

impl FileSink for DirSink {
    fn start(&mut self, name: &str) -> Result<()> {
        if !is_valid_file_name(name) {
            return Err(Error::format(format!(
                "{name:?} is not a valid export file name"
            )));
        }
        let path = self.dir.join(name);
        let file = std::fs::File::create_new(&path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        self.current = Some(Writing {
            listed: ManifestFile {
                name: name.to_string(),
                size: 0,
                sha256: [0; 32],
            },
            path,
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            hasher: Sha256::new(),
        });
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let w = started(self.current.as_mut())?;
        w.file
            .write_all(bytes)
            .map_err(|e| Error::io(format!("cannot write {}", w.path.display()), e))?;
        w.hasher.update(bytes);
        w.listed.size += bytes.len() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        use std::io::Write;
        let mut w = finished(self.current.take())?;
        w.file
            .flush()
            .map_err(|e| Error::io(format!("cannot write {}", w.path.display()), e))?;
        w.listed.sha256 = w.hasher.finalize().into();
        self.files.push(w.listed);
        Ok(())
    }
}

/// Compares each file, as it is recomputed, with the file of that name in
/// an export directory (verify-export), holding neither whole.
struct CompareSink {
    dir: PathBuf,
    /// The files on disk worth comparing (size and SHA-256 as listed).
    intact: BTreeSet<String>,
    current: Option<Comparison>,
    /// Every file recomputed, and how it compared.
    done: Vec<(String, Compared)>,
}

/// How a recomputed file compared with the file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Compared {
    Same,
    /// Where they first differ: `byte N (line L)`.
    Differs(String),
    /// Not on disk intact, so not compared.
    Skipped,
}

struct Comparison {
    name: String,
    path: PathBuf,
    on_disk: Option<std::io::BufReader<std::fs::File>>,
    /// Bytes compared so far, and the newlines among them.
    offset: u64,
    lines: u64,
    differs: Option<String>,
    buffer: Vec<u8>,
}

impl CompareSink {
    fn new(dir: &Path, intact: BTreeSet<String>) -> CompareSink {
        CompareSink {
            dir: dir.to_path_buf(),
            intact,
            current: None,
            done: Vec::new(),
        }
    }
}

impl Comparison {
    fn read_error(&self, e: std::io::Error) -> Error {
        Error::io(format!("cannot read {}", self.path.display()), e)
    }
}

/// `byte N (line L)`: where two files first differ.
fn difference_at(offset: u64, lines_before: u64) -> String {
    format!("byte {offset} (line {})", lines_before + 1)
}

impl FileSink for CompareSink {
    fn start(&mut self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        let on_disk = if self.intact.contains(name) {
            let file = std::fs::File::open(&path)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            Some(std::io::BufReader::with_capacity(1 << 16, file))
        } else {
            None
        };
        self.current = Some(Comparison {
            name: name.to_string(),
            path,
            on_disk,
            offset: 0,
            lines: 0,
            differs: None,
            buffer: Vec::new(),
        });
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Read;
        let c = started(self.current.as_mut())?;
        if c.differs.is_none() {
            if let Some(reader) = c.on_disk.as_mut() {
                // As many bytes as were written, fewer only at the end.
                c.buffer.clear();
                let read = match reader
                    .by_ref()
                    .take(bytes.len() as u64)
                    .read_to_end(&mut c.buffer)
                {
                    Ok(n) => n,
                    Err(e) => return Err(c.read_error(e)),
                };
                let same = c.buffer[..read]
                    .iter()
                    .zip(bytes)
                    .position(|(a, b)| a != b)
                    .unwrap_or(read);
                if same < bytes.len() {
                    let lines = bytes[..same].iter().filter(|&&b| b == b'\n').count() as u64;
                    c.differs = Some(difference_at(c.offset + same as u64, c.lines + lines));
                }
            }
        }
        c.offset += bytes.len() as u64;
        c.lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        use std::io::Read;
        let mut c = finished(self.current.take())?;
        let compared = match c.on_disk.take() {
            None => Compared::Skipped,
            Some(reader) => match c.differs.take() {
                Some(at) => Compared::Differs(at),
                None => {
                    // Equal so far: the file on disk must end here too.
                    match reader.take(1).read_to_end(&mut Vec::new()) {
                        Ok(0) => Compared::Same,
                        Ok(_) => Compared::Differs(difference_at(c.offset, c.lines)),
                        Err(e) => return Err(c.read_error(e)),
                    }
                }
            },
        };
        self.done.push((c.name, compared));
        Ok(())
    }
}

/// The `io::Write` a CSV writer writes a [`FileSink`] through; keeps the
/// sink's error, which `io::Error` cannot carry.
struct SinkWriter<'s> {
    sink: &'s mut dyn FileSink,
    error: std::cell::Cell<Option<Error>>,
}

impl std::io::Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.sink.write(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.error.set(Some(e));
                Err(std::io::Error::other(
                    "the export file could not be written",
                ))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One CSV file being written to a sink.
struct Sheet<'s> {
    table: &'static Table,
    writer: csv::Writer<SinkWriter<'s>>,
}

impl<'s> Sheet<'s> {
    fn new(table: &'static Table, excel: bool, sink: &'s mut dyn FileSink) -> Result<Sheet<'s>> {
        sink.start(table.file)?;
        if excel {
            sink.write(UTF8_BOM)?;
        }
        // Every setting explicit: RFC 4180 commas and double quotes, a quote
        // inside a field doubled, fields quoted only when they hold a comma,
        // quote, CR or LF, and the line end chosen by the flavour.
        let writer = csv::WriterBuilder::new()
            .delimiter(b',')
            .quote(b'"')
            .double_quote(true)
            .quote_style(csv::QuoteStyle::Necessary)
            .terminator(if excel {
                csv::Terminator::CRLF
            } else {
                csv::Terminator::Any(b'\n')
            })
            .has_headers(false)
            .flexible(false)
            .buffer_capacity(1 << 16)
            .from_writer(SinkWriter {
                sink,
                error: std::cell::Cell::new(None),
            });
        let mut sheet = Sheet { table, writer };
        let header: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        sheet.write(&header)?;
        Ok(sheet)
    }

    /// The sink's own error if it failed, or else the CSV writer's.
    fn error(&self, e: impl std::fmt::Display) -> Error {
        self.writer
            .get_ref()
            .error
            .take()
            .unwrap_or_else(|| Error::format(format!("cannot write {}: {e}", self.table.file)))
    }

    fn write<S: AsRef<str>>(&mut self, cells: &[S]) -> Result<()> {
        if let Err(e) = self
            .writer
            .write_record(cells.iter().map(|c| c.as_ref().as_bytes()))
        {
            return Err(self.error(e));
        }
        Ok(())
    }

    fn row(&mut self, cells: Vec<String>) -> Result<()> {
        if cells.len() != self.table.columns.len() {
            return Err(Error::format(format!(
                "{}: a row has {} cells for {} columns",
                self.table.file,
                cells.len(),
                self.table.columns.len()
            )));
        }
        let cells: Vec<String> = cells
            .into_iter()
            .zip(self.table.columns)
            .map(|(cell, column)| {
                if column.column_type.is_numeric() {
                    debug_assert!(
                        cell.is_empty() || is_number(&cell),
                        "{}: {} is not a number: {cell:?}",
                        self.table.file,
                        column.name
                    );
                    cell
                } else {
                    neutralise(&cell).into_owned()
                }
            })
            .collect();
        self.write(&cells)
    }

    fn finish(mut self) -> Result<()> {
        if let Err(e) = self.writer.flush() {
            return Err(self.error(e));
        }
        let file = self.table.file;
        let writer = self
            .writer
            .into_inner()
            .map_err(|e| Error::format(format!("cannot finish {file}: {e}")))?;
        writer.sink.finish()
    }
}

/// `-`? digits, optionally `.` digits: what numeric columns hold.
fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// One file of an export: its name and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn or_empty(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The files.
// ---------------------------------------------------------------------------

/// Options of a CSV export besides the fund and the ledger state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvOptions {
    pub as_of: Option<time::Date>,
    pub from: Option<time::Date>,
    /// UTF-8 BOM and CRLF line ends.
    pub excel: bool,
}

/// Writes one CSV file of an export to a sink.
type FileWriter = fn(&History, bool, &mut dyn FileSink, &mut Progress<'_>) -> Result<()>;

/// Every file of a CSV export, in file-name order.
const CSV_FILES: [(&Table, FileWriter); 9] = [
    (&CAPITAL_ACCOUNTS, capital_accounts),
    (&CAPITAL_CALLS, capital_calls),
    (&COMMITMENTS, commitments),
    (&CONTRIBUTIONS, contributions),
    (&DISTRIBUTIONS, distributions),
    (&FUND_SUMMARY, fund_summary),
    (&HOLDINGS, holdings),
    (&JOURNAL, journal),
    (&PARTNERS, partners),
];

/// Write every file of a CSV export from a history to `sink`, one after
/// another in file-name order. `progress` is called with each file's name
/// as it starts and ends (the journal, the longest, also every
/// [`crate::history::PROGRESS_EVERY`] entries), with the fund's entries
/// done and their total.
pub fn write_csv_files(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    progress: &mut Progress<'_>,
) -> Result<()> {
    h.check_consistency()?;
    let total = h.entries.len() as u64;
    for (table, write) in CSV_FILES {
        progress(table.file, 0, total);
        write(h, excel, sink, progress)?;
        progress(table.file, total, total);
    }
    Ok(())
}

fn journal(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&JOURNAL, excel, sink)?;
    let total = h.entries.len() as u64;
    for (done, e) in h.entries.iter().enumerate() {
        if done as u64 % PROGRESS_EVERY == 0 {
            progress(JOURNAL.file, done as u64, total);
        }
        if !e.in_period(h.scope.from) {
            continue;
        }
        for (i, (key, side, amount)) in e.postings().enumerate() {
            let (debit, credit) = match side {
                Side::Debit => (h.amount(amount), String::new()),
                Side::Credit => (String::new(), h.amount(amount)),
            };
            let (partner, startup) = key.partner_and_startup();
            s.row(vec![
                e.seq.to_string(),
                (i + 1).to_string(),
                hex::encode(e.entry_hash),
                e.date.to_string(),
                format_timestamp_ms(e.recorded_at_unix_ms),
                e.kind().to_string(),
                h.scope.fund.clone(),
                key.account.as_str().to_string(),
                partner.unwrap_or_default().to_string(),
                startup.unwrap_or_default().to_string(),
                debit,
                credit,
                h.currency.code().to_string(),
                e.memo().unwrap_or_default().to_string(),
                opt(e.reverses),
            ])?;
        }
    }
    s.finish()
}

fn partners(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&PARTNERS, excel, sink)?;
    for id in h.partner_ids() {
        let Some(p) = h.partners.get(&id) else {
            return Err(Error::format(format!(
                "partner {id} has a commitment but no registration"
            )));
        };
        let v = &p.value;
        s.row(vec![
            id.clone(),
            v.legal_name.clone(),
            v.partner_type.clone(),
            money_group(&v.partner_type).to_string(),
            v.country.clone(),
            or_empty(&v.lei),
            v.date.clone(),
            p.seq.to_string(),
        ])?;
    }
    s.finish()
}

/// The partner an entry's base event names (commitments, contributions).
fn base_partner(e: &crate::history::FundEntry) -> Option<&str> {
    match &*e.base {
        Event::Commitment(c) | Event::CommitmentReduce(c) => Some(&c.partner),
        Event::Contribution(c) => Some(&c.partner),
        _ => None,
    }
}

fn commitments(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&COMMITMENTS, excel, sink)?;
    let mut committed: BTreeMap<String, Decimal> = BTreeMap::new();
    for e in &h.entries {
        if !matches!(*e.base, Event::Commitment(_) | Event::CommitmentReduce(_)) {
            continue;
        }
        let partner = base_partner(e).unwrap_or_default().to_string();
        let change: Decimal = -e
            .amounts
            .iter()
            .filter(|(k, _)| k.account == Account::Commitment)
            .map(|(_, v)| *v)
            .sum::<Decimal>();
        let after = committed.entry(partner.clone()).or_default();
        *after += change;
        if e.in_period(h.scope.from) {
            s.row(vec![
                e.seq.to_string(),
                e.kind().to_string(),
                e.date.to_string(),
                partner,
                h.amount(change),
                h.amount(*after),
                h.currency.code().to_string(),
                opt(e.reverses),
                opt(e.reversed_by),
                e.memo().unwrap_or_default().to_string(),
            ])?;
        }
    }
    s.finish()
}

/// Paid and last payment date per (call number, partner).
fn payments(h: &History) -> BTreeMap<(u64, String), (Decimal, Option<time::Date>)> {
    let mut out: BTreeMap<(u64, String), (Decimal, Option<time::Date>)> = BTreeMap::new();
    for e in &h.entries {
        let Event::Contribution(c) = &*e.base else {
            continue;
        };
        let amount: Decimal = e
            .amounts
            .iter()
            .filter(|(k, _)| k.account == Account::Cash)
            .map(|(_, v)| *v)
            .sum();
        let slot = out.entry((c.call, c.partner.clone())).or_default();
        slot.0 += amount;
        if e.reverses.is_none() && e.reversed_by.is_none() {
            slot.1 = slot.1.max(Some(e.date));
        }
    }
    out
}

fn capital_calls(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&CAPITAL_CALLS, excel, sink)?;
    let paid = payments(h);
    let mut running: BTreeMap<crate::state::AccountKey, Decimal> = BTreeMap::new();
    // Rows go by call number, then partner. Calls are numbered in entry
    // order, so only one call's rows are held, to sort by partner.
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for e in &h.entries {
        for (k, v) in &e.amounts {
            *running
                .entry(crate::state::AccountKey::clone(k))
                .or_default() += v;
        }
        let (Event::Call(call), None) = (&*e.event, e.reverses) else {
            continue;
        };
        if !e.in_period(h.scope.from) {
            continue;
        }
        let number = e.call_number.unwrap_or_default();
        let due = parse_date(&call.due_date).map_err(|err| err.at_seq(e.seq))?;
        for (k, share) in &e.amounts {
            if k.account != Account::CallReceivable {
                continue;
            }
            let partner = &k.dimension;
            let cumulative = balance(&running, Account::Called, partner);
            let unfunded = balance(&running, Account::Unfunded, partner);
            let (paid_amount, last) = paid
                .get(&(number, partner.clone()))
                .copied()
                .unwrap_or_default();
            let reversed = e.reversed_by.is_some();
            let outstanding = if reversed {
                Decimal::ZERO
            } else {
                *share - paid_amount
            };
            let status = if reversed {
                "reversed"
            } else if outstanding.is_zero() {
                "paid"
            } else if paid_amount > Decimal::ZERO {
                "partially_paid"
            } else {
                "unpaid"
            };
            let overdue = !reversed && outstanding > Decimal::ZERO && h.report_date > due;
            let late_until = if outstanding > Decimal::ZERO {
                Some(h.report_date)
            } else {
                last
            };
            let days_past_due = match (reversed, late_until) {
                (true, _) => String::new(),
                (false, Some(until)) => (until - due).whole_days().max(0).to_string(),
                (false, None) => "0".to_string(),
            };
            rows.push((
                partner.clone(),
                vec![
                    number.to_string(),
                    e.seq.to_string(),
                    e.date.to_string(),
                    call.due_date.clone(),
                    call.purpose.clone(),
                    partner.clone(),
                    h.currency.code().to_string(),
                    call.amount.clone(),
                    h.amount(cumulative + unfunded),
                    h.amount(*share),
                    h.amount(cumulative),
                    h.amount(unfunded),
                    h.amount(paid_amount),
                    h.amount(outstanding),
                    opt(last),
                    status.to_string(),
                    overdue.to_string(),
                    days_past_due,
                    opt(e.reversed_by),
                    call.memo.clone().unwrap_or_default(),
                ],
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, row) in rows.drain(..) {
            s.row(row)?;
        }
    }
    s.finish()
}

fn contributions(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&CONTRIBUTIONS, excel, sink)?;
    for e in h.entries.iter().filter(|e| e.in_period(h.scope.from)) {
        let Event::Contribution(c) = &*e.base else {
            continue;
        };
        let amount: Decimal = e
            .amounts
            .iter()
            .filter(|(k, _)| k.account == Account::Cash)
            .map(|(_, v)| *v)
            .sum();
        s.row(vec![
            e.seq.to_string(),
            e.kind().to_string(),
            e.date.to_string(),
            c.partner.clone(),
            c.call.to_string(),
            h.amount(amount),
            h.currency.code().to_string(),
            opt(e.reverses),
            opt(e.reversed_by),
            e.memo().unwrap_or_default().to_string(),
        ])?;
    }
    s.finish()
}

fn distributions(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&DISTRIBUTIONS, excel, sink)?;
    let mut cumulative: BTreeMap<String, Decimal> = BTreeMap::new();
    for e in &h.entries {
        if !matches!(*e.base, Event::Distribution(_)) {
            continue;
        }
        let total: Decimal = -e
            .amounts
            .iter()
            .filter(|(k, _)| k.account == Account::Cash)
            .map(|(_, v)| *v)
            .sum::<Decimal>();
        let mut shares: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (k, v) in &e.amounts {
            if k.account == Account::Distributions {
                *shares.entry(&k.dimension).or_default() += v;
            }
        }
        for (partner, amount) in shares {
            let after = cumulative.entry(partner.to_string()).or_default();
            *after += amount;
            if e.in_period(h.scope.from) {
                s.row(vec![
                    e.seq.to_string(),
                    e.kind().to_string(),
                    e.date.to_string(),
                    partner.to_string(),
                    h.currency.code().to_string(),
                    h.amount(total),
                    h.amount(amount),
                    h.amount(*after),
                    opt(e.reverses),
                    opt(e.reversed_by),
                    e.memo().unwrap_or_default().to_string(),
                ])?;
            }
        }
    }
    s.finish()
}

/// The first day of the period: --from, else the fund's creation date.
pub fn period_start(h: &History) -> String {
    match h.scope.from {
        Some(d) => d.to_string(),
        None => h.fund.value.date.clone(),
    }
}

fn capital_accounts(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&CAPITAL_ACCOUNTS, excel, sink)?;
    let closing = h.figures();
    let opening_balances = match h.scope.from {
        Some(from) => h.balances_where(|e| e.date < from),
        None => BTreeMap::new(),
    };
    let fund_nav = History::total(&closing, |_| true).nav();
    for (p, c) in &closing {
        let o = crate::history::Figures::of(&opening_balances, p);
        let flows = [
            c.paid_in() - o.paid_in(),
            c.distributed - o.distributed,
            c.management_fees - o.management_fees,
            c.fund_expenses - o.fund_expenses,
            c.realized_gain - o.realized_gain,
            c.unrealized_gain - o.unrealized_gain,
        ];
        let rolled = o.nav() + flows[0] - flows[1] - flows[2] - flows[3] + flows[4] + flows[5];
        if rolled != c.nav() {
            return Err(Error::format(format!(
                "capital account of {p} does not roll forward: {} != {}",
                h.amount(rolled),
                h.amount(c.nav())
            )));
        }
        let perf = h.performance(c, |x| x == p);
        let mut row = vec![
            p.clone(),
            h.legal_name(p).to_string(),
            h.partner_type(p).to_string(),
            h.currency.code().to_string(),
            period_start(h),
            h.report_date.to_string(),
            h.amount(o.nav()),
        ];
        row.extend(flows.iter().map(|v| h.amount(*v)));
        row.extend([
            h.amount(c.nav()),
            h.amount(c.committed),
            h.amount(c.called),
            h.amount(c.paid_in()),
            h.amount(c.unfunded()),
            h.amount(c.outstanding),
            h.amount(c.distributed),
            or_empty(&ratio(c.nav(), fund_nav, RATIO_PLACES)),
            or_empty(&perf.dpi),
            or_empty(&perf.rvpi),
            or_empty(&perf.tvpi),
            or_empty(&perf.irr),
        ]);
        s.row(row)?;
    }
    s.finish()
}

/// One holding's figures (in scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holding {
    pub startup: String,
    pub invested: Decimal,
    pub cost_released: Decimal,
    pub cost: Decimal,
    pub fair_value_adjustment: Decimal,
    pub proceeds: Decimal,
    pub first_investment: Option<time::Date>,
    pub last_valuation: Option<time::Date>,
}

impl Holding {
    pub fn fair_value(&self) -> Decimal {
        self.cost + self.fair_value_adjustment
    }
    pub fn realized_gain(&self) -> Decimal {
        self.proceeds - self.cost_released
    }
    pub fn total_value(&self) -> Decimal {
        self.fair_value() + self.proceeds
    }
    pub fn status(&self) -> &'static str {
        if self.cost > Decimal::ZERO {
            "held"
        } else if self.invested.is_zero() {
            "reversed"
        } else if self.proceeds > Decimal::ZERO {
            "exited"
        } else {
            "written_off"
        }
    }
}

/// Every holding of the fund in scope, by startup id.
pub fn holdings_of(h: &History) -> Result<Vec<Holding>> {
    let mut out: BTreeMap<String, Holding> = BTreeMap::new();
    let parse = |text: &str, seq: u64| {
        crate::money::parse_canonical_amount(text, h.currency)
            .map_err(|e| Error::format(e.to_string()).at_seq(seq))
    };
    for e in &h.entries {
        let sign = e.sign();
        let live = e.reverses.is_none() && e.reversed_by.is_none();
        match &*e.base {
            Event::Investment(i) => {
                let x = out.entry(i.startup.clone()).or_default();
                x.invested += sign * parse(&i.amount, e.seq)?;
                if live {
                    x.first_investment = Some(x.first_investment.map_or(e.date, |d| d.min(e.date)));
                }
            }
            Event::Realization(r) => {
                let x = out.entry(r.startup.clone()).or_default();
                x.proceeds += sign * parse(&r.proceeds, e.seq)?;
                x.cost_released += sign * parse(&r.cost_released, e.seq)?;
            }
            Event::Valuation(v) => {
                let x = out.entry(v.startup.clone()).or_default();
                if live {
                    x.last_valuation = x.last_valuation.max(Some(e.date));
                }
            }
            _ => {}
        }
    }
    let balances = h.balances();
    let mut list = Vec::with_capacity(out.len());
    for (startup, mut x) in out {
        x.cost = balance(&balances, Account::Investments, &startup);
        x.fair_value_adjustment = balance(&balances, Account::FairValueAdjustment, &startup);
        if x.cost != x.invested - x.cost_released {
            return Err(Error::format(format!(
                "holding {startup}: cost {} is not invested {} less released {}",
                h.amount(x.cost),
                h.amount(x.invested),
                h.amount(x.cost_released)
            )));
        }
        x.startup = startup;
        list.push(x);
    }
    Ok(list)
}

fn holdings(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&HOLDINGS, excel, sink)?;
    for x in holdings_of(h)? {
        let info = h.startups.get(&x.startup).map(|r| &r.value);
        s.row(vec![
            x.startup.clone(),
            info.map(|i| i.name.clone()).unwrap_or_default(),
            info.map(|i| i.country.clone()).unwrap_or_default(),
            info.map(|i| i.sector.clone()).unwrap_or_default(),
            h.currency.code().to_string(),
            opt(x.first_investment),
            h.amount(x.invested),
            h.amount(x.cost_released),
            h.amount(x.cost),
            h.amount(x.fair_value_adjustment),
            h.amount(x.fair_value()),
            h.amount(x.proceeds),
            h.amount(x.realized_gain()),
            h.amount(x.fair_value_adjustment),
            h.amount(x.total_value()),
            or_empty(&ratio(x.total_value(), x.invested, RATIO_PLACES)),
            opt(x.last_valuation),
            x.status().to_string(),
        ])?;
    }
    s.finish()
}

fn fund_summary(
    h: &History,
    excel: bool,
    sink: &mut dyn FileSink,
    _progress: &mut Progress<'_>,
) -> Result<()> {
    let mut s = Sheet::new(&FUND_SUMMARY, excel, sink)?;
    let figures = h.figures();
    let total = History::total(&figures, |_| true);
    let perf = h.performance(&total, |_| true);
    let balances = h.balances();
    let sum_of = |account: Account| -> Decimal {
        balances
            .iter()
            .filter(|(k, _)| k.account == account)
            .map(|(_, v)| *v)
            .sum()
    };
    let holdings = holdings_of(h)?
        .iter()
        .filter(|x| x.cost > Decimal::ZERO)
        .count();
    let f = &h.fund.value;
    let mut row = vec![
        f.fund.clone(),
        f.name.clone(),
        f.currency.clone(),
        f.jurisdiction.clone(),
        f.vintage.to_string(),
        f.management_fee_rate.clone(),
        f.management_fee_basis.clone(),
        period_start(h),
        h.report_date.to_string(),
        h.state.origin.clone(),
        h.state.tree_size.to_string(),
        hex::encode(h.state.root_hash),
        hex::encode(h.state.head_hash),
        figures.len().to_string(),
        holdings.to_string(),
        h.amount(total.committed),
        h.amount(total.called),
        h.amount(total.paid_in()),
        h.amount(total.unfunded()),
        h.amount(total.outstanding),
        h.amount(total.distributed),
        h.amount(total.nav()),
        h.amount(History::nav_from_assets(&balances)),
        h.amount(sum_of(Account::Cash)),
        h.amount(sum_of(Account::Investments)),
        h.amount(sum_of(Account::FairValueAdjustment)),
        h.amount(total.management_fees),
        h.amount(total.fund_expenses),
        h.amount(total.realized_gain),
        h.amount(total.unrealized_gain),
        or_empty(&perf.dpi),
        or_empty(&perf.rvpi),
        or_empty(&perf.tvpi),
        or_empty(&perf.irr),
    ];
    for group in MONEY_GROUPS {
        let g = History::total(&figures, |p| money_group(h.partner_type(p)) == group);
        row.extend([
            h.amount(g.committed),
            or_empty(&ratio(g.committed, total.committed, RATIO_PLACES)),
            h.amount(g.paid_in()),
            or_empty(&ratio(g.paid_in(), total.paid_in(), RATIO_PLACES)),
            h.amount(g.distributed),
            or_empty(&ratio(g.distributed, total.distributed, RATIO_PLACES)),
        ]);
    }
    s.row(row)?;
    s.finish()
}

// ---------------------------------------------------------------------------
// The MANIFEST.
// ---------------------------------------------------------------------------

/// What an export directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// The CSV files of `export csv`.
    Csv,
    /// report.html and report.md of `report`.
    Report,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Csv => "csv",
            ExportKind::Report => "report",
        }
    }
}

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// The body of a MANIFEST (schema/EXPORTS.md, "MANIFEST").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub generator: String,
    pub kind: ExportKind,
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: [u8; 32],
    pub head_hash: [u8; 32],
    pub fund: String,
    pub as_of: Option<time::Date>,
    pub from: Option<time::Date>,
    pub excel: bool,
    /// The ledger key id (SHA-256 of the public key) of the signing key.
    pub signer: KeyId,
    /// Sorted by name, byte order, no duplicates.
    pub files: Vec<ManifestFile>,
}

/// The generator line of manifests this build writes.
pub fn generator() -> String {
    format!("fundledger {}", env!("CARGO_PKG_VERSION"))
}

/// A file name a manifest may list: 1 to 64 bytes of `a-z 0-9 . _ -`,
/// starting with a letter or digit, and not `MANIFEST` (so never a path).
pub fn is_valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
        })
        && name != MANIFEST_NAME
}

impl Manifest {
    /// The note text that is signed.
    pub fn to_body(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.root_hash);
        let mut out = String::new();
        out.push_str(MANIFEST_HEADER);
        out.push('\n');
        let date = |d: Option<time::Date>, none: &str| {
            d.map_or_else(|| none.to_string(), |d| d.to_string())
        };
        for (key, value) in [
            ("generator", self.generator.clone()),
            ("kind", self.kind.as_str().to_string()),
            ("origin", self.origin.clone()),
            ("tree_size", self.tree_size.to_string()),
            ("root_hash", b64),
            ("head_hash", hex::encode(self.head_hash)),
            ("fund", self.fund.clone()),
            ("as_of", date(self.as_of, "latest")),
            ("from", date(self.from, "start")),
            ("excel", self.excel.to_string()),
            ("signer", hex::encode(self.signer)),
        ] {
            out.push_str(&format!("{key} {value}\n"));
        }
        for f in &self.files {
            out.push_str(&format!(
                "file {} {} {}\n",
                f.name,
                f.size,
                hex::encode(f.sha256)
            ));
        }
        out
    }

    /// Parse a manifest body strictly: the lines in order, each once, the
    /// files sorted and valid; anything else is refused. A body that parses
    /// is exactly what [`Manifest::to_body`] writes for the result.
    pub fn parse(body: &str) -> std::result::Result<Manifest, String> {
        let inner = body
            .strip_suffix('\n')
            .ok_or("the body does not end with a newline")?;
        let mut lines = inner.split('\n');
        if lines.next() != Some(MANIFEST_HEADER) {
            return Err(format!("the first line is not {MANIFEST_HEADER:?}"));
        }
        let mut field = |key: &str| -> std::result::Result<String, String> {
            let line = lines.next().ok_or(format!("line {key:?} is missing"))?;
            match line.split_once(' ') {
                Some((k, v)) if k == key && !v.is_empty() => Ok(v.to_string()),
                _ => Err(format!("expected a {key:?} line, found {line:?}")),
            }
        };
        let generator = field("generator")?;
        let kind = match field("kind")?.as_str() {
            "csv" => ExportKind::Csv,
            "report" => ExportKind::Report,
            other => return Err(format!("unknown kind {other:?}")),
        };
        let origin = field("origin")?;
        crate::entry::check_origin(&origin).map_err(|e| e.message().to_string())?;
        let tree_size_text = field("tree_size")?;
        let tree_size: u64 = tree_size_text
            .parse()
            .ok()
            .filter(|n: &u64| n.to_string() == tree_size_text && *n > 0)
            .ok_or("tree_size is not a positive decimal number without leading zeros")?;
        let root_text = field("root_hash")?;
        let root_hash: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(&root_text)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or("root_hash is not the standard base64 of 32 bytes")?;
        let head_hash =
            hex32(&field("head_hash")?).ok_or("head_hash is not 64 lower-case hex digits")?;
        let fund = field("fund")?;
        let date = |text: String, none: &str| -> std::result::Result<Option<time::Date>, String> {
            if text == none {
                Ok(None)
            } else {
                parse_date(&text)
                    .map(Some)
                    .map_err(|e| e.message().to_string())
            }
        };
        let as_of = date(field("as_of")?, "latest")?;
        let from = date(field("from")?, "start")?;
        let excel = match field("excel")?.as_str() {
            "true" => true,
            "false" => false,
            other => return Err(format!("excel is {other:?}, not true or false")),
        };
        let signer = hex32(&field("signer")?).ok_or("signer is not 64 lower-case hex digits")?;
        let mut files: Vec<ManifestFile> = Vec::new();
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            let ["file", name, size, sha] = parts.as_slice() else {
                return Err(format!("expected a file line, found {line:?}"));
            };
            if !is_valid_file_name(name) {
                return Err(format!("file name {name:?} is not allowed"));
            }
            let size_value: u64 = size
                .parse()
                .ok()
                .filter(|n: &u64| n.to_string() == *size)
                .ok_or(format!("size of {name} is not a decimal number"))?;
            let sha256 =
                hex32(sha).ok_or(format!("SHA-256 of {name} is not 64 lower-case hex digits"))?;
            if files.last().is_some_and(|f| f.name.as_str() >= *name) {
                return Err(format!("file {name} is out of order or listed twice"));
            }
            files.push(ManifestFile {
                name: name.to_string(),
                size: size_value,
                sha256,
            });
            if files.len() > MANIFEST_FILES_MAX {
                return Err(format!("more than {MANIFEST_FILES_MAX} files"));
            }
        }
        if files.is_empty() {
            return Err("no file lines".into());
        }
        let manifest = Manifest {
            generator,
            kind,
            origin,
            tree_size,
            root_hash,
            head_hash,
            fund,
            as_of,
            from,
            excel,
            signer,
            files,
        };
        if manifest.to_body() != body {
            return Err("the body is not in canonical form".into());
        }
        Ok(manifest)
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}

/// The signing key checked against the ledger: enrolled with a role that
/// may sign exports, and active.
fn check_signer(ledger: &Ledger, key: &SigningKey) -> Result<KeyId> {
    let id = key_id(&key.verifying_key());
    let record = ledger.state().keys.get(&id).ok_or_else(|| {
        Error::key(format!(
            "key {} is not enrolled in this ledger",
            &hex::encode(id)[..16]
        ))
        .with_hint("sign exports with an enrolled administrator, recorder or auditor key (`fundledger key list`)")
    })?;
    if !EXPORT_SIGNER_ROLES.contains(&record.role.as_str()) {
        return Err(Error::key(format!(
            "key {} ({}) has role {}, which may not sign exports",
            &hex::encode(id)[..16],
            record.name,
            record.role
        ))
        .with_hint("use an administrator, recorder or auditor key"));
    }
    if let Some(revoked) = record.revoked_seq {
        return Err(Error::key(format!(
            "key {} ({}) was revoked at entry {revoked}",
            &hex::encode(id)[..16],
            record.name
        )));
    }
    Ok(id)
}

/// SHA-256 of a file, read in pieces.
fn sha256_of_file(path: &Path) -> Result<[u8; 32]> {
    let error = |e| Error::io(format!("cannot read {}", path.display()), e);
    let mut file = std::fs::File::open(path).map_err(error)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(error)?;
    Ok(hasher.finalize().into())
}

/// Sign a manifest listing `files` (any order) with the ledger's origin as
/// the key name.
pub fn sign_manifest(
    kind: ExportKind,
    state: &LedgerState,
    fund: &str,
    options: CsvOptions,
    signer: &SigningKey,
    files: &[ManifestFile],
) -> Result<String> {
    let mut listed = files.to_vec();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let manifest = Manifest {
        generator: generator(),
        kind,
        origin: state.origin.clone(),
        tree_size: state.tree_size,
        root_hash: state.root_hash,
        head_hash: state.head_hash,
        fund: fund.to_string(),
        as_of: options.as_of,
        from: options.from,
        excel: options.excel,
        signer: key_id(&signer.verifying_key()),
        files: listed,
    };
    let body = manifest.to_body();
    // Check twice: what we sign must read back as the same manifest.
    if Manifest::parse(&body).as_ref() != Ok(&manifest) {
        return Err(Error::format("the manifest does not read back as itself"));
    }
    crate::note::sign_note(&body, &state.origin, signer)
        .map_err(|e| Error::format(format!("cannot sign the manifest: {e}")))
}

/// The ledger state at its head, cross-checked: the root the ledger reports
/// must equal the root recomputed from the records as they are read.
fn head_history(
    ledger: &Ledger,
    fund: &str,
    as_of: Option<time::Date>,
    from: Option<time::Date>,
    progress: &mut Progress<'_>,
) -> Result<History> {
    let head = ledger.tree_head()?;
    let history = History::load(
        ledger,
        &Scope {
            fund: fund.to_string(),
            tree_size: head.tree_size,
            as_of,
            from,
        },
        progress,
    )?;
    if history.state.root_hash != head.root_hash {
        return Err(Error::new(
            ErrorKind::Verification,
            format!(
                "the ledger's Merkle root at tree size {} differs from the root of its records",
                head.tree_size
            ),
        )
        .with_hint("run `fundledger verify`"));
    }
    Ok(history)
}

/// Load the fund's history at the ledger's head (see `head_history`);
/// `progress` is called with the entries read and the total.
pub fn load_at_head(
    ledger: &Ledger,
    fund: &str,
    as_of: Option<time::Date>,
    from: Option<time::Date>,
    progress: &mut Progress<'_>,
) -> Result<History> {
    ledger.state().fund(fund)?;
    head_history(ledger, fund, as_of, from, progress)
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub state: LedgerState,
    pub files: Vec<(String, u64)>,
}

/// Write the files `produce` writes to its sink, and their signed
/// MANIFEST, into `out`, which must not exist or be empty. Each file goes
/// straight to disk, its size and SHA-256 computed as it is written. The
/// files are written into a sibling temporary directory that is renamed
/// into place, so `out` never holds a partial export.
pub fn write_signed_dir(
    out: &Path,
    kind: ExportKind,
    state: &LedgerState,
    fund: &str,
    options: CsvOptions,
    signer: Option<&SigningKey>,
    produce: &mut dyn FnMut(&mut dyn FileSink) -> Result<()>,
) -> Result<Written> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::io(format!("cannot {what} {}", path.display()), e)
    };
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|e| io("read", out, e))?;
        if entries.next().is_some() {
            return Err(Error::input(format!("{} exists and is not empty", out.display()))
                .with_hint("export into a new or empty directory; an export is never mixed with other files"));
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io("create", &parent, e))?;
    let leaf = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let temp = parent.join(format!(".{leaf}.partial-{}", std::process::id()));
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(|e| io("remove", &temp, e))?;
    }
    std::fs::create_dir(&temp).map_err(|e| io("create", &temp, e))?;
    let result = (|| {
        let mut sink = DirSink::new(&temp);
        produce(&mut sink)?;
        if sink.current.is_some() {
            return Err(Error::format("an export file was left unfinished"));
        }
        let mut files = sink.files;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(key) = signer {
            let text = sign_manifest(kind, state, fund, options, key, &files)?;
            let path = temp.join(MANIFEST_NAME);
            std::fs::write(&path, text).map_err(|e| io("write", &path, e))?;
        }
        if out.exists() {
            std::fs::remove_dir(out).map_err(|e| io("replace", out, e))?;
        }
        std::fs::rename(&temp, out).map_err(|e| io("rename into", out, e))?;
        Ok(files)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    let files = result?;
    Ok(Written {
        dir: out.to_path_buf(),
        state: state.clone(),
        files: files.into_iter().map(|f| (f.name, f.size)).collect(),
    })
}

/// `export csv`: compute the CSV files of `fund` at the ledger's head and
/// write them, file by file, with a MANIFEST signed by `signer` into `out`.
pub fn export_csv(
    ledger: &Ledger,
    fund: &str,
    options: CsvOptions,
    signer: &SigningKey,
    out: &Path,
    progress: &mut Progress<'_>,
) -> Result<Written> {
    check_signer(ledger, signer)?;
    let history = load_at_head(ledger, fund, options.as_of, options.from, progress)?;
    write_signed_dir(
        out,
        ExportKind::Csv,
        &history.state,
        fund,
        options,
        Some(signer),
        &mut |sink| write_csv_files(&history, options.excel, sink, progress),
    )
}

/// Check a report-signing key the same way as an export key.
pub fn check_export_signer(ledger: &Ledger, key: &SigningKey) -> Result<KeyId> {
    check_signer(ledger, key)
}

// ---------------------------------------------------------------------------
// verify-export.
// ---------------------------------------------------------------------------

/// One thing verify-export found wrong: which file, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub problem: String,
}

/// The outcome of verify-export.
#[derive(Debug, Clone, Default)]
pub struct ExportCheck {
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// What was checked and found good, in order.
    pub passed: Vec<String>,
    /// What was found wrong; empty when the export is good.
    pub findings: Vec<Finding>,
}

impl ExportCheck {
    pub fn is_good(&self) -> bool {
        self.findings.is_empty() && self.manifest.is_some()
    }
    fn find(&mut self, file: &str, problem: impl Into<String>) {
        self.findings.push(Finding {
            file: file.to_string(),
            problem: problem.into(),
        });
    }
}

/// How verify-export trusts the signature.
pub struct TrustAnchors<'a> {
    /// Check against the key enrolled in this ledger, and recompute.
    pub ledger: Option<&'a Ledger>,
    /// Check against this public key.
    pub trusted_key: Option<&'a VerifyingKey>,
}

/// Recompute a CSV export from its manifest: the ledger state at its tree
/// size, and the files, written to `sink`.
pub fn recompute_csv(
    ledger: &Ledger,
    m: &Manifest,
    progress: &mut Progress<'_>,
    sink: &mut dyn FileSink,
) -> Result<LedgerState> {
    let history = History::load(
        ledger,
        &Scope {
            fund: m.fund.clone(),
            tree_size: m.tree_size,
            as_of: m.as_of,
            from: m.from,
        },
        progress,
    )?;
    write_csv_files(&history, m.excel, sink, progress)?;
    Ok(history.state)
}

/// `verify-export DIR`: check the MANIFEST's signature, every file's size
/// and SHA-256, that no file is missing or extra and, given a ledger, that
/// the ledger holds the state the MANIFEST names and that recomputing the
/// export there gives the same bytes. Problems are findings (exit 1);
/// errors are reasons it could not run (exit 2).
pub fn verify_export(
    dir: &Path,
    anchors: &TrustAnchors<'_>,
    progress: &mut Progress<'_>,
) -> Result<ExportCheck> {
    if anchors.ledger.is_none() && anchors.trusted_key.is_none() {
        return Err(
            Error::input("nothing to check the MANIFEST's signature against").with_hint(
                "pass --ledger PATH (the key must be enrolled there) or --trusted-key PUB.pem",
            ),
        );
    }
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::input(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let mut check = ExportCheck::default();
    let manifest_path = dir.join(MANIFEST_NAME);
    let text = match std::fs::symlink_metadata(&manifest_path) {
        Err(_) => {
            check.find(MANIFEST_NAME, "missing");
            return Ok(check);
        }
        Ok(m) if !m.is_file() => {
            check.find(MANIFEST_NAME, "is not a regular file");
            return Ok(check);
        }
        Ok(m) if m.len() > MANIFEST_LEN_MAX => {
            check.find(
                MANIFEST_NAME,
                format!("is larger than {MANIFEST_LEN_MAX} bytes"),
            );
            return Ok(check);
        }
        Ok(_) => {
            let bytes = std::fs::read(&manifest_path)
                .map_err(|e| Error::io(format!("cannot read {}", manifest_path.display()), e))?;
            match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => {
                    check.find(MANIFEST_NAME, "is not UTF-8");
                    return Ok(check);
                }
            }
        }
    };
    let (body, _) = match crate::note::parse_note(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            check.find(MANIFEST_NAME, format!("is not a signed note: {e}"));
            return Ok(check);
        }
    };
    let manifest = match Manifest::parse(&body) {
        Ok(m) => m,
        Err(e) => {
            check.find(MANIFEST_NAME, format!("is malformed: {e}"));
            return Ok(check);
        }
    };
    check.manifest = Some(manifest.clone());

    // The signature.
    let mut verifiers: Vec<(String, VerifyingKey)> = Vec::new();
    if let Some(key) = anchors.trusted_key {
        if key_id(key) != manifest.signer {
            check.find(
                MANIFEST_NAME,
                format!(
                    "names signer {} but the trusted key is {}",
                    &hex::encode(manifest.signer)[..16],
                    &hex::encode(key_id(key))[..16]
                ),
            );
        } else {
            verifiers.push(("the trusted key".into(), *key));
        }
    }
    if let Some(ledger) = anchors.ledger {
        let origin = ledger.origin();
        if origin != manifest.origin {
            check.find(
                MANIFEST_NAME,
                format!("names origin {}, the ledger's is {origin}", manifest.origin),
            );
        }
        match ledger.state().keys.get(&manifest.signer) {
            None => check.find(
                MANIFEST_NAME,
                format!("signer {} is not enrolled in the ledger", &hex::encode(manifest.signer)[..16]),
            ),
            Some(k) if !EXPORT_SIGNER_ROLES.contains(&k.role.as_str()) => check.find(
                MANIFEST_NAME,
                format!("signer {} has role {}, which may not sign exports", k.name, k.role),
            ),
            Some(k) if k.enrolled_seq >= manifest.tree_size => check.find(
                MANIFEST_NAME,
                format!(
                    "signer {} was enrolled at entry {}, after the state the export describes (tree size {})",
                    k.name, k.enrolled_seq, manifest.tree_size
                ),
            ),
            Some(k) if k.revoked_seq.is_some_and(|r| r < manifest.tree_size) => check.find(
                MANIFEST_NAME,
                format!(
                    "signer {} was revoked at entry {}, before the state the export describes (tree size {})",
                    k.name,
                    k.revoked_seq.unwrap_or_default(),
                    manifest.tree_size
                ),
            ),
            Some(k) => verifiers.push((format!("enrolled key {} ({})", k.name, k.role), k.public_key)),
        }
    }
    for (what, key) in &verifiers {
        let verifier = crate::note::Verifier::ed25519(&manifest.origin, key.as_bytes())
            .map_err(|e| Error::key(format!("cannot use {what}: {e}")))?;
        match crate::note::verify_note(&text, std::slice::from_ref(&verifier)) {
            Ok(_) => check.passed.push(format!("MANIFEST signature by {what}")),
            Err(e) => check.find(
                MANIFEST_NAME,
                format!("signature does not verify with {what}: {e}"),
            ),
        }
    }

    // The files: none missing, none extra, sizes and hashes.
    let mut present: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?
    {
        let entry = entry.map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != MANIFEST_NAME {
            present.insert(name);
        }
    }
    let listed: BTreeSet<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    for extra in present.difference(&listed) {
        check.find(extra, "is not listed in the MANIFEST");
    }
    // Each file is hashed as it is read, never held whole.
    let mut intact: BTreeSet<String> = BTreeSet::new();
    for f in &manifest.files {
        let path = dir.join(&f.name);
        let meta = match std::fs::symlink_metadata(&path) {
            Err(_) => {
                check.find(&f.name, "is missing");
                continue;
            }
            Ok(m) => m,
        };
        if !meta.is_file() {
            check.find(&f.name, "is not a regular file");
            continue;
        }
        if meta.len() != f.size {
            check.find(
                &f.name,
                format!("has {} bytes, the MANIFEST says {}", meta.len(), f.size),
            );
            continue;
        }
        let digest = sha256_of_file(&path)?;
        if digest != f.sha256 {
            check.find(
                &f.name,
                format!(
                    "SHA-256 is {}, the MANIFEST says {}",
                    hex::encode(digest),
                    hex::encode(f.sha256)
                ),
            );
            continue;
        }
        intact.insert(f.name.clone());
    }
    if intact.len() == manifest.files.len() && present.len() == listed.len() {
        check.passed.push(format!(
            "{} files: sizes and SHA-256 as listed, none missing, none extra",
            listed.len()
        ));
    }

    // The ledger state, and the recomputation.
    if let Some(ledger) = anchors.ledger {
        if manifest.origin != ledger.origin() {
            return Ok(check);
        }
        let count = ledger.store().count()?;
        if manifest.tree_size > count {
            check.find(
                MANIFEST_NAME,
                format!(
                    "names tree size {}, but the ledger has only {count} entries (not this ledger, or it was cut short)",
                    manifest.tree_size
                ),
            );
            return Ok(check);
        }
        let mut sink = CompareSink::new(dir, intact);
        let recomputed = match manifest.kind {
            ExportKind::Csv => recompute_csv(ledger, &manifest, progress, &mut sink),
            ExportKind::Report => crate::report::recompute(ledger, &manifest, progress, &mut sink),
        };
        let state = match recomputed {
            Ok(done) => done,
            Err(e) if e.kind() == ErrorKind::Input => {
                check.find(
                    MANIFEST_NAME,
                    format!("cannot be recomputed from the ledger: {}", e.message()),
                );
                return Ok(check);
            }
            Err(e) => return Err(e),
        };
        if state.root_hash != manifest.root_hash {
            check.find(
                MANIFEST_NAME,
                format!(
                    "root hash {} is not the ledger's root at tree size {} ({})",
                    base64::engine::general_purpose::STANDARD.encode(manifest.root_hash),
                    manifest.tree_size,
                    base64::engine::general_purpose::STANDARD.encode(state.root_hash)
                ),
            );
        } else if state.head_hash != manifest.head_hash {
            check.find(
                MANIFEST_NAME,
                "head hash is not the ledger's entry hash at tree size - 1",
            );
        } else {
            check.passed.push(format!(
                "ledger state: tree size {} and root hash match the ledger",
                manifest.tree_size
            ));
        }
        let files = sink.done;
        let expected: BTreeSet<String> = files.iter().map(|(name, _)| name.clone()).collect();
        for name in listed.difference(&expected) {
            check.find(name, "is not a file of this export kind");
        }
        for name in expected.difference(&listed) {
            check.find(
                name,
                "belongs to the export but is not listed in the MANIFEST",
            );
        }
        let mut same = 0;
        for (name, compared) in &files {
            match compared {
                Compared::Same => same += 1,
                Compared::Differs(at) => check.find(
                    name,
                    format!(
                        "differs from the export recomputed from the ledger at tree size {}: first at {at}",
                        manifest.tree_size,
                    ),
                ),
                Compared::Skipped => {}
            }
        }
        if same == files.len() && files.len() == listed.len() {
            check.passed.push(format!(
                "recomputed at tree size {}: all {} files byte-identical",
                manifest.tree_size, same
            ));
        }
        if manifest.generator != generator() {
            check.passed.push(format!(
                "note: the export was made by {}, recomputed with {}",
                manifest.generator,
                generator()
            ));
        }
    }
    Ok(check)
}

/// Write the demo's CSV export, report and hledger journal into `out`
/// (`export/`, `report/`, `fund.journal`), signed with `key`. Returns a
/// summary to print.
pub fn write_demo_outputs(
    ledger: &Ledger,
    fund: &str,
    out: &Path,
    key: &SigningKey,
) -> Result<String> {
    let quiet = &mut |_: &str, _: u64, _: u64| {};
    let written = export_csv(
        ledger,
        fund,
        CsvOptions::default(),
        key,
        &out.join("export"),
        quiet,
    )?;
    let report =
        crate::report::write_report(ledger, fund, None, Some(key), &out.join("report"), quiet)?;
    let journal =
        crate::hledger::write_journal(ledger, fund, None, &out.join("fund.journal"), quiet)?;
    Ok(format!(
        "\nExports (ledger state: tree size {}, root {}):\n  {} ({} CSV files and a signed MANIFEST)\n  {}\n  {} ({} transactions)\n",
        written.state.tree_size,
        base64::engine::general_purpose::STANDARD.encode(written.state.root_hash),
        written.dir.display(),
        written.files.len(),
        report.display(),
        out.join("fund.journal").display(),
        journal
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps every file in memory.
    #[derive(Debug, Default)]
    struct MemorySink {
        files: Vec<ExportFile>,
    }

    impl FileSink for MemorySink {
        fn start(&mut self, name: &str) -> Result<()> {
            self.files.push(ExportFile {
                name: name.to_string(),
                bytes: Vec::new(),
            });
            Ok(())
        }

        fn write(&mut self, bytes: &[u8]) -> Result<()> {
            started(self.files.last_mut())?
                .bytes
                .extend_from_slice(bytes);
            Ok(())
        }

        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn neutralise_prefixes_formula_triggers_only() {
        for (input, expected) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-x", "'-x"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tX", "'\tX"),
            ("\rX", "'\rX"),
            ("'quoted", "''quoted"),
            ("Ministry of Finance", "Ministry of Finance"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralise(input), expected, "{input:?}");
        }
    }

    /// Feed `recomputed` to a comparing sink, in pieces of `piece` bytes,
    /// against `on_disk` (None: not intact, so not compared).
    fn compare(on_disk: Option<&[u8]>, recomputed: &[u8], piece: usize) -> Compared {
        let dir = tempfile::tempdir().unwrap();
        let mut intact = BTreeSet::new();
        if let Some(bytes) = on_disk {
            std::fs::write(dir.path().join("f.csv"), bytes).unwrap();
            intact.insert("f.csv".to_string());
        }
        let mut sink = CompareSink::new(dir.path(), intact);
        sink.start("f.csv").unwrap();
        for chunk in recomputed.chunks(piece) {
            sink.write(chunk).unwrap();
        }
        sink.finish().unwrap();
        assert_eq!(sink.done.len(), 1);
        sink.done.remove(0).1
    }

    #[test]
    fn comparing_sink_names_the_first_difference() {
        let text = b"a,b\n1,2\n3,4\n";
        for piece in [1, 3, 64] {
            assert_eq!(compare(Some(text), text, piece), Compared::Same);
            let differs = |at: &str| Compared::Differs(at.to_string());
            // A changed byte on the third line.
            assert_eq!(
                compare(Some(b"a,b\n1,2\n3,5\n"), text, piece),
                differs("byte 10 (line 3)")
            );
            // The file on disk is longer, or shorter, than the recomputed one.
            assert_eq!(
                compare(Some(b"a,b\n1,2\n3,4\nextra\n"), text, piece),
                differs("byte 12 (line 4)")
            );
            assert_eq!(
                compare(Some(b"a,b\n1,2\n"), text, piece),
                differs("byte 8 (line 3)")
            );
            assert_eq!(compare(Some(b""), text, piece), differs("byte 0 (line 1)"));
            assert_eq!(compare(None, text, piece), Compared::Skipped);
        }
    }

    proptest::proptest! {
        /// Whatever the two files and the piece size, the comparing sink
        /// names the first byte where they differ (the shorter one's length
        /// when one is a prefix of the other) and its line.
        #[test]
        fn comparing_sink_agrees_with_a_whole_file_comparison(
            on_disk in proptest::collection::vec(proptest::sample::select(b"ab\n".to_vec()), 0..40),
            recomputed in proptest::collection::vec(proptest::sample::select(b"ab\n".to_vec()), 0..40),
            piece in 1usize..8,
        ) {
            let at = on_disk
                .iter()
                .zip(&recomputed)
                .position(|(a, b)| a != b)
                .unwrap_or(on_disk.len().min(recomputed.len()));
            let expected = if on_disk == recomputed {
                Compared::Same
            } else {
                let lines = on_disk[..at].iter().filter(|&&b| b == b'\n').count();
                Compared::Differs(format!("byte {at} (line {})", lines + 1))
            };
            proptest::prop_assert_eq!(compare(Some(&on_disk), &recomputed, piece), expected);
        }
    }

    #[test]
    fn writing_the_files_reports_each_by_name() {
        let dir = tempfile::tempdir().unwrap();
        crate::demo::run(dir.path()).unwrap();
        let ledger = Ledger::open_read_only(&dir.path().join("ledger.sqlite")).unwrap();
        let mut reads = Vec::new();
        let h = load_at_head(&ledger, crate::demo::FUND, None, None, &mut |s, d, t| {
            reads.push((s.to_string(), d, t))
        })
        .unwrap();
        let entries = ledger.store().count().unwrap();
        assert!(reads
            .iter()
            .all(|(s, _, t)| s == "reading" && *t == entries));
        assert_eq!(reads.last().map(|r| r.1), Some(entries));
        let mut calls: Vec<(String, u64, u64)> = Vec::new();
        let mut sink = MemorySink::default();
        write_csv_files(&h, false, &mut sink, &mut |s, d, t| {
            calls.push((s.to_string(), d, t))
        })
        .unwrap();
        // The names reported are the files written, and the schema's tables.
        let written: Vec<&str> = sink.files.iter().map(|f| f.name.as_str()).collect();
        let tables: Vec<&str> = TABLES.iter().map(|t| t.file).collect();
        assert_eq!(written, tables);
        let total = h.entries.len() as u64;
        let mut names: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
        names.dedup();
        let files: Vec<&str> = CSV_FILES.iter().map(|(t, _)| t.file).collect();
        assert_eq!(names, files);
        assert_eq!(files, written);
        for file in files {
            let of: Vec<u64> = calls.iter().filter(|c| c.0 == file).map(|c| c.1).collect();
            assert_eq!((of.first(), of.last()), (Some(&0), Some(&total)), "{file}");
            assert!(of.windows(2).all(|w| w[0] <= w[1]), "{file}: {of:?}");
        }
        assert!(calls.iter().all(|c| c.2 == total));
    }

    #[test]
    fn directory_sink_lists_size_and_hash_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = DirSink::new(dir.path());
        sink.start("a.csv").unwrap();
        sink.write(b"x,y\n").unwrap();
        sink.write(b"1,2\n").unwrap();
        sink.finish().unwrap();
        write_file(&mut sink, "b.csv", b"").unwrap();
        let bytes = std::fs::read(dir.path().join("a.csv")).unwrap();
        assert_eq!(bytes, b"x,y\n1,2\n");
        let listed = |name: &str, bytes: &[u8]| ManifestFile {
            name: name.into(),
            size: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        };
        assert_eq!(
            sink.files,
            vec![listed("a.csv", &bytes), listed("b.csv", b"")]
        );
        // A name that could leave the directory, or a file written twice,
        // is refused.
        assert!(sink.start("../x.csv").is_err());
        assert!(sink.start("a.csv").is_err());
    }

    #[test]
    fn numeric_cells_are_never_neutralised() {
        let mut sink = MemorySink::default();
        let mut s = Sheet::new(&COMMITMENTS, false, &mut sink).unwrap();
        s.row(vec![
            "5".into(),
            "reversal".into(),
            "2024-01-01".into(),
            "p".into(),
            "-100.00".into(),
            "0.00".into(),
            "USD".into(),
            "4".into(),
            String::new(),
            "-typo".into(),
        ])
        .unwrap();
        s.finish().unwrap();
        let text = String::from_utf8(sink.files.remove(0).bytes).unwrap();
        assert!(
            text.ends_with("5,reversal,2024-01-01,p,-100.00,0.00,USD,4,,'-typo\n"),
            "{text}"
        );
    }

    #[test]
    fn excel_flavour_has_bom_and_crlf() {
        let mut sink = MemorySink::default();
        let mut s = Sheet::new(&PARTNERS, true, &mut sink).unwrap();
        s.row(vec![
            "p".into(),
            "Name, with \"quotes\"".into(),
            "private".into(),
            "private".into(),
            "US".into(),
            String::new(),
            "2024-01-01".into(),
            "3".into(),
        ])
        .unwrap();
        s.finish().unwrap();
        let bytes = sink.files.remove(0).bytes;
        assert!(bytes.starts_with(UTF8_BOM));
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        assert_eq!(
            text,
            "partner,legal_name,partner_type,money_group,country,lei,registered_on,registered_seq\r\n\
             p,\"Name, with \"\"quotes\"\"\",private,private,US,,2024-01-01,3\r\n"
        );
    }

    fn sample_manifest() -> Manifest {
        Manifest {
            generator: "fundledger 0.1.0".into(),
            kind: ExportKind::Csv,
            origin: "ledger.example.org/fund".into(),
            tree_size: 12,
            root_hash: [7; 32],
            head_hash: [0xab; 32],
            fund: "f1".into(),
            as_of: Some(parse_date("2024-06-30").unwrap()),
            from: None,
            excel: false,
            signer: [1; 32],
            files: vec![
                ManifestFile {
                    name: "a.csv".into(),
                    size: 10,
                    sha256: [2; 32],
                },
                ManifestFile {
                    name: "b.csv".into(),
                    size: 0,
                    sha256: [3; 32],
                },
            ],
        }
    }

    #[test]
    fn manifest_round_trips_and_rejects_variants() {
        let m = sample_manifest();
        let body = m.to_body();
        assert_eq!(Manifest::parse(&body), Ok(m.clone()));
        let bad = [
            body.replace("tree_size 12", "tree_size 012"),
            body.replace("tree_size 12", "tree_size 0"),
            body.replace("excel false", "excel no"),
            body.replace("as_of 2024-06-30", "as_of 2024-6-30"),
            body.replace("file a.csv", "file ../a.csv"),
            body.replace("file a.csv", "file MANIFEST"),
            body.replace("file b.csv", "file a.csv"),
            body.replace("kind csv\n", ""),
            body.replace("fund f1\n", "fund f1\nfund f2\n"),
            body.replace(MANIFEST_HEADER, "fundledger export manifest v2"),
            body.replace(
                &hex::encode([0xabu8; 32]),
                &hex::encode([0xabu8; 32]).to_uppercase(),
            ),
            format!("{body}extra line\n"),
            body.trim_end().to_string(),
        ];
        for b in bad {
            assert!(Manifest::parse(&b).is_err(), "accepted:\n{b}");
        }
    }

    #[test]
    fn manifest_is_never_a_checkpoint() {
        let body = sample_manifest().to_body();
        assert!(crate::note::Checkpoint::parse_body(&body).is_err());
    }

    #[test]
    fn schema_tables_are_consistent() {
        let mut names = BTreeSet::new();
        for t in TABLES {
            assert!(is_valid_file_name(t.file), "{}", t.file);
            assert!(names.insert(t.file), "{} listed twice", t.file);
            let mut columns = BTreeSet::new();
            for c in t.columns {
                assert!(
                    columns.insert(c.name),
                    "{}: column {} twice",
                    t.file,
                    c.name
                );
            }
        }
        let sorted: Vec<&str> = TABLES.iter().map(|t| t.file).collect();
        let mut again = sorted.clone();
        again.sort();
        assert_eq!(sorted, again, "TABLES must be in file-name order");
    }
}
