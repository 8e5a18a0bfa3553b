//! Benign test data: queue entries and incidents whose hashes are of short
//! benign byte strings, standing in for real finds.

use childsafe_core::{
    Action, Category, ContentHashes, EvidenceRef, Finding, FindingSource, QUEUE_FORMAT_VERSION,
    QueueEntry, SampleLocation, SignalKind, Surface,
};
use childsafe_store::{IncidentFile, NewIncident};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Hashes of `bytes`, as the scanner would record them.
pub(crate) fn hashes(bytes: &[u8]) -> ContentHashes {
    ContentHashes {
        md5: childsafe_core::Md5(Md5::digest(bytes).into()),
        sha1: childsafe_core::Sha1(Sha1::digest(bytes).into()),
        sha256: childsafe_core::Sha256(Sha256::digest(bytes).into()),
        pdq: None,
        quality: None,
    }
}

pub(crate) fn bank_finding(entry: &str) -> Finding {
    Finding::new(
        Category::CsamKnown,
        1.0,
        FindingSource::bank("test-bank", SignalKind::Md5, entry, None),
    )
}

/// A queue entry for a sample of `host` (None: no URL, grouped by shard).
pub(crate) fn queue_entry(id: &str, host: Option<&str>, bytes: &[u8]) -> QueueEntry {
    QueueEntry {
        version: QUEUE_FORMAT_VERSION,
        id: id.to_owned(),
        found_at: "2025-12-31T12:00:00Z".to_owned(),
        location: SampleLocation {
            shard: "shards/00001.tar".to_owned(),
            key: Some(format!("sample-{id}")),
            url: host.map(|h| format!("https://{h}/images/{id}.jpg")),
            ..SampleLocation::default()
        },
        hashes: hashes(bytes),
        findings: vec![bank_finding(&format!("e-{id}"))],
        evidence: None,
    }
}

/// The same, with its preserved evidence in a vault.
pub(crate) fn queue_entry_with_evidence(
    id: &str,
    host: &str,
    bytes: &[u8],
    item: &childsafe_vault::ItemMeta,
) -> QueueEntry {
    let mut entry = queue_entry(id, Some(host), bytes);
    entry.evidence = Some(EvidenceRef {
        item_id: item.id.to_string(),
        sha256: item.sha256,
    });
    entry
}

/// A gateway incident by `user`.
pub(crate) fn incident(user: &str, category: Category, surface: Surface) -> NewIncident {
    NewIncident {
        tenant: "acme".to_owned(),
        end_user: Some(user.to_owned()),
        surface,
        action: Action::Block,
        categories: vec![category],
        findings: vec![Finding::new(
            category,
            0.97,
            FindingSource::detector("text.solicitation"),
        )],
        files: Vec::new(),
        text_sha256: None,
        request_id: Some(format!("req-{user}")),
        stage: None,
        report: false,
    }
}

/// An incident with one image file (benign bytes standing in).
pub(crate) fn image_incident(
    user: &str,
    surface: Surface,
    bytes: &[u8],
    vault_item: Option<childsafe_vault::ItemId>,
) -> NewIncident {
    NewIncident {
        categories: vec![Category::CsamKnown],
        findings: vec![bank_finding("e-img")],
        files: vec![IncidentFile {
            hashes: hashes(bytes),
            vault_item,
        }],
        ..incident(user, Category::CsamKnown, surface)
    }
}
