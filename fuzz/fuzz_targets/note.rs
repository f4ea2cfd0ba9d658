//! Checkpoints, signed notes, verifier keys, proofs, proposals and export
//! manifests from untrusted files: parsing never panics, and a parsed
//! checkpoint body formats back to the same text.
#![no_main]

use fundledger::checkpoint::parse_consistency_proof;
use fundledger::export::Manifest;
use fundledger::note::{
    cosignature_timestamp, parse_note, parse_verifier_key, verify_note, Checkpoint, Verifier,
};
use fundledger::proposal::Proposal;
use libfuzzer_sys::fuzz_target;

/// A verifier for the key name the seeds use, so that signature lines that
/// name it reach signature checking.
fn verifier() -> Verifier {
    let key = ed25519_key();
    let vkey = fundledger::note::verifier_key_string("fuzz.example.org/log", &key);
    parse_verifier_key(&vkey).expect("a well-formed verifier key")
}

fn ed25519_key() -> [u8; 32] {
    // Any valid point serves: the base point's encoding.
    let mut k = [0u8; 32];
    k[0] = 0x58;
    for b in &mut k[1..] {
        *b = 0x66;
    }
    k
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok((body, signatures)) = parse_note(text) {
        for sig in &signatures {
            let _ = cosignature_timestamp(sig);
        }
        let _ = Checkpoint::parse_body(&body);
    }
    if let Ok(cp) = Checkpoint::parse_body(text) {
        assert_eq!(
            cp.to_body(),
            text,
            "a parsed checkpoint formats differently"
        );
    }
    let _ = verify_note(text, &[verifier()]);
    let _ = parse_verifier_key(text);
    let _ = Verifier::parse(text);
    let _ = parse_consistency_proof(text);
    let _ = Proposal::parse(text);
    if let Ok(manifest) = Manifest::parse(text) {
        let again = manifest.to_body();
        assert_eq!(
            Manifest::parse(&again).map(|m| m.to_body()).ok(),
            Some(again),
            "a parsed manifest does not read back"
        );
    }
});
