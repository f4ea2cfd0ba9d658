//! C2SP signed notes, transparency-log checkpoints and Ed25519 witness
//! cosignatures.
//!
//! This module owns the text formats fundledger publishes its tree heads in:
//!
//! * [c2sp.org/signed-note](https://c2sp.org/signed-note): a UTF-8 text
//!   ending in a newline, one blank line, and signature lines
//!   `— <key name> <base64(4-byte key ID || signature)>` (the dash is
//!   U+2014).  Key IDs, verifier keys (`name+hex(key ID)+base64(type ||
//!   public key)`), Ed25519 signatures (type `0x01`) over the note text.
//! * [c2sp.org/tlog-checkpoint](https://c2sp.org/tlog-checkpoint): the note
//!   text `origin\nsize\nbase64(root)\n[extension lines]`, see [`Checkpoint`].
//! * [c2sp.org/tlog-cosignature](https://c2sp.org/tlog-cosignature): the
//!   Ed25519 `cosignature/v1` witness signature (type `0x04`), which signs
//!   `cosignature/v1\ntime <unix seconds>\n` followed by the checkpoint and
//!   carries the timestamp in its signature blob.
//!
//! Verification follows the spec's rules: signatures whose (key name, key
//! ID) pair matches no configured verifier are ignored; a signature from a
//! known key that does not verify rejects the whole note; a note that no
//! known key verifies is rejected.  Ed25519 signatures are checked with
//! `ed25519_dalek::VerifyingKey::verify_strict` (RFC 8032 with canonical
//! `S`, and no small-order `R` or public key), and verifier keys that are
//! not canonical encodings or have small order are refused when configured.
//! Nothing in this module panics on any input.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;

/// Signature type byte of Ed25519 note signatures (c2sp.org/signed-note,
/// "Signature types").
pub const SIG_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of timestamped Ed25519 witness cosignatures
/// (c2sp.org/tlog-cosignature, `cosignature/v1`).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// The signature line prefix: em dash (U+2014) and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Most signature lines a note may carry.  The signed-note spec requires
/// accepting at least 16; like Go's `golang.org/x/mod/sumdb/note`, more than
/// 100 is treated as malformed.
pub const MAX_SIGNATURES: usize = 100;

/// Header line of the cosignature/v1 signed message.
const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";

/// Largest timestamp a cosignature may carry (tlog-cosignature: it "MUST
/// NOT exceed 2^63 - 1").
const MAX_COSIGNATURE_TIMESTAMP: u64 = i64::MAX as u64;

/// What is wrong with a note, checkpoint, key or signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    /// The text holds an ASCII control character other than newline.
    ControlCharacter { offset: usize },
    /// The text (note body or whole note) does not end in a newline.
    MissingFinalNewline,
    /// No blank line separates the text from signature lines.
    MissingSignatures,
    /// A signature line is not `— <name> <base64>` with a valid name and at
    /// least 5 decoded bytes.
    MalformedSignatureLine { line: usize, reason: &'static str },
    /// More signature lines than [`MAX_SIGNATURES`].
    TooManySignatures { max: usize },
    /// A key name is empty or contains a Unicode space or `+`.
    InvalidKeyName { name: String },
    /// A checkpoint body violates c2sp.org/tlog-checkpoint.
    InvalidCheckpoint { reason: &'static str },
    /// A verifier key string is not `name+hex8+base64(type || key)`.
    InvalidVerifierKey { reason: &'static str },
    /// A verifier key's declared key ID is not the one its name and key give.
    KeyIdMismatch {
        declared: [u8; 4],
        computed: [u8; 4],
    },
    /// A signature type this module does not implement.
    UnsupportedSignatureType { sig_type: u8 },
    /// An Ed25519 public key that is not a canonical point encoding or has
    /// small order.
    InvalidPublicKey { reason: &'static str },
    /// Two configured verifiers share a key name and key ID.
    AmbiguousVerifier { name: String, key_id: [u8; 4] },
    /// A signature from a known key did not verify.
    InvalidSignature { name: String, key_id: [u8; 4] },
    /// No signature from a known key is present.
    NoVerifiedSignature { unknown: usize },
    /// A cosignature timestamp above 2^63 - 1.
    TimestampOutOfRange { timestamp: u64 },
    /// The verifier handed to a function is of the wrong signature type or
    /// does not match the signature's name and key ID.
    WrongVerifier { reason: &'static str },
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteError::ControlCharacter { offset } => {
                write!(f, "control character at byte {offset}")
            }
            NoteError::MissingFinalNewline => write!(f, "text does not end with a newline"),
            NoteError::MissingSignatures => {
                write!(f, "no blank line followed by signature lines")
            }
            NoteError::MalformedSignatureLine { line, reason } => {
                write!(f, "malformed signature line {line}: {reason}")
            }
            NoteError::TooManySignatures { max } => {
                write!(f, "note has more than {max} signatures")
            }
            NoteError::InvalidKeyName { name } => write!(
                f,
                "invalid key name {name:?}: must be non-empty, without spaces or '+'"
            ),
            NoteError::InvalidCheckpoint { reason } => write!(f, "invalid checkpoint: {reason}"),
            NoteError::InvalidVerifierKey { reason } => {
                write!(f, "invalid verifier key: {reason}")
            }
            NoteError::KeyIdMismatch { declared, computed } => write!(
                f,
                "verifier key declares key ID {} but its name and key give {}",
                hex::encode(declared),
                hex::encode(computed)
            ),
            NoteError::UnsupportedSignatureType { sig_type } => {
                write!(f, "unsupported signature type 0x{sig_type:02x}")
            }
            NoteError::InvalidPublicKey { reason } => {
                write!(f, "invalid Ed25519 public key: {reason}")
            }
            NoteError::AmbiguousVerifier { name, key_id } => write!(
                f,
                "ambiguous verifier: several keys named {name:?} with key ID {}",
                hex::encode(key_id)
            ),
            NoteError::InvalidSignature { name, key_id } => write!(
                f,
                "invalid signature from known key {name:?} ({})",
                hex::encode(key_id)
            ),
            NoteError::NoVerifiedSignature { unknown } => write!(
                f,
                "no signature from a known key ({unknown} signatures from unknown keys ignored)"
            ),
            NoteError::TimestampOutOfRange { timestamp } => {
                write!(f, "cosignature timestamp {timestamp} exceeds 2^63-1")
            }
            NoteError::WrongVerifier { reason } => write!(f, "wrong verifier: {reason}"),
        }
    }
}

impl std::error::Error for NoteError {}

// ---------------------------------------------------------------------------
// Checkpoints (c2sp.org/tlog-checkpoint).
// ---------------------------------------------------------------------------

/// A transparency-log checkpoint body (c2sp.org/tlog-checkpoint, "Note
/// text"): origin, tree size, root hash and optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique identifier of the log (non-empty; recommended form
    /// `example.org/path`, but the spec forbids relying on it).
    pub origin: String,
    /// Number of leaves in the tree.
    pub tree_size: u64,
    /// RFC 6962 / RFC 9162 Merkle Tree Hash of the tree at `tree_size`.
    pub root_hash: [u8; 32],
    /// Opaque, non-empty extension lines (without their newlines).  The spec
    /// advises against using them.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n` followed by each
    /// extension line and a newline.  For a checkpoint that passes
    /// [`Checkpoint::validate`], [`Checkpoint::parse_body`] returns it back.
    pub fn to_body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.tree_size,
            BASE64.encode(self.root_hash)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Checks that [`Checkpoint::to_body`] yields a well-formed body: a
    /// non-empty origin, non-empty extension lines, and no newline or other
    /// control character in any of them.
    pub fn validate(&self) -> Result<(), NoteError> {
        check_line(
            &self.origin,
            "origin line is empty or holds a control character",
        )?;
        for e in &self.extensions {
            check_line(e, "extension line is empty or holds a control character")?;
        }
        Ok(())
    }

    /// Parses a checkpoint body strictly (c2sp.org/tlog-checkpoint, "Note
    /// text"): at least three non-empty lines, each ending in a newline; no
    /// control characters; a non-empty origin; a decimal tree size without
    /// sign or leading zeros that fits a `u64`; a canonical standard-base64
    /// root of exactly 32 bytes; non-empty extension lines.
    pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        check_text(body)?;
        let inner = body
            .strip_suffix('\n')
            .ok_or(NoteError::MissingFinalNewline)?;
        let mut lines = inner.split('\n');
        let bad = |reason| NoteError::InvalidCheckpoint { reason };
        let origin = lines.next().unwrap_or("");
        if origin.is_empty() {
            return Err(bad("origin line is empty"));
        }
        let size = lines.next().ok_or(bad("missing tree size line"))?;
        let tree_size = parse_decimal(size).ok_or(bad(
            "tree size is not a decimal number without leading zeros that fits 64 bits",
        ))?;
        let root = lines.next().ok_or(bad("missing root hash line"))?;
        let root_hash = decode_base64(root)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or(bad("root hash is not canonical base64 of 32 bytes"))?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(bad("empty line"));
            }
            extensions.push(line.to_string());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            tree_size,
            root_hash,
            extensions,
        })
    }
}

/// A single line of text: non-empty, no control characters (hence no
/// newline).
fn check_line(line: &str, reason: &'static str) -> Result<(), NoteError> {
    if line.is_empty() || line.bytes().any(|b| b < 0x20) {
        return Err(NoteError::InvalidCheckpoint { reason });
    }
    Ok(())
}

/// ASCII decimal, no sign, no leading zeros (except "0" itself), fits u64.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Standard base64 (RFC 4648 section 4) with canonical padding and no
/// non-zero trailing bits.
fn decode_base64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    BASE64.decode(s)
}

/// Signed-note text rules: no ASCII control character other than newline.
/// (Valid UTF-8 is guaranteed by `&str`.)
fn check_text(text: &str) -> Result<(), NoteError> {
    match text.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter { offset }),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Key names, key IDs and verifier keys (c2sp.org/signed-note).
// ---------------------------------------------------------------------------

/// Whether `name` is a valid key name: non-empty, no Unicode white space, no
/// `+` (c2sp.org/signed-note, "Format"), and no ASCII control character
/// (which a note may not contain anywhere).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || u32::from(c) < 0x20)
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName {
            name: name.to_string(),
        })
    }
}

/// Key ID as recommended by c2sp.org/signed-note ("Signatures"): the first
/// four bytes of `SHA-256(key name || 0x0A || signature type || public key)`.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, sig_type]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The verifier key string of an Ed25519 note key (type `0x01`):
/// `name+hex(key ID)+base64(0x01 || public key)`, hex in lower case, as
/// written by Go's `golang.org/x/mod/sumdb/note`.
pub fn verifier_key_string(name: &str, public_key: &[u8; 32]) -> String {
    vkey_string(name, SIG_TYPE_ED25519, public_key)
}

fn vkey_string(name: &str, sig_type: u8, public_key: &[u8; 32]) -> String {
    let mut typed = Vec::with_capacity(33);
    typed.push(sig_type);
    typed.extend_from_slice(public_key);
    format!(
        "{}+{}+{}",
        name,
        hex::encode(key_id(name, sig_type, public_key)),
        BASE64.encode(typed)
    )
}

/// Parses a verifier key string; see [`Verifier::parse`].
pub fn parse_verifier_key(vkey: &str) -> Result<Verifier, NoteError> {
    Verifier::parse(vkey)
}

/// Decodes an Ed25519 public key, refusing non-canonical encodings and keys
/// of small order (which `verify_strict` would never accept anyway).
fn decode_public_key(bytes: &[u8; 32]) -> Result<VerifyingKey, NoteError> {
    let vk = VerifyingKey::from_bytes(bytes).map_err(|_| NoteError::InvalidPublicKey {
        reason: "not the encoding of a curve point",
    })?;
    if vk.to_edwards().compress().to_bytes() != *bytes {
        return Err(NoteError::InvalidPublicKey {
            reason: "non-canonical point encoding",
        });
    }
    if vk.is_weak() {
        return Err(NoteError::InvalidPublicKey {
            reason: "point of small order",
        });
    }
    Ok(vk)
}

/// A trusted public key: the key name, signature type (`0x01` note
/// signatures or `0x04` cosignature/v1) and Ed25519 public key, with the key
/// ID they determine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    sig_type: u8,
    key: VerifyingKey,
    key_id: [u8; 4],
}

impl Verifier {
    fn new(name: &str, sig_type: u8, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        if sig_type != SIG_TYPE_ED25519 && sig_type != SIG_TYPE_COSIGNATURE_V1 {
            return Err(NoteError::UnsupportedSignatureType { sig_type });
        }
        let key = decode_public_key(public_key)?;
        Ok(Verifier {
            name: name.to_string(),
            sig_type,
            key,
            key_id: key_id(name, sig_type, public_key),
        })
    }

    /// A verifier of Ed25519 note signatures (type `0x01`), e.g. a log key.
    pub fn ed25519(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, SIG_TYPE_ED25519, public_key)
    }

    /// A verifier of Ed25519 `cosignature/v1` witness signatures (type
    /// `0x04`, c2sp.org/tlog-cosignature).
    pub fn cosignature_v1(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, SIG_TYPE_COSIGNATURE_V1, public_key)
    }

    /// Parses `name+hex8+base64(type || 32-byte key)` (c2sp.org/signed-note
    /// verifier keys; tlog-cosignature allows type `0x04` in the same form).
    /// The key ID may be written in either case but must equal the one
    /// computed from the name, type and key.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = |reason| NoteError::InvalidVerifierKey { reason };
        let (name, rest) = vkey.split_once('+').ok_or(bad("missing '+' separators"))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(bad("missing '+' separators"))?;
        check_key_name(name)?;
        if id_hex.len() != 8 {
            return Err(bad("key ID is not 8 hexadecimal digits"));
        }
        let declared: [u8; 4] = hex::decode(id_hex)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(bad("key ID is not 8 hexadecimal digits"))?;
        let typed = decode_base64(key_b64).map_err(|_| bad("key is not canonical base64"))?;
        let (&sig_type, key) = typed.split_first().ok_or(bad("key is empty"))?;
        if sig_type != SIG_TYPE_ED25519 && sig_type != SIG_TYPE_COSIGNATURE_V1 {
            return Err(NoteError::UnsupportedSignatureType { sig_type });
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
        let v = Self::new(name, sig_type, &key)?;
        if v.key_id != declared {
            return Err(NoteError::KeyIdMismatch {
                declared,
                computed: v.key_id,
            });
        }
        Ok(v)
    }

    /// The verifier key string `name+hex8+base64(type || key)`.
    pub fn to_vkey_string(&self) -> String {
        vkey_string(&self.name, self.sig_type, self.key.as_bytes())
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signature type byte (`0x01` or `0x04`).
    pub fn sig_type(&self) -> u8 {
        self.sig_type
    }

    /// The key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    fn matches(&self, sig: &NoteSignature) -> bool {
        self.name == sig.name && self.key_id == sig.key_id
    }

    /// Checks `sig` over `body` with this key; returns the cosignature
    /// timestamp for type `0x04`.
    fn check(&self, body: &str, sig: &NoteSignature) -> Result<Option<u64>, NoteError> {
        let invalid = || NoteError::InvalidSignature {
            name: sig.name.clone(),
            key_id: sig.key_id,
        };
        match self.sig_type {
            SIG_TYPE_ED25519 => {
                let s = Signature::from_slice(&sig.blob).map_err(|_| invalid())?;
                self.key
                    .verify_strict(body.as_bytes(), &s)
                    .map_err(|_| invalid())?;
                Ok(None)
            }
            SIG_TYPE_COSIGNATURE_V1 => {
                if sig.blob.len() != 8 + 64 {
                    return Err(invalid());
                }
                let (ts, s) = sig.blob.split_at(8);
                let ts_bytes: [u8; 8] = ts.try_into().map_err(|_| invalid())?;
                let timestamp = u64::from_be_bytes(ts_bytes);
                if timestamp > MAX_COSIGNATURE_TIMESTAMP {
                    return Err(invalid());
                }
                let s = Signature::from_slice(s).map_err(|_| invalid())?;
                let msg = cosignature_message(body, timestamp);
                self.key
                    .verify_strict(msg.as_bytes(), &s)
                    .map_err(|_| invalid())?;
                Ok(Some(timestamp))
            }
            other => Err(NoteError::UnsupportedSignatureType { sig_type: other }),
        }
    }
}

// ---------------------------------------------------------------------------
// Signed notes (c2sp.org/signed-note).
// ---------------------------------------------------------------------------

/// One signature line of a note, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key ID (big-endian uint32 in the spec).
    pub key_id: [u8; 4],
    /// The bytes after the key ID: the Ed25519 signature for type `0x01`,
    /// `timestamp || signature` for cosignature/v1.
    pub blob: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, `— name base64(key ID || blob)\n`.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.blob.len());
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.blob);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, BASE64.encode(raw))
    }
}

/// A signature that [`verify_note`] checked against a configured key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub key_id: [u8; 4],
    /// The signature type of the key that verified it.
    pub sig_type: u8,
    /// The cosignature/v1 timestamp (Unix seconds), for type `0x04`.
    pub timestamp: Option<u64>,
}

/// A note whose text at least one configured key has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The note text, including its final newline.
    pub body: String,
    /// The verified signatures, one per key, in note order.
    pub verified: Vec<VerifiedSignature>,
    /// Signatures from keys not configured, which were ignored.
    pub unknown: Vec<NoteSignature>,
}

/// Splits a signed note into its text and signature lines
/// (c2sp.org/signed-note, "Format"), without verifying anything.
///
/// The note must contain no control character other than newline; the text
/// is everything up to and including the newline before the *last* blank
/// line; what follows must be 1 to [`MAX_SIGNATURES`] lines
/// `— <name> <base64>\n` with a valid key name and a canonical standard
/// base64 of at least 5 bytes (key ID and signature).
pub fn parse_note(text: &str) -> Result<(String, Vec<NoteSignature>), NoteError> {
    check_text(text)?;
    let split = text.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
    let body = &text[..split + 1];
    let sig_block = &text[split + 2..];
    if sig_block.is_empty() {
        return Err(NoteError::MissingSignatures);
    }
    let sig_block = sig_block
        .strip_suffix('\n')
        .ok_or(NoteError::MissingFinalNewline)?;
    let mut sigs = Vec::new();
    for (i, line) in sig_block.split('\n').enumerate() {
        if sigs.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let malformed = |reason| NoteError::MalformedSignatureLine {
            line: i + 1,
            reason,
        };
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or(malformed("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(malformed("no space between key name and signature"))?;
        if !is_valid_key_name(name) {
            return Err(malformed("invalid key name"));
        }
        let raw = decode_base64(b64).map_err(|_| malformed("signature is not canonical base64"))?;
        if raw.len() < 5 {
            return Err(malformed("signature shorter than 5 bytes"));
        }
        let (id, blob) = raw.split_at(4);
        sigs.push(NoteSignature {
            name: name.to_string(),
            key_id: [id[0], id[1], id[2], id[3]],
            blob: blob.to_vec(),
        });
    }
    Ok((body.to_string(), sigs))
}

/// Opens a signed note (c2sp.org/signed-note, "Signatures"): every signature
/// whose key name and key ID match a configured verifier must verify (else
/// [`NoteError::InvalidSignature`] rejects the note); signatures from other
/// keys, including keys sharing only the name or only the ID, are ignored;
/// at least one known key must have signed (else
/// [`NoteError::NoVerifiedSignature`]).  Repeated lines from one key are all
/// verified and reported once.  Two configured verifiers with the same name
/// and key ID make a matching note fail with
/// [`NoteError::AmbiguousVerifier`].
pub fn verify_note(text: &str, verifiers: &[Verifier]) -> Result<VerifiedNote, NoteError> {
    let (body, sigs) = parse_note(text)?;
    let mut verified: Vec<VerifiedSignature> = Vec::new();
    let mut unknown = Vec::new();
    for sig in sigs {
        let mut candidates = verifiers.iter().filter(|v| v.matches(&sig));
        let Some(v) = candidates.next() else {
            unknown.push(sig);
            continue;
        };
        if candidates.next().is_some() {
            return Err(NoteError::AmbiguousVerifier {
                name: sig.name,
                key_id: sig.key_id,
            });
        }
        let timestamp = v.check(&body, &sig)?;
        if !verified
            .iter()
            .any(|s| s.name == sig.name && s.key_id == sig.key_id)
        {
            verified.push(VerifiedSignature {
                name: sig.name,
                key_id: sig.key_id,
                sig_type: v.sig_type,
                timestamp,
            });
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoVerifiedSignature {
            unknown: unknown.len(),
        });
    }
    Ok(VerifiedNote {
        body,
        verified,
        unknown,
    })
}

/// Checks a note text before signing: ends in a newline, no control
/// characters other than newline.
fn check_body(body: &str) -> Result<(), NoteError> {
    check_text(body)?;
    if !body.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    Ok(())
}

fn ed25519_signature_line(body: &str, name: &str, key: &SigningKey) -> NoteSignature {
    let public = key.verifying_key().to_bytes();
    NoteSignature {
        name: name.to_string(),
        key_id: key_id(name, SIG_TYPE_ED25519, &public),
        blob: key.sign(body.as_bytes()).to_bytes().to_vec(),
    }
}

/// Signs `body` with an Ed25519 note key (type `0x01`) and returns the signed
/// note `body + "\n" + "— name base64(key ID || signature)\n"`
/// (c2sp.org/signed-note, "Ed25519 signatures").
///
/// Fails if `body` does not end in a newline or holds a control character,
/// or if `name` is not a valid key name.
pub fn sign_note(body: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    check_body(body)?;
    check_key_name(name)?;
    let line = ed25519_signature_line(body, name, key).to_line();
    Ok(format!("{body}\n{line}"))
}

/// Adds a signature line to an existing signed note, replacing any earlier
/// signature with the same key name and key ID (as Go's `note.Sign` does).
fn add_signature_line(note: &str, sig: NoteSignature) -> Result<String, NoteError> {
    let (body, sigs) = parse_note(note)?;
    let kept: Vec<NoteSignature> = sigs
        .into_iter()
        .filter(|s| !(s.name == sig.name && s.key_id == sig.key_id))
        .collect();
    if kept.len() + 1 > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            max: MAX_SIGNATURES,
        });
    }
    let mut out = body;
    out.push('\n');
    for s in &kept {
        out.push_str(&s.to_line());
    }
    out.push_str(&sig.to_line());
    Ok(out)
}

/// Adds an Ed25519 note signature (type `0x01`) by `name` to a signed note,
/// replacing an earlier signature by the same key.  The note is parsed (not
/// verified) first.
pub fn add_signature(note: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    check_key_name(name)?;
    let (body, _) = parse_note(note)?;
    add_signature_line(note, ed25519_signature_line(&body, name, key))
}

// ---------------------------------------------------------------------------
// Cosignatures (c2sp.org/tlog-cosignature, Ed25519 cosignature/v1).
// ---------------------------------------------------------------------------

/// The message a cosignature/v1 signs (c2sp.org/tlog-cosignature, "Ed25519
/// signed message"): `cosignature/v1\ntime <timestamp>\n` followed by the
/// whole checkpoint body, extension lines included.
pub fn cosignature_message(checkpoint_body: &str, timestamp_unix_s: u64) -> String {
    format!("{COSIGNATURE_V1_HEADER}\ntime {timestamp_unix_s}\n{checkpoint_body}")
}

fn cosignature(
    checkpoint_body: &str,
    witness_name: &str,
    key: &SigningKey,
    timestamp_unix_s: u64,
) -> Result<NoteSignature, NoteError> {
    check_key_name(witness_name)?;
    Checkpoint::parse_body(checkpoint_body)?;
    if timestamp_unix_s > MAX_COSIGNATURE_TIMESTAMP {
        return Err(NoteError::TimestampOutOfRange {
            timestamp: timestamp_unix_s,
        });
    }
    let public = key.verifying_key().to_bytes();
    let msg = cosignature_message(checkpoint_body, timestamp_unix_s);
    let mut blob = Vec::with_capacity(8 + 64);
    blob.extend_from_slice(&timestamp_unix_s.to_be_bytes());
    blob.extend_from_slice(&key.sign(msg.as_bytes()).to_bytes());
    Ok(NoteSignature {
        name: witness_name.to_string(),
        key_id: key_id(witness_name, SIG_TYPE_COSIGNATURE_V1, &public),
        blob,
    })
}

/// A witness cosignature/v1 over a checkpoint body, as the signature line
/// `— <witness name> base64(key ID || 8-byte big-endian timestamp ||
/// Ed25519 signature)\n`, the key ID using type `0x04`
/// (c2sp.org/tlog-cosignature, "Format").
///
/// Fails if the body is not a valid checkpoint, the name is not a valid key
/// name, or the timestamp exceeds 2^63 - 1.
pub fn cosign(
    checkpoint_body: &str,
    witness_name: &str,
    key: &SigningKey,
    timestamp_unix_s: u64,
) -> Result<String, NoteError> {
    Ok(cosignature(checkpoint_body, witness_name, key, timestamp_unix_s)?.to_line())
}

/// Adds a witness cosignature to a signed checkpoint note, replacing an
/// earlier cosignature by the same witness key.
pub fn add_cosignature(
    note: &str,
    witness_name: &str,
    key: &SigningKey,
    timestamp_unix_s: u64,
) -> Result<String, NoteError> {
    let (body, _) = parse_note(note)?;
    add_signature_line(
        note,
        cosignature(&body, witness_name, key, timestamp_unix_s)?,
    )
}

/// The timestamp a cosignature/v1 signature carries, read without verifying
/// it: the blob must be exactly 8 + 64 bytes and the timestamp at most
/// 2^63 - 1.
pub fn cosignature_timestamp(sig: &NoteSignature) -> Result<u64, NoteError> {
    let malformed = NoteError::WrongVerifier {
        reason: "signature is not a 72-byte cosignature/v1 blob",
    };
    if sig.blob.len() != 8 + 64 {
        return Err(malformed);
    }
    let ts: [u8; 8] = sig.blob[..8].try_into().map_err(|_| malformed)?;
    let timestamp = u64::from_be_bytes(ts);
    if timestamp > MAX_COSIGNATURE_TIMESTAMP {
        return Err(NoteError::TimestampOutOfRange { timestamp });
    }
    Ok(timestamp)
}

/// Verifies one cosignature/v1 signature line over a checkpoint body with a
/// witness verifier of type `0x04` whose name and key ID match the
/// signature, and returns the cosignature's timestamp (Unix seconds).
pub fn verify_cosignature(
    checkpoint_body: &str,
    sig: &NoteSignature,
    verifier: &Verifier,
) -> Result<u64, NoteError> {
    if verifier.sig_type != SIG_TYPE_COSIGNATURE_V1 {
        return Err(NoteError::WrongVerifier {
            reason: "not a cosignature/v1 (type 0x04) key",
        });
    }
    if !verifier.matches(sig) {
        return Err(NoteError::WrongVerifier {
            reason: "key name or key ID does not match the signature",
        });
    }
    verifier
        .check(checkpoint_body, sig)?
        .ok_or(NoteError::WrongVerifier {
            reason: "not a cosignature/v1 (type 0x04) key",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::slice::from_ref;

    // -----------------------------------------------------------------
    // Published vectors.
    // -----------------------------------------------------------------

    /// c2sp.org/signed-note, section "Example" (C2SP/C2SP signed-note.md at
    /// commit d4c16da5e7687a016619074e78dad84b2c7238cc).
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    /// golang.org/x/mod/sumdb/note, note_test.go (TestSign, TestOpen).
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    /// c2sp.org/tlog-checkpoint example body.
    const SPEC_CHECKPOINT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    /// transparency-dev/formats note/note_cosigv1_test.go
    /// (TestCosignatureTimestamp): a cosignature/v1 blob and its timestamp,
    /// and a type-0x01 signature that is not a cosignature.
    const FORMATS_COSIG_B64: &str = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";
    const FORMATS_NOT_COSIG_B64: &str =
        "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=";

    fn peter_signing_key() -> SigningKey {
        // PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed); the base64 holds '+'.
        let b64 = PETER_SKEY.splitn(5, '+').nth(4).unwrap();
        let raw = BASE64.decode(b64).unwrap();
        assert_eq!(raw[0], SIG_TYPE_ED25519);
        SigningKey::from_bytes(&raw[1..].try_into().unwrap())
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn log_verifier(name: &str, k: &SigningKey) -> Verifier {
        Verifier::ed25519(name, &k.verifying_key().to_bytes()).unwrap()
    }

    fn witness_verifier(name: &str, k: &SigningKey) -> Verifier {
        Verifier::cosignature_v1(name, &k.verifying_key().to_bytes()).unwrap()
    }

    fn sample_checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "fund.example/ledger".into(),
            tree_size: 42,
            root_hash: [7u8; 32],
            extensions: vec![],
        }
    }

    #[test]
    fn spec_example_note_verifies() {
        let v = Verifier::parse(SPEC_VKEY).unwrap();
        assert_eq!(v.key_id(), [0x53, 0x0d, 0x90, 0x3a]);
        assert_eq!(v.name(), "example.com/foo");
        assert_eq!(v.to_vkey_string(), SPEC_VKEY);
        assert_eq!(
            verifier_key_string("example.com/foo", &v.public_key()),
            SPEC_VKEY
        );
        let n = verify_note(SPEC_NOTE, from_ref(&v)).unwrap();
        assert_eq!(n.body, "This is an example message.\n");
        assert_eq!(n.verified.len(), 1);
        assert_eq!(n.verified[0].timestamp, None);
        let tampered = SPEC_NOTE.replace("example message", "example massage");
        assert_eq!(
            verify_note(&tampered, &[v]),
            Err(NoteError::InvalidSignature {
                name: "example.com/foo".into(),
                key_id: [0x53, 0x0d, 0x90, 0x3a]
            })
        );
    }

    #[test]
    fn go_sumdb_note_vectors() {
        let k = peter_signing_key();
        let peter = Verifier::parse(PETER_VKEY).unwrap();
        let enoch = Verifier::parse(ENOCH_VKEY).unwrap();
        assert_eq!(peter.public_key(), k.verifying_key().to_bytes());
        assert_eq!(
            verifier_key_string("PeterNeumann", &peter.public_key()),
            PETER_VKEY
        );
        assert_eq!(enoch.to_vkey_string(), ENOCH_VKEY);

        // Ed25519 is deterministic: signing reproduces the published note.
        let signed = sign_note(GO_TEXT, "PeterNeumann", &k).unwrap();
        assert_eq!(signed, format!("{GO_TEXT}\n{PETER_SIG}"));

        // One known key, one unknown (ignored).
        let both = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let n = verify_note(&both, from_ref(&peter)).unwrap();
        assert_eq!(n.body, GO_TEXT);
        assert_eq!(n.verified.len(), 1);
        assert_eq!(n.verified[0].name, "PeterNeumann");
        assert_eq!(n.unknown.len(), 1);
        assert_eq!(n.unknown[0].name, "EnochRoot");
        assert_eq!(n.unknown[0].key_id, [0xaf, 0x0c, 0xfe, 0x78]);

        // Both known.
        let n = verify_note(&both, &[peter.clone(), enoch.clone()]).unwrap();
        assert_eq!(n.verified.len(), 2);
        assert!(n.unknown.is_empty());

        // None known.
        assert_eq!(
            verify_note(&both, &[]),
            Err(NoteError::NoVerifiedSignature { unknown: 2 })
        );

        // Duplicate verifiers for a signing key are ambiguous.
        assert!(matches!(
            verify_note(
                &format!("{GO_TEXT}\n{ENOCH_SIG}"),
                &[enoch.clone(), peter.clone(), enoch.clone()]
            ),
            Err(NoteError::AmbiguousVerifier { .. })
        ));
        // ... but unused duplicates are harmless.
        verify_note(
            &format!("{GO_TEXT}\n{PETER_SIG}"),
            &[enoch.clone(), peter.clone(), enoch],
        )
        .unwrap();

        // Repeated signature lines from one key are reported once.
        let twice = format!("{GO_TEXT}\n{PETER_SIG}{PETER_SIG}");
        assert_eq!(
            verify_note(&twice, from_ref(&peter))
                .unwrap()
                .verified
                .len(),
            1
        );

        // Corrupted signature from a known key rejects the note.
        let bad = format!("{GO_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert!(matches!(
            verify_note(&bad, from_ref(&peter)),
            Err(NoteError::InvalidSignature { .. })
        ));

        // Too many signatures.
        let many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
        assert_eq!(
            verify_note(&many, from_ref(&peter)),
            Err(NoteError::TooManySignatures { max: 100 })
        );
        let max = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(100));
        verify_note(&max, from_ref(&peter)).unwrap();

        // Malformed messages from Go's TestOpen.
        let sig_no_nl = &PETER_SIG[..PETER_SIG.len() - 1];
        for msg in [
            GO_TEXT.to_string(),
            format!("{GO_TEXT}\n"),
            format!("{GO_TEXT}\n{sig_no_nl}"),
            format!("\x01{GO_TEXT}\n{PETER_SIG}"),
            format!("{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
        ] {
            assert!(parse_note(&msg).is_err(), "{msg:?}");
            assert!(verify_note(&msg, from_ref(&peter)).is_err(), "{msg:?}");
        }
    }

    #[test]
    fn go_verifier_key_manglings_are_refused() {
        Verifier::parse(PETER_VKEY).unwrap();
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i == 0 && j == b.len() {
                    continue;
                }
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(Verifier::parse(&s).is_err(), "{s:?}");
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            let s = String::from_utf8_lossy(&m);
            assert!(Verifier::parse(&s).is_err(), "{s:?}");
        }
        // Wrong key length and unknown algorithm, each with a matching key ID.
        assert!(Verifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err());
        assert!(Verifier::parse(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )
        .is_err());
        // Upper-case key ID is accepted (as Go does); the string we write is lower case.
        let upper = PETER_VKEY.replace("c74f20a3", "C74F20A3");
        assert_eq!(
            Verifier::parse(&upper).unwrap().to_vkey_string(),
            PETER_VKEY
        );
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            Verifier::ed25519("k", &identity),
            Err(NoteError::InvalidPublicKey { .. })
        ));
        // A non-canonical encoding of the identity: y = p + 1.
        let mut noncanonical = [0xffu8; 32];
        noncanonical[0] = 0xee;
        noncanonical[31] = 0x7f;
        assert!(matches!(
            Verifier::ed25519("k", &noncanonical),
            Err(NoteError::InvalidPublicKey { .. })
        ));
        let vkey = vkey_string("k", SIG_TYPE_ED25519, &identity);
        assert!(matches!(
            Verifier::parse(&vkey),
            Err(NoteError::InvalidPublicKey { .. })
        ));
    }

    #[test]
    fn key_id_is_sha256_prefix() {
        let pk = key(1).verifying_key().to_bytes();
        let mut pre = b"fund.example/log\n".to_vec();
        pre.push(0x01);
        pre.extend_from_slice(&pk);
        let d = Sha256::digest(&pre);
        assert_eq!(key_id("fund.example/log", SIG_TYPE_ED25519, &pk), d[..4]);
        assert_ne!(
            key_id("w", SIG_TYPE_ED25519, &pk),
            key_id("w", SIG_TYPE_COSIGNATURE_V1, &pk)
        );
    }

    #[test]
    fn checkpoint_round_trip_and_spec_example() {
        let c = Checkpoint::parse_body(SPEC_CHECKPOINT).unwrap();
        assert_eq!(c.origin, "example.com/behind-the-sofa");
        assert_eq!(c.tree_size, 20852163);
        assert!(c.extensions.is_empty());
        assert_eq!(c.to_body(), SPEC_CHECKPOINT);

        let mut c = sample_checkpoint();
        c.validate().unwrap();
        assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap(), c);
        c.extensions = vec!["ext one".into(), "— two".into()];
        c.tree_size = u64::MAX;
        c.validate().unwrap();
        assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap(), c);
        c.tree_size = 0;
        assert!(c.to_body().contains("\n0\n"));
        assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap(), c);

        c.extensions = vec!["".into()];
        assert!(c.validate().is_err());
        c.extensions = vec!["a\nb".into()];
        assert!(c.validate().is_err());
        c.extensions = vec![];
        c.origin = String::new();
        assert!(c.validate().is_err());
    }

    #[test]
    fn checkpoint_parse_is_strict() {
        let root = BASE64.encode([0u8; 32]);
        let bad = [
            format!("o\n07\n{root}\n"),                        // leading zero
            format!("o\n00\n{root}\n"),                        // leading zero
            format!("o\n+7\n{root}\n"),                        // sign
            format!("o\n-7\n{root}\n"),                        // sign
            format!("o\n 7\n{root}\n"),                        // space
            format!("o\n7 \n{root}\n"),                        // space
            format!("o\n18446744073709551616\n{root}\n"),      // 2^64
            format!("o\n\n{root}\n"),                          // empty size
            format!("o\nseven\n{root}\n"),                     // not a number
            format!("\n7\n{root}\n"),                          // empty origin
            format!("o\n7\n{root}"),                           // no final newline
            format!("o\n7\n{root}\n\n"),                       // empty extension
            format!("o\n7\n{root}\n\next\n"),                  // empty line
            format!("o\r\n7\n{root}\n"),                       // control character
            format!("o\t\n7\n{root}\n"),                       // control character
            "o\n7\n".to_string(),                              // too few lines
            "o\n7\nAAAA\n".to_string(),                        // root too short
            format!("o\n7\n{}\n", BASE64.encode([0u8; 33])),   // root too long
            format!("o\n7\n{}\n", root.trim_end_matches('=')), // missing padding
            "o\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n".to_string(), // trailing bits
            format!("o\n7\n{}\n", root.replace('A', "-")),     // URL alphabet
            String::new(),
            "\n".to_string(),
        ];
        for body in bad {
            assert!(Checkpoint::parse_body(&body).is_err(), "{body:?}");
        }
        Checkpoint::parse_body(&format!("o\n0\n{root}\n")).unwrap();
        Checkpoint::parse_body(&format!("o\n7\n{root}\next\n")).unwrap();
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let log = key(1);
        let body = sample_checkpoint().to_body();
        let note = sign_note(&body, "fund.example/ledger", &log).unwrap();
        assert!(note.starts_with(&body));
        assert!(note.contains("\n\n\u{2014} fund.example/ledger "));
        let (b, sigs) = parse_note(&note).unwrap();
        assert_eq!(b, body);
        assert_eq!(sigs.len(), 1);
        assert_eq!(sigs[0].blob.len(), 64);
        let v = log_verifier("fund.example/ledger", &log);
        assert_eq!(sigs[0].key_id, v.key_id());
        let n = verify_note(&note, from_ref(&v)).unwrap();
        assert_eq!(n.body, body);
        assert_eq!(
            Checkpoint::parse_body(&n.body).unwrap(),
            sample_checkpoint()
        );

        // A body with blank lines inside and at its end still splits right.
        for text in ["a\n\nb\n", "a\n\n", "\n", "line\n\n\n"] {
            let note = sign_note(text, "k", &log).unwrap();
            assert_eq!(
                verify_note(&note, &[log_verifier("k", &log)]).unwrap().body,
                text
            );
        }

        // Bad inputs to signing.
        assert_eq!(
            sign_note("abc", "k", &log),
            Err(NoteError::MissingFinalNewline)
        );
        assert!(matches!(
            sign_note("a\tb\n", "k", &log),
            Err(NoteError::ControlCharacter { .. })
        ));
        for name in [
            "",
            "a b",
            "a+b",
            "a\u{a0}b",
            "a\nb",
            "a\u{2003}b",
            "a\u{1}b",
            "a\u{85}b",
        ] {
            assert!(matches!(
                sign_note("x\n", name, &log),
                Err(NoteError::InvalidKeyName { .. })
            ));
        }
    }

    #[test]
    fn tampering_is_detected() {
        let log = key(1);
        let v = log_verifier("fund.example/ledger", &log);
        let body = sample_checkpoint().to_body();
        let note = sign_note(&body, "fund.example/ledger", &log).unwrap();
        // Every changed body byte fails (as a bad signature or a bad note).
        for i in 0..body.len() {
            let mut bytes = note.clone().into_bytes();
            bytes[i] ^= 0x01;
            if let Ok(s) = String::from_utf8(bytes) {
                assert!(verify_note(&s, from_ref(&v)).is_err(), "byte {i}");
            }
        }
        // Every changed signature byte fails.
        let (_, sigs) = parse_note(&note).unwrap();
        for i in 0..68 {
            let mut s = sigs[0].clone();
            if i < 4 {
                s.key_id[i] ^= 0x01;
            } else {
                s.blob[i - 4] ^= 0x01;
            }
            let forged = format!("{body}\n{}", s.to_line());
            assert!(verify_note(&forged, from_ref(&v)).is_err(), "sig byte {i}");
        }
        // Truncated or extended signature from the known key fails.
        let mut s = sigs[0].clone();
        s.blob.pop();
        assert!(verify_note(&format!("{body}\n{}", s.to_line()), from_ref(&v)).is_err());
        let mut s = sigs[0].clone();
        s.blob.push(0);
        assert!(verify_note(&format!("{body}\n{}", s.to_line()), from_ref(&v)).is_err());
        // A different key under the same name is unknown, not accepted.
        let other = log_verifier("fund.example/ledger", &key(2));
        assert_eq!(
            verify_note(&note, &[other]),
            Err(NoteError::NoVerifiedSignature { unknown: 1 })
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let log = key(1);
        let stranger = key(9);
        let body = sample_checkpoint().to_body();
        let note = sign_note(&body, "fund.example/ledger", &log).unwrap();
        let note = add_signature(&note, "stranger.example/k", &stranger).unwrap();
        // A line under the log's name from another key (so another key ID)
        // is also unknown and ignored.
        let note = add_signature(&note, "fund.example/ledger", &stranger).unwrap();
        let n = verify_note(&note, &[log_verifier("fund.example/ledger", &log)]).unwrap();
        assert_eq!(n.verified.len(), 1);
        assert_eq!(n.unknown.len(), 2);
        // A garbage signature from an unknown key does not matter either.
        let junk = NoteSignature {
            name: "junk".into(),
            key_id: [1, 2, 3, 4],
            blob: vec![0; 7],
        };
        let with_junk = format!("{note}{}", junk.to_line());
        verify_note(&with_junk, &[log_verifier("fund.example/ledger", &log)]).unwrap();
        // Same name as the log, wrong key ID: unknown.
        let same_name = NoteSignature {
            name: "fund.example/ledger".into(),
            ..junk
        };
        verify_note(
            &format!("{note}{}", same_name.to_line()),
            &[log_verifier("fund.example/ledger", &log)],
        )
        .unwrap();
        // Re-signing by the same key replaces its line rather than adding one.
        let again = add_signature(&note, "fund.example/ledger", &log).unwrap();
        assert_eq!(parse_note(&again).unwrap().1.len(), 3);
    }

    #[test]
    fn cosignature_round_trip() {
        let log = key(1);
        let witness = key(3);
        let body = sample_checkpoint().to_body();
        let ts = 1_700_000_000;
        let note = sign_note(&body, "fund.example/ledger", &log).unwrap();
        let note = add_cosignature(&note, "witness.example/w1", &witness, ts).unwrap();

        let line = cosign(&body, "witness.example/w1", &witness, ts).unwrap();
        assert!(note.ends_with(&line));
        let (_, sigs) = parse_note(&note).unwrap();
        let cs = &sigs[1];
        assert_eq!(cs.blob.len(), 72);
        assert_eq!(&cs.blob[..8], &ts.to_be_bytes());
        let wv = witness_verifier("witness.example/w1", &witness);
        assert_eq!(
            cs.key_id,
            key_id(
                "witness.example/w1",
                0x04,
                &witness.verifying_key().to_bytes()
            )
        );
        assert_eq!(verify_cosignature(&body, cs, &wv), Ok(ts));
        assert_eq!(cosignature_timestamp(cs), Ok(ts));

        // The signed message is exactly the spec's layout.
        let msg = format!("cosignature/v1\ntime {ts}\n{body}");
        assert_eq!(cosignature_message(&body, ts), msg);
        let sig = Signature::from_slice(&cs.blob[8..]).unwrap();
        witness
            .verifying_key()
            .verify_strict(msg.as_bytes(), &sig)
            .unwrap();

        // verify_note with both keys reports the timestamp.
        let lv = log_verifier("fund.example/ledger", &log);
        let n = verify_note(&note, &[lv.clone(), wv.clone()]).unwrap();
        assert_eq!(n.verified.len(), 2);
        assert_eq!(n.verified[1].timestamp, Some(ts));
        assert_eq!(n.verified[1].sig_type, SIG_TYPE_COSIGNATURE_V1);

        // A type-0x01 verifier for the witness key does not match the 0x04 line.
        let wrong_type = log_verifier("witness.example/w1", &witness);
        let n = verify_note(&note, &[lv.clone(), wrong_type.clone()]).unwrap();
        assert_eq!(n.verified.len(), 1);
        assert_eq!(n.unknown.len(), 1);
        assert!(verify_cosignature(&body, cs, &wrong_type).is_err());
        assert!(verify_cosignature(&body, cs, &witness_verifier("other", &witness)).is_err());

        // Timestamp 0 and 2^63-1 work; 2^63 is refused.
        for t in [0, i64::MAX as u64] {
            let l = cosign(&body, "w", &witness, t).unwrap();
            let n =
                verify_note(&format!("{body}\n{l}"), &[witness_verifier("w", &witness)]).unwrap();
            assert_eq!(n.verified[0].timestamp, Some(t));
        }
        assert_eq!(
            cosign(&body, "w", &witness, 1 << 63),
            Err(NoteError::TimestampOutOfRange { timestamp: 1 << 63 })
        );
        // Only checkpoints are cosigned.
        assert!(cosign("not a checkpoint\n", "w", &witness, ts).is_err());
    }

    #[test]
    fn cosignature_tampering_is_detected() {
        let witness = key(3);
        let wv = witness_verifier("witness.example/w1", &witness);
        let body = sample_checkpoint().to_body();
        let ts = 1_700_000_000u64;
        let (_, sigs) = parse_note(&format!(
            "{body}\n{}",
            cosign(&body, "witness.example/w1", &witness, ts).unwrap()
        ))
        .unwrap();
        let cs = sigs[0].clone();
        // Different body.
        let mut other = sample_checkpoint();
        other.tree_size = 43;
        assert!(verify_cosignature(&other.to_body(), &cs, &wv).is_err());
        // Extension lines are covered.
        other = sample_checkpoint();
        other.extensions = vec!["ext".into()];
        assert!(verify_cosignature(&other.to_body(), &cs, &wv).is_err());
        // Every blob byte, the timestamp included.
        for i in 0..cs.blob.len() {
            let mut s = cs.clone();
            s.blob[i] ^= 0x01;
            assert!(verify_cosignature(&body, &s, &wv).is_err(), "blob byte {i}");
            let note = format!("{body}\n{}", s.to_line());
            assert!(verify_note(&note, from_ref(&wv)).is_err(), "blob byte {i}");
        }
        // Timestamp above 2^63-1 is refused even if the signature were good.
        let mut s = cs.clone();
        s.blob[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(verify_cosignature(&body, &s, &wv).is_err());
        assert!(cosignature_timestamp(&s).is_err());
        // Wrong lengths.
        let mut s = cs.clone();
        s.blob.pop();
        assert!(verify_cosignature(&body, &s, &wv).is_err());
    }

    #[test]
    fn formats_cosignature_timestamp_vector() {
        let raw = BASE64.decode(FORMATS_COSIG_B64).unwrap();
        let sig = NoteSignature {
            name: "w".into(),
            key_id: raw[..4].try_into().unwrap(),
            blob: raw[4..].to_vec(),
        };
        assert_eq!(cosignature_timestamp(&sig), Ok(1727964367));
        let raw = BASE64.decode(FORMATS_NOT_COSIG_B64).unwrap();
        let sig = NoteSignature {
            name: "w".into(),
            key_id: raw[..4].try_into().unwrap(),
            blob: raw[4..].to_vec(),
        };
        assert!(cosignature_timestamp(&sig).is_err());
    }

    #[test]
    fn cosignature_vkeys_parse() {
        // transparency-dev/formats note_cosigv1_test.go: a type-0x04 vkey.
        let v =
            Verifier::parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
                .unwrap();
        assert_eq!(v.sig_type(), SIG_TYPE_COSIGNATURE_V1);
        assert_eq!(
            v.to_vkey_string(),
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
        );
        // Same file: a type-0x01 vkey whose base64 contains '+'.
        let v = Verifier::parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6");
        assert_eq!(v.unwrap().sig_type(), SIG_TYPE_ED25519);
        assert!(matches!(
            Verifier::parse("rekor.sigstore.dev+12345678+AwEB"),
            Err(NoteError::UnsupportedSignatureType { sig_type: 3 })
        ));
    }

    #[test]
    fn errors_display_on_one_line() {
        let errors = [
            NoteError::ControlCharacter { offset: 1 },
            NoteError::MissingFinalNewline,
            NoteError::MissingSignatures,
            NoteError::MalformedSignatureLine {
                line: 1,
                reason: "x",
            },
            NoteError::TooManySignatures { max: 100 },
            NoteError::InvalidKeyName {
                name: "a\nb".into(),
            },
            NoteError::InvalidCheckpoint { reason: "x" },
            NoteError::InvalidVerifierKey { reason: "x" },
            NoteError::KeyIdMismatch {
                declared: [0; 4],
                computed: [1; 4],
            },
            NoteError::UnsupportedSignatureType { sig_type: 9 },
            NoteError::InvalidPublicKey { reason: "x" },
            NoteError::AmbiguousVerifier {
                name: "a\nb".into(),
                key_id: [0; 4],
            },
            NoteError::InvalidSignature {
                name: "a".into(),
                key_id: [0; 4],
            },
            NoteError::NoVerifiedSignature { unknown: 2 },
            NoteError::TimestampOutOfRange { timestamp: 1 },
            NoteError::WrongVerifier { reason: "x" },
        ];
        for e in errors {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsers_never_panic(s in "\\PC*", t in ".*") {
            let v = Verifier::parse(SPEC_VKEY).unwrap();
            for x in [&s, &t] {
                let _ = parse_note(x);
                let _ = verify_note(x, from_ref(&v));
                let _ = Checkpoint::parse_body(x);
                let _ = Verifier::parse(x);
                let _ = verify_note(&format!("{x}\n\n{PETER_SIG}"), from_ref(&v));
                let _ = verify_note(&format!("{GO_TEXT}\n\u{2014} {x}\n"), from_ref(&v));
            }
        }

        #[test]
        fn checkpoints_round_trip(
            origin in "[a-z0-9./-]{1,40}",
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            exts in proptest::collection::vec("[ -~]{1,20}", 0..3),
        ) {
            let c = Checkpoint { origin, tree_size: size, root_hash: root, extensions: exts };
            prop_assert!(c.validate().is_ok());
            prop_assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap(), c.clone());
            let k = key(5);
            let note = sign_note(&c.to_body(), "fund.example/l", &k).unwrap();
            let n = verify_note(&note, &[log_verifier("fund.example/l", &k)]).unwrap();
            prop_assert_eq!(n.body, c.to_body());
        }
    }
}
