//! Fund-accounting tests through the library API (and a few through the
//! binary): random valid event sequences checked against the double-entry
//! invariants, every rule refused at append, idempotency, largest-remainder
//! splits, hand-computed positions, and the demo.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use ed25519_dalek::SigningKey;
use fundledger::event::*;
use fundledger::ledger::{decode_row, AppendRequest, Appended, Ledger};
use fundledger::money::{self, Currency};
use fundledger::query::{self, Figures};
use fundledger::verify::verify;
use fundledger::{keys, Error, ErrorKind};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;

const ORIGIN: &str = "ledger.example.org/accounting-tests";
/// Recording time of the genesis entry (2020-09-13); later appends add 1 ms.
const T0: i64 = 1_600_000_000_000;

// ---------------------------------------------------------------------------
// Fixtures and event builders
// ---------------------------------------------------------------------------

fn admin_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn recorder_key() -> SigningKey {
    SigningKey::from_bytes(&[8; 32])
}

/// A fresh ledger in a temp dir. Entry 1 enrolls a recorder key; every
/// later entry is signed by both the administrator and the recorder, so
/// that a signing policy asking for two signers on large amounts is met.
struct Fixture {
    ledger: Ledger,
    key: SigningKey,
    recorder: SigningKey,
    now: i64,
    path: PathBuf,
    dir: tempfile::TempDir,
}

/// Entry count and head hash: what a refused append must leave alone.
type Snapshot = (u64, Option<[u8; 32]>);

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.sqlite");
        let key = admin_key();
        let mut ledger = Ledger::init(&path, ORIGIN, &key, "admin", T0).expect("init");
        let recorder = recorder_key();
        let public_key =
            base64::engine::general_purpose::STANDARD.encode(recorder.verifying_key().as_bytes());
        ledger
            .append(AppendRequest {
                event: Event::KeyEnroll(KeyEnroll {
                    name: "recorder".into(),
                    public_key,
                    role: "recorder".into(),
                    partner: None,
                }),
                idempotency_key: None,
                signers: &[&key],
                now_unix_ms: T0 + 1,
            })
            .expect("enroll the recorder");
        Fixture {
            ledger,
            key,
            recorder,
            now: T0 + 1,
            path,
            dir,
        }
    }

    fn try_append_with_key(
        &mut self,
        event: Event,
        key: Option<&str>,
    ) -> fundledger::Result<Appended> {
        self.now += 1;
        self.ledger.append(AppendRequest {
            event,
            idempotency_key: key.map(str::to_string),
            signers: &[&self.key, &self.recorder],
            now_unix_ms: self.now,
        })
    }

    fn try_append(&mut self, event: Event) -> fundledger::Result<Appended> {
        self.try_append_with_key(event, None)
    }

    /// Append an event that must be accepted; returns its sequence number.
    fn append(&mut self, event: Event) -> u64 {
        let kind = event.kind();
        match self.try_append(event) {
            Ok(Appended::New { seq, .. }) => seq,
            Ok(other) => panic!("{kind} was not appended: {other:?}"),
            Err(e) => panic!("{kind} refused ({:?}): {e}", e.kind()),
        }
    }

    fn snapshot(&self) -> Snapshot {
        let store = self.ledger.store();
        (
            store.count().expect("count"),
            store.head().expect("head").map(|h| h.entry_hash),
        )
    }

    /// Append an event the rules must refuse: the error is of kind Rule,
    /// its text contains every needle, and the ledger is unchanged.
    fn refuse(&mut self, event: Event, needles: &[&str]) -> Error {
        let kind = event.kind();
        let before = self.snapshot();
        let last_seq = self.ledger.state().last_seq;
        let err = match self.try_append(event) {
            Ok(a) => panic!("{kind} should have been refused, got {a:?}"),
            Err(e) => e,
        };
        assert_eq!(
            err.kind(),
            ErrorKind::Rule,
            "{kind}: wrong kind of error: {err}"
        );
        let text = err.to_string();
        for needle in needles {
            assert!(
                text.contains(needle),
                "{kind}: error {text:?} does not mention {needle:?}"
            );
        }
        assert_eq!(
            self.snapshot(),
            before,
            "{kind}: a refused append changed the ledger"
        );
        assert_eq!(
            self.ledger.state().last_seq,
            last_seq,
            "{kind}: state advanced"
        );
        err
    }
}

/// A fund id and its currency code, to build the fund's events.
#[derive(Clone, Copy)]
struct Fnd {
    id: &'static str,
    cur: &'static str,
}

impl Fnd {
    fn create(self, date: &str) -> Event {
        Event::FundCreate(FundCreate {
            fund: self.id.into(),
            name: format!("Test fund {}", self.id),
            currency: self.cur.into(),
            jurisdiction: "AE (ADGM)".into(),
            vintage: 2021,
            management_fee_rate: "0.02".into(),
            management_fee_basis: "committed".into(),
            date: date.into(),
        })
    }

    fn fund_amount(self, partner: &str, amount: &str, date: &str) -> FundAmount {
        FundAmount {
            fund: self.id.into(),
            partner: partner.into(),
            amount: amount.into(),
            currency: self.cur.into(),
            date: date.into(),
            memo: None,
        }
    }

    fn commit(self, partner: &str, amount: &str, date: &str) -> Event {
        Event::Commitment(self.fund_amount(partner, amount, date))
    }

    fn reduce(self, partner: &str, amount: &str, date: &str) -> Event {
        Event::CommitmentReduce(self.fund_amount(partner, amount, date))
    }

    fn call(self, amount: &str, date: &str, due: &str) -> Event {
        Event::Call(Call {
            fund: self.id.into(),
            amount: amount.into(),
            currency: self.cur.into(),
            purpose: "investment".into(),
            date: date.into(),
            due_date: due.into(),
            memo: None,
        })
    }

    fn contribute(self, partner: &str, call: u64, amount: &str, date: &str) -> Event {
        Event::Contribution(Contribution {
            fund: self.id.into(),
            partner: partner.into(),
            call,
            amount: amount.into(),
            currency: self.cur.into(),
            date: date.into(),
            memo: None,
        })
    }

    fn invest(self, startup: &str, amount: &str, date: &str) -> Event {
        Event::Investment(StartupAmount {
            fund: self.id.into(),
            startup: startup.into(),
            amount: amount.into(),
            currency: self.cur.into(),
            date: date.into(),
            memo: None,
        })
    }

    fn value(self, startup: &str, fair_value: &str, date: &str) -> Event {
        Event::Valuation(Valuation {
            fund: self.id.into(),
            startup: startup.into(),
            fair_value: fair_value.into(),
            currency: self.cur.into(),
            date: date.into(),
            memo: None,
        })
    }

    fn realize(self, startup: &str, proceeds: &str, cost: &str, date: &str) -> Event {
        Event::Realization(Realization {
            fund: self.id.into(),
            startup: startup.into(),
            proceeds: proceeds.into(),
            cost_released: cost.into(),
            currency: self.cur.into(),
            date: date.into(),
            memo: None,
        })
    }

    fn total(self, amount: &str, date: &str) -> FundTotal {
        FundTotal {
            fund: self.id.into(),
            amount: amount.into(),
            currency: self.cur.into(),
            date: date.into(),
            memo: None,
        }
    }

    fn distribute(self, amount: &str, date: &str) -> Event {
        Event::Distribution(self.total(amount, date))
    }

    fn fee(self, amount: &str, date: &str) -> Event {
        Event::Fee(self.total(amount, date))
    }

    fn expense(self, amount: &str, date: &str) -> Event {
        Event::Expense(self.total(amount, date))
    }
}

fn partner_event(id: &str, partner_type: &str, country: &str, lei: Option<&str>) -> Event {
    Event::PartnerAdd(PartnerAdd {
        partner: id.into(),
        legal_name: format!("Partner {id}"),
        partner_type: partner_type.into(),
        country: country.into(),
        lei: lei.map(str::to_string),
        date: "2020-01-01".into(),
    })
}

fn partner(id: &str, partner_type: &str) -> Event {
    partner_event(id, partner_type, "AE", None)
}

fn startup(id: &str) -> Event {
    Event::StartupAdd(StartupAdd {
        startup: id.into(),
        name: format!("Startup {id}"),
        country: "AE".into(),
        sector: "AI".into(),
        date: "2020-01-01".into(),
    })
}

fn reverse(seq: u64, date: &str) -> Event {
    Event::Reversal(Reversal {
        seq,
        reason: "entered in error".into(),
        date: date.into(),
    })
}

fn dec(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a decimal"))
}

fn currency(code: &str) -> Currency {
    Currency::from_code(code).expect("currency")
}

// ---------------------------------------------------------------------------
// Invariants every ledger must satisfy
// ---------------------------------------------------------------------------

/// Check every accounting invariant of a ledger; returns the entry count.
fn check_invariants(ledger: &Ledger) -> u64 {
    let store = ledger.store();
    let state = ledger.state();

    // Every entry's stored postings balance per currency, with positive
    // amounts; a call's call_receivable debits (the partners' shares), and
    // its called, capital and unfunded lines, each sum to the call amount.
    let mut entries = 0u64;
    store
        .scan(0, None, |row| {
            let (record, body) = decode_row(&row)?;
            let seq = record.content.seq;
            assert_eq!(seq, entries, "entries are not numbered 0, 1, 2, ...");
            entries += 1;
            let mut net: BTreeMap<&str, Decimal> = BTreeMap::new();
            for p in &body.postings {
                let amount = dec(&p.amount);
                assert!(
                    amount > Decimal::ZERO,
                    "entry {seq}: posting amount {amount}"
                );
                let signed = if p.side == Side::Debit {
                    amount
                } else {
                    -amount
                };
                *net.entry(p.currency.as_str()).or_default() += signed;
            }
            for (cur, n) in net {
                assert!(
                    n.is_zero(),
                    "entry {seq} ({}): {cur} debits - credits = {n}",
                    record.content.kind
                );
            }
            if let Event::Call(c) = &body.event {
                let total = dec(&c.amount);
                let sum = |account: &str, side: Side| -> Decimal {
                    body.postings
                        .iter()
                        .filter(|p| p.account == account && p.side == side)
                        .map(|p| dec(&p.amount))
                        .sum()
                };
                assert_eq!(
                    sum("call_receivable", Side::Debit),
                    total,
                    "entry {seq}: call shares"
                );
                assert_eq!(sum("called", Side::Debit), total, "entry {seq}: called");
                assert_eq!(sum("capital", Side::Credit), total, "entry {seq}: capital");
                assert_eq!(
                    sum("unfunded", Side::Credit),
                    total,
                    "entry {seq}: unfunded"
                );
            }
            Ok(true)
        })
        .expect("scan");
    assert_eq!(entries, store.count().expect("count"));

    // The trial balance sums to zero per fund, and agrees line by line with
    // the state built at append time.
    let balances = query::balances(ledger, None, None).expect("balances");
    for f in &balances.funds {
        let cur = currency(&f.currency);
        assert!(dec(&f.total).is_zero(), "fund {} total {}", f.fund, f.total);
        assert_eq!(f.total, money::format_amount(Decimal::ZERO, cur));
        let lines: BTreeMap<String, String> = f
            .lines
            .iter()
            .map(|l| {
                let name = match (&l.partner, &l.startup) {
                    (Some(d), None) | (None, Some(d)) => format!("{}:{d}", l.account),
                    _ => l.account.clone(),
                };
                (name, l.balance.clone())
            })
            .collect();
        let fund = state.fund(&f.fund).expect("fund in state");
        let expected: BTreeMap<String, String> = fund
            .balances
            .iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (k.display(), money::format_amount(*v, cur)))
            .collect();
        assert_eq!(
            lines, expected,
            "fund {}: query balances differ from the state",
            f.fund
        );
    }

    for (id, fund) in &state.funds {
        let cur = fund.currency;
        let fmt = |d: Decimal| money::format_amount(d, cur);
        let position = query::position(ledger, id, None, None).expect("position");
        let partners = fund.partners();
        assert_eq!(
            position.partners.len(),
            partners.len(),
            "fund {id}: partner count"
        );
        for p in &partners {
            let committed = fund.committed(p);
            let called = fund.called(p);
            let unfunded = fund.unfunded(p);
            let outstanding = fund.outstanding(p);
            let paid_in = fund.paid_in(p);
            assert_eq!(
                committed,
                called + unfunded,
                "fund {id} partner {p}: committed != called + unfunded"
            );
            assert!(
                paid_in <= called,
                "fund {id} partner {p}: paid-in {paid_in} > called {called}"
            );
            assert!(
                paid_in >= Decimal::ZERO
                    && outstanding >= Decimal::ZERO
                    && unfunded >= Decimal::ZERO
            );
            // The call registry agrees with the balances.
            let live = fund.calls.iter().filter(|c| !c.reversed);
            let (reg_called, reg_paid) = live.filter_map(|c| c.shares.get(p)).fold(
                (Decimal::ZERO, Decimal::ZERO),
                |(a, b), s| {
                    assert!(
                        s.paid <= s.called,
                        "fund {id} partner {p}: paid more than called on a call"
                    );
                    (a + s.called, b + s.paid)
                },
            );
            assert_eq!(
                reg_called, called,
                "fund {id} partner {p}: calls registry vs called"
            );
            assert_eq!(
                reg_paid, paid_in,
                "fund {id} partner {p}: calls registry vs paid-in"
            );
            let pp = position
                .partners
                .iter()
                .find(|x| &x.partner == p)
                .expect("partner in position");
            let f = &pp.figures;
            assert_eq!(
                [
                    &f.committed,
                    &f.called,
                    &f.paid_in,
                    &f.unfunded,
                    &f.outstanding
                ],
                [
                    &fmt(committed),
                    &fmt(called),
                    &fmt(paid_in),
                    &fmt(unfunded),
                    &fmt(outstanding)
                ],
                "fund {id} partner {p}: position vs state"
            );
        }
        check_position_sums(&position);
    }

    let report = verify(store, &mut |_, _| {}).expect("verify runs");
    assert!(report.is_intact(), "verify failed: {:?}", report.failure);
    assert_eq!(report.entries_verified, entries);

    // Replaying the file gives the same books.
    let reopened = Ledger::open_read_only(store.path()).expect("reopen");
    for (id, fund) in &state.funds {
        let again = reopened.state().fund(id).expect("fund after replay");
        assert_eq!(again.balances, fund.balances, "fund {id}: replay differs");
        assert_eq!(again.calls.len(), fund.calls.len());
    }
    entries
}

/// A position's fund totals are the sums of its partners' figures, and its
/// NAV from partners' capital equals its NAV from the assets.
fn check_position_sums(position: &query::Position) {
    let id = &position.fund;
    let t = &position.fund_totals;
    type Field = fn(&Figures) -> &String;
    let fields: [(&str, Field); 7] = [
        ("committed", |f| &f.committed),
        ("called", |f| &f.called),
        ("paid_in", |f| &f.paid_in),
        ("unfunded", |f| &f.unfunded),
        ("outstanding", |f| &f.outstanding),
        ("distributed", |f| &f.distributed),
        ("nav", |f| &f.nav),
    ];
    for (name, get) in fields {
        let sum: Decimal = position.partners.iter().map(|p| dec(get(&p.figures))).sum();
        assert_eq!(
            dec(get(t)),
            sum,
            "fund {id}: fund total {name} != sum of partners"
        );
    }
    assert_eq!(
        position.nav_from_assets, t.nav,
        "fund {id}: NAV from assets != NAV from capital"
    );
}

// ---------------------------------------------------------------------------
// 1. Property test over random valid sequences
// ---------------------------------------------------------------------------

/// One generated step; amounts are fractions (per mille, or per cent for
/// prices) of what the state allows when the step runs.
#[derive(Debug, Clone)]
enum Op {
    Commit { partner: u8, units: u32 },
    Reduce { partner: u8, frac: u16 },
    Call { frac: u16 },
    Contribute { pick: u16, frac: u16, full: bool },
    Invest { startup: u8, frac: u16 },
    Value { pick: u16, pct: u16 },
    Realize { pick: u16, frac: u16, pct: u16 },
    Distribute { frac: u16 },
    Fee { frac: u16 },
    Expense { frac: u16 },
    Reverse { pick: u16 },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let frac = || 1u16..=1000;
    prop_oneof![
        1 => (any::<u8>(), 1u32..=1_000_000).prop_map(|(partner, units)| Op::Commit { partner, units }),
        1 => (any::<u8>(), frac()).prop_map(|(partner, frac)| Op::Reduce { partner, frac }),
        4 => frac().prop_map(|frac| Op::Call { frac }),
        6 => (any::<u16>(), frac(), any::<bool>()).prop_map(|(pick, frac, full)| Op::Contribute { pick, frac, full }),
        3 => (any::<u8>(), frac()).prop_map(|(startup, frac)| Op::Invest { startup, frac }),
        2 => (any::<u16>(), 0u16..=300).prop_map(|(pick, pct)| Op::Value { pick, pct }),
        2 => (any::<u16>(), frac(), 0u16..=300).prop_map(|(pick, frac, pct)| Op::Realize { pick, frac, pct }),
        2 => frac().prop_map(|frac| Op::Distribute { frac }),
        1 => frac().prop_map(|frac| Op::Fee { frac }),
        1 => frac().prop_map(|frac| Op::Expense { frac }),
        2 => any::<u16>().prop_map(|pick| Op::Reverse { pick }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    currency: &'static str,
    /// (partner type index, commitment in major units)
    partners: Vec<(u8, u32)>,
    ops: Vec<Op>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec!["USD", "JPY", "KWD"]),
        prop::collection::vec((0u8..5, 1u32..=10_000_000), 2..=6),
        prop::collection::vec(op_strategy(), 10..=40),
    )
        .prop_map(|(currency, partners, ops)| Case {
            currency,
            partners,
            ops,
        })
}

#[derive(Default)]
struct Tally {
    cases: Cell<u64>,
    attempted: Cell<u64>,
    refused: Cell<u64>,
    not_applicable: Cell<u64>,
    accepted_by_kind: std::cell::RefCell<BTreeMap<&'static str, u64>>,
}

const REVERSIBLE: &[&str] = &[
    "commitment",
    "commitment.reduce",
    "call",
    "contribution",
    "investment",
    "valuation",
    "realization",
    "distribution",
    "fee",
    "expense",
];

fn run_case(case: &Case, tally: &Tally) {
    let fund = Fnd {
        id: "pf",
        cur: case.currency,
    };
    let cur = currency(case.currency);
    let units = |d: Decimal| money::to_minor_units(d, cur).expect("minor units");
    let amt = |u: i128| money::format_amount(money::from_minor_units(u, cur).expect("amount"), cur);
    let part = |base: i128, frac: u16| (base * i128::from(frac) / 1000).max(1);
    let major = 10i128.pow(cur.minor_units());

    let mut fx = Fixture::new();
    fx.append(fund.create("2020-01-01"));
    let types = PARTNER_TYPES;
    let ids: Vec<String> = (0..case.partners.len()).map(|i| format!("p{i}")).collect();
    let mut fund_entries: Vec<(u64, &'static str)> = Vec::new();
    for (id, (t, _)) in ids.iter().zip(&case.partners) {
        fx.append(partner(id, types[usize::from(*t) % types.len()]));
    }
    let startups = ["s0", "s1", "s2"];
    for s in startups {
        fx.append(startup(s));
    }
    for (id, (_, c)) in ids.iter().zip(&case.partners) {
        let seq = fx.append(fund.commit(id, &amt(i128::from(*c) * major), "2020-01-02"));
        fund_entries.push((seq, "commitment"));
    }

    let base = time::Date::from_calendar_date(2020, time::Month::January, 10).expect("date");
    for (i, op) in case.ops.iter().enumerate() {
        let date = (base + time::Duration::days(i as i64)).to_string();
        let f = fx.ledger.state().fund(fund.id).expect("fund");
        let cash = units(f.cash());
        let held: Vec<&str> = startups
            .iter()
            .copied()
            .filter(|s| f.cost(s) > Decimal::ZERO)
            .collect();
        let event = match op {
            Op::Commit { partner, units: u } => {
                let p = &ids[usize::from(*partner) % ids.len()];
                Some(fund.commit(p, &amt(i128::from(*u) * major), &date))
            }
            Op::Reduce { partner, frac } => {
                let p = &ids[usize::from(*partner) % ids.len()];
                let unfunded = units(f.unfunded(p));
                (unfunded > 0).then(|| fund.reduce(p, &amt(part(unfunded, *frac)), &date))
            }
            Op::Call { frac } => {
                // Largest total such that every partner's share, even with
                // the extra unit of the largest-remainder rule, stays
                // within its unfunded commitment.
                let total_committed: i128 = ids.iter().map(|p| units(f.committed(p))).sum();
                let max = ids
                    .iter()
                    .filter(|p| f.committed(p) > Decimal::ZERO)
                    .map(|p| {
                        let (c, u) = (units(f.committed(p)), units(f.unfunded(p)));
                        if u < 1 {
                            0
                        } else {
                            (u - 1) * total_committed / c
                        }
                    })
                    .min()
                    .unwrap_or(0);
                (max > 0).then(|| fund.call(&amt(part(max, *frac)), &date, &date))
            }
            Op::Contribute { pick, frac, full } => {
                let open: Vec<(u64, &String, i128)> = f
                    .calls
                    .iter()
                    .filter(|c| !c.reversed)
                    .flat_map(|c| {
                        c.shares
                            .iter()
                            .map(move |(p, s)| (c.number, p, units(s.called - s.paid)))
                    })
                    .filter(|(_, _, o)| *o > 0)
                    .collect();
                (!open.is_empty()).then(|| {
                    let (number, p, outstanding) = open[usize::from(*pick) % open.len()];
                    let amount = if *full {
                        outstanding
                    } else {
                        part(outstanding, *frac)
                    };
                    fund.contribute(p, number, &amt(amount), &date)
                })
            }
            Op::Invest { startup: s, frac } => (cash > 0).then(|| {
                let s = startups[usize::from(*s) % startups.len()];
                fund.invest(s, &amt(part(cash, *frac)), &date)
            }),
            Op::Value { pick, pct } => (!held.is_empty()).then(|| {
                let s = held[usize::from(*pick) % held.len()];
                let fair = units(f.cost(s)) * i128::from(*pct) / 100;
                fund.value(s, &amt(fair), &date)
            }),
            Op::Realize { pick, frac, pct } => (!held.is_empty()).then(|| {
                let s = held[usize::from(*pick) % held.len()];
                let released = part(units(f.cost(s)), *frac);
                let proceeds = released * i128::from(*pct) / 100;
                fund.realize(s, &amt(proceeds), &amt(released), &date)
            }),
            Op::Distribute { frac } => {
                (cash > 0).then(|| fund.distribute(&amt(part(cash, *frac)), &date))
            }
            Op::Fee { frac } => (cash > 0).then(|| fund.fee(&amt(part(cash, *frac)), &date)),
            Op::Expense { frac } => {
                (cash > 0).then(|| fund.expense(&amt(part(cash, *frac)), &date))
            }
            Op::Reverse { pick } => {
                let state = fx.ledger.state();
                let candidates: Vec<u64> = fund_entries
                    .iter()
                    .filter(|(seq, kind)| {
                        REVERSIBLE.contains(kind)
                            && !state.reversed.contains(seq)
                            && !(*kind == "call"
                                && f.calls.iter().any(|c| {
                                    c.seq == *seq && c.shares.values().any(|s| !s.paid.is_zero())
                                }))
                    })
                    .map(|(seq, _)| *seq)
                    .collect();
                (!candidates.is_empty())
                    .then(|| reverse(candidates[usize::from(*pick) % candidates.len()], &date))
            }
        };
        let Some(event) = event else {
            tally.not_applicable.set(tally.not_applicable.get() + 1);
            continue;
        };
        let kind = event.kind();
        tally.attempted.set(tally.attempted.get() + 1);
        let before = fx.snapshot();
        match fx.try_append(event.clone()) {
            Ok(Appended::New { seq, .. }) => {
                fund_entries.push((seq, kind));
                *tally.accepted_by_kind.borrow_mut().entry(kind).or_default() += 1;
            }
            Ok(other) => panic!("step {i} {op:?}: unexpected {other:?}"),
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::Rule,
                    "step {i} {op:?}: {event:?} failed with {e}"
                );
                assert_eq!(
                    fx.snapshot(),
                    before,
                    "step {i}: a refused append changed the ledger"
                );
                tally.refused.set(tally.refused.get() + 1);
            }
        }
    }
    check_invariants(&fx.ledger);
    // The same sums hold as of a date in the middle of the sequence.
    let mid = base + time::Duration::days(case.ops.len() as i64 / 2);
    for f in query::balances(&fx.ledger, None, Some(mid))
        .expect("balances")
        .funds
    {
        assert!(dec(&f.total).is_zero(), "as of {mid}: total {}", f.total);
    }
    check_position_sums(&query::position(&fx.ledger, fund.id, None, Some(mid)).expect("position"));
    tally.cases.set(tally.cases.get() + 1);
}

#[test]
fn random_valid_sequences_keep_the_books_consistent() {
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let tally = Tally::default();
    let result = runner.run(&case_strategy(), |case| {
        run_case(&case, &tally);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (attempted, refused) = (tally.attempted.get(), tally.refused.get());
    let accepted = tally.accepted_by_kind.borrow();
    eprintln!(
        "{} cases: {attempted} steps attempted, {refused} refused, {} not applicable; accepted by kind {accepted:?}",
        tally.cases.get(),
        tally.not_applicable.get()
    );
    assert_eq!(tally.cases.get(), 24);
    assert!(
        attempted >= 24 * 10,
        "too few steps were attempted: {attempted}"
    );
    // Most generated steps must be valid, or the test checks little.
    assert!(
        refused * 5 <= attempted,
        "{refused} of {attempted} steps were refused"
    );
    // Every kind of event was exercised.
    for kind in REVERSIBLE.iter().chain(&["reversal"]) {
        assert!(
            accepted.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} was ever accepted"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Every rule refused at append leaves the ledger unchanged
// ---------------------------------------------------------------------------

const USD: Fnd = Fnd {
    id: "usd-fund",
    cur: "USD",
};
const JPY: Fnd = Fnd {
    id: "jpy-fund",
    cur: "JPY",
};
const KWD: Fnd = Fnd {
    id: "kwd-fund",
    cur: "KWD",
};

/// Seq numbers of the entries `base_books` records.
struct Base {
    fund_create: u64,
    call1: u64,
    beta_contribution: u64,
}

/// A USD fund with alpha and beta (1000.00 each), call 1 of 500.00 (250.00
/// each), alpha paid 250.00 and beta 100.00 (150.00 outstanding), 300.00
/// invested in acme: cash 50.00. Also JPY and KWD funds with one
/// commitment each.
fn base_books(fx: &mut Fixture) -> Base {
    let fund_create = fx.append(USD.create("2021-01-01"));
    fx.append(JPY.create("2021-01-01"));
    fx.append(KWD.create("2021-01-01"));
    fx.append(partner("alpha", "government"));
    fx.append(partner("beta", "private"));
    fx.append(partner("gamma", "other"));
    fx.append(startup("acme"));
    fx.append(startup("bolt"));
    fx.append(USD.commit("alpha", "1000.00", "2021-01-02"));
    fx.append(USD.commit("beta", "1000.00", "2021-01-02"));
    fx.append(JPY.commit("alpha", "1000000", "2021-01-02"));
    fx.append(KWD.commit("alpha", "1000.000", "2021-01-02"));
    let call1 = fx.append(USD.call("500.00", "2021-01-10", "2021-02-10"));
    fx.append(USD.contribute("alpha", 1, "250.00", "2021-02-01"));
    let beta_contribution = fx.append(USD.contribute("beta", 1, "100.00", "2021-02-01"));
    fx.append(USD.invest("acme", "300.00", "2021-03-01"));
    let f = fx.ledger.state().fund(USD.id).expect("fund");
    assert_eq!(f.cash(), dec("50.00"));
    assert_eq!(f.outstanding("beta"), dec("150.00"));
    Base {
        fund_create,
        call1,
        beta_contribution,
    }
}

#[test]
fn refuses_zero_amounts() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    let above = &["above zero"][..];
    fx.refuse(USD.commit("alpha", "0.00", d), above);
    fx.refuse(USD.reduce("alpha", "0.00", d), above);
    fx.refuse(USD.call("0.00", d, d), above);
    fx.refuse(USD.contribute("beta", 1, "0.00", d), above);
    fx.refuse(USD.invest("acme", "0.00", d), above);
    fx.refuse(USD.realize("acme", "10.00", "0.00", d), above);
    fx.refuse(USD.distribute("0.00", d), above);
    fx.refuse(USD.fee("0.00", d), above);
    fx.refuse(USD.expense("0.00", d), above);
    fx.refuse(JPY.commit("alpha", "0", d), above);
    fx.refuse(KWD.commit("alpha", "0.000", d), above);
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_amounts_with_the_wrong_number_of_decimal_places() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    // USD has 2 places, JPY 0, KWD 3: more places are refused, and so are
    // fewer (a stored amount has exactly one spelling).
    for amount in ["10.001", "10.5", "10", "10.0000"] {
        fx.refuse(USD.commit("alpha", amount, d), &["USD", amount]);
        fx.refuse(USD.expense(amount, d), &["USD"]);
    }
    for amount in ["1000.5", "1000.0", "1000.00"] {
        fx.refuse(JPY.commit("alpha", amount, d), &["JPY", amount]);
    }
    for amount in ["1.0005", "1.50", "1.5", "1"] {
        fx.refuse(KWD.commit("alpha", amount, d), &["KWD", amount]);
    }
    // Other malformed spellings.
    for amount in ["-1.00", "1e3", "01.00", " 1.00", "1,000.00", ""] {
        fx.refuse(USD.commit("alpha", amount, d), &[]);
    }
    // The canonical spellings are accepted.
    fx.append(USD.commit("alpha", "10.00", d));
    fx.append(JPY.commit("alpha", "1000", d));
    fx.append(KWD.commit("alpha", "1.500", d));
    let s = fx.ledger.state();
    assert_eq!(s.fund(JPY.id).unwrap().committed("alpha"), dec("1001000"));
    assert_eq!(s.fund(KWD.id).unwrap().committed("alpha"), dec("1001.500"));
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_unknown_funds_partners_startups_and_calls() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    let nope = Fnd {
        id: "no-such-fund",
        cur: "USD",
    };
    fx.refuse(
        nope.commit("alpha", "1.00", d),
        &["unknown fund", "no-such-fund"],
    );
    fx.refuse(nope.call("1.00", d, d), &["unknown fund"]);
    fx.refuse(nope.distribute("1.00", d), &["unknown fund"]);
    fx.refuse(
        USD.commit("ghost", "1.00", d),
        &["unknown partner", "ghost"],
    );
    fx.refuse(
        USD.contribute("ghost", 1, "1.00", d),
        &["unknown partner", "ghost"],
    );
    fx.refuse(
        USD.invest("ghost", "1.00", d),
        &["unknown startup", "ghost"],
    );
    fx.refuse(USD.value("ghost", "1.00", d), &["unknown startup", "ghost"]);
    fx.refuse(
        USD.realize("ghost", "1.00", "1.00", d),
        &["unknown startup", "ghost"],
    );
    fx.refuse(
        USD.contribute("beta", 2, "1.00", d),
        &["no call number 2", "calls are numbered 1 to 1"],
    );
    fx.refuse(
        JPY.contribute("alpha", 1, "1", d),
        &["no call number 1", "has issued no capital call yet"],
    );
    fx.refuse(USD.contribute("beta", 0, "1.00", d), &["no call number 0"]);
    fx.refuse(
        USD.contribute("beta", u64::MAX, "1.00", d),
        &["no call number"],
    );
    // A known partner without a share in the call.
    fx.refuse(
        USD.contribute("gamma", 1, "1.00", d),
        &["gamma", "no share in call 1"],
    );
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_a_call_above_a_partners_unfunded_commitment_after_a_reduction() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    // alpha and beta: committed 1000.00, called 250.00, unfunded 750.00.
    // beta reduces by 700.00: committed 300.00, unfunded 50.00.
    fx.append(USD.reduce("beta", "700.00", "2021-04-01"));
    fx.refuse(
        USD.reduce("beta", "50.01", "2021-04-01"),
        &["exceeds", "unfunded", "50.00"],
    );
    // A call of 260.00 splits 1000:300 -> alpha 200.00, beta 60.00 > 50.00.
    fx.refuse(
        USD.call("260.00", "2021-04-02", "2021-05-01"),
        &["partner beta", "60.00", "unfunded commitment of 50.00"],
    );
    // 216.66 gives beta 49.998.. -> 50.00 with the largest remainder, the
    // most it can take: accepted.
    fx.append(USD.call("216.66", "2021-04-02", "2021-05-01"));
    let f = fx.ledger.state().fund(USD.id).unwrap();
    assert_eq!(f.unfunded("beta"), Decimal::ZERO);
    assert_eq!(f.calls[1].shares["beta"].called, dec("50.00"));
    assert_eq!(f.calls[1].shares["alpha"].called, dec("166.66"));
    // Now beta has nothing left: any call is refused.
    // (A call of 0.01 would give beta nothing and alpha the cent.)
    fx.refuse(
        USD.call("1.00", "2021-04-03", "2021-05-01"),
        &["partner beta", "0.23"],
    );
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_a_call_above_a_partners_unfunded_commitment_after_a_reversal() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    // beta tops up by 1000.00 (2000.00 committed), then a call of 600.00
    // splits 1000:2000 -> alpha 200.00, beta 400.00. Unfunded: alpha
    // 550.00, beta 1350.00. Reversing the top-up leaves beta 1000.00
    // committed and 350.00 unfunded.
    let top_up = fx.append(USD.commit("beta", "1000.00", "2021-04-01"));
    fx.append(USD.call("600.00", "2021-04-02", "2021-05-01"));
    fx.append(reverse(top_up, "2021-04-03"));
    let f = fx.ledger.state().fund(USD.id).unwrap();
    assert_eq!(
        (f.unfunded("alpha"), f.unfunded("beta")),
        (dec("550.00"), dec("350.00"))
    );
    // A call of 800.00 splits 1:1 -> 400.00 each; beta has 350.00.
    fx.refuse(
        USD.call("800.00", "2021-04-04", "2021-05-01"),
        &["partner beta", "400.00", "unfunded commitment of 350.00"],
    );
    fx.append(USD.call("700.00", "2021-04-04", "2021-05-01"));
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_contributions_above_outstanding() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    fx.refuse(
        USD.contribute("beta", 1, "150.01", d),
        &["exceeds", "150.00", "beta"],
    );
    fx.refuse(
        USD.contribute("alpha", 1, "0.01", d),
        &["exceeds", "0.00", "alpha"],
    );
    // Paying before the call's notice date is refused too.
    fx.refuse(USD.contribute("beta", 1, "1.00", "2021-01-09"), &["before"]);
    fx.append(USD.contribute("beta", 1, "150.00", d));
    fx.refuse(USD.contribute("beta", 1, "0.01", d), &["exceeds"]);
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_spending_cash_the_fund_does_not_have() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    let needles = &["exceeds the fund's cash of 50.00"][..];
    fx.refuse(USD.invest("acme", "50.01", d), needles);
    fx.refuse(USD.fee("50.01", d), needles);
    fx.refuse(USD.expense("50.01", d), needles);
    fx.refuse(USD.distribute("50.01", d), needles);
    // Exactly the cash is fine, and then nothing more is.
    fx.append(USD.fee("50.00", d));
    fx.refuse(
        USD.distribute("0.01", d),
        &["exceeds the fund's cash of 0.00"],
    );
    fx.refuse(
        USD.invest("bolt", "0.01", d),
        &["exceeds the fund's cash of 0.00"],
    );
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_realizations_beyond_cost_and_valuations_of_startups_not_held() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    fx.refuse(
        USD.realize("acme", "500.00", "300.01", d),
        &["exceeds the cost of 300.00", "acme"],
    );
    fx.refuse(
        USD.realize("bolt", "1.00", "0.01", d),
        &["exceeds the cost of 0.00", "bolt"],
    );
    fx.refuse(
        USD.value("bolt", "100.00", d),
        &["holds no investment in bolt"],
    );
    // Releasing all the cost is fine; afterwards acme is no longer held.
    fx.append(USD.realize("acme", "400.00", "300.00", d));
    fx.refuse(
        USD.value("acme", "100.00", d),
        &["holds no investment in acme"],
    );
    fx.refuse(
        USD.realize("acme", "1.00", "0.01", d),
        &["exceeds the cost of 0.00"],
    );
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_bad_reversals() {
    let mut fx = Fixture::new();
    let base = base_books(&mut fx);
    let d = "2021-04-01";
    let head = fx.ledger.state().last_seq.unwrap();
    fx.refuse(
        reverse(9999, d),
        &["cannot reverse entry 9999", "no such entry"],
    );
    fx.refuse(reverse(head + 1, d), &["no such entry"]);
    fx.refuse(
        reverse(base.call1, d),
        &["call 1 has contributions", "reverse them first"],
    );
    fx.refuse(
        reverse(base.fund_create, d),
        &["fund.create", "cannot be reversed"],
    );
    fx.refuse(reverse(0, d), &["genesis", "cannot be reversed"]);
    fx.refuse(reverse(1, d), &["key.enroll", "cannot be reversed"]);
    fx.refuse(
        reverse(base.fund_create + 3, d),
        &["partner.add", "cannot be reversed"],
    );
    // Reverse a fee, then try again, and try to reverse the reversal.
    let fee = fx.append(USD.fee("10.00", d));
    let reversal = fx.append(reverse(fee, d));
    let already = format!("entry {fee} is already reversed");
    fx.refuse(reverse(fee, d), &[already.as_str()]);
    fx.refuse(reverse(reversal, d), &["reversal", "cannot be reversed"]);
    // A reversal that would drive cash negative: beta's contribution of
    // 100.00 when the fund holds only 50.00.
    fx.refuse(reverse(base.beta_contribution, d), &["cash", "-50.00"]);
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_a_currency_that_is_not_the_funds() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    let eur = Fnd {
        id: USD.id,
        cur: "EUR",
    };
    let jpy_in_usd = Fnd {
        id: USD.id,
        cur: "JPY",
    };
    let needles = &["currency EUR is not the currency of fund usd-fund (USD)"][..];
    fx.refuse(eur.commit("alpha", "1.00", d), needles);
    fx.refuse(eur.call("1.00", d, d), needles);
    fx.refuse(eur.contribute("beta", 1, "1.00", d), needles);
    fx.refuse(eur.invest("acme", "1.00", d), needles);
    fx.refuse(eur.value("acme", "1.00", d), needles);
    fx.refuse(eur.realize("acme", "1.00", "1.00", d), needles);
    fx.refuse(eur.distribute("1.00", d), needles);
    fx.refuse(jpy_in_usd.commit("alpha", "100", d), &["JPY", "USD"]);
    let usd_in_jpy = Fnd {
        id: JPY.id,
        cur: "USD",
    };
    fx.refuse(usd_in_jpy.commit("alpha", "1.00", d), &["USD", "JPY"]);
    check_invariants(&fx.ledger);
}

#[test]
fn refuses_duplicate_ids_and_invalid_partners() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    fx.refuse(USD.create("2021-04-01"), &["fund usd-fund already exists"]);
    let usd_as_eur = Fnd {
        id: USD.id,
        cur: "EUR",
    };
    fx.refuse(usd_as_eur.create("2021-04-01"), &["already exists"]);
    fx.refuse(
        partner("alpha", "private"),
        &["partner alpha already exists"],
    );
    fx.refuse(startup("acme"), &["startup acme already exists"]);
    fx.refuse(
        partner_event("delta", "ngo", "AE", None),
        &["partner type \"ngo\""],
    );
    fx.refuse(
        partner_event("delta", "Government", "AE", None),
        &["partner type"],
    );
    for country in ["XX", "us", "USA", "", "U"] {
        fx.refuse(
            partner_event("delta", "private", country, None),
            &["ISO 3166-1"],
        );
    }
    for lei in [
        "506700GE1G29325QX364",  // check digits wrong
        "506700ge1g29325qx363",  // lower case
        "506700GE1G29325QX36",   // too short
        "506700GE1G29325QX3630", // too long
        "",
    ] {
        fx.refuse(partner_event("delta", "private", "US", Some(lei)), &["LEI"]);
    }
    for bad_id in ["Delta", "-delta", "del ta", ""] {
        fx.refuse(partner(bad_id, "private"), &["partner id"]);
    }
    // GLEIF's own LEI is valid.
    fx.append(partner_event(
        "delta",
        "private",
        "US",
        Some("506700GE1G29325QX363"),
    ));
    check_invariants(&fx.ledger);
}

// ---------------------------------------------------------------------------
// The CLI: refusals leave the file's bytes unchanged
// ---------------------------------------------------------------------------

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fundledger"))
        .args(args)
        .env_remove("FUNDLEDGER_LEDGER")
        .env_remove("FUNDLEDGER_KEY")
        .output()
        .expect("run fundledger")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The bytes of the ledger file and of its write-ahead log, if it holds
/// any (a read-only reader may leave an empty one behind, which the next
/// writer removes).
fn file_bytes(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal = std::fs::read(wal).ok().filter(|w| !w.is_empty());
    (std::fs::read(path).expect("read ledger"), wal)
}

/// A ledger with the base books, closed, and the admin key written as a
/// PEM file for the binary. Returns (fixture dir, ledger path, key path,
/// the base entries).
fn cli_books() -> (tempfile::TempDir, PathBuf, PathBuf, Base) {
    let mut fx = Fixture::new();
    let base = base_books(&mut fx);
    let key = keys::write_key_files(&fx.dir.path().join("keys"), "admin", &fx.key)
        .expect("write key")
        .private;
    let Fixture {
        ledger, dir, path, ..
    } = fx;
    drop(ledger);
    (dir, path, key, base)
}

#[test]
fn cli_refusals_leave_the_file_unchanged() {
    let (_dir, ledger, key, base) = cli_books();
    let l = ledger.to_str().unwrap();
    let k = key.to_str().unwrap();
    let d = "2021-04-01";
    let fund_create = base.fund_create.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "commit",
                "--fund",
                "usd-fund",
                "--partner",
                "alpha",
                "--amount",
                "0 USD",
            ],
            "above zero",
        ),
        (
            vec![
                "commit",
                "--fund",
                "usd-fund",
                "--partner",
                "alpha",
                "--amount",
                "10.001 USD",
            ],
            "3 decimal places but USD allows 2",
        ),
        (
            vec![
                "commit",
                "--fund",
                "jpy-fund",
                "--partner",
                "alpha",
                "--amount",
                "10.5 JPY",
            ],
            "1 decimal place but JPY allows 0",
        ),
        (
            vec![
                "commit",
                "--fund",
                "kwd-fund",
                "--partner",
                "alpha",
                "--amount",
                "1.0005 KWD",
            ],
            "4 decimal places but KWD allows 3",
        ),
        (
            vec![
                "commit",
                "--fund",
                "usd-fund",
                "--partner",
                "alpha",
                "--amount",
                "10.00 EUR",
            ],
            "not the currency of fund usd-fund",
        ),
        (
            vec![
                "commit",
                "--fund",
                "nope",
                "--partner",
                "alpha",
                "--amount",
                "1 USD",
            ],
            "unknown fund",
        ),
        (
            vec![
                "commit",
                "--fund",
                "usd-fund",
                "--partner",
                "ghost",
                "--amount",
                "1 USD",
            ],
            "unknown partner",
        ),
        (
            vec![
                "contribute",
                "--fund",
                "usd-fund",
                "--partner",
                "beta",
                "--call",
                "1",
                "--amount",
                "150.01 USD",
            ],
            "exceeds",
        ),
        (
            vec![
                "contribute",
                "--fund",
                "usd-fund",
                "--partner",
                "beta",
                "--call",
                "7",
                "--amount",
                "1 USD",
            ],
            "no call number 7",
        ),
        (
            vec![
                "invest",
                "--fund",
                "usd-fund",
                "--startup",
                "acme",
                "--amount",
                "50.01 USD",
            ],
            "exceeds the fund's cash",
        ),
        (
            vec!["distribute", "--fund", "usd-fund", "--amount", "50.01 USD"],
            "exceeds the fund's cash",
        ),
        (
            vec!["fee", "--fund", "usd-fund", "--amount", "50.01 USD"],
            "exceeds the fund's cash",
        ),
        (
            vec!["expense", "--fund", "usd-fund", "--amount", "50.01 USD"],
            "exceeds the fund's cash",
        ),
        (
            vec![
                "realize",
                "--fund",
                "usd-fund",
                "--startup",
                "acme",
                "--proceeds",
                "1 USD",
                "--cost",
                "300.01 USD",
            ],
            "exceeds the cost",
        ),
        (
            vec![
                "value",
                "--fund",
                "usd-fund",
                "--startup",
                "bolt",
                "--fair-value",
                "1 USD",
            ],
            "holds no investment",
        ),
        (
            vec![
                "call",
                "--fund",
                "usd-fund",
                "--amount",
                "2000 USD",
                "--purpose",
                "investment",
                "--due-date",
                "2021-05-01",
            ],
            "unfunded commitment",
        ),
        (
            vec!["reverse", &fund_create, "--reason", "mistake"],
            "cannot be reversed",
        ),
        (
            vec!["reverse", "999", "--reason", "mistake"],
            "no such entry",
        ),
        (
            vec![
                "partner",
                "add",
                "--id",
                "alpha",
                "--name",
                "A",
                "--type",
                "private",
                "--country",
                "AE",
            ],
            "already exists",
        ),
        (
            vec![
                "partner",
                "add",
                "--id",
                "delta",
                "--name",
                "D",
                "--type",
                "ngo",
                "--country",
                "AE",
            ],
            "partner type",
        ),
        (
            vec![
                "partner",
                "add",
                "--id",
                "delta",
                "--name",
                "D",
                "--type",
                "private",
                "--country",
                "XX",
            ],
            "ISO 3166-1",
        ),
        (
            vec![
                "partner",
                "add",
                "--id",
                "delta",
                "--name",
                "D",
                "--type",
                "private",
                "--country",
                "US",
                "--lei",
                "506700GE1G29325QX364",
            ],
            "LEI",
        ),
        (
            vec![
                "startup",
                "add",
                "--id",
                "acme",
                "--name",
                "A",
                "--country",
                "AE",
                "--sector",
                "AI",
            ],
            "already exists",
        ),
    ];
    for (args, needle) in cases {
        let before = file_bytes(&ledger);
        let mut full = vec!["--ledger", l, "--key", k];
        full.extend(&args);
        full.extend(["--date", d]);
        let out = cli(&full);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: stdout {} stderr {stderr}",
            text(&out.stdout)
        );
        assert!(
            stderr.contains("error:") && stderr.contains(needle),
            "{args:?}: stderr {stderr:?} lacks {needle:?}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: printed {}",
            text(&out.stdout)
        );
        assert!(
            file_bytes(&ledger) == before,
            "{args:?}: the ledger file changed"
        );
    }
    // The binary still accepts a valid entry on that file, and it verifies.
    let out = cli(&[
        "--ledger", l, "--key", k, "fee", "--fund", "usd-fund", "--amount", "50 USD", "--date", d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = cli(&["--ledger", l, "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    check_invariants(&Ledger::open_read_only(&ledger).unwrap());
}

// ---------------------------------------------------------------------------
// 3. Idempotency
// ---------------------------------------------------------------------------

#[test]
fn idempotency_keys_record_once_and_refuse_other_content() {
    let mut fx = Fixture::new();
    base_books(&mut fx);
    let d = "2021-04-01";
    let first = fx
        .try_append_with_key(
            USD.contribute("beta", 1, "150.00", d),
            Some("bank-ref-0001"),
        )
        .unwrap();
    let Appended::New { seq, .. } = first else {
        panic!("first append: {first:?}")
    };
    let snap = fx.snapshot();
    // The same key and content: already recorded, even though the
    // contribution would now exceed what is outstanding.
    let again = fx
        .try_append_with_key(
            USD.contribute("beta", 1, "150.00", d),
            Some("bank-ref-0001"),
        )
        .unwrap();
    assert_eq!(again, Appended::AlreadyRecorded { seq });
    assert_eq!(fx.snapshot(), snap);

    // The same key with different content: a conflict, nothing written.
    for other in [
        USD.contribute("beta", 1, "149.00", d),
        USD.contribute("beta", 1, "150.00", "2021-04-02"),
        USD.fee("150.00", d),
    ] {
        let err = fx
            .try_append_with_key(other, Some("bank-ref-0001"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(
            err.message().contains("bank-ref-0001")
                && err.message().contains(&format!("entry {seq}")),
            "{err}"
        );
        assert_eq!(fx.snapshot(), snap);
    }
    // Same fields, other kind (fee vs expense): a conflict too.
    fx.try_append_with_key(USD.fee("10.00", d), Some("fee-q1"))
        .unwrap();
    let snap = fx.snapshot();
    let err = fx
        .try_append_with_key(USD.expense("10.00", d), Some("fee-q1"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(fx.snapshot(), snap);

    // A refused entry does not use up its key.
    let err = fx
        .try_append_with_key(USD.fee("999.00", d), Some("fee-q2"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rule);
    assert_eq!(fx.snapshot(), snap);
    let ok = fx
        .try_append_with_key(USD.fee("1.00", d), Some("fee-q2"))
        .unwrap();
    assert!(matches!(ok, Appended::New { .. }));

    // A malformed key is an input error.
    let snap = fx.snapshot();
    let err = fx
        .try_append_with_key(USD.fee("1.00", d), Some("has space"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert_eq!(fx.snapshot(), snap);
    check_invariants(&fx.ledger);
}

#[test]
fn cli_idempotency_key_appends_once() {
    let (_dir, ledger, key, _) = cli_books();
    let l = ledger.to_str().unwrap();
    let k = key.to_str().unwrap();
    let args = |amount: &'static str| -> Vec<&str> {
        vec![
            "--ledger",
            l,
            "--key",
            k,
            "contribute",
            "--fund",
            "usd-fund",
            "--partner",
            "beta",
            "--call",
            "1",
            "--amount",
            amount,
            "--date",
            "2021-04-01",
            "--idempotency-key",
            "wire-42",
        ]
    };
    let count = |p: &Path| Ledger::open_read_only(p).unwrap().store().count().unwrap();
    let n0 = count(&ledger);
    let out = cli(&args("150.00 USD"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("appended entry {n0} (contribution)")),
        "{stdout}"
    );
    assert_eq!(count(&ledger), n0 + 1);

    let before = file_bytes(&ledger);
    let out = cli(&args("150.00 USD"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("already recorded as entry {n0}")),
        "{stdout}"
    );
    assert!(
        file_bytes(&ledger) == before,
        "the retried command changed the file"
    );

    // "150 USD" is the same amount, canonicalised: still the same content.
    let out = cli(&args("150 USD"));
    assert!(
        text(&out.stdout).contains("already recorded"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(&args("149.99 USD"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("\"wire-42\" was already used by entry"),
        "{stderr}"
    );
    assert!(
        file_bytes(&ledger) == before,
        "the conflicting command changed the file"
    );
    assert_eq!(count(&ledger), n0 + 1);
}

// ---------------------------------------------------------------------------
// 4. Largest-remainder splits through the ledger
// ---------------------------------------------------------------------------

/// The call_receivable debits of entry `seq`, by partner.
fn call_shares(ledger: &Ledger, seq: u64) -> BTreeMap<String, String> {
    let row = ledger.store().get(seq).unwrap().expect("entry");
    let (_, body) = decode_row(&row).unwrap();
    body.postings
        .iter()
        .filter(|p| p.account == "call_receivable" && p.side == Side::Debit)
        .map(|p| (p.partner.clone().unwrap(), p.amount.clone()))
        .collect()
}

/// Postings of entry `seq` to `account`, by partner.
fn partner_postings(ledger: &Ledger, seq: u64, account: &str) -> BTreeMap<String, String> {
    let row = ledger.store().get(seq).unwrap().expect("entry");
    let (_, body) = decode_row(&row).unwrap();
    body.postings
        .iter()
        .filter(|p| p.account == account)
        .map(|p| (p.partner.clone().unwrap(), p.amount.clone()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn calls_split_by_largest_remainder() {
    let mut fx = Fixture::new();
    // Partners added out of id order: the tie-break is the id, not the
    // order of recording.
    for id in ["zeta", "alpha", "mid"] {
        fx.append(partner(id, "government"));
    }
    let usd = Fnd {
        id: "split-usd",
        cur: "USD",
    };
    let jpy = Fnd {
        id: "split-jpy",
        cur: "JPY",
    };
    let kwd = Fnd {
        id: "split-kwd",
        cur: "KWD",
    };
    for f in [usd, jpy, kwd] {
        fx.append(f.create("2021-01-01"));
    }
    for id in ["zeta", "alpha", "mid"] {
        fx.append(usd.commit(id, "1000.00", "2021-01-02"));
        fx.append(kwd.commit(id, "1000.000", "2021-01-02"));
    }
    // 100.00 / 3 = 33.333..: floors 33.33 each, one cent left, equal
    // remainders, so it goes to the smallest id, alpha.
    let c = fx.append(usd.call("100.00", "2021-02-01", "2021-03-01"));
    let expected = map(&[("alpha", "33.34"), ("mid", "33.33"), ("zeta", "33.33")]);
    assert_eq!(call_shares(&fx.ledger, c), expected);
    assert_eq!(partner_postings(&fx.ledger, c, "called"), expected);
    assert_eq!(partner_postings(&fx.ledger, c, "capital"), expected);
    let shares = &fx.ledger.state().fund(usd.id).unwrap().calls[0].shares;
    assert_eq!(shares["alpha"].called, dec("33.34"));
    assert_eq!(shares["zeta"].called, dec("33.33"));
    // The same call again splits the same way (deterministic).
    let c2 = fx.append(usd.call("100.00", "2021-02-01", "2021-03-01"));
    assert_eq!(call_shares(&fx.ledger, c2), expected);

    // KWD has 3 places: 10.000 / 3 -> 3.334, 3.333, 3.333.
    let c = fx.append(kwd.call("10.000", "2021-02-01", "2021-03-01"));
    assert_eq!(
        call_shares(&fx.ledger, c),
        map(&[("alpha", "3.334"), ("mid", "3.333"), ("zeta", "3.333")])
    );

    // JPY has none. Commitments 2,000,000 (alpha), 3,000,000 (mid),
    // 5,000,000 (zeta); a call of 1001 is exactly 200.2, 300.3, 500.5:
    // floors 200, 300, 500, and the leftover yen goes to the largest
    // remainder (zeta's .5), not to the smallest id.
    fx.append(jpy.commit("alpha", "2000000", "2021-01-02"));
    fx.append(jpy.commit("mid", "3000000", "2021-01-02"));
    fx.append(jpy.commit("zeta", "5000000", "2021-01-02"));
    let c = fx.append(jpy.call("1001", "2021-02-01", "2021-03-01"));
    assert_eq!(
        call_shares(&fx.ledger, c),
        map(&[("alpha", "200"), ("mid", "300"), ("zeta", "501")])
    );
    // 7 yen: exact 1.4, 2.1, 3.5 -> floors 1, 2, 3; the leftover to zeta (.5).
    let c = fx.append(jpy.call("7", "2021-02-01", "2021-03-01"));
    assert_eq!(
        call_shares(&fx.ledger, c),
        map(&[("alpha", "1"), ("mid", "2"), ("zeta", "4")])
    );
    // 1 yen: exact 0.2, 0.3, 0.5 -> all to zeta; the others get no posting.
    let c = fx.append(jpy.call("1", "2021-02-01", "2021-03-01"));
    assert_eq!(call_shares(&fx.ledger, c), map(&[("zeta", "1")]));
    let calls = &fx.ledger.state().fund(jpy.id).unwrap().calls;
    assert_eq!(calls[2].shares.keys().collect::<Vec<_>>(), ["zeta"]);

    // Distributions split by paid-in: each pays its first USD call share;
    // 10.00 over 33.34/33.33/33.33 is 3.3340.., 3.3330.., 3.3330.. ->
    // floors 3.33 each, the cent to alpha's larger remainder.
    for (id, amount) in [("alpha", "33.34"), ("mid", "33.33"), ("zeta", "33.33")] {
        fx.append(usd.contribute(id, 1, amount, "2021-02-15"));
    }
    let dist = fx.append(usd.distribute("10.00", "2021-03-01"));
    assert_eq!(
        partner_postings(&fx.ledger, dist, "distributions"),
        map(&[("alpha", "3.34"), ("mid", "3.33"), ("zeta", "3.33")])
    );
    // Fees split by commitments (equal): 1.00 -> 0.34 to alpha.
    let fee = fx.append(usd.fee("1.00", "2021-03-01"));
    assert_eq!(
        partner_postings(&fx.ledger, fee, "management_fees"),
        map(&[("alpha", "0.34"), ("mid", "0.33"), ("zeta", "0.33")])
    );
    check_invariants(&fx.ledger);
}

// ---------------------------------------------------------------------------
// 5. Positions on a hand-computed scenario
// ---------------------------------------------------------------------------

const HF: Fnd = Fnd {
    id: "hf",
    cur: "USD",
};
const ZF: Fnd = Fnd {
    id: "zf",
    cur: "USD",
};

/// Fund hf (USD): gov (government) commits 600.00, priv (private) 400.00.
///
/// | date       | event                           | gov      | priv     | cash   |
/// |------------|---------------------------------|----------|----------|--------|
/// | 2021-01-10 | call 500.00 (600:400)           | 300.00   | 200.00   |        |
/// | 2021-02-01 | contributions                   | 300.00   | 150.00   | 450.00 |
/// | 2021-03-01 | invest acme 400.00              |          |          |  50.00 |
/// | 2021-12-31 | value acme 600.00 (+200.00 unrealized, by paid-in 300:150: 133.333.., 66.666.. -> 133.33 and 66.67, the cent to priv's larger remainder) |
/// | 2022-06-30 | realize acme: proceeds 300.00, cost 200.00: half the fair-value adjustment (100.00) is released (gov 66.67, priv 33.33) and a realized gain of 100.00 booked (gov 66.67, priv 33.33); cash 350.00 |
/// | 2022-07-15 | distribute 150.00 (by paid-in)  | 100.00   |  50.00   | 200.00 |
/// | 2022-08-01 | fee 20.00 (by commitment)       |  12.00   |   8.00   | 180.00 |
///
/// NAV gov  = 300 - 100 - 12 + (133.33 - 66.67) + 66.67 = 321.33
/// NAV priv = 150 -  50 -  8 + ( 66.67 - 33.33) + 33.33 = 158.67
/// Fund NAV = 480.00 = cash 180 + cost 200 + fair-value adjustment 100.
///
/// Fund zf (USD): solo (other) commits 100.00, all called and paid on
/// 2021-01-20, and all spent on an expense on 2021-02-01: NAV 0.
fn scenario() -> Fixture {
    let mut fx = Fixture::new();
    fx.append(HF.create("2021-01-01"));
    fx.append(ZF.create("2021-01-01"));
    fx.append(partner("gov", "government"));
    fx.append(partner("priv", "private"));
    fx.append(partner("solo", "other"));
    fx.append(startup("acme"));
    fx.append(HF.commit("gov", "600.00", "2021-01-05"));
    fx.append(HF.commit("priv", "400.00", "2021-01-05"));
    fx.append(HF.call("500.00", "2021-01-10", "2021-02-01"));
    fx.append(HF.contribute("gov", 1, "300.00", "2021-02-01"));
    fx.append(HF.contribute("priv", 1, "150.00", "2021-02-01"));
    fx.append(HF.invest("acme", "400.00", "2021-03-01"));
    fx.append(HF.value("acme", "600.00", "2021-12-31"));
    fx.append(HF.realize("acme", "300.00", "200.00", "2022-06-30"));
    fx.append(HF.distribute("150.00", "2022-07-15"));
    fx.append(HF.fee("20.00", "2022-08-01"));

    fx.append(ZF.commit("solo", "100.00", "2021-01-05"));
    fx.append(ZF.call("100.00", "2021-01-10", "2021-01-20"));
    fx.append(ZF.contribute("solo", 1, "100.00", "2021-01-20"));
    fx.append(ZF.expense("100.00", "2021-02-01"));
    fx
}

fn s(text: &str) -> String {
    text.to_string()
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

#[allow(clippy::too_many_arguments)]
fn figures(
    committed: &str,
    called: &str,
    paid_in: &str,
    unfunded: &str,
    outstanding: &str,
    distributed: &str,
    nav: &str,
    ratios: [Option<&str>; 4],
    irr: Option<String>,
) -> Figures {
    let [nav_share, dpi, rvpi, tvpi] = ratios.map(|r| r.map(str::to_string));
    Figures {
        committed: s(committed),
        called: s(called),
        paid_in: s(paid_in),
        unfunded: s(unfunded),
        outstanding: s(outstanding),
        distributed: s(distributed),
        nav: s(nav),
        nav_share,
        dpi,
        rvpi,
        tvpi,
        irr,
    }
}

/// XIRR by bisection, independent of the library's solver: flows are
/// (days since the first flow, amount).
fn reference_irr(flows: &[(i64, f64)]) -> f64 {
    let npv = |r: f64| -> f64 {
        flows
            .iter()
            .map(|(days, cf)| cf / (1.0 + r).powf(*days as f64 / 365.0))
            .sum()
    };
    let (mut lo, mut hi) = (-0.99, 10.0);
    assert!(npv(lo) > 0.0 && npv(hi) < 0.0, "no sign change");
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if npv(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

fn days(from: &str, to: &str) -> i64 {
    let f = fundledger::state::parse_date(from).unwrap();
    let t = fundledger::state::parse_date(to).unwrap();
    (t - f).whole_days()
}

/// Check that `irr` is the 6-place rounding of the reference XIRR of
/// `flows` (dates and amounts), and return it.
fn assert_irr(irr: &Option<String>, flows: &[(&str, f64)]) -> String {
    let irr = irr.clone().expect("an IRR when flows change sign");
    let first = flows[0].0;
    let reference = reference_irr(
        &flows
            .iter()
            .map(|(d, a)| (days(first, d), *a))
            .collect::<Vec<_>>(),
    );
    let got: f64 = irr.parse().unwrap();
    assert_eq!(irr.split('.').nth(1).map(str::len), Some(6), "{irr}");
    assert!(
        (got - reference).abs() <= 6e-7,
        "IRR {irr} but the reference XIRR is {reference}"
    );
    irr
}

#[test]
fn position_figures_match_a_hand_computed_scenario() {
    let fx = scenario();
    let p = query::position(&fx.ledger, HF.id, None, None).unwrap();
    assert_eq!(p.fund, "hf");
    assert_eq!(p.currency, "USD");
    assert_eq!(
        p.as_of.as_deref(),
        Some("2022-08-01"),
        "as of the latest effective date"
    );
    assert_eq!(p.nav_from_assets, "480.00");
    assert_eq!(
        p.partners
            .iter()
            .map(|x| x.partner.as_str())
            .collect::<Vec<_>>(),
        ["gov", "priv"]
    );
    let gov = &p.partners[0];
    let priv_ = &p.partners[1];
    assert_eq!(
        (gov.partner_type.as_str(), gov.legal_name.as_str()),
        ("government", "Partner gov")
    );

    // gov: DPI 100/300 = 0.3333, RVPI 321.33/300 = 1.0711,
    // TVPI 421.33/300 = 1.40443.. -> 1.4044, NAV share 321.33/480 = 0.66943.. -> 0.6694.
    let gov_irr = assert_irr(
        &gov.figures.irr,
        &[
            ("2021-02-01", -300.0),
            ("2022-07-15", 100.0),
            ("2022-08-01", 321.33),
        ],
    );
    assert_eq!(
        gov.figures,
        figures(
            "600.00",
            "300.00",
            "300.00",
            "300.00",
            "0.00",
            "100.00",
            "321.33",
            [
                Some("0.6694"),
                Some("0.3333"),
                Some("1.0711"),
                Some("1.4044")
            ],
            Some(gov_irr),
        )
    );
    // priv: paid 150.00 of 200.00 called (50.00 outstanding); DPI 50/150 =
    // 0.3333, RVPI 158.67/150 = 1.0578, TVPI 208.67/150 = 1.39113.. -> 1.3911,
    // NAV share 158.67/480 = 0.33056.. -> 0.3306.
    let priv_irr = assert_irr(
        &priv_.figures.irr,
        &[
            ("2021-02-01", -150.0),
            ("2022-07-15", 50.0),
            ("2022-08-01", 158.67),
        ],
    );
    assert_eq!(
        priv_.figures,
        figures(
            "400.00",
            "200.00",
            "150.00",
            "200.00",
            "50.00",
            "50.00",
            "158.67",
            [
                Some("0.3306"),
                Some("0.3333"),
                Some("1.0578"),
                Some("1.3911")
            ],
            Some(priv_irr),
        )
    );
    // Fund: DPI 150/450 = 0.3333, RVPI 480/450 = 1.0667, TVPI 630/450 = 1.4000.
    let fund_irr = assert_irr(
        &p.fund_totals.irr,
        &[
            ("2021-02-01", -450.0),
            ("2022-07-15", 150.0),
            ("2022-08-01", 480.0),
        ],
    );
    assert!(dec(&fund_irr) > Decimal::ZERO);
    assert_eq!(
        p.fund_totals,
        figures(
            "1000.00",
            "500.00",
            "450.00",
            "500.00",
            "50.00",
            "150.00",
            "480.00",
            [
                Some("1.0000"),
                Some("0.3333"),
                Some("1.0667"),
                Some("1.4000")
            ],
            Some(fund_irr),
        )
    );
    // Public (gov) against private (priv) money.
    let groups: Vec<_> = p
        .by_group
        .iter()
        .map(|g| {
            (
                g.group,
                g.committed.as_str(),
                g.paid_in.as_str(),
                g.distributed.as_str(),
                g.committed_share.as_deref(),
                g.paid_in_share.as_deref(),
                g.distributed_share.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (
                "public",
                "600.00",
                "300.00",
                "100.00",
                Some("0.6000"),
                Some("0.6667"),
                Some("0.6667")
            ),
            (
                "private",
                "400.00",
                "150.00",
                "50.00",
                Some("0.4000"),
                Some("0.3333"),
                Some("0.3333")
            ),
            (
                "other",
                "0.00",
                "0.00",
                "0.00",
                Some("0.0000"),
                Some("0.0000"),
                Some("0.0000")
            ),
        ]
    );
    // One partner only.
    let only = query::position(&fx.ledger, HF.id, Some("priv"), None).unwrap();
    assert_eq!(only.partners.len(), 1);
    assert_eq!(only.partners[0].figures, priv_.figures);
    assert_eq!(only.fund_totals, p.fund_totals);

    // zf: only a contribution, and NAV zero after the expense: no IRR, no
    // NAV share, ratios zero.
    let z = query::position(&fx.ledger, ZF.id, None, None).unwrap();
    assert_eq!(z.partners.len(), 1);
    let zero = figures(
        "100.00",
        "100.00",
        "100.00",
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        [None, Some("0.0000"), Some("0.0000"), Some("0.0000")],
        None,
    );
    assert_eq!(z.partners[0].figures, zero);
    assert_eq!(z.fund_totals, zero);
    assert_eq!(z.nav_from_assets, "0.00");
    check_invariants(&fx.ledger);
}

#[test]
fn position_as_of_filters_by_effective_date() {
    let mut fx = scenario();
    let date = |t: &str| Some(fundledger::state::parse_date(t).unwrap());
    let pos =
        |fx: &Fixture, as_of: &str| query::position(&fx.ledger, HF.id, None, date(as_of)).unwrap();

    // 2021-06-30: called, paid, invested; nothing valued or distributed.
    // Flows -300 then NAV 300: IRR 0.
    let p = pos(&fx, "2021-06-30");
    assert_eq!(p.as_of.as_deref(), Some("2021-06-30"));
    assert_eq!(p.nav_from_assets, "450.00");
    assert_eq!(
        p.partners[0].figures,
        figures(
            "600.00",
            "300.00",
            "300.00",
            "300.00",
            "0.00",
            "0.00",
            "300.00",
            [
                Some("0.6667"),
                Some("0.0000"),
                Some("1.0000"),
                Some("1.0000")
            ],
            some("0.000000"),
        )
    );
    assert_eq!(
        p.partners[1].figures,
        figures(
            "400.00",
            "200.00",
            "150.00",
            "200.00",
            "50.00",
            "0.00",
            "150.00",
            [
                Some("0.3333"),
                Some("0.0000"),
                Some("1.0000"),
                Some("1.0000")
            ],
            some("0.000000"),
        )
    );
    // The as-of date is inclusive: the valuation of 2021-12-31 counts on
    // that day (gov 300 + 133.33, priv 150 + 66.67), not the day before.
    let navs = |p: &query::Position| {
        p.partners
            .iter()
            .map(|x| x.figures.nav.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(navs(&pos(&fx, "2021-12-30")), ["300.00", "150.00"]);
    assert_eq!(navs(&pos(&fx, "2021-12-31")), ["433.33", "216.67"]);
    assert_eq!(pos(&fx, "2021-12-31").nav_from_assets, "650.00");
    // Before the fund's first commitment: no partners, zero totals.
    let p = pos(&fx, "2021-01-04");
    assert!(p.partners.is_empty());
    assert_eq!(
        (p.fund_totals.committed.as_str(), p.fund_totals.nav.as_str()),
        ("0.00", "0.00")
    );
    assert_eq!(p.fund_totals.irr, None);
    // Between the commitments and the call.
    let p = pos(&fx, "2021-01-09");
    assert_eq!(
        (
            p.fund_totals.committed.as_str(),
            p.fund_totals.called.as_str(),
            p.fund_totals.unfunded.as_str()
        ),
        ("1000.00", "0.00", "1000.00")
    );
    // Trial balances as of any date sum to zero.
    for d in [
        "2021-01-04",
        "2021-02-01",
        "2021-12-31",
        "2022-07-01",
        "2030-01-01",
    ] {
        for f in query::balances(&fx.ledger, None, date(d)).unwrap().funds {
            assert!(dec(&f.total).is_zero(), "{d} {}: {}", f.fund, f.total);
        }
    }

    // A back-dated entry recorded last: priv pays the remaining 50.00 on
    // 2021-03-15. As-of queries follow the effective date, not the
    // recording order.
    fx.append(HF.contribute("priv", 1, "50.00", "2021-03-15"));
    let paid = |p: &query::Position| {
        (
            p.partners[1].figures.paid_in.clone(),
            p.partners[1].figures.outstanding.clone(),
        )
    };
    assert_eq!(paid(&pos(&fx, "2021-03-14")), (s("150.00"), s("50.00")));
    assert_eq!(paid(&pos(&fx, "2021-03-15")), (s("200.00"), s("0.00")));
    let latest = query::position(&fx.ledger, HF.id, None, None).unwrap();
    assert_eq!(latest.as_of.as_deref(), Some("2022-08-01"));
    assert_eq!(paid(&latest), (s("200.00"), s("0.00")));
    check_invariants(&fx.ledger);

    // The same through the binary's --as-of.
    let Fixture {
        ledger,
        path,
        dir: _dir,
        ..
    } = fx;
    drop(ledger);
    let l = path.to_str().unwrap();
    let out = cli(&[
        "--ledger",
        l,
        "position",
        "--fund",
        "hf",
        "--as-of",
        "2021-06-30",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["as_of"], "2021-06-30");
    // With the back-dated 50.00: paid-in and NAV 500.00.
    assert_eq!(json["fund_totals"]["nav"], "500.00");
    assert_eq!(json["fund_totals"]["paid_in"], "500.00");
    assert_eq!(json["fund_totals"]["tvpi"], "1.0000");
    assert_eq!(json["nav_from_assets"], "500.00");
    assert_eq!(json["partners"][1]["partner"], "priv");
    assert_eq!(json["partners"][1]["paid_in"], "200.00");
    let out = cli(&[
        "--ledger",
        l,
        "position",
        "--fund",
        "hf",
        "--as-of",
        "2021-03-14",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["partners"][1]["paid_in"], "150.00");
    let out = cli(&[
        "--ledger",
        l,
        "position",
        "--fund",
        "hf",
        "--as-of",
        "2021-6-30",
    ]);
    assert_eq!(out.status.code(), Some(2), "a malformed --as-of is refused");
    let out = cli(&[
        "--ledger",
        l,
        "balances",
        "--fund",
        "hf",
        "--as-of",
        "2021-06-30",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["funds"][0]["total"], "0.00");
}

// ---------------------------------------------------------------------------
// 6. The demo
// ---------------------------------------------------------------------------

#[test]
fn demo_builds_a_verified_ledger_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let summary = fundledger::demo::run(&out).expect("demo runs");
    assert!(summary.contains("verify: intact"), "{summary}");
    let path = out.join("ledger.sqlite");
    let ledger = Ledger::open_read_only(&path).unwrap();
    let entries = check_invariants(&ledger);
    assert!(entries > 50, "the demo has {entries} entries");
    let position = query::position(&ledger, fundledger::demo::FUND, None, None).unwrap();
    assert_eq!(position.partners.len(), 5);
    assert!(position.fund_totals.irr.is_some());
    assert!(dec(&position.fund_totals.distributed) > Decimal::ZERO);
    let bytes = file_bytes(&path);
    drop(ledger);

    // A second run into the same directory is refused and changes nothing.
    let err = fundledger::demo::run(&out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{err}");
    assert!(err.message().contains("already holds a demo"), "{err}");
    assert!(
        file_bytes(&path) == bytes,
        "the refused demo changed the ledger"
    );
    let ledger = Ledger::open_read_only(&path).unwrap();
    assert_eq!(ledger.store().count().unwrap(), entries);
    drop(ledger);
    // So is a directory that only holds the keys.
    std::fs::remove_file(&path).unwrap();
    let err = fundledger::demo::run(&out).unwrap_err();
    assert!(err.message().contains("already holds a demo"), "{err}");
    assert!(!path.exists());
}

/// Without --as-of, balances and positions come from the maintained state
/// (no scan); they must equal the figures of a full scan.
#[test]
fn maintained_totals_equal_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    fundledger::demo::run(&dir.path().join("demo")).unwrap();
    let ledger =
        fundledger::ledger::Ledger::open_read_only(&dir.path().join("demo/ledger.sqlite")).unwrap();
    let far = fundledger::state::parse_date("2199-12-31").unwrap();
    let fund = fundledger::demo::FUND;
    let maintained = fundledger::query::balances(&ledger, Some(fund), None).unwrap();
    let scanned = fundledger::query::balances(&ledger, Some(fund), Some(far)).unwrap();
    assert_eq!(
        serde_json::to_value(&maintained.funds).unwrap(),
        serde_json::to_value(&scanned.funds).unwrap()
    );
    let last = fundledger::query::position(&ledger, fund, None, None).unwrap();
    let as_of = fundledger::state::parse_date(last.as_of.as_deref().unwrap()).unwrap();
    let scanned = fundledger::query::position(&ledger, fund, None, Some(as_of)).unwrap();
    assert_eq!(
        serde_json::to_value(&last).unwrap(),
        serde_json::to_value(&scanned).unwrap()
    );
}
