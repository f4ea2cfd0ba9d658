//! Signing policy: which roles may sign each entry kind, how many distinct
//! signers it needs (more above an amount), and when a partner's own key
//! must sign. A policy is itself a signed ledger entry (`policy.set`, or
//! the genesis entry); the one in force at an entry decides for it.
//! Format and default: schema/POLICY.md.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{Event, ROLES};

/// Kinds a policy must cover (every kind but genesis).
pub const POLICY_KINDS: &[&str] = &[
    "key.enroll",
    "key.revoke",
    "key.rotate",
    "policy.set",
    "attest",
    "fund.create",
    "partner.add",
    "startup.add",
    "commitment",
    "commitment.reduce",
    "call",
    "contribution",
    "investment",
    "valuation",
    "realization",
    "distribution",
    "fee",
    "expense",
    "reversal",
];

/// Kinds whose event names one partner (where `partner_key` applies).
const PARTNER_KINDS: &[&str] = &["commitment", "commitment.reduce", "contribution"];

/// Most signers a rule may ask for (an entry carries at most 16).
pub const POLICY_SIGNERS_MAX: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// One rule: for these kinds, these roles, this many distinct signers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub kinds: Vec<String>,
    pub roles: Vec<String>,
    /// Distinct signers with one of `roles` the entry needs.
    pub signers: u32,
    /// A stricter requirement above an amount in the fund's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<Threshold>,
    /// Whether the event's partner must sign with its own key:
    /// "required", or "if_enrolled" (when the partner has an active key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// A decimal amount in the fund's currency ("10000000").
    pub amount: String,
    /// Distinct signers needed when the event's amount is above `amount`.
    pub signers: u32,
}

fn rule(kinds: &[&str], roles: &[&str], signers: u32) -> Rule {
    Rule {
        kinds: kinds.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        signers,
        above: None,
        partner_key: None,
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::default_policy()
    }
}

impl Policy {
    /// The default policy `init` installs (schema/POLICY.md).
    pub fn default_policy() -> Policy {
        let admin = &["administrator"];
        let books = &["administrator", "recorder"];
        let mut big = rule(&["investment", "distribution"], books, 1);
        big.above = Some(Threshold {
            amount: "10000000".into(),
            signers: 2,
        });
        let mut commitment = rule(&["commitment", "commitment.reduce"], books, 1);
        commitment.partner_key = Some("if_enrolled".into());
        Policy {
            rules: vec![
                rule(
                    &["key.enroll", "key.revoke", "key.rotate", "policy.set"],
                    admin,
                    1,
                ),
                rule(&["attest"], &["administrator", "recorder", "auditor"], 1),
                rule(
                    &[
                        "fund.create",
                        "partner.add",
                        "startup.add",
                        "call",
                        "contribution",
                        "valuation",
                        "realization",
                        "fee",
                        "expense",
                        "reversal",
                    ],
                    books,
                    1,
                ),
                big,
                commitment,
            ],
        }
    }

    /// Check that the policy is well formed: every kind covered exactly
    /// once, known roles, sensible counts.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::rule(format!("policy: {m}")));
        let mut seen: Vec<&str> = Vec::new();
        for r in &self.rules {
            if r.kinds.is_empty() || r.roles.is_empty() {
                return bad("a rule needs kinds and roles".into());
            }
            for k in &r.kinds {
                if !POLICY_KINDS.contains(&k.as_str()) {
                    return bad(format!("unknown kind {k:?}"));
                }
                if seen.contains(&k.as_str()) {
                    return bad(format!("kind {k} appears in two rules"));
                }
                seen.push(k);
            }
            for role in &r.roles {
                if !ROLES.contains(&role.as_str()) {
                    return bad(format!("unknown role {role:?}"));
                }
            }
            if r.signers == 0 || r.signers > POLICY_SIGNERS_MAX {
                return bad(format!("signers must be 1 to {POLICY_SIGNERS_MAX}"));
            }
            if let Some(t) = &r.above {
                let amount: Decimal = t.amount.parse().map_err(|_| {
                    Error::rule(format!("policy: threshold {:?} is not a decimal", t.amount))
                })?;
                if amount <= Decimal::ZERO || amount.normalize().to_string() != t.amount {
                    return bad(format!(
                        "threshold {:?} must be a positive decimal without trailing zeros",
                        t.amount
                    ));
                }
                if t.signers <= r.signers || t.signers > POLICY_SIGNERS_MAX {
                    return bad(
                        "a threshold must ask for more signers than the rule, at most 16".into(),
                    );
                }
            }
            match r.partner_key.as_deref() {
                None => {}
                Some("required" | "if_enrolled") => {
                    if let Some(k) = r
                        .kinds
                        .iter()
                        .find(|k| !PARTNER_KINDS.contains(&k.as_str()))
                    {
                        return bad(format!(
                            "partner_key applies only to kinds naming a partner, not {k}"
                        ));
                    }
                }
                Some(other) => {
                    return bad(format!(
                        "partner_key {other:?} must be required or if_enrolled"
                    ))
                }
            }
        }
        if let Some(k) = POLICY_KINDS.iter().find(|k| !seen.contains(k)) {
            return bad(format!("kind {k} is not covered by any rule"));
        }
        Ok(())
    }

    /// The rule for a kind.
    pub fn rule_for(&self, kind: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.kinds.iter().any(|k| k == kind))
    }
}

/// The amount a threshold compares, and the partner a partner key signs for.
pub fn event_amount(event: &Event) -> Option<&str> {
    match event {
        Event::Commitment(e) | Event::CommitmentReduce(e) => Some(&e.amount),
        Event::Call(e) => Some(&e.amount),
        Event::Contribution(e) => Some(&e.amount),
        Event::Investment(e) => Some(&e.amount),
        Event::Valuation(e) => Some(&e.fair_value),
        Event::Realization(e) => Some(&e.proceeds),
        Event::Distribution(e) | Event::Fee(e) | Event::Expense(e) => Some(&e.amount),
        _ => None,
    }
}

/// The partner an event is about (for `partner_key`).
pub fn event_partner(event: &Event) -> Option<&str> {
    match event {
        Event::Commitment(e) | Event::CommitmentReduce(e) => Some(&e.partner),
        Event::Contribution(e) => Some(&e.partner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid_and_covers_every_kind() {
        Policy::default_policy().validate().unwrap();
    }

    #[test]
    fn invalid_policies_are_refused() {
        let mut p = Policy::default_policy();
        p.rules.pop();
        assert!(p.validate().unwrap_err().message().contains("not covered"));
        let mut p = Policy::default_policy();
        p.rules[0].roles.push("king".into());
        assert!(p.validate().is_err());
        let mut p = Policy::default_policy();
        p.rules[1].kinds.push("key.enroll".into());
        assert!(p.validate().unwrap_err().message().contains("two rules"));
        let mut p = Policy::default_policy();
        p.rules[3].above.as_mut().unwrap().signers = 1;
        assert!(p.validate().is_err());
        let mut p = Policy::default_policy();
        p.rules[3].partner_key = Some("required".into());
        assert!(p.validate().is_err());
        let mut p = Policy::default_policy();
        p.rules[0].signers = 0;
        assert!(p.validate().is_err());
    }
}
