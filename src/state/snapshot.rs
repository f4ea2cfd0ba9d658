//! The state snapshot encoding, format version 2 (schema/FORMAT.md
//! section 7): compact binary, written straight into its output. A reader
//! builds the state from the bytes, then re-encodes it into a writer that
//! compares with those bytes (no second copy): one spelling only.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::*;
use crate::canonical_json;

/// Version of the state snapshot encoding (schema/FORMAT.md section 7).
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;

/// Calls per stored piece of a snapshot (schema/FORMAT.md section 7):
/// the calls of a fund are cut into pieces of this many, so that a
/// snapshot of a large ledger rewrites only the pieces whose calls changed
/// (about 170 KB each for ten partners) instead of every call.
const CALLS_PER_PIECE: usize = 1024;

/// The block of the snapshot's calls (a piece) that holds call `index`
/// (from 0) of its fund.
pub(super) fn call_block(index: usize) -> usize {
    index / CALLS_PER_PIECE
}

/// A piece of a snapshot, as [`State::write_snapshot_pieces`] hands it to
/// its sink.
pub enum Piece<'a> {
    /// Bytes to store; the sink returns their name.
    Bytes(&'a [u8]),
    /// The piece of this name stands for the next bytes, if it is stored
    /// (a block of calls unchanged since its piece was stored): the sink
    /// returns the name when it holds the piece, None when the bytes must
    /// be handed over after all.
    Stored(&'a [u8; 32]),
}

fn snapshot_error(what: impl std::fmt::Display) -> Error {
    Error::format(format!("the state snapshot is malformed: {what}"))
}

fn encode_error(e: io::Error) -> Error {
    Error::format(format!("cannot encode the state snapshot: {e}"))
}

/// Position of each account in [`Account::ALL`]: its code in a snapshot.
fn account_code(account: Account) -> u8 {
    Account::ALL
        .iter()
        .position(|a| *a == account)
        .unwrap_or_default() as u8
}

/// Bytes an [`Enc`] gathers before it passes them on.
const ENC_BUFFER: usize = 8192;

/// The encoding's primitives, over any writer. The fields are gathered in
/// a buffer and reach the writer in large pieces: most fields are a few
/// bytes, and a call per field would cost more than the field.
struct Enc<W: Write> {
    out: W,
    buf: Box<[u8; ENC_BUFFER]>,
    len: usize,
}

impl<W: Write> Enc<W> {
    fn new(out: W) -> Enc<W> {
        Enc {
            out,
            buf: Box::new([0; ENC_BUFFER]),
            len: 0,
        }
    }

    /// Pass the gathered bytes on.
    fn flush(&mut self) -> io::Result<()> {
        let len = std::mem::take(&mut self.len);
        self.out.write_all(&self.buf[..len])
    }

    /// Pass the gathered bytes on, and end the current piece there: its
    /// name, when the output names pieces.
    fn cut(&mut self) -> io::Result<Option<[u8; 32]>>
    where
        W: Out,
    {
        self.flush()?;
        self.out.cut()
    }

    /// At a cut: whether the stored piece `name` stands for the next
    /// bytes, which are then not to be written.
    fn reuse(&mut self, name: &[u8; 32]) -> io::Result<bool>
    where
        W: Out,
    {
        debug_assert_eq!(self.len, 0, "reuse only at a cut");
        self.out.reuse(name)
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.len + bytes.len() > ENC_BUFFER {
            self.flush()?;
            if bytes.len() > ENC_BUFFER {
                return self.out.write_all(bytes);
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    /// The first `used` bytes of `field` (copied whole: a fixed size).
    #[inline]
    fn fixed<const N: usize>(&mut self, field: &[u8; N], used: usize) -> io::Result<()> {
        if self.len + N > ENC_BUFFER {
            self.flush()?;
        }
        self.buf[self.len..self.len + N].copy_from_slice(field);
        self.len += used;
        Ok(())
    }

    fn u8(&mut self, v: u8) -> io::Result<()> {
        self.bytes(&[v])
    }

    fn u16(&mut self, v: u16) -> io::Result<()> {
        self.bytes(&v.to_be_bytes())
    }

    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.bytes(&v.to_be_bytes())
    }

    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.bytes(&v.to_be_bytes())
    }

    fn bool(&mut self, v: bool) -> io::Result<()> {
        self.u8(v as u8)
    }

    /// A length or count: u32.
    fn len(&mut self, n: usize) -> io::Result<()> {
        self.u32(u32::try_from(n).map_err(|_| io::Error::other("a length exceeds 2^32 - 1"))?)
    }

    fn str(&mut self, s: &str) -> io::Result<()> {
        self.len(s.len())?;
        self.bytes(s.as_bytes())
    }

    fn opt<T>(
        &mut self,
        v: Option<T>,
        f: impl FnOnce(&mut Self, T) -> io::Result<()>,
    ) -> io::Result<()> {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1)?;
                f(self, v)
            }
        }
    }

    /// Year (u16), month, day.
    fn date(&mut self, d: time::Date) -> io::Result<()> {
        let year = u16::try_from(d.year()).map_err(|_| io::Error::other("a year out of range"))?;
        self.bytes(&year.to_be_bytes())?;
        self.bytes(&[d.month() as u8, d.day()])
    }

    /// Sign and scale in one byte (bit 7: negative; bits 0-4: the scale),
    /// then the coefficient's length in bytes and its big-endian bytes,
    /// with no leading zero byte.
    fn decimal(&mut self, d: Decimal) -> io::Result<()> {
        let magnitude = d.mantissa().unsigned_abs();
        let n = 16 - (magnitude.leading_zeros() / 8) as usize;
        let sign = if d.is_sign_negative() { 0x80 } else { 0 };
        // h, n, and the coefficient's n bytes moved to the front: a
        // fixed-size copy of which the first 2 + n bytes count.
        let mut field = [0u8; 18];
        field[0] = sign | d.scale() as u8;
        field[1] = n as u8;
        field[2..].copy_from_slice(
            &magnitude
                .checked_shl(128 - 8 * n as u32)
                .unwrap_or(0)
                .to_be_bytes(),
        );
        self.fixed(&field, 2 + n)
    }

    /// Canonical JSON (schema/FORMAT.md section 3), length-prefixed.
    fn json<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        let value = serde_json::to_value(v).map_err(io::Error::other)?;
        let bytes = canonical_json::to_vec(&value).map_err(|e| io::Error::other(e.to_string()))?;
        self.len(bytes.len())?;
        self.bytes(&bytes)
    }
}

/// A fund's partner ids by position in its sorted `partner_ids`, found
/// by the shared allocation (the calls and flows hold the fund's own).
struct PartnerIndex<'a> {
    ids: &'a [Arc<String>],
    /// (address, position), sorted by address.
    by_pointer: Vec<(*const String, u16)>,
}

impl<'a> PartnerIndex<'a> {
    fn new(ids: &'a [Arc<String>]) -> io::Result<PartnerIndex<'a>> {
        let mut by_pointer = Vec::with_capacity(ids.len());
        for (i, p) in ids.iter().enumerate() {
            let i = u16::try_from(i)
                .map_err(|_| io::Error::other("a fund names more than 65536 partners"))?;
            by_pointer.push((Arc::as_ptr(p), i));
        }
        by_pointer.sort_unstable();
        Ok(PartnerIndex { ids, by_pointer })
    }

    /// `partner`'s position; `near` is a guess (the previous position:
    /// shares and flows come in partner order).
    fn of(&self, partner: &Arc<String>, near: &mut usize) -> io::Result<u16> {
        for guess in [*near, *near + 1, 0] {
            if self.ids.get(guess).is_some_and(|p| Arc::ptr_eq(p, partner)) {
                *near = guess;
                return Ok(guess as u16);
            }
        }
        let address = Arc::as_ptr(partner);
        if let Ok(i) = self.by_pointer.binary_search_by_key(&address, |(a, _)| *a) {
            *near = usize::from(self.by_pointer[i].1);
            return Ok(self.by_pointer[i].1);
        }
        self.ids
            .binary_search(partner)
            .map(|i| i as u16)
            .map_err(|_| io::Error::other("a partner id is missing from its fund's list"))
    }
}

/// Where a snapshot encoding goes: a writer, told where the encoding may
/// be cut into stored pieces (writers that keep it whole ignore that, and
/// reuse no stored piece).
trait Out: Write {
    /// End the current piece here; its name, when this output names them.
    fn cut(&mut self) -> io::Result<Option<[u8; 32]>> {
        Ok(None)
    }

    /// Whether the stored piece `name` stands for the next bytes.
    fn reuse(&mut self, _name: &[u8; 32]) -> io::Result<bool> {
        Ok(false)
    }

    /// The piece just cut, `name`, encodes block `block` of the calls of
    /// fund number `fund` (in fund order).
    fn learn(&mut self, _fund: usize, _block: usize, _name: [u8; 32]) {}
}

impl<T: Out + ?Sized> Out for &mut T {
    fn cut(&mut self) -> io::Result<Option<[u8; 32]>> {
        (**self).cut()
    }

    fn reuse(&mut self, name: &[u8; 32]) -> io::Result<bool> {
        (**self).reuse(name)
    }

    fn learn(&mut self, fund: usize, block: usize, name: [u8; 32]) {
        (**self).learn(fund, block, name)
    }
}

/// Any writer, keeping the encoding whole.
struct Whole<W>(W);

impl<W: Write> Write for Whole<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Out for Whole<W> {}

type Sink<'s> = dyn FnMut(Piece<'_>) -> Result<Option<[u8; 32]>> + 's;

/// Gathers a piece and hands it to `sink` at each cut; remembers the
/// names of the blocks of calls it handed. A sink's error is kept whole
/// (an `io::Error` would lose its kind).
struct Pieces<'s> {
    piece: Vec<u8>,
    sink: &'s mut Sink<'s>,
    learned: Vec<(usize, usize, [u8; 32])>,
    failed: Option<Error>,
}

impl Pieces<'_> {
    fn hand(&mut self, piece: Piece<'_>) -> io::Result<Option<[u8; 32]>> {
        (self.sink)(piece).map_err(|e| {
            self.failed = Some(e);
            io::Error::other("the snapshot's piece was not stored")
        })
    }
}

impl Write for Pieces<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.piece.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Out for Pieces<'_> {
    fn cut(&mut self) -> io::Result<Option<[u8; 32]>> {
        if self.piece.is_empty() {
            return Ok(None);
        }
        let piece = std::mem::take(&mut self.piece);
        let name = self.hand(Piece::Bytes(&piece));
        self.piece = piece;
        self.piece.clear();
        name
    }

    fn reuse(&mut self, name: &[u8; 32]) -> io::Result<bool> {
        Ok(self.hand(Piece::Stored(name))?.is_some())
    }

    fn learn(&mut self, fund: usize, block: usize, name: [u8; 32]) {
        self.learned.push((fund, block, name));
    }
}

/// Counts the bytes written.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compares what is written with `rest`, and fails at the first difference.
struct Compare<'a> {
    rest: &'a [u8],
    differs: bool,
}

impl Out for Counter {}

impl Out for Compare<'_> {}

impl Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.rest.strip_prefix(buf) {
            Some(rest) => {
                self.rest = rest;
                Ok(buf.len())
            }
            None => {
                self.differs = true;
                Err(io::Error::other("the bytes differ"))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl State {
    /// The encoding, cut (for [`State::write_snapshot_pieces`]) before each
    /// block of [`CALLS_PER_PIECE`] calls of a fund, before its flows'
    /// count, before each of its partners' years of flows, and after them:
    /// the pieces that change as a ledger grows are its head (balances and
    /// counts), its last calls, its current year's flows and its tail.
    fn write_snapshot_to<W: Out>(&self, e: &mut Enc<W>) -> io::Result<()> {
        e.u32(SNAPSHOT_FORMAT_VERSION)?;
        e.opt(self.last_seq, Enc::u64)?;
        e.opt(self.origin.as_deref(), Enc::str)?;
        e.len(self.keys.len())?;
        for k in self.keys.values() {
            e.str(&k.name)?;
            e.bytes(k.public_key.as_bytes())?;
            e.str(&k.role)?;
            e.opt(k.partner.as_deref(), Enc::str)?;
            e.u64(k.enrolled_seq)?;
            e.opt(k.revoked_seq, Enc::u64)?;
        }
        e.json(&self.policy)?;
        e.opt(self.policy_seq, Enc::u64)?;
        e.len(self.funds.len())?;
        for (fund_number, f) in self.funds.values().enumerate() {
            e.json(&f.def)?;
            e.u64(f.created_seq)?;
            e.len(f.balances.len())?;
            for (k, v) in &f.balances {
                e.u8(account_code(k.account))?;
                e.str(&k.dimension)?;
                e.decimal(*v)?;
            }
            // The partner ids the calls and flows name, then those by index.
            e.len(f.partner_ids.len())?;
            for p in &f.partner_ids {
                e.str(p)?;
            }
            let index = PartnerIndex::new(&f.partner_ids)?;
            let mut near = 0;
            e.len(f.calls.len())?;
            for (block, calls) in f.calls.chunks(CALLS_PER_PIECE).enumerate() {
                e.cut()?;
                if let Some(Some(name)) = f.call_pieces.get(block) {
                    if e.reuse(name)? {
                        continue;
                    }
                }
                for c in calls {
                    e.u64(c.seq)?;
                    e.str(c.purpose)?;
                    e.date(c.date)?;
                    e.date(c.due_date)?;
                    e.bool(c.reversed)?;
                    e.len(c.shares.len())?;
                    for (partner, share) in c.shares.0.iter() {
                        e.u16(index.of(partner, &mut near)?)?;
                        e.decimal(share.called)?;
                        e.decimal(share.paid)?;
                    }
                }
                if let Some(name) = e.cut()? {
                    e.out.learn(fund_number, block, name);
                }
            }
            e.cut()?;
            e.len(f.flows.len())?;
            let mut group = None;
            for ((partner, date), (paid, dist)) in &f.flows {
                let position = index.of(partner, &mut near)?;
                if group != Some((position, date.year())) {
                    group = Some((position, date.year()));
                    e.cut()?;
                }
                e.u16(position)?;
                e.date(*date)?;
                e.decimal(*paid)?;
                e.decimal(*dist)?;
            }
            e.cut()?;
            e.opt(f.last_date, Enc::date)?;
        }
        e.len(self.partners.len())?;
        for p in self.partners.values() {
            e.json(p)?;
        }
        e.len(self.startups.len())?;
        for s in self.startups.values() {
            e.json(s)?;
        }
        let mut reversed: Vec<u64> = self.reversed.iter().copied().collect();
        reversed.sort_unstable();
        e.len(reversed.len())?;
        for seq in reversed {
            e.u64(seq)?;
        }
        Ok(())
    }

    fn write_snapshot_io(&self, out: impl Out) -> io::Result<()> {
        let mut e = Enc::new(out);
        self.write_snapshot_to(&mut e)?;
        e.cut().map(drop)
    }

    /// Write the snapshot encoding of the state into `out`: deterministic
    /// (the same state always gives the same bytes), versioned.
    pub fn write_snapshot(&self, out: &mut impl Write) -> Result<()> {
        self.write_snapshot_io(Whole(out)).map_err(encode_error)
    }

    /// Write the snapshot encoding of the state as consecutive pieces,
    /// each handed to `sink` in order (never an empty one): their
    /// concatenation is exactly [`State::encode_snapshot`]. Where the cuts
    /// fall is this writer's choice (stable as the state grows: see
    /// `write_snapshot_to`); readers only concatenate. A block of calls
    /// unchanged since this state last handed its piece is offered by name
    /// ([`Piece::Stored`]) and encoded only when the sink does not hold it.
    /// Holds one piece at a time. A sink's error stops the encoding and is
    /// returned.
    pub fn write_snapshot_pieces(
        &mut self,
        sink: &mut dyn FnMut(Piece<'_>) -> Result<Option<[u8; 32]>>,
    ) -> Result<()> {
        let mut pieces = Pieces {
            piece: Vec::new(),
            sink,
            learned: Vec::new(),
            failed: None,
        };
        if let Err(e) = self.write_snapshot_io(&mut pieces) {
            return Err(pieces.failed.take().unwrap_or_else(|| encode_error(e)));
        }
        let mut funds: Vec<&mut FundState> = self.funds.values_mut().collect();
        for (fund, block, name) in pieces.learned {
            let names = &mut funds[fund].call_pieces;
            if names.len() <= block {
                names.resize(block + 1, None);
            }
            names[block] = Some(name);
        }
        Ok(())
    }

    /// The length of the state's snapshot encoding, in bytes.
    pub fn snapshot_len(&self) -> Result<usize> {
        let mut counter = Counter(0);
        self.write_snapshot_io(&mut counter).map_err(encode_error)?;
        Ok(counter.0)
    }

    /// The snapshot encoding of the state, in a vector of its exact size.
    pub fn encode_snapshot(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.snapshot_len()?);
        self.write_snapshot(&mut out)?;
        Ok(out)
    }

    /// Whether `bytes` are exactly the snapshot encoding of this state,
    /// compared as it is encoded, without holding the encoding.
    pub fn snapshot_matches(&self, bytes: &[u8]) -> Result<bool> {
        let mut compare = Compare {
            rest: bytes,
            differs: false,
        };
        match self.write_snapshot_io(&mut compare) {
            Ok(()) => Ok(compare.rest.is_empty()),
            Err(_) if compare.differs => Ok(false),
            Err(e) => Err(encode_error(e)),
        }
    }

    /// Decode a snapshot made by [`State::encode_snapshot`]. Anything else
    /// (another version, a field out of range, bytes left over, maps out of
    /// order or with duplicates, bytes that do not re-encode identically)
    /// is an error.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<State> {
        State::decode_snapshot_in_pieces(bytes, &[])
    }

    /// [`State::decode_snapshot`] of the stored pieces' concatenation
    /// `bytes`, given each piece's name and length in order: a block of
    /// calls that is exactly one piece keeps that piece's name, so that the
    /// state's next snapshot reuses it instead of encoding the block again.
    /// (The names must be those of the bytes: the store checks them.)
    pub fn decode_snapshot_in_pieces(bytes: &[u8], pieces: &[([u8; 32], usize)]) -> Result<State> {
        // Each piece by the offset it starts at.
        let mut starts = HashMap::with_capacity(pieces.len());
        let mut at = 0;
        for (name, len) in pieces {
            starts.insert(at, (*len, *name));
            at += len;
        }
        let mut d = Dec(bytes);
        let version = d.u32()?;
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(snapshot_error(format!(
                "format version {version} is not {SNAPSHOT_FORMAT_VERSION}"
            )));
        }
        let mut state = State {
            last_seq: d.opt(Dec::u64)?,
            origin: d.opt(|d| d.str().map(str::to_string))?,
            ..State::default()
        };
        for _ in 0..d.len()? {
            let name = d.str()?.to_string();
            let raw: &[u8; 32] = d.take(32)?.try_into().expect("32 bytes");
            let public_key = public_key_from_raw(raw).map_err(snapshot_error)?;
            let record = KeyRecord {
                key_id: key_id(&public_key),
                name,
                public_key,
                role: d.str()?.to_string(),
                partner: d.opt(|d| d.str().map(str::to_string))?,
                enrolled_seq: d.u64()?,
                revoked_seq: d.opt(Dec::u64)?,
            };
            state.keys.insert(record.key_id, record);
        }
        state.policy = d.json()?;
        state.policy_seq = d.opt(Dec::u64)?;
        for _ in 0..d.len()? {
            let fund = d.fund(bytes.len(), &starts)?;
            state.funds.insert(fund.def.fund.clone(), fund);
        }
        for _ in 0..d.len()? {
            let partner: PartnerAdd = d.json()?;
            state.partners.insert(partner.partner.clone(), partner);
        }
        for _ in 0..d.len()? {
            let startup: StartupAdd = d.json()?;
            state.startups.insert(startup.startup.clone(), startup);
        }
        for _ in 0..d.len()? {
            state.reversed.insert(d.u64()?);
        }
        if !d.0.is_empty() {
            return Err(snapshot_error("bytes are left after its end"));
        }
        // One spelling only: whatever decodes must encode to the same bytes
        // (this also refuses maps out of order or with duplicates, and
        // non-canonical JSON).
        if !state.snapshot_matches(bytes)? {
            return Err(snapshot_error("it is not in its canonical encoding"));
        }
        Ok(state)
    }
}

/// Partner id number `i` of a fund's list, marked as named.
fn partner(ids: &[Arc<String>], named: &mut [bool], i: u16) -> Result<Arc<String>> {
    let i = usize::from(i);
    let id = ids
        .get(i)
        .ok_or_else(|| snapshot_error(format!("partner number {i} is not in its fund's list")))?;
    named[i] = true;
    Ok(id.clone())
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| snapshot_error("a string is not UTF-8"))
}

/// Reads the encoding's primitives from the front of a slice.
struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(snapshot_error("it ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(snapshot_error(format!("{b} is not a boolean"))),
        }
    }

    fn len(&mut self) -> Result<usize> {
        Ok(self.u32()? as usize)
    }

    fn str(&mut self) -> Result<&'a str> {
        let n = self.len()?;
        utf8(self.take(n)?)
    }

    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            b => Err(snapshot_error(format!("{b} is not an option tag"))),
        }
    }

    fn date(&mut self) -> Result<time::Date> {
        let year = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes"));
        let (month, day) = (self.u8()?, self.u8()?);
        time::Month::try_from(month)
            .ok()
            .and_then(|m| time::Date::from_calendar_date(year.into(), m, day).ok())
            .filter(|_| (1900..=2200).contains(&year))
            .ok_or_else(|| snapshot_error(format!("{year}-{month}-{day} is not a date")))
    }

    fn decimal(&mut self) -> Result<Decimal> {
        let (head, n) = (self.u8()?, self.u8()? as usize);
        let scale = head & 0x7f;
        if scale > 28 || n > 12 {
            return Err(snapshot_error("a decimal is out of range"));
        }
        let magnitude = match self.0.first_chunk::<16>() {
            // Read 16 bytes whole, keep the first n.
            Some(next) => {
                let all = u128::from_be_bytes(*next);
                self.0 = &self.0[n..];
                all.checked_shr(128 - 8 * n as u32).unwrap_or(0)
            }
            None => {
                let mut coefficient = [0u8; 16];
                coefficient[16 - n..].copy_from_slice(self.take(n)?);
                u128::from_be_bytes(coefficient)
            }
        };
        // rust_decimal's own layout: flags, then lo, mid, hi (little-endian).
        let mut raw = [0u8; 16];
        raw[2] = scale;
        raw[3] = head & 0x80;
        raw[4..16].copy_from_slice(&magnitude.to_le_bytes()[..12]);
        Ok(Decimal::deserialize(raw))
    }

    fn json<T: DeserializeOwned>(&mut self) -> Result<T> {
        let n = self.len()?;
        serde_json::from_slice(self.take(n)?).map_err(snapshot_error)
    }

    /// A fund; `total` is the length of the whole encoding and `starts`
    /// its pieces by start offset (see [`State::decode_snapshot_in_pieces`]).
    fn fund(
        &mut self,
        total: usize,
        starts: &HashMap<usize, (usize, [u8; 32])>,
    ) -> Result<FundState> {
        let def: FundCreate = self.json()?;
        let currency = Currency::from_code(&def.currency).map_err(snapshot_error)?;
        let mut fund = FundState {
            def,
            currency,
            created_seq: self.u64()?,
            balances: BTreeMap::new(),
            calls: Vec::new(),
            flows: BTreeMap::new(),
            last_date: None,
            partner_ids: Vec::new(),
            call_pieces: Vec::new(),
        };
        for _ in 0..self.len()? {
            let code = self.u8()?;
            let account = *Account::ALL
                .get(code as usize)
                .ok_or_else(|| snapshot_error(format!("{code} is not an account code")))?;
            let key = AccountKey::new(account, self.str()?);
            fund.balances.insert(key, self.decimal()?);
        }
        for _ in 0..self.len()? {
            let id = self.str()?;
            if fund.partner_ids.last().is_some_and(|p| p.as_str() >= id) {
                return Err(snapshot_error("partner ids are out of order"));
            }
            fund.partner_ids.push(Arc::new(id.to_string()));
        }
        let mut named = vec![false; fund.partner_ids.len()];
        let calls = self.len()?;
        fund.calls.reserve_exact(calls.min(self.0.len()));
        let mut block_start = 0;
        for number in 1..=calls as u64 {
            let index = number as usize - 1;
            if index % CALLS_PER_PIECE == 0 {
                block_start = total - self.0.len();
            }
            let seq = self.u64()?;
            let purpose = self.str()?;
            let purpose = *CALL_PURPOSES
                .iter()
                .find(|p| **p == purpose)
                .ok_or_else(|| snapshot_error(format!("{purpose:?} is not a call purpose")))?;
            let (date, due_date, reversed) = (self.date()?, self.date()?, self.bool()?);
            let n = self.len()?;
            let mut shares = Vec::with_capacity(n.min(self.0.len()));
            let mut last = None;
            for _ in 0..n {
                let i = self.u16()?;
                // Sorted and unique, as the lookups need.
                if last.is_some_and(|l| l >= i) {
                    return Err(snapshot_error("call shares are out of order"));
                }
                last = Some(i);
                let share = CallShare {
                    called: self.decimal()?,
                    paid: self.decimal()?,
                };
                shares.push((partner(&fund.partner_ids, &mut named, i)?, share));
            }
            fund.calls.push(CallState {
                number,
                seq,
                purpose,
                date,
                due_date,
                reversed,
                shares: CallShares(shares.into_boxed_slice()),
            });
            if (index + 1) % CALLS_PER_PIECE == 0 || number == calls as u64 {
                let len = total - self.0.len() - block_start;
                if let Some((piece_len, name)) = starts.get(&block_start) {
                    if *piece_len == len {
                        let block = call_block(index);
                        fund.call_pieces.resize(block + 1, None);
                        fund.call_pieces[block] = Some(*name);
                    }
                }
            }
        }
        let flows = self.len()?;
        let mut sorted = Vec::with_capacity(flows.min(self.0.len()));
        for _ in 0..flows {
            let i = self.u16()?;
            let key = (partner(&fund.partner_ids, &mut named, i)?, self.date()?);
            // In key order and unique (one spelling); built in bulk below.
            if sorted.last().is_some_and(|(last, _)| *last >= key) {
                return Err(snapshot_error("flows are out of order"));
            }
            sorted.push((key, (self.decimal()?, self.decimal()?)));
        }
        fund.flows = sorted.into_iter().collect();
        if named.contains(&false) {
            return Err(snapshot_error("a partner id is named by no call or flow"));
        }
        fund.last_date = self.opt(Dec::date)?;
        Ok(fund)
    }
}
