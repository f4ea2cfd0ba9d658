//! The entry format: the canonical bytes that are hashed, signed and stored.
//!
//! schema/FORMAT.md is the specification; this module is its implementation
//! and must change with it. An entry is a fixed header (magic, version,
//! origin, sequence number, previous hash, recording time, kind) followed by
//! a canonical-JSON body. Its hash is SHA-256 over those *content* bytes.
//! Signatures cover a domain-separated message holding the hash, and are
//! appended after the content to make the stored *record*.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The 16 bytes every entry's content starts with.
pub const ENTRY_MAGIC: &[u8; 16] = b"fundledger/entry";
/// The only entry format version this code reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// The previous-entry hash of the genesis entry (sequence number 0).
pub const GENESIS_PREV_HASH: [u8; 32] = [0u8; 32];
/// Prefix of every signed message; the 32-byte entry hash follows it.
pub const SIGNATURE_CONTEXT: &[u8; 30] = b"fundledger/entry-signature/v1\n";
/// Longest origin, in bytes. Origins name a ledger, like a C2SP log origin.
pub const ORIGIN_LEN_MAX: usize = 255;
/// Longest kind, in bytes.
pub const KIND_LEN_MAX: usize = 64;
/// Largest body, in bytes: big enough for a call split over thousands of
/// partners, small enough that one entry never dominates memory.
pub const BODY_LEN_MAX: usize = 4 * 1024 * 1024;
/// Most signatures on one entry (multi-signature policies need a few).
pub const SIGNERS_MAX: usize = 16;

/// The content's bytes besides its three texts: magic, version, seq,
/// prev_hash, recorded_at and the three length prefixes.
const CONTENT_FIXED_BYTES: usize = 16 + 1 + 8 + 32 + 8 + 3 * 4;

/// The bytes a record's `count` signatures take after its content: the
/// count, then key ID and signature for each.
fn signatures_bytes(count: usize) -> usize {
    1 + count * (std::mem::size_of::<KeyId>() + 64)
}

pub type Hash = [u8; 32];

/// SHA-256 of a raw 32-byte Ed25519 public key: how entries name signers.
pub type KeyId = [u8; 32];

/// The key id of a public key.
pub fn key_id(key: &VerifyingKey) -> KeyId {
    Sha256::digest(key.as_bytes()).into()
}

/// The unsigned part of an entry: everything the hash covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub origin: String,
    pub seq: u64,
    pub prev_hash: Hash,
    pub recorded_at_unix_ms: i64,
    pub kind: String,
    /// Canonical JSON (see [`crate::canonical_json`]).
    pub body: Vec<u8>,
}

/// One signature: the signer's key id and the 64-byte Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySignature {
    pub key_id: KeyId,
    pub signature: [u8; 64],
}

/// An entry as stored: content plus signatures sorted by key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub content: Content,
    pub signatures: Vec<EntrySignature>,
}

fn check_text(what: &str, text: &str, max: usize) -> Result<()> {
    if text.is_empty() || text.len() > max {
        return Err(Error::format(format!(
            "{what} must be 1 to {max} bytes, found {}",
            text.len()
        )));
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::format(format!(
            "{what} {text:?} contains whitespace or control characters"
        )));
    }
    Ok(())
}

/// Check that an origin is acceptable: 1..=255 bytes of printable UTF-8, no
/// whitespace and no `+` (the C2SP checkpoint rules for a log origin).
pub fn check_origin(origin: &str) -> Result<()> {
    check_text("origin", origin, ORIGIN_LEN_MAX)?;
    if origin.contains('+') {
        return Err(Error::format(format!("origin {origin:?} contains '+'")));
    }
    Ok(())
}

/// Check a kind: lower-case ASCII letters, digits, `_` and `.`, starting with a letter.
pub fn check_kind(kind: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= KIND_LEN_MAX
        && kind.as_bytes()[0].is_ascii_lowercase()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::format(format!("kind {kind:?} is not a valid kind")))
    }
}

fn put_text(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text);
}

impl Content {
    /// The canonical content bytes (schema/FORMAT.md, "Content").
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with_room(0)
    }

    /// [`Content::encode`] into a vector with room for `extra` more bytes
    /// (a record's signatures, appended without moving the content).
    fn encode_with_room(&self, extra: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            CONTENT_FIXED_BYTES + self.origin.len() + self.kind.len() + self.body.len() + extra,
        );
        out.extend_from_slice(ENTRY_MAGIC);
        out.push(FORMAT_VERSION);
        put_text(&mut out, self.origin.as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev_hash);
        out.extend_from_slice(&self.recorded_at_unix_ms.to_be_bytes());
        put_text(&mut out, self.kind.as_bytes());
        put_text(&mut out, &self.body);
        debug_assert_eq!(
            out.len(),
            CONTENT_FIXED_BYTES + self.origin.len() + self.kind.len() + self.body.len()
        );
        out
    }

    /// The field rules that do not depend on other entries, except the
    /// body's canonical form, which [`crate::event::Body::decode`] checks
    /// (decoding a record always goes on to decode its body, so the JSON is
    /// parsed once).
    pub fn check_header(&self) -> Result<()> {
        check_origin(&self.origin)?;
        check_kind(&self.kind)?;
        if self.recorded_at_unix_ms < 0 {
            return Err(Error::format("recorded_at is before 1970"));
        }
        if self.body.len() > BODY_LEN_MAX {
            return Err(Error::format(format!(
                "body is {} bytes, more than the limit of {BODY_LEN_MAX}",
                self.body.len()
            )));
        }
        Ok(())
    }

    /// SHA-256 of the canonical content bytes.
    pub fn hash(&self) -> Hash {
        Sha256::digest(self.encode()).into()
    }

    /// The encoded content and its hash, the entry hash: a record's bytes
    /// begin with these bytes ([`Record::encode_after_content`]), and the
    /// vector has room for `signatures` signatures after them (copying
    /// every record to grow it cost batch append about 1.4% of its time).
    pub fn encode_and_hash(&self, signatures: usize) -> (Vec<u8>, Hash) {
        let bytes = self.encode_with_room(signatures_bytes(signatures));
        let hash = Sha256::digest(&bytes).into();
        (bytes, hash)
    }
}

/// The exact bytes an Ed25519 signature on an entry covers.
pub fn signed_message(entry_hash: &Hash) -> [u8; 62] {
    let mut msg = [0u8; 62];
    msg[..30].copy_from_slice(SIGNATURE_CONTEXT);
    msg[30..].copy_from_slice(entry_hash);
    msg
}

/// Sign an entry hash.
pub fn sign(key: &SigningKey, entry_hash: &Hash) -> EntrySignature {
    EntrySignature {
        key_id: key_id(&key.verifying_key()),
        signature: key.sign(&signed_message(entry_hash)).to_bytes(),
    }
}

/// Sign many entry hashes with one key: the very signatures [`sign`] makes
/// (Ed25519 is deterministic), made with one field inversion for the whole
/// batch instead of one each (src/batch_sign.rs).
pub fn sign_many(key: &SigningKey, entry_hashes: &[Hash]) -> Vec<EntrySignature> {
    let key_id = key_id(&key.verifying_key());
    let messages: Vec<[u8; 62]> = entry_hashes.iter().map(signed_message).collect();
    crate::batch_sign::sign_batch(key.as_bytes(), &messages)
        .into_iter()
        .map(|signature| EntrySignature { key_id, signature })
        .collect()
}

/// Verify one stored signature by the rules of schema/FORMAT.md section 2
/// (ZIP 215: canonical S, the cofactored equation, R and A any valid point
/// encoding), the rules [`verify_signatures`] applies in batches: the two
/// accept exactly the same signatures.
pub fn verify_signature(key: &VerifyingKey, entry_hash: &Hash, sig: &EntrySignature) -> bool {
    SignatureCheck::new(key, entry_hash, sig).verify()
}

/// Check a signature this process just made, before it is stored (check
/// twice): strict RFC 8032 (`verify_strict`), which accepts a subset of what
/// [`verify_signature`] accepts and is faster for one signature.
pub fn self_check(key: &VerifyingKey, entry_hash: &Hash, sig: &EntrySignature) -> bool {
    key.verify_strict(
        &signed_message(entry_hash),
        &Signature::from_bytes(&sig.signature),
    )
    .is_ok()
}

/// One signature to check: the raw public key, the entry hash it signs and
/// the signature.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    pub public_key: [u8; 32],
    pub entry_hash: Hash,
    pub signature: [u8; 64],
}

impl SignatureCheck {
    pub fn new(key: &VerifyingKey, entry_hash: &Hash, sig: &EntrySignature) -> SignatureCheck {
        SignatureCheck {
            public_key: key.to_bytes(),
            entry_hash: *entry_hash,
            signature: sig.signature,
        }
    }

    fn item(&self) -> ed25519_zebra::batch::Item {
        let key = ed25519_zebra::VerificationKeyBytes::from(self.public_key);
        let signature = ed25519_zebra::Signature::from(self.signature);
        (key, signature, &signed_message(&self.entry_hash)).into()
    }

    /// Verify this one signature (ZIP 215).
    pub fn verify(&self) -> bool {
        self.item().verify_single().is_ok()
    }
}

/// Signatures per batch equation: large enough to amortise the fixed cost
/// and coalesce each key's terms, small enough that a failing batch is
/// cheap to search one by one.
const BATCH_EQUATION_SIZE: usize = 1024;

/// The random coefficients of one batch equation: a ChaCha20 stream seeded
/// from the operating system once per batch. (Drawn from `OsRng` directly,
/// each signature's coefficient cost a `getrandom` system call.)
fn batch_rng() -> rand_chacha::ChaCha20Rng {
    use rand_core::{RngCore, SeedableRng};
    let mut seed = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut seed);
    rand_chacha::ChaCha20Rng::from_seed(seed)
}

/// Check many signatures with batch verification (ZIP 215, random linear
/// combinations; a batch that fails is searched one by one). Returns the
/// index of the first signature that does not verify, or None when all do.
/// Runs on the calling thread.
pub fn verify_signatures(checks: &[SignatureCheck]) -> Option<usize> {
    for (part, batch) in checks.chunks(BATCH_EQUATION_SIZE).enumerate() {
        let mut verifier = ed25519_zebra::batch::Verifier::new();
        for check in batch {
            verifier.queue(check.item());
        }
        // Batch and single verification accept the same signatures, so a
        // failed batch holds one that fails alone (the single check is the
        // definition).
        if verifier.verify(batch_rng()).is_err() {
            if let Some(at) = batch.iter().position(|c| !c.verify()) {
                return Some(part * BATCH_EQUATION_SIZE + at);
            }
        }
    }
    None
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.bytes.len() - self.at < n {
            return Err(Error::format(format!(
                "record ends inside {what} (at byte {})",
                self.at
            )));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    fn text(&mut self, what: &str, max: usize) -> Result<&'a [u8]> {
        let len = u32::from_be_bytes(self.array(what)?) as usize;
        if len > max {
            return Err(Error::format(format!(
                "{what} length {len} exceeds the limit of {max}"
            )));
        }
        self.take(len, what)
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::format(format!("{what} is not UTF-8")))
}

fn read_content(r: &mut Reader<'_>) -> Result<Content> {
    if r.take(16, "magic")? != ENTRY_MAGIC {
        return Err(Error::format("record does not start with the entry magic"));
    }
    let version = r.take(1, "version")?[0];
    if version != FORMAT_VERSION {
        return Err(Error::format(format!(
            "unknown entry format version {version} (this fundledger reads version {FORMAT_VERSION})"
        ))
        .with_hint("upgrade fundledger"));
    }
    let origin = utf8(r.text("origin", ORIGIN_LEN_MAX)?, "origin")?;
    let seq = u64::from_be_bytes(r.array("seq")?);
    let prev_hash = r.array("prev_hash")?;
    let recorded_at_unix_ms = i64::from_be_bytes(r.array("recorded_at")?);
    let kind = utf8(r.text("kind", KIND_LEN_MAX)?, "kind")?;
    let body = r.text("body", BODY_LEN_MAX)?.to_vec();
    let content = Content {
        origin,
        seq,
        prev_hash,
        recorded_at_unix_ms,
        kind,
        body,
    };
    content.check_header()?;
    Ok(content)
}

impl Content {
    /// Decode content bytes strictly (exactly one content, nothing after).
    pub fn decode(bytes: &[u8]) -> Result<Content> {
        let mut r = Reader { bytes, at: 0 };
        let content = read_content(&mut r)?;
        if r.at != bytes.len() {
            return Err(Error::format("unexpected bytes after the entry content"));
        }
        Ok(content)
    }
}

impl Record {
    /// The stored bytes: content, then a one-byte signature count and the
    /// signatures (key id, signature) sorted by key id.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_after_content(self.content.encode())
    }

    /// [`Record::encode`], given the content's bytes (`self.content`
    /// encoded, which the caller made to hash it): the signatures are
    /// appended to them.
    pub fn encode_after_content(&self, content_bytes: Vec<u8>) -> Vec<u8> {
        debug_assert_eq!(content_bytes, self.content.encode());
        let mut out = content_bytes;
        out.reserve(signatures_bytes(self.signatures.len()));
        out.push(self.signatures.len() as u8);
        for sig in &self.signatures {
            out.extend_from_slice(&sig.key_id);
            out.extend_from_slice(&sig.signature);
        }
        out
    }

    /// Decode a stored record strictly: every rule of schema/FORMAT.md
    /// "What a verifier must reject" that needs no other entry is checked.
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        Record::decode_with_content_len(bytes).map(|(record, _)| record)
    }

    /// [`Record::decode`], and the entry hash: SHA-256 of the record's
    /// leading content bytes, which strict decoding guarantees are exactly
    /// the content's encoding (no second encoding needed).
    pub fn decode_hashed(bytes: &[u8]) -> Result<(Record, Hash)> {
        let (record, content_len) = Record::decode_with_content_len(bytes)?;
        Ok((record, Sha256::digest(&bytes[..content_len]).into()))
    }

    fn decode_with_content_len(bytes: &[u8]) -> Result<(Record, usize)> {
        let mut r = Reader { bytes, at: 0 };
        let content = read_content(&mut r)?;
        let content_len = r.at;
        let count = r.take(1, "signature count")?[0] as usize;
        if count == 0 || count > SIGNERS_MAX {
            return Err(Error::format(format!(
                "an entry needs 1 to {SIGNERS_MAX} signatures, found {count}"
            )));
        }
        let mut signatures: Vec<EntrySignature> = Vec::with_capacity(count);
        for _ in 0..count {
            let key_id = r.array("signature key id")?;
            let signature = r.array("signature")?;
            if let Some(last) = signatures.last() {
                if last.key_id == key_id {
                    return Err(Error::format("the same key signed the entry twice"));
                }
                if last.key_id > key_id {
                    return Err(Error::format("signatures are not sorted by key id"));
                }
            }
            signatures.push(EntrySignature { key_id, signature });
        }
        if r.at != bytes.len() {
            return Err(Error::format(format!(
                "{} unexpected bytes after the last signature",
                bytes.len() - r.at
            )));
        }
        Ok((
            Record {
                content,
                signatures,
            },
            content_len,
        ))
    }

    /// Build a record from content and signatures, sorting the signatures
    /// and refusing duplicates.
    pub fn new(content: Content, mut signatures: Vec<EntrySignature>) -> Result<Record> {
        signatures.sort_by_key(|s| s.key_id);
        if signatures.windows(2).any(|w| w[0].key_id == w[1].key_id) {
            return Err(Error::input("the same key cannot sign an entry twice"));
        }
        if signatures.is_empty() || signatures.len() > SIGNERS_MAX {
            return Err(Error::input(format!(
                "an entry needs 1 to {SIGNERS_MAX} signatures"
            )));
        }
        Ok(Record {
            content,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_batch_draws_fresh_coefficients() {
        use rand_core::RngCore;
        // A predictable coefficient would let a forger balance a batch
        // equation: every batch is seeded anew from the OS.
        let (mut a, mut b) = (batch_rng(), batch_rng());
        assert_ne!(a.next_u64(), b.next_u64());
    }

    fn sample() -> Content {
        Content {
            origin: "ledger.example.org/test".into(),
            seq: 1,
            prev_hash: [7u8; 32],
            recorded_at_unix_ms: 1_700_000_000_000,
            kind: "attest".into(),
            body: br#"{"event":{"a":"b"}}"#.to_vec(),
        }
    }

    /// The vector of schema/vectors/signatures.json whose `R` carries a
    /// point of order 8: valid by the cofactored equation, not the strict one.
    fn signature_with_torsion_in_r() -> SignatureCheck {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/vectors/signatures.json"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let case = doc["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "torsion-in-r")
            .unwrap();
        let bytes = |field: &str| hex::decode(case[field].as_str().unwrap()).unwrap();
        SignatureCheck {
            public_key: bytes("public_key_hex").try_into().unwrap(),
            entry_hash: bytes("entry_hash_hex").try_into().unwrap(),
            signature: bytes("signature_hex").try_into().unwrap(),
        }
    }

    #[test]
    fn batch_verification_accepts_exactly_what_single_verification_accepts() {
        let keys: Vec<SigningKey> = (1..=3u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let mut checks: Vec<SignatureCheck> = (0..40u8)
            .map(|i| {
                let key = &keys[usize::from(i) % 3];
                let hash = [i; 32];
                SignatureCheck::new(&key.verifying_key(), &hash, &sign(key, &hash))
            })
            .collect();
        let torsion = signature_with_torsion_in_r();
        let strict = VerifyingKey::from_bytes(&torsion.public_key)
            .unwrap()
            .verify_strict(
                &signed_message(&torsion.entry_hash),
                &Signature::from_bytes(&torsion.signature),
            );
        assert!(strict.is_err(), "the strict rules refuse it");
        checks.push(torsion);
        assert!(checks.iter().all(SignatureCheck::verify));
        assert_eq!(verify_signatures(&checks), None);
        // Every kind of damage fails alone and is found in the batch.
        let damages: [fn(&mut SignatureCheck); 6] = [
            |c| c.signature[3] ^= 1,
            |c| c.signature[40] ^= 1,
            |c| c.signature[63] = 0xff,
            |c| c.entry_hash[0] ^= 1,
            |c| c.public_key = SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes(),
            |c| c.signature[..32].copy_from_slice(&[0xff; 32]),
        ];
        for (n, damage) in damages.iter().enumerate() {
            for at in [0, 17, 40] {
                let mut copy = checks.clone();
                damage(&mut copy[at]);
                assert!(!copy[at].verify(), "damage {n} at {at}");
                assert_eq!(verify_signatures(&copy), Some(at), "damage {n} at {at}");
            }
        }
    }

    #[test]
    fn record_round_trips() {
        let key = SigningKey::from_bytes(&[1u8; 32]);
        let content = sample();
        let sig = sign(&key, &content.hash());
        let record = Record::new(content, vec![sig]).unwrap();
        let bytes = record.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), record);
        let (decoded, hash) = Record::decode_hashed(&bytes).unwrap();
        assert_eq!((decoded, hash), (record.clone(), record.content.hash()));
        assert!(verify_signature(
            &key.verifying_key(),
            &record.content.hash(),
            &record.signatures[0]
        ));
    }

    #[test]
    fn decode_rejects_trailing_bytes_truncation_and_versions() {
        let key = SigningKey::from_bytes(&[1u8; 32]);
        let content = sample();
        let sig = sign(&key, &content.hash());
        let bytes = Record::new(content, vec![sig]).unwrap().encode();
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Record::decode(&longer).is_err());
        for cut in 0..bytes.len() {
            assert!(
                Record::decode(&bytes[..cut]).is_err(),
                "accepted a cut at {cut}"
            );
        }
        let mut v2 = bytes.clone();
        v2[16] = 2;
        assert!(Record::decode(&v2)
            .unwrap_err()
            .message()
            .contains("unknown entry format version"));
    }

    #[test]
    fn decode_rejects_duplicate_and_unsorted_signers() {
        let key = SigningKey::from_bytes(&[1u8; 32]);
        let content = sample();
        let sig = sign(&key, &content.hash());
        let dup = Record {
            content: content.clone(),
            signatures: vec![sig.clone(), sig.clone()],
        };
        assert!(Record::decode(&dup.encode())
            .unwrap_err()
            .message()
            .contains("twice"));
        let other = sign(&SigningKey::from_bytes(&[2u8; 32]), &content.hash());
        let mut sigs = vec![sig, other];
        sigs.sort_by_key(|s| std::cmp::Reverse(s.key_id));
        let unsorted = Record {
            content,
            signatures: sigs,
        };
        assert!(Record::decode(&unsorted.encode()).is_err());
    }

    /// ZIP 215's edge cases: public keys and `R`s of small order, in
    /// canonical and non-canonical encodings (sign bit set on x = 0, y not
    /// reduced modulo p), with S = 0, S = 1 and S >= L. One signature and a
    /// batch of one agree on every case, and exactly the pairs of encodings
    /// that decode are valid with S = 0: 20 encodings decode, so 400 pairs.
    /// (ed25519-consensus, the crate verify used before ed25519-zebra,
    /// gives the same verdict on every case.)
    #[test]
    fn zip215_small_order_and_non_canonical_encodings() {
        let mut encodings = Vec::new();
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let e = point.compress().to_bytes();
            let mut flipped = e;
            flipped[31] ^= 0x80;
            encodings.extend([e, flipped]);
        }
        // y + p for y < 19 (still below 2^255), either sign bit.
        for y in 0u8..19 {
            let mut e = [0xff; 32];
            e[0] = 0xed + y;
            e[31] = 0x7f;
            let mut negative = e;
            negative[31] |= 0x80;
            encodings.extend([e, negative]);
        }
        let hash = [7u8; 32];
        let (mut valid, mut cases) = (0, 0);
        for a in &encodings {
            for r in &encodings {
                for s in [[0u8; 32], [1; 32], [0xff; 32]] {
                    let mut signature = [0u8; 64];
                    signature[..32].copy_from_slice(r);
                    if s[0] == 1 {
                        signature[32] = 1;
                    } else {
                        signature[32..].copy_from_slice(&s);
                    }
                    let check = SignatureCheck {
                        public_key: *a,
                        entry_hash: hash,
                        signature,
                    };
                    let one = check.verify();
                    let batch = verify_signatures(std::slice::from_ref(&check)).is_none();
                    assert_eq!(one, batch, "A {a:02x?} R {r:02x?} S {s:02x?}");
                    valid += usize::from(one);
                    cases += 1;
                }
            }
        }
        assert_eq!((cases, valid), (54 * 54 * 3, 400));
    }

    #[test]
    fn origin_and_kind_rules() {
        assert!(check_origin("ledger.example.org/ae-ai-fund").is_ok());
        assert!(check_origin("has space").is_err());
        assert!(check_origin("a+b").is_err());
        assert!(check_origin("").is_err());
        assert!(check_kind("key.enroll").is_ok());
        assert!(check_kind("Key").is_err());
        assert!(check_kind("1abc").is_err());
    }
}
