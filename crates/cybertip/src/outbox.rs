//! The outbox driver: walks a case's report through the CyberTipline API as
//! a persistent state machine in the store's outbox row, so that a crash or
//! kill at any point resumes where it stopped, with no lost file and no
//! second finished report.
//!
//! ```text
//! prepared ─► submit ─► [ upload(i) ─► fileinfo(i) ]* ─► finish ─► finished
//!                 ▲                │                        │
//!                 └── retract ◄────┘ (outcome unknown)      └─ 5102 on a retry: finished
//! ```
//!
//! # How a crash is survived
//!
//! The report and every file's details are built and frozen in the state
//! before the first call, so a resumed run sends exactly what the first
//! would have. Before each call the driver records its *intent* (`pending`)
//! and commits it; after the call it records the answer and clears the
//! intent in one commit (with the receipt and `Request-ID`). A run that finds
//! an intent still recorded does not know whether the server acted, and
//! resolves it by what the API allows:
//!
//! - **submit**: the report id was never learned, so the report cannot be
//!   retracted or used. It is abandoned: an unfinished report is deleted by
//!   NCMEC 24 h after it was opened (or 1 h after its last change), and only
//!   finished reports count, so it can never become a duplicate. A new one is
//!   submitted.
//! - **upload / fileinfo**: the report may or may not hold the file or its
//!   details, and neither can be checked nor undone one by one (fileinfo is
//!   at most once per file). The report is retracted (or, if NCMEC no longer
//!   has it, abandoned) and the case starts over with a new report, so the
//!   finished report holds every file exactly once, each with its details once.
//! - **finish**: finish is sent again. `0` finishes it; `5102` "already
//!   finished" means the first one did, and counts as done (its receipt was
//!   lost with the crash: the 5102 answer is stored instead); `5001` means the
//!   report expired unfinished, and the case starts over.
//! - **retract**: retract is sent again; `5101` or `5001` count as done.
//!
//! The same resolution handles an answer lost in flight (a dropped
//! connection, a timeout): an uncertain upload or fileinfo starts over at
//! once; an uncertain submit, finish or retract, which the client already
//! retried, waits for the next run.
//!
//! A report is finished only from the `finish` intent of the current
//! attempt, and the current attempt is replaced only after its report was
//! retracted, found gone, or never identified, so at most one report per
//! case is ever finished. NCMEC answering 5102 where we never finished
//! stops the report for a person rather than resubmitting.
//!
//! The store's lease keeps two drivers off one report; every commit checks
//! it, so a driver that stalled past its lease stops at its next commit, and
//! the one that took over resolves the stalled driver's intent as above.

use std::time::Duration;

use childsafe_core::{Md5, Sha256};
use childsafe_store::{AccessPurpose, CaseId, Lease, OutboxReport, Receipt, ReportStatus, Store};
use childsafe_vault::{ItemId, Vault};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    builder::BuiltReport,
    client::{Answer, Client, Exchange},
    error::Error,
    failpoint, rules,
    schema::Schema,
    xml,
};

/// The state format version written by this build.
pub const STATE_VERSION: u32 = 1;

/// What the driver keeps in the outbox row's `state` (stored JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmissionState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The frozen `<report>` document.
    pub report_xml: String,
    /// Whether it is an Appendix E batched report (exactly one file at finish).
    pub batched: bool,
    /// The files, in upload order.
    pub files: Vec<PlannedFileState>,
    /// The NCMEC report being filled, if one was submitted.
    #[serde(default)]
    pub attempt: Option<Attempt>,
    /// The call whose outcome is not recorded yet.
    #[serde(default)]
    pub pending: Option<Pending>,
    /// Earlier attempts, retracted or left to expire unfinished.
    #[serde(default)]
    pub abandoned: Vec<Abandoned>,
    /// Set when NCMEC finished the report.
    #[serde(default)]
    pub finished: Option<FinishedState>,
}

/// One file to upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFileState {
    /// The vault item.
    pub vault_item: String,
    /// SHA-256 recorded at ingest.
    pub sha256: Sha256,
    /// MD5 recorded at ingest: checked before sending and against NCMEC's answer.
    pub md5: Md5,
    /// Size in bytes (0 if unknown).
    pub size: u64,
    /// The multipart file name.
    pub file_name: String,
    /// The frozen `<fileDetails>`, with `reportId` 0 and an empty `fileId`.
    pub details_template: String,
}

/// An NCMEC report being filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// NCMEC's `reportId`.
    pub report_id: i64,
    /// Progress per planned file.
    pub files: Vec<FileProgress>,
}

/// How far one file got in the current attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// NCMEC's `fileId`, once uploaded (the MD5 it returned matched).
    pub file_id: Option<String>,
    /// Whether `/fileinfo` was accepted.
    pub fileinfo_sent: bool,
}

/// A call whose outcome is not recorded yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Pending {
    /// `/submit`.
    Submit,
    /// `/upload` of file `file` (0-based).
    Upload {
        /// Index into the planned files.
        file: usize,
    },
    /// `/fileinfo` of file `file`.
    Fileinfo {
        /// Index into the planned files.
        file: usize,
    },
    /// `/finish` of the current attempt.
    Finish,
    /// `/retract` of the current attempt.
    Retract {
        /// Why the attempt is given up.
        reason: String,
    },
}

/// An attempt given up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abandoned {
    /// Its `reportId`, if it was ever learned.
    pub report_id: Option<i64>,
    /// Why.
    pub reason: String,
    /// Whether NCMEC confirmed it retracted (otherwise it expires unfinished).
    pub retracted: bool,
}

/// The finished report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedState {
    /// NCMEC's `reportId`.
    pub report_id: i64,
    /// The `fileId`s the receipt lists (empty when the receipt was lost).
    pub files: Vec<String>,
    /// True when the finish answer was lost and a retried finish answered
    /// 5102 "already finished": the stored receipt is that 5102 answer.
    pub receipt_lost: bool,
}

impl SubmissionState {
    /// The frozen state of a built report, before any call.
    ///
    /// # Errors
    /// [`Error::Build`] if a document cannot be written.
    pub fn prepare(built: &BuiltReport) -> Result<SubmissionState, Error> {
        let report_xml = xml::report_to_xml(&built.report)?;
        let files = built
            .files
            .iter()
            .map(|file| {
                Ok(PlannedFileState {
                    vault_item: file.vault_item.clone(),
                    sha256: file.sha256,
                    md5: file.md5,
                    size: file.size,
                    file_name: file
                        .details
                        .file_name
                        .clone()
                        .unwrap_or_else(|| file.sha256.to_string()),
                    details_template: xml::file_details_to_xml(&file.details)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(SubmissionState {
            version: STATE_VERSION,
            report_xml,
            batched: built.report.batched_viral_meme,
            files,
            attempt: None,
            pending: None,
            abandoned: Vec::new(),
            finished: None,
        })
    }

    /// Reads the state of an outbox row.
    ///
    /// # Errors
    /// [`Error::Outbox`] for a row that is not prepared or from a newer build.
    pub fn from_report(report: &OutboxReport) -> Result<SubmissionState, Error> {
        let state: SubmissionState = serde_json::from_value(report.state.clone())
            .map_err(|err| Error::Outbox(format!("report {}: state: {err}", report.id)))?;
        if state.version > STATE_VERSION {
            return Err(Error::Outbox(format!(
                "report {}: state version {} is newer than this build's {STATE_VERSION}",
                report.id, state.version
            )));
        }
        Ok(state)
    }

    fn to_json(&self) -> Result<serde_json::Value, Error> {
        serde_json::to_value(self).map_err(|err| Error::Outbox(format!("state: {err}")))
    }
}

/// How a drive ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveOutcome {
    /// NCMEC finished the report.
    Finished {
        /// NCMEC's `reportId`.
        report_id: i64,
        /// True when the receipt was lost and 5102 confirmed the finish.
        receipt_lost: bool,
    },
    /// A temporary failure: the report waits until `at` (a rerun may go sooner).
    RetryLater {
        /// When the background worker would try again.
        at: OffsetDateTime,
        /// What failed.
        error: String,
    },
    /// A permanent failure: the report is stopped for a person
    /// (`childsafe report requeue` once the cause is fixed).
    Failed {
        /// What failed.
        error: String,
    },
    /// Another driver holds the report's lease (or held it when it was killed).
    Busy {
        /// Who.
        owner: Option<String>,
        /// Until when.
        until: Option<OffsetDateTime>,
    },
    /// The report had already finished before this drive.
    AlreadyFinished {
        /// NCMEC's `reportId`.
        report_id: Option<String>,
    },
}

/// Driver settings.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Who drives, as recorded in the audit log and on the lease.
    pub owner: String,
    /// How long a lease lasts; every commit extends it. A run killed while
    /// holding it blocks the next run until it expires. Default: 10 minutes.
    pub lease_for: Duration,
    /// Attempts given up before the report is stopped for a person. Default: 20.
    pub max_restarts: usize,
    /// Attempts given up in one run before the run waits (retry later)
    /// instead of starting over again at once: a server that keeps losing
    /// answers is not hammered with new reports. Default: 3.
    pub restarts_per_run: usize,
    /// When set, every document is validated against the XSD before it is sent.
    pub schema: Option<Schema>,
}

impl DriverOptions {
    /// Defaults with `owner`.
    pub fn new(owner: impl Into<String>) -> DriverOptions {
        DriverOptions {
            owner: owner.into(),
            lease_for: Duration::from_secs(600),
            max_restarts: 20,
            restarts_per_run: 3,
            schema: None,
        }
    }
}

/// The outbox driver.
#[derive(Clone, Debug)]
pub struct Driver {
    store: Store,
    vault: Vault,
    client: Client,
    options: DriverOptions,
}

/// What the loop does next. The terminal store calls consume the lease, so
/// they happen in [`Driver::drive`], which owns it.
enum Flow {
    Continue,
    Finish {
        report_id: i64,
        exchange: Exchange,
        receipt_lost: bool,
    },
    RetryLater {
        error: String,
    },
    Fail {
        error: String,
    },
}

impl Driver {
    /// A driver over a store, its vault and an API client.
    pub fn new(store: Store, vault: Vault, client: Client, options: DriverOptions) -> Driver {
        Driver {
            store,
            vault,
            client,
            options,
        }
    }

    /// Queues the case's report (once; a queued report keeps its frozen
    /// documents), then drives it until it finishes, fails, or must wait.
    /// `build` is called only if the report has not been prepared yet.
    ///
    /// # Errors
    /// Store errors, and whatever `build` returns (nothing is queued then).
    pub async fn submit_case(
        &self,
        case_id: CaseId,
        environment: &str,
        build: impl FnOnce(&childsafe_store::CaseDetail) -> Result<BuiltReport, Error>,
    ) -> Result<DriveOutcome, Error> {
        let existing = self
            .store
            .report_for_case(case_id)
            .await
            .map_err(store_error)?;
        let prepared = match &existing {
            Some(report) if report.step != "new" => None,
            _ => {
                let detail = self.store.case_detail(case_id).await.map_err(store_error)?;
                let built = build(&detail)?;
                let state = SubmissionState::prepare(&built)?;
                self.check_schema(&state)?;
                Some(state)
            }
        };
        let (report, _) = self
            .store
            .enqueue_report(case_id, environment, &self.options.owner)
            .await
            .map_err(store_error)?;
        match report.status {
            ReportStatus::Finished => {
                return Ok(DriveOutcome::AlreadyFinished {
                    report_id: report.ncmec_report_id,
                });
            }
            ReportStatus::Failed => {
                return Ok(DriveOutcome::Failed {
                    error: report.last_error.unwrap_or_else(|| "failed".to_owned()),
                });
            }
            ReportStatus::Pending => {}
        }
        let Some(mut lease) = self
            .store
            .claim_report(report.id, &self.options.owner, self.options.lease_for)
            .await
            .map_err(store_error)?
        else {
            let now = self.store.report(report.id).await.map_err(store_error)?;
            return Ok(busy(&now));
        };
        if lease.report().step == "new" {
            let Some(state) = prepared else {
                return Err(Error::Outbox(format!("report {}: not prepared", report.id)));
            };
            self.save(&mut lease, "prepared", &state, None).await?;
        }
        self.drive(lease).await
    }

    /// Claims and drives the next due report, if any (for a background worker).
    ///
    /// # Errors
    /// Store errors.
    pub async fn drive_next_due(&self) -> Result<Option<DriveOutcome>, Error> {
        let Some(lease) = self
            .store
            .claim_due_report(&self.options.owner, self.options.lease_for)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        if lease.report().step == "new" {
            // Queued by someone who has not prepared it; leave it to them.
            self.store
                .release_report(lease)
                .await
                .map_err(store_error)?;
            return Ok(None);
        }
        self.drive(lease).await.map(Some)
    }

    /// Drives a leased, prepared report until it finishes, fails, or must wait.
    ///
    /// # Errors
    /// Store errors (including a lost lease: stop, another driver has it).
    pub async fn drive(&self, mut lease: Lease) -> Result<DriveOutcome, Error> {
        let mut state = SubmissionState::from_report(lease.report())?;
        let abandoned_before = state.abandoned.len();
        loop {
            let restarts = state.abandoned.len() - abandoned_before;
            let flow = match state.pending.clone() {
                Some(pending) => self.resolve(&mut lease, &mut state, pending).await?,
                None if restarts >= self.options.restarts_per_run.max(1)
                    && state.abandoned.len() <= self.options.max_restarts =>
                {
                    Flow::RetryLater {
                        error: format!(
                            "started over {restarts} times in this run; the last because: {}",
                            state
                                .abandoned
                                .last()
                                .map(|it| it.reason.as_str())
                                .unwrap_or("")
                        ),
                    }
                }
                None => self.step(&mut lease, &mut state).await?,
            };
            match flow {
                Flow::Continue => {}
                Flow::Finish {
                    report_id,
                    exchange,
                    receipt_lost,
                } => {
                    self.store
                        .finish_report(
                            lease,
                            &report_id.to_string(),
                            &state.to_json()?,
                            &receipt(&exchange),
                        )
                        .await
                        .map_err(store_error)?;
                    failpoint::hit("finish.recorded");
                    tracing::info!(ncmec_report = report_id, receipt_lost, "report finished");
                    return Ok(DriveOutcome::Finished {
                        report_id,
                        receipt_lost,
                    });
                }
                Flow::RetryLater { error } => {
                    let attempts = lease.report().attempts;
                    let delay = Duration::from_secs(60u64.saturating_mul(1 << attempts.min(6)));
                    let report = self
                        .store
                        .retry_report_later(lease, &error, delay, None)
                        .await
                        .map_err(store_error)?;
                    return Ok(DriveOutcome::RetryLater {
                        at: report.next_attempt_at,
                        error,
                    });
                }
                Flow::Fail { error } => {
                    tracing::error!(report = lease.report().id, error = %error, "report stopped for a person");
                    self.store
                        .fail_report(lease, &error, &state.to_json()?, None)
                        .await
                        .map_err(store_error)?;
                    return Ok(DriveOutcome::Failed { error });
                }
            }
        }
    }

    /// The next call, when nothing is pending.
    async fn step(&self, lease: &mut Lease, state: &mut SubmissionState) -> Result<Flow, Error> {
        if state.abandoned.len() > self.options.max_restarts {
            let error = format!(
                "gave up after {} abandoned attempts; the last: {}",
                state.abandoned.len(),
                state
                    .abandoned
                    .last()
                    .map(|it| it.reason.as_str())
                    .unwrap_or("")
            );
            return Ok(Flow::Fail { error });
        }
        let Some(attempt) = &state.attempt else {
            return self.submit(lease, state).await;
        };
        // File by file, as the documentation draws it: upload, then its details.
        if let Some(file) = attempt.files.iter().position(|it| !it.fileinfo_sent) {
            if attempt.files[file].file_id.is_none() {
                return self.upload(lease, state, file).await;
            }
            return self.fileinfo(lease, state, file).await;
        }
        self.finish(lease, state).await
    }

    /// Resolves a call whose outcome was never recorded (module docs).
    async fn resolve(
        &self,
        lease: &mut Lease,
        state: &mut SubmissionState,
        pending: Pending,
    ) -> Result<Flow, Error> {
        match pending {
            Pending::Submit => {
                tracing::warn!(
                    report = lease.report().id,
                    "submit outcome unknown; submitting again"
                );
                state.abandoned.push(Abandoned {
                    report_id: None,
                    reason: "submit outcome unknown (crash or lost answer); any report it created was never finished and NCMEC deletes it after 24 h".to_owned(),
                    retracted: false,
                });
                state.pending = None;
                self.save(lease, "submit_unknown", state, None).await?;
                Ok(Flow::Continue)
            }
            Pending::Upload { file } | Pending::Fileinfo { file } => {
                let call = if matches!(state.pending, Some(Pending::Upload { .. })) {
                    "upload"
                } else {
                    "fileinfo"
                };
                tracing::warn!(
                    report = lease.report().id,
                    call,
                    file,
                    "outcome unknown; retracting and starting over"
                );
                state.pending = Some(Pending::Retract {
                    reason: format!(
                        "{call} of file {} outcome unknown (crash or lost answer)",
                        file + 1
                    ),
                });
                self.save(lease, "retracting", state, None).await?;
                Ok(Flow::Continue)
            }
            Pending::Finish => self.call_finish(lease, state).await,
            Pending::Retract { reason } => self.call_retract(lease, state, reason).await,
        }
    }

    async fn submit(&self, lease: &mut Lease, state: &mut SubmissionState) -> Result<Flow, Error> {
        state.pending = Some(Pending::Submit);
        self.save(lease, "submitting", state, None).await?;
        failpoint::hit("submit.before");
        let result = self.client.submit(&state.report_xml).await;
        failpoint::hit("submit.after");
        match result {
            Ok(answer) => {
                self.record_retried(lease, &answer).await?;
                let Some(report_id) = answer.response.report_id else {
                    return Err(Error::Outbox(
                        "submit answered without a reportId".to_owned(),
                    ));
                };
                state.attempt = Some(Attempt {
                    report_id,
                    files: vec![FileProgress::default(); state.files.len()],
                });
                state.pending = None;
                self.save(lease, "submitted", state, Some(&answer.exchange))
                    .await?;
                failpoint::hit("submit.recorded");
                tracing::info!(
                    report = lease.report().id,
                    ncmec_report = report_id,
                    "report submitted"
                );
                Ok(Flow::Continue)
            }
            Err(err) => self.failed(lease, state, err).await,
        }
    }

    async fn upload(
        &self,
        lease: &mut Lease,
        state: &mut SubmissionState,
        file: usize,
    ) -> Result<Flow, Error> {
        let report_id = current_report(state)?;
        let planned = state.files[file].clone();
        let item: ItemId = planned
            .vault_item
            .parse()
            .map_err(|err| Error::Outbox(format!("file {}: vault item: {err}", file + 1)))?;
        // Read before recording the intent: a vault failure sends nothing.
        let opened = match self
            .store
            .open_evidence(
                &self.vault,
                item,
                &self.options.owner,
                AccessPurpose::Upload,
                &format!("upload to NCMEC with CyberTipline report {report_id}"),
            )
            .await
        {
            Ok(opened) => opened,
            Err(err) => {
                let error = format!("file {} (vault item {item}): {err}", file + 1);
                return Ok(Flow::Fail { error });
            }
        };
        state.pending = Some(Pending::Upload { file });
        self.save(lease, "uploading", state, None).await?;
        failpoint::hit("upload.before");
        let result = self
            .client
            .upload(
                report_id,
                &planned.file_name,
                opened.content.as_bytes(),
                &planned.md5,
            )
            .await;
        drop(opened);
        failpoint::hit("upload.after");
        match result {
            Ok(answer) => {
                self.record_retried(lease, &answer).await?;
                if let Some(attempt) = &mut state.attempt {
                    attempt.files[file].file_id = answer.response.file_id.clone();
                }
                state.pending = None;
                self.save(lease, "uploaded", state, Some(&answer.exchange))
                    .await?;
                failpoint::hit("upload.recorded");
                Ok(Flow::Continue)
            }
            Err(err) => self.failed(lease, state, err).await,
        }
    }

    async fn fileinfo(
        &self,
        lease: &mut Lease,
        state: &mut SubmissionState,
        file: usize,
    ) -> Result<Flow, Error> {
        let report_id = current_report(state)?;
        let file_id = state
            .attempt
            .as_ref()
            .and_then(|it| it.files[file].file_id.clone())
            .ok_or_else(|| Error::Outbox(format!("file {}: fileinfo before upload", file + 1)))?;
        let mut details =
            xml::file_details_from_xml(state.files[file].details_template.as_bytes())?;
        details.report_id = report_id;
        details.file_id = file_id;
        let now = self.store.now();
        let body = match rules::check_file_details(&details, state.batched, now)
            .and_then(|()| xml::file_details_to_xml(&details))
            .and_then(|body| self.validate(&body).map(|()| body))
        {
            Ok(body) => body,
            Err(err) => {
                return Ok(Flow::Fail {
                    error: format!("file {}: {err}", file + 1),
                });
            }
        };
        state.pending = Some(Pending::Fileinfo { file });
        self.save(lease, "sending_fileinfo", state, None).await?;
        failpoint::hit("fileinfo.before");
        let result = self.client.fileinfo(&body).await;
        failpoint::hit("fileinfo.after");
        match result {
            Ok(answer) => {
                self.record_retried(lease, &answer).await?;
                if let Some(attempt) = &mut state.attempt {
                    attempt.files[file].fileinfo_sent = true;
                }
                state.pending = None;
                self.save(lease, "fileinfo_sent", state, Some(&answer.exchange))
                    .await?;
                failpoint::hit("fileinfo.recorded");
                Ok(Flow::Continue)
            }
            Err(err) => self.failed(lease, state, err).await,
        }
    }

    async fn finish(&self, lease: &mut Lease, state: &mut SubmissionState) -> Result<Flow, Error> {
        if state.batched
            && let Err(err) = rules::check_batched_file_count(state.files.len())
        {
            return Ok(Flow::Fail {
                error: err.to_string(),
            });
        }
        state.pending = Some(Pending::Finish);
        self.save(lease, "finishing", state, None).await?;
        self.call_finish(lease, state).await
    }

    async fn call_finish(
        &self,
        lease: &mut Lease,
        state: &mut SubmissionState,
    ) -> Result<Flow, Error> {
        let report_id = current_report(state)?;
        failpoint::hit("finish.before");
        let result = self.client.finish(report_id).await;
        failpoint::hit("finish.after");
        match result {
            Ok(answer) => {
                self.record_retried(lease, &answer).await?;
                let ours: Vec<String> = state
                    .attempt
                    .iter()
                    .flat_map(|it| it.files.iter().filter_map(|f| f.file_id.clone()))
                    .collect();
                let missing: Vec<&String> = ours
                    .iter()
                    .filter(|it| !answer.response.files.contains(it))
                    .collect();
                if !missing.is_empty() {
                    tracing::error!(report = lease.report().id, ncmec_report = report_id, missing = ?missing, "receipt does not list every uploaded file");
                }
                state.finished = Some(FinishedState {
                    report_id,
                    files: answer.response.files.clone(),
                    receipt_lost: false,
                });
                state.pending = None;
                Ok(Flow::Finish {
                    report_id,
                    exchange: answer.exchange,
                    receipt_lost: false,
                })
            }
            Err(Error::Rejected {
                code: 5102,
                description,
                http_status,
                request_id,
                ..
            }) => {
                // The first finish went through and its answer was lost.
                tracing::warn!(
                    report = lease.report().id,
                    ncmec_report = report_id,
                    "finish answered 5102: already finished"
                );
                state.finished = Some(FinishedState {
                    report_id,
                    files: Vec::new(),
                    receipt_lost: true,
                });
                state.pending = None;
                let exchange = Exchange {
                    step: "finish",
                    http_status: Some(http_status),
                    response_code: Some(5102),
                    request_id,
                    body: format!(
                        "responseCode 5102 ({description}): finished by an earlier finish whose answer was lost"
                    ),
                    error: None,
                };
                Ok(Flow::Finish {
                    report_id,
                    exchange,
                    receipt_lost: true,
                })
            }
            Err(err) => self.failed(lease, state, err).await,
        }
    }

    async fn call_retract(
        &self,
        lease: &mut Lease,
        state: &mut SubmissionState,
        reason: String,
    ) -> Result<Flow, Error> {
        let Some(attempt) = state.attempt.clone() else {
            state.pending = None;
            self.save(lease, "retracted", state, None).await?;
            return Ok(Flow::Continue);
        };
        failpoint::hit("retract.before");
        let result = self.client.retract(attempt.report_id).await;
        failpoint::hit("retract.after");
        let exchange = match result {
            Ok(answer) => {
                self.record_retried(lease, &answer).await?;
                Some(answer.exchange)
            }
            Err(Error::Rejected {
                code: 5101 | 5001, ..
            }) => None,
            Err(Error::Rejected { code: 5102, .. }) => {
                let error = format!(
                    "retract of CyberTipline report {} answered 5102: NCMEC has it finished although this outbox never recorded a finish; not resubmitting (check with NCMEC)",
                    attempt.report_id
                );
                return Ok(Flow::Fail { error });
            }
            Err(err) => return self.failed(lease, state, err).await,
        };
        state.abandoned.push(Abandoned {
            report_id: Some(attempt.report_id),
            reason,
            retracted: true,
        });
        state.attempt = None;
        state.pending = None;
        self.save(lease, "retracted", state, exchange.as_ref())
            .await?;
        failpoint::hit("retract.recorded");
        Ok(Flow::Continue)
    }

    /// A failed call, after the client's own retries.
    async fn failed(
        &self,
        lease: &mut Lease,
        state: &mut SubmissionState,
        err: Error,
    ) -> Result<Flow, Error> {
        let call = match state.pending {
            Some(Pending::Submit) => "submit",
            Some(Pending::Upload { .. }) => "upload",
            Some(Pending::Fileinfo { .. }) => "fileinfo",
            Some(Pending::Finish) => "finish",
            Some(Pending::Retract { .. }) => "retract",
            None => "call",
        };
        match &err {
            Error::Retry {
                server_may_have_acted: true,
                ..
            } if matches!(call, "upload" | "fileinfo") => {
                // Keep the intent: resolving it retracts and starts over.
                tracing::warn!(report = lease.report().id, error = %err, "outcome unknown");
                self.record_error(lease, &err).await?;
                Ok(Flow::Continue)
            }
            Error::Retry {
                server_may_have_acted,
                ..
            } => {
                if !server_may_have_acted {
                    state.pending = None;
                    let step = format!("{call}_failed");
                    self.save(lease, &step, state, None).await?;
                }
                Ok(Flow::RetryLater {
                    error: err.to_string(),
                })
            }
            Error::Rejected { code, .. } => {
                // The server answered with a failure: it did not act.
                let code = *code;
                state.pending = None;
                let gone = match code {
                    5001 => Some("NCMEC no longer has the report (deleted unfinished)"),
                    5101 => Some("NCMEC has the report retracted"),
                    _ => None,
                };
                if let (Some(why), Some(attempt), "upload" | "fileinfo" | "finish") =
                    (gone, &state.attempt, call)
                {
                    state.abandoned.push(Abandoned {
                        report_id: Some(attempt.report_id),
                        reason: format!("{call}: {why}"),
                        retracted: code == 5101,
                    });
                    state.attempt = None;
                    self.save(lease, "abandoned", state, None).await?;
                    return Ok(Flow::Continue);
                }
                if code == 5002 && call == "fileinfo" {
                    state.pending = Some(Pending::Retract {
                        reason: "fileinfo: NCMEC does not know the uploaded file".to_owned(),
                    });
                    self.save(lease, "retracting", state, None).await?;
                    return Ok(Flow::Continue);
                }
                let error = if code == 5102 {
                    format!(
                        "{err}: NCMEC has the report finished although this outbox never recorded a finish; not resubmitting (check with NCMEC)"
                    )
                } else {
                    err.to_string()
                };
                Ok(Flow::Fail { error })
            }
            // Unknown whether the server acted: keep the intent for when a
            // person has fixed the cause and requeued the report.
            Error::Permanent { .. } => Ok(Flow::Fail {
                error: err.to_string(),
            }),
            _ => Err(err),
        }
    }

    async fn save(
        &self,
        lease: &mut Lease,
        step: &str,
        state: &SubmissionState,
        exchange: Option<&Exchange>,
    ) -> Result<(), Error> {
        self.store
            .save_report_step(
                lease,
                step,
                &state.to_json()?,
                exchange.map(receipt).as_ref(),
            )
            .await
            .map_err(store_error)
    }

    async fn record_retried<T>(&self, lease: &Lease, answer: &Answer<T>) -> Result<(), Error> {
        for exchange in &answer.retried {
            self.store
                .record_receipt(lease, &receipt(exchange))
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    async fn record_error(&self, lease: &Lease, err: &Error) -> Result<(), Error> {
        let (step, request_id) = match err {
            Error::Retry {
                step, request_id, ..
            }
            | Error::Permanent {
                step, request_id, ..
            }
            | Error::Rejected {
                step, request_id, ..
            } => (*step, request_id.clone()),
            _ => ("call", None),
        };
        let exchange = Exchange {
            step,
            request_id,
            error: Some(err.to_string()),
            ..Exchange::default()
        };
        self.store
            .record_receipt(lease, &receipt(&exchange))
            .await
            .map_err(store_error)
    }

    fn check_schema(&self, state: &SubmissionState) -> Result<(), Error> {
        self.validate(&state.report_xml)?;
        for file in &state.files {
            let mut details = xml::file_details_from_xml(file.details_template.as_bytes())?;
            details.report_id = 1;
            details.file_id = "0".to_owned();
            self.validate(&xml::file_details_to_xml(&details)?)?;
        }
        Ok(())
    }

    fn validate(&self, document: &str) -> Result<(), Error> {
        match &self.options.schema {
            Some(schema) => schema.validate(document.as_bytes()),
            None => Ok(()),
        }
    }
}

fn current_report(state: &SubmissionState) -> Result<i64, Error> {
    state
        .attempt
        .as_ref()
        .map(|it| it.report_id)
        .ok_or_else(|| Error::Outbox("no submitted report".to_owned()))
}

fn busy(report: &OutboxReport) -> DriveOutcome {
    match report.status {
        ReportStatus::Finished => DriveOutcome::AlreadyFinished {
            report_id: report.ncmec_report_id.clone(),
        },
        ReportStatus::Failed => DriveOutcome::Failed {
            error: report
                .last_error
                .clone()
                .unwrap_or_else(|| "failed".to_owned()),
        },
        ReportStatus::Pending => DriveOutcome::Busy {
            owner: report.lease_owner.clone(),
            until: report.lease_until,
        },
    }
}

fn receipt(exchange: &Exchange) -> Receipt {
    let body = if exchange.body.is_empty() {
        exchange.error.clone().unwrap_or_default()
    } else {
        exchange.body.clone()
    };
    Receipt {
        step: exchange.step.to_owned(),
        http_status: exchange.http_status,
        response_code: exchange.response_code.map(i64::from),
        request_id: exchange.request_id.clone(),
        body,
    }
}

fn store_error(err: childsafe_store::Error) -> Error {
    Error::Outbox(err.to_string())
}
