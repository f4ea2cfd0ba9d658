//! `fundledger demo`: a realistic joint AI startup fund, built end to end.
//!
//! A ministry of finance, a sovereign fund, a development bank and two
//! private AI partners commit to one fund; it calls capital for investments
//! and fees, invests in twelve startups over five years with follow-ons,
//! marks them up and down, writes one off, exits one, and distributes.
//! Everything goes through the same append path as the CLI, and the ledger
//! is verified at the end. Deterministic apart from the generated keys: the
//! recording time of each entry is derived from its effective date.

use std::path::Path;

use base64::Engine;
use ed25519_dalek::SigningKey;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::event::*;
use crate::ledger::{AppendRequest, Ledger};
use crate::money::{self, Currency};
use crate::{keys, query, verify};

/// The demo fund's id.
pub const FUND: &str = "gaif-1";

struct Demo {
    ledger: Ledger,
    recorder: SigningKey,
    /// A second recorder: the default policy wants two distinct recorders
    /// on investments and distributions above 10,000,000.
    recorder2: SigningKey,
    currency: Currency,
    /// Entries recorded on the same date get consecutive milliseconds.
    tick: i64,
}

fn date_ms(date: &str) -> Result<i64> {
    let d = crate::state::parse_date(date)?;
    Ok(d.midnight().assume_utc().unix_timestamp() * 1000 + 9 * 3_600_000)
}

impl Demo {
    fn record(&mut self, event: Event) -> Result<u64> {
        let at = event.date().map(date_ms).transpose()?.unwrap_or(0);
        self.tick = self.tick.max(at) + 1;
        let limit: Decimal = 10_000_000.into();
        let big = matches!(event, Event::Investment(_) | Event::Distribution(_))
            && crate::policy::event_amount(&event)
                .and_then(|a| a.parse::<Decimal>().ok())
                .is_some_and(|a| a > limit);
        let both = [&self.recorder, &self.recorder2];
        let one = [&self.recorder];
        let signers: &[&SigningKey] = if big { &both } else { &one };
        let outcome = self.ledger.append(AppendRequest {
            event,
            idempotency_key: None,
            signers,
            now_unix_ms: self.tick,
        })?;
        Ok(outcome.seq())
    }

    fn amount(&self, units: &str) -> String {
        let value = money::parse_amount(units, self.currency).unwrap_or_default();
        money::format_amount(value, self.currency)
    }

    fn fund_total(&self, amount: &str, date: &str, memo: Option<&str>) -> FundTotal {
        FundTotal {
            fund: FUND.into(),
            amount: self.amount(amount),
            currency: self.currency.code().into(),
            date: date.into(),
            memo: memo.map(str::to_string),
        }
    }

    /// Call capital; each partner pays its share (the last one in two parts
    /// when `late` names it).
    fn call_and_pay(
        &mut self,
        amount: &str,
        purpose: &str,
        date: &str,
        due: &str,
        late: Option<(&str, &str)>,
    ) -> Result<()> {
        self.record(Event::Call(Call {
            fund: FUND.into(),
            amount: self.amount(amount),
            currency: self.currency.code().into(),
            purpose: purpose.into(),
            date: date.into(),
            due_date: due.into(),
            memo: None,
        }))?;
        let fund = self.ledger.state().fund(FUND)?;
        let call = fund
            .calls
            .last()
            .ok_or_else(|| Error::rule("call missing"))?;
        let number = call.number;
        let shares: Vec<(String, Decimal)> = call
            .shares
            .iter()
            .map(|(p, s)| (p.clone(), s.called))
            .collect();
        for (partner, share) in shares {
            let parts = match late {
                Some((who, later)) if who == partner => {
                    let half = (share / Decimal::TWO).round_dp(self.currency.minor_units());
                    vec![(half, due.to_string()), (share - half, later.to_string())]
                }
                _ => vec![(share, due.to_string())],
            };
            for (amount, paid_on) in parts {
                self.record(Event::Contribution(Contribution {
                    fund: FUND.into(),
                    partner: partner.clone(),
                    call: number,
                    amount: money::format_amount(amount, self.currency),
                    currency: self.currency.code().into(),
                    date: paid_on,
                    memo: None,
                }))?;
            }
        }
        Ok(())
    }

    fn invest(&mut self, startup: &str, amount: &str, date: &str, memo: &str) -> Result<u64> {
        self.record(Event::Investment(StartupAmount {
            fund: FUND.into(),
            startup: startup.into(),
            amount: self.amount(amount),
            currency: self.currency.code().into(),
            date: date.into(),
            memo: Some(memo.into()),
        }))
    }

    fn value(&mut self, startup: &str, fair_value: &str, date: &str, memo: &str) -> Result<u64> {
        self.record(Event::Valuation(Valuation {
            fund: FUND.into(),
            startup: startup.into(),
            fair_value: self.amount(fair_value),
            currency: self.currency.code().into(),
            date: date.into(),
            memo: Some(memo.into()),
        }))
    }

    fn realize(
        &mut self,
        startup: &str,
        proceeds: &str,
        cost: &str,
        date: &str,
        memo: &str,
    ) -> Result<u64> {
        self.record(Event::Realization(Realization {
            fund: FUND.into(),
            startup: startup.into(),
            proceeds: self.amount(proceeds),
            cost_released: self.amount(cost),
            currency: self.currency.code().into(),
            date: date.into(),
            memo: Some(memo.into()),
        }))
    }
}

const PARTNERS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "mof",
        "Ministry of Finance",
        "government",
        "AE",
        "150000000",
    ),
    (
        "nsf",
        "National Strategic Investment Fund",
        "sovereign_fund",
        "AE",
        "100000000",
    ),
    (
        "ndb",
        "National Development Bank",
        "development_bank",
        "AE",
        "55000000",
    ),
    (
        "frontier",
        "Frontier Models Inc.",
        "private",
        "US",
        "60000000",
    ),
    (
        "computeco",
        "Compute Partners Ltd.",
        "private",
        "GB",
        "35000000",
    ),
];

const STARTUPS: &[(&str, &str, &str, &str)] = &[
    (
        "qalam",
        "Qalam Language Models",
        "AE",
        "Arabic language models",
    ),
    (
        "siliconsand",
        "Silicon Sand Semiconductors",
        "AE",
        "AI accelerators",
    ),
    ("shifa", "Shifa Diagnostics AI", "AE", "healthcare AI"),
    (
        "greenfield",
        "Greenfield Agritech Vision",
        "EG",
        "agritech AI",
    ),
    ("sentinel", "Sentinel Cyber Defence", "IL", "AI security"),
    ("robotrade", "RoboTrade Logistics", "SA", "robotics"),
    ("lexai", "LexAI Legal Research", "GB", "legal AI"),
    ("edunova", "EduNova Tutors", "IN", "education AI"),
    ("climacast", "ClimaCast Forecasting", "FR", "climate AI"),
    ("finsight", "FinSight Risk Engines", "SG", "financial AI"),
    ("medchem", "MedChem Discovery", "CH", "drug discovery AI"),
    ("voxel", "Voxel Spatial Computing", "US", "computer vision"),
];

/// Build the demo in `out` and return the summary to print.
pub fn run(out: &Path) -> Result<String> {
    let ledger_path = out.join("ledger.sqlite");
    if ledger_path.exists() || out.join("keys").exists() {
        return Err(
            Error::input(format!("{} already holds a demo", out.display()))
                .with_hint("remove that directory or pass another --out"),
        );
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("cannot create {}", out.display()), e))?;
    let key_dir = out.join("keys");
    let (admin_paths, _) = keys::generate(&key_dir, "administrator")?;
    let (recorder_paths, recorder_public) = keys::generate(&key_dir, "recorder")?;
    let (recorder2_paths, recorder2_public) = keys::generate(&key_dir, "recorder-2")?;
    let (_, auditor_public) = keys::generate(&key_dir, "auditor")?;
    let admin = keys::load_signing_key(&admin_paths.private)?;
    let recorder = keys::load_signing_key(&recorder_paths.private)?;
    let recorder2 = keys::load_signing_key(&recorder2_paths.private)?;

    let origin = "ledger.example.org/gulf-ai-fund";
    let mut ledger = Ledger::init(
        &ledger_path,
        origin,
        &admin,
        "administrator",
        date_ms("2022-01-03")?,
    )?;
    let b64 = |k: &ed25519_dalek::VerifyingKey| {
        base64::engine::general_purpose::STANDARD.encode(k.as_bytes())
    };
    for (name, public, role) in [
        ("recorder", recorder_public, "recorder"),
        ("recorder-2", recorder2_public, "recorder"),
        ("auditor", auditor_public, "auditor"),
    ] {
        ledger.append(AppendRequest {
            event: Event::KeyEnroll(KeyEnroll {
                name: name.into(),
                public_key: b64(&public),
                role: role.into(),
                partner: None,
            }),
            idempotency_key: None,
            signers: &[&admin],
            now_unix_ms: date_ms("2022-01-03")? + 1,
        })?;
    }
    let currency = Currency::from_code("USD").map_err(|e| Error::input(e.to_string()))?;
    let mut d = Demo {
        ledger,
        recorder,
        recorder2,
        currency,
        tick: 0,
    };

    d.record(Event::FundCreate(FundCreate {
        fund: FUND.into(),
        name: "Gulf AI Innovation Fund I".into(),
        currency: "USD".into(),
        jurisdiction: "AE (ADGM)".into(),
        vintage: 2022,
        management_fee_rate: "0.02".into(),
        management_fee_basis: "committed".into(),
        date: "2022-01-10".into(),
    }))?;
    for (id, name, kind, country, _) in PARTNERS {
        d.record(Event::PartnerAdd(PartnerAdd {
            partner: (*id).into(),
            legal_name: (*name).into(),
            partner_type: (*kind).into(),
            country: (*country).into(),
            lei: None,
            date: "2022-01-10".into(),
        }))?;
    }
    for (id, _, _, _, amount) in PARTNERS {
        d.record(Event::Commitment(FundAmount {
            fund: FUND.into(),
            partner: (*id).into(),
            amount: d.amount(amount),
            currency: "USD".into(),
            date: "2022-01-15".into(),
            memo: Some("subscription agreement signed".into()),
        }))?;
    }
    // A private partner raises its commitment in the second close, then a
    // commitment reduction follows an allocation cut-back.
    d.record(Event::Commitment(FundAmount {
        fund: FUND.into(),
        partner: "computeco".into(),
        amount: d.amount("10000000"),
        currency: "USD".into(),
        date: "2022-06-30".into(),
        memo: Some("second close top-up".into()),
    }))?;
    for (i, (id, name, country, sector)) in STARTUPS.iter().enumerate() {
        let year = 2022 + (i as i32) / 4;
        d.record(Event::StartupAdd(StartupAdd {
            startup: (*id).into(),
            name: (*name).into(),
            country: (*country).into(),
            sector: (*sector).into(),
            date: format!("{year}-01-20"),
        }))?;
    }

    // 2022: first calls, first four investments, first fee.
    d.call_and_pay(
        "45000000",
        "investment",
        "2022-02-01",
        "2022-03-01",
        Some(("computeco", "2022-04-15")),
    )?;
    d.call_and_pay(
        "8000000",
        "management_fee",
        "2022-02-01",
        "2022-03-01",
        None,
    )?;
    d.record(Event::Fee(d.fund_total(
        "8000000",
        "2022-03-31",
        Some("management fee 2022"),
    )))?;
    d.invest("qalam", "12000000", "2022-03-15", "seed extension")?;
    d.invest("siliconsand", "15000000", "2022-05-10", "series A")?;
    d.invest("shifa", "6500000", "2022-07-01", "seed")?;
    d.invest("greenfield", "6000000", "2022-09-20", "seed")?;
    d.call_and_pay("1200000", "expense", "2022-10-01", "2022-10-31", None)?;
    d.record(Event::Expense(d.fund_total(
        "950000",
        "2022-11-30",
        Some("legal and fund administration"),
    )))?;
    // A mistaken expense, reversed the same week.
    let wrong = d.record(Event::Expense(d.fund_total(
        "95000",
        "2022-12-05",
        Some("audit fee (entered twice)"),
    )))?;
    d.record(Event::Reversal(Reversal {
        seq: wrong,
        reason: "duplicate of the audit fee invoice".into(),
        date: "2022-12-07".into(),
    }))?;
    d.value(
        "qalam",
        "18000000",
        "2022-12-31",
        "priced round at higher valuation",
    )?;

    // 2023: the second wave and follow-ons.
    d.call_and_pay("70000000", "investment", "2023-01-16", "2023-02-15", None)?;
    d.call_and_pay(
        "8000000",
        "management_fee",
        "2023-01-16",
        "2023-02-15",
        None,
    )?;
    d.record(Event::Fee(d.fund_total(
        "8000000",
        "2023-03-31",
        Some("management fee 2023"),
    )))?;
    d.invest("sentinel", "9000000", "2023-02-20", "series A")?;
    d.invest("robotrade", "11000000", "2023-04-03", "series A")?;
    d.invest("lexai", "4500000", "2023-06-12", "seed")?;
    d.invest("edunova", "5000000", "2023-08-08", "seed")?;
    d.invest("qalam", "8000000", "2023-09-01", "follow-on, series B")?;
    d.invest(
        "siliconsand",
        "12000000",
        "2023-10-15",
        "follow-on, series B",
    )?;
    d.value(
        "siliconsand",
        "41000000",
        "2023-12-31",
        "strategic round led by a chip maker",
    )?;
    d.value(
        "greenfield",
        "3000000",
        "2023-12-31",
        "missed milestones, down round",
    )?;
    d.value("shifa", "9000000", "2023-12-31", "regulatory approval")?;

    // 2024: the last new companies; a write-off.
    d.call_and_pay(
        "60000000",
        "investment",
        "2024-01-15",
        "2024-02-15",
        Some(("frontier", "2024-03-20")),
    )?;
    d.call_and_pay(
        "8000000",
        "management_fee",
        "2024-01-15",
        "2024-02-15",
        None,
    )?;
    d.record(Event::Fee(d.fund_total(
        "8000000",
        "2024-03-31",
        Some("management fee 2024"),
    )))?;
    d.invest("climacast", "7000000", "2024-03-01", "series A")?;
    d.invest("finsight", "8500000", "2024-04-22", "series A")?;
    d.invest("medchem", "10000000", "2024-06-05", "series A")?;
    d.invest("voxel", "6000000", "2024-07-30", "seed")?;
    d.invest("shifa", "4000000", "2024-09-10", "follow-on")?;
    d.value("greenfield", "0", "2024-10-31", "ceased operations")?;
    d.realize(
        "greenfield",
        "0",
        "6000000",
        "2024-12-15",
        "write-off after liquidation",
    )?;
    d.value("qalam", "40000000", "2024-12-31", "series C")?;
    d.value(
        "robotrade",
        "8000000",
        "2024-12-31",
        "slower growth, marked down",
    )?;
    d.value("sentinel", "15000000", "2024-12-31", "revenue growth")?;

    // 2025: an exit and the first distribution.
    d.call_and_pay(
        "6000000",
        "management_fee",
        "2025-01-15",
        "2025-02-15",
        None,
    )?;
    d.record(Event::Fee(d.fund_total(
        "6000000",
        "2025-03-31",
        Some("management fee 2025 (post-investment period)"),
    )))?;
    d.realize(
        "siliconsand",
        "78500000",
        "27000000",
        "2025-05-20",
        "acquired by a global chip maker",
    )?;
    d.record(Event::Distribution(d.fund_total(
        "70000000",
        "2025-06-30",
        Some("proceeds of the Silicon Sand exit"),
    )))?;
    d.value("medchem", "16000000", "2025-12-31", "phase I results")?;
    d.value(
        "lexai",
        "3500000",
        "2025-12-31",
        "competition from general models",
    )?;

    // 2026: a partial secondary sale and a second distribution.
    d.call_and_pay(
        "6000000",
        "management_fee",
        "2026-01-15",
        "2026-02-15",
        None,
    )?;
    d.record(Event::Fee(d.fund_total(
        "6000000",
        "2026-03-31",
        Some("management fee 2026"),
    )))?;
    d.realize(
        "qalam",
        "22000000",
        "10000000",
        "2026-06-10",
        "secondary sale of half the stake",
    )?;
    d.record(Event::Distribution(d.fund_total(
        "20000000",
        "2026-06-30",
        Some("secondary sale proceeds"),
    )))?;
    d.value("qalam", "24000000", "2026-09-30", "remaining stake")?;

    let Demo { ledger, .. } = d;
    let report = verify::verify(ledger.store(), &mut |_, _| {})?;
    let position = query::position(&ledger, FUND, None, None)?;
    let mut summary = String::new();
    summary.push_str(&format!(
        "Demo ledger {} ({} entries), keys in {}\n",
        ledger_path.display(),
        report.entries_verified,
        key_dir.display()
    ));
    summary.push_str(&match &report.failure {
        None => format!(
            "verify: intact, {} signatures, head {}\n\n",
            report.signatures_verified,
            report.head_hash.as_deref().unwrap_or("-")
        ),
        Some(f) => format!("verify: FAILED at entry {}: {}\n\n", f.seq, f.message),
    });
    summary.push_str(&query::render_position(&position));
    if !report.is_intact() {
        return Err(Error::new(
            crate::error::ErrorKind::Verification,
            "the demo ledger did not verify",
        ));
    }
    summary.push_str(&format!(
        "\nTry: fundledger --ledger {} verify\n     fundledger --ledger {} position --fund {FUND} --json\n",
        ledger_path.display(),
        ledger_path.display()
    ));
    // The exports: CSV with a MANIFEST signed by the auditor key, the
    // regulator's report and the hledger journal (see crate::export).
    let exporter = keys::load_signing_key(&key_dir.join("auditor.key"))?;
    summary.push_str(&crate::export::write_demo_outputs(
        &ledger, FUND, out, &exporter,
    )?);
    // The audit bundle: the whole ledger for an auditor with no database.
    let bundle_path = out.join("ledger.bundle");
    let bundle = crate::bundle::write_file(ledger.store(), &bundle_path, &mut |_, _| {})?;
    summary.push_str(&format!(
        "  {} (audit bundle of {} entries; check it with `fundledger verify --bundle {}`)\n",
        bundle_path.display(),
        bundle.entries,
        bundle_path.display()
    ));
    Ok(summary)
}
