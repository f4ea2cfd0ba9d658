//! A fund's history at a fixed ledger state: the one scan that the CSV
//! exports ([`crate::export`]), the regulator's report ([`crate::report`])
//! and the hledger journal ([`crate::hledger`]) are computed from.
//!
//! The ledger state is named by a tree size N: only entries with seq < N
//! are read, so an export made at N can be recomputed byte for byte after
//! the ledger has grown. Within that prefix, the entries of one fund whose
//! effective date is on or before the as-of date are *in scope* (the same
//! rule as [`crate::query`]). Everything is derived from the signed record
//! bytes: the postings are the signed ones, the entry hash is recomputed
//! from the content, and the RFC 9162 root over the prefix is recomputed
//! from the records as they are read.
//!
//! This module does no I/O besides reading the store, and no float ever
//! holds money here: amounts are `Decimal`, only IRR iterates in f64 (in
//! [`crate::xirr`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, FundCreate, PartnerAdd, Side, StartupAdd};
use crate::ledger::{decode_row, Ledger};
use crate::money::{self, Currency};
use crate::query::{ratio, IRR_PLACES, PUBLIC_TYPES, RATIO_PLACES};
use crate::state::{parse_date, Account, AccountKey};

/// The ledger state an export or report describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerState {
    /// The ledger's origin (from the genesis entry).
    pub origin: String,
    /// Number of entries described: seq 0 to tree_size - 1.
    pub tree_size: u64,
    /// RFC 9162 Merkle root over those entries' records.
    pub root_hash: [u8; 32],
    /// Entry hash of entry tree_size - 1.
    pub head_hash: [u8; 32],
    /// Signatures carried by those entries.
    pub signatures: u64,
}

/// What to read: one fund, at one ledger state, up to an as-of date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub fund: String,
    /// Read entries with seq < tree_size only.
    pub tree_size: u64,
    /// Entries whose effective date is after this are out of scope.
    pub as_of: Option<time::Date>,
    /// Start of the reporting period (row listings and period flows).
    pub from: Option<time::Date>,
}

/// An entity registration and the entry that made it.
#[derive(Debug, Clone)]
pub struct Registered<T> {
    pub seq: u64,
    pub value: T,
}

/// One entry of the fund, in scope.
#[derive(Debug, Clone)]
pub struct FundEntry {
    pub seq: u64,
    pub entry_hash: [u8; 32],
    pub recorded_at_unix_ms: i64,
    pub date: time::Date,
    /// The entry's own event (a `Reversal` for a reversal).
    pub event: Arc<Event>,
    /// The signed postings, in order: account key and debit-positive
    /// amount. Each was written in the fund's currency, above zero and in
    /// canonical form, so the written posting is exactly the account key,
    /// the side of the amount's sign and [`History::amount`] of its
    /// magnitude (as [`FundEntry::postings`] gives them). Each key is held
    /// once per history, shared by every posting to it.
    pub amounts: Box<[(Arc<AccountKey>, Decimal)]>,
    /// For a reversal: the event it negates (otherwise the entry's own,
    /// shared: an event is held once however many places name it).
    pub base: Arc<Event>,
    /// For a reversal: the sequence number of the entry it negates.
    pub reverses: Option<u64>,
    /// The reversal (in scope) that negates this entry, if any.
    pub reversed_by: Option<u64>,
    /// The fund's call number, for a call or a reversal of a call.
    pub call_number: Option<u64>,
}

impl FundEntry {
    /// +1 for an entry, -1 for a reversal (its base event is negated).
    pub fn sign(&self) -> Decimal {
        if self.reverses.is_some() {
            Decimal::NEGATIVE_ONE
        } else {
            Decimal::ONE
        }
    }

    /// The entry's kind (`reversal` for reversals).
    pub fn kind(&self) -> &'static str {
        self.event.kind()
    }

    /// The kind of the event this entry books or negates.
    pub fn base_kind(&self) -> &'static str {
        self.base.kind()
    }

    /// Memo of the event, or the reason of a reversal.
    pub fn memo(&self) -> Option<&str> {
        match &*self.event {
            Event::Commitment(e) | Event::CommitmentReduce(e) => e.memo.as_deref(),
            Event::Call(e) => e.memo.as_deref(),
            Event::Contribution(e) => e.memo.as_deref(),
            Event::Investment(e) => e.memo.as_deref(),
            Event::Valuation(e) => e.memo.as_deref(),
            Event::Realization(e) => e.memo.as_deref(),
            Event::Distribution(e) | Event::Fee(e) | Event::Expense(e) => e.memo.as_deref(),
            Event::Reversal(r) => Some(&r.reason),
            _ => None,
        }
    }

    /// The signed postings as written: key, side and amount (above zero).
    pub fn postings(&self) -> impl Iterator<Item = (&AccountKey, Side, Decimal)> {
        self.amounts.iter().map(|(key, amount)| {
            if amount.is_sign_negative() {
                (&**key, Side::Credit, -*amount)
            } else {
                (&**key, Side::Debit, *amount)
            }
        })
    }

    /// Whether the entry is in the period starting at `from`.
    pub fn in_period(&self, from: Option<time::Date>) -> bool {
        from.is_none_or(|f| self.date >= f)
    }
}

/// Money figures of one partner (or a sum of partners), as of a date.
/// Gains are positive when they are gains; fees, expenses and
/// distributions are positive amounts that reduce the capital account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub committed: Decimal,
    pub called: Decimal,
    pub outstanding: Decimal,
    pub distributed: Decimal,
    pub management_fees: Decimal,
    pub fund_expenses: Decimal,
    pub realized_gain: Decimal,
    pub unrealized_gain: Decimal,
}

impl Figures {
    pub fn paid_in(&self) -> Decimal {
        self.called - self.outstanding
    }
    pub fn unfunded(&self) -> Decimal {
        self.committed - self.called
    }
    /// The capital account: paid-in less distributions, fees and expenses,
    /// plus realized and unrealized gains (schema/ACCOUNTS.md).
    pub fn nav(&self) -> Decimal {
        self.paid_in() - self.distributed - self.management_fees - self.fund_expenses
            + self.realized_gain
            + self.unrealized_gain
    }
    pub fn add(&mut self, o: &Figures) {
        self.committed += o.committed;
        self.called += o.called;
        self.outstanding += o.outstanding;
        self.distributed += o.distributed;
        self.management_fees += o.management_fees;
        self.fund_expenses += o.fund_expenses;
        self.realized_gain += o.realized_gain;
        self.unrealized_gain += o.unrealized_gain;
    }
    /// Figures of `partner` from debit-positive balances.
    pub fn of(balances: &BTreeMap<AccountKey, Decimal>, partner: &str) -> Figures {
        let b = |a| balance(balances, a, partner);
        Figures {
            committed: -b(Account::Commitment),
            called: b(Account::Called),
            outstanding: b(Account::CallReceivable),
            distributed: b(Account::Distributions),
            management_fees: b(Account::ManagementFees),
            fund_expenses: b(Account::FundExpenses),
            realized_gain: -b(Account::RealizedGain),
            unrealized_gain: -b(Account::UnrealizedGain),
        }
    }
}

/// DPI, RVPI, TVPI (fractions with [`RATIO_PLACES`] places) and IRR (a
/// fraction with [`IRR_PLACES`] places), as `position` computes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Performance {
    pub dpi: Option<String>,
    pub rvpi: Option<String>,
    pub tvpi: Option<String>,
    pub irr: Option<String>,
}

/// A balance from a map of debit-positive balances.
pub fn balance(
    balances: &BTreeMap<AccountKey, Decimal>,
    account: Account,
    dimension: &str,
) -> Decimal {
    balances
        .get(&AccountKey::new(account, dimension))
        .copied()
        .unwrap_or_default()
}

/// public, private or other, for a partner type.
pub fn money_group(partner_type: &str) -> &'static str {
    if PUBLIC_TYPES.contains(&partner_type) {
        "public"
    } else if partner_type == "private" {
        "private"
    } else {
        "other"
    }
}

/// The three groups in report order.
pub const MONEY_GROUPS: [&str; 3] = ["public", "private", "other"];

/// A fund's history at one ledger state.
#[derive(Debug, Clone)]
pub struct History {
    pub state: LedgerState,
    pub scope: Scope,
    pub fund: Registered<FundCreate>,
    pub currency: Currency,
    /// The as-of date given, or else the latest effective date of the
    /// fund's entries in the prefix (as `position` does).
    pub report_date: time::Date,
    /// Every partner registered in the prefix.
    pub partners: BTreeMap<String, Registered<PartnerAdd>>,
    /// Every startup registered in the prefix.
    pub startups: BTreeMap<String, Registered<StartupAdd>>,
    /// The fund's entries in scope (fund.create excluded), in seq order.
    pub entries: Vec<FundEntry>,
}

/// The fund's entries of the whole prefix, before the date filter: what a
/// reversal may point at, and each call's number. Indexed by sequence
/// number (8 bytes per entry of the prefix, where a map cost about 60 per
/// fund entry at a million).
#[derive(Default)]
struct Seen {
    /// The event of each of the fund's entries other than reversals.
    events: Vec<Option<Arc<Event>>>,
    /// Each call's number, by the call's sequence number.
    call_numbers: HashMap<u64, u64>,
}

impl Seen {
    fn event(&self, seq: u64) -> Option<&Arc<Event>> {
        usize::try_from(seq)
            .ok()
            .and_then(|i| self.events.get(i))
            .and_then(Option::as_ref)
    }

    fn insert(&mut self, seq: u64, event: Arc<Event>, call_number: Option<u64>) -> Result<()> {
        let i = usize::try_from(seq).map_err(|_| internal("sequence number out of range"))?;
        if self.events.len() <= i {
            self.events.resize(i + 1, None);
        }
        self.events[i] = Some(event);
        if let Some(number) = call_number {
            self.call_numbers.insert(seq, number);
        }
        Ok(())
    }
}

/// The fund an entry belongs to: its event's, or for a reversal, that of
/// the entry it negates (None when that is not one of the fund's).
fn fund_of_event<'a>(event: &'a Event, seen: &'a Seen) -> Option<&'a str> {
    match event {
        Event::Reversal(r) => seen.event(r.seq).and_then(|e| e.fund()),
        other => other.fund(),
    }
}

fn internal(message: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::Verification,
        format!("internal consistency check failed: {}", message.into()),
    )
    .with_hint(
        "run `fundledger verify`; if it reports the ledger intact, this is a bug in fundledger",
    )
}

/// Entries between two progress calls while a history is read or written.
pub const PROGRESS_EVERY: u64 = 4096;

/// Progress of a long pass over a fund's history, for a display: the stage
/// (`"reading"` while the entries are read; then what is written or
/// compared: a CSV file's name, or `"journal"` for the hledger journal),
/// and how many of the stage's entries are done of its total. Called every
/// [`PROGRESS_EVERY`] entries or so.
pub type Progress<'a> = dyn FnMut(&str, u64, u64) + 'a;

impl History {
    /// Read the fund's history at `scope.tree_size` (see the module docs).
    /// `progress` is called with stage `reading`, the entries read so far
    /// and the total.
    pub fn load(ledger: &Ledger, scope: &Scope, progress: &mut Progress<'_>) -> Result<History> {
        if scope.tree_size == 0 {
            return Err(Error::input("a tree size of 0 describes no ledger state"));
        }
        if let (Some(from), Some(as_of)) = (scope.from, scope.as_of) {
            if from > as_of {
                return Err(Error::input(format!(
                    "--from {from} is after --as-of {as_of}"
                )));
            }
        }
        // The root only: the right edge, not the tree (64 bytes per entry).
        let mut tree = crate::merkle::RightEdge::default();
        let mut completed = Vec::new();
        let mut expected_seq = 0u64;
        let mut origin = String::new();
        let mut head_hash = [0u8; 32];
        let mut signatures = 0u64;
        let mut fund: Option<(Registered<FundCreate>, time::Date)> = None;
        let mut partners = BTreeMap::new();
        let mut startups = BTreeMap::new();
        let mut seen = Seen::default();
        let mut calls = 0u64;
        let mut last_date: Option<time::Date> = None;
        let mut entries: Vec<FundEntry> = Vec::new();
        let mut keys: HashMap<AccountKey, Arc<AccountKey>> = HashMap::new();
        let mut currency: Option<Currency> = None;

        ledger.store().scan(0, Some(scope.tree_size), |row| {
            if row.seq != expected_seq as i64 {
                return Err(Error::new(
                    ErrorKind::Verification,
                    format!("expected entry {expected_seq}, found entry {}", row.seq),
                )
                .with_hint("run `fundledger verify`"));
            }
            if expected_seq % PROGRESS_EVERY == 0 {
                progress("reading", expected_seq, scope.tree_size);
            }
            tree.push(crate::merkle::leaf_hash(&row.record), &mut completed);
            let (record, body) = decode_row(&row)?;
            let seq = record.content.seq;
            let entry_hash = record.content.hash();
            if seq == 0 {
                origin = record.content.origin.clone();
            }
            head_hash = entry_hash;
            signatures += record.signatures.len() as u64;
            expected_seq += 1;

            match &body.event {
                Event::PartnerAdd(p) => {
                    partners.insert(
                        p.partner.clone(),
                        Registered {
                            seq,
                            value: p.clone(),
                        },
                    );
                }
                Event::StartupAdd(s) => {
                    startups.insert(
                        s.startup.clone(),
                        Registered {
                            seq,
                            value: s.clone(),
                        },
                    );
                }
                _ => {}
            }
            if fund_of_event(&body.event, &seen) != Some(scope.fund.as_str()) {
                return Ok(true);
            }
            let date =
                parse_date(body.event.date().unwrap_or_default()).map_err(|e| e.at_seq(seq))?;
            let mut call_number = None;
            match &body.event {
                Event::FundCreate(f) => {
                    let cur = Currency::from_code(&f.currency)
                        .map_err(|e| Error::format(e.to_string()).at_seq(seq))?;
                    currency = Some(cur);
                    fund = Some((
                        Registered {
                            seq,
                            value: f.clone(),
                        },
                        date,
                    ));
                }
                Event::Call(_) => {
                    calls += 1;
                    call_number = Some(calls);
                }
                Event::Reversal(r) => {
                    call_number = seen.call_numbers.get(&r.seq).copied();
                }
                _ => {}
            }
            let event = Arc::new(body.event);
            if !matches!(*event, Event::Reversal(_)) {
                seen.insert(seq, event.clone(), call_number)?;
            }
            if scope.as_of.is_some_and(|a| date > a) {
                return Ok(true);
            }
            last_date = last_date.max(Some(date));
            if matches!(*event, Event::FundCreate(_)) {
                return Ok(true);
            }
            let Some(cur) = currency else {
                return Err(Error::format(format!(
                    "fund {} has an entry before its creation",
                    scope.fund
                ))
                .at_seq(seq));
            };
            let mut amounts = Vec::with_capacity(body.postings.len());
            for p in &body.postings {
                let key = AccountKey::of_posting(p).map_err(|e| e.at_seq(seq))?;
                let key = Arc::clone(
                    keys.entry(key)
                        .or_insert_with_key(|key| Arc::new(key.clone())),
                );
                if p.currency != cur.code() {
                    return Err(Error::format(format!(
                        "posting in {} in a {} fund",
                        p.currency,
                        cur.code()
                    ))
                    .at_seq(seq)
                    .with_hint("run `fundledger verify`"));
                }
                let amount = money::parse_canonical_amount(&p.amount, cur)
                    .map_err(|e| Error::format(e.to_string()).at_seq(seq))?;
                if amount <= Decimal::ZERO {
                    return Err(Error::format(format!(
                        "posting amount {} is not above zero",
                        p.amount
                    ))
                    .at_seq(seq)
                    .with_hint("run `fundledger verify`"));
                }
                amounts.push((
                    key,
                    if p.side == Side::Debit {
                        amount
                    } else {
                        -amount
                    },
                ));
            }
            let (base, reverses) = match &*event {
                Event::Reversal(r) => {
                    let original = seen.event(r.seq).ok_or_else(|| {
                        Error::format(format!("reversal of unknown entry {}", r.seq)).at_seq(seq)
                    })?;
                    (original.clone(), Some(r.seq))
                }
                _ => (event.clone(), None),
            };
            entries.push(FundEntry {
                seq,
                entry_hash,
                recorded_at_unix_ms: record.content.recorded_at_unix_ms,
                date,
                event,
                amounts: amounts.into_boxed_slice(),
                base,
                reverses,
                reversed_by: None,
                call_number,
            });
            Ok(true)
        })?;
        progress("reading", expected_seq, scope.tree_size);
        if expected_seq != scope.tree_size {
            return Err(Error::new(
                ErrorKind::Verification,
                format!(
                    "the ledger has {expected_seq} entries, fewer than the tree size {}",
                    scope.tree_size
                ),
            )
            .with_hint(
                "this ledger is not the one the export was made from, or it was cut short",
            ));
        }
        let root_hash = tree.root();
        let (fund, created) = fund.ok_or_else(|| {
            Error::input(format!(
                "unknown fund {:?} at tree size {}",
                scope.fund, scope.tree_size
            ))
            .with_hint("check --fund; `fundledger position` lists what the ledger holds")
        })?;
        let currency = currency.ok_or_else(|| internal("fund without currency"))?;
        // Link each in-scope reversal to the entry it negates (the entries
        // are in seq order).
        drop(seen);
        let links: Vec<(usize, u64)> = entries
            .iter()
            .filter_map(|e| {
                let r = e.reverses?;
                let i = entries.binary_search_by_key(&r, |x| x.seq).ok()?;
                Some((i, e.seq))
            })
            .collect();
        for (i, by) in links {
            entries[i].reversed_by = Some(by);
        }
        Ok(History {
            state: LedgerState {
                origin,
                tree_size: scope.tree_size,
                root_hash,
                head_hash,
                signatures,
            },
            scope: scope.clone(),
            report_date: scope.as_of.or(last_date).unwrap_or(created),
            fund,
            currency,
            partners,
            startups,
            entries,
        })
    }

    /// Format an amount in the fund's currency, canonically.
    pub fn amount(&self, value: Decimal) -> String {
        money::format_amount(value, self.currency)
    }

    /// Debit-positive balances over the in-scope entries `keep` selects.
    pub fn balances_where(
        &self,
        keep: impl Fn(&FundEntry) -> bool,
    ) -> BTreeMap<AccountKey, Decimal> {
        let mut out: BTreeMap<AccountKey, Decimal> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| keep(e)) {
            for (key, amount) in &e.amounts {
                *out.entry(AccountKey::clone(key)).or_default() += amount;
            }
        }
        out
    }

    /// Balances as of the report date.
    pub fn balances(&self) -> BTreeMap<AccountKey, Decimal> {
        self.balances_where(|_| true)
    }

    /// Balances over entries dated on or before `date`.
    pub fn balances_at(&self, date: time::Date) -> BTreeMap<AccountKey, Decimal> {
        self.balances_where(|e| e.date <= date)
    }

    /// Partners with a commitment account in the fund (in scope), in id order.
    pub fn partner_ids(&self) -> Vec<String> {
        let mut ids = BTreeSet::new();
        for e in &self.entries {
            for (k, _) in &e.amounts {
                if k.account == Account::Commitment {
                    ids.insert(k.dimension.clone());
                }
            }
        }
        ids.into_iter().collect()
    }

    /// The partner type of a partner ("" if it was never registered).
    pub fn partner_type(&self, partner: &str) -> &str {
        self.partners
            .get(partner)
            .map(|p| p.value.partner_type.as_str())
            .unwrap_or("")
    }

    /// The legal name of a partner ("" if it was never registered).
    pub fn legal_name(&self, partner: &str) -> &str {
        self.partners
            .get(partner)
            .map(|p| p.value.legal_name.as_str())
            .unwrap_or("")
    }

    /// Figures per partner as of the report date.
    pub fn figures(&self) -> BTreeMap<String, Figures> {
        let balances = self.balances();
        self.partner_ids()
            .into_iter()
            .map(|p| {
                let f = Figures::of(&balances, &p);
                (p, f)
            })
            .collect()
    }

    /// The sum of the figures of the partners `keep` selects.
    pub fn total(figures: &BTreeMap<String, Figures>, keep: impl Fn(&str) -> bool) -> Figures {
        let mut sum = Figures::default();
        for (p, f) in figures {
            if keep(p) {
                sum.add(f);
            }
        }
        sum
    }

    /// Fund NAV from the asset side: cash + investments + fair value adjustments.
    pub fn nav_from_assets(balances: &BTreeMap<AccountKey, Decimal>) -> Decimal {
        balances
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.account,
                    Account::Cash | Account::Investments | Account::FairValueAdjustment
                )
            })
            .map(|(_, v)| *v)
            .sum()
    }

    /// Dated cash flows of the partners `keep` selects, from their side:
    /// paid-in capital negative, distributions positive, one flow per entry
    /// and partner (as `position` computes IRR).
    pub fn partner_flows(&self, keep: impl Fn(&str) -> bool) -> Vec<(time::Date, Decimal)> {
        let mut out = Vec::new();
        for e in &self.entries {
            let mut per: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
            for (k, v) in &e.amounts {
                match k.account {
                    Account::Called => per.entry(&k.dimension).or_default().0 += v,
                    Account::CallReceivable => per.entry(&k.dimension).or_default().0 -= v,
                    Account::Distributions => per.entry(&k.dimension).or_default().1 += v,
                    _ => {}
                }
            }
            for (p, (paid, dist)) in per {
                if keep(p) && (!paid.is_zero() || !dist.is_zero()) {
                    out.push((e.date, dist - paid));
                }
            }
        }
        out
    }

    /// DPI, RVPI, TVPI and IRR of figures whose flows `keep` selects, with
    /// the NAV as the final flow on the report date.
    pub fn performance(&self, figures: &Figures, keep: impl Fn(&str) -> bool) -> Performance {
        let paid = figures.paid_in();
        let nav = figures.nav();
        let mut flows = self.partner_flows(keep);
        if !nav.is_zero() {
            flows.push((self.report_date, nav));
        }
        Performance {
            dpi: ratio(figures.distributed, paid, RATIO_PLACES),
            rvpi: ratio(nav, paid, RATIO_PLACES),
            tvpi: ratio(figures.distributed + nav, paid, RATIO_PLACES),
            irr: crate::xirr::xirr(&flows).map(|r| crate::xirr::format_rate(r, IRR_PLACES)),
        }
    }

    /// Check the books add up: debits equal credits, the partners' capital
    /// equals the assets, and the memorandum identity holds. A failure is a
    /// ledger that breaks its own rules (verify names the entry) or a bug.
    pub fn check_consistency(&self) -> Result<()> {
        let balances = self.balances();
        let total: Decimal = balances.values().copied().sum();
        if !total.is_zero() {
            return Err(internal(format!(
                "the balances of fund {} sum to {total}",
                self.scope.fund
            )));
        }
        let figures = self.figures();
        let fund = History::total(&figures, |_| true);
        let from_assets = History::nav_from_assets(&balances);
        if fund.nav() != from_assets {
            return Err(internal(format!(
                "fund NAV {} differs from cash + investments at fair value {}",
                self.amount(fund.nav()),
                self.amount(from_assets)
            )));
        }
        for (p, f) in &figures {
            let unfunded = balance(&balances, Account::Unfunded, p);
            if f.unfunded() != unfunded {
                return Err(internal(format!(
                    "partner {p}: committed - called != unfunded"
                )));
            }
        }
        Ok(())
    }
}

/// The calendar quarter of a date, like `2024-Q3`.
pub fn quarter(date: time::Date) -> String {
    format!("{}-Q{}", date.year(), (u8::from(date.month()) - 1) / 3 + 1)
}

/// The last day of a date's quarter.
pub fn quarter_end(date: time::Date) -> time::Date {
    let q = (u8::from(date.month()) - 1) / 3;
    let (month, day) = match q {
        0 => (time::Month::March, 31),
        1 => (time::Month::June, 30),
        2 => (time::Month::September, 30),
        _ => (time::Month::December, 31),
    };
    time::Date::from_calendar_date(date.year(), month, day).unwrap_or(date)
}

/// RFC 3339 UTC with milliseconds: `2022-01-03T09:00:00.001Z`.
pub fn format_timestamp_ms(unix_ms: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix_ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters() {
        let d = |s| parse_date(s).unwrap();
        assert_eq!(quarter(d("2024-01-01")), "2024-Q1");
        assert_eq!(quarter(d("2024-06-30")), "2024-Q2");
        assert_eq!(quarter(d("2024-07-01")), "2024-Q3");
        assert_eq!(quarter(d("2024-12-31")), "2024-Q4");
        assert_eq!(quarter_end(d("2024-02-10")), d("2024-03-31"));
        assert_eq!(quarter_end(d("2024-11-10")), d("2024-12-31"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(
            format_timestamp_ms(1_641_200_400_001),
            "2022-01-03T09:00:00.001Z"
        );
        assert_eq!(format_timestamp_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn nav_identity() {
        let f = Figures {
            committed: Decimal::new(1000, 0),
            called: Decimal::new(500, 0),
            outstanding: Decimal::new(100, 0),
            distributed: Decimal::new(50, 0),
            management_fees: Decimal::new(10, 0),
            fund_expenses: Decimal::new(5, 0),
            realized_gain: Decimal::new(20, 0),
            unrealized_gain: Decimal::new(-30, 0),
        };
        assert_eq!(f.paid_in(), Decimal::new(400, 0));
        assert_eq!(f.unfunded(), Decimal::new(500, 0));
        assert_eq!(f.nav(), Decimal::new(325, 0));
    }
}
