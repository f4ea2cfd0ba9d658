//! Internal rate of return over dated cash flows (XIRR).
//!
//! This module owns the IRR figure of the reports: the rate `r` that solves
//!
//! ```text
//! sum_i CF_i / (1 + r)^((d_i - d_0) / 365) = 0
//! ```
//!
//! with an actual/365 day count from the earliest date `d_0`, as spreadsheet XIRR functions
//! compute it (contributions negative, distributions and the final NAV positive).
//!
//! A rate is not money, so the solver works in `f64`; amounts stay [`Decimal`] up to the call
//! and are converted only inside it. Nothing here ever produces an amount of money.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use time::Date;

/// Lowest rate searched (exclusive in spirit): a loss of 99.9999 % a year.
const LOWER: f64 = -0.999_999;
/// Highest rate searched: 100,000,000 % a year.
const UPPER: f64 = 1e6;
/// Newton's starting guess, as in spreadsheet XIRR.
const GUESS: f64 = 0.1;
/// A rate is a root when |NPV| is at most this fraction of the sum of |discounted flows|.
const TOLERANCE: f64 = 1e-10;
/// Newton iterations before falling back to bracketing.
const MAX_NEWTON_STEPS: usize = 100;
/// Number of cells of the grid, uniform in ln(1 + r), scanned for a sign change.
const GRID_CELLS: usize = 4000;
/// Bisection steps; far more than needed to reach the precision of an f64.
const MAX_BISECTION_STEPS: usize = 300;

/// The annual internal rate of return of dated cash flows, as a fraction (`0.1234` is 12.34 %).
///
/// Flows are `(date, amount)`, in any order; money paid in is negative, money received (and a
/// final NAV) positive. Several flows may share a date. The day count is actual/365 from the
/// earliest date.
///
/// Solved by Newton's method from 0.1, falling back to bisection of a sign change of the NPV
/// over rates in (-0.999999, 1e6) when Newton fails (diverges, leaves that interval or meets a
/// zero derivative). When the NPV has several roots, the fallback takes the one nearest to 0.1
/// (measured in ln(1 + r)).
///
/// Returns `None` when:
/// * `flows` is empty, or does not have both a negative and a positive amount;
/// * all non-zero flows fall on one date (no time passes, so no rate is defined);
/// * no rate in (-0.999999, 1e6) brings |NPV| within 1e-10 of the sum of the absolute
///   discounted flows (for example a loss of more than 99.9999 % a year).
pub fn xirr(flows: &[(Date, Decimal)]) -> Option<f64> {
    // Sorted, so that the floating-point sums, and so the result to the last bit, do not depend
    // on the order of the input.
    let mut sorted: Vec<(Date, Decimal)> = flows
        .iter()
        .filter(|(_, a)| !a.is_zero())
        .copied()
        .collect();
    sorted.sort();
    let first = flows.iter().map(|(date, _)| *date).min()?;
    let mut amounts = Vec::with_capacity(sorted.len());
    let mut years = Vec::with_capacity(sorted.len());
    for (date, amount) in &sorted {
        amounts.push(amount.to_f64()?);
        // Whole days between two valid dates are below 2^53, so the conversion is exact.
        years.push((*date - first).whole_days() as f64 / 365.0);
    }
    if amounts.is_empty() {
        return None;
    }
    let has_negative = amounts.iter().any(|a| *a < 0.0);
    let has_positive = amounts.iter().any(|a| *a > 0.0);
    if !has_negative || !has_positive {
        return None;
    }
    let t_min = years.iter().copied().fold(f64::INFINITY, f64::min);
    let t_max = years.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if t_min == t_max {
        return None;
    }
    let npv = Npv {
        amounts,
        years,
        t_max,
    };
    npv.newton().or_else(|| npv.bracket())
}

/// Writes a rate with exactly `places` decimal places and never an exponent:
/// `format_rate(0.373362535, 6)` is `"0.373363"`, `format_rate(-0.05, 4)` is `"-0.0500"`.
///
/// Rounds to nearest. A negative rate that rounds to zero is written without a sign. A rate that
/// is not finite is written `NaN`, `inf` or `-inf`.
pub fn format_rate(rate: f64, places: u32) -> String {
    if !rate.is_finite() {
        return rate.to_string();
    }
    let text = format!("{:.*}", places as usize, rate);
    match text.strip_prefix('-') {
        Some(unsigned) if unsigned.bytes().all(|b| b == b'0' || b == b'.') => unsigned.to_string(),
        _ => text,
    }
}

/// The net present value of flows as a function of the rate.
struct Npv {
    /// Non-zero amounts.
    amounts: Vec<f64>,
    /// Years from the earliest date, actual/365.
    years: Vec<f64>,
    /// The largest of `years`.
    t_max: f64,
}

/// The NPV at a rate, its derivative and the sum of the absolute discounted flows, all
/// multiplied by the same positive factor (which changes neither the roots, nor the Newton
/// step, nor the relative tolerance).
struct Evaluation {
    value: f64,
    derivative: f64,
    scale: f64,
}

impl Evaluation {
    fn within_tolerance(&self) -> bool {
        self.value.abs() <= TOLERANCE * self.scale
    }
}

impl Npv {
    /// Evaluates at rate `r` > -1. Each flow is discounted as (1 + r)^(s - t_i), that is
    /// multiplied by (1 + r)^s, with s = t_max for negative rates and s = 0 otherwise, so that
    /// every exponent is at most zero: no term can overflow, whatever the rate and dates.
    fn eval(&self, r: f64) -> Option<Evaluation> {
        let log_growth = r.ln_1p();
        let shift = if r < 0.0 { self.t_max } else { 0.0 };
        let mut value = 0.0;
        let mut derivative = 0.0;
        let mut scale = 0.0;
        for (amount, t) in self.amounts.iter().zip(&self.years) {
            let term = amount * ((shift - t) * log_growth).exp();
            value += term;
            scale += term.abs();
            derivative -= t * term / (1.0 + r);
        }
        let finite = value.is_finite() && derivative.is_finite() && scale.is_finite();
        (finite && scale > 0.0).then_some(Evaluation {
            value,
            derivative,
            scale,
        })
    }

    /// Newton's method from [`GUESS`]; `None` if it leaves the search interval, meets a zero
    /// derivative or does not converge.
    fn newton(&self) -> Option<f64> {
        let mut r = GUESS;
        for _ in 0..MAX_NEWTON_STEPS {
            let e = self.eval(r)?;
            let next = r - e.value / e.derivative;
            let in_interval = next > LOWER && next < UPPER;
            if e.within_tolerance() {
                // One more step polishes the root; keep it only if it is still a root.
                let polished = in_interval && self.is_root(next);
                return Some(if polished { next } else { r });
            }
            if e.derivative == 0.0 || !in_interval {
                return None;
            }
            r = next;
        }
        None
    }

    /// Finds a sign change of the NPV on a grid uniform in ln(1 + r) over the search interval,
    /// the one nearest to [`GUESS`], and bisects it.
    fn bracket(&self) -> Option<f64> {
        let x_low = LOWER.ln_1p();
        let x_high = UPPER.ln_1p();
        let x_guess = GUESS.ln_1p();
        let rate = |x: f64| x.exp_m1();
        let sign = |x: f64| self.eval(rate(x)).map(|e| e.value);

        let step = (x_high - x_low) / GRID_CELLS as f64;
        let mut best: Option<(f64, f64)> = None;
        let mut previous: Option<(f64, f64)> = None;
        for k in 0..=GRID_CELLS {
            let x = x_low + step * k as f64;
            let Some(value) = sign(x) else {
                previous = None;
                continue;
            };
            let candidate = if value == 0.0 {
                Some((x, x))
            } else {
                match previous {
                    Some((px, pv)) if (pv < 0.0) != (value < 0.0) => Some((px, x)),
                    _ => None,
                }
            };
            if let Some((a, b)) = candidate {
                let distance = |(a, b): (f64, f64)| ((a + b) / 2.0 - x_guess).abs();
                if best.is_none_or(|current| distance((a, b)) < distance(current)) {
                    best = Some((a, b));
                }
            }
            previous = Some((x, value));
        }

        let (mut low, mut high) = best?;
        let mut low_value = sign(low)?;
        for _ in 0..MAX_BISECTION_STEPS {
            let mid = low + (high - low) / 2.0;
            if mid <= low || mid >= high {
                break;
            }
            let mid_value = sign(mid)?;
            if mid_value == 0.0 {
                low = mid;
                high = mid;
                break;
            }
            if (mid_value < 0.0) == (low_value < 0.0) {
                low = mid;
                low_value = mid_value;
            } else {
                high = mid;
            }
        }
        [low, high]
            .into_iter()
            .map(rate)
            .filter(|r| *r > -1.0)
            .filter_map(|r| self.eval(r).map(|e| (r, e.value.abs() / e.scale)))
            .filter(|(_, relative)| *relative <= TOLERANCE)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(r, _)| r)
    }

    fn is_root(&self, r: f64) -> bool {
        self.eval(r).is_some_and(|e| e.within_tolerance())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn flows(list: &[(Date, &str)]) -> Vec<(Date, Decimal)> {
        list.iter()
            .map(|(d, a)| (*d, Decimal::from_str_exact(a).unwrap()))
            .collect()
    }

    /// NPV at rate r, computed directly, for checking answers.
    fn npv(list: &[(Date, Decimal)], r: f64) -> f64 {
        let first = list.iter().map(|(d, _)| *d).min().unwrap();
        list.iter()
            .map(|(d, a)| {
                let t = (*d - first).whole_days() as f64 / 365.0;
                a.to_f64().unwrap() / (1.0 + r).powf(t)
            })
            .sum()
    }

    fn microsoft() -> Vec<(Date, Decimal)> {
        flows(&[
            (date!(2008 - 01 - 01), "-10000"),
            (date!(2008 - 03 - 01), "2750"),
            (date!(2008 - 10 - 30), "4250"),
            (date!(2009 - 02 - 15), "3250"),
            (date!(2009 - 04 - 01), "2750"),
        ])
    }

    #[test]
    fn microsoft_example() {
        let r = xirr(&microsoft()).unwrap();
        // Microsoft's documentation shows 0.373362535; Excel stops at a looser tolerance. The
        // exact root (bisection to machine precision) is 0.37336253351883...
        assert!((r - 0.373362535).abs() < 2e-9, "{r}");
        assert!((r - 0.373_362_533_518_831).abs() < 1e-12, "{r}");
        assert_eq!(format_rate(r, 6), "0.373363");
        assert_eq!(format_rate(r, 4), "0.3734");
        assert!(npv(&microsoft(), r).abs() < 1e-6);
    }

    #[test]
    fn unordered_input_gives_the_same_rate() {
        let mut reversed = microsoft();
        reversed.reverse();
        assert_eq!(xirr(&reversed), xirr(&microsoft()));
        let mut rotated = microsoft();
        rotated.rotate_left(2);
        assert_eq!(xirr(&rotated), xirr(&microsoft()));
    }

    #[test]
    fn same_day_flows_act_as_their_sum() {
        // Splitting the first contribution into two on the same day changes nothing.
        let mut split = microsoft();
        split[0].1 = Decimal::from(-6000);
        split.push((date!(2008 - 01 - 01), Decimal::from(-4000)));
        let a = xirr(&split).unwrap();
        let b = xirr(&microsoft()).unwrap();
        assert!((a - b).abs() < 1e-12, "{a} {b}");
        // A contribution and a distribution on the same day, among others.
        let mixed = flows(&[
            (date!(2020 - 01 - 01), "-1000"),
            (date!(2021 - 01 - 01), "-500"),
            (date!(2021 - 01 - 01), "300"),
            (date!(2022 - 01 - 01), "1500"),
        ]);
        let merged = flows(&[
            (date!(2020 - 01 - 01), "-1000"),
            (date!(2021 - 01 - 01), "-200"),
            (date!(2022 - 01 - 01), "1500"),
        ]);
        let (a, b) = (xirr(&mixed).unwrap(), xirr(&merged).unwrap());
        assert!((a - b).abs() < 1e-12, "{a} {b}");
    }

    #[test]
    fn all_flows_on_one_day_have_no_rate() {
        let one_day = flows(&[
            (date!(2020 - 01 - 01), "-100"),
            (date!(2020 - 01 - 01), "100"),
        ]);
        assert_eq!(xirr(&one_day), None);
        // Zero flows do not count as a date.
        let with_zero = flows(&[
            (date!(2020 - 01 - 01), "-100"),
            (date!(2020 - 01 - 01), "110"),
            (date!(2021 - 01 - 01), "0"),
        ]);
        assert_eq!(xirr(&with_zero), None);
    }

    #[test]
    fn one_signed_flows_have_no_rate() {
        assert_eq!(xirr(&[]), None);
        let negative = flows(&[
            (date!(2020 - 01 - 01), "-100"),
            (date!(2021 - 01 - 01), "-50"),
        ]);
        assert_eq!(xirr(&negative), None);
        let positive = flows(&[
            (date!(2020 - 01 - 01), "100"),
            (date!(2021 - 01 - 01), "50"),
        ]);
        assert_eq!(xirr(&positive), None);
        let single = flows(&[(date!(2020 - 01 - 01), "-100")]);
        assert_eq!(xirr(&single), None);
    }

    #[test]
    fn total_loss() {
        // Nothing comes back: the rate would be -100 %, which no finite rate reaches.
        let nothing = flows(&[
            (date!(2020 - 01 - 01), "-100"),
            (date!(2021 - 01 - 01), "0"),
        ]);
        assert_eq!(xirr(&nothing), None);
        // 1 back on 100 after exactly 365 days: -99 %.
        let almost = flows(&[
            (date!(2021 - 01 - 01), "-100"),
            (date!(2022 - 01 - 01), "1"),
        ]);
        let r = xirr(&almost).unwrap();
        assert!((r + 0.99).abs() < 1e-9, "{r}");
        // A loss beyond -99.9999 % a year is outside the search interval.
        let beyond = flows(&[
            (date!(2021 - 01 - 01), "-1000000000"),
            (date!(2022 - 01 - 01), "1"),
        ]);
        assert_eq!(xirr(&beyond), None);
    }

    #[test]
    fn negative_rate() {
        let loss = flows(&[
            (date!(2021 - 01 - 01), "-100"),
            (date!(2022 - 01 - 01), "90"),
        ]);
        let r = xirr(&loss).unwrap();
        assert!((r + 0.1).abs() < 1e-9, "{r}");
        assert_eq!(format_rate(r, 4), "-0.1000");
        let fund = flows(&[
            (date!(2019 - 03 - 15), "-2500000.00"),
            (date!(2020 - 06 - 30), "-1250000.00"),
            (date!(2022 - 12 - 31), "400000.00"),
            (date!(2024 - 12 - 31), "2100000.00"),
        ]);
        let r = xirr(&fund).unwrap();
        assert!(r < 0.0 && r > -0.2, "{r}");
        assert!(npv(&fund, r).abs() < 1e-4, "{}", npv(&fund, r));
    }

    #[test]
    fn simple_positive_rates() {
        let double = flows(&[
            (date!(2021 - 01 - 01), "-100"),
            (date!(2022 - 01 - 01), "200"),
        ]);
        assert!((xirr(&double).unwrap() - 1.0).abs() < 1e-9);
        let ten = flows(&[
            (date!(2021 - 01 - 01), "-100"),
            (date!(2022 - 01 - 01), "110"),
        ]);
        assert!((xirr(&ten).unwrap() - 0.1).abs() < 1e-12);
        // Receive first, pay later (a loan from the partner's point of view) also has a rate.
        let loan = flows(&[
            (date!(2021 - 01 - 01), "100"),
            (date!(2022 - 01 - 01), "-110"),
        ]);
        assert!((xirr(&loan).unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn very_high_rate_found_by_bracketing() {
        // Doubling in 30 days: 2^(365/30) - 1, about 4,588.
        let fast = flows(&[(date!(2021 - 01 - 01), "-1"), (date!(2021 - 01 - 31), "2")]);
        let r = xirr(&fast).unwrap();
        let expected = 2f64.powf(365.0 / 30.0) - 1.0;
        assert!(((r - expected) / expected).abs() < 1e-9, "{r} {expected}");
        // A thousandfold in one day is beyond 1e6 a year.
        let absurd = flows(&[
            (date!(2021 - 01 - 01), "-1"),
            (date!(2021 - 01 - 02), "1000"),
        ]);
        assert_eq!(xirr(&absurd), None);
    }

    #[test]
    fn large_amounts_and_long_horizons() {
        let big = flows(&[
            (date!(2000 - 01 - 01), "-79228162514264337593543950"),
            (date!(2100 - 01 - 01), "79228162514264337593543950335"),
        ]);
        let r = xirr(&big).unwrap();
        let days = (date!(2100 - 01 - 01) - date!(2000 - 01 - 01)).whole_days() as f64;
        let expected = 1000f64.powf(365.0 / days) - 1.0;
        assert!((r - expected).abs() < 1e-6, "{r} {expected}");
    }

    fn solver(list: &[(Date, Decimal)]) -> Npv {
        let first = list.iter().map(|(d, _)| *d).min().unwrap();
        let years: Vec<f64> = list
            .iter()
            .map(|(d, _)| (*d - first).whole_days() as f64 / 365.0)
            .collect();
        Npv {
            amounts: list.iter().map(|(_, a)| a.to_f64().unwrap()).collect(),
            t_max: years.iter().copied().fold(0.0, f64::max),
            years,
        }
    }

    #[test]
    fn both_solvers_agree() {
        let ms = solver(&microsoft());
        let (n, b) = (ms.newton().unwrap(), ms.bracket().unwrap());
        assert!((n - b).abs() < 1e-12, "{n} {b}");
        // Newton leaves the interval for a near-total loss; bracketing finds the root.
        let almost = solver(&flows(&[
            (date!(2021 - 01 - 01), "-100"),
            (date!(2022 - 01 - 01), "1"),
        ]));
        assert_eq!(almost.newton(), None);
        assert!((almost.bracket().unwrap() + 0.99).abs() < 1e-9);
    }

    #[test]
    fn several_roots_take_the_one_nearest_the_guess() {
        // -100 + 230 / (1 + r) - 132 / (1 + r)^2 = 0 at r = 10 % and r = 20 %.
        let two = flows(&[
            (date!(2021 - 01 - 01), "-100"),
            (date!(2022 - 01 - 01), "230"),
            (date!(2023 - 01 - 01), "-132"),
        ]);
        assert!((xirr(&two).unwrap() - 0.1).abs() < 1e-9);
        assert!((solver(&two).bracket().unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn format_rates() {
        assert_eq!(format_rate(0.373362535, 6), "0.373363");
        assert_eq!(format_rate(0.1, 2), "0.10");
        assert_eq!(format_rate(1e6, 2), "1000000.00");
        assert_eq!(format_rate(1e-12, 4), "0.0000");
        assert_eq!(format_rate(-1e-12, 4), "0.0000");
        assert_eq!(format_rate(-0.0, 2), "0.00");
        assert_eq!(format_rate(-0.99, 3), "-0.990");
        assert_eq!(format_rate(12.4, 0), "12");
        assert_eq!(format_rate(1e21, 1), "1000000000000000000000.0");
        assert_eq!(format_rate(f64::NAN, 2), "NaN");
        assert!(!format_rate(1e-300, 6).contains('e'));
    }
}
