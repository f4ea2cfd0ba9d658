//! The test vectors in schema/vectors/ (schema/FORMAT.md): each file states
//! its inputs and expected outputs, and each runs here. Run with
//! FUNDLEDGER_BLESS=1 to rewrite the files after a deliberate format change
//! (and update schema/FORMAT.md in the same commit).

mod util;

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use fundledger::entry::{self, Content, Record};
use fundledger::event::Body;
use serde_json::{json, Value};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/vectors")
}

fn bless() -> bool {
    std::env::var_os("FUNDLEDGER_BLESS").is_some()
}

fn key(seed_hex: &str) -> SigningKey {
    let seed: [u8; 32] = hex::decode(seed_hex).unwrap().try_into().unwrap();
    SigningKey::from_bytes(&seed)
}

/// The inputs of the valid vectors.
fn valid_inputs() -> Vec<Value> {
    let seed1 = "01".repeat(32);
    let seed2 = "02".repeat(32);
    let pk1 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(key(&seed1).verifying_key().as_bytes())
    };
    vec![
        json!({
            "name": "genesis",
            "description": "The genesis entry: seq 0, prev_hash all zero, enrolls the key of seed 01..01 as administrator and is signed by it.",
            "seeds": [seed1],
            "origin": "ledger.example.org/ae-ai-fund",
            "seq": 0,
            "prev_hash": "00".repeat(32),
            "recorded_at_unix_ms": 1767225600000i64,
            "kind": "genesis",
            "body": format!(r#"{{"event":{{"key":{{"name":"treasury-admin","public_key":"{pk1}","role":"administrator"}}}}}}"#),
        }),
        json!({
            "name": "attest-with-idempotency-key",
            "description": "An attest entry with an idempotency key and a non-ASCII note.",
            "seeds": [seed1],
            "origin": "ledger.example.org/ae-ai-fund",
            "seq": 1,
            "prev_hash": "5b".repeat(32),
            "recorded_at_unix_ms": 1767225601234i64,
            "kind": "attest",
            "body": r#"{"event":{"file_name":"subscription-agreement.pdf","note":"Signed subscription — Ministry of Finance","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"idempotency_key":"sub-2026-001"}"#,
        }),
        json!({
            "name": "call-with-postings",
            "description": "A capital call of 100.00 USD split over three equal commitments by the largest-remainder rule (the extra cent to the smallest partner id), with its postings.",
            "seeds": [seed1],
            "origin": "ledger.example.org/ae-ai-fund",
            "seq": 9,
            "prev_hash": "a1".repeat(32),
            "recorded_at_unix_ms": 1767312000000i64,
            "kind": "call",
            "body": concat!(
                r#"{"event":{"amount":"100.00","currency":"USD","date":"2026-01-02","due_date":"2026-02-01","fund":"f1","purpose":"investment"},"postings":["#,
                r#"{"account":"call_receivable","amount":"33.34","currency":"USD","partner":"a","side":"debit"},"#,
                r#"{"account":"call_receivable","amount":"33.33","currency":"USD","partner":"b","side":"debit"},"#,
                r#"{"account":"call_receivable","amount":"33.33","currency":"USD","partner":"c","side":"debit"},"#,
                r#"{"account":"capital","amount":"33.34","currency":"USD","partner":"a","side":"credit"},"#,
                r#"{"account":"capital","amount":"33.33","currency":"USD","partner":"b","side":"credit"},"#,
                r#"{"account":"capital","amount":"33.33","currency":"USD","partner":"c","side":"credit"},"#,
                r#"{"account":"called","amount":"33.34","currency":"USD","partner":"a","side":"debit"},"#,
                r#"{"account":"called","amount":"33.33","currency":"USD","partner":"b","side":"debit"},"#,
                r#"{"account":"called","amount":"33.33","currency":"USD","partner":"c","side":"debit"},"#,
                r#"{"account":"unfunded","amount":"33.34","currency":"USD","partner":"a","side":"credit"},"#,
                r#"{"account":"unfunded","amount":"33.33","currency":"USD","partner":"b","side":"credit"},"#,
                r#"{"account":"unfunded","amount":"33.33","currency":"USD","partner":"c","side":"credit"}]}"#
            ),
        }),
        json!({
            "name": "two-signers",
            "description": "A distribution signed by two keys (seeds 01..01 and 02..02); signatures sorted by key id.",
            "seeds": [seed1, seed2],
            "origin": "ledger.example.org/ae-ai-fund",
            "seq": 42,
            "prev_hash": "c3".repeat(32),
            "recorded_at_unix_ms": 1798761600000i64,
            "kind": "distribution",
            "body": concat!(
                r#"{"event":{"amount":"1000.00","currency":"USD","date":"2027-01-01","fund":"f1"},"postings":["#,
                r#"{"account":"distributions","amount":"1000.00","currency":"USD","partner":"a","side":"debit"},"#,
                r#"{"account":"cash","amount":"1000.00","currency":"USD","side":"credit"}]}"#
            ),
        }),
    ]
}

fn build(input: &Value) -> (Content, Record) {
    let content = Content {
        origin: input["origin"].as_str().unwrap().into(),
        seq: input["seq"].as_u64().unwrap(),
        prev_hash: hex::decode(input["prev_hash"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
        recorded_at_unix_ms: input["recorded_at_unix_ms"].as_i64().unwrap(),
        kind: input["kind"].as_str().unwrap().into(),
        body: input["body"].as_str().unwrap().as_bytes().to_vec(),
    };
    let hash = content.hash();
    let sigs = input["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| entry::sign(&key(s.as_str().unwrap()), &hash))
        .collect();
    let record = Record::new(content.clone(), sigs).unwrap();
    (content, record)
}

fn expected(input: &Value) -> Value {
    let (content, record) = build(input);
    let hash = content.hash();
    json!({
        "content_hex": hex::encode(content.encode()),
        "entry_hash": hex::encode(hash),
        "signed_message_hex": hex::encode(entry::signed_message(&hash)),
        "key_ids": record.signatures.iter().map(|s| hex::encode(s.key_id)).collect::<Vec<_>>(),
        "signatures": record.signatures.iter().map(|s| hex::encode(s.signature)).collect::<Vec<_>>(),
        "record_hex": hex::encode(record.encode()),
    })
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn valid_vectors_match_the_implementation() {
    let dir = vectors_dir();
    for input in valid_inputs() {
        let name = input["name"].as_str().unwrap();
        let path = dir.join(format!("valid-{name}.json"));
        let mut doc = input.clone();
        doc["expected"] = expected(&input);
        if bless() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        }
        let stored = read(&path);
        // The file's own inputs must give the file's own outputs.
        assert_eq!(expected(&stored), stored["expected"], "vector {name}");
        // And the record must decode back to the inputs, with good signatures.
        let bytes = hex::decode(stored["expected"]["record_hex"].as_str().unwrap()).unwrap();
        let record = Record::decode(&bytes).unwrap();
        assert_eq!(
            record.content.body,
            stored["body"].as_str().unwrap().as_bytes()
        );
        Body::decode(&record.content.kind, &record.content.body).unwrap();
        for (sig, seed) in record.signatures.iter().zip(sorted_keys(&stored)) {
            assert!(entry::verify_signature(
                &seed.verifying_key(),
                &record.content.hash(),
                sig
            ));
        }
    }
}

fn sorted_keys(v: &Value) -> Vec<SigningKey> {
    let mut keys: Vec<SigningKey> = v["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| key(s.as_str().unwrap()))
        .collect();
    keys.sort_by_key(|k| entry::key_id(&k.verifying_key()));
    keys
}

/// Records a verifier must reject, each made from a valid one by one change.
fn invalid_inputs() -> Vec<(String, String, Vec<u8>)> {
    let inputs = valid_inputs();
    let (content, record) = build(&inputs[1]);
    let good = record.encode();
    let mut out = Vec::new();
    let mut push = |name: &str, why: &str, bytes: Vec<u8>| {
        out.push((name.to_string(), why.to_string(), bytes))
    };

    let mut v = good.clone();
    v[16] = 2;
    push(
        "unknown-version",
        "version byte 2 is not a known format version",
        v,
    );
    let mut v = good.clone();
    v.push(0);
    push("trailing-byte", "a byte after the last signature", v);
    push(
        "truncated",
        "the record ends inside the last signature",
        good[..good.len() - 1].to_vec(),
    );
    let mut v = good.clone();
    v[0] = b'F';
    push(
        "bad-magic",
        "the record does not start with \"fundledger/entry\"",
        v,
    );

    let sig = record.signatures[0].clone();
    let dup = Record {
        content: content.clone(),
        signatures: vec![sig.clone(), sig.clone()],
    };
    push(
        "duplicate-signer",
        "the same key id signs twice",
        dup.encode(),
    );
    let none = Record {
        content: content.clone(),
        signatures: vec![],
    };
    push(
        "no-signature",
        "an entry needs at least one signature",
        none.encode(),
    );
    let two = build(&inputs[3]).1;
    let unsorted = Record {
        content: two.content.clone(),
        signatures: two.signatures.iter().rev().cloned().collect(),
    };
    push(
        "unsorted-signers",
        "signatures are not sorted by key id",
        unsorted.encode(),
    );

    let with_body = |body: &str| {
        let mut c = content.clone();
        c.body = body.as_bytes().to_vec();
        Record {
            content: c,
            signatures: vec![sig.clone()],
        }
        .encode()
    };
    let body = String::from_utf8(content.body.clone()).unwrap();
    push(
        "body-whitespace",
        "the body has a space after a colon",
        with_body(&body.replacen(":", ": ", 1)),
    );
    push(
        "body-key-order",
        "body keys are not sorted",
        with_body(
            &body
                .replacen(r#"{"event""#, r#"{"idempotency_key":"x","event""#, 1)
                .replacen(r#","idempotency_key":"sub-2026-001""#, "", 1),
        ),
    );
    push(
        "body-number-size",
        "a number with a fraction",
        with_body(&body.replacen(r#""size":0"#, r#""size":0.0"#, 1)),
    );
    push(
        "body-escaped-ascii",
        "an ASCII character written as a \\u escape",
        with_body(&body.replacen("sub-", "sub\\u002d", 1)),
    );
    push(
        "body-null",
        "a null value",
        with_body(&body.replacen(r#""size":0"#, r#""size":null"#, 1)),
    );
    push(
        "body-unknown-field",
        "an unknown field in the event",
        with_body(&body.replacen(r#""file_name""#, r#""extra":"x","file_name""#, 1)),
    );
    let mut c = content.clone();
    c.kind = "no.such.kind".into();
    push(
        "unknown-kind",
        "a kind this version does not know",
        Record {
            content: c,
            signatures: vec![sig.clone()],
        }
        .encode(),
    );
    let mut c = content.clone();
    c.origin = "has space".into();
    push(
        "bad-origin",
        "an origin with a space",
        Record {
            content: c,
            signatures: vec![sig],
        }
        .encode(),
    );
    out
}

fn decodes(bytes: &[u8]) -> Result<(), String> {
    let record = Record::decode(bytes).map_err(|e| e.to_string())?;
    Body::decode(&record.content.kind, &record.content.body).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn invalid_vectors_are_rejected() {
    let dir = vectors_dir();
    let cases = invalid_inputs();
    assert!(cases.len() >= 14);
    for (name, why, bytes) in cases {
        let path = dir.join(format!("invalid-{name}.json"));
        if bless() {
            let doc = json!({"name": name, "must_reject_because": why, "record_hex": hex::encode(&bytes)});
            std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        }
        let stored = read(&path);
        let stored_bytes = hex::decode(stored["record_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            stored_bytes, bytes,
            "vector {name} is out of date: bless it"
        );
        assert!(
            decodes(&stored_bytes).is_err(),
            "vector {name} was accepted: {why}"
        );
    }
}

/// Every file in schema/vectors/ is one of the vectors above.
#[test]
fn no_stray_vector_files() {
    let mut known: Vec<String> = valid_inputs()
        .iter()
        .map(|v| format!("valid-{}.json", v["name"].as_str().unwrap()))
        .chain(
            invalid_inputs()
                .into_iter()
                .map(|(n, _, _)| format!("invalid-{n}.json")),
        )
        .collect();
    known.push("README.md".into());
    known.push("signatures.json".into());
    // The bundle vectors (schema/BUNDLE.md), checked by tests/bundle.rs.
    known.push("bundle".into());
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(known.contains(&name), "unknown vector file {name}");
    }
}

/// Signature vectors (schema/vectors/signatures.json): raw public key,
/// entry hash and signature, and whether the rules of FORMAT.md section 2
/// accept it. Made from fixed scalars, so they never change.
fn signature_vectors() -> Value {
    let honest = key(&"01".repeat(32));
    let hash = [0x42u8; 32];
    let good = entry::sign(&honest, &hash).signature;
    // A signature whose signer put a point of order 8 into R: valid by the
    // cofactored equation, refused by RFC 8032's strict rules.
    let a_bytes = util::torsion_signer_public();
    let torsion = util::torsion_in_r_signature(&hash);
    let mut s_not_reduced = good;
    // S + L, the group order: the same scalar, not canonical.
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s_not_reduced[32 + i]) + u16::from(l[i]) + carry;
        s_not_reduced[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    let mut r_flipped = good;
    r_flipped[0] ^= 1;
    let pk = hex::encode(honest.verifying_key().as_bytes());
    let case = |name: &str, key: &str, sig: &[u8; 64], valid: bool, why: &str| {
        json!({
            "name": name,
            "public_key_hex": key,
            "entry_hash_hex": hex::encode(hash),
            "signature_hex": hex::encode(sig),
            "valid": valid,
            "why": why,
        })
    };
    json!({
        "description": "Entry signatures checked by the rules of schema/FORMAT.md section 2 (ZIP 215). The signed message is signed_message(entry_hash). Keys here are all canonical and torsion-free, as enrollment requires.",
        "cases": [
            case("honest", &pk, &good, true, "an RFC 8032 signature by key seed 01..01"),
            case("torsion-in-r", &hex::encode(a_bytes), &torsion, true, "R carries a point of order 8: the cofactored equation holds (RFC 8032's strict rules refuse it)"),
            case("s-not-reduced", &pk, &s_not_reduced, false, "S + L: S must be below the group order"),
            case("r-changed", &pk, &r_flipped, false, "one bit of R flipped"),
            case("other-key", &hex::encode(key(&"02".repeat(32)).verifying_key().as_bytes()), &good, false, "signed by another key"),
        ],
    })
}

#[test]
fn signature_vectors_match_the_rules() {
    let path = vectors_dir().join("signatures.json");
    if bless() {
        let text = serde_json::to_string_pretty(&signature_vectors()).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let stored = read(&path);
    assert_eq!(
        stored,
        signature_vectors(),
        "regenerate with FUNDLEDGER_BLESS=1"
    );
    let mut batch = Vec::new();
    for case in stored["cases"].as_array().unwrap() {
        let bytes = |field: &str| hex::decode(case[field].as_str().unwrap()).unwrap();
        let check = entry::SignatureCheck {
            public_key: bytes("public_key_hex").try_into().unwrap(),
            entry_hash: bytes("entry_hash_hex").try_into().unwrap(),
            signature: bytes("signature_hex").try_into().unwrap(),
        };
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(check.verify(), valid, "{}", case["name"]);
        // RFC 8032's strict rules accept the honest one only.
        let strict = ed25519_dalek::VerifyingKey::from_bytes(&check.public_key)
            .unwrap()
            .verify_strict(
                &entry::signed_message(&check.entry_hash),
                &ed25519_dalek::Signature::from_bytes(&check.signature),
            );
        assert_eq!(strict.is_ok(), case["name"] == "honest", "{}", case["name"]);
        // Alone in a batch, the same answer.
        let found = entry::verify_signatures(std::slice::from_ref(&check));
        assert_eq!(found.is_none(), valid, "{}", case["name"]);
        if valid {
            batch.push(check);
        }
    }
    assert_eq!(entry::verify_signatures(&batch), None);
}
