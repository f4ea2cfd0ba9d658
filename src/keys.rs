//! Key files: Ed25519 private keys as PKCS#8 PEM (mode 0600) and public keys
//! as SubjectPublicKeyInfo PEM, both readable by OpenSSL 3.
//!
//! Private key bytes only ever live in this module's return values (a
//! `SigningKey`, which zeroizes itself on drop); nothing here prints them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use pkcs8::der::pem::PemLabel;

use crate::error::{Error, ErrorKind, Result};

/// A key name becomes a file name: keep it to safe characters.
pub fn check_key_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "key name {name:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

/// Paths of the two files `generate` writes.
pub struct KeyPaths {
    pub private: PathBuf,
    pub public: PathBuf,
}

/// Generate a new Ed25519 key from the operating system's random source and
/// write `DIR/NAME.key` (PKCS#8 PEM, mode 0600) and `DIR/NAME.pub` (SPKI PEM).
/// Refuses to overwrite either file.
pub fn generate(dir: &Path, name: &str) -> Result<(KeyPaths, VerifyingKey)> {
    generate_with(dir, name, None)
}

/// Like [`generate`], but with `Some(passphrase)` the private key is stored
/// encrypted (PKCS#8 PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC, which
/// `openssl pkey` reads).
pub fn generate_with(
    dir: &Path,
    name: &str,
    passphrase: Option<&str>,
) -> Result<(KeyPaths, VerifyingKey)> {
    check_key_name(name)?;
    if passphrase.is_some_and(|p| p.chars().count() < PASSPHRASE_LEN_MIN) {
        return Err(Error::key(format!(
            "the passphrase must have at least {PASSPHRASE_LEN_MIN} characters"
        )));
    }
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let paths = write_key_files_with(dir, name, &key, passphrase)?;
    Ok((paths, key.verifying_key()))
}

/// Shortest passphrase accepted for an encrypted key.
pub const PASSPHRASE_LEN_MIN: usize = 8;
/// PBKDF2-HMAC-SHA256 iterations for encrypted keys (OWASP 2023 advice).
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// The environment variable that holds the passphrase of an encrypted key.
pub const PASSPHRASE_ENV: &str = "FUNDLEDGER_KEY_PASSPHRASE";

fn encrypt_pem(der: &[u8], passphrase: &str) -> Result<zeroize::Zeroizing<String>> {
    use rand_core::RngCore;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut salt);
    rand_core::OsRng.fill_bytes(&mut iv);
    let fail =
        |e: &dyn std::fmt::Display| Error::key(format!("cannot encrypt the private key: {e}"));
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
            .map_err(|e| fail(&e))?;
    let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| fail(&e))?;
    let doc = info
        .encrypt_with_params(params, passphrase.as_bytes())
        .map_err(|e| fail(&e))?;
    doc.to_pem(pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL, LineEnding::LF)
        .map_err(|e| fail(&e))
}

/// Write the key files for an existing key (used by `generate` and by tests
/// that need a fixed seed).
pub fn write_key_files(dir: &Path, name: &str, key: &SigningKey) -> Result<KeyPaths> {
    write_key_files_with(dir, name, key, None)
}

fn write_key_files_with(
    dir: &Path,
    name: &str,
    key: &SigningKey,
    passphrase: Option<&str>,
) -> Result<KeyPaths> {
    check_key_name(name)?;
    fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    for path in [&private, &public] {
        if path.exists() {
            return Err(
                Error::new(ErrorKind::Key, format!("{} already exists", path.display())).with_hint(
                    "choose another name or move the old key away; keys are never overwritten",
                ),
            );
        }
    }
    // PKCS#8 v1 (RFC 8410 without the optional public key): OpenSSL 3.0
    // does not read the v2 form that carries the public key too.
    let keypair = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let der = keypair
        .to_pkcs8_der()
        .map_err(|e| Error::key(format!("cannot encode the private key: {e}")))?;
    let pem = match passphrase {
        Some(p) => encrypt_pem(der.as_bytes(), p)?,
        None => der
            .to_pem(pkcs8::PrivateKeyInfo::PEM_LABEL, LineEnding::LF)
            .map_err(|e| Error::key(format!("cannot encode the private key: {e}")))?,
    };
    write_new_file(&private, pem.as_bytes(), 0o600)?;
    let pub_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::key(format!("cannot encode the public key: {e}")))?;
    write_new_file(&public, pub_pem.as_bytes(), 0o644)?;
    Ok(KeyPaths { private, public })
}

fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// The passphrase from FUNDLEDGER_KEY_PASSPHRASE (the library never reads
/// a terminal; the binary prompts when the variable is not set).
pub fn passphrase_from_env() -> Result<zeroize::Zeroizing<String>> {
    std::env::var(PASSPHRASE_ENV)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| {
            Error::key("the private key is encrypted and no passphrase was given").with_hint(
                format!("set {PASSPHRASE_ENV} or run from a terminal to be asked"),
            )
        })
}

/// Load a private key, refusing a file that group or others can read or
/// write (as ssh does). An encrypted key's passphrase comes from
/// FUNDLEDGER_KEY_PASSPHRASE.
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    load_signing_key_with(path, &passphrase_from_env)
}

/// Load a private key; `passphrase` is asked only for an encrypted key.
pub fn load_signing_key_with(
    path: &Path,
    passphrase: &dyn Fn() -> Result<zeroize::Zeroizing<String>>,
) -> Result<SigningKey> {
    let meta = fs::metadata(path).map_err(|e| {
        Error::new(
            ErrorKind::Key,
            format!("cannot read key file {}: {e}", path.display()),
        )
        .with_hint("pass --key PATH or set FUNDLEDGER_KEY to a private key made by `fundledger key generate`")
    })?;
    if !meta.is_file() {
        return Err(Error::key(format!("{} is not a file", path.display())));
    }
    let text = zeroize_string(
        fs::read(path)
            .map_err(|e| Error::io(format!("cannot read key file {}", path.display()), e))?,
    );
    if !text.contains("PRIVATE KEY-----") {
        return Err(Error::key(format!(
            "{} is not a private key (a public key or another file?)",
            path.display()
        ))
        .with_hint("pass the NAME.key file made by `fundledger key generate`, not NAME.pub"));
    }
    // Refuse a private key others can read, as ssh does.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::key(format!(
                "private key {} is accessible by others (mode {mode:04o})",
                path.display()
            ))
            .with_hint(format!("run `chmod 600 {}`", path.display())));
        }
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let pass = passphrase()?;
        return SigningKey::from_pkcs8_encrypted_pem(&text, pass.as_bytes()).map_err(|_| {
            Error::key(format!(
                "cannot decrypt {}: wrong passphrase, or not an Ed25519 key",
                path.display()
            ))
            .with_hint(format!(
                "check the passphrase ({PASSPHRASE_ENV} or the prompt)"
            ))
        });
    }
    SigningKey::from_pkcs8_pem(&text).map_err(|_| {
        Error::key(format!(
            "{} is not an Ed25519 private key in PKCS#8 PEM form",
            path.display()
        ))
        .with_hint("use a .key file made by `fundledger key generate` (or `openssl genpkey -algorithm ed25519`)")
    })
}

/// Read bytes into a string that is wiped when dropped.
fn zeroize_string(bytes: Vec<u8>) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(String::from_utf8(bytes).unwrap_or_default())
}

/// Load a public key from SubjectPublicKeyInfo PEM and refuse weak
/// (small-order) keys, which could make a signature valid for any message.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey> {
    let text = fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Key,
            format!("cannot read public key {}: {e}", path.display()),
        )
    })?;
    let key = VerifyingKey::from_public_key_pem(&text).map_err(|_| {
        Error::key(format!(
            "{} is not an Ed25519 public key in SubjectPublicKeyInfo PEM form",
            path.display()
        ))
        .with_hint("use a .pub file made by `fundledger key generate`")
    })?;
    check_public_key(&key)?;
    Ok(key)
}

/// Refuse public keys that signatures must never be checked against
/// (schema/FORMAT.md section 2): keys of small order (the identity among
/// them), which would accept forged signatures; keys with a torsion
/// component, whose signatures the cofactored equation would accept in more
/// forms than the signer made; and non-canonical encodings, which would give
/// one key two key ids.
pub fn check_public_key(key: &VerifyingKey) -> Result<()> {
    if key.is_weak() {
        return Err(Error::key(
            "the public key has small order and would accept forged signatures",
        ));
    }
    let point = key.to_edwards();
    if !point.is_torsion_free() {
        return Err(Error::key(
            "the public key is not in the prime-order subgroup (it has a torsion component)",
        ));
    }
    if point.compress().as_bytes() != key.as_bytes() {
        return Err(Error::key("the public key is not canonically encoded"));
    }
    Ok(())
}

/// A public key's SPKI PEM text.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("encoding a 32-byte key as SPKI cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_small_order_or_with_torsion_are_refused() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let good = SigningKey::from_bytes(&[9; 32]).verifying_key();
        check_public_key(&good).unwrap();
        // A point of order 8, and the good key plus it.
        for point in [EIGHT_TORSION[1], good.to_edwards() + EIGHT_TORSION[1]] {
            let key = VerifyingKey::from_bytes(point.compress().as_bytes()).unwrap();
            assert!(check_public_key(&key).is_err());
        }
    }

    #[test]
    fn generate_writes_0600_private_key_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, public) = generate(dir.path(), "alice").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&paths.private).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let key = load_signing_key(&paths.private).unwrap();
        assert_eq!(key.verifying_key(), public);
        assert_eq!(load_public_key(&paths.public).unwrap(), public);
        assert!(generate(dir.path(), "alice").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (paths, _) = generate(dir.path(), "bob").unwrap();
        fs::set_permissions(&paths.private, fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_signing_key(&paths.private).unwrap_err();
        assert!(err.message().contains("accessible by others"));
        assert!(err.hint().unwrap().contains("chmod 600"));
    }

    #[test]
    fn encrypted_keys_round_trip_and_refuse_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, public) = generate_with(dir.path(), "enc", Some("correct horse")).unwrap();
        let text = fs::read_to_string(&paths.private).unwrap();
        assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let ok = || Ok(zeroize::Zeroizing::new("correct horse".to_string()));
        assert_eq!(
            load_signing_key_with(&paths.private, &ok)
                .unwrap()
                .verifying_key(),
            public
        );
        let wrong = || Ok(zeroize::Zeroizing::new("battery staple".to_string()));
        let err = load_signing_key_with(&paths.private, &wrong).unwrap_err();
        assert!(err.message().contains("wrong passphrase"), "{err}");
        assert!(generate_with(dir.path(), "short", Some("abc")).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_key_name("admin-1").is_ok());
        assert!(check_key_name("../x").is_err());
        assert!(check_key_name(".hidden").is_err());
        assert!(check_key_name("").is_err());
    }
}
