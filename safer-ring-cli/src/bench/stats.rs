//! The estimates: a median with a distribution-free confidence interval, and the ratio of two
//! variants' medians with a percentile-bootstrap interval.
//!
//! Hand-written (about a hundred lines) rather than a statistics crate: the ones that have a
//! bootstrap or t quantiles (`statrs` and the like) bring `nalgebra`/`rand` trees that would
//! dominate the CLI's build; only the seeded PRNG comes from a crate (`fastrand`, no deps).

/// The confidence level asked of every interval.
pub const LEVEL: f64 = 0.95;
/// Bootstrap resamples per ratio.
pub const RESAMPLES: usize = 10_000;
/// Fixed seed: the same samples always give the same interval.
pub const SEED: u64 = 0x5afe_0011;

/// An estimate with its interval; `level` is the interval's actual coverage (below `LEVEL`
/// when there are too few samples to reach it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub level: f64,
}

/// What a ratio interval says about two variants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The interval includes 1.0.
    NoDifference,
    /// The first variant is faster (the interval lies above 1.0).
    FirstFaster,
    /// The second variant is faster (the interval lies below 1.0).
    SecondFaster,
}

impl Verdict {
    pub fn of(ratio: &Interval) -> Verdict {
        if ratio.low > 1.0 {
            Verdict::FirstFaster
        } else if ratio.high < 1.0 {
            Verdict::SecondFaster
        } else {
            Verdict::NoDifference
        }
    }
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of a non-empty sample.
pub fn median(xs: &[f64]) -> f64 {
    median_sorted(&sorted(xs))
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// P(X < k) for X ~ Binomial(n, 1/2), summed in log space (0.5^n underflows past n = 1074).
fn binomial_half_below(n: usize, k: usize) -> f64 {
    let ln2 = std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut p = 0.0;
    for i in 0..k.min(n + 1) {
        p += (ln_choose - n as f64 * ln2).exp();
        ln_choose += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
    }
    p
}

/// The median of a non-empty sample and the order-statistic interval `(x_(k), x_(n+1-k))`
/// with the largest `k` whose coverage, `1 - 2 P(Bin(n, 1/2) < k)`, is at least 95 %; it
/// assumes nothing about the distribution. Below 6 samples no `k` reaches 95 %: the interval
/// is then the sample's range and `level` says how much it covers.
pub fn median_ci(xs: &[f64]) -> Interval {
    let v = sorted(xs);
    let n = v.len();
    let coverage = |k: usize| 1.0 - 2.0 * binomial_half_below(n, k);
    let mut k = 1;
    while k < n.div_ceil(2) && coverage(k + 1) >= LEVEL {
        k += 1;
    }
    Interval {
        estimate: median_sorted(&v),
        low: v[k - 1],
        high: v[n - k],
        level: coverage(k),
    }
}

fn resampled_median(rng: &mut fastrand::Rng, xs: &[f64], scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..xs.len()).map(|_| xs[rng.usize(..xs.len())]));
    scratch.sort_by(f64::total_cmp);
    median_sorted(scratch)
}

/// The `q` quantile of a sorted, non-empty sample: the element at `floor(q * len)`, the last
/// one for `q = 1`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

/// `RESAMPLES` ratios of the medians of `a` and `b`, each resampled independently with a fixed
/// seed, sorted.
fn bootstrap_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut scratch = Vec::with_capacity(a.len().max(b.len()));
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let ma = resampled_median(&mut rng, a, &mut scratch);
            ma / resampled_median(&mut rng, b, &mut scratch)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// `median(a) / median(b)` with a 95 % percentile-bootstrap interval: both samples resampled
/// independently `RESAMPLES` times with a fixed seed. Both samples non-empty and positive.
pub fn ratio_ci(a: &[f64], b: &[f64]) -> Interval {
    let ratios = bootstrap_ratios(a, b);
    let tail = (1.0 - LEVEL) / 2.0;
    Interval {
        estimate: median(a) / median(b),
        low: quantile(&ratios, tail),
        high: quantile(&ratios, 1.0 - tail),
        level: LEVEL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    /// Odd counts take the middle element (including 1 and 5, where `n / 2 == 1` would pick
    /// the other branch), even ones the mean of the two middle ones.
    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[5.0]), 5.0);
        assert_eq!(median(&[2.0, 4.0]), 3.0);
        assert_eq!(median(&[9.0, 1.0, 7.0, 3.0, 5.0]), 5.0);
        assert_eq!(median(&[9.0, 1.0, 7.0, 3.0, 5.0, 11.0, 2.0]), 5.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]), 6.0);
    }

    /// Quantiles index `floor(q * len)`; `q = 1` is the last element, not one past it.
    #[test]
    fn quantiles_and_their_bound() {
        let v: Vec<f64> = (0..RESAMPLES).map(|i| i as f64).collect();
        assert_eq!(quantile(&v, 0.0), 0.0);
        assert_eq!(quantile(&v, 0.025), 250.0);
        assert_eq!(quantile(&v, 0.975), 9750.0);
        assert_eq!(quantile(&v, 1.0), 9999.0);
        assert_eq!(quantile(&[3.0, 4.0], 1.0), 4.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
    }

    /// The ratio interval runs from the bootstrap's 2.5th to its 97.5th percentile and says so
    /// (level 95 %).
    #[test]
    fn ratio_interval_is_the_central_95_percent() {
        assert_eq!(LEVEL, 0.95);
        let a = [
            70.0, 130.0, 95.0, 110.0, 85.0, 120.0, 100.0, 75.0, 125.0, 105.0,
        ];
        let b = [90.0, 60.0, 140.0, 100.0, 80.0, 115.0, 99.0, 101.0];
        let ratios = bootstrap_ratios(&a, &b);
        assert_eq!(ratios.len(), RESAMPLES);
        assert!(ratios.windows(2).all(|w| w[0] <= w[1]));
        let r = ratio_ci(&a, &b);
        assert_eq!(r.low, quantile(&ratios, 0.025), "{r:?}");
        assert_eq!(r.high, quantile(&ratios, 0.975), "{r:?}");
        assert!(r.low < r.estimate && r.estimate < r.high, "{r:?}");
        assert_eq!(r.level, 0.95);
    }

    #[test]
    fn binomial_tail_matches_hand_computed_values() {
        // n = 10: P(X < 2) = (1 + 10) / 1024, P(X < 3) = 56 / 1024.
        assert!((binomial_half_below(10, 2) - 11.0 / 1024.0).abs() < 1e-12);
        assert!((binomial_half_below(10, 3) - 56.0 / 1024.0).abs() < 1e-12);
        assert!((binomial_half_below(5000, 5001) - 1.0).abs() < 1e-9);
        // k beyond n sums all n + 1 terms (the last is 0.5^n, not negligible for small n).
        assert!((binomial_half_below(1, 2) - 1.0).abs() < 1e-12);
        assert!((binomial_half_below(3, 9) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn median_interval_of_known_samples() {
        // Ten samples: (x_(2), x_(9)), coverage 1 - 2 * 11/1024 = 97.85 %; k = 3 would be 89 %.
        let xs: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let ci = median_ci(&xs);
        assert_eq!((ci.estimate, ci.low, ci.high), (5.5, 2.0, 9.0));
        assert!((ci.level - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        // 25 samples: k = 8, (x_(8), x_(18)), coverage 95.7 %.
        let xs: Vec<f64> = (1..=25).map(f64::from).collect();
        let ci = median_ci(&xs);
        assert_eq!((ci.low, ci.high), (8.0, 18.0));
        assert!(ci.level >= LEVEL && ci.level < 0.96, "{ci:?}");
        // Three samples cannot reach 95 %: the range, which covers 75 %.
        let ci = median_ci(&[5.0, 9.0, 7.0]);
        assert_eq!(
            (ci.estimate, ci.low, ci.high, ci.level),
            (7.0, 5.0, 9.0, 0.75)
        );
    }

    #[test]
    fn identical_samples_show_no_difference() {
        let xs = [10.0, 12.0, 9.0, 11.0, 10.5, 13.0, 9.5, 10.2, 11.1, 12.4];
        let r = ratio_ci(&xs, &xs);
        assert_eq!(r.estimate, 1.0);
        assert!(r.low < 1.0 && r.high > 1.0, "{r:?}");
        assert_eq!(Verdict::of(&r), Verdict::NoDifference);
        let same = [4.0; 5];
        let r = ratio_ci(&same, &same);
        assert_eq!((r.estimate, r.low, r.high), (1.0, 1.0, 1.0));
        assert_eq!(Verdict::of(&r), Verdict::NoDifference);
    }

    #[test]
    fn clearly_different_samples_have_a_winner() {
        let fast: Vec<f64> = (0..10).map(|i| 200.0 + f64::from(i)).collect();
        let slow: Vec<f64> = (0..10).map(|i| 100.0 + f64::from(i)).collect();
        let r = ratio_ci(&fast, &slow);
        assert!((r.estimate - 204.5 / 104.5).abs() < 1e-12);
        assert!(r.low > 1.8 && r.high < 2.1, "{r:?}");
        assert_eq!(Verdict::of(&r), Verdict::FirstFaster);
        assert_eq!(Verdict::of(&ratio_ci(&slow, &fast)), Verdict::SecondFaster);
    }

    #[test]
    fn overlapping_noisy_samples_are_not_called() {
        // Medians 5% apart, spread +-30%: no verdict from ten samples each.
        let a = [
            70.0, 130.0, 95.0, 110.0, 85.0, 120.0, 100.0, 75.0, 125.0, 105.0,
        ];
        let b: Vec<f64> = a.iter().map(|x| x * 0.95).rev().collect();
        let r = ratio_ci(&a, &b);
        assert_eq!(Verdict::of(&r), Verdict::NoDifference, "{r:?}");
    }

    #[test]
    fn the_interval_is_reproducible() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [2.0, 3.0, 1.0, 5.0];
        assert_eq!(ratio_ci(&a, &b), ratio_ci(&a, &b));
    }
}
