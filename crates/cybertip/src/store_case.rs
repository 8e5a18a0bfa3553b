//! Reads a case from the store into the builder's [`CaseFacts`].
//!
//! The store keeps each case item's origin, its `generative_ai` flag (true by
//! default for model output, reviewer-settable), where it was found, and,
//! for its vault item, the hashes taken at ingest and whether a person ever
//! viewed it. This module only translates; the decisions are the builder's.

use std::collections::BTreeSet;

use childsafe_core::{Category, Finding};
use childsafe_store::{CaseDetail, CaseItemKind, FileOrigin as StoreOrigin, ItemLocation};

use crate::{
    builder::{CaseFacts, CaseSource, FileFacts, FileOrigin, ReportOverrides, ReportedUser},
    error::Error,
    model::FileRelevance,
};

/// The facts of a stored case, for [`crate::builder::build_report`].
///
/// # Errors
/// [`Error::Build`] if the case has no items, or a file's evidence record is
/// missing, destroyed, or has no MD5 (NCMEC checks uploads by MD5).
pub fn case_facts(detail: &CaseDetail, overrides: ReportOverrides) -> Result<CaseFacts, Error> {
    let case = &detail.case;
    let Some(incident_time) = detail.items.iter().map(|it| it.found_at).min() else {
        return Err(Error::Build(format!(
            "case {}: no items to report",
            case.id
        )));
    };
    let kinds: BTreeSet<CaseItemKind> = detail.items.iter().map(|it| it.kind).collect();
    let source = if kinds.iter().all(|it| *it == CaseItemKind::QueueEntry) {
        CaseSource::DatasetScan
    } else if kinds.iter().all(|it| *it == CaseItemKind::UserReport) {
        CaseSource::UserReport
    } else {
        CaseSource::Gateway
    };
    let user = match (&case.tenant, &case.end_user) {
        (Some(tenant), Some(user)) => Some(format!("{tenant}/{user}")),
        (Some(tenant), None) => Some(tenant.clone()),
        (None, Some(user)) => Some(user.clone()),
        (None, None) => None,
    }
    .map(|esp_identifier| ReportedUser {
        esp_identifier,
        ..ReportedUser::default()
    });

    let mut findings: Vec<Finding> = Vec::new();
    for item in &detail.items {
        for finding in &item.findings {
            if !findings.contains(finding) {
                findings.push(finding.clone());
            }
        }
    }

    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    for item in &detail.items {
        let Some(vault_item) = item.vault_item else {
            continue;
        };
        if !seen.insert(vault_item) {
            continue;
        }
        let evidence = detail
            .evidence
            .iter()
            .find(|it| it.id == vault_item)
            .ok_or_else(|| {
                Error::Build(format!(
                    "case {}: evidence item {vault_item} has no record",
                    case.id
                ))
            })?;
        if evidence.destroyed_at.is_some() {
            return Err(Error::Build(format!(
                "case {}: evidence item {vault_item} was destroyed; it cannot be reported",
                case.id
            )));
        }
        let md5 = evidence
            .md5
            .or_else(|| item.hashes.as_ref().map(|it| it.md5))
            .ok_or_else(|| {
                Error::Build(format!(
                    "case {}: evidence item {vault_item} has no MD5 recorded",
                    case.id
                ))
            })?;
        let origin = match (item.origin, &item.location) {
            (StoreOrigin::TrainingData, Some(ItemLocation::Dataset(location))) => {
                FileOrigin::TrainingData {
                    dataset: location.shard.clone(),
                    key: location.key.clone(),
                    row: location.row,
                    url: location.url.clone(),
                }
            }
            (StoreOrigin::TrainingData, _) => FileOrigin::TrainingData {
                dataset: "unknown dataset".to_owned(),
                key: None,
                row: None,
                url: None,
            },
            (StoreOrigin::ModelOutput, location) => FileOrigin::ModelOutput {
                request_id: gateway_request(location),
            },
            (StoreOrigin::UserInput, location) => FileOrigin::UserInput {
                request_id: gateway_request(location),
            },
            (StoreOrigin::UserReport, location) => FileOrigin::UserReport {
                response_id: match location {
                    Some(ItemLocation::UserReport { response_id }) => response_id.clone(),
                    _ => None,
                },
            },
        };
        let abuse = item.categories.iter().any(|it: &Category| it.is_abuse());
        files.push(FileFacts {
            vault_item: vault_item.to_string(),
            sha256: evidence.sha256,
            md5,
            pdq: item.hashes.as_ref().and_then(|it| it.pdq),
            size: evidence.size.unwrap_or(0),
            origin,
            generative_ai: item.generative_ai,
            original_file_name: None,
            received_at: Some(item.found_at),
            viewed_by_esp: evidence.viewed,
            exif_viewed_by_esp: false,
            relevance: if abuse {
                FileRelevance::Reported
            } else {
                FileRelevance::SupplementalReported
            },
        });
    }

    Ok(CaseFacts {
        case_id: case.id.to_string(),
        categories: case.categories.clone(),
        findings,
        incident_time,
        source,
        user,
        files,
        overrides,
    })
}

fn gateway_request(location: &Option<ItemLocation>) -> Option<String> {
    match location {
        Some(ItemLocation::Gateway { request_id, .. }) => request_id.clone(),
        _ => None,
    }
}
