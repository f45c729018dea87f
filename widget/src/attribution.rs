//! First-touch attribution without cookies: the first page of a visit, kept in the site's own
//! `localStorage` (and only when the site allows it).

use leadglue_shared::attribution::FirstTouch;
use leadglue_shared::codec::{self, FromJson, ObjectWriter, ToJson, Value};

/// How long a first touch is remembered: a later visit after this starts afresh.
const KEEP_MS: f64 = 90.0 * 24.0 * 3600.0 * 1000.0;

/// What is kept: `{"touch": {…}, "at": <ms since the epoch>}` (the format serde wrote before).
struct Stored {
    touch: FirstTouch,
    at: f64,
}

impl ToJson for Stored {
    fn write_json(&self, out: &mut String) {
        ObjectWriter::new(out)
            .member("touch", &self.touch)
            .member("at", &self.at)
            .end();
    }
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

/// Remembers this page as the visit's first touch, unless one is already remembered and recent.
/// Storage can be unavailable (privacy modes, full quota): attribution is then this page's.
pub fn remember(site_id: &str) {
    let Some(storage) = storage() else { return };
    if recall_from(&storage, site_id).is_some() {
        return;
    }
    let stored = Stored {
        touch: this_page(),
        at: js_sys::Date::now(),
    };
    let _ = storage.set_item(&key(site_id), &stored.to_json());
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
