//! Exact arithmetic for clinical values: unit conversion and half-up quantisation without binary
//! floating-point error.
//!
//! NEWS2 bands values at the chart's resolution (whole numbers, or 0.1 °C for temperature) and
//! rounds half-up: 35.05 °C is 35.1 and scores 1, 8.5 /min is 9 and scores 1. In binary floating
//! point 35.05 is 35.04999…, which would round to 35.0 and score 3: a different clinical answer.
//! [`Exact`] therefore holds a value as a reduced fraction of two integers, so that conversions
//! such as °F → °C (× 5/9) and kPa → mmHg (× 760/101.325) stay exact until the one rounding step.
//!
//! # Where the decimal comes from
//!
//! Vigil carries values as `f64` (the wire format's JSON number, the archive's Float64 column).
//! [`Exact::from_f64`] reads the *shortest decimal that round-trips* to that `f64` (what `ryu`,
//! Python's `repr` and Rust's `{}` print). Any decimal written with up to 15 significant digits is
//! recovered exactly, so `35.05` in a message, a CSV cell or a Parquet row is the decimal 35.05,
//! live and in replay alike. Digits beyond the 15th are rounded to the nearest double first; no
//! device reports vital signs with that precision.
//!
//! # Example
//!
//! ```
//! use vigil::exact::Exact;
//!
//! let t = Exact::from_f64(35.05).unwrap();
//! assert_eq!(t.round_half_up(1), Some(351)); // 35.1 °C, in tenths
//!
//! let f = Exact::from_f64(100.4).unwrap();
//! let c = f.add_integer(-32).and_then(|x| x.mul_ratio(5, 9)).unwrap();
//! assert_eq!(c.round_half_up(1), Some(380)); // 38.0 °C
//! ```

use std::cmp::Ordering;
use std::fmt;

/// The largest decimal exponent accepted by [`Exact::from_f64`], either way. Vital signs live
/// between 10^-3 and 10^4 in every unit Vigil accepts; the margin keeps every intermediate product
/// of a conversion and a quantisation well inside `i128`.
const MAX_EXPONENT: i32 = 18;

/// An exact rational number `num / den` with `den > 0` and the fraction reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Exact {
    num: i128,
    den: i128,
}

impl Exact {
    /// The integer `n`.
    pub const fn integer(n: i64) -> Exact {
        Exact {
            num: n as i128,
            den: 1,
        }
    }

    /// The fraction `num / den` in lowest terms; `None` when `den` is zero.
    pub fn ratio(num: i64, den: i64) -> Option<Exact> {
        Exact::new(num as i128, den as i128)
    }

    fn new(num: i128, den: i128) -> Option<Exact> {
        if den == 0 {
            return None;
        }
        let (num, den) = if den < 0 {
            (num.checked_neg()?, den.checked_neg()?)
        } else {
            (num, den)
        };
        let g = gcd(num.unsigned_abs(), den.unsigned_abs()).max(1) as i128;
        Some(Exact {
            num: div(num, g),
            den: div(den, g),
        })
    }

    /// The decimal that `value` is written as: the shortest decimal that round-trips to it.
    ///
    /// `None` for NaN, infinities, and magnitudes outside 10^±18 (never a vital sign).
    pub fn from_f64(value: f64) -> Option<Exact> {
        if !value.is_finite() {
            return None;
        }
        if value == 0.0 {
            return Some(Exact::integer(0));
        }
        Exact::from_short_decimal(value).or_else(|| Exact::from_printed(value))
    }

    /// [`Exact::from_f64`] of a finite, non-zero value, by printing its shortest round-trip
    /// digits.
    fn from_printed(value: f64) -> Option<Exact> {
        // `{:e}` prints the shortest round-trip digits as `d.ddddde±x`.
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e')?;
        let exponent: i32 = exponent.parse().ok()?;
        let negative = mantissa.starts_with('-');
        let mantissa = mantissa.trim_start_matches('-');
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits: i128 = 0;
        for c in int_part.chars().chain(frac_part.chars()) {
            let d = c.to_digit(10)? as i128;
            digits = digits.checked_mul(10)?.checked_add(d)?;
        }
        // value = digits × 10^(exponent − len(frac_part))
        let scale = exponent - frac_part.len() as i32;
        if !(-2 * MAX_EXPONENT..=MAX_EXPONENT).contains(&scale)
            || !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent)
        {
            return None;
        }
        let pow = 10i128.checked_pow(scale.unsigned_abs())?;
        let signed = if negative { -digits } else { digits };
        if scale >= 0 {
            Exact::new(signed.checked_mul(pow)?, 1)
        } else {
            Exact::new(signed, pow)
        }
    }

    /// [`Exact::from_f64`] without printing, for the values devices send: a decimal `m / 10^k`
    /// with `k ≤ 6` and at most 15 significant digits that round-trips to `value`. It is the
    /// shortest round-trip decimal's value, because two decimals of at most 15 significant digits
    /// never round to one double. `None` when the value is not of that shape.
    fn from_short_decimal(value: f64) -> Option<Exact> {
        const POWERS: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
        for (k, &p) in POWERS.iter().enumerate() {
            // The product is within a few ulps of the numerator (below 0.5 under 10^15), so the
            // nearest integer is it; the division checks that it round-trips.
            let m = (value * p).round();
            if m.abs() < 1e15 && m / p == value {
                // Both are below 2^53: exact as integers; reduce in 64 bits.
                let (num, den) = (m as i64, 10i64.pow(k as u32));
                let g = gcd64(num.unsigned_abs(), den as u64).max(1) as i64;
                return Some(Exact {
                    num: (num / g) as i128,
                    den: (den / g) as i128,
                });
            }
        }
        None
    }

    /// `self + n`, or `None` on overflow.
    pub fn add_integer(self, n: i64) -> Option<Exact> {
        let num = mul(n as i128, self.den)?.checked_add(self.num)?;
        Exact::new(num, self.den)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Exact) -> Option<Exact> {
        let g = gcd(self.den.unsigned_abs(), other.den.unsigned_abs()).max(1) as i128;
        let num =
            mul(self.num, div(other.den, g))?.checked_add(mul(other.num, div(self.den, g))?)?;
        Exact::new(num, mul(self.den, div(other.den, g))?)
    }

    /// `self / 2` (the mean of two values is their sum's half), or `None` on overflow. The
    /// fraction is in lowest terms, so halving an even numerator or doubling the denominator of
    /// an odd one keeps it there: no common divisor to look for.
    pub fn half(self) -> Option<Exact> {
        if self.num % 2 == 0 {
            Some(Exact {
                num: self.num / 2,
                den: self.den,
            })
        } else {
            Some(Exact {
                num: self.num,
                den: mul(self.den, 2)?,
            })
        }
    }

    /// `self × num / den`, or `None` on overflow or a zero `den`.
    pub fn mul_ratio(self, num: i64, den: i64) -> Option<Exact> {
        let factor = Exact::ratio(num, den)?;
        // Cross-reduce first so the products stay small.
        let g1 = gcd(self.num.unsigned_abs(), factor.den.unsigned_abs()).max(1) as i128;
        let g2 = gcd(factor.num.unsigned_abs(), self.den.unsigned_abs()).max(1) as i128;
        Exact::new(
            mul(div(self.num, g1), div(factor.num, g2))?,
            mul(div(self.den, g2), div(factor.den, g1))?,
        )
    }

    /// The value rounded half-up (towards +∞ on a tie) to `decimals` decimal places, as an
    /// integer count of `10^-decimals`: 35.05 at one decimal is `351`, 8.5 at zero is `9`.
    ///
    /// `None` on overflow (impossible for the ranges Vigil accepts).
    pub fn round_half_up(self, decimals: u32) -> Option<i64> {
        let scaled = mul(self.num, 10i128.checked_pow(decimals)?)?;
        // floor((scaled + den/2) / den) == floor((2·scaled + den) / (2·den))
        let n = scaled.checked_mul(2)?.checked_add(self.den)?;
        let d = self.den.checked_mul(2)?;
        let q = match (i64::try_from(n), i64::try_from(d)) {
            (Ok(n), Ok(d)) => n.div_euclid(d) as i128,
            _ => n.div_euclid(d),
        };
        i64::try_from(q).ok()
    }

    /// The nearest `f64` (for display and statistics, never for banding).
    pub fn to_f64(self) -> f64 {
        // An integer converts to the same nearest double from either width; from 64 bits it is
        // one instruction, from 128 a call.
        match (i64::try_from(self.num), i64::try_from(self.den)) {
            (Ok(n), Ok(d)) => n as f64 / d as f64,
            _ => self.num as f64 / self.den as f64,
        }
    }
}

impl Ord for Exact {
    fn cmp(&self, other: &Exact) -> Ordering {
        // The common case (two whole numbers, two values in tenths): no multiplication.
        if self.den == other.den {
            return self.num.cmp(&other.num);
        }
        // Both denominators are positive; compare num_a·den_b with num_b·den_a (`mul` takes
        // the 64-bit path when the factors fit). The values Vigil builds keep these products
        // far from i128::MAX (see MAX_EXPONENT); fall back to f64 in the impossible case rather
        // than panic.
        match (mul(self.num, other.den), mul(other.num, self.den)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl PartialOrd for Exact {
    fn partial_cmp(&self, other: &Exact) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Exact {
    /// Whole numbers print as integers; anything else as the nearest `f64` (shortest form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}", self.to_f64())
        }
    }
}

fn gcd64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The values Vigil builds fit in 64 bits nearly always, where division is an instruction and
/// not a call (128-bit division was a tenth of the monitors' profile): the helpers below take
/// that path when they can, and give the same result as 128-bit arithmetic.
fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        if let (Ok(a), Ok(b)) = (u64::try_from(a), u64::try_from(b)) {
            return u128::from(gcd64(a, b));
        }
        (a, b) = (b, a % b);
    }
    a
}

/// `a × b`, or `None` on overflow.
fn mul(a: i128, b: i128) -> Option<i128> {
    match (i64::try_from(a), i64::try_from(b)) {
        // Two 64-bit factors: the product fits.
        (Ok(a), Ok(b)) => Some(i128::from(a) * i128::from(b)),
        _ => a.checked_mul(b),
    }
}

/// `a / g` for a divisor `g > 0`.
fn div(a: i128, g: i128) -> i128 {
    match (i64::try_from(a), i64::try_from(g)) {
        (Ok(a), Ok(g)) => i128::from(a / g),
        _ => a / g,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ex(v: f64) -> Exact {
        Exact::from_f64(v).unwrap()
    }

    proptest! {
        /// The fast path reads the same decimal as printing the shortest round-trip digits:
        /// for decimals as devices send them, and for arbitrary doubles.
        #[test]
        fn the_short_decimal_path_agrees_with_printing(
            n in -10_000_000_000i64..10_000_000_000,
            k in 0u32..9,
            bits in any::<u64>(),
        ) {
            let decimal = n as f64 / 10f64.powi(k as i32);
            for v in [decimal, f64::from_bits(bits)] {
                if v.is_finite() && v != 0.0 && let Some(fast) = Exact::from_short_decimal(v) {
                    prop_assert_eq!(Some(fast), Exact::from_printed(v), "{}", v);
                }
            }
            if decimal != 0.0 && k <= 6 {
                prop_assert!(Exact::from_short_decimal(decimal).is_some(), "{}", decimal);
            }
        }
    }

    #[test]
    fn the_short_decimal_path_takes_what_devices_send_and_leaves_the_rest() {
        for (v, num, den) in [
            (35.05, 701, 20),
            (98.6, 493, 5),
            (72.0, 72, 1),
            (-0.5, -1, 2),
        ] {
            assert_eq!(Exact::from_short_decimal(v), Exact::ratio(num, den), "{v}");
        }
        // Not a short decimal: printed instead, same contract.
        assert_eq!(Exact::from_short_decimal(0.1 + 0.2), None);
        assert_eq!(
            ex(0.1 + 0.2),
            Exact::from_printed(0.30000000000000004).unwrap()
        );
        assert_eq!(Exact::from_short_decimal(1e20), None);
    }

    #[test]
    fn reads_the_decimal_a_value_was_written_as() {
        assert_eq!(ex(35.05), Exact::ratio(3505, 100).unwrap());
        assert_eq!(ex(0.1), Exact::ratio(1, 10).unwrap());
        assert_eq!(ex(-2.5), Exact::ratio(-5, 2).unwrap());
        assert_eq!(ex(1200.0), Exact::integer(1200));
        assert_eq!(ex(0.0), Exact::integer(0));
        assert_eq!(ex(-0.0), Exact::integer(0));
        assert_eq!(ex(1e-7), Exact::ratio(1, 10_000_000).unwrap());
    }

    #[test]
    fn rejects_non_finite_and_absurd_magnitudes() {
        assert_eq!(Exact::from_f64(f64::NAN), None);
        assert_eq!(Exact::from_f64(f64::INFINITY), None);
        assert_eq!(Exact::from_f64(f64::NEG_INFINITY), None);
        assert_eq!(Exact::from_f64(1e300), None);
        assert_eq!(Exact::from_f64(1e-300), None);
        assert_eq!(Exact::from_f64(f64::MIN_POSITIVE), None);
    }

    #[test]
    fn rounds_half_up_exactly() {
        assert_eq!(ex(35.05).round_half_up(1), Some(351));
        assert_eq!(ex(35.04).round_half_up(1), Some(350));
        assert_eq!(ex(8.5).round_half_up(0), Some(9));
        assert_eq!(ex(8.49).round_half_up(0), Some(8));
        assert_eq!(ex(91.5).round_half_up(0), Some(92));
        assert_eq!(ex(0.0).round_half_up(0), Some(0));
        // towards +∞ on a tie, also below zero
        assert_eq!(ex(-0.5).round_half_up(0), Some(0));
        assert_eq!(ex(-1.5).round_half_up(0), Some(-1));
        assert_eq!(ex(-1.6).round_half_up(0), Some(-2));
    }

    #[test]
    fn converts_units_exactly() {
        // °F → °C: 100.4 °F is exactly 38 °C, 95.09 °F exactly 35.05 °C (rounds up to 35.1).
        let c = |f: f64| ex(f).add_integer(-32).unwrap().mul_ratio(5, 9).unwrap();
        assert_eq!(c(100.4), Exact::integer(38));
        assert_eq!(c(95.09).round_half_up(1), Some(351));
        assert_eq!(c(98.6).round_half_up(1), Some(370));
        // kPa → mmHg: 101.325 kPa is exactly 760 mmHg.
        let mmhg = |k: f64| ex(k).mul_ratio(760_000, 101_325).unwrap();
        assert_eq!(mmhg(101.325), Exact::integer(760));
        assert_eq!(mmhg(12.0).round_half_up(0), Some(90)); // 90.007…
    }

    #[test]
    fn adds_exactly() {
        assert_eq!(ex(0.1).checked_add(ex(0.2)), Some(ex(0.3)));
        assert_eq!(
            Exact::ratio(1, 3)
                .unwrap()
                .checked_add(Exact::ratio(1, 6).unwrap()),
            Exact::ratio(1, 2)
        );
    }

    #[test]
    fn orders_exactly() {
        assert!(ex(35.05) > ex(35.049_999_999_999));
        assert!(Exact::ratio(1, 3).unwrap() < ex(0.333_333_333_333_34));
        assert_eq!(ex(2.0).cmp(&Exact::ratio(4, 2).unwrap()), Ordering::Equal);
    }

    /// Fractions in 64 bits and beyond, as conversions and sums of decimals build them.
    fn fraction() -> impl Strategy<Value = (i128, i128)> {
        let small = (-1_000_000_000i128..1_000_000_000, 1i128..1_000_000_000);
        let wide = (any::<i64>(), 1i64..i64::MAX)
            .prop_map(|(n, d)| (i128::from(n) << 20, i128::from(d) << 3));
        prop_oneof![small, wide]
    }

    proptest! {
        /// The 64-bit paths give what 128-bit arithmetic gives.
        #[test]
        fn the_64_bit_paths_agree_with_128_bit_arithmetic(
            (an, ad) in fraction(),
            (bn, bd) in fraction(),
            decimals in 0u32..=3,
        ) {
            let (a, b) = (Exact::new(an, ad).unwrap(), Exact::new(bn, bd).unwrap());
            let g = (an.unsigned_abs(), ad.unsigned_abs());
            let mut wide = (g.0, g.1);
            while wide.1 != 0 {
                wide = (wide.1, wide.0 % wide.1);
            }
            prop_assert_eq!(gcd(g.0, g.1), wide.0);
            prop_assert_eq!((a.num, a.den), (an / wide.0.max(1) as i128, ad / wide.0.max(1) as i128));
            let cross = (a.num.checked_mul(b.den), b.num.checked_mul(a.den));
            if let (Some(x), Some(y)) = cross {
                prop_assert_eq!(a.cmp(&b), x.cmp(&y));
            }
            prop_assert_eq!(a.to_f64().to_bits(), (a.num as f64 / a.den as f64).to_bits());
            let wide_round = a.num.checked_mul(10i128.pow(decimals)).and_then(|s| {
                let n = s.checked_mul(2)?.checked_add(a.den)?;
                i64::try_from(n.div_euclid(a.den.checked_mul(2)?)).ok()
            });
            prop_assert_eq!(a.round_half_up(decimals), wide_round);
            // Sums and ratios: the same reduced fraction as 128-bit arithmetic throughout.
            let wide_sum = {
                let g = gcd(a.den.unsigned_abs(), b.den.unsigned_abs()) as i128;
                a.num.checked_mul(b.den / g).and_then(|x| x.checked_add(b.num.checked_mul(a.den / g)?))
                    .and_then(|n| Exact::new(n, a.den.checked_mul(b.den / g)?))
            };
            prop_assert_eq!(a.checked_add(b), wide_sum);
            let (rn, rd) = (i64::try_from(bn % 1_000_000).unwrap(), i64::try_from(bd % 1_000_000 + 1).unwrap());
            let wide_ratio = Exact::ratio(rn, rd).and_then(|f| {
                let g1 = gcd(a.num.unsigned_abs(), f.den.unsigned_abs()).max(1) as i128;
                let g2 = gcd(f.num.unsigned_abs(), a.den.unsigned_abs()).max(1) as i128;
                Exact::new((a.num / g1).checked_mul(f.num / g2)?, (a.den / g2).checked_mul(f.den / g1)?)
            });
            prop_assert_eq!(a.mul_ratio(rn, rd), wide_ratio);
            prop_assert_eq!(a.half(), a.mul_ratio(1, 2));
            let wide_plus = (7i128).checked_mul(a.den).and_then(|x| Exact::new(x.checked_add(a.num)?, a.den));
            prop_assert_eq!(a.add_integer(7), wide_plus);
        }

        /// Any decimal with up to 15 significant digits survives the trip through f64.
        #[test]
        fn decimals_round_trip_through_f64(mantissa in -999_999_999_999_999i64..=999_999_999_999_999, shift in 0u32..=12) {
            let expected = Exact::ratio(mantissa, 10i64.pow(shift)).unwrap();
            let as_float = mantissa as f64 / 10f64.powi(shift as i32);
            prop_assert_eq!(Exact::from_f64(as_float), Some(expected));
        }

        #[test]
        fn rounding_is_within_half_a_step(v in -1.0e6f64..1.0e6, decimals in 0u32..=3) {
            let e = Exact::from_f64(v).unwrap();
            let q = e.round_half_up(decimals).unwrap();
            let steps = 2 * 10i64.pow(decimals);
            // q − ½ step ≤ v < q + ½ step, i.e. (2q − 1)/(2·10^d) ≤ v < (2q + 1)/(2·10^d)
            let lower = Exact::ratio(2 * q - 1, steps).unwrap();
            let upper = Exact::ratio(2 * q + 1, steps).unwrap();
            prop_assert!(lower <= e && e < upper, "{} rounded to {}", e, q);
        }
    }
}
