//! `export hledger`: the fund's books as an hledger journal, for the
//! accountants' cross-check (`hledger bal` must give the same balances as
//! `fundledger balances`).
//!
//! One transaction per entry of the fund in scope, in seq order, dated by
//! its effective date, with the seq as the transaction code and the seq and
//! entry hash as tags in its comment. Every posting writes its amount (none
//! is left for hledger to infer): debits positive, credits negative, so
//! hledger's balances are fundledger's debit-positive balances. Amounts are
//! exactly the signed strings with no digit grouping; `decimal-mark`,
//! `commodity` and `account` directives declare everything, so
//! `hledger check -s` (strict) passes. Free text only ever goes into
//! comments (ledger text holds no line breaks), never into account names
//! or descriptions, so it cannot change what hledger parses.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::event::{Event, Side};
use crate::history::History;
use crate::state::{Account, AccountKey};

/// hledger account type tags (hledger's `type:` A, E, R, X) per account.
/// The memorandum accounts get none: they are off balance sheet.
fn account_type(account: Account) -> Option<&'static str> {
    match account.class() {
        "asset" => Some("A"),
        "partners_capital" => Some("E"),
        "income_expense" => match account {
            Account::RealizedGain | Account::UnrealizedGain => Some("R"),
            _ => Some("X"),
        },
        _ => None,
    }
}

/// The hledger account name of an account key: `cash`, `capital:mof`.
pub fn account_name(key: &AccountKey) -> String {
    key.display()
}

/// A short description from ids and fixed words only.
fn description(e: &crate::history::FundEntry) -> String {
    match &*e.event {
        Event::Commitment(c) | Event::CommitmentReduce(c) => format!("{} {}", e.kind(), c.partner),
        Event::Call(c) => format!(
            "call {} {}",
            e.call_number.map(|n| n.to_string()).unwrap_or_default(),
            c.purpose
        ),
        Event::Contribution(c) => format!("contribution {} call {}", c.partner, c.call),
        Event::Investment(i) => format!("investment {}", i.startup),
        Event::Valuation(v) => format!("valuation {}", v.startup),
        Event::Realization(r) => format!("realization {}", r.startup),
        Event::Reversal(r) => format!("reversal of {} ({})", r.seq, e.base_kind()),
        other => other.kind().to_string(),
    }
}

/// The journal text and its number of transactions.
pub fn journal_text(h: &History) -> Result<(String, usize)> {
    h.check_consistency()?;
    let cur = h.currency;
    let example = crate::money::format_amount(rust_decimal::Decimal::new(1000, 0), cur);
    let mut out = String::new();
    let f = &h.fund.value;
    out.push_str(&format!(
        "; fundledger hledger journal of fund {} ({})\n",
        f.fund, f.name
    ));
    out.push_str(&format!(
        "; ledger state: origin {}, tree size {}, root hash {}, head hash {}\n",
        h.state.origin,
        h.state.tree_size,
        hex::encode(h.state.root_hash),
        hex::encode(h.state.head_hash)
    ));
    out.push_str(&format!(
        "; as of {} ({}); one transaction per entry, in seq order, dated by its effective date\n",
        h.report_date,
        if h.scope.as_of.is_some() {
            "--as-of"
        } else {
            "latest effective date"
        }
    ));
    out.push_str("; amounts exactly as booked: debits positive, credits negative (fundledger balances are debit-positive)\n\n");
    out.push_str("decimal-mark .\n\n");
    out.push_str(&format!("commodity {example} {}\n\n", cur.code()));

    let mut keys: BTreeSet<AccountKey> = BTreeSet::new();
    for e in &h.entries {
        for (k, _) in &e.amounts {
            keys.insert(AccountKey::clone(k));
        }
    }
    for account in Account::ALL {
        let children: Vec<&AccountKey> = keys.iter().filter(|k| k.account == account).collect();
        if children.is_empty() {
            continue;
        }
        match account_type(account) {
            Some(t) => out.push_str(&format!("account {}  ; type: {t}\n", account.as_str())),
            None => out.push_str(&format!("account {}\n", account.as_str())),
        }
        for k in children {
            if !k.dimension.is_empty() {
                out.push_str(&format!("account {}\n", account_name(k)));
            }
        }
    }
    out.push('\n');

    let mut count = 0;
    for e in &h.entries {
        out.push_str(&format!(
            "{} ({}) {}  ; seq:{}, entry_hash:{}\n",
            e.date,
            e.seq,
            description(e),
            e.seq,
            hex::encode(e.entry_hash)
        ));
        if let Some(memo) = e.memo() {
            out.push_str(&format!("    ; {memo}\n"));
        }
        for (key, side, amount) in e.postings() {
            let sign = if side == Side::Credit { "-" } else { "" };
            out.push_str(&format!(
                "    {}  {sign}{} {}\n",
                account_name(key),
                h.amount(amount),
                cur.code()
            ));
        }
        out.push('\n');
        count += 1;
    }
    Ok((out, count))
}

/// `export hledger`: write the journal of `fund` at the ledger's head to
/// `out` (replaced atomically). Returns the number of transactions.
pub fn write_journal(
    ledger: &crate::ledger::Ledger,
    fund: &str,
    as_of: Option<time::Date>,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<usize> {
    let history = crate::export::load_at_head(ledger, fund, as_of, None, progress)?;
    let (text, count) = journal_text(&history)?;
    let temp = out.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&temp, text)
        .map_err(|e| Error::io(format!("cannot write {}", temp.display()), e))?;
    std::fs::rename(&temp, out).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::io(format!("cannot write {}", out.display()), e)
    })?;
    Ok(count)
}
