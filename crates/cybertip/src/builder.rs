//! From a confirmed case to a `<report>` and one `<fileDetails>` per file.
//!
//! The input is [`CaseFacts`], a plain description of a case that the store
//! adapter fills in; this module decides what NCMEC is told:
//!
//! - the incident type and report annotations, from the case's categories
//!   ([`incident_for`]);
//! - `generativeAi` only for files whose [`FileOrigin`] says the content is
//!   model output or AI-altered. Material found in training data never gets
//!   the flag: its origin goes in `locationOfFile` and `additionalInfo`
//!   (API-NOTES §3, "Lesson");
//! - `fileViewedByEsp` true only when the store recorded an actual view;
//! - `originalFileHash` from the vault's hashes of the original bytes.
//!
//! Nothing here reads content: the report carries ids, hashes, categories and
//! where things were found, and the files themselves go up separately.

use childsafe_core::{Category, Finding, Md5, PdqHash, Sha256, SourceKind};
use time::OffsetDateTime;

use crate::{
    config::ReporterConfig,
    error::Error,
    model::{
        Details, DetailsType, FileAnnotations, FileDetails, FileHash, FileRelevance,
        IncidentSummary, IncidentType, InternetDetails, IpCaptureEvent, PersonOrUserReported,
        Report, ReportAnnotations,
    },
    rules,
};

/// What the store knows about a case, in the terms a report needs.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseFacts {
    /// The case id, quoted in `additionalInfo` so NCMEC and we can refer to it.
    pub case_id: String,
    /// The case's categories (context categories are ignored).
    pub categories: Vec<Category>,
    /// The findings behind them: bank names, entry ids, detector names, scores.
    pub findings: Vec<Finding>,
    /// When the incident happened (the earliest event of the case).
    pub incident_time: OffsetDateTime,
    /// Where the case came from.
    pub source: CaseSource,
    /// The end user the case is about, if any (none for training data).
    pub user: Option<ReportedUser>,
    /// The files to upload, in order.
    pub files: Vec<FileFacts>,
    /// Reviewer choices that override the category mapping.
    pub overrides: ReportOverrides,
}

/// Where a case came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseSource {
    /// The inference gateway: a request to or a response from our model.
    Gateway,
    /// A user report about content our model produced.
    UserReport,
    /// A dataset scan (training data).
    DatasetScan,
}

/// The end user a case is about.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReportedUser {
    /// Our id for the user: `espIdentifier` (at most 255 characters).
    pub esp_identifier: String,
    /// The user's screen name, if the service has one.
    pub screen_name: Option<String>,
    /// Email addresses on the account.
    pub emails: Vec<String>,
    /// IP addresses and when they were seen.
    pub ip_events: Vec<IpCaptureEvent>,
    /// When the account was disabled because of this case, if it was.
    pub disabled_at: Option<OffsetDateTime>,
}

/// One file of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// The vault item holding the original bytes.
    pub vault_item: String,
    /// SHA-256 of the original bytes, taken at ingest.
    pub sha256: Sha256,
    /// MD5 of the original bytes, taken at ingest; checked against what NCMEC received.
    pub md5: Md5,
    /// PDQ hash, when the file is an image that decoded.
    pub pdq: Option<PdqHash>,
    /// Size in bytes.
    pub size: u64,
    /// How the file came to exist.
    pub origin: FileOrigin,
    /// Whether the file content is believed to be model output or AI-altered
    /// (the store's per-item flag: true by default for model output, set by a
    /// reviewer otherwise). Written as `<generativeAi/>`; refused for training data.
    pub generative_ai: bool,
    /// The name the user gave the file, if they uploaded it.
    pub original_file_name: Option<String>,
    /// When the file reached us (or was generated).
    pub received_at: Option<OffsetDateTime>,
    /// True only if the store recorded a person viewing the file.
    pub viewed_by_esp: bool,
    /// True only if the store recorded a person viewing the file's EXIF.
    pub exif_viewed_by_esp: bool,
    /// Reported, or context for the report.
    pub relevance: FileRelevance,
}

/// How a file came to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOrigin {
    /// Output of our model, seen by the gateway.
    ModelOutput {
        /// The gateway's request id, if known.
        request_id: Option<String>,
    },
    /// A file an end user sent to our model (an input).
    UserInput {
        /// The gateway's request id, if known.
        request_id: Option<String>,
    },
    /// Attached to a user report: typically a generation someone reported.
    UserReport {
        /// The response the reporter flagged, if known.
        response_id: Option<String>,
    },
    /// Found in a training dataset by the scanner. Never annotated
    /// `generativeAi`: its origin goes in `locationOfFile` and `additionalInfo`.
    TrainingData {
        /// The dataset input (shard file, table).
        dataset: String,
        /// The sample key, if any.
        key: Option<String>,
        /// The row, for tabular inputs.
        row: Option<u64>,
        /// The sample's source URL, as recorded in the dataset.
        url: Option<String>,
    },
}

/// Reviewer choices that override the category mapping.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReportOverrides {
    /// The incident type, when the categories do not decide it (for example a
    /// case whose only category is `minor_sexualization`).
    pub incident_type: Option<IncidentType>,
    /// Annotations to add (`minorToMinorInteraction`, `sadisticOnlineExploitation`, ...).
    pub annotations: ReportAnnotations,
    /// Text for `escalateToHighPriority`: set only when a child is at immediate risk.
    pub escalate: Option<String>,
}

/// A report ready to submit: the report itself and the per-file plan.
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltReport {
    /// The `<report>`.
    pub report: Report,
    /// One entry per file, in upload order.
    pub files: Vec<PlannedFile>,
}

/// One file to upload, with its `<fileDetails>` minus the ids NCMEC assigns.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFile {
    /// The vault item holding the bytes.
    pub vault_item: String,
    /// SHA-256 of the original bytes.
    pub sha256: Sha256,
    /// MD5 of the original bytes.
    pub md5: Md5,
    /// Size in bytes.
    pub size: u64,
    /// The details to send, with `report_id` 0 and an empty `file_id` until upload.
    pub details: FileDetails,
}

/// The incident type and report annotations for a set of categories.
///
/// | category | incidentType | annotation |
/// |---|---|---|
/// | `csam_known`, `csam_suspected` | Child Pornography (possession, manufacture, and distribution) | |
/// | `grooming` | Online Enticement of Children for Sexual Acts | |
/// | `sextortion` | Online Enticement of Children for Sexual Acts | `sextortion` |
/// | `csam_solicitation` | Child Pornography (...) unless enticement applies | `csamSolicitation` |
/// | `minor_sexualization` alone | chosen by the reviewer (`overrides.incident_type`) | |
///
/// Imagery outranks enticement, enticement outranks a bare solicitation (a
/// solicitation inside a grooming conversation is enticement); NCMEC counts
/// sextortion as a form of online enticement.
///
/// # Errors
/// [`Error::Build`] if no category maps to a reportable incident and the
/// reviewer chose none (help-seeking alone is never reportable).
pub fn incident_for(
    categories: &[Category],
    overrides: &ReportOverrides,
) -> Result<(IncidentType, ReportAnnotations), Error> {
    let has = |category: Category| categories.contains(&category);
    let mut annotations = overrides.annotations;
    if has(Category::CsamSolicitation) {
        annotations.csam_solicitation = true;
    }
    if has(Category::Sextortion) {
        annotations.sextortion = true;
    }
    let mapped = if has(Category::CsamKnown) || has(Category::CsamSuspected) {
        Some(IncidentType::ChildPornography)
    } else if has(Category::Grooming) || has(Category::Sextortion) {
        Some(IncidentType::OnlineEnticement)
    } else if has(Category::CsamSolicitation) {
        Some(IncidentType::ChildPornography)
    } else {
        None
    };
    match overrides.incident_type.or(mapped) {
        Some(incident) => Ok((incident, annotations)),
        None => {
            let names: Vec<&str> = categories.iter().map(|it| it.as_str()).collect();
            Err(Error::Build(format!(
                "categories [{}]: expected one that maps to an NCMEC incident type (csam_known, csam_suspected, csam_solicitation, grooming, sextortion), got none; a reviewer can choose one with --incident-type",
                names.join(", ")
            )))
        }
    }
}

/// Builds the report and the file plan for a case, and checks them against
/// the documented rules as of `now`.
///
/// # Errors
/// [`Error::Build`] if the categories map to nothing or the reporter email is
/// missing; [`Error::Rules`] if a field breaks a documented rule.
pub fn build_report(
    case: &CaseFacts,
    config: &ReporterConfig,
    now: OffsetDateTime,
) -> Result<BuiltReport, Error> {
    let (incident_type, annotations) = incident_for(&case.categories, &case.overrides)?;
    let platform = config.service.platform.clone();
    let incident_date_time_description = Some(
        match case.source {
            CaseSource::Gateway => "Time our service received the first request or produced the first output in this case.",
            CaseSource::UserReport => "Time the reported output was produced by our service.",
            CaseSource::DatasetScan => "Time the material was found while scanning a training dataset.",
        }
        .to_owned(),
    );
    let internet_details = internet_details(case, config);
    let persons_reported = case
        .user
        .iter()
        .map(|user| person_reported(user, platform.as_deref()))
        .collect();
    let report = Report {
        batched_viral_meme: false,
        incident_summary: IncidentSummary {
            incident_type,
            platform: platform.clone(),
            escalate_to_high_priority: case.overrides.escalate.clone(),
            annotations,
            incident_date_time: case.incident_time,
            incident_date_time_description,
        },
        internet_details,
        reporter: config.reporter()?,
        persons_reported,
        additional_info: Some(report_additional_info(case)),
        unmodelled: Vec::new(),
    };
    rules::check_report(&report, now)?;

    let mut files = Vec::with_capacity(case.files.len());
    for (idx, file) in case.files.iter().enumerate() {
        if file.generative_ai && matches!(file.origin, FileOrigin::TrainingData { .. }) {
            return Err(Error::Build(format!(
                "file {} (vault item {}): generativeAi is for model output and AI-altered files, got it on material found in training data; its origin goes in locationOfFile and additionalInfo instead",
                idx + 1,
                file.vault_item
            )));
        }
        let details = file_details(file, idx);
        // Check the template now, with placeholder ids, so a bad field fails
        // before anything is sent rather than half way through a report.
        let mut probe = details.clone();
        probe.report_id = 1;
        probe.file_id = "0".to_owned();
        rules::check_file_details(&probe, false, now)?;
        files.push(PlannedFile {
            vault_item: file.vault_item.clone(),
            sha256: file.sha256,
            md5: file.md5,
            size: file.size,
            details,
        });
    }
    Ok(BuiltReport { report, files })
}

fn internet_details(case: &CaseFacts, config: &ReporterConfig) -> Vec<InternetDetails> {
    match case.source {
        CaseSource::Gateway | CaseSource::UserReport => {
            let additional_info = Some(
                match case.source {
                    CaseSource::Gateway => "Requests to and outputs of the reporting company's hosted generative AI service.",
                    _ => "Output of the reporting company's hosted generative AI service, reported by a user.",
                }
                .to_owned(),
            );
            vec![InternetDetails::WebPage {
                urls: config.service.url.iter().cloned().collect(),
                additional_info,
                third_party_hosted_content: None,
            }]
        }
        CaseSource::DatasetScan => {
            let mut urls: Vec<String> = Vec::new();
            for file in &case.files {
                if let FileOrigin::TrainingData { url: Some(url), .. } = &file.origin
                    && !urls.contains(url)
                    && url.encode_utf16().count() <= rules::MAX_URL
                {
                    urls.push(url.clone());
                }
            }
            vec![InternetDetails::WebPage {
                third_party_hosted_content: (!urls.is_empty()).then_some(true),
                urls,
                additional_info: Some(
                    "Material found while scanning a dataset collected for model training; the URLs are where the dataset recorded it was collected from."
                        .to_owned(),
                ),
            }]
        }
    }
}

fn person_reported(user: &ReportedUser, platform: Option<&str>) -> PersonOrUserReported {
    let person = (!user.emails.is_empty()).then(|| crate::model::Person {
        emails: user
            .emails
            .iter()
            .map(|address| crate::model::Email {
                address: address.clone(),
                ..crate::model::Email::default()
            })
            .collect(),
        ..crate::model::Person::default()
    });
    PersonOrUserReported {
        person,
        esp_identifier: Some(user.esp_identifier.clone()),
        esp_service: platform.map(|it| truncate_chars(it, rules::MAX_ESP_SERVICE)),
        screen_name: user.screen_name.clone(),
        ip_capture_events: user.ip_events.clone(),
        account_permanently_disabled: user.disabled_at.map(|at| crate::model::AccountDisabled {
            disabled: true,
            disabled_date: Some(at),
            user_notified: None,
            user_notified_date: None,
            reenabled_date: None,
        }),
        ..PersonOrUserReported::default()
    }
}

fn report_additional_info(case: &CaseFacts) -> String {
    let categories: Vec<&str> = case
        .categories
        .iter()
        .filter(|it| !it.is_context())
        .map(|it| it.as_str())
        .collect();
    let mut text = format!(
        "childsafe case {}. Categories: {}.",
        case.case_id,
        categories.join(", ")
    );
    let mut reasons: Vec<String> = Vec::new();
    for finding in &case.findings {
        let source = &finding.source;
        let reason = match source.kind {
            SourceKind::Bank => format!(
                "hash list {} entry {}{}{}",
                source.name,
                source.entry_id.as_deref().unwrap_or("?"),
                source
                    .signal
                    .map(|it| format!(" ({it}"))
                    .unwrap_or_default(),
                match (source.signal, source.distance) {
                    (Some(_), Some(distance)) => format!(", distance {distance})"),
                    (Some(_), None) => ")".to_owned(),
                    _ => String::new(),
                }
            ),
            kind => format!(
                "{} {} score {:.2}",
                kind.as_str(),
                source.name,
                finding.score
            ),
        };
        let reason = format!("{}: {reason}", finding.category);
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if !reasons.is_empty() {
        text.push_str(" Detected by: ");
        text.push_str(&reasons.join("; "));
        text.push('.');
    }
    text.push_str(
        " Uploaded files are the original bytes, unmodified; their content and the related records are preserved for at least one year from this report.",
    );
    text
}

fn file_details(file: &FileFacts, idx: usize) -> FileDetails {
    let mut additional_info = Vec::new();
    let mut location_of_file = None;
    match &file.origin {
        FileOrigin::ModelOutput { request_id } => {
            let mut text = "Output of the reporting company's generative AI service".to_owned();
            if let Some(id) = request_id {
                text.push_str(&format!(", request {id}"));
            }
            text.push('.');
            additional_info.push(text);
        }
        FileOrigin::UserInput { request_id } => {
            let mut text =
                "Sent to the reporting company's generative AI service by the reported user"
                    .to_owned();
            if let Some(id) = request_id {
                text.push_str(&format!(", request {id}"));
            }
            text.push('.');
            additional_info.push(text);
        }
        FileOrigin::UserReport { response_id } => {
            let mut text =
                "Attached to a report made to the reporting company by a user".to_owned();
            if let Some(id) = response_id {
                text.push_str(&format!(" about output {id}"));
            }
            text.push('.');
            additional_info.push(text);
        }
        FileOrigin::TrainingData {
            dataset,
            key,
            row,
            url,
        } => {
            // Where it came from is the actionable part of a training-data find
            // (API-NOTES §3): the URL if the dataset recorded one, and the
            // dataset location in additionalInfo.
            if let Some(url) = url
                && url.encode_utf16().count() <= rules::MAX_URL
            {
                location_of_file = Some(url.clone());
            }
            let mut text = format!("Found in a dataset collected for model training: {dataset}");
            if let Some(key) = key {
                text.push_str(&format!(", sample {key}"));
            }
            if let Some(row) = row {
                text.push_str(&format!(", row {row}"));
            }
            if let Some(url) = url {
                text.push_str(&format!(", recorded source URL {url}"));
            }
            text.push_str(". Not generated by the reporting company's model.");
            additional_info.push(text);
        }
    }
    if !file.viewed_by_esp {
        additional_info.push("No person at the reporting company viewed this file.".to_owned());
    }
    let details = file
        .pdq
        .iter()
        .map(|pdq| Details {
            kind: Some(DetailsType::Hash),
            pairs: vec![("PDQ".to_owned(), pdq.to_string())],
        })
        .collect();
    FileDetails {
        report_id: 0,
        file_id: String::new(),
        file_name: Some(format!(
            "file-{:02}-{}",
            idx + 1,
            &file.sha256.to_string()[..16]
        )),
        original_file_name: file.original_file_name.clone(),
        uploaded_to_esp_timestamp: file.received_at,
        location_of_file,
        file_viewed_by_esp: Some(file.viewed_by_esp),
        exif_viewed_by_esp: Some(file.exif_viewed_by_esp),
        publicly_available: None,
        file_relevance: Some(file.relevance),
        annotations: FileAnnotations {
            generative_ai: file.generative_ai,
            ..FileAnnotations::default()
        },
        industry_classification: None,
        original_file_hashes: vec![
            FileHash {
                hash_type: "MD5".to_owned(),
                value: file.md5.to_string(),
            },
            FileHash {
                hash_type: "SHA256".to_owned(),
                value: file.sha256.to_string(),
            },
        ],
        ip_capture_event: None,
        device_ids: Vec::new(),
        details,
        additional_info,
    }
}

fn truncate_chars(text: &str, max_utf16: usize) -> String {
    let mut res = String::new();
    let mut used = 0;
    for ch in text.chars() {
        used += ch.len_utf16();
        if used > max_utf16 {
            break;
        }
        res.push(ch);
    }
    res
}
