//! Proposal files: an entry prepared for several signers (schema/POLICY.md).
//!
//! A proposal holds the exact content bytes that will be hashed and
//! appended, bound to a position in the chain (sequence number and previous
//! hash), plus the signatures collected so far. The readable fields are a
//! copy for reviewers; parsing checks that they agree with the content, so
//! what a cosigner reads is what they sign.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::entry::{self, key_id, Content, EntrySignature, SIGNERS_MAX};
use crate::error::{Error, Result};
use crate::state::State;

/// Version of the proposal file format.
pub const PROPOSAL_FORMAT_VERSION: u32 = 1;
/// The `type` field of every proposal file.
pub const PROPOSAL_TYPE: &str = "fundledger-proposal";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    key_id: String,
    signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalJson {
    format_version: u32,
    #[serde(rename = "type")]
    file_type: String,
    origin: String,
    seq: u64,
    prev_hash: String,
    recorded_at_unix_ms: i64,
    kind: String,
    /// The body, decoded, for reviewers.
    body: serde_json::Value,
    /// The exact content bytes (schema/FORMAT.md section 1), hex.
    content: String,
    entry_hash: String,
    signatures: Vec<SignatureJson>,
}

/// A parsed proposal.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub content: Content,
    pub signatures: Vec<EntrySignature>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::input(message)
        .with_hint("a proposal is made by `fundledger propose` and must not be edited by hand")
}

impl Proposal {
    pub fn new(content: Content) -> Proposal {
        Proposal {
            content,
            signatures: Vec::new(),
        }
    }

    /// Parse a proposal file and check that it is self-consistent.
    pub fn parse(text: &str) -> Result<Proposal> {
        let json: ProposalJson =
            serde_json::from_str(text).map_err(|e| bad(format!("not a proposal file: {e}")))?;
        if json.file_type != PROPOSAL_TYPE || json.format_version != PROPOSAL_FORMAT_VERSION {
            return Err(bad(format!(
                "unknown proposal type or version ({} {})",
                json.file_type, json.format_version
            )));
        }
        let bytes = hex::decode(&json.content).map_err(|_| bad("content is not hex"))?;
        let content = Content::decode(&bytes)
            .map_err(|e| bad(format!("content does not decode: {}", e.message())))?;
        let hash = content.hash();
        if hex::encode(hash) != json.entry_hash {
            return Err(bad(
                "the proposal was changed: its content no longer has the hash that was signed",
            ));
        }
        let body: serde_json::Value =
            serde_json::from_slice(&content.body).map_err(|_| bad("body is not JSON"))?;
        if json.origin != content.origin
            || json.seq != content.seq
            || json.prev_hash != hex::encode(content.prev_hash)
            || json.recorded_at_unix_ms != content.recorded_at_unix_ms
            || json.kind != content.kind
            || json.body != body
        {
            return Err(bad(
                "the proposal's readable fields do not match its content: it was edited",
            ));
        }
        let mut signatures: Vec<EntrySignature> = Vec::new();
        for s in &json.signatures {
            let key_id: [u8; 32] = hex::decode(&s.key_id)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad("a signature's key_id is not 32 bytes of hex"))?;
            let signature: [u8; 64] = hex::decode(&s.signature)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad("a signature is not 64 bytes of hex"))?;
            if signatures.iter().any(|x| x.key_id == key_id) {
                return Err(bad(format!(
                    "key {} signed the proposal twice",
                    &s.key_id[..16]
                )));
            }
            signatures.push(EntrySignature { key_id, signature });
        }
        Ok(Proposal {
            content,
            signatures,
        })
    }

    /// Check every signature already on the proposal against the keys the
    /// ledger enrolled (a signature that fails means the content changed
    /// after it was signed, or a key that is not enrolled signed).
    pub fn check_signatures(&self, state: &State) -> Result<()> {
        let hash = self.content.hash();
        for sig in &self.signatures {
            let record = state.keys.get(&sig.key_id).ok_or_else(|| {
                Error::rule(format!(
                    "the proposal carries a signature by key {}, which is not enrolled in this ledger",
                    &hex::encode(sig.key_id)[..16]
                ))
            })?;
            if record.revoked_seq.is_some() {
                return Err(Error::rule(format!(
                    "the proposal is signed by revoked key {}",
                    record.name
                )));
            }
            if !entry::verify_signature(&record.public_key, &hash, sig) {
                return Err(Error::rule(format!(
                    "the signature by key {} does not verify: the proposal was changed after it was signed",
                    record.name
                )));
            }
        }
        Ok(())
    }

    /// Add a signature by `key`; refuses a key that already signed.
    pub fn sign(&mut self, key: &SigningKey) -> Result<()> {
        let id = key_id(&key.verifying_key());
        if self.signatures.iter().any(|s| s.key_id == id) {
            return Err(Error::input(
                "this key already signed the proposal; each signer counts once",
            ));
        }
        if self.signatures.len() >= SIGNERS_MAX {
            return Err(Error::input(format!(
                "a proposal holds at most {SIGNERS_MAX} signatures"
            )));
        }
        self.signatures.push(entry::sign(key, &self.content.hash()));
        Ok(())
    }

    /// The proposal file text.
    pub fn to_json(&self) -> Result<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.content.body)
            .map_err(|_| Error::format("body is not JSON"))?;
        let json = ProposalJson {
            format_version: PROPOSAL_FORMAT_VERSION,
            file_type: PROPOSAL_TYPE.into(),
            origin: self.content.origin.clone(),
            seq: self.content.seq,
            prev_hash: hex::encode(self.content.prev_hash),
            recorded_at_unix_ms: self.content.recorded_at_unix_ms,
            kind: self.content.kind.clone(),
            body,
            content: hex::encode(self.content.encode()),
            entry_hash: hex::encode(self.content.hash()),
            signatures: self
                .signatures
                .iter()
                .map(|s| SignatureJson {
                    key_id: hex::encode(s.key_id),
                    signature: hex::encode(s.signature),
                })
                .collect(),
        };
        let mut text =
            serde_json::to_string_pretty(&json).map_err(|e| Error::format(e.to_string()))?;
        text.push('\n');
        Ok(text)
    }
}

/// Write a new proposal file, refusing to overwrite one.
pub fn write_new(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
