//! A stored record from an untrusted ledger file: strict decoding never
//! panics, and whatever it accepts is canonical (encodes back to exactly
//! the bytes read), down to the body of its event.
#![no_main]

use fundledger::entry::Record;
use fundledger::event::{Body, BodyRawPostings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok((record, _hash)) = Record::decode_hashed(bytes) else {
        return;
    };
    assert_eq!(record.encode(), bytes, "a decoded record is not canonical");
    let content = &record.content;
    let strict = Body::decode(&content.kind, &content.body);
    let raw = BodyRawPostings::decode(&content.kind, &content.body);
    if let Ok(body) = &strict {
        assert_eq!(
            body.encode().expect("a decoded body encodes"),
            content.body,
            "a decoded body is not canonical"
        );
        assert!(
            raw.is_ok(),
            "strict decoding accepts what raw-postings decoding refuses"
        );
    }
});
