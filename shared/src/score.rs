//! Lead scoring: one pure function from a form and its answers to a score, a grade and the
//! reasons for both. The widget uses it to adapt the flow; the edge recomputes it and ignores
//! whatever a client claims.

use serde::{Deserialize, Serialize};

use crate::form::{Answer, Answers, FollowUp, FormDefinition, QuestionKind, Thresholds};

/// How ready a lead is, from cold to hot. Ordered: `Cold < Warm < Hot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    Cold,
    Warm,
    Hot,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Cold => "cold",
            Grade::Warm => "warm",
            Grade::Hot => "hot",
        }
    }
}

/// Which answer gave which points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub question: String,
    pub answer: String,
    pub points: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scored {
    pub score: i32,
    pub grade: Grade,
    pub reasons: Vec<Reason>,
}

impl Thresholds {
    pub fn grade(&self, score: i32) -> Grade {
        if score >= self.hot {
            Grade::Hot
        } else if score >= self.warm {
            Grade::Warm
        } else {
            Grade::Cold
        }
    }
}

/// Scores the answers to the questions that are shown. Answers to hidden or unknown questions,
/// and values not offered, count nothing.
pub fn score(form: &FormDefinition, answers: &Answers) -> Scored {
    let mut reasons = Vec::new();
    each_point(form, answers, |question, answer, points| {
        reasons.push(Reason {
            question: question.to_owned(),
            answer: answer.text(),
            points,
        });
    });
    let score = reasons
        .iter()
        .fold(0i32, |sum, r| sum.saturating_add(r.points));
    Scored {
        score,
        grade: form.thresholds.grade(score),
        reasons,
    }
}

/// The grade alone, as [`score`] gives it, without the reasons: the widget adapts its flow to
/// the grade and never shows reasons, so it need not carry the code that words them (formatting
/// a number answer alone is ~14 KB of wasm).
pub fn grade(form: &FormDefinition, answers: &Answers) -> Grade {
    let mut score = 0i32;
    each_point(form, answers, |_, _, points| {
        score = score.saturating_add(points);
    });
    form.thresholds.grade(score)
}

/// An answer that gave points, as a reason words it.
enum Scoring<'a> {
    Text(&'a str),
    Number(f64),
}

impl Scoring<'_> {
    fn text(&self) -> String {
        match self {
            Scoring::Text(text) => (*text).to_owned(),
            Scoring::Number(n) => n.to_string(),
        }
    }
}

/// Calls `add` with each answer that gives points (question id, answer, points), in form order:
/// the rules behind both [`score`] and [`grade`].
fn each_point(
    form: &FormDefinition,
    answers: &Answers,
    mut add: impl FnMut(&str, Scoring<'_>, i32),
) {
    for q in &form.questions {
        let Some(answer) = answers.get(&q.id) else {
            continue;
        };
        if !form.is_shown(q, answers) {
            continue;
        }
        match (&q.kind, answer) {
            (QuestionKind::SingleChoice { options }, Answer::Text(value)) => {
                if let Some(o) = options.iter().find(|o| o.value == *value) {
                    add(&q.id, Scoring::Text(&o.value), o.points);
                }
            }
            (QuestionKind::MultipleChoice { options }, Answer::Many(values)) => {
                for o in options.iter().filter(|o| values.contains(&o.value)) {
                    add(&q.id, Scoring::Text(&o.value), o.points);
                }
            }
            (QuestionKind::ShortText { points }, Answer::Text(text)) if !text.trim().is_empty() => {
                add(&q.id, Scoring::Text(text.trim()), *points);
            }
            (QuestionKind::Number { bands, .. }, Answer::Number(n)) => {
                let band = bands.iter().find(|b| {
                    b.from.is_none_or(|from| *n >= from as f64)
                        && b.to.is_none_or(|to| *n <= to as f64)
                });
                if let Some(band) = band {
                    add(&q.id, Scoring::Number(*n), band.points);
                }
            }
            _ => {}
        }
    }
}

/// What the widget shows after a submission, and what follow-up begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Hot, or asked to be called or for a demo: invite them to call now (and book a time).
    CallNow,
    /// Warm: say what we are sending them and when.
    ExpectEmail,
    /// Cold: a friendly note, no pressure.
    Browse,
}

pub fn next_step(grade: Grade, follow_up: Option<FollowUp>) -> NextStep {
    match (grade, follow_up) {
        (Grade::Hot, _) | (_, Some(FollowUp::CallMe | FollowUp::BookDemo)) => NextStep::CallNow,
        (Grade::Warm, _) => NextStep::ExpectEmail,
        (Grade::Cold, _) => NextStep::Browse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{Answers, default_form};
    use proptest::prelude::*;
    use rstest::rstest;

    fn answers(pairs: &[(&str, &str)]) -> Answers {
        pairs
            .iter()
            .map(|(q, a)| ((*q).to_owned(), Answer::Text((*a).to_owned())))
            .collect()
    }

    #[rstest]
    #[case::buyer(&[("timeline", "now"), ("role", "decision_maker"), ("company_size", "51_200"), ("follow_up", "book_demo")], 90, Grade::Hot)]
    #[case::soon_and_influencing(&[("timeline", "3_months"), ("role", "influencer"), ("company_size", "11_50"), ("follow_up", "send_information")], 40, Grade::Warm)]
    #[case::exactly_warm(&[("timeline", "3_months"), ("role", "influencer"), ("company_size", "1_10"), ("follow_up", "send_information")], 35, Grade::Warm)]
    #[case::browsing(&[("timeline", "browsing"), ("role", "researcher"), ("company_size", "1_10"), ("follow_up", "send_information")], 0, Grade::Cold)]
    #[case::nothing_answered(&[], 0, Grade::Cold)]
    #[case::unknown_values_count_nothing(&[("timeline", "yesterday"), ("colour", "red")], 0, Grade::Cold)]
    fn scores_the_default_form(
        #[case] given: &[(&str, &str)],
        #[case] points: i32,
        #[case] grade: Grade,
    ) {
        let scored = score(&default_form(), &answers(given));
        assert_eq!((scored.score, scored.grade), (points, grade));
        assert_eq!(scored.reasons.iter().map(|r| r.points).sum::<i32>(), points);
    }

    #[test]
    fn reasons_say_which_answer_gave_which_points() {
        let mut given = answers(&[("timeline", "now"), ("follow_up", "call_me")]);
        given.insert(
            "interest".into(),
            Answer::Many(vec!["pricing".into(), "support".into()]),
        );
        let scored = score(&default_form(), &given);
        let reasons: Vec<_> = scored
            .reasons
            .iter()
            .map(|r| (r.question.as_str(), r.answer.as_str(), r.points))
            .collect();
        assert_eq!(
            reasons,
            [
                ("timeline", "now", 40),
                ("interest", "pricing", 5),
                ("interest", "support", 0),
                ("follow_up", "call_me", 20),
            ]
        );
    }

    #[rstest]
    #[case(Grade::Hot, None, NextStep::CallNow)]
    #[case(Grade::Cold, Some(FollowUp::CallMe), NextStep::CallNow)]
    #[case(Grade::Warm, Some(FollowUp::BookDemo), NextStep::CallNow)]
    #[case(Grade::Warm, Some(FollowUp::SendInformation), NextStep::ExpectEmail)]
    #[case(Grade::Cold, None, NextStep::Browse)]
    fn next_steps(
        #[case] grade: Grade,
        #[case] follow_up: Option<FollowUp>,
        #[case] step: NextStep,
    ) {
        assert_eq!(next_step(grade, follow_up), step);
    }

    proptest! {
        /// `grade` is `score`'s grade, whatever the answers.
        #[test]
        fn grade_is_the_grade_of_score(picks in proptest::collection::vec(0usize..6, 5), seats in proptest::option::of(-10.0f64..100.0)) {
            let mut form = default_form();
            form.questions.push(crate::form::Question {
                id: "seats".into(),
                label: "Seats".into(),
                kind: QuestionKind::Number { min: None, max: None, bands: vec![crate::form::Band { from: Some(10), to: None, points: 30 }] },
                required: false,
                show_if: None,
            });
            let mut given: Answers = form.questions.iter().zip(&picks).filter_map(|(q, pick)| match &q.kind {
                QuestionKind::SingleChoice { options } => options.get(*pick).map(|o| (q.id.clone(), Answer::Text(o.value.clone()))),
                QuestionKind::MultipleChoice { options } => Some((q.id.clone(), Answer::Many(options.iter().take(*pick).map(|o| o.value.clone()).collect()))),
                _ => None,
            }).collect();
            if let Some(n) = seats {
                given.insert("seats".into(), Answer::Number(n));
            }
            prop_assert_eq!(grade(&form, &given), score(&form, &given).grade);
        }

        /// Thresholds are respected: the grade is hot exactly from `hot`, warm exactly from
        /// `warm`, and more points never give a lower grade.
        #[test]
        fn grades_follow_thresholds_monotonically(warm in -100i32..100, gap in 0i32..100, a in -300i32..300, b in -300i32..300) {
            let t = Thresholds { hot: warm + gap, warm };
            let grade = t.grade(a);
            prop_assert_eq!(grade == Grade::Hot, a >= t.hot);
            prop_assert_eq!(grade >= Grade::Warm, a >= t.warm);
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(t.grade(low) <= t.grade(high));
        }

        /// Raising any choice's points never lowers the grade of any set of answers.
        #[test]
        fn more_points_never_lower_the_grade(
            picks in proptest::collection::vec(0usize..5, 5),
            question in 0usize..5,
            option in 0usize..5,
            extra in 0i32..50,
        ) {
            let form = default_form();
            let given: Answers = form.questions.iter().zip(&picks).map(|(q, pick)| {
                let options = match &q.kind {
                    QuestionKind::SingleChoice { options } | QuestionKind::MultipleChoice { options } => options,
                    _ => unreachable!("the default form asks only choice questions"),
                };
                let value = options[pick % options.len()].value.clone();
                let answer = match q.kind {
                    QuestionKind::MultipleChoice { .. } => Answer::Many(vec![value]),
                    _ => Answer::Text(value),
                };
                (q.id.clone(), answer)
            }).collect();
            let before = score(&form, &given);
            let mut richer = form;
            if let QuestionKind::SingleChoice { options } | QuestionKind::MultipleChoice { options } = &mut richer.questions[question].kind {
                let n = options.len();
                options[option % n].points += extra;
            }
            let after = score(&richer, &given);
            prop_assert!(after.score >= before.score);
            prop_assert!(after.grade >= before.grade);
        }
    }
}
