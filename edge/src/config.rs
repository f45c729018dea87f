//! Binding and secret names, exactly as declared in `wrangler.toml` and `.dev.vars`.

/// The D1 database (`[[d1_databases]] binding`).
pub const DB: &str = "DB";
/// Static assets: the widget bundle and the demo page (`[assets] binding`).
pub const ASSETS: &str = "ASSETS";
/// Bearer token for `/v1/admin/*` (a Worker secret; `.dev.vars` locally).
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
