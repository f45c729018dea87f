//! `cargo xtask fuzz [SECONDS]`: runs the `submission` fuzz target (fuzz/, cargo-fuzz layout)
//! for SECONDS (60 by default) with libFuzzer. Needs a nightly toolchain (`rustup toolchain
//! install nightly`); installs a pinned cargo-fuzz into the per-user tool cache.
//!
//! The seeds in `fuzz/seeds/submission/` are read; what libFuzzer finds is kept in
//! `fuzz/corpus/submission/` (git-ignored, reused by the next run); a crash is written to
//! `fuzz/artifacts/submission/` and fails the run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Result, root, tools};

pub fn run(args: &[String]) -> Result<()> {
    let seconds: u64 = match args {
        [] => 60,
        [s] => s
            .parse()
            .map_err(|_| format!("cargo xtask fuzz takes a number of seconds, not {s:?}"))?,
        _ => return Err(crate::USAGE.to_owned()),
    };
    if !nightly_available() {
        return Err(
            "fuzzing needs a nightly toolchain: rustup toolchain install nightly".to_owned(),
        );
    }
    submission(seconds)
}

/// Whether `cargo +nightly` works here (cargo-fuzz needs nightly's sanitizer flags).
pub fn nightly_available() -> bool {
    Command::new("cargo")
        .args(["+nightly", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fuzzes `submission` for `seconds`; prints libFuzzer's output and a one-line summary.
pub fn submission(seconds: u64) -> Result<()> {
    let started = Instant::now();
    let bin = tools::ensure_cargo_fuzz()?;
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .map_err(|e| e.to_string())?;
    let fuzz = root().join("fuzz");
    let corpus = fuzz.join("corpus/submission");
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let mut cmd = Command::new("cargo");
    // `--sanitizer none`: the code is safe Rust (unsafe_code is forbidden), so AddressSanitizer
    // would find nothing and cost half the speed; `--debug-assertions` turns on overflow checks.
    cmd.args([
        "+nightly",
        "fuzz",
        "run",
        "--sanitizer",
        "none",
        "--debug-assertions",
        "submission",
    ])
    // With the rest of the build output, not in fuzz/target.
    .arg("--target-dir")
    .arg(root().join("target/fuzz"))
    // The first corpus folder receives what libFuzzer finds; the seeds are only read.
    .arg(&corpus)
    .arg(fuzz.join("seeds/submission"))
    .arg("--")
    .arg(format!("-max_total_time={seconds}"))
    .arg(format!("-dict={}", fuzz.join("submission.dict").display()))
    .arg("-print_final_stats=1")
    .current_dir(root())
    .env("PATH", path)
    // `cargo run` (of xtask) set these for the stable toolchain; nightly must choose its own.
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("CARGO")
    .env_remove("RUSTC")
    .stderr(Stdio::piped());
    eprintln!(
        "xtask: $ cargo +nightly fuzz run --sanitizer none --debug-assertions submission … -max_total_time={seconds}"
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start cargo +nightly fuzz: {e}"))?;
    // Pass libFuzzer's output through, keeping its figures for the summary.
    let (mut done, mut runs, mut speed) = (String::new(), String::new(), String::new());
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            // Thousands of lines per run say "this input was new" (and the dictionary it
            // recommends at the end): leave those out, show the rest.
            let chatter = (line.starts_with('#')
                && (line.contains("\tNEW ") || line.contains("\tREDUCE ")))
                || line.trim_start().starts_with("NEW_FUNC")
                || line.contains("\" # Uses: ");
            if !chatter {
                eprintln!("{line}");
            }
            // `#10387350\tDONE   cov: 3391 ft: 11345 corp: 2892/800Kb lim: 4096 exec/s: …`
            if let Some((_, rest)) = line.split_once("DONE ") {
                done = rest
                    .split(" lim:")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
            } else if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                runs = n.trim().to_owned();
            } else if let Some(n) = line.strip_prefix("stat::average_exec_per_sec:") {
                speed = n.trim().to_owned();
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "fuzzing found a failure ({status}): the input is in fuzz/artifacts/submission/ \
             (replay: cargo +nightly fuzz run submission <file>)"
        ));
    }
    eprintln!(
        "xtask: fuzz: submission: {runs} runs in {seconds}s ({speed} exec/s; {done}), no failure; \
         {:.0}s with the build",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
