//! Pro-rata splits that sum exactly.
//!
//! This module owns the one rule the ledger uses to divide an amount (a capital call, a fee, a
//! distribution) among partners in proportion to weights (commitments, paid-in capital, ...):
//! the largest-remainder method of DOMAIN.md.
//!
//! 1. Each key gets the floor of its exact share `total * w / W` in minor units.
//! 2. The minor units left over are handed out one by one to the largest fractional
//!    remainders, ties broken by key ascending.
//!
//! All arithmetic is exact integer arithmetic on minor units and on the weights brought to a
//! common scale (no float, no rounding), so the same inputs give the same split on every
//! machine, whatever the order in which the weights are given.

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;

use crate::money::{from_minor_units, to_minor_units, Currency, MoneyError};

/// Why a split could not be made.
///
/// Every message is one line that says what is wrong and how to fix it. Weights are identified
/// by their position in the input slice, counting from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// The total is negative.
    NegativeTotal {
        /// The total as given.
        total: Decimal,
    },
    /// The total is not a valid amount of the currency (too many decimal places).
    Total(MoneyError),
    /// No weights were given.
    NoWeights,
    /// A weight is negative.
    NegativeWeight {
        /// Position of the weight in the input, counting from 0.
        index: usize,
        /// The weight as given.
        weight: Decimal,
    },
    /// Every weight is zero, so there is no proportion to split by.
    AllWeightsZero,
    /// The same key appears twice.
    DuplicateKey {
        /// Position of its first occurrence, counting from 0.
        first: usize,
        /// Position of its second occurrence, counting from 0.
        second: usize,
    },
    /// An intermediate value does not fit in 128 bits: the weights span too many orders of
    /// magnitude (for example 10^28 next to 10^-28).
    Overflow,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::NegativeTotal { total } => write!(
                f,
                "cannot split a negative total ({total}): split the positive amount and book the opposite entry"
            ),
            SplitError::Total(e) => write!(f, "cannot split the total: {e}"),
            SplitError::NoWeights => {
                write!(f, "cannot split without weights: give at least one partner a positive weight")
            }
            SplitError::NegativeWeight { index, weight } => write!(
                f,
                "weight at position {index} (counting from 0) is negative ({weight}): weights must be zero or positive"
            ),
            SplitError::AllWeightsZero => write!(
                f,
                "every weight is zero, so there is nothing to split by: give at least one partner a positive weight"
            ),
            SplitError::DuplicateKey { first, second } => write!(
                f,
                "the weights at positions {first} and {second} (counting from 0) have the same key: give each key one weight"
            ),
            SplitError::Overflow => write!(
                f,
                "the split overflows 128-bit arithmetic: the weights span too many orders of magnitude; round the weights to fewer decimal places"
            ),
        }
    }
}

impl std::error::Error for SplitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SplitError::Total(e) => Some(e),
            _ => None,
        }
    }
}

/// Splits `total` among keys in proportion to their weights, summing exactly to `total`.
///
/// * `total` must be zero or positive, with no more decimal places than `currency` allows.
/// * `weights` are zero or positive decimals of any scale, at least one positive, with no key
///   given twice.
///
/// Each key gets the floor of its exact share `total * w / W` in minor units of `currency`
/// (`W` is the sum of the weights); the units left over go one by one to the keys with the
/// largest fractional remainders, ties broken by key ascending. A key with a zero weight gets
/// exactly zero.
///
/// The result is sorted by key ascending, has one entry per key (zero shares included), every
/// share has exactly `currency.minor_units()` decimal places, and the shares sum to `total`.
/// It does not depend on the order of `weights`.
pub fn split_pro_rata<K: Ord + Clone>(
    total: Decimal,
    currency: Currency,
    weights: &[(K, Decimal)],
) -> Result<Vec<(K, Decimal)>, SplitError> {
    if total.is_sign_negative() && !total.is_zero() {
        return Err(SplitError::NegativeTotal { total });
    }
    let total_units = to_minor_units(total, currency).map_err(SplitError::Total)?;
    let total_units = u128::try_from(total_units).map_err(|_| SplitError::Overflow)?;
    if weights.is_empty() {
        return Err(SplitError::NoWeights);
    }
    if let Some((index, (_, weight))) = weights
        .iter()
        .enumerate()
        .find(|(_, (_, w))| w.is_sign_negative() && !w.is_zero())
    {
        return Err(SplitError::NegativeWeight {
            index,
            weight: *weight,
        });
    }

    // Input positions sorted by key; equal keys end up next to each other.
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[a].0.cmp(&weights[b].0).then(a.cmp(&b)));
    if let Some(pair) = order
        .windows(2)
        .find(|p| weights[p[0]].0 == weights[p[1]].0)
    {
        return Err(SplitError::DuplicateKey {
            first: pair[0],
            second: pair[1],
        });
    }

    let int_weights = integer_weights(weights.iter().map(|(_, w)| *w))?;
    let weight_sum = int_weights
        .iter()
        .try_fold(0u128, |acc, w| acc.checked_add(*w))
        .ok_or(SplitError::Overflow)?;
    if weight_sum == 0 {
        return Err(SplitError::AllWeightsZero);
    }

    // Floor shares and remainders, in key order.
    let mut shares = Vec::with_capacity(order.len());
    let mut remainders = Vec::with_capacity(order.len());
    let mut allocated: u128 = 0;
    for &i in &order {
        let (quotient, remainder) = mul_div_rem(total_units, int_weights[i], weight_sum);
        // quotient <= total_units because the weight is at most the sum.
        allocated += quotient;
        shares.push(quotient);
        remainders.push(remainder);
    }
    // The leftover is (sum of remainders) / W, an integer smaller than the number of keys.
    let leftover = usize::try_from(total_units - allocated).map_err(|_| SplitError::Overflow)?;
    debug_assert!(leftover < order.len());

    // Positions (in key order) by largest remainder first; ties keep key order.
    let mut by_remainder: Vec<usize> = (0..order.len()).collect();
    by_remainder.sort_by(|&a, &b| match remainders[b].cmp(&remainders[a]) {
        Ordering::Equal => a.cmp(&b),
        other => other,
    });
    for &pos in by_remainder.iter().take(leftover) {
        shares[pos] += 1;
    }

    order
        .iter()
        .zip(shares)
        .map(|(&i, units)| {
            let units = i128::try_from(units).map_err(|_| SplitError::Overflow)?;
            let amount = from_minor_units(units, currency).map_err(SplitError::Total)?;
            Ok((weights[i].0.clone(), amount))
        })
        .collect()
}

/// Brings non-negative decimal weights to integers at a common scale, exactly: each weight
/// times 10^s, where s is the largest number of significant decimal places among them.
fn integer_weights(weights: impl Iterator<Item = Decimal>) -> Result<Vec<u128>, SplitError> {
    let normalized: Vec<Decimal> = weights.map(|w| w.normalize()).collect();
    let scale = normalized.iter().map(Decimal::scale).max().unwrap_or(0);
    normalized
        .iter()
        .map(|w| {
            let mantissa = w.mantissa().unsigned_abs();
            10u128
                .checked_pow(scale - w.scale())
                .and_then(|factor| mantissa.checked_mul(factor))
                .ok_or(SplitError::Overflow)
        })
        .collect()
}

/// Returns `(a * b / d, a * b % d)` exactly, for `d > 0` and `b <= d`, using a 256-bit
/// intermediate product, so that the quotient (at most `a`) and remainder (less than `d`)
/// always fit in 128 bits.
fn mul_div_rem(a: u128, b: u128, d: u128) -> (u128, u128) {
    debug_assert!(d > 0 && b <= d);
    let (hi, lo) = mul_wide(a, b);
    if hi == 0 {
        return (lo / d, lo % d);
    }
    // Schoolbook binary long division of the 256-bit (hi, lo) by d. The remainder stays below d,
    // and d < 2^128, so (remainder << 1 | bit) fits in 129 bits: track the carried-out bit.
    let mut quotient: u128 = 0;
    let mut remainder: u128 = 0;
    for bit in (0..256).rev() {
        let next_bit = if bit >= 128 {
            (hi >> (bit - 128)) & 1
        } else {
            (lo >> bit) & 1
        };
        let carry = remainder >> 127;
        remainder = (remainder << 1) | next_bit;
        quotient <<= 1;
        if carry == 1 || remainder >= d {
            remainder = remainder.wrapping_sub(d);
            quotient |= 1;
        }
    }
    (quotient, remainder)
}

/// The full 256-bit product of two u128 values, as (high, low) halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a_hi, a_lo) = (a >> 64, a & MASK);
    let (b_hi, b_lo) = (b >> 64, b & MASK);
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    // The carry from the low term plus the low halves of the cross terms: each is below 2^64,
    // so the sum cannot overflow; its high half carries into `hi`.
    let mid = (ll >> 64) + (lh & MASK) + (hl & MASK);
    let lo = (ll & MASK) | (mid << 64);
    let hi = hh + (lh >> 64) + (hl >> 64) + (mid >> 64);
    (hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn split(
        total: &str,
        code: &str,
        weights: &[(&'static str, &str)],
    ) -> Vec<(&'static str, String)> {
        let weights: Vec<(&str, Decimal)> = weights.iter().map(|(k, w)| (*k, dec(w))).collect();
        split_pro_rata(dec(total), cur(code), &weights)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    }

    fn owned(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|(k, s)| (*k, s.to_string())).collect()
    }

    #[test]
    fn equal_weights_tie_goes_to_smallest_keys() {
        assert_eq!(
            split("100.00", "USD", &[("c", "1"), ("a", "1"), ("b", "1")]),
            owned(&[("a", "33.34"), ("b", "33.33"), ("c", "33.33")])
        );
        assert_eq!(
            split(
                "100.00",
                "USD",
                &[
                    ("p1", "5"),
                    ("p2", "5"),
                    ("p3", "5"),
                    ("p4", "5"),
                    ("p5", "5"),
                    ("p6", "5")
                ]
            ),
            owned(&[
                ("p1", "16.67"),
                ("p2", "16.67"),
                ("p3", "16.67"),
                ("p4", "16.67"),
                ("p5", "16.66"),
                ("p6", "16.66"),
            ])
        );
    }

    #[test]
    fn largest_remainder_wins_over_key_order() {
        // Exact shares: a 0.333.., b 0.666.. of 1.00 -> a 33.33.. b 66.66..: b has the larger
        // remainder (0.666 vs 0.333) and gets the leftover cent.
        assert_eq!(
            split("1.00", "USD", &[("a", "1"), ("b", "2")]),
            owned(&[("a", "0.33"), ("b", "0.67")])
        );
        // 10.00 by 7/2/1: 7.00, 2.00, 1.00 exactly.
        assert_eq!(
            split("10.00", "USD", &[("x", "7"), ("y", "2"), ("z", "1")]),
            owned(&[("x", "7.00"), ("y", "2.00"), ("z", "1.00")])
        );
    }

    #[test]
    fn commitments_example() {
        // A 1,000,000.00 call on commitments of 5M, 3M and 2,500,000.50. Exact shares in cents:
        // ai-corp 23809527.44, gov 47619045.35, sovereign 28571427.21; the floors leave one
        // cent, which goes to the largest remainder (ai-corp).
        let got = split(
            "1000000.00",
            "USD",
            &[
                ("gov", "5000000.00"),
                ("sovereign", "3000000"),
                ("ai-corp", "2500000.5"),
            ],
        );
        let total: Decimal = got.iter().map(|(_, v)| dec(v)).sum();
        assert_eq!(total, dec("1000000.00"));
        assert_eq!(
            got,
            owned(&[
                ("ai-corp", "238095.28"),
                ("gov", "476190.45"),
                ("sovereign", "285714.27")
            ])
        );
    }

    #[test]
    fn zero_decimal_currency() {
        assert_eq!(
            split("100", "JPY", &[("a", "1"), ("b", "1"), ("c", "1")]),
            owned(&[("a", "34"), ("b", "33"), ("c", "33")])
        );
        assert_eq!(
            split("1", "JPY", &[("a", "1"), ("b", "1")]),
            owned(&[("a", "1"), ("b", "0")])
        );
    }

    #[test]
    fn three_decimal_currency() {
        assert_eq!(
            split("10.000", "KWD", &[("a", "1"), ("b", "1"), ("c", "1")]),
            owned(&[("a", "3.334"), ("b", "3.333"), ("c", "3.333")])
        );
        assert_eq!(
            split("1", "KWD", &[("a", "2"), ("b", "1")]),
            owned(&[("a", "0.667"), ("b", "0.333")])
        );
    }

    #[test]
    fn zero_weights_get_zero() {
        assert_eq!(
            split(
                "100.00",
                "USD",
                &[("a", "0"), ("b", "1"), ("c", "0.00"), ("d", "3")]
            ),
            owned(&[("a", "0.00"), ("b", "25.00"), ("c", "0.00"), ("d", "75.00")])
        );
        // The leftover unit never goes to a zero weight, even when it sorts first.
        assert_eq!(
            split("0.01", "USD", &[("a", "0"), ("b", "1"), ("c", "1")]),
            owned(&[("a", "0.00"), ("b", "0.01"), ("c", "0.00")])
        );
    }

    #[test]
    fn one_partner_gets_everything() {
        assert_eq!(
            split("1234.56", "USD", &[("only", "0.0001")]),
            owned(&[("only", "1234.56")])
        );
    }

    #[test]
    fn zero_total() {
        assert_eq!(
            split("0", "USD", &[("a", "1"), ("b", "2")]),
            owned(&[("a", "0.00"), ("b", "0.00")])
        );
    }

    #[test]
    fn one_minor_unit() {
        assert_eq!(
            split("0.01", "USD", &[("a", "1"), ("b", "1"), ("c", "1")]),
            owned(&[("a", "0.01"), ("b", "0.00"), ("c", "0.00")])
        );
        assert_eq!(
            split("0.01", "USD", &[("a", "1"), ("b", "1"), ("c", "1.0000001")]),
            owned(&[("a", "0.00"), ("b", "0.00"), ("c", "0.01")])
        );
        assert_eq!(
            split("0.001", "KWD", &[("b", "1"), ("a", "1")]),
            owned(&[("a", "0.001"), ("b", "0.000")])
        );
    }

    #[test]
    fn large_amounts() {
        assert_eq!(
            split(
                "1000000000000000.00",
                "USD",
                &[("a", "1"), ("b", "1"), ("c", "1")]
            ),
            owned(&[
                ("a", "333333333333333.34"),
                ("b", "333333333333333.33"),
                ("c", "333333333333333.33"),
            ])
        );
        // Near the largest amount money.rs accepts, with weights of 28 decimal places: the
        // product needs more than 128 bits and is still exact.
        let total = format!("{}.99", "9".repeat(20));
        let got = split(
            &total,
            "USD",
            &[
                ("a", "0.3333333333333333333333333333"),
                ("b", "0.3333333333333333333333333333"),
                ("c", "0.3333333333333333333333333334"),
            ],
        );
        let sum: Decimal = got.iter().map(|(_, v)| dec(v)).sum();
        assert_eq!(sum, dec(&total));
        assert_eq!(
            got,
            owned(&[
                ("a", "33333333333333333333.33"),
                ("b", "33333333333333333333.33"),
                ("c", "33333333333333333333.33"),
            ])
        );
    }

    #[test]
    fn errors() {
        let usd = cur("USD");
        let w = [("a", dec("1"))];
        assert_eq!(
            split_pro_rata(dec("-1.00"), usd, &w),
            Err(SplitError::NegativeTotal {
                total: dec("-1.00")
            })
        );
        assert!(matches!(
            split_pro_rata(dec("1.001"), usd, &w),
            Err(SplitError::Total(MoneyError::TooManyDecimalPlaces { .. }))
        ));
        let none: [(&str, Decimal); 0] = [];
        assert_eq!(
            split_pro_rata(dec("1"), usd, &none),
            Err(SplitError::NoWeights)
        );
        assert_eq!(
            split_pro_rata(dec("1"), usd, &[("a", dec("1")), ("b", dec("-0.5"))]),
            Err(SplitError::NegativeWeight {
                index: 1,
                weight: dec("-0.5")
            })
        );
        assert_eq!(
            split_pro_rata(dec("1"), usd, &[("a", dec("0")), ("b", dec("0.000"))]),
            Err(SplitError::AllWeightsZero)
        );
        assert_eq!(
            split_pro_rata(dec("0"), usd, &[("a", dec("0"))]),
            Err(SplitError::AllWeightsZero)
        );
        assert_eq!(
            split_pro_rata(
                dec("1"),
                usd,
                &[("b", dec("1")), ("a", dec("1")), ("b", dec("2"))]
            ),
            Err(SplitError::DuplicateKey {
                first: 0,
                second: 2
            })
        );
        // 10^28 next to 10^-28 cannot be brought to a common integer scale in 128 bits.
        assert_eq!(
            split_pro_rata(
                dec("1"),
                usd,
                &[
                    ("a", Decimal::MAX),
                    ("b", dec("0.0000000000000000000000000001"))
                ]
            ),
            Err(SplitError::Overflow)
        );
        for e in [
            SplitError::NegativeTotal { total: dec("-1") },
            SplitError::NoWeights,
            SplitError::AllWeightsZero,
            SplitError::DuplicateKey {
                first: 0,
                second: 1,
            },
            SplitError::Overflow,
        ] {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s}");
        }
    }

    #[test]
    fn negative_zero_is_zero() {
        let got = split_pro_rata(
            -Decimal::ZERO,
            cur("USD"),
            &[("a", dec("1")), ("b", -Decimal::ZERO)],
        )
        .unwrap();
        assert_eq!(got, vec![("a", dec("0.00")), ("b", dec("0.00"))]);
    }

    #[test]
    fn wide_multiplication_and_division() {
        assert_eq!(mul_wide(u128::MAX, u128::MAX), (u128::MAX - 1, 1));
        assert_eq!(mul_wide(1 << 64, 1 << 64), (1, 0));
        assert_eq!(mul_wide(3, 5), (0, 15));
        assert_eq!(mul_div_rem(u128::MAX, u128::MAX, u128::MAX), (u128::MAX, 0));
        assert_eq!(
            mul_div_rem(u128::MAX, u128::MAX - 1, u128::MAX),
            (u128::MAX - 1, 0)
        );
        assert_eq!(mul_div_rem(u128::MAX, 1, u128::MAX), (1, 0));
        // Against the identity q * d + r == a * b, with a product above 2^128.
        let (a, b, d) = ((1u128 << 127) + 1, 1u128 << 127, u128::MAX);
        let (q, r) = mul_div_rem(a, b, d);
        assert!(r < d);
        let (qh, ql) = mul_wide(q, d);
        let (lo, carry) = ql.overflowing_add(r);
        assert_eq!((qh + u128::from(carry), lo), mul_wide(a, b));
    }

    proptest! {
        #[test]
        fn mul_div_matches_native(a in any::<u64>(), b in any::<u64>(), extra in any::<u64>()) {
            let (a, b) = (u128::from(a), u128::from(b));
            let d = b + u128::from(extra) + 1;
            prop_assert_eq!(mul_div_rem(a, b, d), ((a * b) / d, (a * b) % d));
        }

        #[test]
        fn mul_div_identity(a in any::<u128>(), b in any::<u128>(), extra in any::<u128>()) {
            let d = b.saturating_add(extra).max(1);
            let b = b.min(d);
            let (q, r) = mul_div_rem(a, b, d);
            prop_assert!(r < d);
            prop_assert!(q <= a);
            let (qh, ql) = mul_wide(q, d);
            let (lo, carry) = ql.overflowing_add(r);
            prop_assert_eq!((qh + u128::from(carry), lo), mul_wide(a, b));
        }
    }

    /// A currency, a total in its minor units, and distinct keys with weights of mixed scale.
    fn split_case() -> impl Strategy<Value = (Currency, i128, Vec<(u32, Decimal)>)> {
        let currency = prop::sample::select(vec!["USD", "JPY", "KWD", "CLF"]).prop_map(cur);
        let weight = (0u64..1_000_000_000, 0u32..7).prop_map(|(m, s)| Decimal::new(m as i64, s));
        let weights = prop::collection::btree_map(any::<u32>(), weight, 1..12)
            .prop_filter("needs a positive weight", |m| {
                m.values().any(|w| !w.is_zero())
            })
            .prop_map(|m| m.into_iter().collect::<Vec<_>>());
        (currency, 0i128..1_000_000_000_000_000, weights)
    }

    proptest! {
        #[test]
        fn split_properties(
            (currency, total_units, weights) in split_case(),
            seed in any::<u64>(),
        ) {
            let total = from_minor_units(total_units, currency).unwrap();
            let got = split_pro_rata(total, currency, &weights).unwrap();

            // Sorted by key, one entry per key, exact sum, currency scale.
            prop_assert_eq!(got.len(), weights.len());
            prop_assert!(got.windows(2).all(|p| p[0].0 < p[1].0));
            let sum: Decimal = got.iter().map(|(_, v)| *v).sum();
            prop_assert_eq!(sum, total);
            prop_assert!(got.iter().all(|(_, v)| v.scale() == currency.minor_units()));

            // Each share within one minor unit of the exact share: |s*W - T*w| < W.
            // Weights scaled by 10^6 stay below 10^15; T < 10^15; products fit in i128.
            let scaled: Vec<(u32, i128)> = weights
                .iter()
                .map(|(k, w)| (*k, (*w * Decimal::new(1_000_000, 0)).mantissa() / 10i128.pow(w.scale())))
                .collect();
            let weight_sum: i128 = scaled.iter().map(|(_, w)| w).sum();
            for (key, share) in &got {
                let w = scaled.iter().find(|(k, _)| k == key).unwrap().1;
                let s = to_minor_units(*share, currency).unwrap();
                let diff = s * weight_sum - total_units * w;
                prop_assert!(diff.abs() < weight_sum, "key {} share {} diff {}", key, share, diff);
                prop_assert!(s >= 0);
                if w == 0 {
                    prop_assert_eq!(s, 0);
                }
            }

            // Deterministic whatever the input order: reverse and rotate the weights.
            let mut shuffled = weights.clone();
            shuffled.reverse();
            let rotation = (seed as usize) % shuffled.len();
            shuffled.rotate_left(rotation);
            prop_assert_eq!(split_pro_rata(total, currency, &shuffled).unwrap(), got.clone());
            prop_assert_eq!(split_pro_rata(total, currency, &weights).unwrap(), got);
        }

        #[test]
        fn scaling_all_weights_does_not_change_the_split(
            (currency, total_units, weights) in split_case(),
            factor in 1i64..1000,
        ) {
            let total = from_minor_units(total_units, currency).unwrap();
            let scaled: Vec<(u32, Decimal)> = weights
                .iter()
                .map(|(k, w)| (*k, *w * Decimal::new(factor, 0)))
                .collect();
            prop_assert_eq!(
                split_pro_rata(total, currency, &weights).unwrap(),
                split_pro_rata(total, currency, &scaled).unwrap()
            );
        }
    }
}
