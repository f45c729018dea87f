//! The sales side of a lead: its lifecycle (statuses and the moves between them), the Sales API's
//! filters and cursors, API keys and their scopes, and CSV export cells. Pure: the edge stores
//! and serves, this module decides.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FieldError;
use crate::attribution::Channel;
use crate::score::{Grade, Reason};

/// Where a lead stands with sales. A lead moves forward (`lead → prospect → customer →
/// repeat_customer`) or out (`disqualified`), and a disqualified lead can be reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Lead,
    Prospect,
    Customer,
    RepeatCustomer,
    Disqualified,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Lead,
        Status::Prospect,
        Status::Customer,
        Status::RepeatCustomer,
        Status::Disqualified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Lead => "lead",
            Status::Prospect => "prospect",
            Status::Customer => "customer",
            Status::RepeatCustomer => "repeat_customer",
            Status::Disqualified => "disqualified",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The statuses this one may move to.
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            // Someone may buy on the first call: a lead can skip the prospect stage.
            Lead => &[Prospect, Customer, Disqualified],
            Prospect => &[Customer, Disqualified],
            Customer => &[RepeatCustomer],
            RepeatCustomer => &[],
            // Reopened: back to the start, or straight to a conversation.
            Disqualified => &[Lead, Prospect],
        }
    }

    /// Checks a move. Staying put is allowed (a repeated PATCH changes nothing); anything else
    /// not in [`Status::next`] is refused with an explanation a salesperson can act on.
    pub fn check_move(self, to: Status) -> Result<(), String> {
        if self == to || self.next().contains(&to) {
            return Ok(());
        }
        let allowed = self.next();
        let because = match self {
            Status::RepeatCustomer => "a repeat customer is the last stage".to_owned(),
            Status::Customer => "a customer can only become a repeat customer".to_owned(),
            _ => format!(
                "from {} a lead can move to {}",
                self.as_str(),
                join_statuses(allowed)
            ),
        };
        Err(format!(
            "A lead cannot move from {} to {}: {because}.",
            self.as_str(),
            to.as_str()
        ))
    }

    /// Whether nurture sequences still run for a lead with this status: only a plain lead is
    /// nurtured; a prospect or customer talks to sales, and a disqualified lead hears nothing.
    pub fn nurtured(self) -> bool {
        self == Status::Lead
    }
}

fn join_statuses(statuses: &[Status]) -> String {
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    names.join(" or ")
}

/// What an API key may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "leads:read")]
    LeadsRead,
    #[serde(rename = "leads:write")]
    LeadsWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::LeadsRead, Scope::LeadsWrite, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LeadsRead => "leads:read",
            Scope::LeadsWrite => "leads:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Whether holding `self` allows an action needing `needed`.
    pub fn grants(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }
}

/// Prefix of every API key, so a leaked key is recognisable (and secret scanners can match it).
pub const KEY_PREFIX: &str = "lg_";

/// The credentials of an `Authorization` header value, if its scheme is Bearer (in any case,
/// as HTTP's schemes are); empty credentials are none.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An API key as a client sends it: `lg_<id>_<secret>`. The id finds the stored key; only a
/// hash of the secret is stored, compared in constant time.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// Splits a bearer token into id and secret, or `None` when it is not shaped like a key.
    pub fn parse(token: &'a str) -> Option<Self> {
        let rest = token.strip_prefix(KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(id, 16) && hex(secret, 64)).then_some(Self { id, secret })
    }
}

/// Formats a new key from its id (16 hex digits) and secret (64 hex digits).
pub fn format_key(id: &str, secret: &str) -> String {
    format!("{KEY_PREFIX}{id}_{secret}")
}

/// What is stored of a key's secret: SHA-256, hex. (The secret is 256 random bits, so a fast
/// hash is enough: there is nothing to brute-force.)
pub fn key_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /v1/admin/api-keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl NewApiKey {
    /// Checks the key's name and scopes; the name comes back trimmed, the scopes de-duplicated.
    pub fn validate(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(message) = text_problem(&self.name, 1, 100) {
            errors.push(FieldError::new("name", message));
        }
        if self.scopes.is_empty() {
            errors.push(FieldError::new(
                "scopes",
                "Give the key at least one scope: leads:read, leads:write or admin.",
            ));
        }
        self.name = self.name.trim().to_owned();
        self.scopes.sort_unstable_by_key(|s| s.as_str());
        self.scopes.dedup();
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// The scopes as stored: space-separated.
    pub fn scope_list(&self) -> String {
        let names: Vec<&str> = self.scopes.iter().map(|s| s.as_str()).collect();
        names.join(" ")
    }
}

/// The filters of `GET /v1/leads` and of the export. Every filter is optional; they combine
/// with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    pub site: Option<String>,
    pub form: Option<String>,
    pub grade: Option<Grade>,
    pub status: Option<Status>,
    pub channel: Option<String>,
    /// Created at or after (normalised timestamp).
    pub since: Option<String>,
    /// Created before (normalised timestamp).
    pub until: Option<String>,
    /// Lower-cased text searched for in email, name and company ([`search_text`]).
    pub q: Option<String>,
    /// List the leads kept as spam instead of the others (`spam=true`).
    pub spam: bool,
}

/// A page request: filters, size and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadQuery {
    pub filter: LeadFilter,
    pub limit: u32,
    pub after: Option<Cursor>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// The export's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8; header=present",
            ExportFormat::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        }
    }
}

/// Reads the query of `GET /v1/leads`. Unknown parameters are refused by name: a mistyped
/// filter that silently matched everything would be worse than an error.
pub fn parse_list_query<'a>(
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
) -> Result<LeadQuery, Vec<FieldError>> {
    let mut query = LeadQuery {
        filter: LeadFilter::default(),
        limit: DEFAULT_PAGE,
        after: None,
    };
    let mut errors = Vec::new();
    for (key, value) in pairs {
        match key.as_ref() {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => query.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("Give a whole number from 1 to {MAX_PAGE}."),
                )),
            },
            "cursor" => match Cursor::decode(&value) {
                Some(cursor) => query.after = Some(cursor),
                None => errors.push(FieldError::new(
                    "cursor",
                    "This cursor is not one this API gave out; start again without it.",
                )),
            },
            other => {
                if let Err(error) = filter_param(&mut query.filter, other, &value) {
                    errors.push(error);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(errors)
    }
}

/// Reads the query of `GET /v1/leads/export`: the list's filters and a `format`.
pub fn parse_export_query<'a>(
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
) -> Result<(LeadFilter, ExportFormat), Vec<FieldError>> {
    let mut filter = LeadFilter::default();
    let mut format = None;
    let mut errors = Vec::new();
    for (key, value) in pairs {
        if key == "format" {
            match value.as_ref() {
                "csv" => format = Some(ExportFormat::Csv),
                "ndjson" => format = Some(ExportFormat::Ndjson),
                _ => errors.push(FieldError::new("format", "Choose csv or ndjson.")),
            }
        } else if let Err(error) = filter_param(&mut filter, &key, &value) {
            errors.push(error);
        }
    }
    match format {
        Some(format) if errors.is_empty() => Ok((filter, format)),
        None if errors.is_empty() => Err(vec![FieldError::new(
            "format",
            "Choose csv or ndjson (format=csv).",
        )]),
        _ => Err(errors),
    }
}

fn filter_param(filter: &mut LeadFilter, key: &str, value: &str) -> Result<(), FieldError> {
    let id = |field: &str| -> Result<String, FieldError> {
        if value.is_empty() || value.len() > 100 || value.chars().any(char::is_control) {
            Err(FieldError::new(
                field,
                "Give a value of 1 to 100 characters.",
            ))
        } else {
            Ok(value.to_owned())
        }
    };
    match key {
        "site" => filter.site = Some(id("site")?),
        "form" => filter.form = Some(id("form")?),
        "channel" => {
            let channel = Channel::parse(value).ok_or_else(|| {
                FieldError::new(
                    "channel",
                    "Choose direct, paid_search, organic_search, paid_social, organic_social, \
                     email or referral.",
                )
            })?;
            filter.channel = Some(channel.as_str().to_owned());
        }
        "grade" => {
            filter.grade = Some(match value {
                "hot" => Grade::Hot,
                "warm" => Grade::Warm,
                "cold" => Grade::Cold,
                _ => return Err(FieldError::new("grade", "Choose hot, warm or cold.")),
            });
        }
        "status" => {
            filter.status = Some(Status::parse(value).ok_or_else(|| {
                FieldError::new(
                    "status",
                    "Choose lead, prospect, customer, repeat_customer or disqualified.",
                )
            })?);
        }
        "spam" => {
            filter.spam = match value {
                "true" => true,
                "false" => false,
                _ => return Err(FieldError::new("spam", "Choose true or false.")),
            };
        }
        "since" => filter.since = Some(timestamp("since", value)?),
        "until" => filter.until = Some(timestamp("until", value)?),
        "q" => {
            let text = value.trim();
            if text.is_empty() || text.chars().count() > 200 {
                return Err(FieldError::new("q", "Search for 1 to 200 characters."));
            }
            filter.q = Some(text.to_lowercase());
        }
        other => {
            return Err(FieldError::new(
                other,
                "Unknown parameter. Filters are site, form, grade, status, channel, since, \
                 until, q and spam.",
            ));
        }
    }
    Ok(())
}

/// Normalises a date (`2026-11-26`) or a UTC timestamp (`2026-11-26T09:30:00Z`, optional
/// fraction) to the stored form, `YYYY-MM-DDTHH:MM:SS.sssZ`, so timestamps compare as text.
/// What the text search (`q`) looks in for a lead: its email, name and company, lower-cased by
/// Unicode's rules (SQLite's `lower()` folds only A-Z), one per line.
pub fn search_text(email: &str, name: &str, company: Option<&str>) -> String {
    format!("{email}\n{name}\n{}", company.unwrap_or_default()).to_lowercase()
}

/// Days in month `m` of year `y` (both already checked to be digits; `m` in 1..=12).
fn days_in_month(y: &str, m: &str) -> u32 {
    let year: u32 = y.parse().unwrap_or(1);
    match m {
        "02" if year.is_multiple_of(4)
            && (!year.is_multiple_of(100) || year.is_multiple_of(400)) =>
        {
            29
        }
        "02" => 28,
        "04" | "06" | "09" | "11" => 30,
        _ => 31,
    }
}

pub fn timestamp(field: &str, value: &str) -> Result<String, FieldError> {
    let error = || {
        FieldError::new(
            field,
            "Give a date (2026-11-26) or a UTC time (2026-11-26T09:30:00Z).",
        )
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = match value.split_once('T') {
        Some((date, time)) => (date, Some(time.strip_suffix('Z').ok_or_else(error)?)),
        None => (value, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(error());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || !digits(y) || !digits(m) || !digits(d) {
        return Err(error());
    }
    let in_range =
        |s: &str, lo: u32, hi: u32| s.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n));
    if !in_range(m, 1, 12) || !in_range(d, 1, days_in_month(y, m)) {
        return Err(error());
    }
    let Some(time) = time else {
        return Ok(format!("{date}T00:00:00.000Z"));
    };
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.split(':');
    let (Some(h), Some(mi), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(error());
    };
    let two = |x: &str| x.len() == 2 && digits(x);
    if !two(h) || !two(mi) || !two(s) || !in_range(h, 0, 23) || !in_range(mi, 0, 59) {
        return Err(error());
    }
    if !in_range(s, 0, 60) || (!fraction.is_empty() && !digits(fraction)) {
        return Err(error());
    }
    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
    Ok(format!("{date}T{h}:{mi}:{s}.{millis}Z"))
}

/// Where a page ended: the last lead's creation time and id. Pages run newest first by
/// `(created_at, id)`, so leads created while a client pages land before the first page and
/// never shift the pages after it: nothing is skipped or repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: String,
    pub id: String,
}

impl Cursor {
    /// The position just after `lead`.
    pub fn after(lead: &LeadListItem) -> Self {
        Self {
            created_at: lead.created_at.clone(),
            id: lead.id.clone(),
        }
    }

    /// Opaque to clients: URL-safe base64 of the two values.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.created_at, self.id))
    }

    pub fn decode(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (created_at, id) = text.split_once('\n')?;
        let plausible = |s: &str| !s.is_empty() && s.len() <= 100 && !s.contains('\n');
        (plausible(created_at) && plausible(id)).then(|| Self {
            created_at: created_at.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// A lead as the list and the export show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadListItem {
    pub id: String,
    pub created_at: String,
    pub site_id: String,
    pub form_id: String,
    pub status: Status,
    pub grade: Grade,
    pub score: i64,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    pub channel: String,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
}

/// A page of `GET /v1/leads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadPage {
    pub leads: Vec<LeadListItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The consent a visitor gave with their request: with a resubmission, the latest one's (its
/// time, wording and IP; the page is the latest one given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub given_at: String,
    pub text_version: String,
    pub ip: Option<String>,
    pub page_url: Option<String>,
    pub confirmed_at: Option<String>,
    pub unsubscribed_at: Option<String>,
}

/// One follow-up step, as sales sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpRecord {
    pub step: u32,
    pub channel: String,
    pub template: String,
    /// `scheduled`, `queued`, `sending`, `sent`, `dead` or `cancelled`.
    pub state: String,
    /// Unix milliseconds: when it is (or was last) due.
    pub due_at: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// One recorded change: a status move, a new assignee or new tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub at: String,
    /// Who: the API key's name and id, or `admin`.
    pub actor: String,
    /// `status`, `assignee` or `tags`.
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub id: String,
    pub created_at: String,
    pub author: String,
    pub body: String,
}

/// A lead as exported (`GET /v1/leads/export`): as listed, plus what the visitor answered
/// (by question id), where they came from and the consent they gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedLead {
    #[serde(flatten)]
    pub lead: LeadListItem,
    pub answers: serde_json::Value,
    pub attribution: serde_json::Value,
    pub consent: ConsentRecord,
}

/// `GET /v1/leads/{id}`: everything about a lead. Its first fields are an [`ExportedLead`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadRecord {
    #[serde(flatten)]
    pub lead: LeadListItem,
    pub answers: serde_json::Value,
    pub attribution: serde_json::Value,
    pub consent: ConsentRecord,
    pub form_version: u32,
    pub reasons: Vec<Reason>,
    pub follow_ups: Vec<FollowUpRecord>,
    pub history: Vec<ChangeRecord>,
    pub notes: Vec<Note>,
    /// When the person's data was erased (the lead is then an anonymous tombstone).
    pub erased_at: Option<String>,
    /// Why it was kept as spam (`honeypot`, `too_fast`, `no_render_token`,
    /// `bad_render_token`), if it was.
    pub spam_reason: Option<String>,
    /// How many more times the person sent the form (same email, same site, within the site's
    /// duplicate window) after the submission that created the lead, and when they last did.
    pub resubmissions: u32,
    pub last_submitted_at: Option<String>,
}

/// `PATCH /v1/leads/{id}`: any of status, assignee (null clears it), tags (replaced whole) and
/// spam.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadPatch {
    pub status: Option<Status>,
    #[serde(default, deserialize_with = "present")]
    pub assignee: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// `false` releases a lead kept as spam (a person the screening took for a bot: it is
    /// listed as a lead again; no email goes out on its own, sales take it from there); `true`
    /// keeps a lead as spam by hand ([`MANUAL_SPAM`]) and cancels everything not yet sent about
    /// it.
    pub spam: Option<bool>,
}

/// The spam reason of a lead sales kept as spam by hand.
pub const MANUAL_SPAM: &str = "manual";

/// Tells a field sent as `null` (Some(None)) from one left out (None).
fn present<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

pub const MAX_TAGS: usize = 20;

/// A lead's status, assignee, tags and spam reason as stored: what a patch is applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadState {
    pub status: Status,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
    /// Why the lead is kept as spam; `None` for a lead.
    pub spam_reason: Option<String>,
}

/// One recorded change of one field (`status`, `assignee`, `tags` as a JSON array, or `spam` as
/// the spam reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What a patch does to a lead: its new state, the changes to record (none: nothing to do),
/// whether the lead's nurture sequence stops (it leaves the `lead` status), and whether
/// everything not yet sent about it stops (it is now kept as spam).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadChange {
    pub state: LeadState,
    pub changes: Vec<FieldChange>,
    pub stop_nurture: bool,
    pub stop_all: bool,
}

impl LeadPatch {
    /// Checks the values (not the move, which depends on the stored status) and normalises the
    /// tags: trimmed, de-duplicated, in the order given.
    pub fn validate(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.status.is_none()
            && self.assignee.is_none()
            && self.tags.is_none()
            && self.spam.is_none()
        {
            errors.push(FieldError::new(
                "",
                "Send at least one of status, assignee, tags and spam.",
            ));
        }
        if let Some(Some(assignee)) = &self.assignee
            && let Some(message) = text_problem(assignee, 1, 200)
        {
            errors.push(FieldError::new("assignee", message));
        }
        if let Some(tags) = &mut self.tags {
            let mut seen = Vec::new();
            for (i, tag) in tags.iter().enumerate() {
                let tag = tag.trim();
                if let Some(message) = text_problem(tag, 1, 50) {
                    errors.push(FieldError::new(format!("tags[{i}]"), message));
                } else if !seen.iter().any(|t: &String| t == tag) {
                    seen.push(tag.to_owned());
                }
            }
            if seen.len() > MAX_TAGS {
                errors.push(FieldError::new(
                    "tags",
                    format!("A lead can have up to {MAX_TAGS} tags."),
                ));
            }
            *tags = seen;
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

impl LeadPatch {
    /// Applies a (validated) patch to the stored state. A status move the lifecycle does not
    /// allow is refused with the explanation of [`Status::check_move`].
    pub fn apply(&self, current: &LeadState) -> Result<LeadChange, String> {
        let status = self.status.unwrap_or(current.status);
        current.status.check_move(status)?;
        let state = LeadState {
            status,
            assignee: match &self.assignee {
                Some(new) => new.clone(),
                None => current.assignee.clone(),
            },
            tags: self.tags.clone().unwrap_or_else(|| current.tags.clone()),
            spam_reason: match self.spam {
                Some(false) => None,
                Some(true) => Some(
                    current
                        .spam_reason
                        .clone()
                        .unwrap_or_else(|| MANUAL_SPAM.to_owned()),
                ),
                None => current.spam_reason.clone(),
            },
        };
        let mut changes = Vec::new();
        if state.status != current.status {
            changes.push(FieldChange {
                field: "status",
                from: Some(current.status.as_str().to_owned()),
                to: Some(state.status.as_str().to_owned()),
            });
        }
        if state.assignee != current.assignee {
            changes.push(FieldChange {
                field: "assignee",
                from: current.assignee.clone(),
                to: state.assignee.clone(),
            });
        }
        if state.tags != current.tags {
            let list = |t: &[String]| serde_json::to_string(t).ok();
            changes.push(FieldChange {
                field: "tags",
                from: list(&current.tags),
                to: list(&state.tags),
            });
        }
        if state.spam_reason != current.spam_reason {
            changes.push(FieldChange {
                field: "spam",
                from: current.spam_reason.clone(),
                to: state.spam_reason.clone(),
            });
        }
        Ok(LeadChange {
            stop_nurture: current.status.nurtured() && !state.status.nurtured(),
            stop_all: current.spam_reason.is_none() && state.spam_reason.is_some(),
            state,
            changes,
        })
    }
}

/// `POST /v1/leads/{id}/notes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub body: String,
}

impl NewNote {
    /// Checks the note; it comes back trimmed. Notes may span lines; other control characters
    /// are refused.
    pub fn validate(self) -> Result<Self, Vec<FieldError>> {
        let body = self.body.trim();
        let control = body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t');
        let problem = if body.is_empty() || body.chars().count() > 10_000 {
            "Write a note of 1 to 10,000 characters."
        } else if control {
            "Remove the control characters."
        } else {
            return Ok(Self {
                body: body.to_owned(),
            });
        };
        Err(vec![FieldError::new("body", problem)])
    }
}

/// Why a short text is not acceptable, if it is not: length (in characters) and control
/// characters.
fn text_problem(value: &str, min: usize, max: usize) -> Option<String> {
    let len = value.trim().chars().count();
    if len < min || len > max {
        Some(format!("Give {min} to {max} characters."))
    } else if value.chars().any(char::is_control) {
        Some("Remove the control characters.".to_owned())
    } else {
        None
    }
}

/// The export's CSV columns, in order.
pub const CSV_COLUMNS: [&str; 33] = [
    "id",
    "created_at",
    "site_id",
    "form_id",
    "status",
    "grade",
    "score",
    "email",
    "name",
    "company",
    "phone",
    "message",
    "channel",
    "assignee",
    "tags",
    "answers",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "msclkid",
    "ref",
    "referrer",
    "landing_page",
    "consent_given_at",
    "consent_text_version",
    "consent_ip",
    "consent_page_url",
    "confirmed_at",
    "unsubscribed_at",
];

/// The columns of [`CSV_COLUMNS`] taken from a lead's `attribution`, by the same names.
const ATTRIBUTION_COLUMNS: std::ops::Range<usize> = 16..27;

/// One CSV record (RFC 4180: fields quoted when they hold a comma, quote, CR or LF; quotes
/// doubled; CRLF at the end). A cell a spreadsheet would run as a formula (starting with `=`,
/// `+`, `-`, `@`, tab or CR) is prefixed with `'`, so it shows as text.
pub fn csv_record<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&csv_cell(cell));
    }
    line.push_str("\r\n");
    line
}

pub fn csv_cell(value: &str) -> Cow<'_, str> {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = value.contains([',', '"', '\r', '\n']);
    if !formula && !needs_quotes {
        return Cow::Borrowed(value);
    }
    let mut cell = String::with_capacity(value.len() + 3);
    if needs_quotes {
        cell.push('"');
    }
    if formula {
        cell.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            cell.push('"');
        }
        cell.push(c);
    }
    if needs_quotes {
        cell.push('"');
    }
    Cow::Owned(cell)
}

impl ExportedLead {
    /// This lead as one CSV record, in [`CSV_COLUMNS`] order: tags joined with `; `, the
    /// answers as one JSON object (empty when there are none), the attribution a column per
    /// field.
    pub fn csv(&self) -> String {
        let (lead, consent) = (&self.lead, &self.consent);
        fn opt(value: &Option<String>) -> &str {
            value.as_deref().unwrap_or_default()
        }
        let score = lead.score.to_string();
        let tags = lead.tags.join("; ");
        let answers = match self.answers.as_object() {
            Some(answers) if answers.is_empty() => String::new(),
            // Not `to_string`, whose writer is a formatter: serde_json's writer into bytes is
            // in the edge's wasm already.
            _ => serde_json::to_string(&self.answers).unwrap_or_default(),
        };
        let attribution = CSV_COLUMNS[ATTRIBUTION_COLUMNS].iter().map(|key| {
            self.attribution
                .get(key)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        });
        csv_record(
            [
                lead.id.as_str(),
                &lead.created_at,
                &lead.site_id,
                &lead.form_id,
                lead.status.as_str(),
                lead.grade.as_str(),
                &score,
                &lead.email,
                &lead.name,
                opt(&lead.company),
                opt(&lead.phone),
                opt(&lead.message),
                &lead.channel,
                opt(&lead.assignee),
                &tags,
                &answers,
            ]
            .into_iter()
            .chain(attribution)
            .chain([
                consent.given_at.as_str(),
                &consent.text_version,
                opt(&consent.ip),
                opt(&consent.page_url),
                opt(&consent.confirmed_at),
                opt(&consent.unsubscribed_at),
            ]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn pairs(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        url::form_urlencoded::parse(query.as_bytes()).collect()
    }

    #[rstest]
    #[case(Status::Lead, Status::Prospect, true)]
    #[case(Status::Lead, Status::Customer, true)]
    #[case(Status::Lead, Status::Disqualified, true)]
    #[case(Status::Lead, Status::RepeatCustomer, false)]
    #[case(Status::Prospect, Status::Customer, true)]
    #[case(Status::Prospect, Status::Lead, false)]
    #[case(Status::Customer, Status::RepeatCustomer, true)]
    #[case(Status::Customer, Status::Prospect, false)]
    #[case(Status::Customer, Status::Disqualified, false)]
    #[case(Status::RepeatCustomer, Status::Customer, false)]
    #[case(Status::Disqualified, Status::Lead, true)]
    #[case(Status::Disqualified, Status::Customer, false)]
    #[case(Status::Prospect, Status::Prospect, true)]
    fn moves(#[case] from: Status, #[case] to: Status, #[case] allowed: bool) {
        assert_eq!(from.check_move(to).is_ok(), allowed, "{from:?} → {to:?}");
    }

    #[test]
    fn a_refused_move_says_why_and_what_is_possible() {
        let why = Status::Prospect.check_move(Status::Lead).unwrap_err();
        assert!(why.contains("from prospect to lead"), "{why}");
        assert!(why.contains("customer or disqualified"), "{why}");
        let why = Status::Customer.check_move(Status::Lead).unwrap_err();
        assert!(why.contains("repeat customer"), "{why}");
    }

    #[test]
    fn only_plain_leads_are_nurtured() {
        let nurtured: Vec<Status> = Status::ALL.into_iter().filter(|s| s.nurtured()).collect();
        assert_eq!(nurtured, [Status::Lead]);
    }

    #[test]
    fn statuses_round_trip_through_their_names_and_serde() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn admin_grants_every_scope_and_others_only_themselves() {
        for needed in Scope::ALL {
            assert!(Scope::Admin.grants(needed));
        }
        assert!(Scope::LeadsRead.grants(Scope::LeadsRead));
        assert!(!Scope::LeadsRead.grants(Scope::LeadsWrite));
        assert!(!Scope::LeadsWrite.grants(Scope::Admin));
    }

    #[test]
    fn keys_parse_only_in_their_own_shape() {
        let id = "0123456789abcdef";
        let secret = "a".repeat(64);
        let key = format_key(id, &secret);
        assert_eq!(
            PresentedKey::parse(&key),
            Some(PresentedKey {
                id,
                secret: &secret
            })
        );
        for bad in [
            "",
            "lg_",
            "lg_0123456789abcdef",
            &format!("xx_{id}_{secret}"),
            &format!("lg_{id}_{}", &secret[1..]),
            &format!("lg_{id}_{}g", &secret[1..]),
            &format!("lg_{}_{secret}", &id[1..]),
        ] {
            assert_eq!(PresentedKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_channel_filters_by_its_own_name_and_a_leap_day_is_a_date() {
        for channel in Channel::ALL {
            let q = parse_list_query(pairs(&format!("channel={}", channel.as_str()))).unwrap();
            assert_eq!(q.filter.channel.as_deref(), Some(channel.as_str()));
        }
        assert!(timestamp("since", "2028-02-29").is_ok());
        assert!(timestamp("since", "2000-02-29").is_ok());
        assert!(timestamp("since", "2100-02-29").is_err());
    }

    #[test]
    fn bearer_credentials_are_read_whatever_the_schemes_case() {
        for header in [
            "Bearer lg_a_b",
            "bearer lg_a_b",
            "BEARER  lg_a_b ",
            " Bearer lg_a_b",
        ] {
            assert_eq!(bearer_token(header), Some("lg_a_b"), "{header:?}");
        }
        for header in [
            "",
            "Bearer",
            "Bearer ",
            "Basic lg_a_b",
            "Bearerlg_a_b",
            "lg_a_b",
        ] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
    }

    #[test]
    fn search_finds_names_whatever_their_script_and_case() {
        let text = search_text("Zoe@Example.com", "Zoë Öztürk", Some("Ørsted A/S"));
        for typed in ["öztürk", "ÖZTÜRK", "Öztürk", "ørsted", "zoe@example", "ZOË"] {
            let q = parse_list_query(pairs(&format!("q={typed}")))
                .unwrap()
                .filter
                .q;
            let q = q.unwrap();
            assert!(text.contains(&q), "{typed:?} as {q:?} in {text:?}");
        }
        assert!(search_text("a@b.c", "Иванов", None).contains("иванов"));
    }

    #[test]
    fn key_hash_is_sha256_hex() {
        // echo -n abc | sha256sum
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn list_query_reads_every_filter() {
        let q = parse_list_query(pairs(
            "site=acme&form=demo&grade=hot&status=prospect&channel=paid_search\
             &since=2026-11-01&until=2026-11-26T10:00:00.5Z&q=Ada%20L&limit=200",
        ))
        .unwrap();
        assert_eq!(
            q.filter,
            LeadFilter {
                site: Some("acme".into()),
                form: Some("demo".into()),
                grade: Some(Grade::Hot),
                status: Some(Status::Prospect),
                channel: Some("paid_search".into()),
                since: Some("2026-11-01T00:00:00.000Z".into()),
                until: Some("2026-11-26T10:00:00.500Z".into()),
                q: Some("ada l".into()),
                spam: false,
            }
        );
        assert_eq!(q.limit, 200);
        assert_eq!(q.after, None);
    }

    #[rstest]
    #[case("limit=0", "limit")]
    #[case("limit=201", "limit")]
    #[case("limit=ten", "limit")]
    #[case("grade=lukewarm", "grade")]
    #[case("status=buyer", "status")]
    #[case("since=yesterday", "since")]
    #[case("until=2026-13-01", "until")]
    #[case("since=2026-02-29", "since")]
    #[case("until=2026-04-31", "until")]
    #[case("channel=social", "channel")]
    #[case("since=2026-11-01T10:00:00%2B01:00", "since")]
    #[case("cursor=nonsense!", "cursor")]
    #[case("grad=hot", "grad")]
    #[case("q=", "q")]
    #[case("spam=yes", "spam")]
    fn list_query_names_the_bad_parameter(#[case] query: &str, #[case] field: &str) {
        let errors = parse_list_query(pairs(query)).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, field);
    }

    #[test]
    fn export_query_needs_a_known_format() {
        let (filter, format) = parse_export_query(pairs("format=ndjson&grade=warm")).unwrap();
        assert_eq!(format, ExportFormat::Ndjson);
        assert_eq!(filter.grade, Some(Grade::Warm));
        assert_eq!(
            parse_export_query(pairs("grade=warm")).unwrap_err()[0].field,
            "format"
        );
        assert_eq!(
            parse_export_query(pairs("format=xlsx")).unwrap_err()[0].field,
            "format"
        );
        assert_eq!(
            parse_export_query(pairs("format=csv&limit=5")).unwrap_err()[0].field,
            "limit"
        );
    }

    #[test]
    fn timestamps_normalise_to_the_stored_form() {
        assert_eq!(
            timestamp("t", "2026-01-02").unwrap(),
            "2026-01-02T00:00:00.000Z"
        );
        assert_eq!(
            timestamp("t", "2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05.000Z"
        );
        assert_eq!(
            timestamp("t", "2026-01-02T03:04:05.123456Z").unwrap(),
            "2026-01-02T03:04:05.123Z"
        );
        for bad in [
            "2026-1-02",
            "2026-01-02T03:04Z",
            "2026-01-02T24:00:00Z",
            "2026-01-02 03:04:05",
        ] {
            assert!(timestamp("t", bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn cursors_round_trip(created_at in "[0-9TZ:.-]{1,30}", id in "[0-9a-f-]{1,40}") {
            let cursor = Cursor { created_at, id };
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }

        #[test]
        fn cursor_decoding_never_panics(value in ".{0,200}") {
            let _ = Cursor::decode(&value);
        }

        /// A CSV reader sees exactly the cells written, and no cell starts a formula.
        #[test]
        fn csv_cells_survive_and_never_start_a_formula(cells in proptest::collection::vec(".{0,20}", 1..6)) {
            let line = csv_record(cells.iter().map(String::as_str));
            let parsed = parse_csv_line(&line);
            prop_assert_eq!(parsed.len(), cells.len());
            for (read, written) in parsed.iter().zip(&cells) {
                let dangerous = written.starts_with(['=', '+', '-', '@', '\t', '\r']);
                if dangerous {
                    prop_assert_eq!(read, &format!("'{written}"));
                } else {
                    prop_assert_eq!(read, written);
                }
            }
        }
    }

    /// A small RFC 4180 reader for one record, written from the RFC (not from `csv_cell`).
    fn parse_csv_line(line: &str) -> Vec<String> {
        let body = line.strip_suffix("\r\n").expect("records end with CRLF");
        let mut cells = vec![String::new()];
        let mut chars = body.chars().peekable();
        let mut quoted = false;
        let mut at_start = true;
        while let Some(c) = chars.next() {
            let cell = cells.last_mut().expect("a cell");
            match (quoted, c) {
                (false, '"') if at_start => quoted = true,
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                (true, '"') => quoted = false,
                (false, ',') => {
                    cells.push(String::new());
                    at_start = true;
                    continue;
                }
                (_, c) => cell.push(c),
            }
            at_start = false;
        }
        cells
    }

    #[test]
    fn csv_quotes_and_neutralises() {
        assert_eq!(
            csv_record(["a", "b,c", "say \"hi\""]),
            "a,\"b,c\",\"say \"\"hi\"\"\"\r\n"
        );
        assert_eq!(csv_cell("=SUM(A1:A9)"), "'=SUM(A1:A9)");
        assert_eq!(csv_cell("+44 20 7946 0000"), "'+44 20 7946 0000");
        assert_eq!(csv_cell("@cmd,x"), "\"'@cmd,x\"");
        assert_eq!(csv_cell("plain"), "plain");
    }

    /// The export's attribution columns are named as the attribution's own fields, so each
    /// field lands in its column and none is left out.
    #[test]
    fn the_exports_attribution_columns_are_the_attributions_fields() {
        let some = || Some("x".to_owned());
        let every = crate::attribution::Attribution {
            utm_source: some(),
            utm_medium: some(),
            utm_campaign: some(),
            utm_term: some(),
            utm_content: some(),
            gclid: some(),
            fbclid: some(),
            msclkid: some(),
            referral_code: some(),
            referrer: some(),
            landing_page: some(),
        };
        let value = serde_json::to_value(every).unwrap();
        let mut fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut columns = CSV_COLUMNS[ATTRIBUTION_COLUMNS].to_vec();
        fields.sort_unstable();
        columns.sort_unstable();
        assert_eq!(fields, columns);
    }

    fn exported() -> ExportedLead {
        ExportedLead {
            lead: LeadListItem {
                id: "l1".into(),
                created_at: "2026-11-27T10:00:00.000Z".into(),
                site_id: "demo".into(),
                form_id: "default".into(),
                status: Status::Lead,
                grade: Grade::Hot,
                score: 80,
                email: "ada@example.com".into(),
                name: "Ada".into(),
                company: None,
                phone: None,
                message: None,
                channel: "email".into(),
                assignee: None,
                tags: vec![],
            },
            answers: serde_json::json!({ "interests": ["a", "b"], "timeline": "now" }),
            attribution: serde_json::json!({
                "utm_source": "news",
                "landing_page": "https://x.example/?a=1",
            }),
            consent: ConsentRecord {
                given_at: "2026-11-27T10:05:00.000Z".into(),
                text_version: "v2".into(),
                ip: Some("203.0.113.9".into()),
                page_url: Some("https://x.example/pricing".into()),
                confirmed_at: None,
                unsubscribed_at: None,
            },
        }
    }

    #[test]
    fn an_exported_lead_carries_its_answers_attribution_and_consent() {
        let record = exported().csv();
        assert_eq!(
            record.matches(',').count() - 2, // the commas inside the answers' quoted cell
            CSV_COLUMNS.len() - 1,
            "{record}"
        );
        assert!(
            record.contains(r#","{""interests"":[""a"",""b""],""timeline"":""now""}","#),
            "the answers as one JSON object: {record}"
        );
        let attribution_and_consent = format!(
            ",news{}https://x.example/?a=1,2026-11-27T10:05:00.000Z,v2,203.0.113.9,https://x.example/pricing,,\r\n",
            ",".repeat(10)
        );
        assert!(record.ends_with(&attribution_and_consent), "{record}");

        let without = ExportedLead {
            answers: serde_json::json!({}),
            ..exported()
        };
        assert!(
            without.csv().contains(",email,,,,news,"),
            "no answers: an empty cell, not {{}}: {}",
            without.csv()
        );
    }

    fn state(status: Status, assignee: Option<&str>, tags: &[&str]) -> LeadState {
        LeadState {
            status,
            assignee: assignee.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            spam_reason: None,
        }
    }

    #[test]
    fn sales_release_a_lead_kept_as_spam_or_keep_one_by_hand() {
        let kept = LeadState {
            spam_reason: Some("too_fast".into()),
            ..state(Status::Lead, None, &[])
        };
        let release: LeadPatch = serde_json::from_str(r#"{"spam": false}"#).unwrap();
        let change = release.validate().unwrap().apply(&kept).unwrap();
        assert_eq!(change.state.spam_reason, None);
        assert!(!change.stop_all && !change.stop_nurture);
        let recorded = &change.changes[0];
        assert_eq!(
            (
                recorded.field,
                recorded.from.as_deref(),
                recorded.to.as_deref()
            ),
            ("spam", Some("too_fast"), None)
        );

        let mark: LeadPatch = serde_json::from_str(r#"{"spam": true}"#).unwrap();
        let change = mark.apply(&state(Status::Lead, None, &[])).unwrap();
        assert_eq!(change.state.spam_reason.as_deref(), Some(MANUAL_SPAM));
        assert!(change.stop_all, "nothing more goes out about it");
        // Kept already: its reason stays, and nothing is recorded.
        let again = mark.apply(&kept).unwrap();
        assert_eq!(again.state.spam_reason.as_deref(), Some("too_fast"));
        assert!(again.changes.is_empty() && !again.stop_all);
    }

    #[test]
    fn a_patch_records_what_changed_and_stops_nurture_when_a_lead_moves_on() {
        let current = state(Status::Lead, Some("sam"), &["q4"]);
        let patch: LeadPatch = serde_json::from_str(
            r#"{"status": "prospect", "assignee": null, "tags": ["q4", "vip"]}"#,
        )
        .unwrap();
        let change = patch.validate().unwrap().apply(&current).unwrap();
        assert_eq!(change.state, state(Status::Prospect, None, &["q4", "vip"]));
        assert!(change.stop_nurture);
        let fields: Vec<(&str, Option<&str>, Option<&str>)> = change
            .changes
            .iter()
            .map(|c| (c.field, c.from.as_deref(), c.to.as_deref()))
            .collect();
        assert_eq!(
            fields,
            [
                ("status", Some("lead"), Some("prospect")),
                ("assignee", Some("sam"), None),
                ("tags", Some(r#"["q4"]"#), Some(r#"["q4","vip"]"#)),
            ]
        );
    }

    #[test]
    fn a_patch_that_changes_nothing_records_nothing_and_a_bad_move_is_explained() {
        let current = state(Status::Customer, None, &[]);
        let same: LeadPatch =
            serde_json::from_str(r#"{"status": "customer", "tags": []}"#).unwrap();
        let change = same.apply(&current).unwrap();
        assert!(change.changes.is_empty());
        assert!(
            !change.stop_nurture,
            "a customer was not nurtured to begin with"
        );
        let back: LeadPatch = serde_json::from_str(r#"{"status": "lead"}"#).unwrap();
        assert!(
            back.apply(&current)
                .unwrap_err()
                .contains("repeat customer")
        );
        // Disqualifying a lead stops its nurture too; reopening does not restart it here.
        let out: LeadPatch = serde_json::from_str(r#"{"status": "disqualified"}"#).unwrap();
        assert!(
            out.apply(&state(Status::Lead, None, &[]))
                .unwrap()
                .stop_nurture
        );
        let reopen: LeadPatch = serde_json::from_str(r#"{"status": "lead"}"#).unwrap();
        assert!(
            !reopen
                .apply(&state(Status::Disqualified, None, &[]))
                .unwrap()
                .stop_nurture
        );
    }

    #[test]
    fn new_keys_and_notes_come_back_normalised() {
        let key: NewApiKey = serde_json::from_str(
            r#"{"name": " CRM sync ", "scopes": ["leads:write", "leads:read", "leads:write"]}"#,
        )
        .unwrap();
        let key = key.validate().unwrap();
        assert_eq!(key.name, "CRM sync");
        assert_eq!(key.scope_list(), "leads:read leads:write");
        let bad: NewApiKey = serde_json::from_str(r#"{"name": "", "scopes": []}"#).unwrap();
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["name", "scopes"]);
        let note = NewNote {
            body: "  Call Friday.\n ".into(),
        }
        .validate()
        .unwrap();
        assert_eq!(note.body, "Call Friday.");
        assert!(NewNote { body: " ".into() }.validate().is_err());
        assert!(
            NewNote {
                body: "a\u{7}".into()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn patch_normalises_tags_and_refuses_bad_values() {
        let patch: LeadPatch =
            serde_json::from_str(r#"{"tags": [" vip ", "vip", "q4"], "assignee": null}"#).unwrap();
        let patch = patch.validate().unwrap();
        assert_eq!(
            patch.tags.as_deref(),
            Some(&["vip".to_owned(), "q4".to_owned()][..])
        );
        assert_eq!(patch.assignee, Some(None));

        let empty: LeadPatch = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.validate().unwrap_err()[0].field, "");
        let bad: LeadPatch =
            serde_json::from_str(r#"{"tags": ["ok", ""], "assignee": "a\u0007b"}"#).unwrap();
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["assignee", "tags[1]"]);
        assert!(serde_json::from_str::<LeadPatch>(r#"{"stage": "x"}"#).is_err());
    }
}
