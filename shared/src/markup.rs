//! The form's first step as plain HTML, which the edge serves and the snippet shows before any
//! WebAssembly is fetched: a visitor can read and fill it in at once, and one who never touches
//! it never downloads the wasm. On the visitor's first interaction the widget's own (Leptos)
//! form takes its place, carrying over what was typed and where the focus was.
//!
//! This markup must therefore read and lay out exactly as the widget's first step: same
//! elements, classes, ids, names and test ids. The browser tests hold the two to each other
//! (`tests/e2e/widget.test.mjs`, "takes over").

use std::fmt::Write;

use crate::{SiteConfig, VersionedForm};

/// The form's styles, for both this markup and the widget (so no comments in the file: every
/// byte is shipped). Sizes are in em, never rem: rem follows the host page's root font size.
/// The host page's styles cannot reach inside the shadow root, but inherited properties (font,
/// colour, line height, …) still flow in through the host element, so `:host` resets them all,
/// with `!important` because outer rules on the host otherwise win over `:host`.
pub const CSS: &str = include_str!("style.css");

/// Marks the markup's root (`<div class="lg">`) and carries the render token the edge signed
/// when it rendered the form (the minimum fill time counts from then). The widget's own form
/// has no such attribute: its absence tells that the widget has taken over.
pub const RENDER_TOKEN_ATTRIBUTE: &str = "data-render-token";

/// A contact field of the first step: name on the wire, label, input type (`None`: a
/// textarea), autocomplete token and whether it is required. The widget's form and this markup
/// both render these.
pub struct Contact {
    pub field: &'static str,
    pub label: &'static str,
    pub kind: Option<&'static str>,
    pub autocomplete: &'static str,
    pub required: bool,
}

pub static NAME: Contact = Contact {
    field: "name",
    label: "Name",
    kind: Some("text"),
    autocomplete: "name",
    required: true,
};
pub static EMAIL: Contact = Contact {
    field: "email",
    label: "Email",
    kind: Some("email"),
    autocomplete: "email",
    required: true,
};
pub static COMPANY: Contact = Contact {
    field: "company",
    label: "Company",
    kind: Some("text"),
    autocomplete: "organization",
    required: false,
};
pub static PHONE: Contact = Contact {
    field: "phone",
    label: "Phone",
    kind: Some("tel"),
    autocomplete: "tel",
    required: false,
};
pub static MESSAGE: Contact = Contact {
    field: "message",
    label: "How can we help?",
    kind: None,
    autocomplete: "",
    required: false,
};

/// The contact fields, in the order shown (the consent box follows them).
pub static CONTACTS: [&Contact; 5] = [&NAME, &EMAIL, &COMPANY, &PHONE, &MESSAGE];

/// How many steps the widget shows for `form`: contact details, then the questions if any.
pub fn steps(form: &VersionedForm) -> u8 {
    if form.definition.questions.is_empty() {
        1
    } else {
        2
    }
}

/// Said when the visitor has sent the plain-HTML form and what would send it (the loader, the
/// widget or its configuration) cannot be had. The first step carries it as `data-cannot-send`
/// on its root, for the snippet and the loader, which have no other copy.
pub const CANNOT_SEND: &str =
    "This form cannot be sent right now. Please check your connection and try again.";

/// The form's first step for `site`, with its styles, as the widget renders it, plus the
/// `render_token` (see [`RENDER_TOKEN_ATTRIBUTE`]) and, when the site keeps first-touch
/// attribution, a `data-first-touch` flag for the loader. Every text from the site or the form
/// is escaped.
pub fn first_step(site: &SiteConfig, form: &VersionedForm, render_token: &str) -> String {
    let text = |s: &str| html_escape::encode_safe(s).into_owned();
    let attr = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
    let steps = steps(form);
    let mut out = String::with_capacity(CSS.len() + 4096);
    // `write!` to a String cannot fail.
    let _ = write!(
        out,
        r#"<style>{CSS}</style><div class="lg" data-testid="leadglue" {RENDER_TOKEN_ATTRIBUTE}="{}" data-cannot-send="{}"{}>"#,
        attr(render_token),
        attr(CANNOT_SEND),
        if site.first_touch_attribution {
            " data-first-touch"
        } else {
            ""
        },
    );
    out.push_str(
        r#"<div><p class="sr-only" role="status" aria-live="polite" data-testid="announcer"></p><form novalidate>"#,
    );
    if steps > 1 {
        let _ = write!(
            out,
            r#"<p class="progress" data-testid="progress">Step 1 of {steps}</p>"#
        );
    }
    let _ = write!(
        out,
        r#"<div><h2 tabindex="-1">{}</h2>"#,
        text(&form.definition.title)
    );
    if let Some(intro) = &form.definition.intro {
        let _ = write!(out, "<p>{}</p>", text(intro));
    }
    for c in CONTACTS {
        let optional = if c.required {
            ""
        } else {
            r#" <span class="opt">(optional)</span>"#
        };
        let (field, label) = (c.field, c.label);
        let _ = write!(
            out,
            r#"<div class="field"><label for="lg-{field}">{label}{optional}</label>"#
        );
        match c.kind {
            Some(kind) => {
                let required = if c.required { " required" } else { "" };
                let _ = write!(
                    out,
                    r#"<input id="lg-{field}" name="{field}" type="{kind}" autocomplete="{}"{required} data-testid="{field}" aria-invalid="false">"#,
                    c.autocomplete
                );
            }
            None => {
                let _ = write!(
                    out,
                    r#"<textarea id="lg-{field}" name="{field}" data-testid="{field}" aria-invalid="false"></textarea>"#
                );
            }
        }
        let _ = write!(out, r#"<p class="error" id="lg-{field}-error"></p></div>"#);
    }
    let _ = write!(
        out,
        r#"<div class="field"><label class="consent"><input type="checkbox" id="lg-consent" name="consent" data-testid="consent" required aria-invalid="false"><span data-testid="consent-text">{}</span></label><p class="error" id="lg-consent-error"></p></div>"#,
        text(&site.consent_text)
    );
    out.push_str(
        r#"<div class="hp" aria-hidden="true"><label>Website<input type="text" name="website" tabindex="-1" autocomplete="off"></label></div></div>"#,
    );
    // The challenge shows on the last step: here only when this is the last one. The widget
    // renders it into this box once it has taken over.
    if site.turnstile.is_some() && steps == 1 {
        out.push_str(
            r#"<div class="field"><div data-testid="turnstile"></div><p class="error" id="lg-turnstile-error"></p></div>"#,
        );
    }
    let _ = write!(
        out,
        r#"<p class="error" data-testid="general-error"></p><div class="actions"><button type="submit" data-testid="submit" aria-disabled="false">{}</button></div></form></div></div>"#,
        if steps > 1 { "Next" } else { "Send" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_form;
    use crate::form::{DEFAULT_FORM_ID, DEFAULT_FORM_VERSION};
    use crate::site::TurnstileConfig;
    use proptest::prelude::*;

    fn site() -> SiteConfig {
        SiteConfig {
            id: "demo".into(),
            name: "Northwind".into(),
            consent_text: "Northwind may contact me.".into(),
            consent_version: "v1".into(),
            phone: None,
            booking_url: None,
            first_touch_attribution: true,
            double_opt_in: false,
            turnstile: None,
            min_fill_seconds: 3,
        }
    }

    fn form() -> VersionedForm {
        VersionedForm {
            id: DEFAULT_FORM_ID.into(),
            version: DEFAULT_FORM_VERSION,
            definition: default_form(),
        }
    }

    fn without_questions() -> VersionedForm {
        let mut form = form();
        form.definition.questions.clear();
        form
    }

    /// Positions of `needles` in `haystack`, in order; panics naming one that is missing.
    fn positions(haystack: &str, needles: &[&str]) -> Vec<usize> {
        needles
            .iter()
            .map(|n| {
                haystack
                    .find(n)
                    .unwrap_or_else(|| panic!("{n} not in {haystack}"))
            })
            .collect()
    }

    #[test]
    fn the_first_step_has_every_contact_field_in_order_then_next() {
        let html = first_step(&site(), &form(), "tok");
        let at = positions(
            &html,
            &[
                r#"data-render-token="tok""#,
                "Step 1 of 2",
                "<h2 tabindex=\"-1\">Ask us anything</h2>",
                r#"name="name" type="text" autocomplete="name" required"#,
                r#"name="email" type="email" autocomplete="email" required"#,
                r#"name="company" type="text" autocomplete="organization" data-testid"#,
                r#"name="phone" type="tel" autocomplete="tel" data-testid"#,
                r#"<textarea id="lg-message" name="message""#,
                r#"name="consent" data-testid="consent" required"#,
                "Northwind may contact me.",
                r#"name="website" tabindex="-1""#,
                ">Next</button>",
            ],
        );
        assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order: {at:?}");
        assert!(html.starts_with("<style>") && html.contains(CSS));
        assert!(html.contains(" data-first-touch"));
        // Only the first step: the questions belong to the widget.
        assert!(!html.contains("When are you looking to buy?"));
        assert!(!html.contains("turnstile"));
    }

    #[test]
    fn a_form_without_questions_is_one_step_that_sends() {
        let html = first_step(&site(), &without_questions(), "tok");
        assert!(!html.contains("Step 1"));
        assert!(html.contains(">Send</button>"));
    }

    #[test]
    fn the_challenge_box_shows_only_when_the_first_step_is_the_last() {
        let mut site = site();
        site.turnstile = Some(TurnstileConfig {
            site_key: "key".into(),
            script_url: "https://challenges.example/api.js".into(),
        });
        let box_ = r#"<div data-testid="turnstile"></div>"#;
        assert!(first_step(&site, &without_questions(), "t").contains(box_));
        assert!(!first_step(&site, &form(), "t").contains(box_));
    }

    /// Snippets pasted in pages (`widget/loader/snippet.html`) cannot be updated: they find the
    /// form's root by its class, and hold a submit on it until the loader is there.
    #[test]
    fn the_root_is_what_pasted_snippets_look_for() {
        let html = first_step(&site(), &form(), "t");
        let root = html
            .find(r#"<div class="lg" "#)
            .expect("the root, by its class");
        assert!(
            html[root..].contains("<form "),
            "the form is inside the root"
        );
    }

    /// The snippet and the loader have no words of their own: when the form cannot be sent,
    /// they say what its root carries, where its general error goes and to screen readers.
    #[test]
    fn the_root_carries_what_to_say_when_the_form_cannot_be_sent() {
        let html = first_step(&site(), &form(), "t");
        let root = &html[html.find(r#"<div class="lg" "#).expect("the root")..];
        let root = &root[..root.find('>').expect("the root's tag ends")];
        assert!(
            root.contains(&format!(r#" data-cannot-send="{CANNOT_SEND}""#)),
            "{root}"
        );
        // Found by these test ids (the snippet's and the loader's selectors).
        for place in [
            r#"data-testid="general-error""#,
            r#"data-testid="announcer""#,
        ] {
            assert!(html.contains(place), "{place}");
        }
    }

    #[test]
    fn without_first_touch_attribution_the_loader_is_not_asked_to_keep_one() {
        let mut site = site();
        site.first_touch_attribution = false;
        assert!(!first_step(&site, &form(), "t").contains("data-first-touch"));
    }

    /// Text rich in what markup is made of, with anything else now and then.
    const MARKUPISH: &str = r#"([<>"'&=/ a-z]|.){0,40}"#;

    proptest! {
        /// Whatever a marketer writes in the title, the intro or the consent text (and whatever
        /// the token holds), it cannot add or close an element or break out of an attribute:
        /// the markup has as many `<`, `>` and `"` as with plain words.
        #[test]
        fn text_from_the_site_is_escaped(
            title in MARKUPISH, intro in MARKUPISH, consent in MARKUPISH, token in MARKUPISH,
        ) {
            let count = |html: &str| {
                (html.matches('<').count(), html.matches('>').count(), html.matches('"').count())
            };
            let plain = {
                let mut form = form();
                form.definition.title = "t".into();
                form.definition.intro = Some("i".into());
                let mut site = site();
                site.consent_text = "c".into();
                count(&first_step(&site, &form, "k"))
            };
            let mut form = form();
            form.definition.title = title;
            form.definition.intro = Some(intro);
            let mut site = site();
            site.consent_text = consent;
            prop_assert_eq!(count(&first_step(&site, &form, &token)), plain);
        }
    }
}
