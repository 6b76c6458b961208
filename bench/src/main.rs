//! The benchmark runner behind `bench/run`: toolgate against FastMCP 4.2 and a bare axum ceiling, on
//! one machine in one run, with a dev identity provider that every authenticating server trusts.
//! Targets are judged and printed; the exit status only says whether the run itself worked (every
//! server started, answered `add` correctly before and after load, and wrk ran).

mod cpu;
mod load;
mod machine;
mod memory;
mod micro;
mod proxy;
mod report;
mod soak;
mod subjects;
mod wrk;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand};
use load::LoadOptions;
use soak::SoakOptions;
use subjects::Paths;
use tokio::signal::unix::SignalKind;

/// toolgate-bench: load benchmarks of toolgate (use bench/run, which installs and builds first)
///
/// Without a command, `load`. Results go to bench/results/ (load.json, soak.json, server logs).
#[derive(Parser)]
#[command(name = "toolgate-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Subcommand)]
enum Mode {
    /// Every server under wrk, taking turns; rows show the median of the rounds
    ///
    /// Keys for --only: toolgate, toolgate-noauth, fastmcp, bare-axum, toolgate-proxy (stateless
    /// JSON mode), and toolgate-session, toolgate-proxy-session, fastmcp-session (one MCP session
    /// per load, SSE replies). A measurement waits (up to --patience) until other work uses at
    /// most --quiet-limit percent of one core, and is taken again, up to 3 times, when it was
    /// disturbed. A smoke run that proves the whole chain in a few minutes: --duration 1
    /// --warm-up 1 --patience 1 (its numbers mean little).
    Load(LoadArgs),
    /// toolgate with auth at a fixed rate
    Soak(SoakArgs),
    /// The criterion hot-path benchmarks against their baselines
    MicroReport {
        /// The criterion folder (target/criterion)
        criterion_dir: Option<PathBuf>,
    },
}

#[derive(Args)]
struct LoadArgs {
    /// Seconds of load per server and connection count [default: 10]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    duration: Option<Duration>,
    /// Seconds of warm-up before each measurement [default: 2]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    warm_up: Option<Duration>,
    /// Connection counts, comma-separated [default: 1,8,32,64]
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', value_parser = positive,
          allow_negative_numbers = true)]
    connections: Option<Vec<u32>>,
    /// Only these servers, comma-separated keys (see `load --help`)
    #[arg(long, value_name = "KEY,..", value_delimiter = ',', value_parser = subject_key)]
    only: Option<Vec<String>>,
    /// Measurements of every server at every connection count [default: 1]
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true)]
    rounds: Option<u32>,
    /// CPU other work may use during a measurement, percent of one core [default: 10]
    #[arg(long, value_name = "PERCENT", value_parser = percentage, allow_negative_numbers = true)]
    quiet_limit: Option<f64>,
    /// Seconds a measurement waits for a quiet machine [default: 120]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    patience: Option<Duration>,
}

#[derive(Args)]
struct SoakArgs {
    /// Seconds of load [default: 600]
    #[arg(long = "seconds", value_name = "SECS", value_parser = seconds)]
    duration: Option<Duration>,
    /// Requests per second [default: 1000]
    #[arg(long, value_name = "PER_SECOND", value_parser = positive, allow_negative_numbers = true)]
    rate: Option<u32>,
}

impl LoadArgs {
    fn options(self) -> LoadOptions {
        let d = LoadOptions::default();
        LoadOptions {
            connections: self.connections.unwrap_or(d.connections),
            duration: self.duration.unwrap_or(d.duration),
            warm_up: self.warm_up.unwrap_or(d.warm_up),
            rounds: self.rounds.unwrap_or(d.rounds),
            only: self.only.unwrap_or(d.only),
            quiet_limit: self.quiet_limit.unwrap_or(d.quiet_limit),
            patience: self.patience.unwrap_or(d.patience),
        }
    }
}

enum Command {
    Load(LoadOptions),
    Soak(SoakOptions),
    MicroReport(PathBuf),
}

fn parse_args(args: Vec<String>) -> Result<Command, clap::Error> {
    let mode = match args.first().map(String::as_str) {
        Some(mode @ ("load" | "soak" | "micro-report")) => mode.to_owned(),
        _ => "load".to_owned(),
    };
    let argv = std::iter::once("toolgate-bench".to_owned()).chain(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| name_the_mode(e, &mode))?;
    Ok(match cli.mode {
        None => Command::Load(cli.load.options()),
        Some(Mode::Load(load)) => Command::Load(load.options()),
        Some(Mode::Soak(soak)) => {
            let d = SoakOptions::default();
            Command::Soak(SoakOptions {
                duration: soak.duration.unwrap_or(d.duration),
                rate: soak.rate.unwrap_or(d.rate),
            })
        }
        Some(Mode::MicroReport { criterion_dir }) => {
            Command::MicroReport(criterion_dir.ok_or_else(|| {
                Cli::command().error(
                    ErrorKind::MissingRequiredArgument,
                    "micro-report needs the criterion folder (target/criterion)",
                )
            })?)
        }
    })
}

/// An option of another mode is refused naming the mode it was given to: `--connections` is a
/// `load` option, so `soak --connections 8` says "for soak".
fn name_the_mode(error: clap::Error, mode: &str) -> clap::Error {
    let (ErrorKind::UnknownArgument, Some(ContextValue::String(arg))) =
        (error.kind(), error.get(ContextKind::InvalidArg))
    else {
        return error;
    };
    Cli::command().error(
        ErrorKind::UnknownArgument,
        format!("unknown argument `{arg}` for {mode}"),
    )
}

fn seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => Err(format!("`{value}` is not a whole number of seconds")),
    }
}

fn positive(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{value}` is not a positive count")),
    }
}

fn percentage(value: &str) -> Result<f64, String> {
    value
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("`{value}` is not a percentage"))
}

fn subject_key(value: &str) -> Result<String, String> {
    let key = value.trim();
    if subjects::SUBJECTS.iter().any(|s| s.key == key) {
        Ok(key.to_owned())
    } else {
        Err(format!("no server is called `{key}`"))
    }
}

fn write_json(paths: &Paths, name: &str, value: &impl serde::Serialize) -> Result<(), String> {
    let path = paths.results.join(name);
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("-- wrote {}", path.display());
    Ok(())
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::MicroReport(dir) => micro::print(&dir)?,
        Command::Load(options) => {
            let paths = Paths::discover()?;
            let run = load::run(&paths, &options).await?;
            let judgement = report::judge(&run);
            report::print(&run, &judgement);
            write_json(
                &paths,
                "load.json",
                &serde_json::json!({ "run": run, "judgement": judgement }),
            )?;
        }
        Command::Soak(options) => {
            let paths = Paths::discover()?;
            let run = soak::run(&paths, &options).await?;
            soak::print(&run);
            write_json(&paths, "soak.json", &run)?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Help exits 0, a usage error 2.
    let command = parse_args(std::env::args().skip(1).collect()).unwrap_or_else(|e| e.exit());
    // Dropping the run on a signal kills the servers and wrk it started (kill_on_drop).
    let mut terminate = match tokio::signal::unix::signal(SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            eprintln!("error: cannot watch for SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        outcome = run(command) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        _ = terminate.recv() => Err("terminated".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()).collect()).map_err(|e| e.to_string())
    }

    #[test]
    fn load_is_the_default_mode_and_takes_its_options() {
        let Ok(Command::Load(options)) = parse(&["--connections", "8,64", "--duration", "3"])
        else {
            panic!("not a load run");
        };
        assert_eq!(options.connections, [8, 64]);
        assert_eq!(options.duration, Duration::from_secs(3));
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let error = |args: &[&str]| match parse(args) {
            Err(message) => message,
            Ok(_) => panic!("{args:?} was accepted"),
        };
        assert!(error(&["--connections", "8,0"]).contains("`0`"));
        assert!(error(&["--only", "nginx"]).contains("`nginx`"));
        assert!(error(&["soak", "--rate", "-5"]).contains("--rate"));
        assert!(error(&["soak", "--connections", "8"]).contains("for soak"));
        assert!(error(&["micro-report"]).contains("criterion folder"));
    }
}
