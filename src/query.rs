//! Queries: the trial balance and partner positions, as of a date.
//!
//! Both are computed from the signed postings of every entry whose
//! effective date is on or before the as-of date (recording order does not
//! matter for sums). Amounts are exact; ratios are rounded half-even to
//! [`RATIO_PLACES`] places; IRR (XIRR, actual/365) to [`IRR_PLACES`] places
//! and absent when it does not exist. The JSON forms are specified in
//! schema/QUERIES_JSON.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::event::Side;
use crate::ledger::{decode_row, Ledger};
use crate::money::{self, Currency};
use crate::state::{parse_date, Account, AccountKey};

/// Version of the JSON output of `balances` and `position`.
pub const QUERY_FORMAT_VERSION: u32 = 1;
/// Decimal places of DPI, RVPI, TVPI and shares.
pub const RATIO_PLACES: u32 = 4;
/// Decimal places of an IRR (a fraction: 0.123456 is 12.3456 %).
pub const IRR_PLACES: u32 = 6;

/// Partner types whose money is public.
pub const PUBLIC_TYPES: &[&str] = &["government", "sovereign_fund", "development_bank"];

/// Per-fund totals from postings, plus dated partner flows.
#[derive(Debug, Clone, Default)]
pub struct FundBooks {
    pub balances: BTreeMap<AccountKey, Decimal>,
    /// Per (partner, date): paid-in change and distribution change, summed
    /// over the entries of that date.
    pub flows: BTreeMap<(Arc<String>, time::Date), (Decimal, Decimal)>,
    /// Latest effective date seen.
    pub last_date: Option<time::Date>,
}

impl FundBooks {
    pub fn balance(&self, account: Account, dimension: &str) -> Decimal {
        self.balances
            .get(&AccountKey::new(account, dimension))
            .copied()
            .unwrap_or_default()
    }
}

/// Read every fund's books as of `as_of` (all entries when None).
pub fn books(ledger: &Ledger, as_of: Option<time::Date>) -> Result<BTreeMap<String, FundBooks>> {
    let mut out: BTreeMap<String, FundBooks> = BTreeMap::new();
    ledger.store().scan(0, None, |row| {
        let (_, body) = decode_row(&row)?;
        let fund = match body.event.fund() {
            Some(f) => Some(f.to_string()),
            None => match &body.event {
                crate::event::Event::Reversal(r) => match ledger.store().get(r.seq)? {
                    Some(original) => decode_row(&original)?.1.event.fund().map(str::to_string),
                    None => None,
                },
                _ => None,
            },
        };
        let Some(fund) = fund else { return Ok(true) };
        let Some(date) = body.event.date() else {
            return Ok(true);
        };
        let date = parse_date(date)?;
        if as_of.is_some_and(|a| date > a) {
            return Ok(true);
        }
        let books = out.entry(fund).or_default();
        books.last_date = books.last_date.max(Some(date));
        let mut partner_delta: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
        for p in &body.postings {
            let key = AccountKey::of_posting(p)?;
            let amount: Decimal = p.amount.parse().map_err(|_| {
                Error::format(format!("posting amount {:?} is not a decimal", p.amount))
            })?;
            let signed = if p.side == Side::Debit {
                amount
            } else {
                -amount
            };
            match key.account {
                Account::Called => {
                    partner_delta.entry(key.dimension.clone()).or_default().0 += signed
                }
                Account::CallReceivable => {
                    partner_delta.entry(key.dimension.clone()).or_default().0 -= signed
                }
                Account::Distributions => {
                    partner_delta.entry(key.dimension.clone()).or_default().1 += signed
                }
                _ => {}
            }
            *books.balances.entry(key).or_default() += signed;
        }
        for (partner, (paid, dist)) in partner_delta {
            if !paid.is_zero() || !dist.is_zero() {
                let flow = books.flows.entry((Arc::new(partner), date)).or_default();
                flow.0 += paid;
                flow.1 += dist;
            }
        }
        Ok(true)
    })?;
    Ok(out)
}

/// The books as of a date; without one, straight from the ledger's state
/// (maintained as entries are applied, and re-derived by verify): no scan.
pub fn books_as_of(
    ledger: &Ledger,
    as_of: Option<time::Date>,
) -> Result<BTreeMap<String, FundBooks>> {
    match as_of {
        Some(_) => books(ledger, as_of),
        None => Ok(ledger
            .state()
            .funds
            .iter()
            .map(|(id, f)| {
                (
                    id.clone(),
                    FundBooks {
                        balances: f.balances.clone(),
                        flows: f.flows.clone(),
                        last_date: f.last_date,
                    },
                )
            })
            .collect()),
    }
}

fn currency_of(ledger: &Ledger, fund: &str) -> Result<Currency> {
    Ok(ledger.state().fund(fund)?.currency)
}

/// One line of the trial balance.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceLine {
    pub account: String,
    pub class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup: Option<String>,
    /// Debit-positive balance.
    pub balance: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FundBalances {
    pub fund: String,
    pub currency: String,
    pub lines: Vec<BalanceLine>,
    /// Sum of all balances: always zero in a balanced ledger.
    pub total: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Balances {
    pub format_version: u32,
    pub as_of: Option<String>,
    pub funds: Vec<FundBalances>,
}

/// The trial balance of one fund or all funds.
pub fn balances(
    ledger: &Ledger,
    fund: Option<&str>,
    as_of: Option<time::Date>,
) -> Result<Balances> {
    if let Some(f) = fund {
        ledger.state().fund(f)?;
    }
    let books = books_as_of(ledger, as_of)?;
    let mut funds = Vec::new();
    for (id, b) in &books {
        if fund.is_some_and(|f| f != id) {
            continue;
        }
        let currency = currency_of(ledger, id)?;
        let mut total = Decimal::ZERO;
        let lines = b
            .balances
            .iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| {
                total += v;
                line(k, *v, currency)
            })
            .collect();
        funds.push(FundBalances {
            fund: id.clone(),
            currency: currency.code().into(),
            lines,
            total: money::format_amount(total, currency),
        });
    }
    Ok(Balances {
        format_version: QUERY_FORMAT_VERSION,
        as_of: as_of.map(|d| d.to_string()),
        funds,
    })
}

fn line(k: &AccountKey, v: Decimal, currency: Currency) -> BalanceLine {
    let (partner, startup) = match k.account.dimension() {
        crate::state::Dimension::Partner => (Some(k.dimension.clone()), None),
        crate::state::Dimension::Startup => (None, Some(k.dimension.clone())),
        crate::state::Dimension::None => (None, None),
    };
    BalanceLine {
        account: k.account.as_str().into(),
        class: k.account.class(),
        partner,
        startup,
        balance: money::format_amount(v, currency),
    }
}

/// Figures for one partner, or for a group of partners, or the fund.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Figures {
    pub committed: String,
    pub called: String,
    pub paid_in: String,
    pub unfunded: String,
    pub outstanding: String,
    pub distributed: String,
    pub nav: String,
    /// Share of fund NAV, a fraction with RATIO_PLACES places.
    pub nav_share: Option<String>,
    pub dpi: Option<String>,
    pub rvpi: Option<String>,
    pub tvpi: Option<String>,
    /// XIRR as a fraction; absent when it does not exist.
    pub irr: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartnerPosition {
    pub partner: String,
    pub legal_name: String,
    pub partner_type: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// Public against private money.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSplit {
    /// public | private | other
    pub group: &'static str,
    pub committed: String,
    pub paid_in: String,
    pub distributed: String,
    pub committed_share: Option<String>,
    pub paid_in_share: Option<String>,
    pub distributed_share: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Position {
    pub format_version: u32,
    pub fund: String,
    pub currency: String,
    pub as_of: Option<String>,
    pub partners: Vec<PartnerPosition>,
    pub fund_totals: Figures,
    pub by_group: Vec<GroupSplit>,
    /// Fund NAV from the asset side (cash + investments at fair value);
    /// equals fund_totals.nav in a consistent ledger.
    pub nav_from_assets: String,
}

#[derive(Default, Clone, Copy)]
struct Raw {
    committed: Decimal,
    called: Decimal,
    outstanding: Decimal,
    distributed: Decimal,
    nav: Decimal,
}

impl Raw {
    fn paid_in(&self) -> Decimal {
        self.called - self.outstanding
    }
    fn add(&mut self, o: &Raw) {
        self.committed += o.committed;
        self.called += o.called;
        self.outstanding += o.outstanding;
        self.distributed += o.distributed;
        self.nav += o.nav;
    }
}

/// Round a ratio half-even to `places`.
pub fn ratio(num: Decimal, den: Decimal, places: u32) -> Option<String> {
    if den.is_zero() {
        return None;
    }
    let r = num.checked_div(den)?;
    Some(format!(
        "{:.*}",
        places as usize,
        r.round_dp_with_strategy(places, RoundingStrategy::MidpointNearestEven)
    ))
}

fn figures(
    raw: &Raw,
    fund_nav: Decimal,
    flows: &[(time::Date, Decimal)],
    as_of: time::Date,
    cur: Currency,
) -> Figures {
    let paid = raw.paid_in();
    let mut cash_flows: Vec<(time::Date, Decimal)> = flows.to_vec();
    if !raw.nav.is_zero() {
        cash_flows.push((as_of, raw.nav));
    }
    let irr = crate::xirr::xirr(&cash_flows).map(|r| crate::xirr::format_rate(r, IRR_PLACES));
    Figures {
        committed: money::format_amount(raw.committed, cur),
        called: money::format_amount(raw.called, cur),
        paid_in: money::format_amount(paid, cur),
        unfunded: money::format_amount(raw.committed - raw.called, cur),
        outstanding: money::format_amount(raw.outstanding, cur),
        distributed: money::format_amount(raw.distributed, cur),
        nav: money::format_amount(raw.nav, cur),
        nav_share: ratio(raw.nav, fund_nav, RATIO_PLACES),
        dpi: ratio(raw.distributed, paid, RATIO_PLACES),
        rvpi: ratio(raw.nav, paid, RATIO_PLACES),
        tvpi: ratio(raw.distributed + raw.nav, paid, RATIO_PLACES),
        irr,
    }
}

/// Positions of every partner of a fund (or one partner), as of a date.
/// Without a date, as of the latest effective date recorded for the fund.
pub fn position(
    ledger: &Ledger,
    fund: &str,
    partner: Option<&str>,
    as_of: Option<time::Date>,
) -> Result<Position> {
    let state = ledger.state();
    let fund_state = state.fund(fund)?;
    if let Some(p) = partner {
        if !state.partners.contains_key(p) {
            return Err(Error::input(format!("unknown partner {p:?}")));
        }
    }
    let cur = fund_state.currency;
    let all = books_as_of(ledger, as_of)?;
    let empty = FundBooks::default();
    let b = all.get(fund).unwrap_or(&empty);
    let date = as_of.or(b.last_date).unwrap_or(time::Date::MIN);

    // Every partner with any posting, so that figures add up even when an
    // entry dated before a partner's commitment is in range.
    let partner_ids: Vec<String> = b
        .balances
        .keys()
        .filter(|k| k.account.dimension() == crate::state::Dimension::Partner)
        .map(|k| k.dimension.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut raws: BTreeMap<String, Raw> = BTreeMap::new();
    for p in &partner_ids {
        let nav = b.balance(Account::Called, p)
            - b.balance(Account::CallReceivable, p)
            - b.balance(Account::Distributions, p)
            - b.balance(Account::ManagementFees, p)
            - b.balance(Account::FundExpenses, p)
            - b.balance(Account::RealizedGain, p)
            - b.balance(Account::UnrealizedGain, p);
        raws.insert(
            p.clone(),
            Raw {
                committed: -b.balance(Account::Commitment, p),
                called: b.balance(Account::Called, p),
                outstanding: b.balance(Account::CallReceivable, p),
                distributed: b.balance(Account::Distributions, p),
                nav,
            },
        );
    }
    let mut total = Raw::default();
    for r in raws.values() {
        total.add(r);
    }
    let flows_of = |filter: &dyn Fn(&str) -> bool| -> Vec<(time::Date, Decimal)> {
        let mut by_date: BTreeMap<time::Date, Decimal> = BTreeMap::new();
        for ((p, d), (paid, dist)) in &b.flows {
            if filter(p) {
                *by_date.entry(*d).or_default() += *dist - *paid;
            }
        }
        by_date.into_iter().filter(|(_, v)| !v.is_zero()).collect()
    };
    let mut partners = Vec::new();
    for (p, raw) in &raws {
        if partner.is_some_and(|x| x != p) {
            continue;
        }
        let info = state.partners.get(p);
        partners.push(PartnerPosition {
            partner: p.clone(),
            legal_name: info.map(|i| i.legal_name.clone()).unwrap_or_default(),
            partner_type: info.map(|i| i.partner_type.clone()).unwrap_or_default(),
            figures: figures(raw, total.nav, &flows_of(&|x| x == p), date, cur),
        });
    }
    let fund_totals = figures(&total, total.nav, &flows_of(&|_| true), date, cur);
    let group_of = |p: &str| -> &'static str {
        match state.partners.get(p).map(|i| i.partner_type.as_str()) {
            Some(t) if PUBLIC_TYPES.contains(&t) => "public",
            Some("private") => "private",
            _ => "other",
        }
    };
    let by_group = ["public", "private", "other"]
        .into_iter()
        .map(|g| {
            let mut sum = Raw::default();
            for (p, r) in &raws {
                if group_of(p) == g {
                    sum.add(r);
                }
            }
            GroupSplit {
                group: g,
                committed: money::format_amount(sum.committed, cur),
                paid_in: money::format_amount(sum.paid_in(), cur),
                distributed: money::format_amount(sum.distributed, cur),
                committed_share: ratio(sum.committed, total.committed, RATIO_PLACES),
                paid_in_share: ratio(sum.paid_in(), total.paid_in(), RATIO_PLACES),
                distributed_share: ratio(sum.distributed, total.distributed, RATIO_PLACES),
            }
        })
        .collect();
    let nav_from_assets = b.balance(Account::Cash, "")
        + b.balances
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.account,
                    Account::Investments | Account::FairValueAdjustment
                )
            })
            .map(|(_, v)| *v)
            .sum::<Decimal>();
    Ok(Position {
        format_version: QUERY_FORMAT_VERSION,
        fund: fund.to_string(),
        currency: cur.code().into(),
        as_of: (date != time::Date::MIN).then(|| date.to_string()),
        partners,
        fund_totals,
        by_group,
        nav_from_assets: money::format_amount(nav_from_assets, cur),
    })
}

/// A plain-text table of a position, for terminals and the demo.
pub fn render_position(p: &Position) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Fund {} ({}), as of {}\n",
        p.fund,
        p.currency,
        p.as_of.as_deref().unwrap_or("-")
    ));
    let header = [
        "partner",
        "type",
        "committed",
        "paid-in",
        "outstanding",
        "unfunded",
        "distributed",
        "NAV",
        "DPI",
        "TVPI",
        "IRR",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    for pp in &p.partners {
        let f = &pp.figures;
        rows.push(vec![
            pp.partner.clone(),
            pp.partner_type.clone(),
            f.committed.clone(),
            f.paid_in.clone(),
            f.outstanding.clone(),
            f.unfunded.clone(),
            f.distributed.clone(),
            f.nav.clone(),
            opt(&f.dpi),
            opt(&f.tvpi),
            opt(&f.irr),
        ]);
    }
    let f = &p.fund_totals;
    rows.push(vec![
        "FUND".into(),
        String::new(),
        f.committed.clone(),
        f.paid_in.clone(),
        f.outstanding.clone(),
        f.unfunded.clone(),
        f.distributed.clone(),
        f.nav.clone(),
        opt(&f.dpi),
        opt(&f.tvpi),
        opt(&f.irr),
    ]);
    out.push_str(&render_table(&rows, 2));
    out.push_str("\nPublic and private money:\n");
    let mut g_rows: Vec<Vec<String>> = vec![[
        "group",
        "committed",
        "share",
        "paid-in",
        "share",
        "distributed",
        "share",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for g in &p.by_group {
        g_rows.push(vec![
            g.group.into(),
            g.committed.clone(),
            opt(&g.committed_share),
            g.paid_in.clone(),
            opt(&g.paid_in_share),
            g.distributed.clone(),
            opt(&g.distributed_share),
        ]);
    }
    out.push_str(&render_table(&g_rows, 1));
    out
}

/// Align columns: the first `left` columns left-aligned, the rest right.
pub fn render_table(rows: &[Vec<String>], left: usize) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            if c < left {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                line.push_str(&format!("{cell:>w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
