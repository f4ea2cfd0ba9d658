//! Entry bodies: the typed events each entry kind carries, and their
//! canonical JSON form (schema/FORMAT.md "Body", schema/EVENTS.md).
//!
//! A body is `{"event": {...}, "idempotency_key": "...", "postings": [...]}`
//! where `idempotency_key` and `postings` are omitted when absent or empty.
//! The event holds what the recorder asked for; the postings are what the
//! ledger booked for it, computed by [`crate::state`] and re-computed by
//! verify. Amounts are strings in canonical form (see [`crate::money`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical_json;
use crate::error::{Error, Result};

/// Every event kind. The serde name is the entry kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    #[serde(rename = "genesis")]
    Genesis(Genesis),
    #[serde(rename = "key.enroll")]
    KeyEnroll(KeyEnroll),
    #[serde(rename = "key.revoke")]
    KeyRevoke(KeyRevoke),
    #[serde(rename = "key.rotate")]
    KeyRotate(KeyRotate),
    #[serde(rename = "policy.set")]
    PolicySet(PolicySet),
    #[serde(rename = "attest")]
    Attest(Attest),
    #[serde(rename = "fund.create")]
    FundCreate(FundCreate),
    #[serde(rename = "partner.add")]
    PartnerAdd(PartnerAdd),
    #[serde(rename = "startup.add")]
    StartupAdd(StartupAdd),
    #[serde(rename = "commitment")]
    Commitment(FundAmount),
    #[serde(rename = "commitment.reduce")]
    CommitmentReduce(FundAmount),
    #[serde(rename = "call")]
    Call(Call),
    #[serde(rename = "contribution")]
    Contribution(Contribution),
    #[serde(rename = "investment")]
    Investment(StartupAmount),
    #[serde(rename = "valuation")]
    Valuation(Valuation),
    #[serde(rename = "realization")]
    Realization(Realization),
    #[serde(rename = "distribution")]
    Distribution(FundTotal),
    #[serde(rename = "fee")]
    Fee(FundTotal),
    #[serde(rename = "expense")]
    Expense(FundTotal),
    #[serde(rename = "reversal")]
    Reversal(Reversal),
}

/// The first entry: names the founding administrator key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub key: KeyEnroll,
    /// The signing policy in force from the start (schema/POLICY.md); the
    /// built-in default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::Policy>,
}

/// Replace a key by a new one with the same role (and partner): the new
/// key is enrolled and the old one revoked by this entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotate {
    /// Hex key id of the key being replaced.
    pub old_key_id: String,
    /// Name of the new key.
    pub name: String,
    /// Standard base64 of the new raw 32-byte Ed25519 public key.
    pub public_key: String,
    pub reason: String,
}

/// Put a new signing policy in force from the next entry on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySet {
    pub policy: crate::policy::Policy,
}

/// Roles a key can hold (issue "identities"): what it may sign.
pub const ROLES: &[&str] = &["administrator", "recorder", "partner", "auditor", "witness"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEnroll {
    /// A human name for the key ("cfo-office", "auditor-kpmg").
    pub name: String,
    /// Standard base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevoke {
    /// Lower-case hex of the key id (SHA-256 of the public key).
    pub key_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attest {
    pub file_name: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub size: u64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundCreate {
    pub fund: String,
    pub name: String,
    /// ISO 4217 code of the fund's base currency.
    pub currency: String,
    pub jurisdiction: String,
    pub vintage: u32,
    /// Annual management fee rate as a decimal fraction ("0.02").
    pub management_fee_rate: String,
    /// What the fee rate applies to: committed | paid_in | invested.
    pub management_fee_basis: String,
    pub date: String,
}

/// Partner types; the first three are public money.
pub const PARTNER_TYPES: &[&str] = &[
    "government",
    "sovereign_fund",
    "development_bank",
    "private",
    "other",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerAdd {
    pub partner: String,
    pub legal_name: String,
    pub partner_type: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lei: Option<String>,
    pub date: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupAdd {
    pub startup: String,
    pub name: String,
    pub country: String,
    pub sector: String,
    pub date: String,
}

/// A commitment or its reduction: one partner, one amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundAmount {
    pub fund: String,
    pub partner: String,
    pub amount: String,
    pub currency: String,
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// Purposes of a capital call.
pub const CALL_PURPOSES: &[&str] = &["investment", "management_fee", "expense"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub fund: String,
    pub amount: String,
    pub currency: String,
    pub purpose: String,
    /// The notice date; it is the call's effective date.
    pub date: String,
    pub due_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    pub fund: String,
    pub partner: String,
    /// The fund's call number (1, 2, ... in recording order).
    pub call: u64,
    pub amount: String,
    pub currency: String,
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupAmount {
    pub fund: String,
    pub startup: String,
    pub amount: String,
    pub currency: String,
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Valuation {
    pub fund: String,
    pub startup: String,
    pub fair_value: String,
    pub currency: String,
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Realization {
    pub fund: String,
    pub startup: String,
    pub proceeds: String,
    pub cost_released: String,
    pub currency: String,
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// A fund-level amount split across partners (distribution, fee, expense).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundTotal {
    pub fund: String,
    pub amount: String,
    pub currency: String,
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reversal {
    /// Sequence number of the entry this one negates.
    pub seq: u64,
    pub reason: String,
    pub date: String,
}

/// Debit or credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }
}

/// One booked line: an account (with its partner or startup dimension), a
/// side and a positive amount in the fund's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posting {
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<String>,
    pub side: Side,
    pub amount: String,
    pub currency: String,
}

/// A decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub event: Event,
    pub idempotency_key: Option<String>,
    pub postings: Vec<Posting>,
}

/// Longest idempotency key, in bytes.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 128;

/// Check an idempotency key: 1..=128 printable ASCII characters, no spaces.
pub fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > IDEMPOTENCY_KEY_LEN_MAX
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::input(format!(
            "idempotency key {key:?} must be 1 to {IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

impl Event {
    /// The entry kind of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Genesis(_) => "genesis",
            Event::KeyEnroll(_) => "key.enroll",
            Event::KeyRevoke(_) => "key.revoke",
            Event::KeyRotate(_) => "key.rotate",
            Event::PolicySet(_) => "policy.set",
            Event::Attest(_) => "attest",
            Event::FundCreate(_) => "fund.create",
            Event::PartnerAdd(_) => "partner.add",
            Event::StartupAdd(_) => "startup.add",
            Event::Commitment(_) => "commitment",
            Event::CommitmentReduce(_) => "commitment.reduce",
            Event::Call(_) => "call",
            Event::Contribution(_) => "contribution",
            Event::Investment(_) => "investment",
            Event::Valuation(_) => "valuation",
            Event::Realization(_) => "realization",
            Event::Distribution(_) => "distribution",
            Event::Fee(_) => "fee",
            Event::Expense(_) => "expense",
            Event::Reversal(_) => "reversal",
        }
    }

    /// The event's own object, without the kind tag.
    pub fn to_value(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) if map.len() == 1 => map
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Canonical JSON of the event object: what idempotency compares.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>> {
        canonical_json::to_vec_typed(&EventObject(self))
    }

    /// The fund an event belongs to, if it is a fund event.
    pub fn fund(&self) -> Option<&str> {
        match self {
            Event::FundCreate(e) => Some(&e.fund),
            Event::Commitment(e) | Event::CommitmentReduce(e) => Some(&e.fund),
            Event::Call(e) => Some(&e.fund),
            Event::Contribution(e) => Some(&e.fund),
            Event::Investment(e) => Some(&e.fund),
            Event::Valuation(e) => Some(&e.fund),
            Event::Realization(e) => Some(&e.fund),
            Event::Distribution(e) | Event::Fee(e) | Event::Expense(e) => Some(&e.fund),
            _ => None,
        }
    }

    /// The effective date (ISO 8601 calendar date), for events that have one.
    pub fn date(&self) -> Option<&str> {
        match self {
            Event::FundCreate(e) => Some(&e.date),
            Event::PartnerAdd(e) => Some(&e.date),
            Event::StartupAdd(e) => Some(&e.date),
            Event::Commitment(e) | Event::CommitmentReduce(e) => Some(&e.date),
            Event::Call(e) => Some(&e.date),
            Event::Contribution(e) => Some(&e.date),
            Event::Investment(e) => Some(&e.date),
            Event::Valuation(e) => Some(&e.date),
            Event::Realization(e) => Some(&e.date),
            Event::Distribution(e) | Event::Fee(e) | Event::Expense(e) => Some(&e.date),
            Event::Reversal(e) => Some(&e.date),
            _ => None,
        }
    }
}

/// An event's own object, without the kind tag.
struct EventObject<'a>(&'a Event);

impl Serialize for EventObject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Event::Genesis(e) => e.serialize(s),
            Event::KeyEnroll(e) => e.serialize(s),
            Event::KeyRevoke(e) => e.serialize(s),
            Event::KeyRotate(e) => e.serialize(s),
            Event::PolicySet(e) => e.serialize(s),
            Event::Attest(e) => e.serialize(s),
            Event::FundCreate(e) => e.serialize(s),
            Event::PartnerAdd(e) => e.serialize(s),
            Event::StartupAdd(e) => e.serialize(s),
            Event::Commitment(e) | Event::CommitmentReduce(e) => e.serialize(s),
            Event::Call(e) => e.serialize(s),
            Event::Contribution(e) => e.serialize(s),
            Event::Investment(e) => e.serialize(s),
            Event::Valuation(e) => e.serialize(s),
            Event::Realization(e) => e.serialize(s),
            Event::Distribution(e) | Event::Fee(e) | Event::Expense(e) => e.serialize(s),
            Event::Reversal(e) => e.serialize(s),
        }
    }
}

/// A body as read: the event object is kept raw until its kind is known.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyIn<'a> {
    #[serde(borrow)]
    event: &'a serde_json::value::RawValue,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    postings: Option<Vec<Posting>>,
}

impl Body {
    /// The canonical JSON bytes of this body.
    pub fn encode(&self) -> Result<Vec<u8>> {
        Body::encode_parts(&self.event, self.idempotency_key.as_deref(), &self.postings)
    }

    /// The canonical JSON bytes of the body made of these parts.
    pub fn encode_parts(
        event: &Event,
        idempotency_key: Option<&str>,
        postings: &[Posting],
    ) -> Result<Vec<u8>> {
        Body::encode_with_postings(event, idempotency_key, encode_postings(postings).as_deref())
    }

    /// The canonical JSON bytes of the body made of these parts, its
    /// postings given as their canonical array ([`encode_postings`]), None
    /// for none. Written directly: a body's members sort as event,
    /// idempotency_key, postings.
    pub fn encode_with_postings(
        event: &Event,
        idempotency_key: Option<&str>,
        postings: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(256 + postings.map_or(0, <[u8]>::len));
        out.extend_from_slice(b"{\"event\":");
        canonical_json::write_typed(&mut out, &EventObject(event))?;
        if let Some(key) = idempotency_key {
            out.extend_from_slice(b",\"idempotency_key\":");
            canonical_json::write_string(&mut out, key);
        }
        if let Some(postings) = postings {
            out.extend_from_slice(POSTINGS_MEMBER);
            out.extend_from_slice(postings);
        }
        out.push(b'}');
        Ok(out)
    }

    /// Decode a body of the given kind, strictly: unknown kinds and fields,
    /// and anything not in canonical form, are errors.
    pub fn decode(kind: &str, bytes: &[u8]) -> Result<Body> {
        // Parse once, straight into the types; the typed re-encoding below
        // must give back exactly these bytes, which is the canonical-form
        // check.
        let raw: BodyIn<'_> = serde_json::from_slice(bytes)
            .map_err(|e| Error::format(format!("body is not a valid body object: {e}")))?;
        let body = Body {
            event: decode_event(kind, raw.event)?,
            idempotency_key: checked_key(raw.idempotency_key)?,
            postings: raw.postings.unwrap_or_default(),
        };
        // The typed round trip must give back the same bytes: this rejects
        // an empty postings array and any value the types would normalise.
        if body.encode()? != bytes {
            return Err(Error::format("body is not in canonical form"));
        }
        Ok(body)
    }
}

/// A body decoded as strictly as [`Body::decode`] does, except that its
/// postings are left as bytes: the caller must compare them with the
/// canonical encoding of the postings it expects
/// ([`encode_postings`]), which checks their form at the same time. Verify
/// decodes bodies this way, since it derives every entry's postings again.
#[derive(Debug)]
pub struct BodyRawPostings {
    pub event: Event,
    pub idempotency_key: Option<String>,
    /// Where the postings array lies in the body's bytes; None when the
    /// body has no postings member.
    pub postings: Option<std::ops::Range<usize>>,
}

/// A body as read, its postings kept raw.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyInRawPostings<'a> {
    #[serde(borrow)]
    event: &'a serde_json::value::RawValue,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default, borrow)]
    postings: Option<&'a serde_json::value::RawValue>,
}

/// The member that follows the event and idempotency key, when present.
const POSTINGS_MEMBER: &[u8] = b",\"postings\":";

impl BodyRawPostings {
    /// Decode a body of the given kind (see [`BodyRawPostings`]).
    pub fn decode(kind: &str, bytes: &[u8]) -> Result<BodyRawPostings> {
        let raw: BodyInRawPostings<'_> = serde_json::from_slice(bytes)
            .map_err(|e| Error::format(format!("body is not a valid body object: {e}")))?;
        let event = decode_event(kind, raw.event)?;
        let idempotency_key = checked_key(raw.idempotency_key)?;
        // Members sort as event, idempotency_key, postings: the bytes must
        // be the canonical body without postings, with the postings member
        // (if any) inserted before the closing brace.
        let head = Body::encode_parts(&event, idempotency_key.as_deref(), &[])?;
        let open = &head[..head.len() - 1];
        let postings = match raw.postings {
            None if bytes == head.as_slice() => None,
            Some(p)
                if bytes.len() == open.len() + POSTINGS_MEMBER.len() + p.get().len() + 1
                    && bytes.starts_with(open)
                    && bytes[open.len()..].starts_with(POSTINGS_MEMBER)
                    && bytes.ends_with(b"}") =>
            {
                let start = open.len() + POSTINGS_MEMBER.len();
                let range = start..bytes.len() - 1;
                if &bytes[range.clone()] != p.get().as_bytes() {
                    return Err(Error::format("body is not in canonical form"));
                }
                Some(range)
            }
            _ => return Err(Error::format("body is not in canonical form")),
        };
        Ok(BodyRawPostings {
            event,
            idempotency_key,
            postings,
        })
    }
}

/// The bytes a body's postings member holds for these postings: None for
/// none (the member is left out), else their canonical JSON array.
pub fn encode_postings(postings: &[Posting]) -> Option<Vec<u8>> {
    if postings.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(96 * postings.len());
    write_postings(&mut out, postings.iter().map(Posting::as_ref));
    Some(out)
}

/// A posting's members, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct PostingRef<'a> {
    pub account: &'a str,
    pub partner: Option<&'a str>,
    pub startup: Option<&'a str>,
    pub side: Side,
    pub amount: AmountRef<'a>,
    pub currency: &'a str,
}

/// A posting's amount: as written, or a value to write in its currency's
/// canonical form ([`crate::money::format_amount`]).
#[derive(Debug, Clone, Copy)]
pub enum AmountRef<'a> {
    Text(&'a str),
    Value(rust_decimal::Decimal, crate::money::Currency),
}

impl AmountRef<'_> {
    /// Append the amount's text to `out`.
    fn write(self, out: &mut String) {
        match self {
            AmountRef::Text(text) => out.push_str(text),
            AmountRef::Value(value, currency) => crate::money::write_amount(out, value, currency),
        }
    }
}

impl PostingRef<'_> {
    pub fn to_owned(self) -> Posting {
        let mut amount = String::new();
        self.amount.write(&mut amount);
        Posting {
            account: self.account.to_string(),
            partner: self.partner.map(str::to_string),
            startup: self.startup.map(str::to_string),
            side: self.side,
            amount,
            currency: self.currency.to_string(),
        }
    }
}

impl Posting {
    pub fn as_ref(&self) -> PostingRef<'_> {
        PostingRef {
            account: &self.account,
            partner: self.partner.as_deref(),
            startup: self.startup.as_deref(),
            side: self.side,
            amount: AmountRef::Text(&self.amount),
            currency: &self.currency,
        }
    }
}

/// Append the canonical JSON array of `postings` (schema/FORMAT.md): the
/// bytes [`canonical_json::to_vec_typed`] writes for the same postings,
/// written directly. Members go in canonical (byte) order, which for a
/// posting is account, amount, currency, partner, side, startup.
pub fn write_postings<'a>(out: &mut Vec<u8>, postings: impl IntoIterator<Item = PostingRef<'a>>) {
    // Room for any amount: 29 digits, a sign and a point.
    let mut amount = String::with_capacity(32);
    out.push(b'[');
    for (i, p) in postings.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"account\":");
        canonical_json::write_string(out, p.account);
        out.extend_from_slice(b",\"amount\":");
        amount.clear();
        p.amount.write(&mut amount);
        canonical_json::write_string(out, &amount);
        out.extend_from_slice(b",\"currency\":");
        canonical_json::write_string(out, p.currency);
        if let Some(partner) = p.partner {
            out.extend_from_slice(b",\"partner\":");
            canonical_json::write_string(out, partner);
        }
        out.extend_from_slice(b",\"side\":");
        canonical_json::write_string(out, p.side.as_str());
        if let Some(startup) = p.startup {
            out.extend_from_slice(b",\"startup\":");
            canonical_json::write_string(out, startup);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// Decode an event object of the given kind.
pub(crate) fn decode_event(kind: &str, raw: &serde_json::value::RawValue) -> Result<Event> {
    Event::deserialize(Tagged {
        kind,
        event: raw.get(),
    })
    .map_err(|e| Error::format(format!("{kind} event does not decode: {e}")))
}

/// An event as `Event`'s externally tagged form, `{kind: event}`, without
/// writing that object out: the kind names the variant, and the variant's
/// fields are read straight from the event's JSON.
struct Tagged<'a> {
    kind: &'a str,
    event: &'a str,
}

impl<'de> serde::Deserializer<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, serde_json::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> serde::de::EnumAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<V: serde::de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> std::result::Result<(V::Value, Self), serde_json::Error> {
        let kind = serde::de::value::BorrowedStrDeserializer::new(self.kind);
        Ok((seed.deserialize(kind)?, self))
    }
}

impl<'de> serde::de::VariantAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> std::result::Result<(), serde_json::Error> {
        Err(serde::de::Error::custom("every event kind has fields"))
    }

    fn newtype_variant_seed<T: serde::de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> std::result::Result<T::Value, serde_json::Error> {
        let mut json = serde_json::Deserializer::from_str(self.event);
        let value = seed.deserialize(&mut json)?;
        json.end()?;
        Ok(value)
    }

    fn tuple_variant<V: serde::de::Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> std::result::Result<V::Value, serde_json::Error> {
        Err(serde::de::Error::custom("every event kind is an object"))
    }

    fn struct_variant<V: serde::de::Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> std::result::Result<V::Value, serde_json::Error> {
        Err(serde::de::Error::custom("every event kind is an object"))
    }
}

/// An idempotency key read from a body, checked.
fn checked_key(key: Option<String>) -> Result<Option<String>> {
    if let Some(k) = &key {
        check_idempotency_key(k).map_err(|e| Error::format(e.message().to_string()))?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attest() -> Event {
        Event::Attest(Attest {
            file_name: "minutes.pdf".into(),
            sha256: "00".repeat(32),
            size: 10,
            note: "board minutes".into(),
        })
    }

    /// A body as the generic canonical writer writes it (members sorted
    /// by the writer): the reference for [`Body::encode_with_postings`].
    #[derive(Serialize)]
    struct BodyOut<'a> {
        event: EventObject<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<&'a str>,
        #[serde(skip_serializing_if = "<[Posting]>::is_empty")]
        postings: &'a [Posting],
    }

    /// The direct body writer gives the generic canonical writer's bytes,
    /// with and without a key and postings.
    #[test]
    fn body_writer_matches_the_canonical_writer() {
        let posting = Posting {
            account: "capital".into(),
            partner: Some("p\"1".into()),
            startup: None,
            side: Side::Credit,
            amount: "10.00".into(),
            currency: "USD".into(),
        };
        for event in [
            attest(),
            Event::Reversal(Reversal {
                seq: 3,
                reason: "wrong \\ call".into(),
                date: "2026-01-02".into(),
            }),
        ] {
            for key in [None, Some("key-1"), Some("é\u{1}")] {
                for postings in [
                    vec![],
                    vec![posting.clone()],
                    vec![posting.clone(), posting.clone()],
                ] {
                    let expected = canonical_json::to_vec_typed(&BodyOut {
                        event: EventObject(&event),
                        idempotency_key: key,
                        postings: &postings,
                    })
                    .unwrap();
                    assert_eq!(
                        Body::encode_parts(&event, key, &postings).unwrap(),
                        expected
                    );
                }
            }
        }
    }

    /// The hand-written postings writer gives the bytes of the generic
    /// canonical writer, for any members (escapes included).
    #[test]
    fn postings_writer_matches_the_canonical_writer() {
        use proptest::prelude::*;
        let text =
            || proptest::string::string_regex("(\\PC|[\"\\\\\n\t\u{1}\u{7f}é€]){0,12}").unwrap();
        let posting = (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            any::<bool>(),
            text(),
            text(),
        )
            .prop_map(
                |(account, partner, startup, debit, amount, currency)| Posting {
                    account,
                    partner,
                    startup,
                    side: if debit { Side::Debit } else { Side::Credit },
                    amount,
                    currency,
                },
            );
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&proptest::collection::vec(posting, 0..5), |postings| {
                let expected = if postings.is_empty() {
                    None
                } else {
                    Some(canonical_json::to_vec_typed(&postings).unwrap())
                };
                prop_assert_eq!(encode_postings(&postings), expected);
                Ok(())
            })
            .unwrap();
    }

    /// What verify's decoder concludes about a body: Ok((event, key,
    /// postings)) only when its postings bytes are also the canonical
    /// encoding of the postings they spell (the comparison verify makes
    /// with the postings it derives).
    fn raw_postings_verdict(kind: &str, bytes: &[u8]) -> Option<Body> {
        let raw = BodyRawPostings::decode(kind, bytes).ok()?;
        let postings: Vec<Posting> = match &raw.postings {
            None => vec![],
            Some(range) => serde_json::from_slice(&bytes[range.clone()]).ok()?,
        };
        let canonical = encode_postings(&postings);
        (canonical.as_deref() == raw.postings.map(|r| &bytes[r])).then_some(Body {
            event: raw.event,
            idempotency_key: raw.idempotency_key,
            postings,
        })
    }

    /// Verify's decoder (postings left as bytes, compared with a canonical
    /// encoding) accepts exactly the bodies the strict decoder accepts.
    #[test]
    fn raw_postings_decoder_agrees_with_the_strict_decoder() {
        let posting = |account: &str, side: Side| Posting {
            account: account.into(),
            partner: Some("p1".into()),
            startup: None,
            side,
            amount: "100.00".into(),
            currency: "USD".into(),
        };
        let bodies = [
            Body {
                event: attest(),
                idempotency_key: None,
                postings: vec![],
            },
            Body {
                event: attest(),
                idempotency_key: Some("key-1".into()),
                postings: vec![],
            },
            Body {
                event: attest(),
                idempotency_key: None,
                postings: vec![
                    posting("cash", Side::Debit),
                    posting("capital", Side::Credit),
                ],
            },
            Body {
                event: attest(),
                idempotency_key: Some("key-2".into()),
                postings: vec![posting("cash", Side::Debit)],
            },
        ];
        for body in bodies {
            let good = String::from_utf8(body.encode().unwrap()).unwrap();
            let mut spellings = vec![
                good.clone(),
                good.replacen(r#""size":10"#, r#""size": 10"#, 1),
                good.replacen('{', "{ ", 1),
                format!("{good} "),
                good.replacen(r#""event":"#, r#""extra":1,"event":"#, 1),
                good.replacen(r#","postings":"#, r#" ,"postings":"#, 1),
                good.replacen(r#","postings":["#, r#","postings":[ "#, 1),
                good.replacen(r#""amount":"100.00""#, r#""amount":"100.0""#, 1),
                // A posting's members out of order, and one twice.
                good.replacen(r#","side":"debit"}"#, "}", 1).replacen(
                    r#""account":"cash","#,
                    r#""account":"cash","side":"debit","#,
                    1,
                ),
                good.replacen(
                    r#""account":"cash","#,
                    r#""account":"cash","account":"cash","#,
                    1,
                ),
                good.replacen(
                    r#""idempotency_key":"key-1""#,
                    r#""idempotency_key":"key 1""#,
                    1,
                ),
            ];
            let stripped = good.strip_suffix('}').unwrap().to_string();
            spellings.push(format!("{stripped},\"postings\":[]}}"));
            spellings.push(format!("{stripped},\"postings\":null}}"));
            if body.postings.is_empty() {
                spellings.push(format!(
                    "{stripped},\"postings\":{}}}",
                    String::from_utf8(
                        canonical_json::to_vec_typed(&[posting("cash", Side::Debit)]).unwrap()
                    )
                    .unwrap()
                ));
            } else {
                // The postings moved before the idempotency key or event.
                let (open, postings) = stripped.split_once(r#","postings":"#).unwrap();
                spellings.push(format!("{{\"postings\":{postings},{}}}", &open[1..]));
            }
            for spelling in spellings {
                let strict = Body::decode("attest", spelling.as_bytes()).ok();
                assert_eq!(
                    raw_postings_verdict("attest", spelling.as_bytes()),
                    strict,
                    "{spelling}"
                );
            }
            assert_eq!(raw_postings_verdict("attest", good.as_bytes()), Some(body));
        }
    }

    #[test]
    fn body_round_trips_and_omits_empty_fields() {
        let body = Body {
            event: attest(),
            idempotency_key: None,
            postings: vec![],
        };
        let bytes = body.encode().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("postings"));
        assert_eq!(Body::decode("attest", &bytes).unwrap(), body);
    }

    /// Decoding re-encodes the typed body and requires the same bytes: every
    /// other spelling of the same JSON is refused (schema/FORMAT.md 3).
    #[test]
    fn decode_rejects_non_canonical_spellings() {
        let body = Body {
            event: attest(),
            idempotency_key: None,
            postings: vec![],
        };
        let good = String::from_utf8(body.encode().unwrap()).unwrap();
        assert!(Body::decode("attest", good.as_bytes()).is_ok());
        let variants = [
            good.replacen(r#""file_name":"minutes.pdf","#, "", 1)
                .replacen(r#""size":10"#, r#""size":10,"file_name":"minutes.pdf""#, 1),
            good.replacen(r#""size":10"#, r#""size": 10"#, 1),
            good.replacen(r#""size":10"#, r#""size":10,"size":10"#, 1),
            good.replacen("minutes.pdf", "minute\\u0073.pdf", 1),
            good.replacen("minutes.pdf", "minutes\\/.pdf", 1),
            good.replacen(r#""size":10"#, r#""size":10.0"#, 1),
            good.replacen(r#""size":10"#, r#""size":1e1"#, 1),
            good.replacen(r#""size":10"#, r#""size":010"#, 1),
            good.replacen(r#""size":10"#, r#""size":null"#, 1),
            format!("{good}\n"),
        ];
        for bad in variants {
            assert_ne!(bad, good);
            assert!(
                Body::decode("attest", bad.as_bytes()).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn decode_rejects_unknown_kind_field_and_empty_postings() {
        let body = Body {
            event: attest(),
            idempotency_key: Some("k1".into()),
            postings: vec![],
        };
        let bytes = body.encode().unwrap();
        let unknown = Body::decode("no.such.kind", &bytes).unwrap_err();
        assert!(
            unknown.message().contains("unknown variant `no.such.kind`"),
            "{unknown}"
        );
        assert!(Body::decode("\"attest\"", &bytes).is_err());
        assert!(Body::decode("attest ", &bytes).is_err());
        assert!(Body::decode("fee", &bytes).is_err());
        let text = String::from_utf8(bytes).unwrap();
        let extra = text.replacen("\"idempotency_key\"", "\"extra\":1,\"idempotency_key\"", 1);
        assert!(Body::decode("attest", extra.as_bytes()).is_err());
        let empty = text.replacen("\"k1\"}", "\"k1\",\"postings\":[]}", 1);
        assert!(Body::decode("attest", empty.as_bytes()).is_err());
        let unknown_event_field = text.replacen("\"note\"", "\"nope\":\"x\",\"note\"", 1);
        assert!(Body::decode("attest", unknown_event_field.as_bytes()).is_err());
    }
}
