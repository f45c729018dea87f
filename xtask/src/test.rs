//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use std::path::Path;
use std::process::Command;

use crate::wrangler::{self, Options, Wrangler};
use crate::{Result, build, cargo, crash, dev, fuzz, mailsink, root, tools};

/// What one run covers.
enum Only<'a> {
    Everything,
    /// `-- <cargo test arguments>` (e.g. `cargo xtask test -- --test sales`): only the
    /// integration tests, with those arguments: a quick loop while working on the edge.
    Integration(&'a [String]),
    /// `browser [PATTERN]`: only the browser tests, those whose name matches PATTERN (a
    /// regular expression) if given: the loop while working on the widget.
    Browser(Option<&'a str>),
}

pub fn run(args: &[String]) -> Result<()> {
    let only = match args {
        [] => Only::Everything,
        [dashes, rest @ ..] if dashes == "--" => Only::Integration(rest),
        [browser] if browser == "browser" => Only::Browser(None),
        [browser, pattern] if browser == "browser" => Only::Browser(Some(pattern)),
        _ => return Err(crate::USAGE.to_owned()),
    };
    let everything = matches!(only, Only::Everything);
    let ci = crate::ci();
    let tools = tools::ensure_build_tools()?;
    let chromium = match tools::ensure_chromium() {
        Ok(path) => Some(path),
        Err(err) if ci || matches!(only, Only::Browser(_)) => return Err(err),
        Err(err) => {
            eprintln!("xtask: WARNING: the browser tests will NOT run: {err}");
            None
        }
    };

    if everything {
        lint_and_unit_tests()?;
        // 20 s of fuzzing the submission parser and validation (~1 min with the build).
        if fuzz::nightly_available() {
            fuzz::submission(20)?;
        } else {
            eprintln!(
                "xtask: WARNING: fuzzing SKIPPED: it needs a nightly toolchain \
                 (rustup toolchain install nightly)"
            );
        }
    }
    build::all(&tools)?;

    // A throwaway local D1 per run, so tests never see another run's leads.
    let secrets = dev::local_secrets()?;
    let run_dir = root().join(format!("target/xtask/test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let state = run_dir.join("state");
    let sink = mailsink::start(&run_dir.join("mail"), false)?;
    wrangler::migrate(&state)?;
    // The main Worker sends through Resend's API; two more, each with its own state, send
    // through Postmark's API and through Cloudflare's send_email binding (.eml files).
    // Every test talks from 127.0.0.1: these Workers' rate limits are set never to trip. The
    // real limits are tested on a Worker of their own (below).
    let unlimited = wrangler::derived_config("test", 1_000_000_000, true)?;
    let start_with = |provider: &str, state: &Path, tmpdir: Option<&Path>, config| {
        let port = wrangler::free_port()?;
        Wrangler::start(&Options {
            port,
            state,
            inspector: false,
            vars: dev::local_vars(port, &sink, provider),
            tmpdir,
            config,
        })
    };
    let start = |provider: &str, state: &Path, tmpdir: Option<&Path>| {
        start_with(provider, state, tmpdir, Some(unlimited.as_path()))
    };
    let worker = start("resend", &state, None)?;
    wrangler::migrate(&run_dir.join("state-postmark"))?;
    let postmark = start("postmark", &run_dir.join("state-postmark"), None)?;
    wrangler::migrate(&run_dir.join("state-cloudflare"))?;
    let eml = run_dir.join("tmp-cloudflare");
    let cloudflare = start("cloudflare", &run_dir.join("state-cloudflare"), Some(&eml))?;
    // Tests that seed thousands of leads straight into D1 get a Worker of their own.
    let bulk_state = run_dir.join("state-bulk");
    wrangler::migrate(&bulk_state)?;
    let bulk = start("resend", &bulk_state, None)?;
    // With wrangler.toml as it ships: its rate limits.
    let limited_state = run_dir.join("state-limited");
    wrangler::migrate(&limited_state)?;
    let limited = start_with("resend", &limited_state, None, None)?;
    let env = [
        ("LEADGLUE_BASE_URL", worker.base_url.clone()),
        ("LEADGLUE_ADMIN_TOKEN", secrets.admin_token),
        ("LEADGLUE_WEBHOOK_SECRET", secrets.webhook_secret),
        ("LEADGLUE_WEBHOOK_URL", format!("{}/webhook", sink.base_url)),
        ("LEADGLUE_D1_STATE", state.display().to_string()),
        ("LEADGLUE_MAIL_DIR", sink.dir.display().to_string()),
        ("LEADGLUE_POSTMARK_URL", postmark.base_url.clone()),
        ("LEADGLUE_CLOUDFLARE_URL", cloudflare.base_url.clone()),
        ("LEADGLUE_EML_DIR", eml.display().to_string()),
        ("LEADGLUE_BULK_URL", bulk.base_url.clone()),
        ("LEADGLUE_BULK_STATE", bulk_state.display().to_string()),
        ("LEADGLUE_LIMITED_URL", limited.base_url.clone()),
        (
            "LEADGLUE_LIMITED_STATE",
            limited_state.display().to_string(),
        ),
        // The tests read D1 through wrangler too: its logs go with the rest.
        (
            "WRANGLER_LOG_PATH",
            wrangler::log_path().display().to_string(),
        ),
    ];

    if !matches!(only, Only::Browser(_)) {
        let mut integration = cargo();
        integration.args(["test", "--package", "leadglue-tests"]);
        if let Only::Integration(args) = only {
            integration.args(args);
        }
        integration.envs(env.iter().cloned());
        crate::run(&mut integration)?;
    }

    if everything {
        // Its own Worker, killed and restarted on its own state (see crash.rs).
        crash::run(&run_dir.join("crash"), &sink, Some(&unlimited))?;
    }

    if let Some(chromium) = chromium.filter(|_| !matches!(only, Only::Integration(_))) {
        let mut e2e = Command::new("node");
        // A hung browser test fails after two minutes instead of eating CI's time.
        e2e.args(["--test", "--test-concurrency=1", "--test-timeout=120000"]);
        if let Only::Browser(Some(pattern)) = only {
            e2e.arg(format!("--test-name-pattern={pattern}"));
        }
        e2e.arg(root().join("tests/e2e"))
            .current_dir(root())
            .env("CHROMIUM", chromium)
            .envs(env.iter().cloned());
        crate::run(&mut e2e)?;
    }
    drop((worker, postmark, cloudflare, bulk, limited));
    let _ = std::fs::remove_dir_all(&run_dir);
    let _ = std::fs::remove_dir_all(wrangler::logs());
    eprintln!("xtask: all checks passed");
    Ok(())
}

fn lint_and_unit_tests() -> Result<()> {
    crate::run(cargo().args(["fmt", "--all", "--check"]))?;
    crate::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    crate::run(cargo().args([
        "clippy",
        "--target",
        "wasm32-unknown-unknown",
        "--package",
        "leadglue-widget",
        "--package",
        "leadglue-edge",
        "--",
        "-D",
        "warnings",
    ]))?;
    crate::run(cargo().args(["test", "--workspace", "--exclude", "leadglue-tests"]))
}
