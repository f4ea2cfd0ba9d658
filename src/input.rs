//! Turning what a user typed into event fields: amounts with their
//! currency, and dates. Every error says what is wrong and what to type.

use crate::error::{Error, Result};
use crate::money::{self, Currency};

/// Parse "25000000.00 USD" (or "USD 25000000.00") into the canonical amount
/// string and its currency. The amount may have fewer decimal places than
/// the currency allows, never more.
pub fn amount_with_currency(text: &str) -> Result<(String, Currency)> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let hint = "write the amount with its currency, like \"25000000.00 USD\"";
    let (number, code) = match parts.as_slice() {
        [a, b] if b.len() == 3 && b.bytes().all(|c| c.is_ascii_alphabetic()) => (*a, *b),
        [a, b] if a.len() == 3 && a.bytes().all(|c| c.is_ascii_alphabetic()) => (*b, *a),
        _ => {
            return Err(Error::input(format!("amount {text:?} has no currency")).with_hint(hint));
        }
    };
    let currency =
        Currency::from_code(code).map_err(|e| Error::input(e.to_string()).with_hint(hint))?;
    let value = money::parse_amount(number, currency).map_err(|e| Error::input(e.to_string()))?;
    Ok((money::format_amount(value, currency), currency))
}

/// Require an effective date and check its form.
pub fn required_date(date: &Option<String>) -> Result<String> {
    let date = date.as_deref().ok_or_else(|| {
        Error::input("this event needs an effective date").with_hint("pass --date YYYY-MM-DD")
    })?;
    crate::state::parse_date(date).map_err(|e| Error::input(e.message().to_string()))?;
    Ok(date.to_string())
}

/// Parse an optional as-of date.
pub fn optional_date(date: &Option<String>) -> Result<Option<time::Date>> {
    match date {
        None => Ok(None),
        Some(d) => crate::state::parse_date(d)
            .map(Some)
            .map_err(|e| Error::input(e.message().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_need_a_currency_and_the_right_scale() {
        assert_eq!(
            amount_with_currency("25000000 USD").unwrap().0,
            "25000000.00"
        );
        assert_eq!(amount_with_currency("JPY 1000").unwrap().0, "1000");
        assert_eq!(amount_with_currency("1.5 KWD").unwrap().0, "1.500");
        assert!(amount_with_currency("10.123 USD").is_err());
        assert!(amount_with_currency("10.5 JPY").is_err());
        assert!(amount_with_currency("100").is_err());
        assert!(amount_with_currency("100 usd").is_err());
        assert!(amount_with_currency("-5 USD").is_err());
        assert!(amount_with_currency("1e3 USD").is_err());
        assert!(amount_with_currency("1,000 USD").is_err());
        assert!(amount_with_currency("100 XYZ").is_err());
    }
}
