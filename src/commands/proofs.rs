//! Checkpoints, proofs and witnesses: `checkpoint`, `prove`, `verify-proof`
//! and `witness`.

use std::path::{Path, PathBuf};

use super::{file_stem, key_path, load_key, print_json, read_text, write_or_print};
use crate::cli::{Cli, ProveCommand, WitnessCommand};
use fundledger::error::Result;
use fundledger::keys;
use fundledger::ledger::{now_unix_ms, Ledger};

/// `checkpoint`: sign the ledger's checkpoint with --key and record it.
pub(super) fn checkpoint(cli: &Cli, out: &Option<PathBuf>) -> Result<u8> {
    let key = load_key(key_path(cli)?)?;
    let mut ledger = Ledger::open(&cli.ledger)?;
    let (cp, note) = fundledger::checkpoint::sign_checkpoint(&ledger, &key)?;
    ledger.record_checkpoint(cp.tree_size, &note, now_unix_ms())?;
    write_or_print(out, &note)?;
    if out.is_some() {
        println!(
            "signed checkpoint of tree size {} root {}",
            cp.tree_size,
            hex::encode(cp.root_hash)
        );
    }
    Ok(0)
}

/// `prove inclusion` and `prove consistency`.
pub(super) fn prove(cli: &Cli, prove: &ProveCommand) -> Result<u8> {
    let ledger = Ledger::open_read_only(&cli.ledger)?;
    match prove {
        ProveCommand::Inclusion { seq, size, json } => {
            let p = fundledger::checkpoint::prove_inclusion(&ledger, *seq, *size)?;
            if *json {
                print_json(&p);
            } else {
                println!(
                    "inclusion proof: entry {} in tree of size {}",
                    p.leaf_index, p.tree_size
                );
                println!("origin    {}", p.origin);
                println!("leaf_hash {}", p.leaf_hash);
                println!("root_hash {}", p.root_hash);
                for h in &p.proof {
                    println!("proof     {h}");
                }
            }
        }
        ProveCommand::Consistency { old, new, json } => {
            let p = fundledger::checkpoint::prove_consistency(&ledger, *old, *new)?;
            if *json {
                print_json(&p);
            } else {
                println!(
                    "consistency proof: tree of size {} extends size {}",
                    p.new_size, p.old_size
                );
                println!("origin    {}", p.origin);
                println!("old_root  {}", p.old_root);
                println!("new_root  {}", p.new_root);
                for h in &p.proof {
                    println!("proof     {h}");
                }
            }
        }
    }
    Ok(0)
}

/// `verify-proof`: check a proof against signed checkpoints, with no ledger.
pub(super) fn verify_proof(
    proof: &Path,
    checkpoint: &Path,
    old_checkpoint: Option<&Path>,
    trusted_key: &[PathBuf],
    vkey: &[String],
    json: bool,
) -> Result<u8> {
    let cp_text = read_text(checkpoint)?;
    let origin = fundledger::checkpoint::note_origin(&cp_text)?;
    let verifiers = fundledger::checkpoint::trusted_verifiers(&origin, trusted_key, vkey)?;
    let old = old_checkpoint.map(read_text).transpose()?;
    let verdict = fundledger::checkpoint::verify_proof(
        &read_text(proof)?,
        &cp_text,
        old.as_deref(),
        &verifiers,
    )?;
    if json {
        print_json(&verdict);
    } else {
        println!("verified: {}", verdict.detail);
    }
    Ok(0)
}

/// `witness cosign` and `witness record`.
pub(super) fn witness(cli: &Cli, command: &WitnessCommand) -> Result<u8> {
    match command {
        WitnessCommand::Cosign {
            checkpoint,
            state,
            log_key,
            proof,
            name,
            out,
        } => {
            let key_file = key_path(cli)?;
            let key = load_key(key_file)?;
            let log_keys = log_key
                .iter()
                .map(|p| keys::load_public_key(p))
                .collect::<Result<Vec<_>>>()?;
            let proof = proof.as_deref().map(read_text).transpose()?;
            let name = name.clone().unwrap_or_else(|| file_stem(key_file));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let cosigned =
                fundledger::checkpoint::witness_cosign(&fundledger::checkpoint::WitnessRequest {
                    checkpoint: &read_text(checkpoint)?,
                    log_keys: &log_keys,
                    proof: proof.as_deref(),
                    key: &key,
                    name: &name,
                    state_dir: state,
                    now_unix_s: now,
                })?;
            write_or_print(out, &cosigned)?;
            Ok(0)
        }
        WitnessCommand::Record { checkpoint } => {
            let mut ledger = Ledger::open(&cli.ledger)?;
            let cp = fundledger::checkpoint::record_checkpoint(
                &mut ledger,
                &read_text(checkpoint)?,
                now_unix_ms(),
            )?;
            println!(
                "recorded the checkpoint of tree size {} in the ledger's history",
                cp.tree_size
            );
            Ok(0)
        }
    }
}
