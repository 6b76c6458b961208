//! The soak: toolgate with auth on, driven at a fixed rate for a long time, its memory read at the
//! start, throughout and at the end, and every reply that is not a 2xx with the right sum counted.
//!
//! wrk has no fixed-rate mode, so the driver is here: an open-loop schedule (request `i` is sent at
//! `start + i / rate` whether or not earlier replies have come back), so a slow server cannot slow
//! the load down and hide its own latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use toolgate_dev_idp::DevIdp;

use crate::machine::Machine;
use crate::memory::{self, mib};
use crate::subjects::{self, Paths, SUBJECTS, TOOLGATE};

#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub duration: Duration,
    pub rate: u32,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            duration: Duration::from_secs(600),
            rate: 1000,
        }
    }
}

/// Requests allowed in flight before the driver counts a send as skipped rather than pile up.
const MAX_IN_FLIGHT: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct MemorySample {
    pub at_s: f64,
    pub rss_kib: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakRun {
    pub machine: Machine,
    pub server: &'static str,
    pub rate_per_s: u32,
    pub duration_s: f64,
    pub scheduled: u64,
    pub sent: u64,
    /// Not sent: MAX_IN_FLIGHT requests were already waiting.
    pub skipped: u64,
    pub ok: u64,
    /// Replies by status, 2xx excluded.
    pub non_2xx: BTreeMap<u16, u64>,
    /// 2xx replies that were not the JSON-RPC success with the right sum.
    pub wrong_replies: u64,
    pub transport_errors: u64,
    pub achieved_rate_per_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub rss_peak_kib: u64,
    pub hwm_end_kib: u64,
    pub memory: Vec<MemorySample>,
    pub jwks_fetches: usize,
}

impl SoakRun {
    pub fn failures(&self) -> u64 {
        self.non_2xx.values().sum::<u64>()
            + self.wrong_replies
            + self.transport_errors
            + self.skipped
    }
}

enum Outcome {
    Ok { latency_us: u64 },
    Status(u16),
    WrongReply,
    TransportError,
}

pub async fn run(paths: &Paths, options: &SoakOptions) -> Result<SoakRun, String> {
    if options.rate == 0 {
        return Err("--rate must be at least 1 request per second".into());
    }
    let machine = Machine::read(&paths.python).await;
    let idp = DevIdp::start(
        subjects::idp_config(),
        "127.0.0.1:0".parse().expect("valid"),
    )
    .await
    .map_err(|e| format!("the dev identity provider did not start: {e}"))?;
    let http = reqwest::Client::new();
    let token = subjects::fetch_direct_token(&http, &idp).await?;
    let subject = SUBJECTS
        .iter()
        .find(|s| s.key == TOOLGATE)
        .expect("toolgate is a subject");
    let server = subjects::launch(subject, paths, &idp, None).await?;
    subjects::check(&http, subject, &server.mcp_url, &token).await?;
    // The first requests fill caches and allocator pools; memory "at start" is read after them.
    for _ in 0..1000 {
        subjects::check(&http, subject, &server.mcp_url, &token).await?;
    }
    let rss_start_kib = memory::read(server.pid).map_or(0, |m| m.rss_kib);
    eprintln!(
        "-- soak: {} for {:.0} s at {} requests/s; RSS at start {:.1} MiB",
        subject.label,
        options.duration.as_secs_f64(),
        options.rate,
        mib(rss_start_kib)
    );

    let scheduled = (options.duration.as_secs_f64() * f64::from(options.rate)).round() as u64;
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.rate));
    let start = Instant::now();
    let mut memory_samples = vec![MemorySample {
        at_s: 0.0,
        rss_kib: rss_start_kib,
    }];
    let mut next_memory_sample = Duration::from_secs(5);
    let mut skipped = 0u64;
    let mut sent = 0u64;
    for i in 0..scheduled {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        if start.elapsed() >= next_memory_sample {
            if let Some(m) = memory::read(server.pid) {
                memory_samples.push(MemorySample {
                    at_s: start.elapsed().as_secs_f64(),
                    rss_kib: m.rss_kib,
                });
            }
            next_memory_sample += Duration::from_secs(5);
        }
        if i % (u64::from(options.rate) * 60) == 0 && i > 0 {
            eprintln!(
                "   {:.0} s: {} sent, RSS {:.1} MiB",
                start.elapsed().as_secs_f64(),
                sent,
                mib(memory_samples.last().map_or(0, |s| s.rss_kib))
            );
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        sent += 1;
        let request = subjects::call_request(&http, &server.mcp_url, Some(&token));
        let outcomes_tx = outcomes_tx.clone();
        tokio::spawn(async move {
            let sent_at = Instant::now();
            let outcome = match request.send().await {
                Err(_) => Outcome::TransportError,
                Ok(response) if !response.status().is_success() => {
                    Outcome::Status(response.status().as_u16())
                }
                Ok(response) => match response.bytes().await {
                    Err(_) => Outcome::TransportError,
                    Ok(body) => match serde_json::from_slice(&body) {
                        Ok(reply) if subjects::reply_is_the_sum(&reply) => Outcome::Ok {
                            latency_us: sent_at.elapsed().as_micros() as u64,
                        },
                        _ => Outcome::WrongReply,
                    },
                },
            };
            let _ = outcomes_tx.send(outcome);
            drop(permit);
        });
    }
    drop(outcomes_tx);

    let mut latencies = Vec::with_capacity(sent as usize);
    let (mut ok, mut wrong_replies, mut transport_errors) = (0u64, 0u64, 0u64);
    let mut non_2xx = BTreeMap::new();
    while let Some(outcome) = outcomes.recv().await {
        match outcome {
            Outcome::Ok { latency_us } => {
                ok += 1;
                latencies.push(latency_us);
            }
            Outcome::Status(status) => *non_2xx.entry(status).or_insert(0) += 1,
            Outcome::WrongReply => wrong_replies += 1,
            Outcome::TransportError => transport_errors += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let end = memory::read(server.pid);
    let rss_end_kib = end.map_or(0, |m| m.rss_kib);
    memory_samples.push(MemorySample {
        at_s: elapsed,
        rss_kib: rss_end_kib,
    });
    subjects::check(&http, subject, &server.mcp_url, &token).await?;
    server.stop().await;
    let jwks_fetches = idp.jwks_requests();
    idp.shutdown().await;

    latencies.sort_unstable();
    let rss_peak_kib = memory_samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    Ok(SoakRun {
        machine,
        server: subject.label,
        rate_per_s: options.rate,
        duration_s: elapsed,
        scheduled,
        sent,
        skipped,
        ok,
        non_2xx,
        wrong_replies,
        transport_errors,
        achieved_rate_per_s: sent as f64 / elapsed,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        p999_us: percentile(&latencies, 0.999),
        max_us: latencies.last().copied().unwrap_or(0),
        rss_start_kib,
        rss_end_kib,
        rss_peak_kib,
        hwm_end_kib: end.map_or(0, |m| m.hwm_kib),
        memory: memory_samples,
        jwks_fetches,
    })
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn print(run: &SoakRun) {
    let m = &run.machine;
    println!();
    println!(
        "{} | {} x {} | {} GiB | Linux {}",
        m.date_utc, m.cpus, m.cpu_model, m.memory_gib, m.kernel
    );
    println!(
        "soak: {} at {} requests/s for {:.0} s (open-loop fixed schedule, bench's own driver)",
        run.server, run.rate_per_s, run.duration_s
    );
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    let rows: Vec<(&str, String)> = vec![
        ("requests scheduled", run.scheduled.to_string()),
        ("requests sent", run.sent.to_string()),
        (
            "achieved rate, requests/s",
            format!("{:.1}", run.achieved_rate_per_s),
        ),
        ("2xx with the right sum", run.ok.to_string()),
        (
            "non-2xx replies",
            if run.non_2xx.is_empty() {
                "0".into()
            } else {
                run.non_2xx
                    .iter()
                    .map(|(status, n)| format!("{n} x {status}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("2xx with a wrong reply", run.wrong_replies.to_string()),
        ("transport errors", run.transport_errors.to_string()),
        ("skipped (driver backlog)", run.skipped.to_string()),
        (
            "latency p50 ms",
            format!("{:.2}", run.p50_us as f64 / 1000.0),
        ),
        (
            "latency p99 ms",
            format!("{:.2}", run.p99_us as f64 / 1000.0),
        ),
        (
            "latency p99.9 ms",
            format!("{:.2}", run.p999_us as f64 / 1000.0),
        ),
        (
            "latency max ms",
            format!("{:.2}", run.max_us as f64 / 1000.0),
        ),
        ("RSS at start MiB", format!("{:.1}", mib(run.rss_start_kib))),
        ("RSS at end MiB", format!("{:.1}", mib(run.rss_end_kib))),
        (
            "RSS peak (5 s samples) MiB",
            format!("{:.1}", mib(run.rss_peak_kib)),
        ),
        ("VmHWM at end MiB", format!("{:.1}", mib(run.hwm_end_kib))),
        ("JWKS fetches", run.jwks_fetches.to_string()),
    ];
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
    println!();
    let failures = run.failures();
    println!(
        "target: every request a 2xx with the right sum: {}",
        if failures == 0 {
            "met".to_owned()
        } else {
            format!("MISSED: {failures} of {} failed", run.scheduled)
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&values, 0.999), 100);
        assert_eq!(percentile(&[7], 0.5), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
