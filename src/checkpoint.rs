//! Signed checkpoints, proofs and witnesses: how fundledger uses the C2SP
//! formats of [`crate::note`] and the RFC 9162 tree of [`crate::merkle`].
//!
//! - A checkpoint is a C2SP tlog-checkpoint signed as a C2SP note by an
//!   administrator or auditor key enrolled in the ledger; the note key name
//!   is the ledger origin.
//! - Proofs are JSON documents (schema/PROOFS.md) that [`verify_proof`]
//!   checks offline against signed checkpoints and trusted keys.
//! - A witness keeps the last checkpoint it cosigned per origin and adds a
//!   C2SP cosignature/v1 only to a checkpoint consistent with it.

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::entry::key_id;
use crate::error::{Error, ErrorKind, Result};
use crate::ledger::Ledger;
use crate::merkle;
use crate::note::{self, Checkpoint, Verifier};
use crate::state::State;

/// Version of the proof JSON documents.
pub const PROOF_FORMAT_VERSION: u32 = 1;
/// Roles whose keys may sign checkpoints.
pub const CHECKPOINT_ROLES: &[&str] = &["administrator", "auditor"];

fn note_error(e: note::NoteError) -> Error {
    Error::new(ErrorKind::Verification, e.to_string())
}

fn verification(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Verification, message)
}

/// Note verifiers for every checkpoint-signing key the ledger ever
/// enrolled (name = origin), and cosignature verifiers for its witnesses
/// (name = the enrolled key name).
pub fn ledger_verifiers(state: &State) -> Vec<Verifier> {
    let origin = state.origin().unwrap_or_default();
    let mut out = Vec::new();
    for k in state.keys.values() {
        let pk = k.public_key.to_bytes();
        if CHECKPOINT_ROLES.contains(&k.role.as_str()) {
            if let Ok(v) = Verifier::ed25519(origin, &pk) {
                out.push(v);
            }
        }
        if k.role == "witness" {
            if let Ok(v) = Verifier::cosignature_v1(&k.name, &pk) {
                out.push(v);
            }
        }
    }
    out
}

/// Sign a checkpoint of the ledger's current tree with `key`, which must be
/// an active administrator or auditor key of the ledger. Returns the note.
pub fn sign_checkpoint(ledger: &Ledger, key: &SigningKey) -> Result<(Checkpoint, String)> {
    let state = ledger.state();
    let id = key_id(&key.verifying_key());
    let head = ledger.tree_head()?;
    let record = state.keys.get(&id).ok_or_else(|| {
        Error::key("the signing key is not enrolled in this ledger")
            .with_hint("checkpoints are signed by an enrolled administrator or auditor key")
    })?;
    if record.revoked_seq.is_some() || !CHECKPOINT_ROLES.contains(&record.role.as_str()) {
        return Err(Error::key(format!(
            "key {} ({}, {}) may not sign checkpoints",
            record.name,
            record.role,
            if record.revoked_seq.is_some() {
                "revoked"
            } else {
                "active"
            }
        ))
        .with_hint("use an active administrator or auditor key"));
    }
    let checkpoint = Checkpoint {
        origin: ledger.origin().to_string(),
        tree_size: head.tree_size,
        root_hash: head.root_hash,
        extensions: Vec::new(),
    };
    let note = note::sign_note(&checkpoint.to_body(), &checkpoint.origin, key)
        .map_err(|e| Error::input(e.to_string()))?;
    Ok((checkpoint, note))
}

/// Parse a signed checkpoint and check it with `verifiers`; returns the
/// checkpoint and the verified note.
pub fn open_checkpoint(
    text: &str,
    verifiers: &[Verifier],
) -> Result<(Checkpoint, note::VerifiedNote)> {
    let verified = note::verify_note(text, verifiers).map_err(|e| {
        verification(format!(
            "the checkpoint's signature does not verify with a trusted key: {e}"
        ))
    })?;
    let checkpoint = Checkpoint::parse_body(&verified.body).map_err(note_error)?;
    if !verified
        .verified
        .iter()
        .any(|s| s.sig_type == note::SIG_TYPE_ED25519 && s.name == checkpoint.origin)
    {
        return Err(verification(
            "no trusted key signed the checkpoint under its origin (witness cosignatures alone do not count)",
        ));
    }
    Ok((checkpoint, verified))
}

/// Verifiers from trusted public key files (SPKI PEM) for an origin, plus
/// verifier-key strings (`name+hex+base64`).
pub fn trusted_verifiers(
    origin_hint: &str,
    pem_files: &[PathBuf],
    vkeys: &[String],
) -> Result<Vec<Verifier>> {
    let mut out = Vec::new();
    for path in pem_files {
        let key = crate::keys::load_public_key(path)?;
        out.push(
            Verifier::ed25519(origin_hint, &key.to_bytes())
                .map_err(|e| Error::input(e.to_string()))?,
        );
    }
    for v in vkeys {
        out.push(Verifier::parse(v).map_err(|e| Error::input(format!("verifier key {v:?}: {e}")))?);
    }
    if out.is_empty() {
        return Err(Error::input("no trusted key given").with_hint(
            "pass --trusted-key PUB.pem (the ledger administrator's or auditor's public key) or --vkey NAME+ID+KEY",
        ));
    }
    Ok(out)
}

/// The origin line of a checkpoint note, unverified (to name its key).
pub fn note_origin(text: &str) -> Result<String> {
    Ok(text.split('\n').next().unwrap_or_default().to_string())
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    hex::decode(s)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::input(format!("{what} is not 32 bytes of hex")))
}

/// An inclusion proof document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub format_version: u32,
    /// "inclusion"
    #[serde(rename = "type")]
    pub proof_type: String,
    pub origin: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The entry's stored record (schema/FORMAT.md section 2), hex.
    pub record: String,
    pub leaf_hash: String,
    pub root_hash: String,
    pub proof: Vec<String>,
}

/// A consistency proof document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub format_version: u32,
    /// "consistency"
    #[serde(rename = "type")]
    pub proof_type: String,
    pub origin: String,
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: String,
    pub new_root: String,
    pub proof: Vec<String>,
}

/// Build an inclusion proof for entry `seq` in the tree of `tree_size`
/// (default: the whole ledger).
pub fn prove_inclusion(
    ledger: &Ledger,
    seq: u64,
    tree_size: Option<u64>,
) -> Result<InclusionProof> {
    let size = match tree_size {
        Some(s) => s,
        None => ledger.store().count()?,
    };
    if seq >= size {
        return Err(Error::input(format!(
            "entry {seq} is not in a tree of size {size}"
        )));
    }
    let row = ledger
        .store()
        .get(seq)?
        .ok_or_else(|| Error::input(format!("no entry {seq}")))?;
    let proof = ledger.inclusion_proof(seq, size)?;
    Ok(InclusionProof {
        format_version: PROOF_FORMAT_VERSION,
        proof_type: "inclusion".into(),
        origin: ledger.origin().into(),
        leaf_index: seq,
        tree_size: size,
        leaf_hash: hex::encode(merkle::leaf_hash(&row.record)),
        record: hex::encode(&row.record),
        root_hash: hex::encode(ledger.root_at(size)?),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// Build a consistency proof from `old_size` to `new_size` (default: the
/// whole ledger).
pub fn prove_consistency(
    ledger: &Ledger,
    old_size: u64,
    new_size: Option<u64>,
) -> Result<ConsistencyProof> {
    let new_size = match new_size {
        Some(s) => s,
        None => ledger.store().count()?,
    };
    if old_size > new_size {
        return Err(Error::input(format!(
            "--old {old_size} is larger than --new {new_size}"
        )));
    }
    let proof = ledger.consistency_proof(old_size, new_size)?;
    Ok(ConsistencyProof {
        format_version: PROOF_FORMAT_VERSION,
        proof_type: "consistency".into(),
        origin: ledger.origin().into(),
        old_size,
        new_size,
        old_root: hex::encode(ledger.root_at(old_size)?),
        new_root: hex::encode(ledger.root_at(new_size)?),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

fn proof_hashes(proof: &[String]) -> Result<Vec<[u8; 32]>> {
    proof.iter().map(|h| hex32(h, "a proof hash")).collect()
}

/// What [`verify_proof`] established.
#[derive(Debug, Clone, Serialize)]
pub struct ProofVerdict {
    pub format_version: u32,
    pub status: &'static str,
    pub origin: String,
    #[serde(rename = "type")]
    pub proof_type: String,
    pub detail: String,
}

/// Parse a consistency proof document, checking its version and type.
pub fn parse_consistency_proof(text: &str) -> Result<ConsistencyProof> {
    let p: ConsistencyProof = serde_json::from_str(text)
        .map_err(|e| Error::input(format!("malformed consistency proof: {e}")))?;
    if p.format_version != PROOF_FORMAT_VERSION || p.proof_type != "consistency" {
        return Err(Error::input(format!(
            "not a consistency proof of format version {PROOF_FORMAT_VERSION} (type {:?}, version {})",
            p.proof_type, p.format_version
        )));
    }
    Ok(p)
}

/// Check a proof document offline against signed checkpoints.
///
/// Inclusion: `checkpoint` must be signed by a trusted key and have the
/// proof's tree size; the leaf is hashed from the record in the proof.
/// Consistency: `old_checkpoint` (the older, signed) and `checkpoint` (the
/// newer, signed) give both roots; the proof must link them.
pub fn verify_proof(
    proof_json: &str,
    checkpoint: &str,
    old_checkpoint: Option<&str>,
    verifiers: &[Verifier],
) -> Result<ProofVerdict> {
    let value: serde_json::Value = serde_json::from_str(proof_json)
        .map_err(|e| Error::input(format!("the proof is not JSON: {e}")))?;
    if value["format_version"] != serde_json::json!(PROOF_FORMAT_VERSION) {
        return Err(Error::input(format!(
            "unknown proof format_version {} (this fundledger reads {PROOF_FORMAT_VERSION})",
            value["format_version"]
        )));
    }
    let (new_cp, _) = open_checkpoint(checkpoint, verifiers)?;
    match value["type"].as_str() {
        Some("inclusion") => {
            let p: InclusionProof = serde_json::from_value(value)
                .map_err(|e| Error::input(format!("malformed inclusion proof: {e}")))?;
            if p.origin != new_cp.origin {
                return Err(verification(format!(
                    "the proof is for origin {}, the checkpoint for {}",
                    p.origin, new_cp.origin
                )));
            }
            if p.tree_size != new_cp.tree_size {
                return Err(verification(format!(
                    "the proof is for tree size {}, the checkpoint has size {}",
                    p.tree_size, new_cp.tree_size
                )));
            }
            let record = hex::decode(&p.record).map_err(|_| Error::input("record is not hex"))?;
            let leaf = merkle::leaf_hash(&record);
            merkle::verify_inclusion(
                &leaf,
                p.leaf_index,
                p.tree_size,
                &proof_hashes(&p.proof)?,
                &new_cp.root_hash,
            )
            .map_err(|e| verification(format!("inclusion proof does not verify: {e}")))?;
            let seq = crate::entry::Record::decode(&record)
                .map(|r| r.content.seq)
                .map_err(|e| {
                    verification(format!(
                        "the proven record does not decode: {}",
                        e.message()
                    ))
                })?;
            if seq != p.leaf_index {
                return Err(verification(format!(
                    "the record is entry {seq}, but the proof places it at index {}",
                    p.leaf_index
                )));
            }
            Ok(ProofVerdict {
                format_version: PROOF_FORMAT_VERSION,
                status: "verified",
                origin: p.origin,
                proof_type: "inclusion".into(),
                detail: format!(
                    "entry {} is included in the signed tree of size {}",
                    p.leaf_index, p.tree_size
                ),
            })
        }
        Some("consistency") => {
            let p: ConsistencyProof = serde_json::from_value(value)
                .map_err(|e| Error::input(format!("malformed consistency proof: {e}")))?;
            let old_text = old_checkpoint.ok_or_else(|| {
                Error::input(
                    "a consistency proof needs --old-checkpoint FILE (the older signed checkpoint)",
                )
            })?;
            let (old_cp, _) = open_checkpoint(old_text, verifiers)?;
            if old_cp.origin != new_cp.origin || p.origin != new_cp.origin {
                return Err(verification(
                    "the proof and the checkpoints are not all for the same origin",
                ));
            }
            if p.old_size != old_cp.tree_size || p.new_size != new_cp.tree_size {
                return Err(verification(format!(
                    "the proof links sizes {} and {}, the checkpoints have {} and {}",
                    p.old_size, p.new_size, old_cp.tree_size, new_cp.tree_size
                )));
            }
            merkle::verify_consistency(
                old_cp.tree_size,
                new_cp.tree_size,
                &old_cp.root_hash,
                &new_cp.root_hash,
                &proof_hashes(&p.proof)?,
            )
            .map_err(|e| verification(format!("consistency proof does not verify: {e}")))?;
            Ok(ProofVerdict {
                format_version: PROOF_FORMAT_VERSION,
                status: "verified",
                origin: p.origin,
                proof_type: "consistency".into(),
                detail: format!(
                    "the tree of size {} extends the tree of size {} (nothing rewritten)",
                    p.new_size, p.old_size
                ),
            })
        }
        _ => Err(Error::input(
            "the proof's type must be \"inclusion\" or \"consistency\"",
        )),
    }
}

/// The witness state file for an origin.
fn witness_state_path(dir: &Path, origin: &str) -> PathBuf {
    let safe: String = origin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A short hash of the exact origin keeps two origins that differ only in
    // replaced characters apart.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(origin.as_bytes());
    dir.join(format!("{safe}.{}.checkpoint", &hex::encode(digest)[..8]))
}

/// What a witness needs to cosign.
pub struct WitnessRequest<'a> {
    /// The signed checkpoint to cosign.
    pub checkpoint: &'a str,
    /// The log's public keys (checkpoint signers).
    pub log_keys: &'a [VerifyingKey],
    /// A consistency proof (JSON) from the witness's last size, when it has one.
    pub proof: Option<&'a str>,
    pub key: &'a SigningKey,
    /// The witness's key name (as enrolled in the ledger).
    pub name: &'a str,
    pub state_dir: &'a Path,
    pub now_unix_s: u64,
}

/// Act as a witness: check the checkpoint's signature and its consistency
/// with the last checkpoint this witness cosigned for the origin, then add
/// a cosignature/v1 and remember the checkpoint. Returns the cosigned note.
pub fn witness_cosign(req: &WitnessRequest<'_>) -> Result<String> {
    let origin = note_origin(req.checkpoint)?;
    let verifiers: Vec<Verifier> = req
        .log_keys
        .iter()
        .filter_map(|k| Verifier::ed25519(&origin, &k.to_bytes()).ok())
        .collect();
    let (cp, _) = open_checkpoint(req.checkpoint, &verifiers)?;
    let path = witness_state_path(req.state_dir, &cp.origin);
    match std::fs::read_to_string(&path) {
        Ok(old_text) => {
            let (old, _) = open_checkpoint(&old_text, &verifiers).map_err(|e| {
                Error::new(
                    ErrorKind::Input,
                    format!(
                        "the witness state {} does not verify: {}",
                        path.display(),
                        e.message()
                    ),
                )
            })?;
            if cp.tree_size < old.tree_size {
                return Err(verification(format!(
                    "refused: the checkpoint has tree size {}, older than the size {} this witness already cosigned",
                    cp.tree_size, old.tree_size
                )));
            }
            if cp.tree_size == old.tree_size {
                if cp.root_hash != old.root_hash {
                    return Err(verification(format!(
                        "refused: a different root for tree size {} than the one this witness cosigned (a fork)",
                        cp.tree_size
                    )));
                }
            } else {
                let proof_text = req.proof.ok_or_else(|| {
                    Error::input(format!(
                        "this witness last cosigned tree size {}; a consistency proof from it is needed",
                        old.tree_size
                    ))
                    .with_hint(format!("pass --proof FILE made by `fundledger prove consistency --old {} --json`", old.tree_size))
                })?;
                let p = parse_consistency_proof(proof_text)?;
                if p.origin != cp.origin {
                    return Err(verification(format!(
                        "refused: the proof is for origin {}, the checkpoint for {}",
                        p.origin, cp.origin
                    )));
                }
                if p.old_size != old.tree_size || p.new_size != cp.tree_size {
                    return Err(verification(format!(
                        "the proof links sizes {} and {}, but this witness needs {} to {}",
                        p.old_size, p.new_size, old.tree_size, cp.tree_size
                    )));
                }
                merkle::verify_consistency(
                    old.tree_size,
                    cp.tree_size,
                    &old.root_hash,
                    &cp.root_hash,
                    &proof_hashes(&p.proof)?,
                )
                .map_err(|e| {
                    verification(format!(
                        "refused: the checkpoint is not consistent with the last one cosigned: {e}"
                    ))
                })?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
    let cosigned = note::add_cosignature(req.checkpoint, req.name, req.key, req.now_unix_s)
        .map_err(|e| Error::input(e.to_string()))?;
    std::fs::create_dir_all(req.state_dir)
        .map_err(|e| Error::io(format!("cannot create {}", req.state_dir.display()), e))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &cosigned)
        .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    Ok(cosigned)
}

/// Check a (possibly cosigned) checkpoint against the ledger and add it to
/// the ledger's checkpoint history.
pub fn record_checkpoint(ledger: &mut Ledger, text: &str, now_unix_ms: i64) -> Result<Checkpoint> {
    let verifiers = ledger_verifiers(ledger.state());
    let (cp, _) = open_checkpoint(text, &verifiers)?;
    if cp.origin != ledger.origin() {
        return Err(verification(format!(
            "the checkpoint is for origin {}, this ledger is {}",
            cp.origin,
            ledger.origin()
        )));
    }
    let size = ledger.store().count()?;
    if cp.tree_size > size {
        return Err(verification(format!(
            "the checkpoint has tree size {}, but this ledger has only {size} entries",
            cp.tree_size
        )));
    }
    if ledger.root_at(cp.tree_size)? != cp.root_hash {
        return Err(verification(format!(
            "the checkpoint's root for size {} differs from this ledger's",
            cp.tree_size
        )));
    }
    ledger.record_checkpoint(cp.tree_size, text, now_unix_ms)?;
    Ok(cp)
}
