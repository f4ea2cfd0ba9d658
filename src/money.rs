//! Money: currencies and exact amounts.
//!
//! This module owns everything the ledger knows about a currency and about the text form of an
//! amount:
//!
//! * [`Currency`]: an active ISO 4217 currency with its number of minor units (USD 2, JPY 0,
//!   KWD 3, CLF 4), looked up in a table compiled into the crate;
//! * [`parse_amount`]: what a person types (`1250`, `1250.5`, `1250.50`);
//! * [`parse_canonical_amount`] and [`format_amount`]: the one canonical text form that the
//!   ledger stores and signs, and that a verifier insists on (`1250.50` for USD, `1250` for JPY);
//! * [`check_scale`], [`to_minor_units`] and [`from_minor_units`]: moving between a
//!   [`Decimal`] and an integer count of minor units.
//!
//! Money is always a [`rust_decimal::Decimal`]; no float is ever used here.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Most integer digits accepted in an amount. 20 digits (up to 10^20 - 1 major units) is far
/// beyond any real fund and keeps every amount, at up to 4 minor units, well inside the 28
/// significant digits of a [`Decimal`] and inside an `i128` count of minor units.
pub const MAX_INTEGER_DIGITS: usize = 20;

/// Active ISO 4217 currencies with their minor units (decimal places), sorted by code.
///
/// Source: ISO 4217 "List One: Currency, fund and precious metal codes", as published by the
/// ISO 4217 maintenance agency (SIX Group) on 2026-01-01, which includes amendments up to
/// No. 180. Cross-checked against Debian `iso-codes` (4.15, plus the later additions below).
///
/// * Included: every national currency, plus the fund codes that have minor units
///   (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW) and XAD (Arab Accounting Dinar).
/// * Excluded: codes whose minor units are "N.A." in List One, which cannot hold a decimal
///   amount: precious metals (XAU, XAG, XPD, XPT), bond-market units (XBA, XBB, XBC, XBD),
///   XDR, XSU, XUA, the testing code XTS and the no-currency code XXX.
/// * Recent changes reflected: added SLE, VED, ZWG (Amendment 177), XCG (Amendment 176) and
///   XAD (Amendment 179); withdrawn to List Three and so not accepted: ANG (now XCG),
///   BGN (Bulgaria uses EUR from 2026-01-01), CUC, HRK (now EUR), SLL (now SLE), ZWL (now ZWG).
///
/// When ISO amends the list, update this table, [`WITHDRAWN`] and the date above together.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAD", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// ISO 4217 codes that are valid codes but cannot hold an amount: their minor units are
/// "N.A." in List One (precious metals, bond-market units, special units, testing, no currency).
const WITHOUT_MINOR_UNITS: &[&str] = &[
    "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX",
];

/// Recently withdrawn ISO 4217 codes (List Three) and the active code that replaced them, so
/// that an error can name the code to use instead.
const WITHDRAWN: &[(&str, &str)] = &[
    ("ANG", "XCG"),
    ("BGN", "EUR"),
    ("BYR", "BYN"),
    ("CUC", "CUP"),
    ("EEK", "EUR"),
    ("HRK", "EUR"),
    ("LTL", "EUR"),
    ("LVL", "EUR"),
    ("MRO", "MRU"),
    ("SLL", "SLE"),
    ("STD", "STN"),
    ("VEF", "VES"),
    ("ZMK", "ZMW"),
    ("ZWL", "ZWG"),
];

/// An active ISO 4217 currency and its number of minor units (decimal places).
///
/// Only [`Currency::from_code`] (or [`str::parse`]) makes one, so every `Currency` value is in
/// the table of active codes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

impl Currency {
    /// Looks up an active ISO 4217 alphabetic code, such as `"USD"`, `"JPY"` or `"KWD"`.
    ///
    /// The code must be exactly three upper-case letters, with no surrounding space. Codes with
    /// no minor units (XAU, XDR, XTS, XXX, ...) and withdrawn codes (HRK, ZWL, ...) are refused
    /// with an error that says what to use instead.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        if let Ok(i) = CURRENCIES.binary_search_by(|(c, _)| (*c).cmp(code)) {
            let (code, minor_units) = CURRENCIES[i];
            return Ok(Currency { code, minor_units });
        }
        let shown = shown_text(code);
        if WITHOUT_MINOR_UNITS.contains(&code) {
            return Err(MoneyError::CurrencyWithoutMinorUnits { code: shown });
        }
        if let Some((_, replacement)) = WITHDRAWN.iter().find(|(old, _)| *old == code) {
            return Err(MoneyError::WithdrawnCurrency {
                code: shown,
                replacement,
            });
        }
        let upper = code.trim().to_ascii_uppercase();
        let suggestion = CURRENCIES
            .binary_search_by(|(c, _)| (*c).cmp(upper.as_str()))
            .ok()
            .map(|i| CURRENCIES[i].0);
        Err(MoneyError::UnknownCurrency {
            code: shown,
            suggestion,
        })
    }

    /// The ISO 4217 alphabetic code, such as `"USD"`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The number of decimal places of the currency: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }

    /// Every currency in the table, sorted by code.
    pub fn all() -> impl Iterator<Item = Currency> {
        CURRENCIES
            .iter()
            .map(|&(code, minor_units)| Currency { code, minor_units })
    }
}

impl fmt::Display for Currency {
    /// Writes the ISO 4217 code, such as `USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Same as [`Currency::from_code`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

/// What is wrong with a currency code or an amount.
///
/// Every message is one line that says what is wrong and how to fix it. Text copied from the
/// input is shortened to at most 40 characters and escaped, so a message never spans lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    /// The code is not an active ISO 4217 code. `suggestion` is the active code that the text
    /// would be after trimming and upper-casing, if any.
    UnknownCurrency {
        /// The code as given (shortened and escaped).
        code: String,
        /// The active code the input probably meant, such as `USD` for `usd`.
        suggestion: Option<&'static str>,
    },
    /// The code is an ISO 4217 code whose minor units are "N.A." (XAU, XDR, XTS, XXX, ...).
    CurrencyWithoutMinorUnits {
        /// The code as given.
        code: String,
    },
    /// The code was withdrawn from ISO 4217 and replaced by another.
    WithdrawnCurrency {
        /// The withdrawn code as given.
        code: String,
        /// The active code that replaced it.
        replacement: &'static str,
    },
    /// The amount text is empty.
    EmptyAmount,
    /// The amount text contains a character that is not an ASCII digit or the one '.'.
    InvalidCharacter {
        /// The amount as given (shortened and escaped).
        text: String,
        /// The first offending character.
        found: char,
    },
    /// The amount text is made of allowed characters but is not shaped like an amount.
    MalformedAmount {
        /// The amount as given (shortened and escaped).
        text: String,
        /// What is wrong, as a phrase such as "starts with '.'".
        reason: &'static str,
    },
    /// The amount has more decimal places than the currency allows.
    TooManyDecimalPlaces {
        /// The amount as given or as a decimal (shortened and escaped).
        amount: String,
        /// How many decimal places it has.
        places: u32,
        /// The currency code.
        currency: &'static str,
        /// How many decimal places the currency allows.
        allowed: u32,
    },
    /// The amount has more than [`MAX_INTEGER_DIGITS`] integer digits.
    AmountTooLarge {
        /// The amount as given (shortened and escaped).
        text: String,
        /// How many integer digits it has.
        digits: usize,
    },
    /// A stored amount is not in the canonical form for its currency.
    NonCanonicalAmount {
        /// The amount as stored (shortened and escaped).
        text: String,
        /// The currency code.
        currency: &'static str,
        /// The currency's minor units.
        minor_units: u32,
        /// The canonical form of the same value, when the text is a valid amount at all.
        canonical: Option<String>,
    },
    /// A count of minor units does not fit in a [`Decimal`], or an amount does not fit in an
    /// `i128` count of minor units.
    OutOfRange {
        /// The value that does not fit.
        value: String,
        /// The currency code.
        currency: &'static str,
    },
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::UnknownCurrency {
                code,
                suggestion: Some(s),
            } => write!(
                f,
                "unknown currency code '{code}': ISO 4217 codes are three upper-case letters; use '{s}'"
            ),
            MoneyError::UnknownCurrency {
                code,
                suggestion: None,
            } => write!(
                f,
                "unknown currency code '{code}': use an active ISO 4217 code in upper case, such as USD, EUR or JPY"
            ),
            MoneyError::CurrencyWithoutMinorUnits { code } => write!(
                f,
                "currency code '{code}' has no minor units in ISO 4217 (precious metal, special unit, testing or no-currency code) and cannot hold an amount; use a national currency such as USD"
            ),
            MoneyError::WithdrawnCurrency { code, replacement } => write!(
                f,
                "currency code '{code}' has been withdrawn from ISO 4217; use {replacement} instead"
            ),
            MoneyError::EmptyAmount => {
                write!(f, "amount is empty: enter digits such as 1250 or 1250.50")
            }
            MoneyError::InvalidCharacter { text, found } => {
                let hint = match found {
                    '-' | '+' => "amounts are entered without a sign",
                    ',' | '_' | '\'' => {
                        "do not group digits, and use '.' as the decimal separator"
                    }
                    'e' | 'E' => "write the amount in full, without an exponent",
                    c if c.is_whitespace() => "remove the spaces",
                    _ => "use only the digits 0-9 and an optional '.'",
                };
                write!(
                    f,
                    "amount '{text}' contains {}: {hint}",
                    shown_char(*found)
                )
            }
            MoneyError::MalformedAmount { text, reason } => write!(
                f,
                "amount '{text}' {reason}: write digits with an optional '.' followed by decimal digits, such as 1250.50"
            ),
            MoneyError::TooManyDecimalPlaces {
                amount,
                places,
                currency,
                allowed,
            } => write!(
                f,
                "amount {amount} has {places} decimal place{} but {currency} allows {allowed}",
                if *places == 1 { "" } else { "s" }
            ),
            MoneyError::AmountTooLarge { text, digits } => write!(
                f,
                "amount '{text}' has {digits} integer digits but at most {MAX_INTEGER_DIGITS} are accepted: check the amount"
            ),
            MoneyError::NonCanonicalAmount {
                text,
                currency,
                minor_units,
                canonical,
            } => {
                write!(f, "stored amount '{text}' is not in canonical {currency} form")?;
                match canonical {
                    Some(c) => write!(f, ": expected '{c}'"),
                    None if *minor_units == 0 => write!(
                        f,
                        ": expected digits without leading zeros and without '.', such as 1250"
                    ),
                    None => write!(
                        f,
                        ": expected digits without leading zeros, '.', and exactly {minor_units} decimal digits, such as 0.{}",
                        "0".repeat(*minor_units as usize)
                    ),
                }
            }
            MoneyError::OutOfRange { value, currency } => write!(
                f,
                "{currency} amount {value} is outside the range the ledger can represent: check the amount"
            ),
        }
    }
}

impl std::error::Error for MoneyError {}

/// Parses an amount as a person types it, in the given currency.
///
/// Accepted: ASCII digits, optionally followed by '.' and at most `currency.minor_units()`
/// decimal digits (`1250`, `1250.5`, `1250.50`, `0`, `007`). Refused: an empty text, a sign,
/// an exponent, spaces, digit grouping, a leading or trailing '.', more decimal digits than the
/// currency allows, and more than [`MAX_INTEGER_DIGITS`] integer digits. Zero is accepted:
/// callers decide whether an amount must be positive.
///
/// The result has exactly `currency.minor_units()` decimal places (`1250.5` USD gives a
/// [`Decimal`] of `1250.50`).
pub fn parse_amount(text: &str, currency: Currency) -> Result<Decimal, MoneyError> {
    let (int_part, frac_part) = split_amount(text)?;
    let places = frac_part.map_or(0, str::len);
    if places > currency.minor_units as usize {
        return Err(MoneyError::TooManyDecimalPlaces {
            amount: shown_text(text),
            places: u32::try_from(places).unwrap_or(u32::MAX),
            currency: currency.code,
            allowed: currency.minor_units,
        });
    }
    digits_to_decimal(int_part, frac_part.unwrap_or(""), currency)
}

/// Parses an amount in the canonical form that the ledger stores and signs.
///
/// The canonical form is the one [`format_amount`] writes for a non-negative amount: the
/// integer part is `0` or has no leading zero, and it is followed by '.' and exactly
/// `currency.minor_units()` decimal digits, or by nothing for a currency with no minor units
/// (`1250.50` and `0.00` for USD, `1250` for JPY, `1.500` for KWD). Any other encoding of the
/// same value (`1250.5`, `01250.50`, `1250.500`) is an error, so that one value has exactly
/// one signed encoding.
pub fn parse_canonical_amount(text: &str, currency: Currency) -> Result<Decimal, MoneyError> {
    let non_canonical = || MoneyError::NonCanonicalAmount {
        text: shown_text(text),
        currency: currency.code,
        minor_units: currency.minor_units,
        canonical: parse_amount(text, currency)
            .ok()
            .map(|d| format_amount(d, currency)),
    };
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || (int_part.len() > 1 && int_part.starts_with('0')) {
        return Err(non_canonical());
    }
    match (currency.minor_units, frac_part) {
        (0, None) => {}
        (n, Some(f)) if n > 0 && f.len() == n as usize && all_digits(f) => {}
        _ => return Err(non_canonical()),
    }
    if int_part.len() > MAX_INTEGER_DIGITS {
        return Err(MoneyError::AmountTooLarge {
            text: shown_text(text),
            digits: int_part.len(),
        });
    }
    digits_to_decimal(int_part, frac_part.unwrap_or(""), currency)
}

/// Writes an amount with exactly `currency.minor_units()` decimal places, and a '-' in front of
/// a negative amount (reports can show negative balances).
///
/// For a non-negative amount this is the canonical form that [`parse_canonical_amount`] reads
/// back to the same value. No separator, no currency code, never an exponent. Zero is written
/// without a sign.
///
/// This function never rounds money away. An amount with fewer decimal places is padded
/// (`10.5` USD is written `10.50`), and trailing zeros beyond the currency's places are dropped
/// (`10.500` is written `10.50`). An amount with significant digits beyond the currency's
/// places is a caller's bug (check it with [`check_scale`]): debug builds panic, release builds
/// write every digit of the exact value rather than lose any.
pub fn format_amount(amount: Decimal, currency: Currency) -> String {
    let mut out = String::new();
    write_amount(&mut out, amount, currency);
    out
}

/// [`format_amount`], appended to `out`.
pub fn write_amount(out: &mut String, amount: Decimal, currency: Currency) {
    let mu = currency.minor_units;
    let scale = amount.scale();
    let magnitude = amount.mantissa().unsigned_abs();
    let (digits, places) = if scale <= mu {
        // |mantissa| < 2^96 and the factor is at most 10^4, so this never overflows u128.
        (magnitude * 10u128.pow(mu - scale), mu)
    } else {
        let divisor = 10u128.pow(scale - mu);
        if magnitude % divisor == 0 {
            (magnitude / divisor, mu)
        } else {
            debug_assert!(
                false,
                "format_amount: {amount} has more decimal places than {currency} allows"
            );
            (magnitude, scale)
        }
    };
    if digits != 0 && amount.is_sign_negative() {
        out.push('-');
    }
    push_digits_with_point(out, digits, places);
}

/// The value [`parse_canonical_amount`] reads from what [`format_amount`]
/// writes of `amount` (the amount at the currency's scale), or the error it
/// gives: how a computed posting amount is checked, without the text.
pub fn posting_amount(amount: Decimal, currency: Currency) -> Result<Decimal, MoneyError> {
    let mu = currency.minor_units;
    // Writing and reading back keeps an amount already at the currency's
    // scale, not negative, with at most MAX_INTEGER_DIGITS integer digits.
    let integer_limit = 10u128.pow(MAX_INTEGER_DIGITS as u32 + mu);
    if amount.scale() == mu
        && !amount.is_sign_negative()
        && amount.mantissa().unsigned_abs() < integer_limit
    {
        return Ok(amount);
    }
    parse_canonical_amount(&format_amount(amount, currency), currency)
}

/// Checks that an amount has no more significant decimal places than the currency allows.
///
/// Trailing zeros do not count: `10.500` passes for USD, `10.123` does not ("amount 10.123 has
/// 3 decimal places but USD allows 2"). The sign is not checked.
pub fn check_scale(amount: Decimal, currency: Currency) -> Result<(), MoneyError> {
    let places = amount.normalize().scale();
    if places > currency.minor_units {
        return Err(MoneyError::TooManyDecimalPlaces {
            amount: shown_text(&amount.to_string()),
            places,
            currency: currency.code,
            allowed: currency.minor_units,
        });
    }
    Ok(())
}

/// Converts an amount to a whole number of minor units: `12.34` USD is `1234`, `5` JPY is `5`,
/// `-1.5` KWD is `-1500`.
///
/// Fails if the amount has more significant decimal places than the currency allows (see
/// [`check_scale`]); never rounds.
pub fn to_minor_units(amount: Decimal, currency: Currency) -> Result<i128, MoneyError> {
    check_scale(amount, currency)?;
    let mu = currency.minor_units;
    let scale = amount.scale();
    let mantissa = amount.mantissa();
    let units = if scale <= mu {
        10i128
            .checked_pow(mu - scale)
            .and_then(|f| mantissa.checked_mul(f))
    } else {
        // check_scale passed, so the division is exact.
        10i128
            .checked_pow(scale - mu)
            .and_then(|d| mantissa.checked_div(d))
    };
    units.ok_or_else(|| MoneyError::OutOfRange {
        value: shown_text(&amount.to_string()),
        currency: currency.code,
    })
}

/// Converts a whole number of minor units to an amount with exactly `currency.minor_units()`
/// decimal places: `1234` USD is `12.34`.
///
/// Fails if the value does not fit in a [`Decimal`] (an absolute value of 2^96 or more minor
/// units).
pub fn from_minor_units(units: i128, currency: Currency) -> Result<Decimal, MoneyError> {
    Decimal::try_from_i128_with_scale(units, currency.minor_units).map_err(|_| {
        MoneyError::OutOfRange {
            value: format!("{units} minor units"),
            currency: currency.code,
        }
    })
}

/// Splits user input into integer digits and optional fraction digits, checking characters and
/// shape (but not the number of decimal places).
fn split_amount(text: &str) -> Result<(&str, Option<&str>), MoneyError> {
    if text.is_empty() {
        return Err(MoneyError::EmptyAmount);
    }
    if let Some(found) = text.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
        return Err(MoneyError::InvalidCharacter {
            text: shown_text(text),
            found,
        });
    }
    let malformed = |reason| MoneyError::MalformedAmount {
        text: shown_text(text),
        reason,
    };
    let (int_part, frac_part) = match text.split_once('.') {
        None => (text, None),
        Some((i, f)) => {
            if f.contains('.') {
                return Err(malformed("has more than one '.'"));
            }
            if i.is_empty() {
                return Err(malformed("starts with '.'"));
            }
            if f.is_empty() {
                return Err(malformed("ends with '.'"));
            }
            (i, Some(f))
        }
    };
    if int_part.len() > MAX_INTEGER_DIGITS {
        return Err(MoneyError::AmountTooLarge {
            text: shown_text(text),
            digits: int_part.len(),
        });
    }
    Ok((int_part, frac_part))
}

/// Builds the Decimal for checked digit strings: at most [`MAX_INTEGER_DIGITS`] integer digits
/// and at most `minor_units` fraction digits, all ASCII digits.
fn digits_to_decimal(
    int_part: &str,
    frac_part: &str,
    currency: Currency,
) -> Result<Decimal, MoneyError> {
    let mu = currency.minor_units;
    let out_of_range = || MoneyError::OutOfRange {
        value: shown_text(&format!("{int_part}.{frac_part}")),
        currency: currency.code,
    };
    let mut units: i128 = 0;
    let padding = mu as usize - frac_part.len();
    let digits = int_part
        .bytes()
        .chain(frac_part.bytes())
        .chain(std::iter::repeat_n(b'0', padding));
    for b in digits {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(i128::from(b - b'0')))
            .ok_or_else(out_of_range)?;
    }
    Decimal::try_from_i128_with_scale(units, mu).map_err(|_| out_of_range())
}

/// Appends `digits` as a decimal number with `places` digits after the point.
fn push_digits_with_point(out: &mut String, digits: u128, places: u32) {
    let mut buf = [0u8; 40];
    let mut start = buf.len();
    let mut rest = digits;
    // Every digit, and at least `places + 1` of them (leading zeros).
    while rest != 0 || buf.len() - start <= places as usize {
        start -= 1;
        buf[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let written = &buf[start..];
    let point = written.len() - places as usize;
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&written[..point]).unwrap_or_default());
    if places > 0 {
        out.push('.');
        out.push_str(std::str::from_utf8(&written[point..]).unwrap_or_default());
    }
}

/// Input text as shown in an error message: at most 40 characters, escaped so that the message
/// stays on one line.
fn shown_text(text: &str) -> String {
    const LIMIT: usize = 40;
    let mut out: String = text
        .chars()
        .take(LIMIT)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(LIMIT).is_some() {
        out.push_str("...");
    }
    out
}

/// A character as shown in an error message.
fn shown_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        c if c.is_whitespace() || c.is_control() => {
            format!("the character '{}'", c.escape_default())
        }
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in CURRENCIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, mu) in CURRENCIES {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
            assert!(*mu <= 4, "{code}");
            assert!(!WITHOUT_MINOR_UNITS.contains(code), "{code}");
            assert!(!WITHDRAWN.iter().any(|(old, _)| old == code), "{code}");
        }
        // List One of 2026-01-01: 178 codes, of which 13 have no minor units.
        assert_eq!(CURRENCIES.len(), 165);
        for (_, replacement) in WITHDRAWN {
            assert!(Currency::from_code(replacement).is_ok(), "{replacement}");
        }
        assert_eq!(Currency::all().count(), 165);
    }

    #[test]
    fn known_minor_units() {
        let expected = [
            ("USD", 2),
            ("EUR", 2),
            ("AED", 2),
            ("GBP", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("ISK", 0),
            ("CLP", 0),
            ("XOF", 0),
            ("UYI", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("OMR", 3),
            ("JOD", 3),
            ("TND", 3),
            ("LYD", 3),
            ("IQD", 3),
            ("CLF", 4),
            ("UYW", 4),
            ("SLE", 2),
            ("ZWG", 2),
            ("XCG", 2),
            ("VED", 2),
            ("XAD", 2),
            ("CHW", 2),
        ];
        for (code, mu) in expected {
            let c = cur(code);
            assert_eq!(c.code(), code);
            assert_eq!(c.minor_units(), mu, "{code}");
            assert_eq!(c.to_string(), code);
            assert_eq!(code.parse::<Currency>().unwrap(), c);
        }
    }

    #[test]
    fn rejects_bad_codes() {
        for code in [
            "usd", "Usd", " USD", "USD ", "US", "USDD", "", "ABC", "U$D", "ÜSD",
        ] {
            assert!(
                matches!(
                    Currency::from_code(code),
                    Err(MoneyError::UnknownCurrency { .. })
                ),
                "{code}"
            );
        }
        for code in [
            "XAU", "XAG", "XPD", "XPT", "XXX", "XTS", "XDR", "XBA", "XSU", "XUA",
        ] {
            assert_eq!(
                Currency::from_code(code),
                Err(MoneyError::CurrencyWithoutMinorUnits {
                    code: code.to_string()
                })
            );
        }
        for (old, new) in [
            ("HRK", "EUR"),
            ("ZWL", "ZWG"),
            ("ANG", "XCG"),
            ("SLL", "SLE"),
        ] {
            assert_eq!(
                Currency::from_code(old),
                Err(MoneyError::WithdrawnCurrency {
                    code: old.to_string(),
                    replacement: new
                })
            );
        }
        let e = Currency::from_code("usd").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown currency code 'usd': ISO 4217 codes are three upper-case letters; use 'USD'"
        );
        assert!(Currency::from_code("ZZZ")
            .unwrap_err()
            .to_string()
            .contains("use an active ISO 4217 code"));
        assert!(Currency::from_code("HRK")
            .unwrap_err()
            .to_string()
            .ends_with("use EUR instead"));
    }

    #[test]
    fn parse_amount_accepts_typed_forms() {
        let usd = cur("USD");
        assert_eq!(parse_amount("1250", usd).unwrap().to_string(), "1250.00");
        assert_eq!(parse_amount("1250.5", usd).unwrap().to_string(), "1250.50");
        assert_eq!(parse_amount("1250.50", usd).unwrap().to_string(), "1250.50");
        assert_eq!(parse_amount("0", usd).unwrap().to_string(), "0.00");
        assert_eq!(parse_amount("0.00", usd).unwrap().to_string(), "0.00");
        assert_eq!(parse_amount("007.1", usd).unwrap().to_string(), "7.10");
        assert_eq!(parse_amount("1250.5", usd).unwrap().scale(), 2);
        let jpy = cur("JPY");
        assert_eq!(parse_amount("1000000", jpy).unwrap().to_string(), "1000000");
        assert_eq!(parse_amount("1000000", jpy).unwrap().scale(), 0);
        let kwd = cur("KWD");
        assert_eq!(parse_amount("1.5", kwd).unwrap().to_string(), "1.500");
        assert_eq!(parse_amount("1.125", kwd).unwrap(), dec("1.125"));
        let clf = cur("CLF");
        assert_eq!(parse_amount("2.0001", clf).unwrap().to_string(), "2.0001");
        let max = "9".repeat(20);
        assert_eq!(
            parse_amount(&format!("{max}.9999"), clf)
                .unwrap()
                .to_string(),
            format!("{max}.9999")
        );
    }

    #[test]
    fn parse_amount_rejects_bad_input() {
        let usd = cur("USD");
        assert_eq!(parse_amount("", usd), Err(MoneyError::EmptyAmount));
        for (text, found) in [
            ("-1", '-'),
            ("+1", '+'),
            ("1e3", 'e'),
            ("1E3", 'E'),
            ("1 000", ' '),
            (" 1", ' '),
            ("1\n", '\n'),
            ("1,000.00", ','),
            ("1_000", '_'),
            ("$10", '$'),
            ("١٢", '١'),
            ("NaN", 'N'),
        ] {
            assert_eq!(
                parse_amount(text, usd),
                Err(MoneyError::InvalidCharacter {
                    text: shown_text(text),
                    found
                }),
                "{text:?}"
            );
        }
        for text in [".5", "5.", "1.2.3", ".", "1..2"] {
            assert!(
                matches!(
                    parse_amount(text, usd),
                    Err(MoneyError::MalformedAmount { .. })
                ),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_amount("10.123", usd).unwrap_err().to_string(),
            "amount 10.123 has 3 decimal places but USD allows 2"
        );
        assert_eq!(
            parse_amount("10.0", cur("JPY")).unwrap_err().to_string(),
            "amount 10.0 has 1 decimal place but JPY allows 0"
        );
        assert!(parse_amount("1.0000", cur("KWD")).is_err());
        let huge = "1".repeat(21);
        assert_eq!(
            parse_amount(&huge, usd),
            Err(MoneyError::AmountTooLarge {
                text: huge.clone(),
                digits: 21
            })
        );
        // Absurd lengths are errors, never panics, and the message stays short.
        let absurd = "9".repeat(100_000);
        let e = parse_amount(&absurd, usd).unwrap_err();
        assert!(e.to_string().len() < 200);
        let absurd_frac = format!("1.{}", "0".repeat(100_000));
        assert!(parse_amount(&absurd_frac, usd).is_err());
    }

    #[test]
    fn error_messages_are_one_line() {
        let usd = cur("USD");
        let inputs = ["1\n2", "a\rb", "\u{2028}", "1.2.3", "-5", "1.234", ""];
        for text in inputs {
            let e = parse_amount(text, usd).unwrap_err().to_string();
            assert!(
                !e.contains('\n') && !e.contains('\r') && !e.contains('\u{2028}'),
                "{e}"
            );
            let e = parse_canonical_amount(text, usd).unwrap_err().to_string();
            assert!(
                !e.contains('\n') && !e.contains('\r') && !e.contains('\u{2028}'),
                "{e}"
            );
        }
        let e = Currency::from_code("A\nB").unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn canonical_amounts() {
        let usd = cur("USD");
        assert_eq!(
            parse_canonical_amount("1250.50", usd).unwrap(),
            dec("1250.50")
        );
        assert_eq!(parse_canonical_amount("0.00", usd).unwrap(), Decimal::ZERO);
        assert_eq!(parse_canonical_amount("0.07", usd).unwrap(), dec("0.07"));
        assert_eq!(parse_canonical_amount("1250.50", usd).unwrap().scale(), 2);
        for text in [
            "1250.5", "1250", "01250.50", "00.00", "0", "1250.500", "-1.00", "+1.00", "1,250.50",
            " 1.00", "1.00 ", ".50", "1.", "", "1.0a", "1.-0", "1e2", "0x10",
        ] {
            assert!(
                matches!(
                    parse_canonical_amount(text, usd),
                    Err(MoneyError::NonCanonicalAmount { .. })
                ),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_canonical_amount("1250.5", usd)
                .unwrap_err()
                .to_string(),
            "stored amount '1250.5' is not in canonical USD form: expected '1250.50'"
        );
        let jpy = cur("JPY");
        assert_eq!(parse_canonical_amount("1250", jpy).unwrap(), dec("1250"));
        assert_eq!(parse_canonical_amount("0", jpy).unwrap(), Decimal::ZERO);
        for text in ["1250.", "1250.0", "01250", "00", "-1"] {
            assert!(parse_canonical_amount(text, jpy).is_err(), "{text:?}");
        }
        let kwd = cur("KWD");
        assert_eq!(parse_canonical_amount("1.500", kwd).unwrap(), dec("1.5"));
        assert!(parse_canonical_amount("1.50", kwd).is_err());
        let huge = format!("{}.00", "1".repeat(21));
        assert!(matches!(
            parse_canonical_amount(&huge, usd),
            Err(MoneyError::AmountTooLarge { .. })
        ));
    }

    #[test]
    fn format_amounts() {
        let usd = cur("USD");
        assert_eq!(format_amount(dec("1250.5"), usd), "1250.50");
        assert_eq!(format_amount(dec("1250"), usd), "1250.00");
        assert_eq!(format_amount(dec("1250.500"), usd), "1250.50");
        assert_eq!(format_amount(dec("0"), usd), "0.00");
        assert_eq!(format_amount(dec("0.07"), usd), "0.07");
        assert_eq!(format_amount(dec("-3.5"), usd), "-3.50");
        assert_eq!(format_amount(dec("-0.00"), usd), "0.00");
        assert_eq!(format_amount(-Decimal::ZERO, usd), "0.00");
        assert_eq!(format_amount(dec("1250"), cur("JPY")), "1250");
        assert_eq!(format_amount(dec("1250.000"), cur("JPY")), "1250");
        assert_eq!(format_amount(dec("-7"), cur("JPY")), "-7");
        assert_eq!(format_amount(dec("0.001"), cur("KWD")), "0.001");
        assert_eq!(format_amount(dec("0.5"), cur("CLF")), "0.5000");
        assert_eq!(
            format_amount(Decimal::MAX, cur("JPY")),
            "79228162514264337593543950335"
        );
        assert_eq!(
            format_amount(Decimal::MIN, cur("CLF")),
            "-79228162514264337593543950335.0000"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "more decimal places")]
    fn format_amount_refuses_to_lose_money_in_debug() {
        let _ = format_amount(dec("10.123"), cur("USD"));
    }

    #[test]
    fn scale_checks() {
        let usd = cur("USD");
        assert!(check_scale(dec("10.12"), usd).is_ok());
        assert!(check_scale(dec("10.1200000"), usd).is_ok());
        assert!(check_scale(dec("-10"), usd).is_ok());
        assert_eq!(
            check_scale(dec("10.123"), usd).unwrap_err().to_string(),
            "amount 10.123 has 3 decimal places but USD allows 2"
        );
        assert!(check_scale(dec("1.5"), cur("JPY")).is_err());
        assert!(check_scale(dec("1.0"), cur("JPY")).is_ok());
    }

    #[test]
    fn minor_units_conversion() {
        let usd = cur("USD");
        assert_eq!(to_minor_units(dec("12.34"), usd), Ok(1234));
        assert_eq!(to_minor_units(dec("12.3"), usd), Ok(1230));
        assert_eq!(to_minor_units(dec("12.3400"), usd), Ok(1234));
        assert_eq!(to_minor_units(dec("-1.5"), cur("KWD")), Ok(-1500));
        assert_eq!(to_minor_units(dec("5"), cur("JPY")), Ok(5));
        assert!(to_minor_units(dec("0.001"), usd).is_err());
        assert_eq!(
            to_minor_units(Decimal::MAX, cur("CLF")),
            Ok(Decimal::MAX.mantissa() * 10_000)
        );
        assert_eq!(from_minor_units(1234, usd).unwrap().to_string(), "12.34");
        assert_eq!(from_minor_units(-1500, cur("KWD")).unwrap(), dec("-1.5"));
        assert_eq!(from_minor_units(0, cur("JPY")).unwrap().to_string(), "0");
        assert!(matches!(
            from_minor_units(i128::MAX, usd),
            Err(MoneyError::OutOfRange { .. })
        ));
        assert!(from_minor_units(1i128 << 96, usd).is_err());
        assert!(from_minor_units((1i128 << 96) - 1, usd).is_ok());
    }

    #[test]
    fn round_trips_for_every_currency() {
        let samples = ["0", "1", "7", "10", "999999", "12345678901234567890"];
        for c in Currency::all() {
            for s in samples {
                let typed = parse_amount(s, c).unwrap();
                let text = format_amount(typed, c);
                assert_eq!(parse_canonical_amount(&text, c).unwrap(), typed, "{c} {s}");
                assert_eq!(
                    format_amount(parse_canonical_amount(&text, c).unwrap(), c),
                    text
                );
                let units = to_minor_units(typed, c).unwrap();
                assert_eq!(from_minor_units(units, c).unwrap(), typed);
            }
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn any_currency() -> impl Strategy<Value = Currency> {
            (0..CURRENCIES.len()).prop_map(|i| Currency::all().nth(i).unwrap())
        }

        proptest! {
            #[test]
            fn canonical_round_trip(c in any_currency(), units in 0i128..1_000_000_000_000_000_000i128) {
                let amount = from_minor_units(units, c).unwrap();
                let text = format_amount(amount, c);
                let back = parse_canonical_amount(&text, c).unwrap();
                prop_assert_eq!(back, amount);
                prop_assert_eq!(back.scale(), c.minor_units());
                prop_assert_eq!(to_minor_units(back, c).unwrap(), units);
                prop_assert_eq!(parse_amount(&text, c).unwrap(), amount);
            }

            #[test]
            fn negative_format(c in any_currency(), units in 1i128..1_000_000_000_000i128) {
                let amount = from_minor_units(-units, c).unwrap();
                let text = format_amount(amount, c);
                prop_assert!(text.starts_with('-'));
                prop_assert_eq!(parse_canonical_amount(&text[1..], c).unwrap(), -amount);
            }

            #[test]
            fn parsers_never_panic(s in "\\PC{0,40}", c in any_currency()) {
                let _ = parse_amount(&s, c);
                let _ = parse_canonical_amount(&s, c);
                let _ = Currency::from_code(&s);
            }

            /// The check of a computed posting amount gives what writing
            /// the amount and reading it back gives (value, scale, error).
            #[test]
            fn posting_amount_is_format_then_parse(
                mantissa in prop_oneof![
                    -1_000_000i128..1_000_000_000,
                    any::<i64>().prop_map(i128::from),
                    (0i128..(1i128 << 96)),
                ],
                scale in 0u32..6,
                c in any_currency(),
            ) {
                let amount = Decimal::from_i128_with_scale(mantissa, scale);
                // Only amounts format_amount can write without rounding.
                prop_assume!(check_scale(amount, c).is_ok());
                let expected = parse_canonical_amount(&format_amount(amount, c), c);
                let got = posting_amount(amount, c);
                match (&expected, &got) {
                    (Ok(e), Ok(g)) => {
                        prop_assert_eq!(e, g);
                        prop_assert_eq!(e.scale(), g.scale());
                    }
                    (Err(e), Err(g)) => prop_assert_eq!(e.to_string(), g.to_string()),
                    _ => prop_assert!(false, "{amount}: {expected:?} against {got:?}"),
                }
            }

            #[test]
            fn typed_digits_parse_exactly(int in "[0-9]{1,20}", frac in "[0-9]{0,4}", c in any_currency()) {
                let text = if frac.is_empty() { int.clone() } else { format!("{int}.{frac}") };
                let r = parse_amount(&text, c);
                if frac.len() <= c.minor_units() as usize {
                    let d = r.unwrap();
                    prop_assert_eq!(d.scale(), c.minor_units());
                    prop_assert_eq!(d, Decimal::from_str_exact(&text).unwrap());
                } else {
                    let is_too_many_places =
                        matches!(r, Err(MoneyError::TooManyDecimalPlaces { .. }));
                    prop_assert!(is_too_many_places);
                }
            }
        }
    }
}
