#![doc = include_str!("../README.md")]
// Leptos components take their props by value by design; the lint would flag every one.
#![allow(clippy::needless_pass_by_value)]

mod api;
mod attribution;
mod fields;
mod form;
mod outbox;
mod takeover;
mod thanks;
mod turnstile;

use wasm_bindgen::prelude::wasm_bindgen;

/// Renders form `form_id` of `site_id` into `root` (an
/// element inside the loader's shadow root), talking to the edge at `api_base` (the origin the
/// loader was served from). When `root` holds the loader's plain-HTML form, the widget's form
/// takes its place once it is ready, with what the visitor typed there (see [`takeover`]).
/// `config` is the loader's request for the form's configuration, sent while the wasm was
/// loading (`GET {api_base}/v1/sites/{site_id}/forms/{form_id}`); without it, or if the URL it
/// asked for reads differently (the browser's normalising of it), the form asks itself.
#[wasm_bindgen]
pub fn mount(
    root: web_sys::HtmlElement,
    site_id: String,
    form_id: String,
    api_base: String,
    config: Option<js_sys::Promise>,
) {
    let takeover = takeover::Takeover::of(&root);
    let target = takeover.as_ref().map_or(root, takeover::Takeover::built);
    let handle = leptos::mount::mount_to(target, move || {
        leptos::view! { <form::LeadForm site_id form_id api_base started=config takeover /> }
    });
    // The form lives as long as the page.
    handle.forget();
}
