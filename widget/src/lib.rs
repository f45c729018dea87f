#![doc = include_str!("../README.md")]

mod api;
mod form;

use wasm_bindgen::prelude::wasm_bindgen;

/// Renders the form for `site_id` into `root` (an element inside the loader's shadow root),
/// talking to the edge at `api_base` (the origin the loader was served from).
#[wasm_bindgen]
pub fn mount(root: web_sys::HtmlElement, site_id: String, api_base: String) {
    let handle = leptos::mount::mount_to(root, move || {
        leptos::view! { <form::LeadForm site_id api_base /> }
    });
    // The form lives as long as the page.
    handle.forget();
}
