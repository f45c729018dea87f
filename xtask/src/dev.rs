//! `cargo xtask dev [--port P]`: the demo, from a fresh clone.

use std::path::PathBuf;

use crate::wrangler::{self, Options, Wrangler};
use crate::{Result, build, root, tools};

pub fn run(args: &[String]) -> Result<()> {
    let port = match args {
        [] => 8787,
        [flag, port] if flag == "--port" => port
            .parse()
            .map_err(|_| format!("--port takes a port number, not {port:?}"))?,
        _ => return Err(crate::USAGE.to_owned()),
    };
    let tools = tools::ensure_build_tools()?;
    build::all(&tools)?;
    let token = admin_token()?;
    let state = root().join("edge/.wrangler/state");
    wrangler::migrate(&state)?;
    let worker = Wrangler::start(&Options {
        port,
        state: &state,
        isolated: false,
    })?;
    seed_demo_site(&worker.base_url, &token)?;
    let base = &worker.base_url;
    println!();
    println!("  leadglue is running.");
    println!("  Demo landing page:  {base}/");
    println!("  Widget loader:      {base}/widget/v1/leadglue.js");
    println!("  Health:             {base}/healthz");
    println!("  Leads land in local D1; inspect them with:");
    println!(
        "    (cd edge && npx wrangler d1 execute DB --local --persist-to .wrangler/state \\\n       --command 'SELECT id, email, name, created_at FROM leads ORDER BY id DESC LIMIT 10')"
    );
    println!("  Stop with Ctrl-C.");
    println!();
    worker.wait()
}

/// The admin token from `edge/.dev.vars` (wrangler's file for local secrets, git-ignored),
/// creating the file with a fresh random token when it is missing.
pub fn admin_token() -> Result<String> {
    let path: PathBuf = root().join("edge/.dev.vars");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(token) = text
            .lines()
            .find_map(|l| l.strip_prefix("ADMIN_TOKEN="))
            .map(|t| t.trim().trim_matches('"').to_owned())
            .filter(|t| !t.is_empty())
        {
            return Ok(token);
        }
        return Err(format!("{} exists but sets no ADMIN_TOKEN", path.display()));
    }
    let mut bytes = [0u8; 24];
    let mut urandom = std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?;
    std::io::Read::read_exact(&mut urandom, &mut bytes).map_err(|e| e.to_string())?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!(
        "# Local secrets for `wrangler dev` (created by `cargo xtask`; never commit this file).\n\
         # ADMIN_TOKEN guards /v1/admin/*.\nADMIN_TOKEN={token}\n"
    );
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("xtask: created {} with a fresh ADMIN_TOKEN", path.display());
    Ok(token)
}

/// Defines the demo site from `edge/demo/site.json`, allowing the local origins it is served
/// from.
fn seed_demo_site(base: &str, token: &str) -> Result<()> {
    let path = root().join("edge/demo/site.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut site: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let port = base.rsplit(':').next().unwrap_or("8787");
    let origins = site["allowed_origins"]
        .as_array_mut()
        .ok_or("site.json needs an allowed_origins array")?;
    for host in ["127.0.0.1", "localhost"] {
        origins.push(format!("http://{host}:{port}").into());
    }
    ureq::put(format!("{base}/v1/admin/sites/demo"))
        .header("authorization", format!("Bearer {token}"))
        .send_json(&site)
        .map_err(|e| format!("seeding the demo site: {e}"))?;
    eprintln!("xtask: demo site seeded from {}", path.display());
    Ok(())
}
