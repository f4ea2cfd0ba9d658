//! Amounts as typed by users and as stored: parsing never panics, a
//! canonical amount formats back to the same text, and minor units round
//! trip exactly.
#![no_main]

use fundledger::money::{
    format_amount, from_minor_units, parse_amount, parse_canonical_amount, to_minor_units, Currency,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if bytes.len() < 3 {
        return;
    }
    let (code, text) = bytes.split_at(3);
    let (Ok(code), Ok(text)) = (std::str::from_utf8(code), std::str::from_utf8(text)) else {
        return;
    };
    let Ok(currency) = Currency::from_code(code) else {
        return;
    };
    if let Ok(amount) = parse_canonical_amount(text, currency) {
        assert_eq!(
            format_amount(amount, currency),
            text,
            "canonical amount reformatted"
        );
    }
    if let Ok(amount) = parse_amount(text, currency) {
        let units = to_minor_units(amount, currency).expect("a parsed amount has minor units");
        assert_eq!(from_minor_units(units, currency).ok(), Some(amount));
        let _ = format_amount(amount, currency);
    }
});
