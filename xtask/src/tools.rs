//! Installs what a fresh machine lacks: the wasm32 target, the pinned wasm-bindgen CLI and
//! worker-build (into a per-user cache, reused by every clone), the Node tools (`npm ci`) and,
//! for the browser tests, Debian's Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, root, run};

/// Must equal the `wasm-bindgen` version in Cargo.lock (pinned with `=` in Cargo.toml).
const WASM_BINDGEN: &str = "0.2.130";
/// Must match the `worker` crate's version.
const WORKER_BUILD: &str = "0.8.7";
/// For `cargo xtask fuzz` only (the latest release when pinned; any recent one would do).
const CARGO_FUZZ: &str = "0.13.2";

/// Paths of the tools the builds call.
pub struct Tools {
    pub wasm_bindgen: PathBuf,
    pub worker_build: PathBuf,
    pub wasm_opt: PathBuf,
    pub esbuild: PathBuf,
}

pub fn ensure_build_tools() -> Result<Tools> {
    ensure_wasm_target()?;
    let wasm_bindgen = cargo_install("wasm-bindgen-cli", WASM_BINDGEN, "wasm-bindgen", false)?;
    let worker_build = cargo_install("worker-build", WORKER_BUILD, "worker-build", true)?;
    ensure_node_modules()?;
    let bin = root().join("node_modules/.bin");
    Ok(Tools {
        wasm_bindgen,
        worker_build,
        wasm_opt: bin.join("wasm-opt"),
        esbuild: bin.join("esbuild"),
    })
}

/// cargo-fuzz, from the per-user cache: the folder to put first on PATH so that
/// `cargo +nightly fuzz` finds it.
pub fn ensure_cargo_fuzz() -> Result<PathBuf> {
    let bin = cargo_install("cargo-fuzz", CARGO_FUZZ, "cargo-fuzz", true)?;
    Ok(bin.parent().map(Path::to_path_buf).unwrap_or_default())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup is needed: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout).contains("wasm32-unknown-unknown") {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// Per-user cache shared by every clone on this machine (CI clones afresh each run).
fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| root().join("target"));
    base.join("leadglue/tools")
}

/// `cargo install` of an exact version into its own folder of the cache, once.
fn cargo_install(krate: &str, version: &str, binary: &str, locked: bool) -> Result<PathBuf> {
    let dir = cache_dir().join(format!("{krate}-{version}"));
    let bin = dir.join("bin").join(binary);
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!("xtask: installing {krate} {version} (once per machine; takes a few minutes)");
    let mut cmd = Command::new("cargo");
    cmd.args(["install", krate, "--version", version, "--root"])
        .arg(&dir);
    // wasm-bindgen-cli's own lock names a crate version the registry here lacks, so it is
    // installed unlocked (see ../shared/TOOLCHAIN.md); worker-build installs locked.
    if locked {
        cmd.arg("--locked");
    }
    run(&mut cmd)?;
    Ok(bin)
}

/// `npm ci` when node_modules is missing or older than package-lock.json.
fn ensure_node_modules() -> Result<()> {
    let root = root();
    let stamp = root.join("node_modules/.package-lock.json");
    let fresh = match (modified(&stamp), modified(&root.join("package-lock.json"))) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&root))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Debian's Chromium for the browser tests, installed when missing and possible. Without it the
/// browser tests cannot run: under CI that is a failure, never a silent skip.
pub fn ensure_chromium() -> Result<PathBuf> {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if chromium.exists() {
        return Ok(chromium);
    }
    eprintln!("xtask: installing Debian's chromium for the browser tests");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update"])
        .and_then(|()| apt(&["install", "-y", "chromium", "chromium-driver"]))
        .map_err(|e| {
            format!("Chromium is needed for the browser tests and could not be installed: {e}")
        })?;
    if chromium.exists() {
        Ok(chromium)
    } else {
        Err(
            "Chromium is needed for the browser tests and was not found at /usr/bin/chromium"
                .into(),
        )
    }
}
