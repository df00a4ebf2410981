//! The figures of one workload, computed from its ledger: what was scheduled, refused,
//! delivered exactly once, lost or duplicated, and how late, by the harness's clock first and the
//! server's timestamps second.

use super::workload::{Kind, Ledger, Workload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How much longer than an ordinary message's the way from a delayed event's stamp to the harness
/// may take before the stamp is judged to be the scheduled time rather than the real send time.
const STAMP_GAP_MS: f64 = 300.0;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; all zero for no samples.
    pub fn of(samples: &[f64]) -> Percentiles {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        Percentiles {
            count: sorted.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Figures {
    pub events: usize,
    pub users: usize,
    pub heartbeaters: usize,
    pub delay_ms: u64,
    pub spread_ms: u64,
    /// Delayed events the server accepted (heartbeaters' hang-ups included).
    pub scheduled: usize,
    /// Refused requests by "kind status errcode".
    pub refused: BTreeMap<String, usize>,
    /// Events that should have been sent and were, exactly once.
    pub delivered_once: usize,
    /// Events that should have been sent and were not, within the allowance.
    pub lost: usize,
    /// Events sent more than once.
    pub duplicated: usize,
    /// Events seen before they were due by the harness's own clock.
    pub early: usize,
    pub cancelled: usize,
    /// Cancelled events that were sent all the same.
    pub sent_despite_cancel: usize,
    pub sent_now: usize,
    pub heartbeats: usize,
    pub heartbeats_refused: usize,
    /// Hang-ups that landed while their member was still heartbeating.
    pub hung_up_early: usize,
    /// Events that got the minimal delay because scheduling fell behind the planned due times.
    pub behind_plan: usize,
    /// From due (harness clock, just before the request that set the timer, plus the delay) to
    /// the `/sync` answer carrying the event: the primary figure.
    pub lateness_ms: Percentiles,
    /// `origin_server_ts` minus the due time on the wall clock: the server's own claim.
    pub server_lateness_ms: Percentiles,
    /// From `origin_server_ts` to the harness seeing the event (wall clock): for the delayed
    /// events, and for ordinary messages sent meanwhile (the baseline of an honest stamp).
    pub stamp_to_arrival_ms: Percentiles,
    pub probe_stamp_to_arrival_ms: Percentiles,
    /// Whether the server stamps a late event with its scheduled time rather than the time it
    /// sent it: its stamps reach the harness much later than ordinary messages' do. `None` where
    /// there is nothing to compare.
    pub stamps_scheduled_time: Option<bool>,
    /// Request durations by kind.
    pub request_ms: BTreeMap<String, Percentiles>,
    pub requests: usize,
    pub wall_ms: u64,
    pub harness_cpu_ms: u64,
    pub server_cpu_ms: Option<u64>,
}

impl Figures {
    pub fn of(
        workload: &Workload,
        ledger: &Ledger,
        wall: Duration,
        harness_cpu: Duration,
        server_cpu: Option<Duration>,
    ) -> Figures {
        let mut f = Figures {
            events: workload.events,
            users: workload.users(),
            heartbeaters: workload.heartbeaters,
            delay_ms: workload.delay.as_millis() as u64,
            spread_ms: workload.spread.as_millis() as u64,
            refused: ledger.refused.clone(),
            heartbeats: ledger.heartbeats,
            heartbeats_refused: ledger.heartbeats_refused,
            behind_plan: ledger.behind_plan,
            requests: ledger.requests,
            wall_ms: wall.as_millis() as u64,
            harness_cpu_ms: harness_cpu.as_millis() as u64,
            server_cpu_ms: server_cpu.map(|d| d.as_millis() as u64),
            ..Figures::default()
        };
        let mut lateness = Vec::new();
        let mut server_lateness = Vec::new();
        let mut stamp_gap = Vec::new();
        let mut probe_gap = Vec::new();
        for tracked in ledger.tracked.iter().filter(|t| t.kind == Kind::Probe) {
            if let Some(gap) = tracked
                .arrivals
                .first()
                .and_then(|a| stamp_to_arrival(ledger, a))
            {
                probe_gap.push(gap);
            }
        }
        for tracked in ledger
            .tracked
            .iter()
            .filter(|t| t.refused.is_none() && t.kind != Kind::Probe)
        {
            let Some(due) = tracked.due else { continue };
            f.scheduled += 1;
            let first = tracked.arrivals.iter().map(|a| a.0).min();
            if tracked.arrivals.len() > 1 {
                f.duplicated += 1;
            }
            if let (Some(first), Some(not_before)) = (first, tracked.not_before) {
                if first < not_before {
                    f.early += 1;
                }
            }
            if let (Some(first), Some(stopped)) = (first, tracked.stopped) {
                if first < stopped {
                    f.hung_up_early += 1;
                }
            }
            match tracked.kind {
                Kind::Cancelled => {
                    f.cancelled += 1;
                    if first.is_some() {
                        f.sent_despite_cancel += 1;
                    }
                    continue;
                }
                Kind::SentNow => f.sent_now += 1,
                Kind::Plain | Kind::Heartbeat | Kind::Probe => {}
            }
            let Some(first) = first else {
                f.lost += 1;
                continue;
            };
            if tracked.arrivals.len() == 1 {
                f.delivered_once += 1;
            }
            lateness.push(signed_ms(first, due));
            let arrival = tracked.arrivals.iter().find(|a| a.0 == first);
            let stamped = arrival.and_then(|a| a.1);
            if let (Some(stamped), Some(due_wall)) = (stamped, ledger.wall_ms(due)) {
                server_lateness.push((stamped - due_wall) as f64);
            }
            if let Some(gap) = arrival.and_then(|a| stamp_to_arrival(ledger, a)) {
                stamp_gap.push(gap);
            }
        }
        f.lateness_ms = Percentiles::of(&lateness);
        f.server_lateness_ms = Percentiles::of(&server_lateness);
        f.stamp_to_arrival_ms = Percentiles::of(&stamp_gap);
        f.probe_stamp_to_arrival_ms = Percentiles::of(&probe_gap);
        f.stamps_scheduled_time = (f.stamp_to_arrival_ms.count > 0
            && f.probe_stamp_to_arrival_ms.count > 0)
            .then_some(f.stamp_to_arrival_ms.p90 > f.probe_stamp_to_arrival_ms.p90 + STAMP_GAP_MS);
        f.request_ms = ledger
            .latency_ms
            .iter()
            .map(|(kind, samples)| (kind.to_string(), Percentiles::of(samples)))
            .collect();
        f
    }

    /// Requests per second of CPU time: what the server served, and what the harness could
    /// sustain with the CPU it used (its capacity, if it were the only limit).
    pub fn server_rate(&self) -> Option<f64> {
        let cpu = self.server_cpu_ms? as f64 / 1000.0;
        (cpu > 0.0).then(|| self.requests as f64 / cpu)
    }

    pub fn harness_rate(&self) -> Option<f64> {
        let cpu = self.harness_cpu_ms as f64 / 1000.0;
        (cpu > 0.0).then(|| self.requests as f64 / cpu)
    }

    pub fn refused_total(&self) -> usize {
        self.refused.values().sum()
    }
}

/// From the server's stamp to the harness's `/sync` answer, on the wall clock.
fn stamp_to_arrival(ledger: &Ledger, arrival: &(std::time::Instant, Option<i64>)) -> Option<f64> {
    Some((ledger.wall_ms(arrival.0)? - arrival.1?) as f64)
}

/// `later - earlier` in milliseconds, negative when `later` is in fact earlier.
fn signed_ms(later: std::time::Instant, earlier: std::time::Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64() * 1000.0
    } else {
        -((earlier - later).as_secs_f64() * 1000.0)
    }
}

/// User plus system CPU time of this process, all threads.
pub fn harness_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&samples);
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of(&[]).max, 0.0);
        assert_eq!(Percentiles::of(&[7.0]).p50, 7.0);
    }
}
