//! `cargo xtask api-key`: create and revoke Sales API keys on a running local Worker (the one
//! `cargo xtask dev` serves), with the local `ADMIN_TOKEN` from `edge/.dev.vars`.
//!
//! - `cargo xtask api-key create [--name N] [--scope S]... [--url U]` (scopes default to
//!   `leads:read leads:write`; the URL to http://127.0.0.1:8787)
//! - `cargo xtask api-key revoke <id> [--url U]`

use serde_json::{Value, json};

use crate::{Result, dev};

const USAGE: &str = "usage: cargo xtask api-key <create [--name N] [--scope S]... | revoke ID> \
                     [--url http://127.0.0.1:8787]";

pub fn run(args: &[String]) -> Result<()> {
    let mut url = "http://127.0.0.1:8787".to_owned();
    let mut name = "local".to_owned();
    let mut scopes = Vec::new();
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().ok_or_else(|| USAGE.to_owned());
        match arg.as_str() {
            "--url" => url = value()?,
            "--name" => name = value()?,
            "--scope" => scopes.push(value()?),
            _ => rest.push(arg.clone()),
        }
    }
    if scopes.is_empty() {
        scopes = vec!["leads:read".into(), "leads:write".into()];
    }
    let token = dev::local_secrets()?.admin_token;
    match rest.as_slice() {
        [cmd] if cmd == "create" => {
            let key = create(&url, &token, &name, &scopes)?;
            println!("{key}");
            Ok(())
        }
        [cmd, id] if cmd == "revoke" => {
            let answer = ureq::delete(format!("{url}/v1/admin/api-keys/{id}"))
                .header("authorization", format!("Bearer {token}"))
                .call()
                .map_err(|e| format!("revoking key {id}: {e}"))?;
            eprintln!("xtask: key {id} revoked ({})", answer.status());
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    }
}

/// Creates a key and returns it (the only time it is shown).
pub fn create(base: &str, admin_token: &str, name: &str, scopes: &[String]) -> Result<String> {
    let mut answer = ureq::post(format!("{base}/v1/admin/api-keys"))
        .header("authorization", format!("Bearer {admin_token}"))
        .send_json(json!({ "name": name, "scopes": scopes }))
        .map_err(|e| format!("creating an API key at {base}: {e}"))?;
    let body: Value = answer
        .body_mut()
        .read_json()
        .map_err(|e| format!("reading the new key: {e}"))?;
    body["key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no key in the answer: {body}"))
}
