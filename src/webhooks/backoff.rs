//! When to try a failed delivery again: doubling from a minimum to a maximum, spread by a
//! jitter the caller draws, so that many endpoints failing together do not retry together.

use std::time::Duration;

/// The wait before attempt `attempt + 1` after `attempt` failures (1 = the first try
/// failed): `min · 2^(attempt-1)`, at most `max`, scaled by `jitter` in [0.8, 1.2].
pub fn delay(attempt: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let base = min.saturating_mul(1u32 << doublings).min(max);
    base.mul_f64(jitter.clamp(0.8, 1.2)).min(max.mul_f64(1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_minimum_and_stop_growing_at_the_maximum() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(300));
        let table = [
            (1, 1.0, 1_000),
            (2, 1.0, 2_000),
            (3, 1.0, 4_000),
            (9, 1.0, 256_000),
            (10, 1.0, 300_000),
            (1_000, 1.0, 300_000),
            (3, 0.8, 3_200),
            (3, 1.2, 4_800),
            (3, 5.0, 4_800),
            (0, 1.0, 1_000),
        ];
        for (attempt, jitter, millis) in table {
            assert_eq!(
                delay(attempt, min, max, jitter),
                Duration::from_millis(millis),
                "attempt {attempt}, jitter {jitter}"
            );
        }
    }
}
