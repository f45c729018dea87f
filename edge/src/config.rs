//! Binding and secret names, exactly as declared in `wrangler.toml` and `.dev.vars`.

/// The D1 database (`[[d1_databases]] binding`).
pub const DB: &str = "DB";
/// Static assets: the widget bundle and the demo page (`[assets] binding`).
pub const ASSETS: &str = "ASSETS";
/// Bearer token for `/v1/admin/*` (a Worker secret; `.dev.vars` locally).
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
/// The queue follow-up steps travel on (`[[queues.producers]] binding`).
pub const FOLLOW_UPS: &str = "FOLLOW_UPS";

/// Rate limits on `POST /v1/leads` (`[[ratelimits]] name`): per visitor IP, and per site. A
/// configuration without them has no limit.
pub const IP_RATE_LIMIT: &str = "IP_RATE_LIMIT";
pub const SITE_RATE_LIMIT: &str = "SITE_RATE_LIMIT";
/// The window both limits count in, as declared (`simple.period`): what `Retry-After` says.
pub const RATE_LIMIT_PERIOD_SECONDS: u32 = 60;

/// Turnstile (Cloudflare's challenge), for sites with a `turnstile_site_key`:
/// `TURNSTILE_SECRET_KEY` (secret), and where to verify answers and load the script from
/// (vars; Cloudflare's addresses by default).
pub const TURNSTILE_SECRET_KEY: &str = "TURNSTILE_SECRET_KEY";
pub const TURNSTILE_VERIFY_URL: &str = "TURNSTILE_VERIFY_URL";
pub const TURNSTILE_SCRIPT_URL: &str = "TURNSTILE_SCRIPT_URL";
pub const DEFAULT_TURNSTILE_VERIFY_URL: &str =
    "https://challenges.cloudflare.com/turnstile/v0/siteverify";
pub const DEFAULT_TURNSTILE_SCRIPT_URL: &str =
    "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";

/// A setting from the environment: a secret or a plain variable, blank meaning unset.
pub fn setting(env: &worker::Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The key render tokens are signed with: derived from `UNSUBSCRIBE_SECRET` (already a required
/// 32+ character secret), under its own label, so neither signature can stand in for the other.
/// Derived once per isolate: secrets do not change under a running isolate (a new one starts
/// with a deployment or `wrangler secret put`).
pub fn render_token_key(env: &worker::Env) -> Result<std::rc::Rc<[u8]>, String> {
    thread_local! {
        static KEY: std::cell::OnceCell<std::rc::Rc<[u8]>> = const { std::cell::OnceCell::new() };
    }
    if let Some(key) = KEY.with(|k| k.get().cloned()) {
        return Ok(key);
    }
    let secret = link_secret(env)?;
    let key: std::rc::Rc<[u8]> = leadglue_shared::spam::render_key(secret.as_bytes()).into();
    Ok(KEY.with(|k| k.get_or_init(|| key).clone()))
}

/// The HMAC key of the links in emails (`UNSUBSCRIBE_SECRET`), checked. Following a link needs
/// only this: a person can unsubscribe even while sending email is misconfigured.
pub fn link_secret(env: &worker::Env) -> Result<String, String> {
    let secret = setting(env, "UNSUBSCRIBE_SECRET").ok_or("UNSUBSCRIBE_SECRET is not set")?;
    if secret.len() < 32 {
        return Err("UNSUBSCRIBE_SECRET must be at least 32 characters".into());
    }
    Ok(secret)
}

/// The `send_email` binding, when email goes through Cloudflare (`[[send_email]] name`).
pub const EMAIL: &str = "EMAIL";

/// Everything sending email needs, read from the environment once per use and checked, so a
/// missing or bad setting is reported by name instead of failing somewhere inside a send.
///
/// | variable | kind | meaning |
/// |---|---|---|
/// | `EMAIL_PROVIDER` | var | `resend` (default), `postmark` or `cloudflare` (the `EMAIL` binding) |
/// | `EMAIL_FROM` | var | sender, e.g. `Northwind <hello@northwind.example>` |
/// | `PUBLIC_URL` | var | this Worker's public origin, for unsubscribe and confirm links |
/// | `UNSUBSCRIBE_SECRET` | secret | HMAC key of those links (32+ characters) |
/// | `RESEND_API_KEY` | secret | with `resend` |
/// | `RESEND_BASE_URL` | var | with `resend` (default `https://api.resend.com`) |
/// | `POSTMARK_SERVER_TOKEN` | secret | with `postmark` |
/// | `POSTMARK_BASE_URL` | var | with `postmark` (default `https://api.postmarkapp.com`) |
/// | `WEBHOOK_SECRET` | secret | `whsec_` + base64 key signing webhook steps (Standard Webhooks) |
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub from: String,
    pub public_url: String,
    pub unsubscribe_secret: String,
    pub provider: Provider,
    /// Needed only by sites with webhook steps; checked when one runs.
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Provider {
    Resend { base_url: String, api_key: String },
    Postmark { base_url: String, token: String },
    Cloudflare,
}

impl EmailConfig {
    pub fn from_env(env: &worker::Env) -> Result<Self, String> {
        let get = |name: &str| setting(env, name);
        let need = |name: &str| get(name).ok_or_else(|| format!("{name} is not set"));
        let base = |name: &str, default: &str| {
            get(name)
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        let public_url = need("PUBLIC_URL")?;
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(format!(
                "PUBLIC_URL must be an http(s) origin, not {public_url:?}"
            ));
        }
        let secret = link_secret(env)?;
        let provider = match get("EMAIL_PROVIDER").as_deref().unwrap_or("resend") {
            "resend" => Provider::Resend {
                base_url: base("RESEND_BASE_URL", "https://api.resend.com"),
                api_key: need("RESEND_API_KEY")?,
            },
            "postmark" => Provider::Postmark {
                base_url: base("POSTMARK_BASE_URL", "https://api.postmarkapp.com"),
                token: need("POSTMARK_SERVER_TOKEN")?,
            },
            "cloudflare" => Provider::Cloudflare,
            other => {
                return Err(format!(
                    "EMAIL_PROVIDER must be resend, postmark or cloudflare, not {other:?}"
                ));
            }
        };
        Ok(Self {
            from: need("EMAIL_FROM")?,
            public_url: public_url.trim_end_matches('/').to_owned(),
            unsubscribe_secret: secret,
            provider,
            webhook_secret: get("WEBHOOK_SECRET"),
        })
    }

    /// A signed link in an email: `/v1/unsubscribe/{token}` or `/v1/confirm/{token}`.
    pub fn link(&self, action: &str, token: &str) -> String {
        format!("{}/v1/{action}/{token}", self.public_url)
    }

    /// The bare address in `EMAIL_FROM` (`hello@x` from `Name <hello@x>`).
    pub fn sender_address(&self) -> &str {
        self.from
            .rsplit_once('<')
            .map(|(_, rest)| rest.trim_end_matches('>').trim())
            .unwrap_or(self.from.trim())
    }

    /// The display name in `EMAIL_FROM`, if any.
    pub fn sender_name(&self) -> Option<&str> {
        self.from
            .split_once('<')
            .map(|(name, _)| name.trim().trim_matches('"'))
            .filter(|name| !name.is_empty())
    }
}
