//! Ed25519 signing of many messages by one key, with one field inversion
//! for the whole batch instead of one per signature.
//!
//! Each signature is exactly RFC 8032 section 5.1.6 (PureEdDSA, Ed25519):
//! deterministic, so the bytes are the very ones `ed25519_dalek`'s
//! `SigningKey::sign` makes for the same key and message (the tests below
//! check that over random keys and messages, and against RFC 8032's own
//! vectors). What differs is only how `R = [r]B` is encoded: a point is held
//! in projective coordinates (X:Y:Z) and encoding it needs 1/Z, a field
//! inversion of about 250 squarings, a quarter of a signature's CPU;
//! curve25519-dalek 5's `compress_batch_alloc` shares one inversion across
//! the batch (Montgomery's trick, constant time).
//!
//! Why this is safe to have here:
//! - the public key A that goes into every challenge hash is derived from
//!   the secret inside this function, never passed in (signing with a
//!   mismatched A leaks the secret scalar);
//! - the secret scalar, the nonce prefix and every nonce r are wiped when
//!   the batch ends;
//! - batch append verifies every signature made here before it is stored
//!   (the check twice, [`crate::entry::verify_signatures`]), as it did
//!   those of `ed25519_dalek`.
//!
//! Only batch append signs here; a single append signs with
//! `ed25519_dalek`, where a batch of one would gain nothing.

use curve25519_dalek_5::edwards::EdwardsPoint;
use curve25519_dalek_5::scalar::{clamp_integer, Scalar};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// Sign every message with the key whose 32-byte RFC 8032 secret is
/// `secret`; returns the 64-byte signatures (R || S) in order.
pub fn sign_batch<M: AsRef<[u8]>>(secret: &[u8; 32], messages: &[M]) -> Vec<[u8; 64]> {
    // RFC 8032 5.1.5: h = SHA-512(secret); s = clamp(h[0..32]), the
    // nonce prefix is h[32..64]; A = [s]B.
    let h = Zeroizing::new(<[u8; 64]>::from(Sha512::digest(secret)));
    let mut lower = Zeroizing::new([0u8; 32]);
    lower.copy_from_slice(&h[..32]);
    let scalar = Zeroizing::new(Scalar::from_bytes_mod_order(clamp_integer(*lower)));
    let prefix = &h[32..];
    let public = EdwardsPoint::mul_base(&scalar).compress();

    // 5.1.6 steps 2 and 3: r = SHA-512(prefix || M) mod L, R = [r]B.
    let mut nonces: Vec<Scalar> = messages
        .iter()
        .map(|m| {
            let mut digest = Sha512::new();
            digest.update(prefix);
            digest.update(m.as_ref());
            let mut wide = <[u8; 64]>::from(digest.finalize());
            let r = Scalar::from_bytes_mod_order_wide(&wide);
            wide.zeroize();
            r
        })
        .collect();
    let points: Vec<EdwardsPoint> = nonces.iter().map(EdwardsPoint::mul_base).collect();
    let encoded = EdwardsPoint::compress_batch_alloc(&points);

    // Steps 4 and 5: k = SHA-512(R || A || M) mod L, S = (r + k s) mod L.
    let signatures = messages
        .iter()
        .zip(&nonces)
        .zip(&encoded)
        .map(|((m, r), big_r)| {
            let mut digest = Sha512::new();
            digest.update(big_r.as_bytes());
            digest.update(public.as_bytes());
            digest.update(m.as_ref());
            let k = Scalar::from_bytes_mod_order_wide(&digest.finalize().into());
            let s = k * *scalar + r;
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(big_r.as_bytes());
            signature[32..].copy_from_slice(s.as_bytes());
            signature
        })
        .collect();
    nonces.zeroize();
    signatures
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text.split_whitespace().collect::<String>()).expect("hex")
    }

    /// RFC 8032 section 7.1, tests 1 to 3 and SHA(abc): secret, message,
    /// signature.
    const RFC8032_VECTORS: [(&str, &str, &str); 4] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac
             18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589
             09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ];

    #[test]
    fn signs_the_rfc_8032_vectors() {
        for (secret, message, expected) in RFC8032_VECTORS {
            let secret: [u8; 32] = unhex(secret).try_into().expect("32 bytes");
            let signed = sign_batch(&secret, &[unhex(message)]);
            assert_eq!(signed, vec![<[u8; 64]>::try_from(unhex(expected)).unwrap()]);
        }
    }

    #[test]
    fn an_empty_batch_signs_nothing() {
        assert!(sign_batch::<&[u8]>(&[1u8; 32], &[]).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Byte for byte what ed25519-dalek signs, in order, whatever the
        /// batch's size, and each signature verifies strictly.
        #[test]
        fn signs_as_ed25519_dalek_does(
            secret in any::<[u8; 32]>(),
            messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 0..40),
        ) {
            let key = SigningKey::from_bytes(&secret);
            let signed = sign_batch(&secret, &messages);
            prop_assert_eq!(signed.len(), messages.len());
            for (message, signature) in messages.iter().zip(&signed) {
                prop_assert_eq!(key.sign(message).to_bytes(), *signature);
                let parsed = ed25519_dalek::Signature::from_bytes(signature);
                prop_assert!(key.verifying_key().verify_strict(message, &parsed).is_ok());
            }
        }
    }
}
