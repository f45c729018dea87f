//! The rules a submission must meet. Every problem is reported at once, each with a message a
//! visitor can act on; the widget shows these messages before sending and the edge returns the
//! very same ones, so the two can never disagree.

use crate::form::{Answers, FollowUp, FormDefinition};
use crate::{FieldError, LeadSubmission};

/// Longest name or company name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest free-text message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest page URL, in characters; longer ones are cut rather than refused (see [`validate`]).
pub const MAX_URL_CHARS: usize = 2048;
/// RFC 5321 §4.5.3.1: a local part of at most 64 octets, a domain of at most 255, and a forward
/// path of at most 256 octets including the angle brackets, hence 254 for the address itself.
pub const MAX_EMAIL_LOCAL: usize = 64;
pub const MAX_EMAIL_DOMAIN: usize = 255;
pub const MAX_EMAIL: usize = 254;
/// E.164 allows at most 15 digits; fewer than 7 is no phone number anyone can call back.
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// A submission that passed [`validate`], with every field trimmed and normalised.
/// It can only be made by [`validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidLead(LeadSubmission);

impl ValidLead {
    pub fn get(&self) -> &LeadSubmission {
        &self.0
    }

    /// The same lead with an internationalised email domain in its ASCII form, as the edge
    /// stores and addresses it. (Only the edge calls this: it keeps IDNA's tables out of the
    /// widget.)
    pub fn with_ascii_domain(mut self) -> Result<Self, Vec<FieldError>> {
        self.0.email =
            ascii_domain(&self.0.email).map_err(|m| vec![FieldError::new("email", m)])?;
        Ok(self)
    }
}

/// Checks and normalises a submission to `form`: text trimmed, optional blanks made absent, the
/// email's domain lower-cased, the phone number reduced to its digits (and a leading `+`),
/// answers checked against the questions shown (see [`FormDefinition::check_answers`]).
/// Asking to be called requires a phone number. Errors come in form order.
pub fn validate(
    input: &LeadSubmission,
    form: &FormDefinition,
) -> Result<ValidLead, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut check = |field: &str, result: Result<String, &'static str>| match result {
        Ok(value) => value,
        Err(message) => {
            errors.push(FieldError::new(field, message));
            String::new()
        }
    };
    let optional = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };

    let site_id = check("site_id", site_id(&input.site_id));
    let name = check("name", name(&input.name));
    let email = check("email", email(&input.email));
    let company = optional(&input.company).map(|c| check("company", company(&c)));
    let phone = optional(&input.phone).map(|p| check("phone", phone(&p)));
    let message = optional(&input.message).map(|m| check("message", message(&m)));
    if !input.consent.given {
        check(
            "consent",
            Err("Please tick the box so we may reply to you."),
        );
    }
    let text_version = check(
        "consent.text_version",
        token(&input.consent.text_version, 1..=64),
    );
    let idempotency_key = check("idempotency_key", token(&input.idempotency_key, 16..=128));
    let turnstile_token = optional(&input.turnstile_token).map(|t| {
        let fits = t.len() <= crate::spam::TURNSTILE_TOKEN_MAX_LEN
            && t.bytes().all(|b| b.is_ascii_graphic());
        check(
            "turnstile_token",
            if fits {
                Ok(t)
            } else {
                Err("This check's answer is not valid; please try the check again.")
            },
        )
    });
    let page_url = optional(&input.page_url).map(|u| check("page_url", page_url(&u)));
    let form_id = input
        .form_id
        .as_deref()
        .map(|id| check("form_id", form_id(id)));
    let answers = match form.check_answers(&input.answers) {
        Ok(answers) => answers,
        Err(answer_errors) => {
            errors.extend(answer_errors);
            Answers::new()
        }
    };
    if form.follow_up(&answers) == Some(FollowUp::CallMe) && phone.is_none() {
        errors.push(FieldError::new(
            "phone",
            "Please give us a number to call you on.",
        ));
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidLead(LeadSubmission {
        site_id,
        email,
        name,
        company,
        phone,
        message,
        consent: crate::Consent {
            given: true,
            text_version,
        },
        page_url,
        idempotency_key,
        form_id,
        form_version: input.form_version,
        answers,
        first_touch: input.first_touch.clone(),
        honeypot: input.honeypot.clone(),
        // Judged by the edge (crate::spam), never refused: a bot learns nothing from it.
        render_token: input.render_token.clone(),
        turnstile_token,
        ignored_score: None,
        ignored_grade: None,
    }))
}

/// Site ids are what marketers type into `data-site`: short, lower-case, URL-safe.
pub fn site_id(value: &str) -> Result<String, &'static str> {
    slug(value).ok_or("This form is not set up correctly: its site id is not valid.")
}

/// Form ids (`data-form`) follow the same rule as site ids.
pub fn form_id(value: &str) -> Result<String, &'static str> {
    slug(value).ok_or("This form is not set up correctly: its form id is not valid.")
}

fn slug(value: &str) -> Option<String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then(|| value.to_owned())
}

fn name(value: &str) -> Result<String, &'static str> {
    let value = value.trim();
    if value.is_empty() {
        return Err("Please enter your name.");
    }
    single_line(
        value,
        MAX_NAME_CHARS,
        "Please keep your name under 100 characters.",
    )
}

fn company(value: &str) -> Result<String, &'static str> {
    single_line(
        value,
        MAX_NAME_CHARS,
        "Please keep the company name under 100 characters.",
    )
}

fn message(value: &str) -> Result<String, &'static str> {
    let value = value.replace("\r\n", "\n");
    if value.chars().count() > MAX_MESSAGE_CHARS {
        return Err("Please keep your message under 2000 characters.");
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("Your message contains characters we cannot accept.");
    }
    Ok(value)
}

/// A single-line text: no control characters at all (CR and LF included, since names can end up
/// in email headers).
fn single_line(value: &str, max: usize, too_long: &'static str) -> Result<String, &'static str> {
    if value.chars().count() > max {
        return Err(too_long);
    }
    if value.chars().any(char::is_control) {
        return Err("Please remove line breaks and special characters.");
    }
    Ok(value.to_owned())
}

/// An email address by the rule browsers apply to `<input type=email>`
/// (<https://html.spec.whatwg.org/multipage/input.html#valid-e-mail-address>), within the length
/// limits of RFC 5321. Returns it trimmed, with the domain lower-cased (the local part is the
/// mailbox owner's business and is kept as typed).
pub fn email(value: &str) -> Result<String, &'static str> {
    const INVALID: &str = "Please enter a valid email address, like name@example.com.";
    let value = value.trim();
    if value.is_empty() {
        return Err("Please enter your email address.");
    }
    let (local, domain) = value.split_once('@').ok_or(INVALID)?;
    // Internationalised domains (`ada@münchen.de`) are welcome: the edge stores them in their
    // ASCII form (see [`ValidLead::with_ascii_domain`]). Letters beyond ASCII before the `@`
    // need SMTPUTF8 all the way to the inbox, which the email providers cannot promise.
    if !local.is_ascii() && !local.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(
            "Please use an address without accents or special letters before the @: our emails cannot reach it yet.",
        );
    }
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b));
    let domain_ok = domain.split('.').all(|label| {
        let chars: Vec<char> = label.chars().collect();
        (1..=63).contains(&chars.len())
            // Beyond ASCII, IDNA (at the edge) is the judge; here only the shape is checked.
            && chars.iter().all(|c| {
                c.is_ascii_alphanumeric()
                    || *c == '-'
                    || !(c.is_ascii() || c.is_control() || c.is_whitespace())
            })
            && chars[0] != '-'
            && chars[chars.len() - 1] != '-'
    });
    if !local_ok || !domain_ok {
        return Err(INVALID);
    }
    if local.len() > MAX_EMAIL_LOCAL || domain.len() > MAX_EMAIL_DOMAIN || value.len() > MAX_EMAIL {
        return Err("This email address is too long.");
    }
    // ASCII case only: Unicode's case tables would cost the widget kilobytes, and the edge's
    // IDNA mapping folds the rest.
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// An address's domain in ASCII (IDNA, UTS #46: `münchen.de` → `xn--mnchen-3ya.de`), as mail
/// is addressed; ASCII domains come back unchanged.
fn ascii_domain(address: &str) -> Result<String, &'static str> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("Please enter a valid email address, like name@example.com.");
    };
    if domain.is_ascii() {
        return Ok(address.to_owned());
    }
    let ascii = match url::Host::parse(domain) {
        Ok(url::Host::Domain(ascii)) => ascii,
        _ => return Err("Please enter a valid email address, like name@example.com."),
    };
    let address = format!("{local}@{ascii}");
    if ascii.len() > MAX_EMAIL_DOMAIN
        || address.len() > MAX_EMAIL
        || ascii.split('.').any(|label| label.len() > 63)
    {
        return Err("This email address is too long.");
    }
    Ok(address)
}

/// A phone number, loosely E.164: the usual punctuation is allowed and dropped, what remains is
/// 7 to 15 digits with an optional leading `+`.
pub fn phone(value: &str) -> Result<String, &'static str> {
    const INVALID: &str = "Please enter a phone number of 7 to 15 digits, like +1 555 010 0199.";
    let (plus, rest) = match value.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", value),
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(INVALID);
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if !PHONE_DIGITS.contains(&digits.len()) {
        return Err(INVALID);
    }
    Ok(format!("{plus}{digits}"))
}

/// A machine-made token (a version label, an idempotency key): visible ASCII only.
fn token(value: &str, len: std::ops::RangeInclusive<usize>) -> Result<String, &'static str> {
    if len.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value.to_owned())
    } else {
        Err("This form sent an invalid value; please reload the page and try again.")
    }
}

/// The page the form sits on: only recorded, never fetched or shown as a link, so an `http(s)`
/// scheme is all it needs. A longer address than [`MAX_URL_CHARS`] (an ad's tracking
/// parameters, a long fragment) is cut to it: the visitor cannot shorten the address of the
/// page they are on, so refusing it would lose their lead.
fn page_url(value: &str) -> Result<String, &'static str> {
    let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
    if scheme_ok && !value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Ok(value.chars().take(MAX_URL_CHARS).collect())
    } else {
        Err("This form sent an invalid page address; please reload the page and try again.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Consent;
    use proptest::prelude::*;
    use rstest::rstest;

    fn form() -> FormDefinition {
        crate::form::default_form()
    }

    fn submission() -> LeadSubmission {
        LeadSubmission {
            site_id: "demo".into(),
            email: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            company: None,
            phone: None,
            message: None,
            consent: Consent {
                given: true,
                text_version: "v1".into(),
            },
            page_url: Some("https://example.com/landing".into()),
            idempotency_key: "0123456789abcdef".into(),
            form_id: None,
            form_version: None,
            answers: [
                ("timeline", "3_months"),
                ("role", "influencer"),
                ("company_size", "11_50"),
                ("follow_up", "send_information"),
            ]
            .into_iter()
            .map(|(q, a)| (q.to_owned(), crate::Answer::Text(a.to_owned())))
            .collect(),
            first_touch: None,
            honeypot: None,
            render_token: None,
            turnstile_token: None,
            ignored_score: None,
            ignored_grade: None,
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[rstest]
    #[case("ada@example.com", "ada@example.com")]
    #[case("  Ada@Example.COM \n", "Ada@example.com")]
    #[case("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk")]
    #[case("o'brien@example.ie", "o'brien@example.ie")]
    #[case("user@localhost", "user@localhost")]
    #[case("x@a-b.example", "x@a-b.example")]
    #[case("Ada@MÜNCHEN.de", "Ada@mÜnchen.de")]
    #[case("ada@例え.jp", "ada@例え.jp")]
    fn accepts_emails_browsers_accept(#[case] input: &str, #[case] expected: &str) {
        assert_eq!(email(input).as_deref(), Ok(expected));
    }

    #[rstest]
    #[case::empty("", "Please enter your email address.")]
    #[case::blank("   ", "Please enter your email address.")]
    #[case::no_at(
        "ada.example.com",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::two_ats(
        "a@b@example.com",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::no_local(
        "@example.com",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::no_domain("ada@", "Please enter a valid email address, like name@example.com.")]
    #[case::empty_label(
        "ada@example..com",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::trailing_dot(
        "ada@example.com.",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::leading_hyphen(
        "ada@-example.com",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::space_inside(
        "a da@example.com",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::header_injection(
        "ada@example.com\r\nBcc: x@y.z",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::non_ascii_local(
        "adä@example.com",
        "Please use an address without accents or special letters before the @: our emails cannot reach it yet."
    )]
    #[case::space_in_domain(
        "ada@exa\u{a0}mple.com",
        "Please enter a valid email address, like name@example.com."
    )]
    #[case::long_label(&format!("a@{}.com", "b".repeat(64)), "Please enter a valid email address, like name@example.com.")]
    #[case::long_local(&format!("{}@example.com", "a".repeat(65)), "This email address is too long.")]
    #[case::long_total(&format!("a@{}.com", vec!["b".repeat(63); 4].join(".")), "This email address is too long.")]
    fn refuses_bad_emails_with_a_reason(#[case] input: &str, #[case] message: &str) {
        assert_eq!(email(input), Err(message));
    }

    #[rstest]
    #[case("ada@münchen.de", Ok("ada@xn--mnchen-3ya.de".to_owned()))]
    #[case("ada@MÜNCHEN.de", Ok("ada@xn--mnchen-3ya.de".to_owned()))]
    #[case("ada@例え.jp", Ok("ada@xn--r8jz45g.jp".to_owned()))]
    #[case("ada@example.com", Ok("ada@example.com".to_owned()))]
    #[case(&format!("a@{}.de", "ü".repeat(60)), Err("This email address is too long."))]
    #[case(
        "ada@exa\u{fffd}mple.com",
        Err("Please enter a valid email address, like name@example.com.")
    )]
    fn internationalised_domains_are_stored_in_ascii(
        #[case] input: &str,
        #[case] expected: Result<String, &'static str>,
    ) {
        let mut lead = submission();
        lead.email = input.to_owned();
        let valid = validate(&lead, &form()).expect("valid");
        assert_eq!(
            valid.with_ascii_domain().map(|l| l.get().email.clone()),
            expected.map_err(|m| vec![FieldError::new("email", m)])
        );
    }

    #[rstest]
    #[case("+1 (555) 010-0199", "+15550100199")]
    #[case("0171 555 0199", "01715550199")]
    #[case("+44.20.7946.0958", "+442079460958")]
    #[case("5550199", "5550199")]
    fn normalises_phone_numbers(#[case] input: &str, #[case] expected: &str) {
        assert_eq!(phone(input).as_deref(), Ok(expected));
    }

    #[rstest]
    #[case::too_short("12345")]
    #[case::too_long("+1234567890123456")]
    #[case::letters("call me maybe")]
    #[case::extension("555 0199 ext 12")]
    #[case::plus_inside("555+0199999")]
    fn refuses_bad_phone_numbers(#[case] input: &str) {
        assert!(phone(input).is_err());
    }

    #[test]
    fn a_valid_submission_is_normalised() {
        let mut input = submission();
        input.email = " Ada@EXAMPLE.com ".into();
        input.name = "  Ada Lovelace ".into();
        input.company = Some("   ".into());
        input.phone = Some(" +44 20 7946 0958 ".into());
        input.message = Some("Hello\r\nthere ".into());
        let lead = validate(&input, &form()).unwrap();
        let lead = lead.get();
        assert_eq!(lead.email, "Ada@example.com");
        assert_eq!(lead.name, "Ada Lovelace");
        assert_eq!(lead.company, None);
        assert_eq!(lead.phone.as_deref(), Some("+442079460958"));
        assert_eq!(lead.message.as_deref(), Some("Hello\nthere"));
    }

    #[test]
    fn every_problem_is_reported_at_once_in_form_order() {
        let mut input = submission();
        input.name = " ".into();
        input.email = "nope".into();
        input.phone = Some("12".into());
        input.consent.given = false;
        let errors = validate(&input, &form()).unwrap_err();
        assert_eq!(fields(&errors), ["name", "email", "phone", "consent"]);
        assert_eq!(errors[0].message, "Please enter your name.");
    }

    #[rstest]
    #[case::name_too_long("name", "n".repeat(101))]
    #[case::name_with_newline("name", "Ada\nBcc: x".into())]
    #[case::name_with_nul("name", "Ada\0".into())]
    #[case::company_too_long("company", "c".repeat(101))]
    #[case::company_with_cr("company", "AC\rME".into())]
    #[case::message_too_long("message", "m".repeat(2001))]
    #[case::message_with_escape("message", "hi \u{1b}[31m".into())]
    #[case::site_id_upper("site_id", "Demo".into())]
    #[case::site_id_empty("site_id", String::new())]
    #[case::key_too_short("idempotency_key", "short".into())]
    #[case::key_with_space("idempotency_key", "0123456789 abcdef".into())]
    #[case::version_empty("consent.text_version", String::new())]
    #[case::url_scheme("page_url", "javascript:alert(1)".into())]
    #[case::url_space("page_url", "https://example.com/a b".into())]
    fn refuses_each_bad_field(#[case] field: &str, #[case] value: String) {
        let mut input = submission();
        match field {
            "name" => input.name = value,
            "company" => input.company = Some(value),
            "message" => input.message = Some(value),
            "site_id" => input.site_id = value,
            "idempotency_key" => input.idempotency_key = value,
            "consent.text_version" => input.consent.text_version = value,
            "page_url" => input.page_url = Some(value),
            other => unreachable!("{other}"),
        }
        let errors = validate(&input, &form()).unwrap_err();
        assert_eq!(fields(&errors), [field]);
    }

    #[test]
    fn a_page_address_too_long_to_keep_is_cut_not_refused() {
        let mut input = submission();
        let long = format!("https://example.com/landing?gclid={}#ö", "x".repeat(5_000));
        input.page_url = Some(long.clone());
        let lead = validate(&input, &form()).expect("a long address is no reason to lose a lead");
        let kept = lead.get().page_url.as_deref().unwrap();
        assert_eq!(kept.chars().count(), MAX_URL_CHARS);
        assert!(long.starts_with(kept));
    }

    #[test]
    fn asking_to_be_called_needs_a_phone_number() {
        let mut input = submission();
        input
            .answers
            .insert("follow_up".into(), crate::Answer::Text("call_me".into()));
        let errors = validate(&input, &form()).unwrap_err();
        assert_eq!(
            errors,
            [FieldError::new(
                "phone",
                "Please give us a number to call you on."
            )]
        );
        input.phone = Some("+1 555 010 0199".into());
        assert!(validate(&input, &form()).is_ok());
    }

    #[test]
    fn answer_errors_come_after_contact_errors() {
        let mut input = submission();
        input.email = String::new();
        input.answers.remove("timeline");
        let errors = validate(&input, &form()).unwrap_err();
        assert_eq!(fields(&errors), ["email", "answers.timeline"]);
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let mut input = submission();
        input.name = "é".repeat(MAX_NAME_CHARS);
        input.message = Some("ü".repeat(MAX_MESSAGE_CHARS));
        assert!(validate(&input, &form()).is_ok());
    }

    proptest! {
        /// Whatever a client sends, validation answers (never panics), and what it accepts is
        /// already in normal form: validating it again changes nothing.
        #[test]
        fn validation_is_total_and_idempotent(
            email in "\\PC{0,80}|[a-zA-Z0-9.+_-]{1,20}@[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z]{2,5}){0,2}",
            name in "\\PC{0,120}",
            company in proptest::option::of("\\PC{0,120}"),
            phone in proptest::option::of("\\+?[0-9 ().-]{0,20}"),
            message in proptest::option::of("(?s).{0,50}"),
        ) {
            let mut input = submission();
            input.email = email;
            input.name = name;
            input.company = company;
            input.phone = phone;
            input.message = message;
            if let Ok(lead) = validate(&input, &form()) {
                let again = validate(lead.get(), &form()).expect("a normalised lead stays valid");
                prop_assert_eq!(again, lead);
            }
        }

        /// Any address of the HTML shape within the RFC 5321 limits is accepted, with only its
        /// domain's case changed.
        #[test]
        fn well_formed_emails_are_accepted(
            local in "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}",
            labels in proptest::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?", 1..4),
        ) {
            let domain = labels.join(".");
            let address = format!("{local}@{domain}");
            prop_assume!(address.len() <= MAX_EMAIL);
            let expected = format!("{local}@{}", domain.to_ascii_lowercase());
            prop_assert_eq!(email(&address), Ok(expected));
        }

        /// A submission survives the wire unchanged: what the widget serialises is what the edge
        /// parses.
        #[test]
        fn submissions_round_trip_through_json(
            name in "\\PC{0,40}",
            company in proptest::option::of("\\PC{0,40}"),
            message in proptest::option::of("(?s).{0,40}"),
            given in any::<bool>(),
        ) {
            let mut input = submission();
            input.name = name;
            input.company = company;
            input.message = message;
            input.consent.given = given;
            let bytes = serde_json::to_vec(&input).unwrap();
            prop_assert_eq!(crate::submission::parse(&bytes), Ok(input));
        }
    }
}
