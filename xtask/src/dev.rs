//! `cargo xtask dev [--port P]`: the demo, from a fresh clone.

use std::path::PathBuf;

use crate::mailsink::{self, MailSink};
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
    let secrets = local_secrets()?;
    let state = root().join("edge/.wrangler/state");
    let sink = mailsink::start(&root().join("edge/.wrangler/mail"), true)?;
    wrangler::migrate(&state)?;
    let worker = Wrangler::start(&Options {
        port,
        state: &state,
        inspector: true,
        vars: local_vars(port, &sink, "resend"),
        tmpdir: None,
        config: None,
    })?;
    seed_demo_site(&worker.base_url, &secrets.admin_token)?;
    let api_key = crate::keys::create(
        &worker.base_url,
        &secrets.admin_token,
        "cargo xtask dev",
        &["leads:read".to_owned(), "leads:write".to_owned()],
    )?;
    // wrangler dev does not fire cron triggers: do it every minute, as Cloudflare would.
    let cron = format!("{}/__scheduled", worker.base_url);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
            let _ = ureq::get(&cron).call();
        }
    });
    let base = &worker.base_url;
    println!();
    println!("  leadglue is running.");
    println!("  Demo landing page:  {base}/");
    println!("  Widget loader:      {base}/widget/v1/leadglue.js");
    println!(
        "  The demo form on a page of your own (its origin must be in the site's allowed_origins):"
    );
    for line in crate::build::snippet("demo", base).lines() {
        println!("    {line}");
    }
    println!("  Health:             {base}/healthz");
    println!("  Leads land in local D1; inspect them with:");
    println!(
        "    (cd edge && npx wrangler d1 execute DB --local --persist-to .wrangler/state \\\n       --command 'SELECT id, email, name, created_at FROM leads ORDER BY id DESC LIMIT 10')"
    );
    println!("  Emails the Worker sends land in {}", sink.dir.display());
    println!("  Sales API key (leads:read, leads:write), shown once:");
    println!("    {api_key}");
    println!("    curl -H 'authorization: Bearer {api_key}' '{base}/v1/leads?grade=hot'");
    println!("  API description: {base}/v1/openapi.json (docs/api.md)");
    println!("  Stop with Ctrl-C.");
    println!();
    worker.wait()
}

/// Local secrets for `wrangler dev`, from `edge/.dev.vars` (wrangler's file for them,
/// git-ignored). Missing ones are generated and added, so a fresh clone needs no set-up.
pub struct LocalSecrets {
    pub admin_token: String,
    pub webhook_secret: String,
}

const SECRET_NAMES: [&str; 5] = [
    "ADMIN_TOKEN",
    "RESEND_API_KEY",
    "POSTMARK_SERVER_TOKEN",
    "UNSUBSCRIBE_SECRET",
    "WEBHOOK_SECRET",
];

pub fn local_secrets() -> Result<LocalSecrets> {
    let path: PathBuf = root().join("edge/.dev.vars");
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Local secrets for `wrangler dev` (created by `cargo xtask`; never commit this file).\n"
            .to_owned()
    });
    let value = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut added = Vec::new();
    for name in SECRET_NAMES {
        if value(&text, name).is_none() {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let value = if name == "WEBHOOK_SECRET" {
                // Standard Webhooks secrets are `whsec_` and the base64 of the key.
                use base64::Engine;
                let key = random_bytes(24)?;
                format!(
                    "whsec_{}",
                    base64::engine::general_purpose::STANDARD.encode(key)
                )
            } else {
                random_hex(24)?
            };
            text.push_str(&format!("{name}={value}\n"));
            added.push(name);
        }
    }
    if !added.is_empty() {
        std::fs::write(&path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("xtask: added {} to {}", added.join(", "), path.display());
    }
    Ok(LocalSecrets {
        admin_token: value(&text, "ADMIN_TOKEN").ok_or("ADMIN_TOKEN missing")?,
        webhook_secret: value(&text, "WEBHOOK_SECRET").ok_or("WEBHOOK_SECRET missing")?,
    })
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut urandom = std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?;
    std::io::Read::read_exact(&mut urandom, &mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

fn random_hex(n: usize) -> Result<String> {
    Ok(random_bytes(n)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The plain (non-secret) variables the Worker needs locally: which email provider (the local
/// mail sink speaks both HTTP APIs; `cloudflare` writes .eml files), where it is, and the
/// Worker's own public address, for unsubscribe links.
pub fn local_vars(port: u16, sink: &MailSink, provider: &str) -> Vec<(String, String)> {
    vec![
        ("EMAIL_PROVIDER".into(), provider.into()),
        (
            "EMAIL_FROM".into(),
            "Northwind Analytics <hello@northwind.example>".into(),
        ),
        ("PUBLIC_URL".into(), format!("http://127.0.0.1:{port}")),
        ("RESEND_BASE_URL".into(), sink.base_url.clone()),
        ("POSTMARK_BASE_URL".into(), sink.base_url.clone()),
        // Turnstile, for sites that turn it on: the sink stands in for Cloudflare.
        (
            "TURNSTILE_SECRET_KEY".into(),
            crate::mailsink::TURNSTILE_TEST_SECRET.into(),
        ),
        (
            "TURNSTILE_VERIFY_URL".into(),
            format!("{}/turnstile/siteverify", sink.base_url),
        ),
        (
            "TURNSTILE_SCRIPT_URL".into(),
            format!("{}/turnstile/api.js?render=explicit", sink.base_url),
        ),
    ]
}

/// Defines the demo site from `edge/demo/site.json`, allowing the local origins it is served
/// from.
pub fn seed_demo_site(base: &str, token: &str) -> Result<()> {
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
