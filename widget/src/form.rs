//! The lead form: contact details and consent, then the form's qualification questions, then
//! a thank-you adapted to the edge's grading.

use leadglue_shared::codec::ToJson;
use leadglue_shared::{
    Answers, Consent, EmbedConfig, FieldError, Grade, LeadCreated, LeadSubmission, grade, spam,
    validate,
};
use leptos::html;
use leptos::prelude::*;
use leptos::tachys::view::{Mountable, Render};
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

use crate::api::{self, SendError};
use crate::attribution;
use crate::fields::{self, QuestionField, TextArea, TextField, described_by, invalid};
use crate::takeover::{Takeover, Typed};
use crate::thanks::ThankYou;
use crate::{outbox, turnstile};

// The form's styles and contact fields: one copy for the widget and the edge's plain-HTML form.
use leadglue_shared::markup::{self, CANNOT_SEND, CSS};

/// Whether `field` is one of step 1's (the contact fields and the consent box). Any other field
/// that is not an answer (a misconfigured embed) is shown as a general error.
fn on_step_1(field: &str) -> bool {
    field == "consent" || markup::CONTACTS.iter().any(|c| c.field == field)
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Editing,
    Sending,
    /// Sent: the thank-you has replaced the form.
    Sent,
    /// Sending failed; the message says why and the visitor may retry.
    Failed(String),
}

/// Said once a submission an earlier page kept has been sent after a fresh challenge.
const EARLIER_SENT: &str = "Your earlier request has been sent.";

/// Loads the site's configuration and form, then shows the flow (or why it cannot).
///
/// What is shown is decided once, when the configuration arrives, and appended with [`show`]
/// rather than switched by a reactive closure: a view behind such a closure also carries the
/// code to rebuild it in place, which the form never needs and which made up a good part of the
/// wasm (issue 7).
#[component]
pub fn LeadForm(
    site_id: String,
    form_id: String,
    api_base: String,
    /// The configuration request, when the loader has already sent it.
    started: Option<js_sys::Promise>,
    /// The loader's plain-HTML form this one replaces once it is shown (or says why it
    /// cannot be).
    takeover: Option<Takeover>,
) -> impl IntoView {
    let render_token = takeover.as_ref().and_then(|t| t.render_token.clone());
    let slot = NodeRef::<html::Div>::new();
    let status = NodeRef::<html::P>::new();
    let owner = Owner::current();
    spawn_local(async move {
        let mut started = started;
        let loaded = loop {
            let loaded = api::embed_config(&api_base, &site_id, &form_id, started.take()).await;
            // Not loaded while the visitor may be typing in the plain-HTML form: it stays, with
            // what they typed, and says why once they send it (as the loader does when the
            // wasm cannot be had). The widget tries again when they do, or when back online.
            match (&loaded, &takeover) {
                (Err(err), Some(takeover)) => {
                    if takeover.held() {
                        takeover.say(&match err {
                            SendError::Refused(problem) => problem.title.clone(),
                            _ => CANNOT_SEND.to_owned(),
                        });
                    }
                    takeover.next_try().await;
                }
                _ => break loaded,
            }
        };
        if let Some(takeover) = &takeover {
            takeover.released().await;
        }
        let (Some(slot), Some(status)) = (slot.get_untracked(), status.get_untracked()) else {
            return;
        };
        match loaded {
            Ok(config) => {
                status.remove();
                let typed = takeover.as_ref().map(Takeover::typed).unwrap_or_default();
                show(owner, &slot, move || {
                    let api_base = StoredValue::new(api_base);
                    view! { <Flow config api_base render_token typed /> }
                });
            }
            Err(err) => {
                let reason = match err {
                    SendError::Refused(problem) => problem.title,
                    _ => "This form cannot be loaded right now. Please try again later.".into(),
                };
                status.set_class_name("alert");
                let _ = status.set_attribute("data-testid", "unavailable");
                status.set_text_content(Some(&reason));
            }
        }
        if let Some(takeover) = takeover {
            takeover.finish();
        }
    });
    view! {
        <style>{CSS}</style>
        <div class="lg" data-testid="leadglue" node_ref=slot>
            <p class="loading" node_ref=status>"Loading…"</p>
        </div>
    }
}

/// Builds a view under `owner` and appends it to `parent` for the life of the page.
fn show<V: IntoView>(owner: Option<Owner>, parent: &web_sys::Element, view: impl FnOnce() -> V) {
    let build = move || {
        let mut state = view().into_view().build();
        state.mount(parent, None);
        // Dropping the state would stop its effects: the view stays as long as the page.
        std::mem::forget(state);
    };
    match owner {
        Some(owner) => owner.with(build),
        None => build(),
    }
}

/// The form itself. `render_token` and `typed`: the token the edge signed with the plain-HTML
/// form, and what the visitor typed there, if the form was first shown that way.
#[component]
fn Flow(
    config: EmbedConfig,
    api_base: StoredValue<String>,
    render_token: Option<String>,
    typed: Typed,
) -> impl IntoView {
    let EmbedConfig { site, form } = config;
    let questions = form.definition.questions.clone();
    let steps = markup::steps(&form);
    let form = StoredValue::new(form);
    let site = StoredValue::new(site);

    let name = RwSignal::new(typed.text("name"));
    let email = RwSignal::new(typed.text("email"));
    let company = RwSignal::new(typed.text("company"));
    let phone = RwSignal::new(typed.text("phone"));
    let message = RwSignal::new(typed.text("message"));
    let consent = RwSignal::new(typed.ticked("consent"));
    // The honeypot: hidden from people (and assistive technology); bots fill it in.
    let website = RwSignal::new(typed.text("website"));
    let answers = RwSignal::new(Answers::new());
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let step = RwSignal::new(1u8);
    let stage = RwSignal::new(Stage::Editing);
    let announcement = RwSignal::new(String::new());
    // One key per submission, reused by every retry of it, so a retry never makes a second lead.
    let key = StoredValue::new(idempotency_key());
    let root = NodeRef::<html::Div>::new();
    let thanks_heading = NodeRef::<html::H2>::new();
    let form_el = NodeRef::<html::Form>::new();
    // Stored, so that the closures that use it stay `Copy`.
    let owner = StoredValue::new(Owner::current());
    // Proof of when the form was shown (the site's minimum fill time): the plain-HTML form's,
    // or fetched now without holding up the form.
    let fetch_token = render_token.is_none();
    let render_token = StoredValue::new(render_token);
    if fetch_token {
        spawn_local(async move {
            let (api, site_id) = (api_base.get_value(), site.with_value(|s| s.id.clone()));
            let token = api::render_token(&api, &site_id).await;
            render_token.update_value(|t| *t = t.take().or(token));
        });
    }
    let turnstile_box = NodeRef::<html::Div>::new();
    let turnstile_token = StoredValue::new(None::<String>);
    let turnstile_id = StoredValue::new(None::<String>);
    // Submissions an earlier page left in the outbox whose Turnstile token expired meanwhile
    // (their keys): each goes again with the next token the challenge gives, before this
    // form's own submission gets one.
    let waiting = RwSignal::new(Vec::<String>::new());
    let resent = RwSignal::new(false);
    let send_waiting = move || {
        let Some(waiting_key) = waiting.with_untracked(|w| w.first().cloned()) else {
            return;
        };
        // Used up by this attempt, whatever its outcome.
        let Some(token) = turnstile_token.try_update_value(Option::take).flatten() else {
            return;
        };
        spawn_local(async move {
            let site_id = site.with_value(|s| s.id.clone());
            let outcome = outbox::send_with_token(&site_id, &waiting_key, &token).await;
            if let Some(id) = turnstile_id.get_value() {
                turnstile::reset(&id);
            }
            match outcome {
                outbox::Resent::Delivered | outbox::Resent::Dropped => {
                    waiting.update(|w| w.retain(|k| *k != waiting_key));
                    if outcome == outbox::Resent::Delivered {
                        resent.set(true);
                        announcement.set(EARLIER_SENT.to_owned());
                    }
                }
                // Kept; the next page (or this one, back online) sends it.
                outbox::Resent::Unreachable => waiting.set(Vec::new()),
                outbox::Resent::NeedsChallenge => {}
            }
        });
    };
    if let Some(config) = site.with_value(|s| s.turnstile.clone()) {
        // Runs once the view below is in the page.
        spawn_local(async move {
            let Some(element) = turnstile_box.get_untracked() else {
                return;
            };
            let solved = move |t| {
                turnstile_token.set_value(t);
                send_waiting();
            };
            turnstile_id.set_value(turnstile::render(&config, &element, solved).await);
        });
    }
    // Whether this page's submission is waiting in the outbox for the network to come back.
    let undelivered = StoredValue::new(false);

    let error_for = move |field: String| {
        Signal::derive(move || {
            errors.with(|all| {
                all.iter()
                    .find(|e| e.field == field)
                    .map(|e| e.message.clone())
            })
        })
    };
    let general_errors = move || {
        errors.with(|all| {
            all.iter()
                .filter(|e| {
                    !on_step_1(&e.field)
                        && !e.field.starts_with("answers.")
                        && e.field != turnstile::FIELD
                })
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
    };

    let submission = move || {
        let site = site.get_value();
        let form = form.get_value();
        LeadSubmission {
            site_id: site.id.clone(),
            email: email.get_untracked(),
            name: name.get_untracked(),
            company: Some(company.get_untracked()),
            phone: Some(phone.get_untracked()),
            message: Some(message.get_untracked()),
            consent: Consent {
                given: consent.get_untracked(),
                text_version: site.consent_version.clone(),
            },
            page_url: window().location().href().ok(),
            idempotency_key: key.get_value(),
            form_id: Some(form.id),
            form_version: Some(form.version),
            answers: answers.get_untracked(),
            first_touch: Some(attribution::first_touch(
                &site.id,
                site.first_touch_attribution,
            )),
            honeypot: Some(website.get_untracked()).filter(|w| !w.is_empty()),
            render_token: render_token.get_value(),
            turnstile_token: turnstile_token.get_value(),
            ignored_score: None,
            ignored_grade: None,
        }
    };

    // Moves focus once the DOM has caught up with the state: to the first invalid control, or
    // to the current step's heading.
    let focus = move |selector: &'static str| {
        request_animation_frame(move || {
            let target = root
                .get()
                .and_then(|r| r.query_selector(selector).ok().flatten())
                .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok());
            if let Some(el) = target {
                let _ = el.focus();
            }
        });
    };
    let show_errors = move |list: Vec<FieldError>| {
        let on_step_1 = list
            .iter()
            .any(|e| !e.field.starts_with("answers.") && e.field != turnstile::FIELD);
        step.set(if on_step_1 { 1 } else { steps });
        announcement.set(match list.len() {
            1 => "One field needs attention.".to_owned(),
            n => format!("{n} fields need attention."),
        });
        errors.set(list);
        focus("[aria-invalid=true]");
    };

    let next = move || {
        let step_1_errors: Vec<FieldError> =
            match validate(&submission(), &form.get_value().definition) {
                Ok(_) => Vec::new(),
                Err(list) => list
                    .into_iter()
                    .filter(|e| !e.field.starts_with("answers."))
                    .collect(),
            };
        if step_1_errors.is_empty() {
            errors.set(Vec::new());
            step.set(2);
            announcement.set("Step 2 of 2: a few quick questions.".to_owned());
            focus("h2");
        } else {
            show_errors(step_1_errors);
        }
    };
    let back = move || {
        step.set(1);
        announcement.set(format!("Step 1 of {steps}: your details."));
        focus("h2");
    };
    // The thank-you takes the form's place (see `show` for why not reactively).
    let thank = move |created: LeadCreated| {
        stage.set(Stage::Sent);
        if let (Some(root), Some(form)) = (root.get_untracked(), form_el.get_untracked()) {
            form.remove();
            show(owner.get_value(), &root, move || {
                view! {
                    <ThankYou site=site.get_value()
                        first_name=name.get_untracked().split_whitespace().next().unwrap_or_default().to_owned()
                        email=email.get_untracked().trim().to_owned()
                        next_step=created.next_step heading=thanks_heading />
                }
            });
        }
        announcement.set("Thank you! Your request has been sent.".to_owned());
        request_animation_frame(move || {
            if let Some(h) = thanks_heading.get() {
                let _ = h.focus();
            }
        });
    };
    let send = move || {
        if stage.get_untracked() == Stage::Sending {
            return;
        }
        let mut lead = match validate(&submission(), &form.get_value().definition) {
            Ok(lead) => lead.get().clone(),
            Err(list) => return show_errors(list),
        };
        errors.set(Vec::new());
        stage.set(Stage::Sending);
        announcement.set("Sending your request…".to_owned());
        spawn_local(async move {
            let api = api_base.get_value();
            if !spam::still_good(lead.render_token.as_deref(), js_sys::Date::now() as i64) {
                // Fetching it when the form was shown failed (or the page stood open for a
                // week): once more, or the edge keeps the lead as spam.
                let min_fill = site.with_value(|s| s.min_fill_seconds);
                lead.render_token = api::late_render_token(&api, &lead.site_id, min_fill).await;
                render_token.set_value(lead.render_token.clone());
            }
            let (site_id, key, body) = (&lead.site_id, &lead.idempotency_key, lead.to_json());
            // Kept on this device until the edge has it, but only with the visitor's consent
            // (which validation requires: checked here all the same).
            if lead.consent.given {
                outbox::put(site_id, key, &api, &body);
            }
            let answer = api::deliver(&api, key, &body).await;
            undelivered.set_value(matches!(answer, Err(SendError::Unreachable(_))));
            if !undelivered.get_value() {
                outbox::remove(site_id, key);
            }
            match answer {
                Ok(created) => thank(created),
                Err(SendError::Invalid(problem)) => {
                    // A refused Turnstile token is used up: the visitor solves a fresh challenge.
                    if problem.errors.iter().any(|e| e.field == turnstile::FIELD) {
                        turnstile_token.set_value(None);
                        if let Some(id) = turnstile_id.get_value() {
                            turnstile::reset(&id);
                        }
                    }
                    stage.set(Stage::Editing);
                    show_errors(problem.errors);
                }
                Err(SendError::Refused(problem)) => {
                    announcement.set(problem.title.clone());
                    stage.set(Stage::Failed(problem.title));
                }
                Err(SendError::Unreachable(_)) => {
                    let text = if api::online() {
                        "We could not send your request. Please check your connection and try \
                         again."
                    } else {
                        "You're offline. We'll send your request as soon as you're back online."
                    };
                    announcement.set(text.to_owned());
                    stage.set(Stage::Failed(text.to_owned()));
                }
            }
        });
    };
    // Undelivered submissions: this page's goes again as soon as the network is back; those
    // that earlier pages left in the outbox, now and then too.
    let flush = move || {
        spawn_local(async move {
            let (site_id, turnstile) = site.with_value(|s| (s.id.clone(), s.turnstile.is_some()));
            let min_fill = site.with_value(|s| s.min_fill_seconds);
            let needs_challenge = outbox::flush(site_id, key.get_value(), min_fill).await;
            if turnstile && !needs_challenge.is_empty() {
                waiting.set(needs_challenge);
                // The challenge may have given a token already.
                send_waiting();
            }
        })
    };
    flush();
    let on_online = Closure::<dyn Fn()>::new(move || {
        if undelivered.get_value() && matches!(stage.get_untracked(), Stage::Failed(_)) {
            send();
        }
        flush();
    });
    let _ = window().add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
    // The form listens as long as the page lives.
    on_online.forget();
    let on_last_step = move || step.get() == steps;
    // `hidden` of what belongs to step `n`: one closure type for all, so one copy of its code.
    let hidden_unless = move |n: u8| move || step.get() != n;
    let has_back = move || step.get() > 1;
    let busy = move || stage.get() == Stage::Sending;
    // The adaptive flow: a visitor whose answers already make them hot sees the phone number
    // before sending.
    let hot_now = Memo::new(move |_| {
        form.with_value(|f| answers.with(|a| grade(&f.definition, a))) == Grade::Hot
    });

    let step_1 = move || {
        let (definition, site) = (form.get_value().definition, site.get_value());
        let consent_error = error_for("consent".into());
        view! {
            <h2 tabindex="-1">{definition.title}</h2>
            {definition.intro.map(|intro| view! { <p>{intro}</p> })}
            <TextField contact=&markup::NAME value=name error=error_for("name".into()) />
            <TextField contact=&markup::EMAIL value=email error=error_for("email".into()) />
            <TextField contact=&markup::COMPANY value=company error=error_for("company".into()) />
            <TextField contact=&markup::PHONE value=phone error=error_for("phone".into()) />
            <TextArea contact=&markup::MESSAGE value=message error=error_for("message".into()) />
            <div class="field">
                <label class="consent">
                    <input type="checkbox" id="lg-consent" name="consent" data-testid="consent"
                        required
                        prop:checked=consent
                        on:change=move |ev| consent.set(event_target_checked(&ev))
                        aria-invalid=invalid(consent_error)
                        aria-describedby=described_by(consent_error, "lg-consent-error".into())
                    />
                    <span data-testid="consent-text">{site.consent_text}</span>
                </label>
                {fields::message(consent_error, "lg-consent-error".into())}
            </div>
            <div class="hp" aria-hidden="true">
                <label>"Website"
                    <input type="text" name="website" tabindex="-1" autocomplete="off"
                        prop:value=website
                        on:input=move |ev| website.set(event_target_value(&ev)) />
                </label>
            </div>
        }
    };
    let step_2 = move || {
        let items = questions
            .iter()
            .cloned()
            .map(|q| {
                let shown = {
                    let q = q.clone();
                    Memo::new(move |_| {
                        form.with_value(|f| answers.with(|a| f.definition.is_shown(&q, a)))
                    })
                };
                let error = error_for(format!("answers.{}", q.id));
                let slot = present_while(shown);
                view! { <div class="slot" node_ref=slot><QuestionField question=q answers error /></div> }
            })
            .collect_view();
        view! {
            <h2 tabindex="-1">"A few quick questions"</h2>
            <p>"So we can send you what's useful, and nothing that isn't."</p>
            {items}
            {site.get_value().phone.map(|phone| {
                let href = format!("tel:{}", phone.replace([' ', '(', ')', '-', '.'], ""));
                view! {
                    <div class="slot" node_ref=present_while(hot_now)>
                        <p class="hint" data-testid="call-hint">
                            "Ready to talk now? Call us at "<a href=href>{phone}</a>", or send the form."
                        </p>
                    </div>
                }
            })}
        }
    };

    // A failure swaps the buttons for the alert with its retry button; sending and failing
    // leave the inputs as they are (state and focus); success replaces the whole form with the
    // thank-you (in `send`).
    let failed = Memo::new(move |_| matches!(stage.get(), Stage::Failed(_)));
    let form_view = move || {
        view! {
            <form novalidate node_ref=form_el on:submit=move |ev| {
                ev.prevent_default();
                if on_last_step() { send() } else { next() }
            }>
                {(steps > 1).then(|| view! {
                    <p class="progress" data-testid="progress">
                        {move || format!("Step {} of {steps}", step.get())}
                    </p>
                })}
                <div hidden=hidden_unless(1)>{step_1()}</div>
                {(steps > 1).then(|| view! { <div hidden=hidden_unless(2)>{step_2()}</div> })}
                {site.with_value(|s| s.turnstile.is_some()).then(|| {
                    let error = error_for(turnstile::FIELD.into());
                    let none_waiting = move || waiting.with(Vec::is_empty);
                    view! {
                        <div class="field" hidden=move || step.get() != steps && none_waiting()>
                            <p class="hint" data-testid="outbox-waiting" hidden=none_waiting>
                                "A request you sent earlier has not reached us yet. Complete the \
                                 check below to send it."
                            </p>
                            <div data-testid="turnstile" node_ref=turnstile_box></div>
                            {fields::message(error, "lg-turnstile-error".into())}
                        </div>
                    }
                })}
                <p class="hint" data-testid="outbox-sent" hidden=move || !resent.get()>{EARLIER_SENT}</p>
                <p class="error" data-testid="general-error">{general_errors}</p>
                <div class="slot" node_ref=present_while(failed)>
                    <div class="alert" data-testid="send-error">
                        {move || match stage.get() {
                            Stage::Failed(reason) => reason,
                            _ => String::new(),
                        }}
                        <button type="submit" data-testid="retry">"Try again"</button>
                    </div>
                </div>
                <div class="slot" node_ref=present_while(Memo::new(move |_| !failed.get()))>
                    <div class="actions">
                        <div class="slot" node_ref=present_while(Memo::new(move |_| has_back()))>
                            <button type="button" class="secondary" data-testid="back"
                                on:click=move |_| back()>"Back"</button>
                        </div>
                        <button type="submit" data-testid="submit" aria-disabled=move || busy().to_string()>
                            {move || match (busy(), on_last_step()) {
                                (true, _) => "Sending…",
                                (false, true) => "Send",
                                (false, false) => "Next",
                            }}
                        </button>
                    </div>
                </div>
            </form>
        }
    };

    view! {
        <div node_ref=root>
            <p class="sr-only" role="status" aria-live="polite" data-testid="announcer">
                {move || announcement.get()}
            </p>
            {form_view()}
        </div>
    }
}

/// A `<div class="slot">` whose content is in the page only while `shown` is true: built once,
/// taken out while `shown` is false and put back when it is true again, keeping its state
/// (focus, typed text). The slot itself makes no box (`display: contents`), so the layout is
/// as if its content stood there alone. Building it again behind a reactive closure would also bring the code to rebuild it
/// in place: ~3.5 KB of brotli-compressed wasm for the questions alone (issue 7).
fn present_while(shown: Memo<bool>) -> NodeRef<html::Div> {
    let slot = NodeRef::<html::Div>::new();
    Effect::new(move |taken_out: Option<Option<web_sys::Element>>| {
        let shown = shown.get();
        let taken_out = taken_out.flatten();
        let slot = slot.get_untracked()?;
        match (shown, taken_out) {
            (true, Some(content)) => {
                let _ = slot.append_child(&content);
                None
            }
            (false, None) => {
                let content = slot.first_element_child()?;
                content.remove();
                Some(content)
            }
            (_, taken_out) => taken_out,
        }
    });
    slot
}

/// 128 random bits as hex. `crypto.getRandomValues` works on plain-http pages too, where
/// `crypto.randomUUID` does not exist.
fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    let filled = window()
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).map(drop));
    if filled.is_err() {
        // Never reached in a browser that runs wasm; still, two visitors must not share a key.
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
