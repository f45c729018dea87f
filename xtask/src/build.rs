//! Release builds: the widget bundle (cargo → wasm-bindgen → wasm-opt → esbuild) into
//! `edge/public/widget/v1/`, the OpenAPI document into `edge/public/v1/`, and the Worker
//! (worker-build) into `edge/build/`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::tools::Tools;
use crate::{Result, cargo, root, run};

pub fn all(tools: &Tools) -> Result<()> {
    widget(tools)?;
    openapi()?;
    edge(tools)
}

/// docs/openapi.json, served by the Worker at `/v1/openapi.json` from the static assets.
fn openapi() -> Result<()> {
    let out = root().join("edge/public/v1");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::copy(root().join("docs/openapi.json"), out.join("openapi.json"))
        .map_err(|e| format!("copying docs/openapi.json: {e}"))?;
    Ok(())
}

pub fn widget(tools: &Tools) -> Result<()> {
    let root = root();
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "leadglue-widget",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    let work = root.join("target/widget");
    let _ = std::fs::remove_dir_all(&work);
    run(Command::new(&tools.wasm_bindgen)
        .arg(root.join("target/wasm32-unknown-unknown/release/leadglue_widget.wasm"))
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--remove-name-section",
        ])
        .args(["--remove-producers-section", "--out-dir"])
        .arg(&work))?;
    let wasm_path = work.join("widget.wasm");
    // `--converge` repeats -Oz while it still shrinks the module. `--low-memory-unused` lets
    // binaryen fold constant offsets into loads and stores: Rust puts the stack at the bottom
    // of memory, so the lowest 1 KiB is touched only by a stack that is about to overflow.
    // `-ocimfs 20`: a function with one caller is inlined only up to a size of 20 (see `edge`
    // below; here 108,566 → 101,512 B of brotli, docs/benchmarks.md "Widget size").
    run(Command::new(&tools.wasm_opt)
        .arg(work.join("leadglue_widget_bg.wasm"))
        .args(["-Oz", "--converge", "--low-memory-unused"])
        .args(["--one-caller-inline-max-function-size", "20"])
        .args(["--strip-debug", "--strip-producers", "-o"])
        .arg(&wasm_path))?;

    let wasm = read(&wasm_path)?;
    let glue = minify(tools, &read(&work.join("leadglue_widget.js"))?)?;
    let wasm_name = format!("assets/widget-{}.wasm", short_hash(&wasm));
    let glue_name = format!("assets/glue-{}.js", short_hash(&glue));
    let loader = String::from_utf8(read(&root.join("widget/loader/leadglue.js"))?)
        .map_err(|e| e.to_string())?
        .replace("__GLUE__", &format!("./{glue_name}"))
        .replace("__WASM__", &format!("./{wasm_name}"))
        .replace("__DEFAULT_FORM__", leadglue_shared::form::DEFAULT_FORM_ID);
    let loader = minify(tools, loader.as_bytes())?;

    // Hashed names change with content, so old ones are removed rather than left to pile up.
    let out = root.join("edge/public/widget/v1");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("assets")).map_err(|e| e.to_string())?;
    for (name, bytes) in [
        ("leadglue.js", &loader),
        (glue_name.as_str(), &glue),
        (wasm_name.as_str(), &wasm),
    ] {
        std::fs::write(out.join(name), bytes).map_err(|e| format!("writing {name}: {e}"))?;
    }
    eprintln!(
        "xtask: widget: loader {} B, glue {} B, wasm {} B (raw)",
        loader.len(),
        glue.len(),
        wasm.len()
    );
    Ok(())
}

pub fn edge(tools: &Tools) -> Result<()> {
    run(Command::new(&tools.worker_build)
        .arg("--release")
        .current_dir(root().join("edge"))
        // worker-build would otherwise download these from GitHub, which is out of reach.
        .env("WASM_BINDGEN_BIN", &tools.wasm_bindgen)
        .env("WASM_OPT_BIN", &tools.wasm_opt))?;
    // Optimised for size, names and producers stripped (worker-build's own pass is off in
    // edge/Cargo.toml). The features are the ones worker-build enables: what workerd supports.
    let wasm = root().join("edge/build/index_bg.wasm");
    let optimised = root().join("edge/build/index_bg.opt.wasm");
    // `-ocimfs 5`: by default binaryen inlines every function that has one caller, whatever its
    // size, into a few huge functions that compress worse. Limited to a size of 5, the Worker is
    // 3.9 KB smaller by gzip -9, and 0.9 KB larger raw (docs/benchmarks.md, "Edge wasm": 5 is the
    // best of the limits tried for the Worker, 20 for the widget).
    // `--converge` repeats -Oz while it still shrinks the module, as for the widget.
    let mut opt = Command::new(&tools.wasm_opt);
    opt.arg(&wasm).args([
        "-Oz",
        "--converge",
        "--one-caller-inline-max-function-size",
        "5",
        "--strip-debug",
        "--strip-producers",
    ]);
    for feature in [
        "mutable-globals",
        "sign-ext",
        "nontrapping-float-to-int",
        "bulk-memory",
        "multivalue",
        "reference-types",
        "exception-handling",
    ] {
        opt.arg(format!("--enable-{feature}"));
    }
    run(opt.arg("-o").arg(&optimised))?;
    std::fs::rename(&optimised, &wasm).map_err(|e| format!("{}: {e}", wasm.display()))
}

/// The snippet marketers paste (`widget/loader/snippet.html`), for `site` on the edge at `edge`
/// (an origin, or "" for the page's own, as on the demo page).
pub fn snippet(site: &str, edge: &str) -> String {
    include_str!("../../widget/loader/snippet.html")
        .replace("SITE_ID", site)
        .replace("https://EDGE", edge)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// First 12 hex digits of the SHA-256: enough to tell versions apart in a file name.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Minifies an ES module with esbuild (stdin to stdout).
fn minify(tools: &Tools, source: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new(&tools.esbuild)
        .args([
            "--minify",
            "--format=esm",
            "--loader=js",
            "--log-level=warning",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start esbuild: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(source)
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("esbuild failed ({})", output.status));
    }
    Ok(output.stdout)
}
