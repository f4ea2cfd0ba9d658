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
use crate::history::{History, Progress, PROGRESS_EVERY};
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

/// Bytes of journal text gathered before they are handed on.
const JOURNAL_PIECE: usize = 1 << 16;

/// Write the journal text to `emit` a piece at a time (so that a large
/// journal is never held whole); returns its number of transactions.
/// `progress` is called with stage `journal`, the entries written and
/// their total.
pub fn write_journal_text(
    h: &History,
    emit: &mut dyn FnMut(&str) -> Result<()>,
    progress: &mut Progress<'_>,
) -> Result<usize> {
    write_text(h, JOURNAL_PIECE, emit, progress)
}

/// [`write_journal_text`], handing on pieces of at least `piece` bytes
/// (but the last).
fn write_text(
    h: &History,
    piece: usize,
    emit: &mut dyn FnMut(&str) -> Result<()>,
    progress: &mut Progress<'_>,
) -> Result<usize> {
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
    let total = h.entries.len() as u64;
    for e in &h.entries {
        if count as u64 % PROGRESS_EVERY == 0 {
            progress("journal", count as u64, total);
        }
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
        if out.len() >= piece {
            emit(&out)?;
            out.clear();
        }
    }
    emit(&out)?;
    progress("journal", total, total);
    Ok(count)
}

/// `export hledger`: write the journal of `fund` at the ledger's head to
/// `out` (replaced atomically). Returns the number of transactions.
pub fn write_journal(
    ledger: &crate::ledger::Ledger,
    fund: &str,
    as_of: Option<time::Date>,
    out: &Path,
    progress: &mut Progress<'_>,
) -> Result<usize> {
    use std::io::Write;
    let history = crate::export::load_at_head(ledger, fund, as_of, None, progress)?;
    let temp = out.with_extension(format!("partial-{}", std::process::id()));
    let cannot = |path: &Path| {
        let path = path.display().to_string();
        move |e| Error::io(format!("cannot write {path}"), e)
    };
    let written = (|| {
        let file = std::fs::File::create(&temp).map_err(cannot(&temp))?;
        let mut file = std::io::BufWriter::new(file);
        let emit = &mut |piece: &str| file.write_all(piece.as_bytes()).map_err(cannot(&temp));
        let count = write_journal_text(&history, emit, progress)?;
        file.flush().map_err(cannot(&temp))?;
        std::fs::rename(&temp, out).map_err(cannot(out))?;
        Ok(count)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_the_same_whatever_the_piece_size() {
        let dir = tempfile::tempdir().unwrap();
        crate::demo::run(dir.path()).unwrap();
        let ledger =
            crate::ledger::Ledger::open_read_only(&dir.path().join("ledger.sqlite")).unwrap();
        let h =
            crate::export::load_at_head(&ledger, crate::demo::FUND, None, None, &mut |_, _, _| {})
                .unwrap();
        // The whole text in one piece, then in smaller ones.
        let mut whole = String::new();
        let emit = &mut |p: &str| {
            whole.push_str(p);
            Ok(())
        };
        let count = write_journal_text(&h, emit, &mut |_, _, _| {}).unwrap();
        assert!(count > 50, "{count}");
        for piece in [1, 100, usize::MAX] {
            let (mut text, mut pieces) = (String::new(), 0);
            let emit = &mut |p: &str| {
                text.push_str(p);
                pieces += 1;
                Ok(())
            };
            let n = write_text(&h, piece, emit, &mut |_, _, _| {}).unwrap();
            assert_eq!((n, text.as_str()), (count, whole.as_str()), "piece {piece}");
            // One piece per transaction (and the rest), or one in all.
            let expected = if piece == usize::MAX { 1 } else { count + 1 };
            assert_eq!(pieces, expected, "piece {piece}");
        }
    }
}
