//! `key` commands: generate, enroll, revoke, roles and policy.

use std::path::Path;

use super::record::record;
use super::{file_stem, new_passphrase, print_json};
use crate::cli::{Cli, KeyCommand};
use fundledger::entry::key_id;
use fundledger::error::{Error, Result};
use fundledger::event::*;
use fundledger::ledger::Ledger;
use fundledger::{keys, query};

pub(super) fn key_command(cli: &Cli, command: &KeyCommand, propose: Option<&Path>) -> Result<u8> {
    match command {
        KeyCommand::Generate { .. } | KeyCommand::List { .. } if propose.is_some() => Err(
            Error::input("only commands that record an entry can be proposed"),
        ),
        KeyCommand::Rotate {
            old,
            new_public_key,
            name,
            reason,
            rec,
        } => {
            let key = keys::load_public_key(new_public_key)?;
            let name = name.clone().unwrap_or_else(|| file_stem(new_public_key));
            let old_key_id = {
                let ledger = Ledger::open_read_only(&cli.ledger)?;
                resolve_key_id(ledger.state(), old)?
            };
            use base64::Engine;
            record(
                cli,
                propose,
                Event::KeyRotate(KeyRotate {
                    old_key_id,
                    name,
                    public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
                    reason: reason.clone(),
                }),
                rec,
            )
        }
        KeyCommand::Generate { name, dir, encrypt } => {
            let passphrase = if *encrypt {
                Some(new_passphrase()?)
            } else {
                None
            };
            let (paths, public) =
                keys::generate_with(dir, name, passphrase.as_deref().map(|p| p.as_str()))?;
            println!(
                "wrote {} (private, mode 0600) and {}; key id {}",
                paths.private.display(),
                paths.public.display(),
                hex::encode(key_id(&public))
            );
            Ok(0)
        }
        KeyCommand::Enroll {
            public_key,
            role,
            partner,
            name,
            rec,
        } => {
            let key = keys::load_public_key(public_key)?;
            let name = name.clone().unwrap_or_else(|| file_stem(public_key));
            use base64::Engine;
            record(
                cli,
                propose,
                Event::KeyEnroll(KeyEnroll {
                    name,
                    public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
                    role: role.clone(),
                    partner: partner.clone(),
                }),
                rec,
            )
        }
        KeyCommand::Revoke {
            key_id,
            reason,
            rec,
        } => {
            let full = {
                let ledger = Ledger::open_read_only(&cli.ledger)?;
                resolve_key_id(ledger.state(), key_id)?
            };
            record(
                cli,
                propose,
                Event::KeyRevoke(KeyRevoke {
                    key_id: full,
                    reason: reason.clone(),
                }),
                rec,
            )
        }
        KeyCommand::List { json } => {
            let ledger = Ledger::open_read_only(&cli.ledger)?;
            let keys: Vec<serde_json::Value> = ledger
                .state()
                .keys
                .values()
                .map(|k| {
                    serde_json::json!({
                        "key_id": hex::encode(k.key_id),
                        "name": k.name,
                        "role": k.role,
                        "partner": k.partner,
                        "status": if k.revoked_seq.is_some() { "revoked" } else { "active" },
                        "enrolled_seq": k.enrolled_seq,
                        "revoked_seq": k.revoked_seq,
                    })
                })
                .collect();
            if *json {
                print_json(&serde_json::json!({"format_version": 1, "keys": keys}));
            } else {
                let mut rows = vec![[
                    "key id", "name", "role", "partner", "status", "enrolled", "revoked",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()];
                for k in ledger.state().keys.values() {
                    rows.push(vec![
                        hex::encode(&k.key_id[..8]),
                        k.name.clone(),
                        k.role.clone(),
                        k.partner.clone().unwrap_or_else(|| "-".into()),
                        if k.revoked_seq.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                        .into(),
                        k.enrolled_seq.to_string(),
                        k.revoked_seq
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                print!("{}", query::render_table(&rows, 5));
            }
            Ok(0)
        }
    }
}

/// The full hex key id of the enrolled key whose id starts with `prefix`
/// (at least 8 hex digits, unambiguous).
fn resolve_key_id(state: &fundledger::state::State, prefix: &str) -> Result<String> {
    let prefix = prefix.to_ascii_lowercase();
    let matches: Vec<String> = state
        .keys
        .keys()
        .map(hex::encode)
        .filter(|k| k.starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] if prefix.len() >= 8 => Ok(one.clone()),
        [] => Err(
            Error::input(format!("no enrolled key id starts with {prefix:?}"))
                .with_hint("see `fundledger key list`"),
        ),
        _ => Err(Error::input(format!(
            "key id {prefix:?} is ambiguous or shorter than 8 hex digits"
        ))),
    }
}
