//! The widget taking over from the plain-HTML form (`leadglue_shared::markup`) the snippet or
//! loader showed, which the visitor may be filling in at that very moment. The widget's own
//! form is built aside, starting from what was typed or ticked there, then put in the markup's
//! place in one synchronous step that also carries over the focus, the caret, and a submit the
//! visitor made before the widget was there: no keystroke can fall between the two forms, since
//! none is handled until the step ends, and no click either, since the step waits (up to 5 s)
//! for a pointer or a Space key pressed on the markup to be released; nor a word being composed
//! with an input method, since it waits (up to a minute) for the word to be committed.

use leadglue_shared::markup::RENDER_TOKEN_ATTRIBUTE;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Element, HtmlElement, HtmlFormElement, HtmlInputElement, HtmlTextAreaElement};

/// Set by the snippet or loader on the widget's root when the visitor sent the form before the
/// widget was there.
const HELD_SUBMIT: &str = "data-held";

/// Set by the loader on the widget's root while the visitor composes a word in the markup with
/// an input method.
const COMPOSING: &str = "data-composing";

/// How long the takeover waits for a press under way to end (see [`Takeover::released`]).
const LONGEST_PRESS_MS: u32 = 5_000;

/// How long it waits for a word being composed to be committed: a phrase may take a while.
const LONGEST_COMPOSITION_MS: u32 = 60_000;

/// The snippet's or loader's markup in `root`, and the detached element the widget's form is built in.
pub struct Takeover {
    root: HtmlElement,
    built: HtmlElement,
    /// Signed by the edge when it rendered the markup: when the form was shown.
    pub render_token: Option<String>,
}

impl Takeover {
    /// A takeover of the markup in `root`, if the snippet or loader showed some.
    pub fn of(root: &HtmlElement) -> Option<Self> {
        let shown = root
            .query_selector(&format!("[{RENDER_TOKEN_ATTRIBUTE}]"))
            .ok()??;
        Some(Takeover {
            root: root.clone(),
            built: leptos::prelude::document()
                .create_element("div")
                .ok()?
                .unchecked_into(),
            render_token: shown.get_attribute(RENDER_TOKEN_ATTRIBUTE),
        })
    }

    /// What the visitor has typed or ticked in the markup so far, for the widget's form to
    /// start from. (Its controls' values are set after the takeover by effects that run a
    /// moment later: from the same values, they leave the caret where it was.)
    pub fn typed(&self) -> Typed {
        Typed(controls(&self.root))
    }

    /// Where the widget builds its form until [`Takeover::finish`].
    pub fn built(&self) -> HtmlElement {
        self.built.clone()
    }

    /// Until no press is under way in the markup: a pointer held down on one of its controls,
    /// or the Space key held on its button or a checkbox; and no word is being composed there.
    /// A click the visitor began on the markup's button then ends there, and counts, instead of
    /// starting on one button and ending on the widget's, which is no click at all; a word
    /// being composed (with an input method, as Japanese is typed) is committed in the field it
    /// was begun in, rather than cut off when the field is replaced. Called before
    /// [`Takeover::typed`], so that what a click did (a tick, a send) and the word are taken over
    /// too. It waits no longer than [`LONGEST_PRESS_MS`] for a press and
    /// [`LONGEST_COMPOSITION_MS`] for a word, should either never be seen to end.
    pub async fn released(&self) {
        let mut waited = 0;
        while (waited < LONGEST_PRESS_MS && self.pressed())
            || (waited < LONGEST_COMPOSITION_MS && self.root.has_attribute(COMPOSING))
        {
            crate::api::sleep(20).await;
            waited += 20;
        }
    }

    /// Whether a press is under way in the markup. A pointer held down makes the pressed
    /// element and its ancestors `:active`, the root among them; the Space key held on a button
    /// or checkbox makes that control alone `:active` (in Chromium). Each selector names its
    /// element: on a host page in quirks mode (no doctype), `:active` alone matches links only.
    fn pressed(&self) -> bool {
        self.root.matches("div:active").unwrap_or(false)
            || self
                .root
                .query_selector("button:active, input:active")
                .is_ok_and(|el| el.is_some())
    }

    /// Whether the visitor has sent the markup's form.
    pub fn held(&self) -> bool {
        self.root.has_attribute(HELD_SUBMIT)
    }

    /// Says `reason` in the markup, where its own general error goes, and to screen readers.
    pub fn say(&self, reason: &str) {
        for id in ["general-error", "announcer"] {
            if let Ok(Some(el)) = self.root.query_selector(&format!("[data-testid={id}]")) {
                el.set_text_content(Some(reason));
            }
        }
    }

    /// Until the visitor sends the markup's form again or the browser comes back online: when
    /// the widget tries again to take over. The submit listener goes on the markup, so it goes
    /// with it at the takeover; an `online` listener stays per failed try (a promise resolves
    /// once, so a later call does nothing).
    pub async fn next_try(&self) {
        // Where the loader listens too, after it: it has marked the send held by then.
        let markup = self
            .root
            .query_selector(".lg")
            .ok()
            .flatten()
            .unwrap_or_else(|| self.root.clone().into());
        let again = js_sys::Promise::new(&mut |resolve, _| {
            let _ = markup.add_event_listener_with_callback("submit", &resolve);
            let _ = leptos::prelude::window().add_event_listener_with_callback("online", &resolve);
        });
        let _ = JsFuture::from(again).await;
    }

    /// Puts what was built in the markup's place, with the visitor's input.
    pub fn finish(self) {
        let Takeover { root, built, .. } = self;
        let typed: Vec<(String, Control)> = controls(&root);
        // The focused control, or button, by what names it in both forms.
        let focused = root
            .get_root_node()
            .dyn_into::<web_sys::ShadowRoot>()
            .ok()
            .and_then(|r| r.active_element())
            .and_then(|el| {
                let counterpart = counterpart(&el)?;
                Some((counterpart, Control::of(&el).and_then(|c| c.selection())))
            });
        let held = root.has_attribute(HELD_SUBMIT);
        let _ = root.remove_attribute(HELD_SUBMIT);
        let _ = root.remove_attribute(COMPOSING);

        root.set_text_content(None);
        while let Some(node) = built.first_child() {
            let _ = root.append_child(&node);
        }

        for (name, was) in typed {
            if let Some(now) = named(&root, &name).as_ref().and_then(Control::of) {
                now.take(&was);
            }
        }
        if let Some((counterpart, selection)) = focused
            && let Ok(Some(el)) = root.query_selector(&counterpart)
        {
            let _ = el.unchecked_ref::<HtmlElement>().focus();
            if let (Some(control), Some((start, end))) = (Control::of(&el), selection) {
                control.select(start, end);
            }
        }
        if held
            && let Some(form) = root
                .query_selector("form")
                .ok()
                .flatten()
                .and_then(|f| f.dyn_into::<HtmlFormElement>().ok())
        {
            let _ = form.request_submit();
        }
    }
}

/// The markup's controls, by name.
#[derive(Default)]
pub struct Typed(Vec<(String, Control)>);

impl Typed {
    fn get(&self, name: &str) -> Option<&Control> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The text in control `name` (empty if there is none).
    pub fn text(&self, name: &str) -> String {
        self.get(name).map(Control::value).unwrap_or_default()
    }

    /// Whether checkbox `name` is ticked.
    pub fn ticked(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Control::Input(i)) if i.checked())
    }
}

/// A form control that holds visitor input.
enum Control {
    Input(HtmlInputElement),
    TextArea(HtmlTextAreaElement),
}

impl Control {
    fn of(el: &Element) -> Option<Self> {
        if let Some(input) = el.dyn_ref::<HtmlInputElement>() {
            Some(Control::Input(input.clone()))
        } else {
            el.dyn_ref::<HtmlTextAreaElement>()
                .map(|t| Control::TextArea(t.clone()))
        }
    }

    fn value(&self) -> String {
        match self {
            Control::Input(i) => i.value(),
            Control::TextArea(t) => t.value(),
        }
    }

    fn is_checkbox(&self) -> bool {
        matches!(self, Control::Input(i) if i.type_() == "checkbox")
    }

    /// The caret or selection, where the control has one (email inputs do not expose it).
    fn selection(&self) -> Option<(u32, u32)> {
        let range = match self {
            Control::Input(i) => (i.selection_start(), i.selection_end()),
            Control::TextArea(t) => (t.selection_start(), t.selection_end()),
        };
        match range {
            (Ok(Some(start)), Ok(Some(end))) => Some((start, end)),
            _ => None,
        }
    }

    fn select(&self, start: u32, end: u32) {
        let _ = match self {
            Control::Input(i) => i.set_selection_range(start, end),
            Control::TextArea(t) => t.set_selection_range(start, end),
        };
    }

    /// Shows `was`'s value (or tick), so that the caret can be put back in it. The widget's
    /// signals already hold it: they started from [`Takeover::typed`].
    fn take(&self, was: &Control) {
        match (self, was) {
            (Control::Input(now), Control::Input(was)) if self.is_checkbox() => {
                now.set_checked(was.checked());
            }
            (Control::Input(now), _) => now.set_value(&was.value()),
            (Control::TextArea(now), _) => now.set_value(&was.value()),
        }
    }
}

/// The named controls under `root`, by name.
fn controls(root: &HtmlElement) -> Vec<(String, Control)> {
    let Ok(list) = root.query_selector_all("input[name], textarea[name]") else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i)?.dyn_into::<Element>().ok())
        .filter_map(|el| Some((el.get_attribute("name")?, Control::of(&el)?)))
        .collect()
}

/// The control named `name` under `root` (names are the widget's own: letters and `_`).
fn named(root: &HtmlElement, name: &str) -> Option<Element> {
    root.query_selector(&named_selector(name)).ok()?
}

fn named_selector(name: &str) -> String {
    format!("[name=\"{name}\"]")
}

/// A selector for `el`'s counterpart in the other form: a control by its name, a button by its
/// test id (`submit`: the markup's and the widget's say the same). Both are the widget's own
/// words: letters, `_` and `-`.
fn counterpart(el: &Element) -> Option<String> {
    if let Some(name) = el.get_attribute("name") {
        return Some(named_selector(&name));
    }
    let id = el.get_attribute("data-testid")?;
    Some(format!("[data-testid=\"{id}\"]"))
}
