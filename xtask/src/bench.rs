//! `cargo xtask bench`: what a visitor downloads and what a lead costs, measured and compared
//! with the budgets, into `target/bench/report.json` and `target/bench/report.md`.
//!
//! So far: widget bytes (loader, glue, wasm; raw, gzip, brotli; the first visit's total), the
//! edge's wasm bytes, and native micro-benchmarks of the per-lead work in `shared` (criterion).
//! Browser timings and load against `wrangler dev` are still to come (issue 7).

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::{Result, build, cargo, root, tools};

/// Budgets (issue 7): bytes, brotli or gzip as named.
const LOADER_BROTLI: usize = 2 * 1024;
const FIRST_VISIT_BROTLI: usize = 60 * 1024;
const EDGE_GZIP: usize = 400 * 1024;

pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        return Err(crate::USAGE.to_owned());
    }
    let tools = tools::ensure_build_tools()?;
    build::all(&tools)?;

    let root = root();
    let widget_dir = root.join("edge/public/widget/v1");
    let loader = sizes(&widget_dir.join("leadglue.js"))?;
    let assets = std::fs::read_dir(widget_dir.join("assets")).map_err(|e| e.to_string())?;
    let (mut glue, mut wasm) = (None, None);
    for entry in assets.flatten() {
        let path = entry.path();
        match path.extension().and_then(|x| x.to_str()) {
            Some("js") => glue = Some(sizes(&path)?),
            Some("wasm") => wasm = Some(sizes(&path)?),
            _ => {}
        }
    }
    let glue = glue.ok_or("no widget glue was built")?;
    let wasm = wasm.ok_or("no widget wasm was built")?;
    let first_visit = loader.brotli + glue.brotli + wasm.brotli;
    let edge = sizes(&root.join("edge/build/index_bg.wasm"))?;

    crate::run(cargo().args([
        "bench",
        "--package",
        "leadglue-shared",
        "--bench",
        "hot_path",
        "--",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "3",
    ]))?;
    let mut micro = serde_json::Map::new();
    for name in ["parse", "validate", "score", "serialise"] {
        let path = root.join(format!("target/criterion/{name}/new/estimates.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let estimates: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        micro.insert(name.into(), estimates["mean"]["point_estimate"].clone());
    }

    let budgets = [
        ("loader ≤ 2 KB brotli", loader.brotli, LOADER_BROTLI),
        (
            "first visit ≤ 60 KB brotli",
            first_visit,
            FIRST_VISIT_BROTLI,
        ),
        ("edge wasm ≤ 400 KB gzip", edge.gzip, EDGE_GZIP),
    ];
    let report = json!({
        "widget": { "loader": loader.json(), "glue": glue.json(), "wasm": wasm.json(),
                    "first_visit_brotli": first_visit },
        "edge_wasm": edge.json(),
        "micro_ns": micro,
        "budgets": budgets.iter().map(|(name, value, limit)| json!({
            "budget": name, "value": value, "limit": limit, "pass": value <= limit,
        })).collect::<Vec<_>>(),
    });

    let mut md = String::from("# leadglue benchmark report\n\n");
    md.push_str("| artifact | raw | gzip | brotli |\n|---|---:|---:|---:|\n");
    for (name, s) in [
        ("widget loader", &loader),
        ("widget glue", &glue),
        ("widget wasm", &wasm),
        ("edge wasm", &edge),
    ] {
        md.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            s.raw, s.gzip, s.brotli
        ));
    }
    md.push_str(&format!(
        "\nFirst visit (loader + glue + wasm, brotli): {first_visit} B\n\n"
    ));
    md.push_str("| per-lead work (native, mean) | ns |\n|---|---:|\n");
    for (name, ns) in &micro {
        md.push_str(&format!(
            "| {name} | {:.0} |\n",
            ns.as_f64().unwrap_or_default()
        ));
    }
    md.push_str("\n| budget | value | limit | |\n|---|---:|---:|---|\n");
    for (name, value, limit) in budgets {
        let verdict = if value <= limit { "PASS" } else { "FAIL" };
        md.push_str(&format!("| {name} | {value} | {limit} | {verdict} |\n"));
    }

    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let json_text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(out.join("report.json"), json_text).map_err(|e| e.to_string())?;
    std::fs::write(out.join("report.md"), &md).map_err(|e| e.to_string())?;
    println!("{md}");
    println!("Written to {}", out.display());
    Ok(())
}

struct Sizes {
    raw: usize,
    gzip: usize,
    brotli: usize,
}

impl Sizes {
    fn json(&self) -> Value {
        json!({ "raw": self.raw, "gzip": self.gzip, "brotli": self.brotli })
    }
}

/// Raw, gzip (level 9) and brotli (quality 11) sizes: what a CDN serves compressed.
fn sizes(path: &Path) -> Result<Sizes> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes).map_err(|e| e.to_string())?;
    let gzip = gz.finish().map_err(|e| e.to_string())?.len();
    let mut br = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut br, 4096, 11, 22);
        writer.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    Ok(Sizes {
        raw: bytes.len(),
        gzip,
        brotli: br.len(),
    })
}
