//! Cloudflare Turnstile, for sites that turn it on: its script loaded once into the host page,
//! and the challenge rendered explicitly into an element of the form
//! (<https://developers.cloudflare.com/turnstile/get-started/client-side-rendering/>).

use std::cell::RefCell;

use js_sys::{Object, Promise, Reflect};
use leadglue_shared::site::TurnstileConfig;
use leptos::prelude::document;
use wasm_bindgen::prelude::{Closure, wasm_bindgen};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// `turnstile.render(element, options)`: the widget's id. Throws while the script is missing.
    #[wasm_bindgen(catch, js_namespace = turnstile, js_name = render)]
    fn render_into(element: &web_sys::Element, options: &Object) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(catch, js_namespace = turnstile, js_name = reset)]
    fn reset_widget(id: &str) -> Result<(), JsValue>;
}

/// The submission's member (and the edge's field errors' field) that carries the token.
pub const FIELD: &str = "turnstile_token";

thread_local! {
    /// The script's loading, shared by every form on the page: it is added to the page once.
    static SCRIPT: RefCell<Option<Promise>> = const { RefCell::new(None) };
}

/// Waits for Turnstile's script, adding it to the host page unless it is there already.
async fn load(script_url: &str) -> Result<JsValue, JsValue> {
    if Reflect::has(&leptos::prelude::window(), &"turnstile".into())? {
        return Ok(JsValue::UNDEFINED);
    }
    let loading = SCRIPT.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                Promise::new(&mut |resolve, reject| {
                    // A classic script in the host document, as Turnstile's script expects.
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
    JsFuture::from(loading).await
}

/// Renders the challenge into `element`; `solved` hears each token (Turnstile renews an expired
/// one by itself; one the edge refuses is met with [`reset`]). Returns the widget's id, or
/// `None` when Turnstile could not be loaded: the edge then says the challenge is missing.
pub async fn render(
    config: &TurnstileConfig,
    element: &web_sys::Element,
    solved: impl Fn(Option<String>) + 'static,
) -> Option<String> {
    load(&config.script_url).await.ok()?;
    let options = Object::new();
    let callback = Closure::<dyn Fn(JsValue)>::new(move |t: JsValue| solved(t.as_string()));
    Reflect::set(
        &options,
        &"sitekey".into(),
        &config.site_key.as_str().into(),
    )
    .ok()?;
    Reflect::set(&options, &"callback".into(), callback.as_ref()).ok()?;
    // Turnstile may call it as long as the page lives.
    callback.forget();
    render_into(element, &options).ok()?.as_string()
}

/// Shows widget `id`'s challenge afresh (its token was refused or used up).
pub fn reset(id: &str) {
    let _ = reset_widget(id);
}
