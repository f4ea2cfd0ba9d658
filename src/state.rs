//! The ledger's state after each entry, and the rules every entry must obey.
//!
//! One code path serves append and verify: [`State::prepare`] checks an
//! event against the state (keys, entities, accounting rules) and computes
//! the postings it books; [`State::apply`] then advances the state. On
//! append the postings go into the signed body; on verify they are computed
//! again and must equal what the body says. The state holds balances,
//! entities, keys, calls and dated flows: its size grows with those, never
//! with the number of entries.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use base64::Engine;
use ed25519_dalek::VerifyingKey;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::entry::{key_id, KeyId};
use crate::error::{Error, Result};
use crate::event::*;
use crate::money::{self, Currency};
use crate::policy::Policy;
use crate::split::split_pro_rata;

/// The chart of accounts (schema/ACCOUNTS.md). Balances are debit-positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    Cash,
    CallReceivable,
    Investments,
    FairValueAdjustment,
    Capital,
    Distributions,
    RealizedGain,
    UnrealizedGain,
    ManagementFees,
    FundExpenses,
    Commitment,
    Unfunded,
    Called,
}

/// Which dimension an account is kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    None,
    Partner,
    Startup,
}

impl Account {
    pub const ALL: [Account; 13] = [
        Account::Cash,
        Account::CallReceivable,
        Account::Investments,
        Account::FairValueAdjustment,
        Account::Capital,
        Account::Distributions,
        Account::RealizedGain,
        Account::UnrealizedGain,
        Account::ManagementFees,
        Account::FundExpenses,
        Account::Commitment,
        Account::Unfunded,
        Account::Called,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Account::Cash => "cash",
            Account::CallReceivable => "call_receivable",
            Account::Investments => "investments",
            Account::FairValueAdjustment => "fair_value_adjustment",
            Account::Capital => "capital",
            Account::Distributions => "distributions",
            Account::RealizedGain => "realized_gain",
            Account::UnrealizedGain => "unrealized_gain",
            Account::ManagementFees => "management_fees",
            Account::FundExpenses => "fund_expenses",
            Account::Commitment => "commitment",
            Account::Unfunded => "unfunded",
            Account::Called => "called",
        }
    }

    pub fn parse(name: &str) -> Option<Account> {
        Account::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn dimension(self) -> Dimension {
        match self {
            Account::Cash => Dimension::None,
            Account::Investments | Account::FairValueAdjustment => Dimension::Startup,
            _ => Dimension::Partner,
        }
    }

    /// Assets, equity, income/expense, or memorandum (off balance sheet).
    pub fn class(self) -> &'static str {
        match self {
            Account::Cash
            | Account::CallReceivable
            | Account::Investments
            | Account::FairValueAdjustment => "asset",
            Account::Capital | Account::Distributions => "partners_capital",
            Account::RealizedGain
            | Account::UnrealizedGain
            | Account::ManagementFees
            | Account::FundExpenses => "income_expense",
            Account::Commitment | Account::Unfunded | Account::Called => "memorandum",
        }
    }
}

/// An account with its dimension value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountKey {
    pub account: Account,
    /// The partner or startup id; empty for `cash`.
    pub dimension: String,
}

impl AccountKey {
    pub fn new(account: Account, dimension: &str) -> AccountKey {
        AccountKey {
            account,
            dimension: dimension.to_string(),
        }
    }

    /// The dimension as a posting writes it: (partner, startup).
    pub fn partner_and_startup(&self) -> (Option<&str>, Option<&str>) {
        let dimension = Some(self.dimension.as_str());
        match self.account.dimension() {
            Dimension::None => (None, None),
            Dimension::Partner => (dimension, None),
            Dimension::Startup => (None, dimension),
        }
    }

    /// `cash`, `capital:mof`, `investments:acme`.
    pub fn display(&self) -> String {
        if self.dimension.is_empty() {
            self.account.as_str().to_string()
        } else {
            format!("{}:{}", self.account.as_str(), self.dimension)
        }
    }

    /// The account key a posting names, checked against the chart.
    pub fn of_posting(p: &Posting) -> Result<AccountKey> {
        let account = Account::parse(&p.account)
            .ok_or_else(|| Error::format(format!("unknown account {:?}", p.account)))?;
        let dimension = match (account.dimension(), &p.partner, &p.startup) {
            (Dimension::None, None, None) => String::new(),
            (Dimension::Partner, Some(partner), None) => partner.clone(),
            (Dimension::Startup, None, Some(startup)) => startup.clone(),
            _ => {
                return Err(Error::format(format!(
                    "posting to {} has the wrong partner/startup dimension",
                    p.account
                )))
            }
        };
        Ok(AccountKey { account, dimension })
    }
}

/// An account and dimension, owned ([`AccountKey`]) or borrowed: lets the
/// balance maps be searched without building an owned key.
trait KeyRef {
    fn parts(&self) -> (Account, &str);
}

impl KeyRef for AccountKey {
    fn parts(&self) -> (Account, &str) {
        (self.account, &self.dimension)
    }
}

impl KeyRef for (Account, &str) {
    fn parts(&self) -> (Account, &str) {
        *self
    }
}

impl<'a> std::borrow::Borrow<dyn KeyRef + 'a> for AccountKey {
    fn borrow(&self) -> &(dyn KeyRef + 'a) {
        self
    }
}

// Ordered as `AccountKey` derives its order: account, then dimension.
impl PartialEq for dyn KeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyRef + '_ {}

impl PartialOrd for dyn KeyRef + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyRef + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// An enrolled key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: KeyId,
    pub name: String,
    pub public_key: VerifyingKey,
    pub role: String,
    pub partner: Option<String>,
    pub enrolled_seq: u64,
    pub revoked_seq: Option<u64>,
}

impl KeyRecord {
    /// Whether the key may sign entry `seq`: enrolled before it and not
    /// revoked before it.
    pub fn active_at(&self, seq: u64) -> bool {
        self.enrolled_seq < seq && self.revoked_seq.is_none_or(|r| seq <= r)
    }
}

/// One partner's part of a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallShare {
    pub called: Decimal,
    pub paid: Decimal,
}

/// The partners' shares of a call, in partner id order, one per partner
/// with a non-zero share. A sorted slice, not a map: a fund has few
/// partners and many calls, and the partner ids are the fund's shared ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallShares(Box<[(Arc<String>, CallShare)]>);

impl CallShares {
    /// The shares, sorted by partner id (each partner once).
    fn new(mut shares: Vec<(Arc<String>, CallShare)>) -> CallShares {
        shares.sort_by(|a, b| a.0.cmp(&b.0));
        shares.dedup_by(|a, b| a.0 == b.0);
        CallShares(shares.into_boxed_slice())
    }

    fn position(&self, partner: &str) -> Option<usize> {
        self.0
            .binary_search_by(|(p, _)| p.as_str().cmp(partner))
            .ok()
    }

    pub fn get(&self, partner: &str) -> Option<&CallShare> {
        self.position(partner).map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, partner: &str) -> Option<&mut CallShare> {
        self.position(partner).map(|i| &mut self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &CallShare)> {
        self.0.iter().map(|(p, s)| (p.as_ref(), s))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(p, _)| p.as_ref())
    }

    pub fn values(&self) -> impl Iterator<Item = &CallShare> {
        self.0.iter().map(|(_, s)| s)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Index<&str> for CallShares {
    type Output = CallShare;

    fn index(&self, partner: &str) -> &CallShare {
        self.get(partner)
            .unwrap_or_else(|| panic!("no share of partner {partner:?} in the call"))
    }
}

/// A capital call and what has been paid on it.
#[derive(Debug, Clone)]
pub struct CallState {
    /// 1-based: the call's position in its fund's `calls`.
    pub number: u64,
    pub seq: u64,
    /// One of [`CALL_PURPOSES`].
    pub purpose: &'static str,
    /// The notice date.
    pub date: time::Date,
    pub due_date: time::Date,
    pub reversed: bool,
    pub shares: CallShares,
}

/// A fund and its books.
#[derive(Debug, Clone)]
pub struct FundState {
    pub def: FundCreate,
    pub currency: Currency,
    pub created_seq: u64,
    pub balances: BTreeMap<AccountKey, Decimal>,
    pub calls: Vec<CallState>,
    /// Per (partner, effective date): the change in paid-in capital and in
    /// distributions, summed: the dated cash flows of IRR, kept as the
    /// entries are applied so that a position needs no scan.
    pub flows: BTreeMap<(Arc<String>, time::Date), (Decimal, Decimal)>,
    /// The latest effective date of the fund's entries.
    pub last_date: Option<time::Date>,
    /// The partner ids `calls` and `flows` name, each allocated once;
    /// sorted.
    partner_ids: Vec<Arc<String>>,
    /// A cache, not state: per block of the snapshot's calls (see
    /// `snapshot::CALLS_PER_PIECE`), the name of the stored snapshot piece
    /// that encodes it, while the block is unchanged since (so that a
    /// snapshot of a large ledger encodes only the calls that changed).
    /// Set when a snapshot is written in pieces, or decoded from them
    /// (`State::decode_snapshot_in_pieces`). [`State::apply`] forgets a block's name when it changes one of its
    /// calls, and every name when the partner list changes; a state
    /// changed any other way must not be written in pieces.
    call_pieces: Vec<Option<[u8; 32]>>,
}

impl FundState {
    pub fn balance(&self, account: Account, dimension: &str) -> Decimal {
        self.balances
            .get(&(account, dimension) as &dyn KeyRef)
            .copied()
            .unwrap_or_default()
    }

    pub fn cash(&self) -> Decimal {
        self.balance(Account::Cash, "")
    }

    /// Partners with a commitment record in this fund.
    pub fn partners(&self) -> BTreeSet<String> {
        self.partner_keys().map(str::to_string).collect()
    }

    /// Partners with a commitment record in this fund, in order, borrowed.
    fn partner_keys(&self) -> impl Iterator<Item = &str> {
        let first: &dyn KeyRef = &(Account::Commitment, "");
        self.balances
            .range::<dyn KeyRef, _>((std::ops::Bound::Included(first), std::ops::Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.account == Account::Commitment)
            .map(|k| k.dimension.as_str())
    }

    /// Net committed amount (a credit balance, shown positive).
    pub fn committed(&self, partner: &str) -> Decimal {
        -self.balance(Account::Commitment, partner)
    }

    pub fn unfunded(&self, partner: &str) -> Decimal {
        self.balance(Account::Unfunded, partner)
    }

    pub fn called(&self, partner: &str) -> Decimal {
        self.balance(Account::Called, partner)
    }

    pub fn outstanding(&self, partner: &str) -> Decimal {
        self.balance(Account::CallReceivable, partner)
    }

    pub fn paid_in(&self, partner: &str) -> Decimal {
        self.called(partner) - self.outstanding(partner)
    }

    /// Cost of a holding still on the books.
    pub fn cost(&self, startup: &str) -> Decimal {
        self.balance(Account::Investments, startup)
    }

    fn call(&self, number: u64) -> Option<&CallState> {
        number
            .checked_sub(1)
            .and_then(|i| self.calls.get(i as usize))
    }

    /// The fund's shared copy of partner id `id`, added on first use.
    fn intern(&mut self, id: &str) -> Arc<String> {
        match self.partner_ids.binary_search_by(|p| p.as_str().cmp(id)) {
            Ok(i) => self.partner_ids[i].clone(),
            Err(i) => {
                let shared = Arc::new(id.to_string());
                self.partner_ids.insert(i, shared.clone());
                // Calls name partners by position: every block changes.
                self.call_pieces.clear();
                shared
            }
        }
    }

    /// Call `index` (from 0) changed, or was added: forget the name of
    /// its block's snapshot piece.
    fn call_changed(&mut self, index: usize) {
        if let Some(name) = self.call_pieces.get_mut(snapshot::call_block(index)) {
            *name = None;
        }
    }
}

/// Registry changes an entry makes besides its postings.
#[derive(Debug, Clone)]
enum Effect {
    None,
    Genesis(KeyRecord, Option<Policy>),
    Enroll(KeyRecord),
    Revoke(KeyId),
    Rotate {
        old: KeyId,
        new: KeyRecord,
    },
    Policy(Policy),
    Fund(Box<FundState>),
    Partner(PartnerAdd),
    Startup(StartupAdd),
    Call(CallState),
    Contribution {
        call: u64,
        partner: String,
        amount: Decimal,
    },
    Reversal {
        original: u64,
        undo: Box<Effect>,
    },
}

/// A posting as the rules book it: typed, in the fund's currency. Its
/// written form, as the signed body carries it, is a [`Posting`]
/// ([`Prepared::postings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Booked {
    key: AccountKey,
    side: Side,
    /// Above zero, at the currency's scale (once [`State::prepare`] has
    /// checked it).
    amount: Decimal,
}

impl Booked {
    /// A written posting of a fund in `currency`, checked as a written
    /// posting must be: an account of the chart with its dimension, the
    /// fund's currency, a canonical amount.
    fn of_posting(p: &Posting, currency: Currency) -> Result<Booked> {
        let key = AccountKey::of_posting(p)?;
        if p.currency != currency.code() {
            return Err(Error::rule(format!(
                "posting currency {} is not the fund's {}",
                p.currency,
                currency.code()
            )));
        }
        let amount = money::parse_canonical_amount(&p.amount, currency).map_err(money_error)?;
        Ok(Booked {
            key,
            side: p.side,
            amount,
        })
    }

    /// The amount, debit-positive.
    fn signed(&self) -> Decimal {
        match self.side {
            Side::Debit => self.amount,
            Side::Credit => -self.amount,
        }
    }

    /// The written form's members.
    fn written(&self, currency: Currency) -> PostingRef<'_> {
        let (partner, startup) = self.key.partner_and_startup();
        PostingRef {
            account: self.key.account.as_str(),
            partner,
            startup,
            side: self.side,
            amount: AmountRef::Value(self.amount, currency),
            currency: currency.code(),
        }
    }
}

/// What [`State::prepare`] found: the postings the entry books and the
/// registry changes [`State::apply`] will make.
#[derive(Debug, Clone)]
pub struct Prepared {
    booked: Vec<Booked>,
    /// The currency of the fund the postings are in (when there are any).
    currency: Option<Currency>,
    pub fund: Option<String>,
    /// The event's effective date, if it has one.
    pub date: Option<time::Date>,
    effect: Effect,
}

impl Prepared {
    /// The postings in their written form, as the signed body carries them.
    pub fn postings(&self) -> Vec<Posting> {
        let Some(currency) = self.currency else {
            return Vec::new();
        };
        self.booked
            .iter()
            .map(|b| b.written(currency).to_owned())
            .collect()
    }

    /// The canonical JSON of [`Prepared::postings`] (`None` when there are
    /// none), the bytes the signed body carries: what
    /// [`crate::event::encode_postings`] writes, without building the
    /// written postings.
    pub fn encode_postings(&self) -> Option<Vec<u8>> {
        let currency = self.currency?;
        let mut out = Vec::with_capacity(96 * self.booked.len());
        crate::event::write_postings(&mut out, self.booked.iter().map(|b| b.written(currency)));
        Some(out)
    }
}

/// Looks up an earlier entry's kind and body (for reversals).
pub type Lookup<'a> = dyn Fn(u64) -> Result<Option<(String, Body)>> + 'a;

/// The ledger's state after some prefix of the chain.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Sequence number of the last applied entry (None before genesis).
    pub last_seq: Option<u64>,
    pub origin: Option<String>,
    pub keys: BTreeMap<KeyId, KeyRecord>,
    /// The signing policy in force for the next entry.
    pub policy: Policy,
    /// The entry that put `policy` in force (None: the built-in default).
    pub policy_seq: Option<u64>,
    pub funds: BTreeMap<String, FundState>,
    pub partners: BTreeMap<String, PartnerAdd>,
    pub startups: BTreeMap<String, StartupAdd>,
    pub reversed: HashSet<u64>,
}

/// Longest free text (names, notes, memos, reasons), in characters.
pub const TEXT_LEN_MAX: usize = 500;

fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && (id.as_bytes()[0].is_ascii_lowercase() || id.as_bytes()[0].is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::rule(format!(
            "{what} id {id:?} must be 1 to 64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
        )))
    }
}

fn check_text(what: &str, text: &str) -> Result<()> {
    if text.trim().is_empty() || text.chars().count() > TEXT_LEN_MAX {
        return Err(Error::rule(format!(
            "{what} must be 1 to {TEXT_LEN_MAX} characters"
        )));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(Error::rule(format!("{what} contains control characters")));
    }
    Ok(())
}

fn check_memo(memo: &Option<String>) -> Result<()> {
    match memo {
        Some(m) => check_text("memo", m),
        None => Ok(()),
    }
}

/// Parse an ISO 8601 calendar date (YYYY-MM-DD), accepting only that spelling.
pub fn parse_date(text: &str) -> Result<time::Date> {
    // Exactly ten bytes: four, two and two ASCII digits, dashes between.
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = (b.len() == 10 && b[4] == b'-' && b[7] == b'-')
        .then(|| Some((digits(0..4)?, digits(5..7)?, digits(8..10)?)))
        .flatten()
        .filter(|(year, _, _)| (1900..=2200).contains(year))
        .and_then(|(year, month, day)| {
            let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
            time::Date::from_calendar_date(year as i32, month, u8::try_from(day).ok()?).ok()
        });
    date.ok_or_else(|| {
        Error::rule(format!(
            "date {text:?} is not a calendar date in the form YYYY-MM-DD"
        ))
    })
}

fn check_country(code: &str) -> Result<()> {
    if crate::country::is_alpha2(code) {
        Ok(())
    } else {
        Err(Error::rule(format!(
            "country {code:?} is not an ISO 3166-1 alpha-2 code (like AE, US, FR)"
        )))
    }
}

/// ISO 17442 LEI: 18 upper-case alphanumerics and two check digits (mod 97 = 1).
pub fn check_lei(lei: &str) -> Result<()> {
    let bad = || {
        Error::rule(format!(
            "LEI {lei:?} is not a valid ISO 17442 legal entity identifier"
        ))
    };
    if lei.len() != 20
        || !lei
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return Err(bad());
    }
    let mut rem: u32 = 0;
    for b in lei.bytes() {
        let v = if b.is_ascii_digit() {
            (b - b'0') as u32
        } else {
            (b - b'A') as u32 + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    if rem == 1 {
        Ok(())
    } else {
        Err(bad())
    }
}

fn money_error(e: impl std::fmt::Display) -> Error {
    Error::rule(e.to_string())
}

fn posting(account: Account, dimension: &str, side: Side, amount: Decimal) -> Booked {
    Booked {
        key: AccountKey::new(account, dimension),
        side,
        amount,
    }
}

/// Postings for `amount` split across partners into `account`, on `side`.
fn split_postings(out: &mut Vec<Booked>, account: Account, side: Side, shares: &[(&str, Decimal)]) {
    for (partner, share) in shares {
        if !share.is_zero() {
            out.push(posting(account, partner, side, *share));
        }
    }
}

impl State {
    /// The origin of the ledger (from genesis).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    pub fn fund(&self, id: &str) -> Result<&FundState> {
        self.funds.get(id).ok_or_else(|| {
            Error::rule(format!("unknown fund {id:?}"))
                .with_hint("create it with `fundledger fund create` or check the id")
        })
    }

    fn known_partner(&self, id: &str) -> Result<&PartnerAdd> {
        self.partners.get(id).ok_or_else(|| {
            Error::rule(format!("unknown partner {id:?}"))
                .with_hint("add it with `fundledger partner add` or check the id")
        })
    }

    fn known_startup(&self, id: &str) -> Result<&StartupAdd> {
        self.startups.get(id).ok_or_else(|| {
            Error::rule(format!("unknown startup {id:?}"))
                .with_hint("add it with `fundledger startup add` or check the id")
        })
    }

    /// Parse an event amount: canonical, in the fund's currency.
    fn amount(&self, fund: &FundState, amount: &str, currency: &str) -> Result<Decimal> {
        if currency != fund.currency.code() {
            return Err(Error::rule(format!(
                "currency {currency} is not the currency of fund {} ({})",
                fund.def.fund,
                fund.currency.code()
            )));
        }
        money::parse_canonical_amount(amount, fund.currency).map_err(|e| {
            // Say what to write instead when the value itself is fine.
            match money::parse_amount(amount, fund.currency) {
                Ok(value) => Error::rule(format!(
                    "amount {amount:?} must be written with exactly {} decimal places for {}: {}",
                    fund.currency.minor_units(),
                    fund.currency.code(),
                    money::format_amount(value, fund.currency)
                )),
                Err(parse) => Error::rule(parse.to_string()).with_hint(e.to_string()),
            }
        })
    }

    fn positive(&self, fund: &FundState, amount: &str, currency: &str) -> Result<Decimal> {
        let value = self.amount(fund, amount, currency)?;
        if value <= Decimal::ZERO {
            return Err(Error::rule(format!(
                "amount must be above zero, found {amount}"
            )));
        }
        Ok(value)
    }

    /// Partners' current commitments in a fund, as split weights.
    fn commitment_weights<'f>(&self, fund: &'f FundState) -> Vec<(&'f str, Decimal)> {
        fund.partner_keys()
            .map(|p| (p, fund.committed(p)))
            .collect()
    }

    fn paid_in_weights<'f>(&self, fund: &'f FundState) -> Vec<(&'f str, Decimal)> {
        fund.partner_keys().map(|p| (p, fund.paid_in(p))).collect()
    }

    fn split<'f>(
        &self,
        fund: &FundState,
        total: Decimal,
        weights: &[(&'f str, Decimal)],
        basis: &str,
    ) -> Result<Vec<(&'f str, Decimal)>> {
        if weights.iter().all(|(_, w)| w.is_zero()) {
            return Err(Error::rule(format!(
                "fund {} has no {basis} to split {} over",
                fund.def.fund,
                money::format_amount(total, fund.currency)
            )));
        }
        split_pro_rata(total, fund.currency, weights).map_err(money_error)
    }

    fn needs_cash(&self, fund: &FundState, amount: Decimal, what: &str) -> Result<()> {
        let cash = fund.cash();
        if amount > cash {
            return Err(Error::rule(format!(
                "{what} of {} exceeds the fund's cash of {} {}",
                money::format_amount(amount, fund.currency),
                money::format_amount(cash, fund.currency),
                fund.currency.code()
            ))
            .with_hint("record contributions first, or a smaller amount"));
        }
        Ok(())
    }

    /// The enrolled keys of `signers`, each active at entry `seq`.
    pub fn signer_records(
        &self,
        seq: u64,
        event: &Event,
        signers: &[KeyId],
    ) -> Result<Vec<Cow<'_, KeyRecord>>> {
        if let Event::Genesis(g) = event {
            let key = decode_public_key(&g.key.public_key)?;
            if signers != [key_id(&key)] {
                return Err(Error::rule(
                    "the genesis entry must be signed by exactly the key it enrolls",
                ));
            }
            return Ok(vec![Cow::Owned(KeyRecord {
                key_id: key_id(&key),
                name: g.key.name.clone(),
                public_key: key,
                role: "administrator".into(),
                partner: None,
                enrolled_seq: 0,
                revoked_seq: None,
            })]);
        }
        signers
            .iter()
            .map(|id| {
                let record = self.keys.get(id).ok_or_else(|| {
                    Error::rule(format!("signing key {} is not enrolled in this ledger", hex::encode(id)))
                        .with_hint("enroll the key with `fundledger key enroll` or use an enrolled key")
                })?;
                if !record.active_at(seq) {
                    return Err(Error::rule(match record.revoked_seq {
                        Some(r) => format!(
                            "signing key {} ({}) was revoked at entry {r} and signs nothing after it",
                            record.name,
                            hex::encode(&id[..8])
                        ),
                        None => format!("signing key {} is not active yet at entry {seq}", record.name),
                    }));
                }
                Ok(Cow::Borrowed(record))
            })
            .collect()
    }

    /// Check that `signers` meet the policy in force for `event`: every
    /// signer holds a role the rule allows (or is the event's partner key
    /// where the rule wants it), and there are enough distinct signers.
    /// The error says what is missing.
    pub fn check_policy(&self, event: &Event, signers: &[Cow<'_, KeyRecord>]) -> Result<()> {
        if matches!(event, Event::Genesis(_)) {
            return Ok(());
        }
        let kind = event.kind();
        let rule = self.policy.rule_for(kind).ok_or_else(|| {
            Error::rule(format!(
                "the policy in force has no rule for {kind} entries"
            ))
        })?;
        let partner = crate::policy::event_partner(event);
        let wants_partner = match rule.partner_key.as_deref() {
            Some("required") => true,
            Some("if_enrolled") => partner.is_some_and(|p| {
                self.keys.values().any(|k| {
                    k.role == "partner"
                        && k.partner.as_deref() == Some(p)
                        && k.revoked_seq.is_none()
                })
            }),
            _ => false,
        };
        let mut role_signers = 0u32;
        let mut partner_signed = false;
        for k in signers {
            if rule.roles.contains(&k.role) {
                role_signers += 1;
            } else if rule.partner_key.is_some()
                && k.role == "partner"
                && k.partner.as_deref() == partner
            {
                partner_signed = true;
            } else {
                return Err(Error::rule(format!(
                    "key {} has role {}, which may not sign {kind} entries under the policy in force (allowed: {})",
                    k.name,
                    k.role,
                    rule.roles.join(", ")
                )));
            }
        }
        let mut needed = rule.signers;
        let mut why = String::new();
        if let (Some(t), Some(amount), Some(fund)) = (
            &rule.above,
            crate::policy::event_amount(event),
            event.fund(),
        ) {
            let amount: Decimal = amount.parse().unwrap_or_default();
            let limit: Decimal = t.amount.parse().unwrap_or_default();
            if amount > limit {
                needed = t.signers;
                let code = self
                    .funds
                    .get(fund)
                    .map(|f| f.currency.code())
                    .unwrap_or_default();
                why = format!(" (the amount is above {} {code})", t.amount);
            }
        }
        let mut missing = Vec::new();
        if role_signers < needed {
            missing.push(format!(
                "{} more signature{} from {} keys ({needed} distinct needed{why}, {role_signers} present)",
                needed - role_signers,
                if needed - role_signers == 1 { "" } else { "s" },
                rule.roles.join(" or ")
            ));
        }
        if wants_partner && !partner_signed {
            missing.push(format!(
                "the signature of partner {}'s own key",
                partner.unwrap_or_default()
            ));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::rule(format!("{kind} entry needs {}", missing.join(" and "))).with_hint(
                "collect signatures with `fundledger propose ... --out FILE`, `fundledger cosign FILE`, then `fundledger submit FILE`",
            ))
        }
    }

    /// Check that `signers` may sign `event` as entry `seq`; returns their
    /// public keys in order.
    pub fn authorize(
        &self,
        seq: u64,
        event: &Event,
        signers: &[KeyId],
    ) -> Result<Vec<VerifyingKey>> {
        let records = self.signer_records(seq, event, signers)?;
        self.check_policy(event, &records)?;
        Ok(records.iter().map(|r| r.public_key).collect())
    }

    /// Check `event` as entry `seq` and compute what it books.
    /// The enrolled, not revoked key named by a hex key id.
    fn unrevoked_key(&self, key_id: &str) -> Result<(KeyId, &KeyRecord)> {
        let id = decode_key_id(key_id)?;
        let record = self
            .keys
            .get(&id)
            .ok_or_else(|| Error::rule(format!("key {key_id} is not enrolled")))?;
        if record.revoked_seq.is_some() {
            return Err(Error::rule(format!(
                "key {} is already revoked",
                record.name
            )));
        }
        Ok((id, record))
    }

    pub fn prepare(&self, seq: u64, event: &Event, lookup: &Lookup<'_>) -> Result<Prepared> {
        let expected_seq = self.last_seq.map_or(0, |s| s + 1);
        if seq != expected_seq {
            return Err(Error::rule(format!(
                "entry has sequence number {seq}, expected {expected_seq}"
            )));
        }
        if seq == 0 && !matches!(event, Event::Genesis(_)) {
            return Err(Error::rule("the first entry must be the genesis entry"));
        }
        if let Some(date) = event.date() {
            parse_date(date)?;
        }
        let mut postings = Vec::new();
        let mut fund_id = event.fund().map(str::to_string);
        let effect = match event {
            Event::Genesis(g) => {
                if seq != 0 {
                    return Err(Error::rule("only entry 0 can be a genesis entry"));
                }
                if g.key.role != "administrator" || g.key.partner.is_some() {
                    return Err(Error::rule("the genesis key must be an administrator"));
                }
                if let Some(p) = &g.policy {
                    p.validate()?;
                }
                Effect::Genesis(self.key_record(seq, &g.key)?, g.policy.clone())
            }
            Event::KeyEnroll(k) => Effect::Enroll(self.key_record(seq, k)?),
            Event::KeyRevoke(r) => {
                check_text("reason", &r.reason)?;
                let (id, record) = self.unrevoked_key(&r.key_id)?;
                if record.role == "administrator" {
                    let admins = self
                        .keys
                        .values()
                        .filter(|k| k.role == "administrator" && k.revoked_seq.is_none())
                        .count();
                    if admins <= 1 {
                        return Err(
                            Error::rule("cannot revoke the last active administrator key")
                                .with_hint("enroll another administrator first"),
                        );
                    }
                }
                Effect::Revoke(id)
            }
            Event::KeyRotate(r) => {
                check_text("reason", &r.reason)?;
                let (old, record) = self.unrevoked_key(&r.old_key_id)?;
                let new = self.key_record(
                    seq,
                    &KeyEnroll {
                        name: r.name.clone(),
                        public_key: r.public_key.clone(),
                        role: record.role.clone(),
                        partner: record.partner.clone(),
                    },
                )?;
                Effect::Rotate { old, new }
            }
            Event::PolicySet(p) => {
                p.policy.validate()?;
                Effect::Policy(p.policy.clone())
            }
            Event::Attest(a) => {
                check_text("file name", &a.file_name)?;
                check_text("note", &a.note)?;
                if a.sha256.len() != 64
                    || !a
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(Error::rule("sha256 must be 64 lower-case hex digits"));
                }
                Effect::None
            }
            Event::FundCreate(f) => {
                check_id("fund", &f.fund)?;
                if self.funds.contains_key(&f.fund) {
                    return Err(Error::rule(format!("fund {} already exists", f.fund)));
                }
                check_text("fund name", &f.name)?;
                let currency = Currency::from_code(&f.currency).map_err(money_error)?;
                check_text("jurisdiction", &f.jurisdiction)?;
                if !(1900..=2200).contains(&f.vintage) {
                    return Err(Error::rule(format!(
                        "vintage {} is not a plausible year",
                        f.vintage
                    )));
                }
                let rate: Decimal = f.management_fee_rate.parse().map_err(|_| {
                    Error::rule(format!(
                        "management fee rate {:?} is not a decimal",
                        f.management_fee_rate
                    ))
                })?;
                if rate.normalize().to_string() != f.management_fee_rate
                    || rate < Decimal::ZERO
                    || rate >= Decimal::ONE
                {
                    return Err(Error::rule(format!(
                        "management fee rate {:?} must be a fraction like 0.02 (at least 0, below 1, no trailing zeros)",
                        f.management_fee_rate
                    )));
                }
                if !["committed", "paid_in", "invested"].contains(&f.management_fee_basis.as_str())
                {
                    return Err(Error::rule(format!(
                        "management fee basis {:?} must be committed, paid_in or invested",
                        f.management_fee_basis
                    )));
                }
                Effect::Fund(Box::new(FundState {
                    def: f.clone(),
                    currency,
                    created_seq: seq,
                    balances: BTreeMap::new(),
                    calls: Vec::new(),
                    flows: BTreeMap::new(),
                    last_date: None,
                    partner_ids: Vec::new(),
                    call_pieces: Vec::new(),
                }))
            }
            Event::PartnerAdd(p) => {
                check_id("partner", &p.partner)?;
                if self.partners.contains_key(&p.partner) {
                    return Err(Error::rule(format!("partner {} already exists", p.partner)));
                }
                check_text("legal name", &p.legal_name)?;
                if !PARTNER_TYPES.contains(&p.partner_type.as_str()) {
                    return Err(Error::rule(format!(
                        "partner type {:?} must be one of: {}",
                        p.partner_type,
                        PARTNER_TYPES.join(", ")
                    )));
                }
                check_country(&p.country)?;
                if let Some(lei) = &p.lei {
                    check_lei(lei)?;
                }
                Effect::Partner(p.clone())
            }
            Event::StartupAdd(s) => {
                check_id("startup", &s.startup)?;
                if self.startups.contains_key(&s.startup) {
                    return Err(Error::rule(format!("startup {} already exists", s.startup)));
                }
                check_text("startup name", &s.name)?;
                check_country(&s.country)?;
                check_text("sector", &s.sector)?;
                Effect::Startup(s.clone())
            }
            Event::Commitment(c) => {
                let fund = self.fund(&c.fund)?;
                self.known_partner(&c.partner)?;
                check_memo(&c.memo)?;
                let amount = self.positive(fund, &c.amount, &c.currency)?;
                postings.push(posting(Account::Unfunded, &c.partner, Side::Debit, amount));
                postings.push(posting(
                    Account::Commitment,
                    &c.partner,
                    Side::Credit,
                    amount,
                ));
                Effect::None
            }
            Event::CommitmentReduce(c) => {
                let fund = self.fund(&c.fund)?;
                self.known_partner(&c.partner)?;
                check_memo(&c.memo)?;
                let amount = self.positive(fund, &c.amount, &c.currency)?;
                let unfunded = fund.unfunded(&c.partner);
                if amount > unfunded {
                    return Err(Error::rule(format!(
                        "reduction of {} exceeds partner {}'s unfunded commitment of {}",
                        c.amount,
                        c.partner,
                        money::format_amount(unfunded, fund.currency)
                    )));
                }
                postings.push(posting(
                    Account::Commitment,
                    &c.partner,
                    Side::Debit,
                    amount,
                ));
                postings.push(posting(Account::Unfunded, &c.partner, Side::Credit, amount));
                Effect::None
            }
            Event::Call(c) => {
                let fund = self.fund(&c.fund)?;
                check_memo(&c.memo)?;
                let total = self.positive(fund, &c.amount, &c.currency)?;
                let Some(purpose) = CALL_PURPOSES.iter().find(|p| **p == c.purpose) else {
                    return Err(Error::rule(format!(
                        "call purpose {:?} must be one of: {}",
                        c.purpose,
                        CALL_PURPOSES.join(", ")
                    )));
                };
                let (date, due_date) = (parse_date(&c.date)?, parse_date(&c.due_date)?);
                if due_date < date {
                    return Err(Error::rule(format!(
                        "due date {} is before the notice date {}",
                        c.due_date, c.date
                    )));
                }
                let shares =
                    self.split(fund, total, &self.commitment_weights(fund), "commitments")?;
                for (partner, share) in &shares {
                    let unfunded = fund.unfunded(partner);
                    if *share > unfunded {
                        return Err(Error::rule(format!(
                            "call of {} {}: partner {partner}'s share {} exceeds its unfunded commitment of {}",
                            c.amount,
                            c.currency,
                            money::format_amount(*share, fund.currency),
                            money::format_amount(unfunded, fund.currency)
                        )));
                    }
                }
                split_postings(&mut postings, Account::CallReceivable, Side::Debit, &shares);
                split_postings(&mut postings, Account::Capital, Side::Credit, &shares);
                split_postings(&mut postings, Account::Called, Side::Debit, &shares);
                split_postings(&mut postings, Account::Unfunded, Side::Credit, &shares);
                Effect::Call(CallState {
                    number: fund.calls.len() as u64 + 1,
                    seq,
                    purpose,
                    date,
                    due_date,
                    reversed: false,
                    // Applying the call swaps in the fund's shared ids.
                    shares: CallShares::new(
                        shares
                            .into_iter()
                            .filter(|(_, s)| !s.is_zero())
                            .map(|(p, s)| {
                                (
                                    Arc::new(p.to_string()),
                                    CallShare {
                                        called: s,
                                        paid: Decimal::ZERO,
                                    },
                                )
                            })
                            .collect(),
                    ),
                })
            }
            Event::Contribution(c) => {
                let fund = self.fund(&c.fund)?;
                self.known_partner(&c.partner)?;
                check_memo(&c.memo)?;
                let amount = self.positive(fund, &c.amount, &c.currency)?;
                let call = fund.call(c.call).ok_or_else(|| {
                    Error::rule(format!("fund {} has no call number {}", c.fund, c.call)).with_hint(
                        match fund.calls.len() {
                            0 => "the fund has issued no capital call yet".to_string(),
                            n => format!(
                            "the fund's calls are numbered 1 to {n} (`fundledger log` lists them)"
                        ),
                        },
                    )
                })?;
                if call.reversed {
                    return Err(Error::rule(format!("call {} was reversed", c.call)));
                }
                let share = call.shares.get(&c.partner).ok_or_else(|| {
                    Error::rule(format!(
                        "partner {} has no share in call {}",
                        c.partner, c.call
                    ))
                })?;
                let outstanding = share.called - share.paid;
                if amount > outstanding {
                    return Err(Error::rule(format!(
                        "contribution of {} exceeds the {} outstanding from partner {} on call {}",
                        c.amount,
                        money::format_amount(outstanding, fund.currency),
                        c.partner,
                        c.call
                    )));
                }
                if parse_date(&c.date)? < call.date {
                    return Err(Error::rule(format!(
                        "contribution date {} is before call {}'s notice date {}",
                        c.date,
                        c.call,
                        format_date(call.date)
                    )));
                }
                postings.push(posting(Account::Cash, "", Side::Debit, amount));
                postings.push(posting(
                    Account::CallReceivable,
                    &c.partner,
                    Side::Credit,
                    amount,
                ));
                Effect::Contribution {
                    call: c.call,
                    partner: c.partner.clone(),
                    amount,
                }
            }
            Event::Investment(i) => {
                let fund = self.fund(&i.fund)?;
                self.known_startup(&i.startup)?;
                check_memo(&i.memo)?;
                let amount = self.positive(fund, &i.amount, &i.currency)?;
                self.needs_cash(fund, amount, "investment")?;
                postings.push(posting(
                    Account::Investments,
                    &i.startup,
                    Side::Debit,
                    amount,
                ));
                postings.push(posting(Account::Cash, "", Side::Credit, amount));
                Effect::None
            }
            Event::Valuation(v) => {
                let fund = self.fund(&v.fund)?;
                self.known_startup(&v.startup)?;
                check_memo(&v.memo)?;
                let value = self.amount(fund, &v.fair_value, &v.currency)?;
                let cost = fund.cost(&v.startup);
                if cost <= Decimal::ZERO {
                    return Err(Error::rule(format!(
                        "fund {} holds no investment in {}",
                        v.fund, v.startup
                    )));
                }
                let carrying = cost + fund.balance(Account::FairValueAdjustment, &v.startup);
                let delta = value - carrying;
                if !delta.is_zero() {
                    let side = if delta > Decimal::ZERO {
                        Side::Debit
                    } else {
                        Side::Credit
                    };
                    let shares = self.split(
                        fund,
                        delta.abs(),
                        &self.paid_in_weights(fund),
                        "paid-in capital",
                    )?;
                    postings.push(posting(
                        Account::FairValueAdjustment,
                        &v.startup,
                        side,
                        delta.abs(),
                    ));
                    split_postings(
                        &mut postings,
                        Account::UnrealizedGain,
                        side.opposite(),
                        &shares,
                    );
                }
                Effect::None
            }
            Event::Realization(r) => {
                let fund = self.fund(&r.fund)?;
                self.known_startup(&r.startup)?;
                check_memo(&r.memo)?;
                let proceeds = self.amount(fund, &r.proceeds, &r.currency)?;
                let released = self.positive(fund, &r.cost_released, &r.currency)?;
                let cost = fund.cost(&r.startup);
                if released > cost {
                    return Err(Error::rule(format!(
                        "cost released {} exceeds the cost of {} held in {}",
                        r.cost_released,
                        money::format_amount(cost, fund.currency),
                        r.startup
                    )));
                }
                let fva = fund.balance(Account::FairValueAdjustment, &r.startup);
                let fva_released = if released == cost {
                    fva
                } else {
                    fva.checked_mul(released)
                        .and_then(|x| x.checked_div(cost))
                        .ok_or_else(|| {
                            Error::rule("the amounts are too large to release the fair-value adjustment exactly")
                        })?
                        .round_dp_with_strategy(
                            fund.currency.minor_units(),
                            RoundingStrategy::MidpointNearestEven,
                        )
                };
                let weights = self.paid_in_weights(fund);
                if proceeds > Decimal::ZERO {
                    postings.push(posting(Account::Cash, "", Side::Debit, proceeds));
                }
                postings.push(posting(
                    Account::Investments,
                    &r.startup,
                    Side::Credit,
                    released,
                ));
                if !fva_released.is_zero() {
                    // Release the unrealized gain (or loss) on the part sold.
                    let side = if fva_released > Decimal::ZERO {
                        Side::Credit
                    } else {
                        Side::Debit
                    };
                    let shares =
                        self.split(fund, fva_released.abs(), &weights, "paid-in capital")?;
                    postings.push(posting(
                        Account::FairValueAdjustment,
                        &r.startup,
                        side,
                        fva_released.abs(),
                    ));
                    split_postings(
                        &mut postings,
                        Account::UnrealizedGain,
                        side.opposite(),
                        &shares,
                    );
                }
                let gain = proceeds - released;
                if !gain.is_zero() {
                    let side = if gain > Decimal::ZERO {
                        Side::Credit
                    } else {
                        Side::Debit
                    };
                    let shares = self.split(fund, gain.abs(), &weights, "paid-in capital")?;
                    split_postings(&mut postings, Account::RealizedGain, side, &shares);
                }
                Effect::None
            }
            Event::Distribution(d) => {
                let fund = self.fund(&d.fund)?;
                check_memo(&d.memo)?;
                let total = self.positive(fund, &d.amount, &d.currency)?;
                self.needs_cash(fund, total, "distribution")?;
                let shares =
                    self.split(fund, total, &self.paid_in_weights(fund), "paid-in capital")?;
                split_postings(&mut postings, Account::Distributions, Side::Debit, &shares);
                postings.push(posting(Account::Cash, "", Side::Credit, total));
                Effect::None
            }
            Event::Fee(d) | Event::Expense(d) => {
                let fund = self.fund(&d.fund)?;
                check_memo(&d.memo)?;
                let total = self.positive(fund, &d.amount, &d.currency)?;
                let (account, what) = match event {
                    Event::Fee(_) => (Account::ManagementFees, "management fee"),
                    _ => (Account::FundExpenses, "expense"),
                };
                self.needs_cash(fund, total, what)?;
                let shares =
                    self.split(fund, total, &self.commitment_weights(fund), "commitments")?;
                split_postings(&mut postings, account, Side::Debit, &shares);
                postings.push(posting(Account::Cash, "", Side::Credit, total));
                Effect::None
            }
            Event::Reversal(r) => {
                check_text("reason", &r.reason)?;
                let (kind, original) = match lookup(r.seq)? {
                    Some(found) if r.seq < seq => found,
                    _ => {
                        return Err(Error::rule(format!(
                            "cannot reverse entry {}: no such entry",
                            r.seq
                        )))
                    }
                };
                if self.reversed.contains(&r.seq) {
                    return Err(Error::rule(format!("entry {} is already reversed", r.seq)));
                }
                if let Some(original_date) = original.event.date() {
                    if parse_date(&r.date)? < parse_date(original_date)? {
                        return Err(Error::rule(format!(
                            "the reversal's date {} is before the date {original_date} of entry {}",
                            r.date, r.seq
                        )));
                    }
                }
                let undo = match &original.event {
                    Event::Commitment(_)
                    | Event::CommitmentReduce(_)
                    | Event::Investment(_)
                    | Event::Valuation(_)
                    | Event::Realization(_)
                    | Event::Distribution(_)
                    | Event::Fee(_)
                    | Event::Expense(_) => Effect::None,
                    Event::Call(c) => {
                        let fund = self.fund(&c.fund)?;
                        let call = fund.calls.iter().find(|k| k.seq == r.seq).ok_or_else(|| {
                            Error::rule(format!("entry {} is not a known call", r.seq))
                        })?;
                        if call.shares.values().any(|s| !s.paid.is_zero()) {
                            return Err(Error::rule(format!(
                                "call {} has contributions; reverse them first",
                                call.number
                            )));
                        }
                        Effect::Call(call.clone())
                    }
                    Event::Contribution(c) => Effect::Contribution {
                        call: c.call,
                        partner: c.partner.clone(),
                        amount: money::parse_amount(&c.amount, self.fund(&c.fund)?.currency)
                            .map_err(money_error)?,
                    },
                    _ => {
                        return Err(Error::rule(format!(
                            "entry {} is a {kind} entry, which cannot be reversed",
                            r.seq
                        )))
                    }
                };
                fund_id = original.event.fund().map(str::to_string);
                if !original.postings.is_empty() {
                    let fund = fund_id
                        .as_deref()
                        .ok_or_else(|| Error::rule("postings outside a fund"))?;
                    let currency = self.fund(fund)?.currency;
                    for p in &original.postings {
                        let mut booked = Booked::of_posting(p, currency)?;
                        booked.side = booked.side.opposite();
                        postings.push(booked);
                    }
                }
                Effect::Reversal {
                    original: r.seq,
                    undo: Box::new(undo),
                }
            }
        };
        let mut prepared = Prepared {
            booked: postings,
            currency: None,
            fund: fund_id,
            date: event.date().map(parse_date).transpose()?,
            effect,
        };
        self.check_postings(&mut prepared)?;
        Ok(prepared)
    }

    fn key_record(&self, seq: u64, k: &KeyEnroll) -> Result<KeyRecord> {
        check_text("key name", &k.name)?;
        if !ROLES.contains(&k.role.as_str()) {
            return Err(Error::rule(format!(
                "role {:?} must be one of: {}",
                k.role,
                ROLES.join(", ")
            )));
        }
        match (&k.partner, k.role.as_str()) {
            (Some(p), "partner") => {
                self.known_partner(p)?;
            }
            (None, "partner") => return Err(Error::rule("a partner key must name its partner")),
            (Some(_), _) => return Err(Error::rule("only a partner key names a partner")),
            (None, _) => {}
        }
        let public_key = decode_public_key(&k.public_key)?;
        let id = key_id(&public_key);
        if self.keys.contains_key(&id) {
            return Err(Error::rule(format!(
                "key {} is already enrolled (a key is enrolled once; a revoked key stays revoked)",
                hex::encode(&id[..8])
            )));
        }
        Ok(KeyRecord {
            key_id: id,
            name: k.name.clone(),
            public_key,
            role: k.role.clone(),
            partner: k.partner.clone(),
            enrolled_seq: seq,
            revoked_seq: None,
        })
    }

    /// Every entry balances, and no balance the rules bound crosses zero.
    /// Puts each amount at the currency's scale and notes the currency.
    fn check_postings(&self, prepared: &mut Prepared) -> Result<()> {
        if prepared.booked.is_empty() {
            return Ok(());
        }
        let fund_id = prepared
            .fund
            .as_deref()
            .ok_or_else(|| Error::rule("postings outside a fund"))?;
        let fund = match &prepared.effect {
            Effect::Fund(f) => f.as_ref(),
            _ => self.fund(fund_id)?,
        };
        let currency = fund.currency;
        // The change per account, in account order; entries book few
        // postings, so a sorted vector beats a map.
        let mut delta: Vec<(&AccountKey, Decimal)> = Vec::with_capacity(prepared.booked.len());
        let mut net = Decimal::ZERO;
        for b in &mut prepared.booked {
            b.amount = money::posting_amount(b.amount, currency).map_err(money_error)?;
            if b.amount <= Decimal::ZERO {
                return Err(Error::rule("a posting amount must be above zero"));
            }
        }
        for b in &prepared.booked {
            let signed = b.signed();
            net += signed;
            match delta.binary_search_by(|(k, _)| (*k).cmp(&b.key)) {
                Ok(i) => delta[i].1 += signed,
                Err(i) => delta.insert(i, (&b.key, signed)),
            }
        }
        if !net.is_zero() {
            return Err(Error::rule(format!(
                "postings do not balance: debits minus credits is {net}"
            )));
        }
        let delta_of = |k: &dyn KeyRef| {
            delta
                .iter()
                .find(|(d, _)| d.parts() == k.parts())
                .map_or(Decimal::ZERO, |(_, c)| *c)
        };
        for &(key, change) in &delta {
            let after = fund.balances.get(key).copied().unwrap_or_default() + change;
            // Debit-normal bounded accounts stay >= 0; credit-normal <= 0.
            let broken = match key.account {
                Account::Cash
                | Account::CallReceivable
                | Account::Investments
                | Account::Unfunded
                | Account::Called
                | Account::Distributions => after < Decimal::ZERO,
                Account::Commitment => after > Decimal::ZERO,
                _ => false,
            };
            if broken {
                return Err(Error::rule(format!(
                    "balance of {} in fund {} would become {}",
                    key.display(),
                    fund.def.fund,
                    money::format_amount(after, currency)
                )));
            }
            // A fair-value adjustment only exists on a holding with cost:
            // otherwise NAV would carry value no entry can ever release.
            if matches!(
                key.account,
                Account::Investments | Account::FairValueAdjustment
            ) {
                let balance_after = |account: Account| {
                    let k: &dyn KeyRef = &(account, key.dimension.as_str());
                    fund.balances.get(k).copied().unwrap_or_default() + delta_of(k)
                };
                let cost = balance_after(Account::Investments);
                let fva = balance_after(Account::FairValueAdjustment);
                if cost.is_zero() && !fva.is_zero() {
                    return Err(Error::rule(format!(
                        "this would leave a fair-value adjustment of {} on {} with no cost held",
                        money::format_amount(fva, currency),
                        key.dimension
                    ))
                    .with_hint(
                        "reverse the later valuations or realizations of that holding first",
                    ));
                }
            }
        }
        prepared.currency = Some(currency);
        Ok(())
    }

    /// Advance the state past entry `seq`.
    pub fn apply(&mut self, seq: u64, prepared: Prepared) {
        self.last_seq = Some(seq);
        if let Some(fund_id) = &prepared.fund {
            if let Some(fund) = self.funds.get_mut(fund_id) {
                for b in prepared.booked {
                    let signed = b.signed();
                    if let Some(date) = prepared.date {
                        let flow = match b.key.account {
                            Account::Called => Some((signed, Decimal::ZERO)),
                            Account::CallReceivable => Some((-signed, Decimal::ZERO)),
                            Account::Distributions => Some((Decimal::ZERO, signed)),
                            _ => None,
                        };
                        if let Some((paid, dist)) = flow {
                            let partner = fund.intern(&b.key.dimension);
                            let f = fund.flows.entry((partner, date)).or_default();
                            f.0 += paid;
                            f.1 += dist;
                        }
                    }
                    *fund.balances.entry(b.key).or_default() += signed;
                }
            }
        }
        let fund_id = prepared.fund.clone();
        let date = prepared.date;
        self.apply_effect(seq, prepared.fund.as_deref(), prepared.effect, false);
        if let (Some(fund), Some(date)) = (fund_id.and_then(|f| self.funds.get_mut(&f)), date) {
            fund.last_date = fund.last_date.max(Some(date));
        }
    }

    fn apply_effect(&mut self, seq: u64, fund_id: Option<&str>, effect: Effect, undo: bool) {
        match effect {
            Effect::None => {}
            Effect::Genesis(k, policy) => {
                self.keys.insert(k.key_id, k);
                if let Some(p) = policy {
                    self.policy = p;
                    self.policy_seq = Some(seq);
                }
            }
            Effect::Enroll(k) => {
                self.keys.insert(k.key_id, k);
            }
            Effect::Rotate { old, new } => {
                if let Some(k) = self.keys.get_mut(&old) {
                    k.revoked_seq = Some(seq);
                }
                self.keys.insert(new.key_id, new);
            }
            Effect::Policy(p) => {
                self.policy = p;
                self.policy_seq = Some(seq);
            }
            Effect::Revoke(id) => {
                if let Some(k) = self.keys.get_mut(&id) {
                    k.revoked_seq = Some(seq);
                }
            }
            Effect::Fund(f) => {
                self.funds.insert(f.def.fund.clone(), *f);
            }
            Effect::Partner(p) => {
                self.partners.insert(p.partner.clone(), p);
            }
            Effect::Startup(s) => {
                self.startups.insert(s.startup.clone(), s);
            }
            Effect::Call(call) => {
                if let Some(fund) = fund_id.and_then(|f| self.funds.get_mut(f)) {
                    if undo {
                        if let Some(i) = fund.calls.iter().position(|c| c.seq == call.seq) {
                            fund.calls[i].reversed = true;
                            fund.call_changed(i);
                        }
                    } else {
                        let mut call = call;
                        for (partner, _) in call.shares.0.iter_mut() {
                            *partner = fund.intern(partner);
                        }
                        fund.calls.push(call);
                        fund.call_changed(fund.calls.len() - 1);
                    }
                }
            }
            Effect::Contribution {
                call,
                partner,
                amount,
            } => {
                if let Some(fund) = fund_id.and_then(|f| self.funds.get_mut(f)) {
                    let index = call.checked_sub(1).map(|i| i as usize);
                    if let Some(share) = index
                        .and_then(|i| fund.calls.get_mut(i))
                        .and_then(|c| c.shares.get_mut(&partner))
                    {
                        if undo {
                            share.paid -= amount;
                        } else {
                            share.paid += amount;
                        }
                        fund.call_changed(index.unwrap_or_default());
                    }
                }
            }
            Effect::Reversal {
                original,
                undo: inner,
            } => {
                self.reversed.insert(original);
                self.apply_effect(seq, fund_id, *inner, true);
            }
        }
    }
}

/// Decode a base64 raw Ed25519 public key and refuse weak keys.
pub fn decode_public_key(text: &str) -> Result<VerifyingKey> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| Error::rule("public key is not standard base64"))?;
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::rule("public key is not 32 bytes"))?;
    if base64::engine::general_purpose::STANDARD.encode(raw) != text {
        return Err(Error::rule("public key is not in canonical base64"));
    }
    public_key_from_raw(&raw)
}

/// A raw Ed25519 public key, refusing weak keys.
fn public_key_from_raw(raw: &[u8; 32]) -> Result<VerifyingKey> {
    let key = VerifyingKey::from_bytes(raw)
        .map_err(|_| Error::rule("public key is not a valid Ed25519 point"))?;
    crate::keys::check_public_key(&key).map_err(|e| Error::rule(e.message().to_string()))?;
    Ok(key)
}

/// Decode a hex key id.
pub fn decode_key_id(text: &str) -> Result<KeyId> {
    let bytes =
        hex::decode(text).map_err(|_| Error::rule(format!("key id {text:?} is not hex")))?;
    bytes
        .try_into()
        .map_err(|_| Error::rule(format!("key id {text:?} is not 32 bytes of hex")))
}

mod snapshot;

pub use snapshot::{Piece, SNAPSHOT_FORMAT_VERSION};

/// YYYY-MM-DD.
fn format_date(date: time::Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    date.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo ledger, opened read-only (with the directory holding it).
    fn demo_ledger() -> (tempfile::TempDir, crate::ledger::Ledger) {
        let dir = tempfile::tempdir().unwrap();
        crate::demo::run(dir.path()).unwrap();
        let ledger =
            crate::ledger::Ledger::open_read_only(&dir.path().join("ledger.sqlite")).unwrap();
        (dir, ledger)
    }

    #[test]
    fn demo_state_snapshot_in_pieces_concatenates_to_its_encoding() {
        let (_dir, ledger) = demo_ledger();
        let mut state = ledger.state().clone();
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        state
            .write_snapshot_pieces(&mut |piece| match piece {
                Piece::Bytes(b) => {
                    pieces.push(b.to_vec());
                    Ok(Some([pieces.len() as u8; 32]))
                }
                Piece::Stored(_) => Ok(None),
            })
            .unwrap();
        // Head, calls, flows' count, a partner-year of flows at least, tail.
        assert!(pieces.len() >= 5, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| !p.is_empty()));
        assert_eq!(pieces.concat(), state.encode_snapshot().unwrap());
        // A sink's error is returned as it is, kind included.
        let mut calls = 0;
        let err = state
            .write_snapshot_pieces(&mut |_| {
                calls += 1;
                Err(Error::new(crate::error::ErrorKind::Store, "disk full"))
            })
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.message(), calls),
            (crate::error::ErrorKind::Store, "disk full", 1)
        );
    }

    #[test]
    fn demo_state_snapshot_round_trips_byte_for_byte() {
        let (_dir, ledger) = demo_ledger();
        let bytes = ledger.state().encode_snapshot().unwrap();
        let decoded = State::decode_snapshot(&bytes).unwrap();
        assert_eq!(decoded.encode_snapshot().unwrap(), bytes);
        assert!(!ledger.state().funds.is_empty() && !ledger.state().keys.is_empty());
        assert!(decoded.snapshot_matches(&bytes).unwrap());
        // Malformed input is an error, never a panic.
        let with = |at: usize, byte: u8| {
            let mut b = bytes.clone();
            b[at] = byte;
            b
        };
        let mut longer = bytes.clone();
        longer.push(0);
        for bad in [
            Vec::new(),
            vec![0, 0, 0, 2],
            bytes[..bytes.len() / 2].to_vec(),
            bytes[..bytes.len() - 1].to_vec(),
            longer,
            with(3, 1),
            with(3, 3),
            // The last_seq option tag.
            with(4, 2),
            b"{\"format_version\":1,\"last_seq\":1}".to_vec(),
        ] {
            assert!(State::decode_snapshot(&bad).is_err(), "{bad:?}");
            assert!(!decoded.snapshot_matches(&bad).unwrap());
        }
        // Every single-byte change is refused or decodes to another state
        // (never a panic).
        for (at, byte) in bytes.iter().enumerate().take(4096) {
            let changed = with(at, byte ^ 0x01);
            if let Ok(other) = State::decode_snapshot(&changed) {
                assert_eq!(other.encode_snapshot().unwrap(), changed);
            }
        }
    }

    /// An empty USD fund "f" created by entry 1.
    fn test_fund() -> FundState {
        FundState {
            def: FundCreate {
                fund: "f".into(),
                name: "F".into(),
                currency: "USD".into(),
                jurisdiction: "AE".into(),
                vintage: 2024,
                management_fee_rate: "0.02".into(),
                management_fee_basis: "committed".into(),
                date: "2024-01-01".into(),
            },
            currency: Currency::from_code("USD").unwrap(),
            created_seq: 1,
            balances: BTreeMap::new(),
            calls: Vec::new(),
            flows: BTreeMap::new(),
            last_date: None,
            partner_ids: Vec::new(),
            call_pieces: Vec::new(),
        }
    }

    /// A small state's snapshot, byte for byte, as schema/FORMAT.md
    /// section 7 spells it: a change here is a new format version.
    #[test]
    fn snapshot_bytes_are_the_documented_ones() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let mut fund = test_fund();
        fund.balances =
            BTreeMap::from([(AccountKey::new(Account::Cash, ""), Decimal::new(500, 2))]);
        fund.last_date = Some(parse_date("2024-01-02").unwrap());
        let a = fund.intern("a");
        fund.calls.push(CallState {
            number: 1,
            seq: 3,
            purpose: "investment",
            date: parse_date("2024-01-02").unwrap(),
            due_date: parse_date("2024-02-01").unwrap(),
            reversed: false,
            shares: CallShares::new(vec![(
                a.clone(),
                CallShare {
                    called: Decimal::new(150, 2),
                    paid: Decimal::new(0, 2),
                },
            )]),
        });
        fund.flows.insert(
            (a, parse_date("2024-01-02").unwrap()),
            (Decimal::new(150, 2), Decimal::new(-25, 2)),
        );
        let state = State {
            last_seq: Some(7),
            origin: Some("o".into()),
            keys: BTreeMap::from([(
                key_id(&key),
                KeyRecord {
                    key_id: key_id(&key),
                    name: "k".into(),
                    public_key: key,
                    role: "administrator".into(),
                    partner: None,
                    enrolled_seq: 0,
                    revoked_seq: None,
                },
            )]),
            policy: Policy { rules: vec![] },
            policy_seq: None,
            funds: BTreeMap::from([("f".to_string(), fund)]),
            partners: BTreeMap::new(),
            startups: BTreeMap::new(),
            reversed: HashSet::from([5]),
        };
        let def = r#"{"currency":"USD","date":"2024-01-01","fund":"f","jurisdiction":"AE","management_fee_basis":"committed","management_fee_rate":"0.02","name":"F","vintage":2024}"#;
        let expected = [
            "00000002".to_string(),                                 // format version
            "01 0000000000000007".into(),                           // last_seq
            "01 00000001 6f".into(),                                // origin "o"
            "00000001".into(),                                      // one key:
            "00000001 6b".into(),                                   //   name "k"
            hex::encode(key.as_bytes()),                            //   raw public key
            format!("0000000d {}", hex::encode("administrator")),   // role
            "00 0000000000000000 00".into(), //   partner, enrolled_seq, revoked_seq
            format!("0000000c {}", hex::encode(r#"{"rules":[]}"#)), // policy
            "00".into(),                     // policy_seq
            "00000001".into(),               // one fund:
            format!("{:08x} {}", def.len(), hex::encode(def)), // fund.create
            "0000000000000001".into(),       //   created_seq
            "00000001 00 00000000 0202 01f4".into(), //   balances: cash 5.00
            "00000001 00000001 61".into(),   //   partner list ["a"]
            "00000001 0000000000000003".into(), //   one call: seq 3,
            format!("0000000a {}", hex::encode("investment")), // purpose,
            "07e8 01 02 07e8 02 01 00".into(), //   dates, not reversed,
            "00000001 0000 0201 96 0200".into(), //   a: called 1.50, paid 0.00
            "00000001 0000 07e8 01 02 0201 96 8201 19".into(), // flow a 2024-01-02 1.50 -0.25
            "01 07e8 01 02".into(),          //   last_date
            "00000000 00000000".into(),      // partners, startups
            "00000001 0000000000000005".into(), // reversed
        ]
        .concat()
        .replace(' ', "");
        let bytes = state.encode_snapshot().unwrap();
        assert_eq!(hex::encode(&bytes), expected);
        let back = State::decode_snapshot(&bytes).unwrap();
        assert_eq!(back.encode_snapshot().unwrap(), bytes);
        assert_eq!(
            back.funds["f"].calls[0].shares["a"].called,
            Decimal::new(150, 2)
        );
        // A share naming a position beyond the partner list, or a list
        // entry nothing names, is refused.
        let share = expected.find("00000001000002019602").unwrap();
        assert_eq!(share % 2, 0);
        let mut beyond = bytes.clone();
        beyond[share / 2 + 5] = 1;
        assert!(State::decode_snapshot(&beyond)
            .unwrap_err()
            .to_string()
            .contains("not in its fund's list"));
        let mut unnamed = back;
        unnamed
            .funds
            .get_mut("f")
            .unwrap()
            .partner_ids
            .push(Arc::new("b".into()));
        let unnamed = unnamed.encode_snapshot().unwrap();
        assert!(State::decode_snapshot(&unnamed)
            .unwrap_err()
            .to_string()
            .contains("named by no call or flow"));
    }

    /// Flows are decoded in bulk, so their order is checked as they are
    /// read: two flows swapped, or one repeated, are refused.
    #[test]
    fn snapshot_flows_must_be_in_order_and_unique() {
        let mut fund = test_fund();
        let a = fund.intern("a");
        for day in ["2024-01-02", "2024-01-03"] {
            fund.flows.insert(
                (a.clone(), parse_date(day).unwrap()),
                (Decimal::new(150, 2), Decimal::new(-25, 2)),
            );
        }
        let state = State {
            funds: BTreeMap::from([("f".to_string(), fund)]),
            ..State::default()
        };
        let bytes = state.encode_snapshot().unwrap();
        let back = State::decode_snapshot(&bytes).unwrap();
        assert_eq!(back.encode_snapshot().unwrap(), bytes);
        // Each flow: partner 0000, the date, 1.50 and -0.25 (12 bytes).
        let record = |day: &str| {
            hex::decode(format!("0000 07e8 01 {day} 0201 96 8201 19").replace(' ', "")).unwrap()
        };
        let (first, second) = (record("02"), record("03"));
        let at = bytes
            .windows(24)
            .position(|w| w == [first.as_slice(), second.as_slice()].concat())
            .unwrap();
        let mut swapped = bytes.clone();
        swapped[at..at + 24].copy_from_slice(&[second.as_slice(), first.as_slice()].concat());
        let mut repeated = bytes.clone();
        repeated[at + 12..at + 24].copy_from_slice(&first);
        for bad in [swapped, repeated] {
            let e = State::decode_snapshot(&bad).unwrap_err().to_string();
            assert!(e.contains("flows are out of order"), "{e}");
        }
    }

    #[test]
    fn snapshot_decimals_keep_sign_and_scale() {
        let mut state = State::default();
        let mut fund = test_fund();
        let mut negative_zero = Decimal::new(0, 2);
        negative_zero.set_sign_negative(true);
        for (i, d) in [
            Decimal::new(0, 0),
            Decimal::new(0, 2),
            negative_zero,
            Decimal::new(-12345, 2),
            Decimal::new(1, 28),
            Decimal::MAX,
            Decimal::MIN,
        ]
        .into_iter()
        .enumerate()
        {
            fund.balances
                .insert(AccountKey::new(Account::Capital, &format!("p{i}")), d);
        }
        state.funds.insert("f".into(), fund);
        let bytes = state.encode_snapshot().unwrap();
        let back = State::decode_snapshot(&bytes).unwrap();
        let texts = |s: &State| -> Vec<String> {
            s.funds["f"]
                .balances
                .values()
                .map(|d| d.to_string())
                .collect()
        };
        assert_eq!(texts(&back), texts(&state));
        assert!(texts(&back).contains(&negative_zero.to_string()));
    }

    #[test]
    fn lei_checksum() {
        // GLEIF's own LEI.
        assert!(check_lei("506700GE1G29325QX363").is_ok());
        assert!(check_lei("506700GE1G29325QX364").is_err());
        assert!(check_lei("506700ge1g29325qx363").is_err());
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2024-02-29").is_ok());
        for bad in [
            "2023-02-29",
            "2024-2-01",
            "24-02-01",
            "2024-02-01T00:00",
            "+2024-02-01",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    /// The hand-written date parser accepts exactly what the `time`
    /// crate's strict round trip (the parser it replaced) accepts.
    #[test]
    fn date_parser_agrees_with_the_time_crate() {
        fn reference(text: &str) -> Option<time::Date> {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .ok()
                .filter(|d| (1900..=2200).contains(&d.year()))
                .filter(|d| d.format(&format).ok().as_deref() == Some(text))
        }
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        let strategy = prop_oneof![
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            "(18|19|20|21|22)[0-9]{2}-(0[0-9]|1[0-3])-([0-2][0-9]|3[0-2])",
            "[ +0-9-]{0,2}[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}[ T0-9]{0,2}",
            "\\PC{0,12}",
        ];
        runner
            .run(&strategy, |text| {
                prop_assert_eq!(parse_date(&text).ok(), reference(&text), "{}", text);
                Ok(())
            })
            .unwrap();
        for text in [
            "1900-01-01",
            "2200-12-31",
            "1899-12-31",
            "2201-01-01",
            "2024-02-29",
        ] {
            assert_eq!(parse_date(text).ok(), reference(text), "{text}");
        }
    }

    #[test]
    fn key_activity_window() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let mut k = KeyRecord {
            key_id: key_id(&key),
            name: "k".into(),
            public_key: key,
            role: "recorder".into(),
            partner: None,
            enrolled_seq: 5,
            revoked_seq: None,
        };
        assert!(!k.active_at(5));
        assert!(k.active_at(6));
        k.revoked_seq = Some(9);
        assert!(
            k.active_at(9),
            "the revoking entry itself may still be signed by it"
        );
        assert!(!k.active_at(10));
    }
}
