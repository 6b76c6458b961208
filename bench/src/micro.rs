//! Reads the criterion estimates `cargo bench -p toolgate-tests --bench hot_path` wrote and prints each
//! hot-path benchmark against the baseline measured in the same run.

use std::path::Path;

use serde::Deserialize;

/// (group, benchmark, baseline in the same group, what the ratio tells).
const ROWS: &[(&str, &str, &str, &str)] = &[
    (
        "verify",
        "cached_keys_full_check",
        "jsonwebtoken_decode",
        "our full check / the library's RS256 decode alone",
    ),
    (
        "verify",
        "repeated_token",
        "cached_keys_full_check",
        "verified-token cache hit / full check",
    ),
    (
        "verify",
        "cold_key",
        "cached_keys_full_check",
        "first token of a fresh provider (discovery + JWKS over loopback) / full check",
    ),
    (
        "permissions",
        "two_of_three_held",
        "plain_contains",
        "require_permissions / a bare contains loop",
    ),
    (
        "permissions",
        "one_missing",
        "plain_contains",
        "refusal with its error / a bare contains loop",
    ),
    (
        "arguments",
        "generated_handler",
        "serde_derive",
        "the generated add wrapper (guard, unknown-argument check, parse, call, result) / serde derive alone",
    ),
    (
        "arguments",
        "generated_handler_bad_type",
        "serde_derive",
        "the wrapper refusing a string for an i64 / serde derive alone",
    ),
];

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

fn median_ns(criterion: &Path, group: &str, bench: &str) -> Result<f64, String> {
    let path = criterion
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; run `cargo bench -p toolgate-tests --bench hot_path` first",
            path.display()
        )
    })?;
    let estimates: Estimates =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(estimates.median.point_estimate)
}

fn human(ns: f64) -> String {
    match ns {
        ns if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        ns if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        ns => format!("{ns:.1} ns"),
    }
}

/// Three significant digits, so a cache hit next to a signature check does not print as 0.00.
fn ratio(value: f64) -> String {
    match value {
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 0.1 => format!("{v:.2}"),
        v => format!("{v:.2e}"),
    }
}

pub fn print(criterion: &Path) -> Result<(), String> {
    println!("| benchmark | median | baseline | baseline median | ratio | meaning |");
    println!("|---|---:|---|---:|---:|---|");
    for (group, bench, baseline, meaning) in ROWS {
        let value = median_ns(criterion, group, bench)?;
        let base = median_ns(criterion, group, baseline)?;
        println!(
            "| {group}/{bench} | {} | {group}/{baseline} | {} | {} | {meaning} |",
            human(value),
            human(base),
            ratio(value / base)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_nearest_unit() {
        assert_eq!(human(85.04), "85.0 ns");
        assert_eq!(human(41_200.0), "41.20 µs");
        assert_eq!(human(1_250_000.0), "1.25 ms");
    }

    #[test]
    fn small_ratios_keep_their_digits() {
        assert_eq!(ratio(13.23), "13.2");
        assert_eq!(ratio(0.92), "0.92");
        assert_eq!(ratio(0.003_963), "3.96e-3");
    }
}
