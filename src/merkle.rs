//! Merkle tree hashing, proofs and proof verification as specified by
//! RFC 9162 (Certificate Transparency 2.0) section 2.1.
//!
//! This module owns the tree arithmetic of the ledger and nothing else:
//!
//! * the hashes: leaf `SHA-256(0x00 || leaf)`, interior node
//!   `SHA-256(0x01 || left || right)`, empty tree `SHA-256("")` (2.1.1);
//! * the *perfect-node* storage model: a store keeps, for every level `l` and
//!   index `i`, the hash of the perfect subtree covering the leaves
//!   `[i * 2^l, (i + 1) * 2^l)` once all of those leaves exist
//!   ([`completed_nodes_after_append`] says which nodes an append completes);
//! * the Merkle Tree Hash of any tree size ([`root`]), inclusion proofs
//!   ([`inclusion_proof`], 2.1.3.1) and consistency proofs
//!   ([`consistency_proof`], 2.1.4.1), all computed from perfect nodes only
//!   with `O(log n)` node lookups and hashes, never by rehashing leaves;
//! * proof verification written step by step as RFC 9162 2.1.3.2
//!   ([`verify_inclusion`]) and 2.1.4.2 ([`verify_consistency`]) describe it.
//!
//! RFC 6962 uses the same hashing, so its roots and proofs are identical.
//! Nothing in this module panics on any input: verification receives
//! attacker-controlled sizes, indices and proofs and answers with a
//! [`MerkleError`].

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Leaf hash of RFC 9162 section 2.1.1: `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// Interior node hash of RFC 9162 section 2.1.1:
/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// Merkle Tree Hash of the empty tree, RFC 9162 section 2.1.1:
/// `SHA-256("")` (`e3b0c442...b855`).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// What is wrong with a Merkle computation or a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerkleError {
    /// A leaf index that is not below the tree size.
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency check between sizes that cannot be ordered this way
    /// (the old size is larger than the new size).
    SizeOutOfRange { old_size: u64, new_size: u64 },
    /// A proof whose number of hashes does not fit the sizes and index.
    ProofLength { expected: usize, found: usize },
    /// The root recomputed from the proof is not the expected (new) root.
    RootMismatch,
    /// The old root recomputed from a consistency proof is not the expected
    /// old root (or, for an old size of 0, the old root is not the empty
    /// tree hash).
    OldRootMismatch,
    /// The node source does not hold the perfect node `(level, index)`.
    MissingNode { level: u32, index: u64 },
    /// An internal request for a leaf range that is empty or not aligned on
    /// perfect subtrees (a bug in the caller, reported rather than panicking).
    InvalidRange { start: u64, end: u64 },
}

impl fmt::Display for MerkleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MerkleError::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is out of range for tree size {size}")
            }
            MerkleError::SizeOutOfRange { old_size, new_size } => write!(
                f,
                "old tree size {old_size} is larger than new tree size {new_size}"
            ),
            MerkleError::ProofLength { expected, found } => write!(
                f,
                "proof has {found} hashes where {expected} are expected"
            ),
            MerkleError::RootMismatch => {
                write!(f, "root recomputed from the proof does not match the expected root")
            }
            MerkleError::OldRootMismatch => write!(
                f,
                "old root recomputed from the consistency proof does not match the expected old root"
            ),
            MerkleError::MissingNode { level, index } => {
                write!(f, "perfect node at level {level} index {index} is not stored")
            }
            MerkleError::InvalidRange { start, end } => write!(
                f,
                "leaf range [{start}, {end}) is empty or not aligned on perfect subtrees"
            ),
        }
    }
}

impl std::error::Error for MerkleError {}

/// A store of perfect subtree hashes.
///
/// `perfect_node(level, index)` returns the Merkle Tree Hash (RFC 9162
/// 2.1.1) of the perfect subtree covering leaves
/// `[index * 2^level, (index + 1) * 2^level)`; level 0 holds the leaf hashes.
/// Only nodes whose leaves all exist are ever requested by this module.
pub trait NodeSource {
    /// The hash of the perfect subtree `(level, index)`, or
    /// [`MerkleError::MissingNode`] when it is not stored.
    fn perfect_node(&self, level: u32, index: u64) -> Result<Hash, MerkleError>;
}

/// The perfect nodes completed by appending leaf number `leaf_index`
/// (0-based) with hash `leaf_hash`: the leaf itself at level 0, then each
/// parent that the append completes, lowest level first, as
/// `(level, index, hash)`.
///
/// `get(level, index)` must return already-stored perfect nodes; only left
/// siblings along the right edge are requested, so the work is amortised
/// `O(1)` per append (at most `log2(n)` for a single append).
pub fn completed_nodes_after_append(
    leaf_index: u64,
    leaf_hash: Hash,
    get: impl Fn(u32, u64) -> Result<Hash, MerkleError>,
) -> Result<Vec<(u32, u64, Hash)>, MerkleError> {
    // A tree size is a u64, so the last possible leaf index is u64::MAX - 1.
    if leaf_index == u64::MAX {
        return Err(MerkleError::IndexOutOfRange {
            index: leaf_index,
            size: u64::MAX,
        });
    }
    let mut out = vec![(0, leaf_index, leaf_hash)];
    let (mut level, mut index, mut hash) = (0u32, leaf_index, leaf_hash);
    // An odd index is a right child: its left sibling is complete, and so
    // is their parent.
    while index & 1 == 1 {
        let left = get(level, index - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        out.push((level, index, hash));
    }
    Ok(out)
}

/// The largest power of two strictly less than `n` (RFC 9162 2.1.1's `k`).
/// Callers guarantee `n >= 2`; for smaller `n` it returns 1.
fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 1;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash of the leaves `[start, end)`, a subtree that the RFC
/// 9162 recursion produces: `start` is aligned on the smallest power of two
/// not below `end - start`.  The range decomposes by the binary
/// representation of its length into perfect subtrees, largest first, and
/// its hash is those pieces folded from the right:
/// `MTH = HASH(P1, HASH(P2, ... HASH(Pk-1, Pk)))`.
fn range_hash(src: &(impl NodeSource + ?Sized), start: u64, end: u64) -> Result<Hash, MerkleError> {
    if end <= start {
        return Err(MerkleError::InvalidRange { start, end });
    }
    let len = end - start;
    let mut pieces: Vec<Hash> = Vec::with_capacity(len.count_ones() as usize);
    let mut offset = start;
    for level in (0..64u32).rev() {
        let width = 1u64 << level;
        if len & width == 0 {
            continue;
        }
        if offset & (width - 1) != 0 {
            return Err(MerkleError::InvalidRange { start, end });
        }
        pieces.push(src.perfect_node(level, offset >> level)?);
        // Cannot overflow: offset + width <= end.
        offset += width;
    }
    let mut acc = pieces
        .pop()
        .ok_or(MerkleError::InvalidRange { start, end })?;
    while let Some(left) = pieces.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The Merkle Tree Hash (RFC 9162 2.1.1) of the first `size` leaves,
/// computed from at most 64 perfect nodes (one per set bit of `size`).
pub fn root(src: &(impl NodeSource + ?Sized), size: u64) -> Result<Hash, MerkleError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// The inclusion proof (audit path) `PATH(index, D[size])` of RFC 9162
/// section 2.1.3.1, ordered from the leaf's sibling up to the root's child.
///
/// Walks down from the root: at each split the sibling subtree is a perfect
/// node, except the first time the walk turns left off the right edge,
/// where the sibling `[mid, size)` is combined from its perfect pieces once.
pub fn inclusion_proof(
    src: &(impl NodeSource + ?Sized),
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            // PATH(m, D[lo:mid]) : MTH(D[mid:hi])
            path.push(range_hash(src, mid, hi)?);
            hi = mid;
        } else {
            // PATH(m - k, D[mid:hi]) : MTH(D[lo:mid])
            path.push(range_hash(src, lo, mid)?);
            lo = mid;
        }
    }
    // The recursion appends each sibling after the deeper path.
    path.reverse();
    Ok(path)
}

/// The consistency proof `PROOF(old_size, D[new_size])` of RFC 9162
/// section 2.1.4.1 (via `SUBPROOF`).
///
/// The RFC defines proofs for `0 < old_size < new_size`; this function
/// returns an empty proof for `old_size == 0` and `old_size == new_size`
/// (which [`verify_consistency`] accepts only as an empty proof), and
/// [`MerkleError::SizeOutOfRange`] for `old_size > new_size`.
pub fn consistency_proof(
    src: &(impl NodeSource + ?Sized),
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizeOutOfRange { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let m = old_size;
    let mut proof = Vec::new();
    let (mut lo, mut hi) = (0u64, new_size);
    // `complete` is SUBPROOF's boolean b: the subtree [lo, hi) still starts
    // at leaf 0 of the old tree, whose root the verifier already knows.
    let mut complete = true;
    loop {
        if m == hi {
            // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
            if !complete {
                proof.push(range_hash(src, lo, hi)?);
            }
            break;
        }
        let mid = lo + split_point(hi - lo);
        if m <= mid {
            // SUBPROOF(m, D[lo:mid], b) : MTH(D[mid:hi])
            proof.push(range_hash(src, mid, hi)?);
            hi = mid;
        } else {
            // SUBPROOF(m - k, D[mid:hi], false) : MTH(D[lo:mid])
            proof.push(range_hash(src, lo, mid)?);
            lo = mid;
            complete = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Number of hashes in the inclusion proof of leaf `index` in a tree of
/// `size` leaves (`index < size`): the levels below the point where the
/// leaf's path leaves the right edge, plus the perfect left siblings above.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let last = size.saturating_sub(1);
    let inner = 64 - (index ^ last).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Number of hashes in the consistency proof for `0 < old_size < new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let old_last = old_size.saturating_sub(1);
    let new_last = new_size.saturating_sub(1);
    let inner = 64 - (old_last ^ new_last).leading_zeros();
    let border = old_last.checked_shr(inner).unwrap_or(0).count_ones();
    let shift = old_size.trailing_zeros();
    let seed = u32::from(!old_size.is_power_of_two());
    (seed + inner.saturating_sub(shift) + border) as usize
}

/// Verifies an inclusion proof exactly as RFC 9162 section 2.1.3.2 describes:
/// that `leaf_hash` is leaf number `index` of the tree of `size` leaves whose
/// root is `root`.
///
/// Before running the algorithm the proof length is compared with the one
/// the sizes imply, only to report [`MerkleError::ProofLength`]; the RFC
/// algorithm by itself rejects exactly the same proofs.  Work is bounded by
/// 64 iterations whatever the input.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    // 1. If leaf_index is greater than or equal to tree_size, fail.
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(MerkleError::ProofLength {
            expected,
            found: proof.len(),
        });
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let mut f_n = index;
    let mut s_n = size - 1;
    // 3. Set r to hash.
    let mut r = *leaf_hash;
    // 4. For each value p in the inclusion_path array:
    for p in proof {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if s_n == 0 {
            return Err(MerkleError::ProofLength {
                expected,
                found: proof.len(),
            });
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f_n & 1 == 1 || f_n == s_n {
            // i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, &r);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn
            //     equally until either LSB(fn) is set or fn is 0.
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set r to HASH(0x01 || r || p).
            r = node_hash(&r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        f_n >>= 1;
        s_n >>= 1;
    }
    // 5. Compare sn to 0. Compare r against the root hash. If sn is equal to
    //    0 and r and the root hash are equal, then the log has proven the
    //    inclusion of hash. Otherwise, fail the proof verification.
    if s_n != 0 {
        return Err(MerkleError::ProofLength {
            expected,
            found: proof.len(),
        });
    }
    if r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof exactly as RFC 9162 section 2.1.4.2
/// describes: that the tree of `new_size` leaves with root `new_root`
/// extends the tree of `old_size` leaves with root `old_root`.
///
/// The RFC algorithm covers `0 < old_size < new_size`.  The other cases are
/// defined here as follows:
///
/// * `old_size > new_size`: [`MerkleError::SizeOutOfRange`];
/// * `old_size == new_size`: the proof must be empty and the roots equal
///   (and, when both sizes are 0, equal to [`empty_root`]);
/// * `old_size == 0 < new_size`: the proof must be empty and `old_root`
///   must be [`empty_root`], the only root a tree of size 0 has; every tree
///   extends the empty tree, so `new_root` is not constrained.
///
/// Before running the algorithm the proof length is compared with the one
/// the sizes imply, only to report [`MerkleError::ProofLength`]; the RFC
/// algorithm by itself rejects exactly the same proofs.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizeOutOfRange { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(MerkleError::ProofLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(MerkleError::OldRootMismatch);
        }
        if old_size == new_size && old_root != new_root {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    // 1. If consistency_path is an empty array, stop and fail the proof
    //    verification.
    if proof.is_empty() || proof.len() != expected {
        return Err(MerkleError::ProofLength {
            expected,
            found: proof.len(),
        });
    }
    // 2. If first is an exact power of 2, then prepend first_hash to the
    //    consistency_path array.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    // 3. Set fn to first - 1 and sn to second - 1.
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until
    //    LSB(fn) is not set.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let (first, rest) = path.split_first().ok_or(MerkleError::ProofLength {
        expected,
        found: proof.len(),
    })?;
    let mut fr = *first;
    let mut sr = *first;
    // 6. For each subsequent value c in the consistency_path array:
    for c in rest {
        // a. If sn is 0, then stop the iteration and fail the proof
        //    verification.
        if s_n == 0 {
            return Err(MerkleError::ProofLength {
                expected,
                found: proof.len(),
            });
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if f_n & 1 == 1 || f_n == s_n {
            // i. Set fr to HASH(0x01 || c || fr).
            //    Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn
            //     equally until either LSB(fn) is set or fn is 0.
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            // Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(&sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        f_n >>= 1;
        s_n >>= 1;
    }
    // 7. Verify that the fr calculated is equal to the first_hash supplied,
    //    that the sr calculated is equal to the second_hash supplied, and
    //    that sn is 0.
    if s_n != 0 {
        return Err(MerkleError::ProofLength {
            expected,
            found: proof.len(),
        });
    }
    if fr != *old_root {
        return Err(MerkleError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a tree grown one leaf at a time: the root of the
/// tree so far in O(log n) memory (one perfect node per level at most),
/// and the perfect nodes each new leaf completes. What a streaming pass
/// over the records (verify, an export's history) keeps instead of the
/// tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RightEdge {
    nodes: Vec<(u32, Hash)>,
    leaves: u64,
}

impl RightEdge {
    /// Add a leaf (its [`leaf_hash`]); `out` is set to the perfect nodes
    /// it completes, as (level, index, hash), the leaf first.
    pub fn push(&mut self, leaf: Hash, out: &mut Vec<(u32, u64, Hash)>) {
        out.clear();
        out.push((0, self.leaves, leaf));
        let (mut level, mut index, mut node) = (0u32, self.leaves, leaf);
        while index & 1 == 1 {
            let Some((_, left)) = self.nodes.pop() else {
                break;
            };
            node = node_hash(&left, &node);
            level += 1;
            index >>= 1;
            out.push((level, index, node));
        }
        self.nodes.push((level, node));
        self.leaves += 1;
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.leaves
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves == 0
    }

    /// The root of the tree so far (RFC 9162 section 2.1.1).
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some((_, last)) => iter.fold(*last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }
}

/// An in-memory tree keeping every perfect node (`levels[l][i]` is
/// `perfect_node(l, i)`), for tests and offline tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf (hashed with [`leaf_hash`]) and returns its index.
    pub fn push(&mut self, leaf: &[u8]) -> Result<u64, MerkleError> {
        self.push_leaf_hash(leaf_hash(leaf))
    }

    /// Appends an already hashed leaf and returns its index, storing the
    /// nodes [`completed_nodes_after_append`] reports.
    pub fn push_leaf_hash(&mut self, hash: Hash) -> Result<u64, MerkleError> {
        let index = self.len();
        let nodes =
            completed_nodes_after_append(index, hash, |level, i| self.perfect_node(level, i))?;
        for (level, i, h) in nodes {
            let level_usize = level as usize;
            if self.levels.len() == level_usize {
                self.levels.push(Vec::new());
            }
            let row = self
                .levels
                .get_mut(level_usize)
                .ok_or(MerkleError::MissingNode { level, index: i })?;
            if row.len() as u64 != i {
                return Err(MerkleError::MissingNode { level, index: i });
            }
            row.push(h);
        }
        Ok(index)
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Result<Hash, MerkleError> {
        root(self, self.len())
    }
}

impl NodeSource for MemoryTree {
    fn perfect_node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        let missing = MerkleError::MissingNode { level, index };
        let row = self.levels.get(level as usize).ok_or(missing.clone())?;
        let i = usize::try_from(index).map_err(|_| missing.clone())?;
        row.get(i).copied().ok_or(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn h(s: &str) -> Hash {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }

    // ---------------------------------------------------------------
    // Published vectors: the RFC 6962 eight-leaf tree used by
    // transparency-dev/merkle (proof/verify_test.go) and
    // certificate-transparency-go (merkletree tests).
    // ---------------------------------------------------------------

    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// Roots for tree sizes 0..=8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (0-based leaf index, tree size, proof).  transparency-dev lists the
    /// leaf 1-based; these are the same vectors shifted to 0-based.
    fn published_inclusion() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![h(
                    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                )],
            ),
            (
                1,
                5,
                vec![
                    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    /// (old size, new size, proof).
    fn published_consistency() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
            (
                6,
                7,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
        ]
    }

    fn reference_tree() -> MemoryTree {
        let mut t = MemoryTree::new();
        for l in LEAVES {
            t.push(&hex::decode(l).unwrap()).unwrap();
        }
        t
    }

    fn reference_root(size: u64) -> Hash {
        h(ROOTS[size as usize])
    }

    // ---------------------------------------------------------------
    // Naive RFC 9162 recursion over leaf hashes, the oracle.
    // ---------------------------------------------------------------

    fn naive_mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&naive_mth(&leaves[..k]), &naive_mth(&leaves[k..]))
            }
        }
    }

    fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = split_point(n as u64) as usize;
        if m < k {
            let mut p = naive_path(m, &leaves[..k]);
            p.push(naive_mth(&leaves[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &leaves[k..]);
            p.push(naive_mth(&leaves[..k]));
            p
        }
    }

    fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { vec![] } else { vec![naive_mth(leaves)] };
        }
        let k = split_point(n as u64) as usize;
        if m <= k {
            let mut p = naive_subproof(m, &leaves[..k], b);
            p.push(naive_mth(&leaves[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &leaves[k..], false);
            p.push(naive_mth(&leaves[..k]));
            p
        }
    }

    fn naive_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        naive_subproof(m, leaves, true)
    }

    fn numbered_tree(n: u64) -> (MemoryTree, Vec<Hash>) {
        let mut t = MemoryTree::new();
        let mut hashes = Vec::new();
        for i in 0..n {
            let leaf = format!("leaf {i}");
            t.push(leaf.as_bytes()).unwrap();
            hashes.push(leaf_hash(leaf.as_bytes()));
        }
        (t, hashes)
    }

    fn flip(mut x: Hash, byte: usize) -> Hash {
        x[byte] ^= 0x01;
        x
    }

    /// A node source for a huge tree whose leaves are all the same:
    /// perfect nodes depend only on the level, so it is self-consistent for
    /// any size up to u64::MAX.
    struct UniformTree {
        by_level: Vec<Hash>,
    }

    impl UniformTree {
        fn new() -> Self {
            let mut by_level = vec![leaf_hash(b"same")];
            for l in 1..=64 {
                let below = by_level[l - 1];
                by_level.push(node_hash(&below, &below));
            }
            UniformTree { by_level }
        }
    }

    impl NodeSource for UniformTree {
        fn perfect_node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
            // Reject nodes beyond the u64 leaf space, as a real store would.
            let width = 1u128 << level;
            if (u128::from(index) + 1) * width > u128::from(u64::MAX) {
                return Err(MerkleError::MissingNode { level, index });
            }
            Ok(self.by_level[level as usize])
        }
    }

    // ---------------------------------------------------------------
    // Tests.
    // ---------------------------------------------------------------

    #[test]
    fn hashes_match_rfc6962_vectors() {
        assert_eq!(empty_root(), reference_root(0));
        assert_eq!(leaf_hash(b""), reference_root(1));
        assert_eq!(
            leaf_hash(&[0x00]),
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
        );
        assert_eq!(
            node_hash(&leaf_hash(b""), &leaf_hash(&[0x00])),
            reference_root(2)
        );
    }

    #[test]
    fn roots_match_published_vectors() {
        let t = reference_tree();
        for size in 0..=8u64 {
            assert_eq!(root(&t, size).unwrap(), reference_root(size), "size {size}");
        }
        assert_eq!(t.root().unwrap(), reference_root(8));
    }

    #[test]
    fn published_inclusion_proofs_are_generated_and_verify() {
        let t = reference_tree();
        for (index, size, proof) in published_inclusion() {
            let leaf = leaf_hash(&hex::decode(LEAVES[index as usize]).unwrap());
            assert_eq!(
                inclusion_proof(&t, index, size).unwrap(),
                proof,
                "{index}/{size}"
            );
            verify_inclusion(&leaf, index, size, &proof, &reference_root(size)).unwrap();
        }
    }

    #[test]
    fn published_consistency_proofs_are_generated_and_verify() {
        let t = reference_tree();
        for (old, new, proof) in published_consistency() {
            assert_eq!(
                consistency_proof(&t, old, new).unwrap(),
                proof,
                "{old}->{new}"
            );
            verify_consistency(old, new, &reference_root(old), &reference_root(new), &proof)
                .unwrap();
        }
    }

    /// The corruptions of transparency-dev/merkle's corruptInclusionProof.
    fn inclusion_corruptions(
        index: u64,
        size: u64,
        proof: &[Hash],
        root: &Hash,
        leaf: &Hash,
    ) -> Vec<(String, u64, u64, Vec<Hash>, Hash, Hash)> {
        let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        let p = proof.to_vec();
        let mut out = vec![
            (
                "index-1".into(),
                index.wrapping_sub(1),
                size,
                p.clone(),
                *root,
                *leaf,
            ),
            ("index+1".into(), index + 1, size, p.clone(), *root, *leaf),
            ("index^2".into(), index ^ 2, size, p.clone(), *root, *leaf),
            ("size*2".into(), index, size * 2, p.clone(), *root, *leaf),
            ("size/2".into(), index, size / 2, p.clone(), *root, *leaf),
            (
                "wrong leaf".into(),
                index,
                size,
                p.clone(),
                *root,
                leaf_hash(b"WrongLeaf"),
            ),
            (
                "empty root".into(),
                index,
                size,
                p.clone(),
                empty_root(),
                *leaf,
            ),
            ("random root".into(), index, size, p.clone(), some, *leaf),
        ];
        let mut trailing_root = p.clone();
        trailing_root.push(*root);
        out.push((
            "trailing root".into(),
            index,
            size,
            trailing_root,
            *root,
            *leaf,
        ));
        let mut preceding_root = vec![*root];
        preceding_root.extend_from_slice(&p);
        out.push((
            "preceding root".into(),
            index,
            size,
            preceding_root,
            *root,
            *leaf,
        ));
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i][0] ^= 8;
            out.push((format!("modified proof[{i}]"), index, size, q, *root, *leaf));
        }
        if !p.is_empty() {
            out.push((
                "removed component".into(),
                index,
                size,
                p[..p.len() - 1].to_vec(),
                *root,
                *leaf,
            ));
        }
        if p.len() > 1 {
            let mut q = vec![p[0], some];
            q.extend_from_slice(&p[1..]);
            out.push(("inserted component".into(), index, size, q, *root, *leaf));
        }
        out
    }

    /// The corruptions of transparency-dev/merkle's corruptConsistencyProof.
    fn consistency_corruptions(
        old: u64,
        new: u64,
        old_root: &Hash,
        new_root: &Hash,
        proof: &[Hash],
    ) -> Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> {
        let wrong = leaf_hash(b"WrongRoot");
        let p = proof.to_vec();
        let with_tail = |x: Hash| {
            let mut q = p.clone();
            q.push(x);
            q
        };
        let with_head = |x: Hash| {
            let mut q = vec![x];
            q.extend_from_slice(&p);
            q
        };
        let mut out = vec![
            (
                "old-1".into(),
                old.wrapping_sub(1),
                new,
                *old_root,
                *new_root,
                p.clone(),
            ),
            (
                "old+1".into(),
                old + 1,
                new,
                *old_root,
                *new_root,
                p.clone(),
            ),
            (
                "old^2".into(),
                old ^ 2,
                new,
                *old_root,
                *new_root,
                p.clone(),
            ),
            (
                "new*2".into(),
                old,
                new * 2,
                *old_root,
                *new_root,
                p.clone(),
            ),
            (
                "new/2".into(),
                old,
                new / 2,
                *old_root,
                *new_root,
                p.clone(),
            ),
            (
                "wrong old root".into(),
                old,
                new,
                wrong,
                *new_root,
                p.clone(),
            ),
            (
                "wrong new root".into(),
                old,
                new,
                *old_root,
                wrong,
                p.clone(),
            ),
            (
                "swapped roots".into(),
                old,
                new,
                *new_root,
                *old_root,
                p.clone(),
            ),
            ("empty proof".into(), old, new, *old_root, *new_root, vec![]),
            (
                "trailing old root".into(),
                old,
                new,
                *old_root,
                *new_root,
                with_tail(*old_root),
            ),
            (
                "trailing new root".into(),
                old,
                new,
                *old_root,
                *new_root,
                with_tail(*new_root),
            ),
            (
                "preceding old root".into(),
                old,
                new,
                *old_root,
                *new_root,
                with_head(*old_root),
            ),
            (
                "preceding new root".into(),
                old,
                new,
                *old_root,
                *new_root,
                with_head(*new_root),
            ),
        ];
        if let Some(first) = p.first() {
            out.push((
                "preceding proof[0]".into(),
                old,
                new,
                *old_root,
                *new_root,
                with_head(*first),
            ));
            out.push((
                "truncated proof".into(),
                old,
                new,
                *old_root,
                *new_root,
                p[..p.len() - 1].to_vec(),
            ));
        }
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i][0] ^= 16;
            out.push((
                format!("modified proof[{i}]"),
                old,
                new,
                *old_root,
                *new_root,
                q,
            ));
        }
        out
    }

    #[test]
    fn published_proofs_fail_when_corrupted() {
        for (index, size, proof) in published_inclusion() {
            let leaf = leaf_hash(&hex::decode(LEAVES[index as usize]).unwrap());
            for (desc, i, s, p, r, l) in
                inclusion_corruptions(index, size, &proof, &reference_root(size), &leaf)
            {
                assert!(
                    verify_inclusion(&l, i, s, &p, &r).is_err(),
                    "inclusion {index}/{size}: {desc} verified"
                );
            }
        }
        for (old, new, proof) in published_consistency() {
            if proof.is_empty() {
                continue;
            }
            for (desc, o, n, or, nr, p) in consistency_corruptions(
                old,
                new,
                &reference_root(old),
                &reference_root(new),
                &proof,
            ) {
                assert!(
                    verify_consistency(o, n, &or, &nr, &p).is_err(),
                    "consistency {old}->{new}: {desc} verified"
                );
            }
        }
    }

    #[test]
    fn roots_equal_naive_mth_for_sizes_0_to_70() {
        let (t, hashes) = numbered_tree(70);
        for n in 0..=70usize {
            assert_eq!(
                root(&t, n as u64).unwrap(),
                naive_mth(&hashes[..n]),
                "size {n}"
            );
        }
    }

    #[test]
    fn proofs_equal_naive_rfc_recursion_up_to_40_leaves() {
        let (t, hashes) = numbered_tree(40);
        for n in 1..=40usize {
            let r = naive_mth(&hashes[..n]);
            for m in 0..n {
                let p = inclusion_proof(&t, m as u64, n as u64).unwrap();
                assert_eq!(p, naive_path(m, &hashes[..n]), "PATH({m}, {n})");
                assert_eq!(p.len(), inclusion_proof_len(m as u64, n as u64));
                verify_inclusion(&hashes[m], m as u64, n as u64, &p, &r).unwrap();
            }
            for m in 0..=n {
                let p = consistency_proof(&t, m as u64, n as u64).unwrap();
                let old_root = naive_mth(&hashes[..m]);
                if m > 0 && m < n {
                    assert_eq!(p, naive_proof(m, &hashes[..n]), "PROOF({m}, {n})");
                    assert_eq!(p.len(), consistency_proof_len(m as u64, n as u64));
                } else {
                    assert!(p.is_empty());
                }
                verify_consistency(m as u64, n as u64, &old_root, &r, &p).unwrap();
            }
        }
    }

    #[test]
    fn any_flipped_byte_or_wrong_index_fails_inclusion_up_to_40_leaves() {
        let (t, hashes) = numbered_tree(40);
        for n in 1..=40u64 {
            let r = root(&t, n).unwrap();
            for m in 0..n {
                let leaf = hashes[m as usize];
                let p = inclusion_proof(&t, m, n).unwrap();
                for i in 0..p.len() {
                    for byte in 0..32 {
                        let mut q = p.clone();
                        q[i] = flip(q[i], byte);
                        assert!(verify_inclusion(&leaf, m, n, &q, &r).is_err());
                    }
                }
                for byte in 0..32 {
                    assert!(verify_inclusion(&flip(leaf, byte), m, n, &p, &r).is_err());
                    assert!(verify_inclusion(&leaf, m, n, &p, &flip(r, byte)).is_err());
                }
                // Every other index of the same tree fails.
                for other in 0..n + 2 {
                    if other != m {
                        assert!(
                            verify_inclusion(&leaf, other, n, &p, &r).is_err(),
                            "index {other} accepted for leaf {m} of {n}"
                        );
                    }
                }
                for (desc, i, s, p2, r2, l2) in inclusion_corruptions(m, n, &p, &r, &leaf) {
                    assert!(
                        verify_inclusion(&l2, i, s, &p2, &r2).is_err(),
                        "inclusion {m}/{n}: {desc} verified"
                    );
                }
            }
        }
    }

    #[test]
    fn any_flipped_byte_or_wrong_size_fails_consistency_up_to_40_leaves() {
        let (t, _) = numbered_tree(40);
        for n in 2..=40u64 {
            let new_root = root(&t, n).unwrap();
            for m in 1..n {
                let old_root = root(&t, m).unwrap();
                let p = consistency_proof(&t, m, n).unwrap();
                for i in 0..p.len() {
                    for byte in 0..32 {
                        let mut q = p.clone();
                        q[i] = flip(q[i], byte);
                        assert!(verify_consistency(m, n, &old_root, &new_root, &q).is_err());
                    }
                }
                for byte in 0..32 {
                    assert!(
                        verify_consistency(m, n, &flip(old_root, byte), &new_root, &p).is_err()
                    );
                    assert!(
                        verify_consistency(m, n, &old_root, &flip(new_root, byte), &p).is_err()
                    );
                }
                for (desc, o, nn, or, nr, p2) in
                    consistency_corruptions(m, n, &old_root, &new_root, &p)
                {
                    assert!(
                        verify_consistency(o, nn, &or, &nr, &p2).is_err(),
                        "consistency {m}->{n}: {desc} verified"
                    );
                }
            }
        }
    }

    #[test]
    fn consistency_special_cases() {
        let e = empty_root();
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        // Equal sizes: empty proof and equal roots.
        assert_eq!(verify_consistency(0, 0, &e, &e, &[]), Ok(()));
        assert_eq!(verify_consistency(1, 1, &a, &a, &[]), Ok(()));
        assert_eq!(
            verify_consistency(1, 1, &a, &b, &[]),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(1, 1, &a, &a, &[e]),
            Err(MerkleError::ProofLength {
                expected: 0,
                found: 1
            })
        );
        // Size 0: empty proof, and the old root must be the empty-tree hash.
        assert_eq!(verify_consistency(0, 5, &e, &a, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 0, &a, &a, &[]),
            Err(MerkleError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 5, &a, &b, &[]),
            Err(MerkleError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 1, &e, &e, &[e]),
            Err(MerkleError::ProofLength {
                expected: 0,
                found: 1
            })
        );
        // Time travel.
        assert_eq!(
            verify_consistency(2, 1, &a, &b, &[]),
            Err(MerkleError::SizeOutOfRange {
                old_size: 2,
                new_size: 1
            })
        );
        assert!(verify_consistency(1, 0, &a, &e, &[]).is_err());
        // Growth with an empty proof.
        assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
        let t = MemoryTree::new();
        assert_eq!(consistency_proof(&t, 0, 0), Ok(vec![]));
        assert_eq!(
            consistency_proof(&t, 3, 2),
            Err(MerkleError::SizeOutOfRange {
                old_size: 3,
                new_size: 2
            })
        );
    }

    #[test]
    fn inclusion_out_of_range() {
        let a = leaf_hash(b"a");
        for (i, s) in [(0, 0), (1, 0), (1, 1), (2, 1), (u64::MAX, u64::MAX)] {
            assert_eq!(
                verify_inclusion(&a, i, s, &[], &a),
                Err(MerkleError::IndexOutOfRange { index: i, size: s })
            );
        }
        let t = reference_tree();
        assert_eq!(
            inclusion_proof(&t, 8, 8),
            Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
        );
        // Asking a store for nodes it does not have is an error, not a panic.
        assert_eq!(
            inclusion_proof(&t, 3, 9),
            Err(MerkleError::MissingNode { level: 0, index: 8 })
        );
        assert!(root(&t, 9).is_err());
        assert!(consistency_proof(&t, 3, 100).is_err());
    }

    #[test]
    fn huge_and_hostile_inputs_return_errors() {
        let a = leaf_hash(b"a");
        let long: Vec<Hash> = vec![a; 1000];
        let sizes = [
            1,
            2,
            3,
            u64::MAX / 2,
            u64::MAX / 2 + 1,
            u64::MAX - 1,
            u64::MAX,
            1 << 63,
        ];
        for &size in &sizes {
            for &index in &[0, 1, size / 2, size - 1, size, u64::MAX] {
                for len in [0usize, 1, 2, 63, 64, 65, 128, 1000] {
                    let _ = verify_inclusion(&a, index, size, &long[..len], &a);
                }
            }
            for &old in &sizes {
                for len in [0usize, 1, 2, 63, 64, 65, 128, 1000] {
                    let _ = verify_consistency(old, size, &a, &a, &long[..len]);
                }
            }
        }
        assert!(verify_inclusion(&a, u64::MAX - 1, u64::MAX, &long[..64], &a).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &a, &a, &long[..64]).is_err());
        assert_eq!(
            completed_nodes_after_append(u64::MAX, a, |_, _| Ok(a)),
            Err(MerkleError::IndexOutOfRange {
                index: u64::MAX,
                size: u64::MAX
            })
        );
    }

    #[test]
    fn huge_uniform_tree_proofs_verify() {
        let src = UniformTree::new();
        let leaf = src.by_level[0];
        for size in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 1, u64::MAX / 3] {
            let r = root(&src, size).unwrap();
            for index in [0, 1, size / 2, size - 2, size - 1] {
                let p = inclusion_proof(&src, index, size).unwrap();
                verify_inclusion(&leaf, index, size, &p, &r).unwrap();
            }
            for old in [1, 2, 3, size / 2, size / 3, size - 1, size] {
                let old_root = root(&src, old).unwrap();
                let p = consistency_proof(&src, old, size).unwrap();
                verify_consistency(old, size, &old_root, &r, &p).unwrap();
            }
        }
        assert_eq!(root(&src, 1 << 63).unwrap(), src.by_level[63]);
    }

    #[test]
    fn completed_nodes_match_a_perfect_node_store() {
        let mut store: HashMap<(u32, u64), Hash> = HashMap::new();
        let (t, hashes) = numbered_tree(70);
        for (i, lh) in hashes.iter().enumerate() {
            let nodes = completed_nodes_after_append(i as u64, *lh, |l, x| {
                store
                    .get(&(l, x))
                    .copied()
                    .ok_or(MerkleError::MissingNode { level: l, index: x })
            })
            .unwrap();
            // The leaf, then one parent per trailing one bit of the index.
            assert_eq!(nodes.len(), 1 + (i as u64).trailing_ones() as usize);
            assert_eq!(nodes[0], (0, i as u64, *lh));
            for (l, x, hash) in nodes {
                assert_eq!(t.perfect_node(l, x).unwrap(), hash);
                assert!(
                    store.insert((l, x), hash).is_none(),
                    "node ({l},{x}) inserted twice"
                );
            }
        }
        // Exactly the perfect nodes exist: for 70 leaves, sum over levels.
        let expected: u64 = (0..7).map(|l| 70u64 >> l).sum();
        assert_eq!(store.len() as u64, expected);
    }

    /// A node source that counts lookups.
    struct Counting<'a> {
        inner: &'a MemoryTree,
        count: std::cell::Cell<u32>,
    }

    impl NodeSource for Counting<'_> {
        fn perfect_node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
            self.count.set(self.count.get() + 1);
            self.inner.perfect_node(level, index)
        }
    }

    #[test]
    fn lookups_are_logarithmic() {
        let (t, _) = numbered_tree(1000);
        let c = Counting {
            inner: &t,
            count: std::cell::Cell::new(0),
        };
        for n in [1u64, 2, 3, 7, 8, 9, 513, 777, 999, 1000] {
            let bound = 2 * (64 - n.leading_zeros()) + 2;
            c.count.set(0);
            root(&c, n).unwrap();
            assert!(c.count.get() <= bound);
            for m in [0, n / 3, n / 2, n - 1] {
                c.count.set(0);
                inclusion_proof(&c, m, n).unwrap();
                assert!(
                    c.count.get() <= bound,
                    "inclusion {m}/{n}: {}",
                    c.count.get()
                );
                c.count.set(0);
                consistency_proof(&c, m, n).unwrap();
                assert!(
                    c.count.get() <= bound,
                    "consistency {m}/{n}: {}",
                    c.count.get()
                );
            }
        }
    }

    #[test]
    fn errors_display_on_one_line() {
        let errors = [
            MerkleError::IndexOutOfRange { index: 3, size: 2 },
            MerkleError::SizeOutOfRange {
                old_size: 3,
                new_size: 2,
            },
            MerkleError::ProofLength {
                expected: 3,
                found: 2,
            },
            MerkleError::RootMismatch,
            MerkleError::OldRootMismatch,
            MerkleError::MissingNode { level: 1, index: 2 },
            MerkleError::InvalidRange { start: 1, end: 1 },
        ];
        for e in errors {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
        }
    }

    /// The right edge gives the root of every size and completes the same
    /// perfect nodes as the stored tree does.
    #[test]
    fn right_edge_agrees_with_the_whole_tree() {
        let mut edge = RightEdge::default();
        let mut tree = MemoryTree::new();
        let mut hashes = Vec::new();
        let mut completed = Vec::new();
        assert_eq!(edge.root(), empty_root());
        for i in 0..200u64 {
            let leaf = leaf_hash(format!("leaf {i}").as_bytes());
            let expected = completed_nodes_after_append(i, leaf, |level, index| {
                tree.perfect_node(level, index)
            })
            .unwrap();
            edge.push(leaf, &mut completed);
            tree.push_leaf_hash(leaf).unwrap();
            hashes.push(leaf);
            assert_eq!(completed, expected, "nodes completed by leaf {i}");
            assert_eq!(edge.len(), i + 1);
            assert_eq!(edge.root(), naive_mth(&hashes), "root of size {}", i + 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_trees_agree_with_naive_recursion(
            (m, n) in (0u64..=300).prop_flat_map(|n| (0..=n, Just(n))),
            salt in any::<u64>(),
        ) {
            let mut t = MemoryTree::new();
            let mut hashes = Vec::new();
            for i in 0..n {
                let leaf = format!("{salt}/{i}");
                t.push(leaf.as_bytes()).unwrap();
                hashes.push(leaf_hash(leaf.as_bytes()));
            }
            let new_root = root(&t, n).unwrap();
            let old_root = root(&t, m).unwrap();
            prop_assert_eq!(new_root, naive_mth(&hashes));
            prop_assert_eq!(old_root, naive_mth(&hashes[..m as usize]));

            let p = consistency_proof(&t, m, n).unwrap();
            if m > 0 && m < n {
                prop_assert_eq!(&p, &naive_proof(m as usize, &hashes));
            }
            prop_assert_eq!(verify_consistency(m, n, &old_root, &new_root, &p), Ok(()));
            if !p.is_empty() {
                let mut q = p.clone();
                let i = (salt as usize) % q.len();
                q[i][(salt as usize >> 8) % 32] ^= 0x40;
                prop_assert!(verify_consistency(m, n, &old_root, &new_root, &q).is_err());
            }

            if m < n {
                let ip = inclusion_proof(&t, m, n).unwrap();
                prop_assert_eq!(&ip, &naive_path(m as usize, &hashes));
                let leaf = hashes[m as usize];
                prop_assert_eq!(verify_inclusion(&leaf, m, n, &ip, &new_root), Ok(()));
                prop_assert!(verify_inclusion(&flip(leaf, 0), m, n, &ip, &new_root).is_err());
            }
        }

        #[test]
        fn verification_never_panics(
            index in any::<u64>(),
            size in any::<u64>(),
            old in any::<u64>(),
            len in 0usize..200,
            seed in any::<[u8; 32]>(),
        ) {
            let proof = vec![seed; len];
            let _ = verify_inclusion(&seed, index, size, &proof, &seed);
            let _ = verify_consistency(old, size, &seed, &seed, &proof);
            let _ = verify_consistency(old.min(size), size.max(old), &seed, &seed, &proof);
        }
    }
}
