//! Forms: the qualification questions a marketer asks, how answers score, and the built-in
//! default form every site has without configuring anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// The form id every site has: the built-in [`default_form`] until the site defines its own.
pub const DEFAULT_FORM_ID: &str = "default";
/// The version of the built-in default form. Stored versions start at 1.
pub const DEFAULT_FORM_VERSION: u32 = 0;

/// A form as a marketer defines it (`PUT /v1/admin/sites/{site}/forms/{form}`). The edge
/// numbers each stored definition; leads record the version their visitor answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDefinition {
    /// Shown above the form.
    pub title: String,
    /// Shown under the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intro: Option<String>,
    /// Asked in order on the qualification step.
    pub questions: Vec<Question>,
    /// The score from which a lead is `hot`, and from which it is `warm`.
    pub thresholds: Thresholds,
    /// The id of the single-choice question that asks how the visitor wants to be followed up;
    /// its answers use the values in [`FollowUp`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_question: Option<String>,
    /// What the visitor asked for (a guide, a price list): linked in the immediate reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
}

/// A link sent with the immediate reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub label: String,
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub hot: i32,
    pub warm: i32,
}

/// On the wire a question is one flat object (`{"id", "label", "type": "single_choice",
/// "options": [...]}`); it is read through [`RawQuestion`] so that unknown or misplaced keys
/// are refused by name rather than ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawQuestion", into = "RawQuestion")]
pub struct Question {
    /// Stable id answers are keyed by (`timeline`, `company_size`, …).
    pub id: String,
    pub label: String,
    pub kind: QuestionKind,
    pub required: bool,
    /// Ask this question only when another one has a given answer.
    pub show_if: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionKind {
    SingleChoice {
        options: Vec<Choice>,
    },
    MultipleChoice {
        options: Vec<Choice>,
    },
    ShortText {
        /// Points for any non-blank answer.
        points: i32,
    },
    Number {
        min: Option<i64>,
        max: Option<i64>,
        /// Points by range; the first band containing the answer counts.
        bands: Vec<Band>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum QuestionType {
    SingleChoice,
    MultipleChoice,
    ShortText,
    Number,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuestion {
    pub(crate) id: String,
    pub(crate) label: String,
    #[serde(rename = "type")]
    pub(crate) kind: QuestionType,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) show_if: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) options: Option<Vec<Choice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) points: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bands: Option<Vec<Band>>,
}

impl TryFrom<RawQuestion> for Question {
    type Error = String;

    fn try_from(raw: RawQuestion) -> Result<Self, String> {
        let misplaced = |name: &str, present: bool| {
            if present {
                Err(format!(
                    "`{name}` does not apply to a question of type {:?}.",
                    raw.kind
                ))
            } else {
                Ok(())
            }
        };
        let kind = match raw.kind {
            QuestionType::SingleChoice | QuestionType::MultipleChoice => {
                misplaced("points", raw.points.is_some())?;
                misplaced("min", raw.min.is_some())?;
                misplaced("max", raw.max.is_some())?;
                misplaced("bands", raw.bands.is_some())?;
                let options = raw
                    .options
                    .clone()
                    .ok_or("A choice question needs `options`.")?;
                if raw.kind == QuestionType::SingleChoice {
                    QuestionKind::SingleChoice { options }
                } else {
                    QuestionKind::MultipleChoice { options }
                }
            }
            QuestionType::ShortText => {
                misplaced("options", raw.options.is_some())?;
                misplaced("min", raw.min.is_some())?;
                misplaced("max", raw.max.is_some())?;
                misplaced("bands", raw.bands.is_some())?;
                QuestionKind::ShortText {
                    points: raw.points.unwrap_or_default(),
                }
            }
            QuestionType::Number => {
                misplaced("options", raw.options.is_some())?;
                misplaced("points", raw.points.is_some())?;
                QuestionKind::Number {
                    min: raw.min,
                    max: raw.max,
                    bands: raw.bands.clone().unwrap_or_default(),
                }
            }
        };
        Ok(Question {
            id: raw.id,
            label: raw.label,
            kind,
            required: raw.required,
            show_if: raw.show_if,
        })
    }
}

impl From<Question> for RawQuestion {
    fn from(q: Question) -> Self {
        let mut raw = RawQuestion {
            id: q.id,
            label: q.label,
            kind: QuestionType::ShortText,
            required: q.required,
            show_if: q.show_if,
            options: None,
            points: None,
            min: None,
            max: None,
            bands: None,
        };
        match q.kind {
            QuestionKind::SingleChoice { options } => {
                raw.kind = QuestionType::SingleChoice;
                raw.options = Some(options);
            }
            QuestionKind::MultipleChoice { options } => {
                raw.kind = QuestionType::MultipleChoice;
                raw.options = Some(options);
            }
            QuestionKind::ShortText { points } => raw.points = Some(points),
            QuestionKind::Number { min, max, bands } => {
                raw.kind = QuestionType::Number;
                (raw.min, raw.max, raw.bands) = (min, max, Some(bands));
            }
        }
        raw
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub value: String,
    pub label: String,
    #[serde(default)]
    pub points: i32,
}

/// `from ≤ answer ≤ to` (either end open when absent) scores `points`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    pub points: i32,
}

/// Show a question when `question`'s answer is (or, for multiple choice, includes) `equals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub question: String,
    pub equals: String,
}

/// One answer on the wire: a choice value or text, several choice values, or a number.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Text(String),
    Many(Vec<String>),
    Number(f64),
}

/// Read by the JSON value's own kind, rather than as serde's untagged enum: that buffers the
/// value and then tries each variant, which costs code, and its only error ("did not match
/// any variant") says neither where nor what was wrong.
impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Kind;
        impl<'de> serde::de::Visitor<'de> for Kind {
            type Value = Answer;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("text, a list of texts or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Answer, E> {
                Ok(Answer::Text(v.to_owned()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Answer, E> {
                Ok(Answer::Number(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Answer, E> {
                Ok(Answer::Number(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Answer, E> {
                Ok(Answer::Number(v as f64))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Answer, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element()? {
                    values.push(value);
                }
                Ok(Answer::Many(values))
            }
        }
        de.deserialize_any(Kind)
    }
}

pub type Answers = BTreeMap<String, Answer>;

/// How the visitor wants to hear from us: the values of the follow-up question's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    SendInformation,
    CallMe,
    BookDemo,
}

impl FollowUp {
    pub fn from_value(value: &str) -> Option<Self> {
        match value {
            "send_information" => Some(Self::SendInformation),
            "call_me" => Some(Self::CallMe),
            "book_demo" => Some(Self::BookDemo),
            _ => None,
        }
    }
}

/// A stored form: its definition and the version number the edge gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedForm {
    pub id: String,
    pub version: u32,
    #[serde(flatten)]
    pub definition: FormDefinition,
}

impl FormDefinition {
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// Whether `question` is asked, given the answers so far.
    pub fn is_shown(&self, question: &Question, answers: &Answers) -> bool {
        let Some(cond) = &question.show_if else {
            return true;
        };
        // A condition on a hidden question is false: hiding cascades.
        let parent_shown = self
            .question(&cond.question)
            .is_some_and(|parent| self.is_shown(parent, answers));
        parent_shown
            && match answers.get(&cond.question) {
                Some(Answer::Text(value)) => *value == cond.equals,
                Some(Answer::Many(values)) => values.contains(&cond.equals),
                Some(Answer::Number(_)) | None => false,
            }
    }

    /// The visitor's follow-up preference, when the form asks for one and it was answered.
    pub fn follow_up(&self, answers: &Answers) -> Option<FollowUp> {
        let id = self.follow_up_question.as_deref()?;
        match answers.get(id)? {
            Answer::Text(value) => FollowUp::from_value(value),
            _ => None,
        }
    }

    /// Checks answers against the questions: unknown ids, wrong kinds, values not offered,
    /// required questions left out. Answers to questions not shown are dropped, not refused
    /// (the visitor may have answered, then changed the answer that showed them).
    /// Returns the answers that count.
    pub fn check_answers(&self, answers: &Answers) -> Result<Answers, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut kept = Answers::new();
        for id in answers.keys() {
            if self.question(id).is_none() {
                errors.push(FieldError::new(
                    format!("answers.{id}"),
                    "This question is not on the form; please reload the page.",
                ));
            }
        }
        for q in &self.questions {
            if !self.is_shown(q, answers) {
                continue;
            }
            let field = format!("answers.{}", q.id);
            let answer = answers.get(&q.id).filter(|a| !is_blank(a));
            let Some(answer) = answer else {
                if q.required {
                    errors.push(FieldError::new(field, "Please answer this question."));
                }
                continue;
            };
            match check_answer(&q.kind, answer) {
                Ok(answer) => {
                    kept.insert(q.id.clone(), answer);
                }
                Err(message) => errors.push(FieldError::new(field, message)),
            }
        }
        if errors.is_empty() {
            Ok(kept)
        } else {
            Err(errors)
        }
    }

    /// Checks a definition: ids unique and well-formed, choices present and distinct,
    /// conditions pointing at earlier choice questions and offered values, thresholds ordered,
    /// the follow-up question a single choice whose values are follow-up preferences.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field: String, message: &str| errors.push(FieldError::new(field, message));
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            err("title".into(), "Must be between 1 and 200 characters.");
        }
        if self.questions.len() > 30 {
            err("questions".into(), "A form may ask at most 30 questions.");
        }
        if self.thresholds.warm > self.thresholds.hot {
            err(
                "thresholds.warm".into(),
                "Must not be above the hot threshold.",
            );
        }
        for (i, q) in self.questions.iter().enumerate() {
            let at = |part: &str| format!("questions[{i}].{part}");
            let id_ok = (1..=40).contains(&q.id.len())
                && q.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !id_ok {
                err(at("id"), "Must be 1 to 40 of a-z, 0-9 and _.");
            } else if self.questions[..i].iter().any(|p| p.id == q.id) {
                err(at("id"), "Another question already has this id.");
            }
            if q.label.trim().is_empty() || q.label.chars().count() > 200 {
                err(at("label"), "Must be between 1 and 200 characters.");
            }
            match &q.kind {
                QuestionKind::SingleChoice { options }
                | QuestionKind::MultipleChoice { options } => {
                    if options.is_empty() || options.len() > 20 {
                        err(at("options"), "Must offer between 1 and 20 choices.");
                    }
                    for (j, o) in options.iter().enumerate() {
                        if o.value.is_empty() || o.value.len() > 40 || o.label.trim().is_empty() {
                            err(
                                format!("questions[{i}].options[{j}]"),
                                "Needs a value (1 to 40 characters) and a label.",
                            );
                        } else if options[..j].iter().any(|p| p.value == o.value) {
                            err(
                                format!("questions[{i}].options[{j}].value"),
                                "Another choice already has this value.",
                            );
                        }
                    }
                }
                QuestionKind::Number { min, max, .. } => {
                    if let (Some(min), Some(max)) = (min, max)
                        && min > max
                    {
                        err(at("min"), "Must not be above max.");
                    }
                }
                QuestionKind::ShortText { .. } => {}
            }
            if let Some(cond) = &q.show_if {
                let parent = self.questions[..i].iter().find(|p| p.id == cond.question);
                let offered = parent.and_then(|p| match &p.kind {
                    QuestionKind::SingleChoice { options }
                    | QuestionKind::MultipleChoice { options } => {
                        Some(options.iter().any(|o| o.value == cond.equals))
                    }
                    _ => None,
                });
                if offered != Some(true) {
                    err(
                        at("show_if"),
                        "Must name an earlier choice question and one of its values.",
                    );
                }
            }
        }
        if let Some(resource) = &self.resource {
            let url_ok = resource.url.len() <= 2048
                && url::Url::parse(&resource.url)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !url_ok {
                err(
                    "resource.url".into(),
                    "Must be an http(s) address of at most 2048 characters.",
                );
            }
            if resource.label.trim().is_empty() || resource.label.chars().count() > 100 {
                err(
                    "resource.label".into(),
                    "Must be between 1 and 100 characters.",
                );
            }
        }
        if let Some(id) = &self.follow_up_question {
            let ok = self.question(id).is_some_and(|q| match &q.kind {
                QuestionKind::SingleChoice { options } => options
                    .iter()
                    .all(|o| FollowUp::from_value(&o.value).is_some()),
                _ => false,
            });
            if !ok {
                err(
                    "follow_up_question".into(),
                    "Must name a single-choice question whose values are send_information, call_me or book_demo.",
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn is_blank(answer: &Answer) -> bool {
    match answer {
        Answer::Text(t) => t.trim().is_empty(),
        Answer::Many(v) => v.is_empty(),
        Answer::Number(_) => false,
    }
}

/// Longest short-text answer, in characters.
pub const MAX_TEXT_ANSWER: usize = 500;

fn check_answer(kind: &QuestionKind, answer: &Answer) -> Result<Answer, &'static str> {
    const NOT_OFFERED: &str = "Please choose one of the options offered.";
    match (kind, answer) {
        (QuestionKind::SingleChoice { options }, Answer::Text(value)) => options
            .iter()
            .any(|o| o.value == *value)
            .then(|| answer.clone())
            .ok_or(NOT_OFFERED),
        (QuestionKind::MultipleChoice { options }, Answer::Many(values)) => {
            let all_offered = values.iter().all(|v| options.iter().any(|o| o.value == *v));
            if !all_offered {
                return Err(NOT_OFFERED);
            }
            // In the form's order, once each.
            let kept: Vec<String> = options
                .iter()
                .filter(|o| values.contains(&o.value))
                .map(|o| o.value.clone())
                .collect();
            Ok(Answer::Many(kept))
        }
        (QuestionKind::ShortText { .. }, Answer::Text(text)) => {
            let text = text.trim();
            if text.chars().count() > MAX_TEXT_ANSWER {
                Err("Please keep this answer under 500 characters.")
            } else if text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                Err("This answer contains characters we cannot accept.")
            } else {
                Ok(Answer::Text(text.to_owned()))
            }
        }
        (QuestionKind::Number { min, max, .. }, Answer::Number(n)) => {
            let in_range = n.is_finite()
                && min.is_none_or(|min| *n >= min as f64)
                && max.is_none_or(|max| *n <= max as f64);
            if in_range {
                Ok(answer.clone())
            } else {
                Err("Please enter a number in the range asked for.")
            }
        }
        _ => Err("This answer is not of the kind the question asks for."),
    }
}

/// The form every site has without configuring anything: when they want to buy, their part in
/// the decision, company size, what interests them, and how they want to hear from us.
///
/// Points: buying now weighs most; a decision maker at a larger company who wants a call or a
/// demo is hot (≥ 60), someone buying within a year or asking for information is warm (≥ 30),
/// just browsing stays cold.
pub fn default_form() -> FormDefinition {
    let choice = |value: &str, label: &str, points: i32| Choice {
        value: value.into(),
        label: label.into(),
        points,
    };
    let single = |id: &str, label: &str, options: Vec<Choice>| Question {
        id: id.into(),
        label: label.into(),
        kind: QuestionKind::SingleChoice { options },
        required: true,
        show_if: None,
    };
    FormDefinition {
        title: "Ask us anything".into(),
        intro: Some("Tell us what you need and we'll get back to you.".into()),
        questions: vec![
            single(
                "timeline",
                "When are you looking to buy?",
                vec![
                    choice("now", "Ready to buy now", 40),
                    choice("3_months", "Within 3 months", 25),
                    choice("1_year", "Within a year", 10),
                    choice("browsing", "Just browsing", 0),
                ],
            ),
            single(
                "role",
                "What is your role in the decision?",
                vec![
                    choice("decision_maker", "I make the decision", 20),
                    choice("influencer", "I recommend or influence it", 10),
                    choice("researcher", "I'm gathering information", 0),
                ],
            ),
            single(
                "company_size",
                "How many people work at your company?",
                vec![
                    choice("1_10", "1–10", 0),
                    choice("11_50", "11–50", 5),
                    choice("51_200", "51–200", 10),
                    choice("201_1000", "201–1,000", 15),
                    choice("1000_plus", "More than 1,000", 15),
                ],
            ),
            Question {
                id: "interest".into(),
                label: "What are you interested in?".into(),
                kind: QuestionKind::MultipleChoice {
                    options: vec![
                        choice("pricing", "Pricing", 5),
                        choice("product", "How the product works", 0),
                        choice("integrations", "Integrations", 0),
                        choice("support", "Support and onboarding", 0),
                    ],
                },
                required: false,
                show_if: None,
            },
            single(
                "follow_up",
                "How would you like us to follow up?",
                vec![
                    choice("send_information", "Send me information", 0),
                    choice("call_me", "Call me", 20),
                    choice("book_demo", "Book a demo", 20),
                ],
            ),
        ],
        thresholds: Thresholds { hot: 60, warm: 30 },
        follow_up_question: Some("follow_up".into()),
        resource: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn answers(pairs: &[(&str, Answer)]) -> Answers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }
    fn text(v: &str) -> Answer {
        Answer::Text(v.into())
    }

    /// A form with a conditional chain: `budget` shows when timeline = now, `approver` when
    /// budget = yes.
    fn conditional_form() -> FormDefinition {
        let mut form = default_form();
        let q = |id: &str, parent: &str, equals: &str| Question {
            id: id.into(),
            label: id.into(),
            kind: QuestionKind::SingleChoice {
                options: vec![
                    Choice {
                        value: "yes".into(),
                        label: "Yes".into(),
                        points: 10,
                    },
                    Choice {
                        value: "no".into(),
                        label: "No".into(),
                        points: 0,
                    },
                ],
            },
            required: true,
            show_if: Some(Condition {
                question: parent.into(),
                equals: equals.into(),
            }),
        };
        form.questions.insert(1, q("budget", "timeline", "now"));
        form.questions.insert(2, q("approver", "budget", "yes"));
        form
    }

    #[test]
    fn the_default_form_is_valid() {
        assert_eq!(default_form().validate(), Ok(()));
    }

    #[test]
    fn definitions_round_trip_through_json() {
        let form = conditional_form();
        let json = serde_json::to_string(&form).unwrap();
        assert_eq!(
            crate::json::parse::<FormDefinition>(json.as_bytes()),
            Ok(form)
        );
    }

    #[test]
    fn conditions_show_and_hide_questions_in_cascade() {
        let form = conditional_form();
        let budget = form.question("budget").unwrap();
        let approver = form.question("approver").unwrap();
        let now = answers(&[("timeline", text("now")), ("budget", text("yes"))]);
        assert!(form.is_shown(budget, &now) && form.is_shown(approver, &now));
        // Changing the timeline hides budget, and with it approver, though budget kept its answer.
        let later = answers(&[("timeline", text("1_year")), ("budget", text("yes"))]);
        assert!(!form.is_shown(budget, &later) && !form.is_shown(approver, &later));
    }

    #[test]
    fn answers_to_hidden_questions_are_dropped_not_refused() {
        let form = conditional_form();
        let given = answers(&[
            ("timeline", text("1_year")),
            ("budget", text("yes")),
            ("role", text("influencer")),
            ("company_size", text("1_10")),
            ("follow_up", text("send_information")),
        ]);
        let kept = form.check_answers(&given).unwrap();
        assert!(!kept.contains_key("budget"));
        assert_eq!(kept.len(), 4);
    }

    #[rstest]
    #[case::unknown_question(("colour", text("red")), "answers.colour")]
    #[case::not_offered(("timeline", text("tomorrow")), "answers.timeline")]
    #[case::wrong_kind(("timeline", Answer::Many(vec!["now".into()])), "answers.timeline")]
    #[case::many_not_offered(("interest", Answer::Many(vec!["pricing".into(), "golf".into()])), "answers.interest")]
    #[case::number_for_choice(("role", Answer::Number(3.0)), "answers.role")]
    fn bad_answers_are_named(#[case] answer: (&str, Answer), #[case] field: &str) {
        let mut given = answers(&[
            ("timeline", text("now")),
            ("role", text("influencer")),
            ("company_size", text("1_10")),
            ("follow_up", text("send_information")),
        ]);
        given.insert(answer.0.into(), answer.1);
        let errors = default_form().check_answers(&given).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, field);
    }

    #[test]
    fn required_questions_must_be_answered_when_shown() {
        let form = conditional_form();
        let given = answers(&[("timeline", text("now"))]);
        let errors = form.check_answers(&given).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "answers.budget",
                "answers.role",
                "answers.company_size",
                "answers.follow_up"
            ]
        );
        assert_eq!(errors[0].message, "Please answer this question.");
    }

    #[test]
    fn multiple_choice_answers_are_kept_once_in_form_order() {
        let mut given = answers(&[
            ("timeline", text("now")),
            ("role", text("influencer")),
            ("company_size", text("1_10")),
            ("follow_up", text("send_information")),
        ]);
        given.insert(
            "interest".into(),
            Answer::Many(vec!["support".into(), "pricing".into(), "support".into()]),
        );
        let kept = default_form().check_answers(&given).unwrap();
        assert_eq!(
            kept["interest"],
            Answer::Many(vec!["pricing".into(), "support".into()])
        );
    }

    #[test]
    fn numbers_respect_their_range() {
        let mut form = default_form();
        form.questions = vec![Question {
            id: "seats".into(),
            label: "Seats".into(),
            kind: QuestionKind::Number {
                min: Some(1),
                max: Some(10_000),
                bands: vec![],
            },
            required: true,
            show_if: None,
        }];
        form.follow_up_question = None;
        assert!(
            form.check_answers(&answers(&[("seats", Answer::Number(40.0))]))
                .is_ok()
        );
        assert!(
            form.check_answers(&answers(&[("seats", Answer::Number(0.0))]))
                .is_err()
        );
        assert!(
            form.check_answers(&answers(&[("seats", Answer::Number(f64::INFINITY))]))
                .is_err()
        );
    }

    #[test]
    fn invalid_definitions_are_refused_field_by_field() {
        let mut form = conditional_form();
        form.title = String::new();
        form.thresholds = Thresholds { hot: 10, warm: 20 };
        form.questions[0].id = "Timeline!".into();
        form.questions[3].id = "role".into(); // duplicate of questions[3]? make it clash with [4]
        form.questions[4].id = "role".into();
        form.questions[2].show_if = Some(Condition {
            question: "budget".into(),
            equals: "maybe".into(),
        });
        form.follow_up_question = Some("role".into());
        let errors = form.validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "title",
                "thresholds.warm",
                "questions[0].id",
                "questions[1].show_if",
                "questions[2].show_if",
                "questions[4].id",
                "follow_up_question",
            ]
        );
    }
}

/// What the widget loads to render a form (`GET /v1/sites/{site}/forms/{form}`): the site's
/// public configuration and the form's current version, in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedConfig {
    pub site: crate::SiteConfig,
    pub form: VersionedForm,
}
