//! `cargo xtask`: build, run and test leadglue from a fresh clone.
//!
//! - `cargo xtask dev [--port P]`: install what is missing, build widget and edge, migrate and
//!   seed a local D1, and serve the demo on http://127.0.0.1:P (8787 by default).
//! - `cargo xtask test`: formatting, lints, unit and property tests, release builds, then
//!   integration and browser tests against a freshly started local Worker.
//! - `cargo xtask build`: the release builds alone.
//! - `cargo xtask crash`: the crash test alone (SIGKILL under load; see `crash.rs`).
//! - `cargo xtask fuzz [SECONDS]`: fuzzes the submission parser and validation (nightly).
//! - `cargo xtask bench`: sizes and micro-benchmarks against the budgets (see `bench.rs`).
//! - `cargo xtask api-key create|revoke`: Sales API keys on the local Worker (see `keys.rs`).

mod bench;
mod build;
mod crash;
mod dev;
mod fuzz;
mod keys;
mod mailsink;
mod test;
mod tools;
mod wrangler;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T, E = String> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = wrangler::stop_on_signals() {
        eprintln!("xtask: {err}");
        return ExitCode::FAILURE;
    }
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("build") => tools::ensure_build_tools().and_then(|tools| build::all(&tools)),
        Some("bench") => bench::run(&args[1..]),
        Some("crash") => crash::run_alone(),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("api-key") => keys::run(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    while wrangler::stopping() {
        // The signal handler is stopping the Workers, and then exits.
        std::thread::park();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <dev [--port P] | test [-- <cargo test args> | browser [PATTERN]] | build | crash | fuzz [SECONDS] | bench [ingest|widget] | api-key create|revoke …>";

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

/// Runs a command to completion, failing with its description if it fails. Shows the program
/// and arguments, never the environment (it may carry secrets).
fn run(cmd: &mut Command) -> Result<()> {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// A cargo command in the workspace root.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    if crate::ci() {
        // CI builds a fresh clone once: incremental state is never reused, only written.
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// Whether we run under CI (`CI` set and not "false"), where nothing may be skipped.
fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}
