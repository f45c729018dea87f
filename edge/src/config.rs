//! Binding and secret names, exactly as declared in `wrangler.toml` and `.dev.vars`.

/// The D1 database (`[[d1_databases]] binding`).
pub const DB: &str = "DB";
/// Static assets: the widget bundle and the demo page (`[assets] binding`).
pub const ASSETS: &str = "ASSETS";
/// Bearer token for `/v1/admin/*` (a Worker secret; `.dev.vars` locally).
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
/// The queue follow-up steps travel on (`[[queues.producers]] binding`).
pub const FOLLOW_UPS: &str = "FOLLOW_UPS";

/// Everything sending email needs, read from the environment once per use and checked, so a
/// missing or bad setting is reported by name instead of failing somewhere inside a send.
///
/// | variable | kind | meaning |
/// |---|---|---|
/// | `EMAIL_FROM` | var | sender, e.g. `Northwind <hello@northwind.example>` |
/// | `PUBLIC_URL` | var | this Worker's public origin, for unsubscribe links |
/// | `RESEND_BASE_URL` | var | provider API base (default `https://api.resend.com`) |
/// | `RESEND_API_KEY` | secret | provider API key |
/// | `UNSUBSCRIBE_SECRET` | secret | HMAC key of unsubscribe tokens (32+ random bytes) |
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub from: String,
    pub public_url: String,
    pub provider_base_url: String,
    pub provider_api_key: String,
    pub unsubscribe_secret: String,
}

impl EmailConfig {
    pub fn from_env(env: &worker::Env) -> Result<Self, String> {
        let get = |name: &str| {
            env.secret(name)
                .map(|s| s.to_string())
                .or_else(|_| env.var(name).map(|v| v.to_string()))
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        let need = |name: &str| get(name).ok_or_else(|| format!("{name} is not set"));
        let public_url = need("PUBLIC_URL")?;
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(format!(
                "PUBLIC_URL must be an http(s) origin, not {public_url:?}"
            ));
        }
        let secret = need("UNSUBSCRIBE_SECRET")?;
        if secret.len() < 32 {
            return Err("UNSUBSCRIBE_SECRET must be at least 32 characters".into());
        }
        Ok(Self {
            from: need("EMAIL_FROM")?,
            public_url: public_url.trim_end_matches('/').to_owned(),
            provider_base_url: get("RESEND_BASE_URL")
                .unwrap_or_else(|| "https://api.resend.com".into())
                .trim_end_matches('/')
                .to_owned(),
            provider_api_key: need("RESEND_API_KEY")?,
            unsubscribe_secret: secret,
        })
    }

    /// A signed link in an email: `/v1/unsubscribe/{token}` or `/v1/confirm/{token}`.
    pub fn link(&self, action: &str, token: &str) -> String {
        format!("{}/v1/{action}/{token}", self.public_url)
    }
}
