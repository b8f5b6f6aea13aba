//! Finding a time in a series' sorted times: the search every range and
//! `latest` lookup of a rule goes through.

use crate::time::Millis;

/// Index of the first time `> t`.
pub(super) fn first_after(times: &[Millis], t: Millis) -> usize {
    search(times, t, |x| x <= t)
}

/// Index of the first time `>= t`.
pub(super) fn first_at_or_after(times: &[Millis], t: Millis) -> usize {
    search(times, t, |x| x < t)
}

/// `times.partition_point(before)`, where `before` is `x < t` or `x <= t`.
///
/// Readings mostly come at a steady pace, so the search first guesses the
/// index from where `t` falls between the first and last time, then gallops
/// from the guess: two or three probes in a few cache lines, where a plain
/// binary search over a long series misses the cache at every step (it was
/// the largest cost of evaluating rules over thousands of series).
fn search(times: &[Millis], t: Millis, before: impl Fn(Millis) -> bool) -> usize {
    let n = times.len();
    if n == 0 || !before(times[0]) {
        return 0;
    }
    if before(times[n - 1]) {
        return n;
    }
    // Now times[0] is before and times[n - 1] is not: the answer is in 1..n.
    let (first, last) = (times[0], times[n - 1]);
    let span = (last - first).max(1) as f64;
    let guess = ((t.saturating_sub(first)) as f64 / span * (n - 1) as f64) as usize;
    let guess = guess.clamp(1, n - 1);
    if before(times[guess]) {
        // Gallop right from the guess.
        let mut lo = guess;
        let mut step = 1;
        loop {
            let probe = (lo + step).min(n - 1);
            if !before(times[probe]) {
                return lo + 1 + times[lo + 1..probe].partition_point(|&x| before(x));
            }
            lo = probe;
            step *= 2;
        }
    } else {
        // Gallop left from the guess.
        let mut hi = guess;
        let mut step = 1;
        loop {
            let probe = hi.saturating_sub(step);
            if before(times[probe]) {
                return probe + 1 + times[probe + 1..hi].partition_point(|&x| before(x));
            }
            hi = probe;
            step *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn galloping_search_matches_partition_point() {
        let times: Vec<Millis> = (0..1000).map(|i| i * 3).collect();
        for t in -5..3010 {
            assert_eq!(
                first_after(&times, t),
                times.partition_point(|&x| x <= t),
                "{t}"
            );
            assert_eq!(
                first_at_or_after(&times, t),
                times.partition_point(|&x| x < t),
                "{t}"
            );
        }
        assert_eq!(first_after(&[], 5), 0);
        assert_eq!(first_after(&[7], 5), 0);
        assert_eq!(first_after(&[7], 7), 1);
    }
}
