//! How much CPU the rest of the machine used while a row was measured. The two cores are shared with
//! other work (a compiler, another test suite), and a row measured beside it says more about that
//! work than about the server; so rows wait for a quiet machine, are retried when disturbed, and
//! carry the disturbance they had.

use std::time::{Duration, Instant};

/// Busy CPU time of the whole machine, in clock ticks (user, nice, system, irq, softirq, steal).
pub fn machine_busy_ticks() -> Option<u64> {
    parse_machine_busy(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_machine_busy(stat: &str) -> Option<u64> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = fields[..] else {
        return None;
    };
    Some(user + nice + system + irq + softirq + steal)
}

/// CPU time of one process (all its threads), in clock ticks.
pub fn process_ticks(pid: u32) -> Option<u64> {
    parse_process_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_process_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses; the fields start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), utime and stime, are the 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Linux reports in USER_HZ ticks, 100 per second on every architecture it supports.
const TICKS_PER_SECOND: f64 = 100.0;

/// Watches the machine while the processes in `ours` work; what else ran is the disturbance.
pub struct Watch {
    started: Instant,
    machine_start: u64,
    ours: Vec<(u32, u64)>,
}

impl Watch {
    pub fn start(ours: &[u32]) -> Watch {
        Watch {
            started: Instant::now(),
            machine_start: machine_busy_ticks().unwrap_or(0),
            ours: ours
                .iter()
                .map(|&pid| (pid, process_ticks(pid).unwrap_or(0)))
                .collect(),
        }
    }

    /// CPU used by everything else since `start`, in percent of one core. `extra_ticks` is CPU of
    /// our own processes that are already gone (wrk, once it exited).
    pub fn others_percent(&self, extra_ticks: u64) -> f64 {
        let seconds = self.started.elapsed().as_secs_f64();
        let machine = machine_busy_ticks()
            .unwrap_or(self.machine_start)
            .saturating_sub(self.machine_start);
        let ours: u64 = self
            .ours
            .iter()
            .map(|&(pid, start)| process_ticks(pid).unwrap_or(start).saturating_sub(start))
            .sum::<u64>()
            + extra_ticks;
        if seconds <= 0.0 {
            return 0.0;
        }
        machine.saturating_sub(ours) as f64 / TICKS_PER_SECOND / seconds * 100.0
    }
}

/// Waits until everything but `ours` has used at most `limit` percent of one core for two seconds
/// running, or until `patience` is spent. Returns the last reading.
pub async fn wait_for_quiet(ours: &[u32], limit: f64, patience: Duration) -> f64 {
    let give_up = Instant::now() + patience;
    let mut quiet_seconds = 0;
    loop {
        let watch = Watch::start(ours);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let others = watch.others_percent(0);
        quiet_seconds = if others <= limit {
            quiet_seconds + 1
        } else {
            0
        };
        if quiet_seconds >= 2 || Instant::now() >= give_up {
            return others;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_busy_time_leaves_idle_and_iowait_out() {
        let stat = "cpu  100 5 50 9000 40 3 2 7 0 0\ncpu0 50 2 25 4500 20 1 1 3 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy(stat), Some(100 + 5 + 50 + 3 + 2 + 7));
        assert_eq!(parse_machine_busy("intr 1\n"), None);
    }

    #[test]
    fn process_time_is_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 3 0 100 1000 200 18446744073709551615";
        assert_eq!(parse_process_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_process_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_is_seen_working() {
        let me = std::process::id();
        let before = process_ticks(me).expect("/proc/self/stat is readable");
        // Spins until a tick is charged; a reading of the wrong field would never move.
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut spin = 0u64;
        while process_ticks(me).unwrap() == before && Instant::now() < give_up {
            for _ in 0..100_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
        }
        assert!(process_ticks(me).unwrap() > before);
        assert!(machine_busy_ticks().is_some());
    }
}
