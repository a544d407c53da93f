//! What is counted: latency histograms, percentiles of small samples, and the kernel's UDP
//! counters (`/proc/net/snmp` for the whole machine, `/proc/net/udp` per socket, so drops
//! at the generator's own sockets are told apart from the server's).

use std::collections::HashSet;

/// Latency histogram: 10 µs buckets up to 20 s, and the largest value seen.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u32>,
    count: u64,
    max_ns: u64,
}

const BUCKET_NS: u64 = 10_000;
const BUCKETS: usize = 2_000_000;

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: vec![0; BUCKETS],
            count: 0,
            max_ns: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        let i = ((ns / BUCKET_NS) as usize).min(BUCKETS - 1);
        self.buckets[i] = self.buckets[i].saturating_add(1);
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a = a.saturating_add(*b);
        }
        self.count += other.count;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0..=1) in milliseconds (upper edge of its bucket).
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let edge = (i as u64 + 1) * BUCKET_NS;
                return Some(edge.min(self.max_ns.max(BUCKET_NS)) as f64 / 1e6);
            }
        }
        Some(self.max_ns as f64 / 1e6)
    }

    pub fn max_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.max_ns as f64 / 1e6)
    }
}

/// The `q` quantile of a sample (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64) * q).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// CPU time the whole machine spent busy (all but idle and iowait), from `/proc/stat`.
pub fn machine_busy() -> Option<std::time::Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| x)
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(std::time::Duration::from_nanos(busy * 1_000_000_000 / hz))
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's UDP counters of interest.
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpCounters {
    pub in_errors: u64,
    pub rcvbuf_errors: u64,
    pub sndbuf_errors: u64,
}

/// Reads `Udp:` InErrors, RcvbufErrors and SndbufErrors from `/proc/net/snmp`.
pub fn udp_counters() -> Option<UdpCounters> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some(UdpCounters {
        in_errors: get("InErrors")?,
        rcvbuf_errors: get("RcvbufErrors")?,
        sndbuf_errors: get("SndbufErrors").unwrap_or(0),
    })
}

/// Per-socket drops from `/proc/net/udp` (IPv4) and `/proc/net/udp6`: (at the sockets whose
/// local port is in `ours`, at every other socket).
pub fn socket_drops(ours: &HashSet<u16>) -> (u64, u64) {
    let mut mine = 0;
    let mut others = 0;
    for file in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let drops: u64 = fields.last().and_then(|d| d.parse().ok()).unwrap_or(0);
            match port {
                Some(p) if ours.contains(&p) => mine += drops,
                _ => others += drops,
            }
        }
    }
    (mine, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for us in 1..=100u64 {
            h.record(us * 100_000); // 0.1 .. 10 ms
        }
        let p50 = h.quantile_ms(0.5).unwrap_or_default();
        assert!((4.9..=5.1).contains(&p50), "{p50}");
        let p99 = h.quantile_ms(0.99).unwrap_or_default();
        assert!((9.8..=10.0).contains(&p99), "{p99}");
        assert_eq!(h.max_ms(), Some(10.0));
        let mut g = Histogram::default();
        g.merge(&h);
        assert_eq!(g.count(), 100);
    }

    #[test]
    fn sample_quantiles() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.99), Some(4.0));
    }

    #[test]
    fn kernel_counters_are_readable() {
        assert!(udp_counters().is_some());
        assert!(machine_busy().is_some());
        assert!(load_average().is_some());
    }
}
