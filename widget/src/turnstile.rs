//! Cloudflare Turnstile, for sites that turn it on: its script loaded once into the host page,
//! and the challenge rendered explicitly into an element of the form
//! (<https://developers.cloudflare.com/turnstile/get-started/client-side-rendering/>).

use std::cell::RefCell;

use js_sys::{Function, Object, Promise, Reflect};
use leadglue_shared::site::TurnstileConfig;
use leptos::prelude::{document, window};
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

thread_local! {
    /// The script's loading, shared by every form on the page: it is added to the page once.
    static SCRIPT: RefCell<Option<Promise>> = const { RefCell::new(None) };
}

/// `window.turnstile`, once Turnstile's script has loaded (or the page had it already).
async fn api(script_url: &str) -> Option<JsValue> {
    let turnstile = || {
        Reflect::get(&window(), &"turnstile".into())
            .ok()
            .filter(|t| t.is_object())
    };
    if let Some(t) = turnstile() {
        return Some(t);
    }
    let loading = SCRIPT.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                Promise::new(&mut |resolve, reject| {
                    // A classic script in the host document: Turnstile's script expects one.
                    let Ok(script) = document().create_element("script") else {
                        return;
                    };
                    let script: web_sys::HtmlElement = script.unchecked_into();
                    let _ = script.set_attribute("src", script_url);
                    script.set_onload(Some(&resolve));
                    script.set_onerror(Some(&reject));
                    if let Some(head) = document().head() {
                        let _ = head.append_child(&script);
                    }
                })
            })
            .clone()
    });
    JsFuture::from(loading).await.ok()?;
    turnstile()
}

/// Calls `turnstile.{name}(args…)`.
fn call(turnstile: &JsValue, name: &str, args: &[&JsValue]) -> Option<JsValue> {
    let f: Function = Reflect::get(turnstile, &name.into())
        .ok()?
        .dyn_into()
        .ok()?;
    let args: js_sys::Array = args.iter().copied().collect();
    f.apply(turnstile, &args).ok()
}

/// Renders the challenge into `element`; `solved` hears each token, and `None` when a token
/// expires or the challenge fails. Returns the widget's id (for [`reset`]), or `None` when
/// Turnstile could not be loaded.
pub async fn render(
    config: &TurnstileConfig,
    element: &web_sys::Element,
    solved: impl Fn(Option<String>) + Clone + 'static,
) -> Option<String> {
    let turnstile = api(&config.script_url).await?;
    let options = Object::new();
    let set = |key: &str, value: &JsValue| Reflect::set(&options, &key.into(), value).ok();
    set("sitekey", &config.site_key.as_str().into());
    for (key, token) in [
        ("callback", true),
        ("expired-callback", false),
        ("error-callback", false),
    ] {
        let solved = solved.clone();
        let callback = Closure::<dyn Fn(JsValue)>::new(move |t: JsValue| {
            solved(t.as_string().filter(|_| token));
        });
        set(key, callback.as_ref());
        // Turnstile may call it as long as the page lives.
        callback.forget();
    }
    call(&turnstile, "render", &[element, &options])?.as_string()
}

/// Shows widget `id`'s challenge afresh (its token was refused or used up).
pub fn reset(id: &str) {
    if let Ok(t) = Reflect::get(&window(), &"turnstile".into()) {
        call(&t, "reset", &[&id.into()]);
    }
}
