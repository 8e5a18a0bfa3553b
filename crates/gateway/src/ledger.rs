//! The gateway's records: what it writes and reads in the store, behind one
//! trait so that replicas share state through the database and tests run
//! against the in-memory implementation.
//!
//! Nothing here holds content: incidents carry ids, categories, findings and
//! content hashes; reports carry a hash of pasted content and its findings;
//! the audit log carries actors, actions and subjects. `MemoryLedger` is the
//! second implementation that STYLE.md §1 asks of every storage trait; the
//! `childsafe-store` implementation is the production one.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use childsafe_core::{Category, ContentHashes, Finding, Strike, Surface};
use childsafe_vault::ItemMeta;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{config::LadderAction, config::hash_secret, inspect::BoxFuture};

/// A ledger failure (the database is unreachable, a constraint failed).
#[derive(Clone, Debug, thiserror::Error)]
#[error("ledger: {0}")]
pub struct LedgerError(pub String);

/// Result of a ledger operation.
pub type LedgerResult<T> = Result<T, LedgerError>;

/// Requests and incidents by category, for one rollout stage.
pub type StageCounts = (u64, BTreeMap<Category, u64>);

/// An incident's id and categories.
pub type IncidentRef = (String, Vec<Category>);

/// Categories whose incidents always open a case, whatever the policy's
/// `report` flag (the store's list, so both ledgers agree).
pub const SEVERE_CATEGORIES: [Category; 4] = childsafe_store::SEVERE_CATEGORIES;

/// Who a strike or sanction is against.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Subject {
    /// An end user of a tenant.
    User {
        /// The tenant id.
        tenant: String,
        /// The end user id, as the tenant sends it.
        user: String,
    },
    /// A whole tenant.
    Tenant(String),
}

impl Subject {
    /// Stable text form: `user:TENANT:USER` or `tenant:TENANT`.
    pub fn key(&self) -> String {
        match self {
            Subject::User { tenant, user } => format!("user:{tenant}:{user}"),
            Subject::Tenant(tenant) => format!("tenant:{tenant}"),
        }
    }

    /// The tenant, and the end user if this is one.
    pub fn parts(&self) -> (&str, Option<&str>) {
        match self {
            Subject::User { tenant, user } => (tenant, Some(user)),
            Subject::Tenant(tenant) => (tenant, None),
        }
    }
}

/// An image involved in an incident: its hashes, and the vault item holding
/// the preserved original when the law asks for one (known CSAM).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncidentImage {
    /// Hashes of the original bytes (PDQ when it decoded).
    pub hashes: ContentHashes,
    /// The encrypted copy in the evidence vault, if preserved.
    pub preserved: Option<ItemMeta>,
}

/// An incident: one decision that withheld, reported or struck.
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    /// The request it happened on.
    pub request_id: String,
    /// The tenant.
    pub tenant: String,
    /// The end user, when known.
    pub user: Option<String>,
    /// Where.
    pub surface: Surface,
    /// The action taken.
    pub action: childsafe_core::Action,
    /// The categories that drove it.
    pub categories: Vec<Category>,
    /// Every finding (ids, scores, spans: no content).
    pub findings: Vec<Finding>,
    /// Whether policy says to report it (opens a case, as severe categories do).
    pub report: bool,
    /// SHA-256 of the checked text (hex), so duplicates can be found without the text.
    pub text_sha256: Option<String>,
    /// The request's images: hashes, and vault items for preserved ones.
    pub images: Vec<IncidentImage>,
    /// The rollout stage that served the request, if any.
    pub rollout_stage: Option<String>,
}

impl Incident {
    /// Whether recording it opens (or joins) a case: reportable, or severe.
    pub fn opens_case(&self) -> bool {
        self.report
            || self
                .categories
                .iter()
                .any(|it| SEVERE_CATEGORIES.contains(it))
    }
}

/// A recorded incident's id, and the case it opened or joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedIncident {
    /// Incident id.
    pub id: String,
    /// The case, when [`Incident::opens_case`].
    pub case_id: Option<String>,
}

/// A case for human review (as the in-memory ledger keeps it).
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    /// Case id.
    pub id: String,
    /// Why it was opened: `incident` or `user_report`.
    pub origin: String,
    /// The incident or report id.
    pub origin_id: String,
    /// Categories.
    pub categories: Vec<Category>,
    /// `open` or `closed`.
    pub status: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
}

/// An active enforcement action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sanction {
    /// Against whom.
    pub subject: Subject,
    /// `warn`, `suspend` or `ban`.
    pub action: LadderAction,
    /// When it ends (`None`: until lifted).
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Why (categories, strike count).
    pub reason: String,
}

/// A user report to file (no content: a hash and the engine's findings).
#[derive(Clone, Debug, Serialize)]
pub struct NewReport {
    /// Tenant.
    pub tenant: String,
    /// Who reported (`TENANT:REPORTER`).
    pub reporter: String,
    /// The response reported, by request id.
    pub request_id: Option<String>,
    /// Hashes of pasted content.
    pub content_hashes: Option<ContentHashes>,
    /// The reporter's reason: a category name or `other`.
    pub reason: String,
    /// Categories: the reason's, the engine's on the pasted content and
    /// comment, and the reported response's incident's.
    pub categories: Vec<Category>,
    /// The comment, kept only when the engine found nothing in it; otherwise
    /// only its hash is kept (see reports.rs).
    pub comment: Option<String>,
    /// Hash of the comment when it was not kept.
    pub comment_sha256: Option<String>,
    /// Findings on the pasted content and comment.
    pub findings: Vec<Finding>,
}

/// A filed report's id and the case it opened or joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FiledReport {
    /// Report id.
    pub id: String,
    /// Case id.
    pub case_id: String,
}

/// An appeal against a sanction.
#[derive(Clone, Debug, Serialize)]
pub struct Appeal {
    /// Appeal id.
    pub id: String,
    /// Against which subject's sanction.
    pub subject: Subject,
    /// The appellant's statement (the user's own words about their account,
    /// run through the engine first and withheld if flagged).
    pub statement: String,
    /// `pending`, `granted` or `denied`.
    pub status: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The reviewer's note.
    pub note: Option<String>,
}

/// A rollout's shared state; the default is a rollout not yet started
/// (stage 0, running, version 0).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RolloutState {
    /// Index of the current stage.
    pub stage: usize,
    /// Whether the current stage is halted.
    pub halted: bool,
    /// Why it was halted.
    pub reason: Option<String>,
    /// Bumped on every transition (optimistic concurrency between replicas).
    pub version: u64,
}

/// One audit log entry.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who: `system`, or `admin:TOKEN_ID`.
    pub actor: String,
    /// What: `sanction.apply`, `rollout.halt`, ...
    pub action: String,
    /// On what.
    pub subject: String,
    /// Details (ids, counts, categories).
    pub details: serde_json::Value,
}

/// The most audit entries `audit_log` returns (the newest).
pub const AUDIT_LOG_LIMIT: u32 = 1000;

/// The gateway's view of the store.
pub trait Ledger: Send + Sync {
    /// Records an incident, registering its preserved images as evidence,
    /// and opens (or joins) the end user's case in the same step when
    /// [`Incident::opens_case`], so no reportable incident exists without
    /// its case.
    fn record_incident(&self, incident: Incident) -> BoxFuture<'_, LedgerResult<RecordedIncident>>;
    /// Cases awaiting review or a report.
    fn open_cases(&self) -> BoxFuture<'_, LedgerResult<u64>>;
    /// Adds a strike; returns the number of strikes against exactly this
    /// subject at or after `since` (and after its last lifted sanction: a
    /// lift wipes the slate).
    fn add_strike(
        &self,
        subject: Subject,
        kind: Strike,
        category: Category,
        request_id: &str,
        since: OffsetDateTime,
    ) -> BoxFuture<'_, LedgerResult<u32>>;
    /// Sets the sanction on a subject (a stronger or later one supersedes).
    fn set_sanction(&self, sanction: Sanction) -> BoxFuture<'_, LedgerResult<()>>;
    /// Lifts the sanctions on a subject; true if there was one.
    fn lift_sanction(
        &self,
        subject: &Subject,
        actor: &str,
        reason: &str,
    ) -> BoxFuture<'_, LedgerResult<bool>>;
    /// Every sanction not yet expired at `now`, at most one per subject (the strongest).
    fn active_sanctions(&self, now: OffsetDateTime) -> BoxFuture<'_, LedgerResult<Vec<Sanction>>>;
    /// Files a report and opens (or joins) its case.
    fn add_report(&self, report: NewReport) -> BoxFuture<'_, LedgerResult<FiledReport>>;
    /// Reports by `reporter` at or after `since`.
    fn count_reports(
        &self,
        reporter: &str,
        since: OffsetDateTime,
    ) -> BoxFuture<'_, LedgerResult<u32>>;
    /// The incident recorded for a request, if any.
    fn incident_for_request(
        &self,
        request_id: &str,
    ) -> BoxFuture<'_, LedgerResult<Option<IncidentRef>>>;
    /// Files an appeal by an end user against their active sanction; returns it with its id.
    fn file_appeal(
        &self,
        subject: Subject,
        statement: String,
    ) -> BoxFuture<'_, LedgerResult<Appeal>>;
    /// Appeals, optionally only those with `status` (`pending`, `granted`, `denied`).
    fn appeals(&self, status: Option<&str>) -> BoxFuture<'_, LedgerResult<Vec<Appeal>>>;
    /// Decides a pending appeal (`granted` lifts the sanction it appeals);
    /// `None` if there is no such pending appeal.
    fn decide_appeal(
        &self,
        id: &str,
        grant: bool,
        actor: &str,
        note: Option<String>,
    ) -> BoxFuture<'_, LedgerResult<Option<Appeal>>>;
    /// A rollout's state (stage 0, version 0 if never moved).
    fn rollout_state(&self, name: &str) -> BoxFuture<'_, LedgerResult<RolloutState>>;
    /// Replaces a rollout's state if its version is still `expected_version`
    /// (the new state's version is `expected_version + 1`); false if another
    /// replica moved first. Audited with `actor` and `reason`.
    fn set_rollout_state(
        &self,
        name: &str,
        expected_version: u64,
        state: RolloutState,
        actor: &str,
        reason: &str,
    ) -> BoxFuture<'_, LedgerResult<bool>>;
    /// Adds request and incident counts for a rollout stage in one minute bucket.
    fn add_rollout_counts(
        &self,
        name: &str,
        stage: &str,
        minute: i64,
        requests: u64,
        incidents: BTreeMap<Category, u64>,
    ) -> BoxFuture<'_, LedgerResult<()>>;
    /// Sums a stage's counts over minutes `>= since_minute`, from every replica.
    fn rollout_counts(
        &self,
        name: &str,
        stage: &str,
        since_minute: i64,
    ) -> BoxFuture<'_, LedgerResult<StageCounts>>;
    /// Accepts an admin token by its SHA-256 for this process (tokens from
    /// the environment or the demo); returns its id.
    fn add_admin_token(
        &self,
        token_sha256: &str,
        label: &str,
    ) -> BoxFuture<'_, LedgerResult<String>>;
    /// The id of the admin token presented (the secret itself), if valid.
    fn admin_token(&self, presented: &str) -> BoxFuture<'_, LedgerResult<Option<String>>>;
    /// Appends to the audit log.
    fn audit(&self, entry: AuditEntry) -> BoxFuture<'_, LedgerResult<()>>;
    /// The newest [`AUDIT_LOG_LIMIT`] audit entries, oldest first.
    fn audit_log(&self) -> BoxFuture<'_, LedgerResult<Vec<AuditEntry>>>;
    /// Loads a user's conversation-risk state.
    fn account_state(
        &self,
        subject: &Subject,
    ) -> BoxFuture<'_, LedgerResult<Option<serde_json::Value>>>;
    /// Saves a user's conversation-risk state.
    fn set_account_state(
        &self,
        subject: &Subject,
        state: serde_json::Value,
    ) -> BoxFuture<'_, LedgerResult<()>>;
    /// Whether the database answers (for `/readyz`).
    fn ping(&self) -> BoxFuture<'_, LedgerResult<()>>;
}

/// The in-memory ledger: unit tests, and the second implementation of the
/// trait. `fail_next_writes(n)` makes the next `n` writes fail, to test retries.
#[derive(Clone, Default)]
pub struct MemoryLedger {
    inner: Arc<Mutex<Memory>>,
}

#[derive(Default)]
struct Memory {
    fail_writes: u32,
    next_id: u64,
    incidents: Vec<(String, Incident)>,
    cases: Vec<Case>,
    strikes: Vec<(Subject, OffsetDateTime)>,
    sanctions: BTreeMap<Subject, Sanction>,
    reports: Vec<(FiledReport, NewReport, OffsetDateTime)>,
    appeals: Vec<Appeal>,
    rollouts: BTreeMap<String, RolloutState>,
    rollout_counts: BTreeMap<(String, String, i64), StageCounts>,
    admin_tokens: BTreeMap<String, String>,
    audit: Vec<AuditEntry>,
    accounts: BTreeMap<Subject, serde_json::Value>,
}

impl MemoryLedger {
    /// Makes the next `n` writes fail (a briefly unavailable database).
    pub fn fail_next_writes(&self, n: u32) {
        self.lock().fail_writes = n;
    }

    /// Every incident recorded, in order.
    pub fn incidents(&self) -> Vec<Incident> {
        self.lock()
            .incidents
            .iter()
            .map(|(_, it)| it.clone())
            .collect()
    }

    /// Every case, in order.
    pub fn cases(&self) -> Vec<Case> {
        self.lock().cases.clone()
    }

    /// Every report filed, in order.
    pub fn reports(&self) -> Vec<NewReport> {
        self.lock()
            .reports
            .iter()
            .map(|(_, it, _)| it.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A poisoned lock only means a test thread panicked; the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> BoxFuture<'_, LedgerResult<T>> {
        let res = {
            let mut memory = self.lock();
            if memory.fail_writes > 0 {
                memory.fail_writes -= 1;
                Err(LedgerError("database unavailable (injected)".to_owned()))
            } else {
                Ok(f(&mut memory))
            }
        };
        Box::pin(async move { res })
    }

    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Memory) -> T,
    ) -> BoxFuture<'_, LedgerResult<T>> {
        let res = f(&self.lock());
        Box::pin(async move { Ok(res) })
    }
}

impl Memory {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:06}", self.next_id)
    }

    fn open_case(&mut self, origin: &str, origin_id: &str, categories: Vec<Category>) -> String {
        let id = self.id("case");
        self.cases.push(Case {
            id: id.clone(),
            origin: origin.to_owned(),
            origin_id: origin_id.to_owned(),
            categories,
            status: "open".to_owned(),
            opened_at: OffsetDateTime::now_utc(),
        });
        id
    }
}

impl Ledger for MemoryLedger {
    fn record_incident(&self, incident: Incident) -> BoxFuture<'_, LedgerResult<RecordedIncident>> {
        self.write(move |m| {
            let id = m.id("inc");
            let case_id = incident
                .opens_case()
                .then(|| m.open_case("incident", &id, incident.categories.clone()));
            m.incidents.push((id.clone(), incident));
            RecordedIncident { id, case_id }
        })
    }

    fn open_cases(&self) -> BoxFuture<'_, LedgerResult<u64>> {
        self.read(|m| m.cases.iter().filter(|it| it.status == "open").count() as u64)
    }

    fn add_strike(
        &self,
        subject: Subject,
        _kind: Strike,
        _category: Category,
        _request_id: &str,
        since: OffsetDateTime,
    ) -> BoxFuture<'_, LedgerResult<u32>> {
        self.write(move |m| {
            m.strikes.push((subject.clone(), OffsetDateTime::now_utc()));
            m.strikes
                .iter()
                .filter(|(s, t)| *s == subject && *t >= since)
                .count() as u32
        })
    }

    fn set_sanction(&self, sanction: Sanction) -> BoxFuture<'_, LedgerResult<()>> {
        self.write(move |m| {
            m.sanctions.insert(sanction.subject.clone(), sanction);
        })
    }

    fn lift_sanction(
        &self,
        subject: &Subject,
        _actor: &str,
        _reason: &str,
    ) -> BoxFuture<'_, LedgerResult<bool>> {
        let subject = subject.clone();
        self.write(move |m| {
            // Lifting also clears the strikes behind it, so the next finding starts the ladder again.
            m.strikes.retain(|(s, _)| *s != subject);
            m.sanctions.remove(&subject).is_some()
        })
    }

    fn active_sanctions(&self, now: OffsetDateTime) -> BoxFuture<'_, LedgerResult<Vec<Sanction>>> {
        self.read(move |m| {
            m.sanctions
                .values()
                .filter(|s| s.until.is_none_or(|until| until > now))
                .cloned()
                .collect()
        })
    }

    fn add_report(&self, report: NewReport) -> BoxFuture<'_, LedgerResult<FiledReport>> {
        self.write(move |m| {
            let id = m.id("rep");
            let case_id = m.open_case("user_report", &id, report.categories.clone());
            let filed = FiledReport { id, case_id };
            m.reports
                .push((filed.clone(), report, OffsetDateTime::now_utc()));
            filed
        })
    }

    fn count_reports(
        &self,
        reporter: &str,
        since: OffsetDateTime,
    ) -> BoxFuture<'_, LedgerResult<u32>> {
        let reporter = reporter.to_owned();
        self.read(move |m| {
            m.reports
                .iter()
                .filter(|(_, r, at)| r.reporter == reporter && *at >= since)
                .count() as u32
        })
    }

    fn incident_for_request(
        &self,
        request_id: &str,
    ) -> BoxFuture<'_, LedgerResult<Option<IncidentRef>>> {
        let request_id = request_id.to_owned();
        self.read(move |m| {
            m.incidents
                .iter()
                .find(|(_, it)| it.request_id == request_id)
                .map(|(id, it)| (id.clone(), it.categories.clone()))
        })
    }

    fn file_appeal(
        &self,
        subject: Subject,
        statement: String,
    ) -> BoxFuture<'_, LedgerResult<Appeal>> {
        self.write(move |m| {
            let appeal = Appeal {
                id: m.id("apl"),
                subject,
                statement,
                status: "pending".to_owned(),
                at: OffsetDateTime::now_utc(),
                note: None,
            };
            m.appeals.push(appeal.clone());
            appeal
        })
    }

    fn appeals(&self, status: Option<&str>) -> BoxFuture<'_, LedgerResult<Vec<Appeal>>> {
        let status = status.map(str::to_owned);
        self.read(move |m| {
            m.appeals
                .iter()
                .filter(|a| status.as_deref().is_none_or(|s| a.status == s))
                .cloned()
                .collect()
        })
    }

    fn decide_appeal(
        &self,
        id: &str,
        grant: bool,
        _actor: &str,
        note: Option<String>,
    ) -> BoxFuture<'_, LedgerResult<Option<Appeal>>> {
        let id = id.to_owned();
        self.write(move |m| {
            let appeal = m
                .appeals
                .iter_mut()
                .find(|a| a.id == id && a.status == "pending")?;
            appeal.status = if grant { "granted" } else { "denied" }.to_owned();
            appeal.note = note;
            let appeal = appeal.clone();
            if grant {
                m.strikes.retain(|(s, _)| *s != appeal.subject);
                m.sanctions.remove(&appeal.subject);
            }
            Some(appeal)
        })
    }

    fn rollout_state(&self, name: &str) -> BoxFuture<'_, LedgerResult<RolloutState>> {
        let name = name.to_owned();
        self.read(move |m| m.rollouts.get(&name).cloned().unwrap_or_default())
    }

    fn set_rollout_state(
        &self,
        name: &str,
        expected_version: u64,
        state: RolloutState,
        _actor: &str,
        _reason: &str,
    ) -> BoxFuture<'_, LedgerResult<bool>> {
        let name = name.to_owned();
        self.write(move |m| {
            let current = m.rollouts.get(&name).map_or(0, |it| it.version);
            if current != expected_version {
                return false;
            }
            m.rollouts.insert(
                name,
                RolloutState {
                    version: expected_version + 1,
                    ..state
                },
            );
            true
        })
    }

    fn add_rollout_counts(
        &self,
        name: &str,
        stage: &str,
        minute: i64,
        requests: u64,
        incidents: BTreeMap<Category, u64>,
    ) -> BoxFuture<'_, LedgerResult<()>> {
        let key = (name.to_owned(), stage.to_owned(), minute);
        self.write(move |m| {
            let entry = m.rollout_counts.entry(key).or_default();
            entry.0 += requests;
            for (category, n) in incidents {
                *entry.1.entry(category).or_default() += n;
            }
        })
    }

    fn rollout_counts(
        &self,
        name: &str,
        stage: &str,
        since_minute: i64,
    ) -> BoxFuture<'_, LedgerResult<StageCounts>> {
        let (name, stage) = (name.to_owned(), stage.to_owned());
        self.read(move |m| {
            let mut res = (0, BTreeMap::new());
            for ((n, s, minute), (requests, incidents)) in &m.rollout_counts {
                if *n == name && *s == stage && *minute >= since_minute {
                    res.0 += requests;
                    for (category, count) in incidents {
                        *res.1.entry(*category).or_default() += count;
                    }
                }
            }
            res
        })
    }

    fn add_admin_token(
        &self,
        token_sha256: &str,
        label: &str,
    ) -> BoxFuture<'_, LedgerResult<String>> {
        let (hash, label) = (token_sha256.to_ascii_lowercase(), label.to_owned());
        self.write(move |m| {
            if let Some(id) = m.admin_tokens.get(&hash) {
                return id.clone();
            }
            let id = format!("{}_{label}", m.id("tok"));
            m.admin_tokens.insert(hash, id.clone());
            id
        })
    }

    fn admin_token(&self, presented: &str) -> BoxFuture<'_, LedgerResult<Option<String>>> {
        let hash = hash_secret(presented);
        self.read(move |m| m.admin_tokens.get(&hash).cloned())
    }

    fn audit(&self, entry: AuditEntry) -> BoxFuture<'_, LedgerResult<()>> {
        self.write(move |m| m.audit.push(entry))
    }

    fn audit_log(&self) -> BoxFuture<'_, LedgerResult<Vec<AuditEntry>>> {
        self.read(|m| {
            let skip = m.audit.len().saturating_sub(AUDIT_LOG_LIMIT as usize);
            m.audit[skip..].to_vec()
        })
    }

    fn account_state(
        &self,
        subject: &Subject,
    ) -> BoxFuture<'_, LedgerResult<Option<serde_json::Value>>> {
        let subject = subject.clone();
        self.read(move |m| m.accounts.get(&subject).cloned())
    }

    fn set_account_state(
        &self,
        subject: &Subject,
        state: serde_json::Value,
    ) -> BoxFuture<'_, LedgerResult<()>> {
        let subject = subject.clone();
        self.write(move |m| {
            m.accounts.insert(subject, state);
        })
    }

    fn ping(&self) -> BoxFuture<'_, LedgerResult<()>> {
        Box::pin(async { Ok(()) })
    }
}
