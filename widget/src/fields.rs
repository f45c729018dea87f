//! Form controls with their labels and error messages wired for assistive technology: each
//! control carries `aria-invalid` and, while it has an error, `aria-describedby` naming it.

use leadglue_shared::form::{Answer, Answers, Choice, Question, QuestionKind};
use leadglue_shared::markup::Contact;
use leptos::either::EitherOf3;
use leptos::prelude::*;

/// A contact field's labelled single-line input (its name on the wire, label, type and
/// autocomplete from `contact`, as the edge's plain-HTML form has them).
#[component]
pub fn TextField(
    contact: &'static Contact,
    value: RwSignal<String>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    let Contact {
        field,
        label,
        kind,
        autocomplete,
        required,
    } = *contact;
    let kind = kind.unwrap_or("text");
    let input_id = format!("lg-{field}");
    let error_id = format!("{input_id}-error");
    view! {
        <div class="field">
            <label for=input_id.clone()>
                {label}
                {(!required).then(optional)}
            </label>
            <input id=input_id name=field type=kind autocomplete=autocomplete required=required
                data-testid=field
                prop:value=value
                on:input=set_text(value)
                aria-invalid=invalid(error) aria-describedby=described_by(error, error_id.clone())
            />
            {message(error, error_id)}
        </div>
    }
}

/// A contact field's labelled multi-line input.
#[component]
pub fn TextArea(
    contact: &'static Contact,
    value: RwSignal<String>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    let Contact { field, label, .. } = *contact;
    let input_id = format!("lg-{field}");
    let error_id = format!("{input_id}-error");
    view! {
        <div class="field">
            <label for=input_id.clone()>{label}{optional()}</label>
            <textarea id=input_id name=field data-testid=field
                prop:value=value
                on:input=set_text(value)
                aria-invalid=invalid(error) aria-describedby=described_by(error, error_id.clone())
            ></textarea>
            {message(error, error_id)}
        </div>
    }
}

/// The input handler of a text control: one function, so one copy of the listener's code.
fn set_text(value: RwSignal<String>) -> impl FnMut(leptos::ev::Event) + 'static {
    move |ev| value.set(event_target_value(&ev))
}

/// " (optional)" after a label.
pub fn optional() -> impl IntoView {
    view! { " "<span class="opt">"(optional)"</span> }
}

/// `aria-invalid` of a control: whether it has an error. One function for every control, so
/// that they all share one reactive attribute (and its code in the wasm).
pub fn invalid(error: Signal<Option<String>>) -> impl Fn() -> String + Send + Sync + 'static {
    move || error.get().is_some().to_string()
}

/// `aria-describedby` of a control: its error message's id, while it has an error.
pub fn described_by(
    error: Signal<Option<String>>,
    error_id: String,
) -> impl Fn() -> Option<String> + Send + Sync + 'static {
    move || error.get().map(|_| error_id.clone())
}

/// A control's error message, under it.
pub fn message(error: Signal<Option<String>>, error_id: String) -> impl IntoView {
    view! { <p class="error" id=error_id>{error}</p> }
}

/// One qualification question: radio buttons, checkboxes, a text or a number input. Answers
/// live in `answers`, keyed by question id, exactly as they are sent.
#[component]
pub fn QuestionField(
    question: Question,
    answers: RwSignal<Answers>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    let optional = (!question.required).then(optional);
    let ids = Ids::new(&question.id, error);
    // An enum of the kinds rather than `into_any`: the type-erased view costs more wasm.
    match question.kind {
        QuestionKind::SingleChoice { options } => EitherOf3::A(choice_group(
            ids,
            question.label,
            optional,
            options,
            false,
            answers,
        )),
        QuestionKind::MultipleChoice { options } => EitherOf3::A(choice_group(
            ids,
            question.label,
            optional,
            options,
            true,
            answers,
        )),
        QuestionKind::ShortText { .. } => {
            let (qid, set_id) = (ids.question.clone(), ids.question.clone());
            let value = move || match answers.with(|a| a.get(&qid).cloned()) {
                Some(Answer::Text(text)) => text,
                _ => String::new(),
            };
            EitherOf3::B(view! {
                <div class="field">
                    <label for=ids.input()>{question.label}{optional}</label>
                    <input type="text" id=ids.input() data-testid=ids.testid(None)
                        prop:value=value
                        on:input=move |ev| {
                            let text = event_target_value(&ev);
                            answers.update(|a| { a.insert(set_id.clone(), Answer::Text(text)); });
                        }
                        aria-invalid=ids.invalid() aria-describedby=ids.described_by()
                    />
                    {ids.message()}
                </div>
            })
        }
        QuestionKind::Number { min, max, .. } => {
            let set_id = ids.question.clone();
            EitherOf3::C(view! {
                <div class="field">
                    <label for=ids.input()>{question.label}{optional}</label>
                    <input type="number" inputmode="decimal" id=ids.input()
                        data-testid=ids.testid(None) min=min max=max
                        on:input=move |ev| {
                            let number = parse_number(&event_target_value(&ev));
                            answers.update(|a| match number {
                                Some(n) => { a.insert(set_id.clone(), Answer::Number(n)); }
                                None => { a.remove(&set_id); }
                            });
                        }
                        aria-invalid=ids.invalid() aria-describedby=ids.described_by()
                    />
                    {ids.message()}
                </div>
            })
        }
    }
}

/// The number in a number input's value (the browser keeps it a valid number or empty).
/// JavaScript parses it: Rust's float parsing would add its tables to the wasm.
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let n = text.parse::<js_sys::Number>().ok()?.value_of();
    (!text.is_empty() && !n.is_nan()).then_some(n)
}

/// Radio buttons (one answer) or checkboxes (several) in a fieldset.
fn choice_group(
    ids: Ids,
    label: String,
    optional: Option<impl IntoView + 'static>,
    options: Vec<Choice>,
    many: bool,
    answers: RwSignal<Answers>,
) -> impl IntoView {
    let kind = if many { "checkbox" } else { "radio" };
    let inputs = options
        .into_iter()
        .map(|choice| {
            let (qid, set_id) = (ids.question.clone(), ids.question.clone());
            let (value, set_value) = (choice.value.clone(), choice.value.clone());
            let checked = move || {
                answers.with(|a| match a.get(&qid) {
                    Some(Answer::Text(v)) => *v == value,
                    Some(Answer::Many(vs)) => vs.contains(&value),
                    _ => false,
                })
            };
            let on_change = move |ev| {
                let on = event_target_checked(&ev);
                answers.update(|a| toggle(a, &set_id, &set_value, on, many));
            };
            view! {
                <label class="choice">
                    <input type=kind name=ids.input() value=choice.value.clone()
                        data-testid=ids.testid(Some(&choice.value))
                        prop:checked=checked on:change=on_change
                        aria-invalid=ids.invalid() aria-describedby=ids.described_by()
                    />
                    <span>{choice.label}</span>
                </label>
            }
        })
        .collect_view();
    view! {
        <fieldset class="field" data-testid=ids.testid(None)>
            <legend>{label}{optional}</legend>
            {inputs}
            {ids.message()}
        </fieldset>
    }
}

/// Records a (de)selected choice: one value for a single choice, a set for a multiple one.
fn toggle(answers: &mut Answers, question: &str, value: &str, on: bool, many: bool) {
    if !many {
        if on {
            answers.insert(question.to_owned(), Answer::Text(value.to_owned()));
        }
        return;
    }
    let entry = answers
        .entry(question.to_owned())
        .or_insert_with(|| Answer::Many(Vec::new()));
    if !matches!(entry, Answer::Many(_)) {
        *entry = Answer::Many(Vec::new());
    }
    if let Answer::Many(values) = entry {
        values.retain(|v| v != value);
        if on {
            values.push(value.to_owned());
        }
    }
}

/// The ids and ARIA wiring of one question's controls.
#[derive(Clone)]
struct Ids {
    question: String,
    error: Signal<Option<String>>,
}

impl Ids {
    fn new(question: &str, error: Signal<Option<String>>) -> Self {
        Self {
            question: question.to_owned(),
            error,
        }
    }
    fn input(&self) -> String {
        format!("lg-q-{}", self.question)
    }
    fn testid(&self, choice: Option<&str>) -> String {
        match choice {
            Some(value) => format!("q-{}-{value}", self.question),
            None => format!("q-{}", self.question),
        }
    }
    fn error_id(&self) -> String {
        format!("lg-q-{}-error", self.question)
    }
    fn invalid(&self) -> impl Fn() -> String + use<> {
        invalid(self.error)
    }
    fn described_by(&self) -> impl Fn() -> Option<String> + use<> {
        described_by(self.error, self.error_id())
    }
    fn message(&self) -> impl IntoView + use<> {
        message(self.error, self.error_id())
    }
}
