//! First-touch attribution without cookies: the first page of a visit, kept in the site's own
//! `localStorage` (and only when the site allows it). The loader keeps it (`remember` in
//! `widget/loader/leadglue.js`), since the widget itself loads only on pages where the visitor
//! touches the form; the widget reads it here.

use leadglue_shared::attribution::FirstTouch;
use leadglue_shared::codec::{self, FromJson, Value};

/// How long a first touch is remembered: a later visit after this starts afresh (the loader's
/// `7776e6`).
const KEEP_MS: f64 = 90.0 * 24.0 * 3600.0 * 1000.0;

/// What the loader keeps: `{"touch": {"landing_page": …, "referrer": …}, "at": <ms since the
/// epoch>}`.
struct Stored {
    touch: FirstTouch,
    at: f64,
}

impl FromJson for Stored {
    fn from_value(value: &Value) -> Option<Self> {
        let Value::Object(members) = value else {
            return None;
        };
        let get = |key: &str| members.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let Some(Value::Number(at)) = get("at") else {
            return None;
        };
        // JavaScript parses the number: Rust's float parsing would add its tables to the wasm.
        let at = js_sys::Number::parse_float(at);
        Some(Stored {
            touch: FirstTouch::from_value(get("touch")?)?,
            at: (!at.is_nan()).then_some(at)?,
        })
    }
}

fn key(site_id: &str) -> String {
    format!("leadglue:first-touch:{site_id}")
}

/// This page as a touch: its address and the page that led here.
pub fn this_page() -> FirstTouch {
    let window = leptos::prelude::window();
    let referrer = window
        .document()
        .map(|d| d.referrer())
        .filter(|r| !r.is_empty());
    FirstTouch {
        landing_page: window.location().href().unwrap_or_default(),
        referrer,
    }
}

/// The visit's first touch if one is remembered, else this page.
pub fn first_touch(site_id: &str, enabled: bool) -> FirstTouch {
    enabled
        .then(storage)
        .flatten()
        .and_then(|s| recall_from(&s, site_id))
        .unwrap_or_else(this_page)
}

fn recall_from(storage: &web_sys::Storage, site_id: &str) -> Option<FirstTouch> {
    let text = storage.get_item(&key(site_id)).ok()??;
    let stored = codec::parse(&text).as_ref().and_then(Stored::from_value)?;
    (js_sys::Date::now() - stored.at < KEEP_MS).then_some(stored.touch)
}

fn storage() -> Option<web_sys::Storage> {
    leptos::prelude::window().local_storage().ok().flatten()
}
