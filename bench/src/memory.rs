//! A server's memory, read from `/proc/PID/status`: resident set now (VmRSS) and its high-water mark
//! (VmHWM), sampled while load runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn read(pid: u32) -> Option<Memory> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// Reads VmRSS every `every` until stopped and keeps the largest value seen.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, peak_kib) = (stop.clone(), peak_kib.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(memory) = read(pid) {
                        peak_kib.fetch_max(memory.rss_kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(every).await;
                }
            }
        });
        Sampler {
            stop,
            peak_kib,
            task,
        }
    }

    /// The peak VmRSS seen, in KiB (0 when the process could not be read at all).
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kib.load(Ordering::Relaxed)
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tserver\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   17740 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 17740,
                hwm_kib: 20480
            })
        );
        assert_eq!(parse_status("Name:\tzombie\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let memory = read(std::process::id()).expect("/proc/self/status is readable");
        assert!(memory.rss_kib > 0 && memory.hwm_kib >= memory.rss_kib);
    }
}
