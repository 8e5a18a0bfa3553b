//! NCMEC's documented rules that the XSD does not express (API-NOTES §0.6,
//! §1.5, §2): lengths, ranges, dates in the past, required-by-documentation
//! fields, and the Appendix E restrictions on batched reports.
//!
//! Every violation names its field as an element path, e.g.
//! `report/personOrUserReported[1]/espIdentifier: expected at most 255
//! characters, got 300`. All violations of a document are reported together.
//! Lengths are counted in UTF-16 code units, the unit of NCMEC's Java
//! server, which is never less than the number of characters.
//!
//! The same checks run before we send a document and in the fake server when
//! it receives one.

use time::OffsetDateTime;

use crate::{
    error::{Error, Violations},
    model::{
        AccountDisabled, Address, DeviceId, Email, FileDetails, FileRelevance, InternetDetails,
        IpCaptureEvent, Person, Phone, Report,
    },
};

/// `espIdentifier`: at most 255 characters.
pub const MAX_ESP_IDENTIFIER: usize = 255;
/// `espService`: at most 100 characters.
pub const MAX_ESP_SERVICE: usize = 100;
/// Every URL (`url`, `profileUrl`, `locationOfFile`, `legalURL`): at most 2083 characters.
pub const MAX_URL: usize = 2083;
/// `platform`: at most 256 characters.
pub const MAX_PLATFORM: usize = 256;
/// `escalateToHighPriority` and `incidentDateTimeDescription`: at most 3000 characters.
pub const MAX_LONG_TEXT: usize = 3000;
/// `originalFileName`: at most 2056 characters.
pub const MAX_ORIGINAL_FILE_NAME: usize = 2056;
/// `originalFileHash` values and `details/nameValuePair/name`: at most 64 characters.
pub const MAX_HASH_OR_NAME: usize = 64;
/// `age`: 0 to 150.
pub const MAX_AGE: i32 = 150;

/// Checks a `<report>` against the documented rules, as of `now`.
///
/// # Errors
/// [`Error::Rules`] listing every violation.
pub fn check_report(report: &Report, now: OffsetDateTime) -> Result<(), Error> {
    let mut v = Check {
        out: Violations::default(),
        now,
    };
    let summary = &report.incident_summary;
    let path = "report/incidentSummary";
    v.text(
        &format!("{path}/platform"),
        summary.platform.as_deref(),
        Some(MAX_PLATFORM),
    );
    if let Some(escalate) = &summary.escalate_to_high_priority {
        let field = format!("{path}/escalateToHighPriority");
        if escalate.trim().is_empty() {
            v.out.push(
                &field,
                "expected a reason for escalating, got blank text (leave the element out not to escalate)",
            );
        }
        v.text(&field, Some(escalate), Some(MAX_LONG_TEXT));
    }
    v.past(
        &format!("{path}/incidentDateTime"),
        Some(summary.incident_date_time),
    );
    v.text(
        &format!("{path}/incidentDateTimeDescription"),
        summary.incident_date_time_description.as_deref(),
        Some(MAX_LONG_TEXT),
    );

    for (idx, details) in report.internet_details.iter().enumerate() {
        let path = format!("report/internetDetails[{}]", idx + 1);
        match details {
            InternetDetails::WebPage {
                urls,
                additional_info,
                ..
            } => {
                for (url_idx, url) in urls.iter().enumerate() {
                    v.url(&format!("{path}/webPageIncident/url[{}]", url_idx + 1), url);
                }
                v.text(
                    &format!("{path}/webPageIncident/additionalInfo"),
                    additional_info.as_deref(),
                    None,
                );
            }
            InternetDetails::ChatIm {
                chat_client,
                chat_room_name,
                additional_info,
            } => {
                let path = format!("{path}/chatImIncident");
                v.text(&format!("{path}/chatClient"), chat_client.as_deref(), None);
                v.text(
                    &format!("{path}/chatRoomName"),
                    chat_room_name.as_deref(),
                    None,
                );
                v.text(
                    &format!("{path}/additionalInfo"),
                    additional_info.as_deref(),
                    None,
                );
            }
            InternetDetails::Other { .. } => {}
        }
    }

    let reporter = &report.reporter;
    v.person(
        "report/reporter/reportingPerson",
        &reporter.reporting_person,
    );
    if reporter.reporting_person.emails.is_empty() {
        v.out.push(
            "report/reporter/reportingPerson/email",
            "required by NCMEC's documentation: expected at least one email address, got none",
        );
    }
    if let Some(contact) = &reporter.contact_person {
        let path = "report/reporter/contactPerson";
        v.text(
            &format!("{path}/firstName"),
            contact.first_name.as_deref(),
            None,
        );
        v.text(
            &format!("{path}/lastName"),
            contact.last_name.as_deref(),
            None,
        );
        v.phones(path, &contact.phones);
        v.emails(path, &contact.emails);
        v.addresses(path, &contact.addresses);
    }
    v.text(
        "report/reporter/companyTemplate",
        reporter.company_template.as_deref(),
        None,
    );
    v.text(
        "report/reporter/termsOfService",
        reporter.terms_of_service.as_deref(),
        None,
    );
    if let Some(url) = &reporter.legal_url {
        v.url("report/reporter/legalURL", url);
    }

    if !report.batched_viral_meme && report.persons_reported.len() > 1 {
        v.out.push(
            "report/personOrUserReported",
            format!(
                "expected at most one reported person or user (several only in a batched report), got {}",
                report.persons_reported.len()
            ),
        );
    }
    for (idx, person) in report.persons_reported.iter().enumerate() {
        let path = format!("report/personOrUserReported[{}]", idx + 1);
        if let Some(details) = &person.person {
            v.person(&format!("{path}/personOrUserReportedPerson"), details);
        }
        v.text(
            &format!("{path}/espIdentifier"),
            person.esp_identifier.as_deref(),
            Some(MAX_ESP_IDENTIFIER),
        );
        v.text(
            &format!("{path}/espService"),
            person.esp_service.as_deref(),
            Some(MAX_ESP_SERVICE),
        );
        v.text(
            &format!("{path}/screenName"),
            person.screen_name.as_deref(),
            None,
        );
        for (name_idx, name) in person.display_names.iter().enumerate() {
            v.text(
                &format!("{path}/displayName[{}]", name_idx + 1),
                Some(name),
                None,
            );
        }
        for (url_idx, url) in person.profile_urls.iter().enumerate() {
            v.url(&format!("{path}/profileUrl[{}]", url_idx + 1), url);
        }
        for (event_idx, event) in person.ip_capture_events.iter().enumerate() {
            v.ip_event(&format!("{path}/ipCaptureEvent[{}]", event_idx + 1), event);
        }
        for (device_idx, device) in person.device_ids.iter().enumerate() {
            v.device(&format!("{path}/deviceId[{}]", device_idx + 1), device);
        }
        for (report_idx, prior) in person.prior_ct_reports.iter().enumerate() {
            if *prior <= 0 {
                v.out.push(
                    format!("{path}/priorCTReports[{}]", report_idx + 1),
                    format!("expected a CyberTipline report id (a positive number), got {prior}"),
                );
            }
        }
        v.text(
            &format!("{path}/groupIdentifier"),
            person.group_identifier.as_deref(),
            None,
        );
        if let Some(disabled) = &person.account_temporarily_disabled {
            v.disabled(&format!("{path}/accountTemporarilyDisabled"), disabled);
        }
        if let Some(disabled) = &person.account_permanently_disabled {
            v.disabled(&format!("{path}/accountPermanentlyDisabled"), disabled);
        }
        v.text(
            &format!("{path}/additionalInfo"),
            person.additional_info.as_deref(),
            None,
        );
    }
    v.text(
        "report/additionalInfo",
        report.additional_info.as_deref(),
        None,
    );

    if report.batched_viral_meme {
        check_batched_report(report, &mut v.out);
    }
    v.out.into_result()
}

/// Appendix E: what a `VIRAL_POTENTIAL_MEME` batched report may not carry.
fn check_batched_report(report: &Report, out: &mut Violations) {
    const WHY: &str = "not allowed in a VIRAL_POTENTIAL_MEME batched report (Appendix E)";
    if report.incident_summary.escalate_to_high_priority.is_some() {
        out.push("report/incidentSummary/escalateToHighPriority", WHY);
    }
    if !report.internet_details.is_empty() {
        out.push("report/internetDetails", WHY);
    }
    if report.additional_info.is_some() {
        out.push("report/additionalInfo", WHY);
    }
    for forbidden in [
        "report/lawEnforcement",
        "report/intendedRecipient",
        "report/victim",
    ] {
        if report.unmodelled.iter().any(|it| it == forbidden) {
            out.push(forbidden, WHY);
        }
    }
    if report.persons_reported.is_empty() {
        out.push(
            "report/personOrUserReported",
            "expected at least one reported user in a batched report, got none",
        );
    }
    for (idx, person) in report.persons_reported.iter().enumerate() {
        let path = format!("report/personOrUserReported[{}]", idx + 1);
        let only_identifier = person.esp_identifier.is_some()
            && crate::model::PersonOrUserReported {
                esp_identifier: None,
                ..person.clone()
            } == crate::model::PersonOrUserReported::default();
        let unmodelled = report
            .unmodelled
            .iter()
            .any(|it| it.starts_with(&format!("{path}/")));
        if !only_identifier || unmodelled {
            out.push(
                path,
                "expected espIdentifier and nothing else in a batched report (Appendix E)",
            );
        }
    }
}

/// Checks a `<fileDetails>` against the documented rules, as of `now`;
/// `batched` says whether its report is an Appendix E batched report.
///
/// # Errors
/// [`Error::Rules`] listing every violation.
pub fn check_file_details(
    file: &FileDetails,
    batched: bool,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let mut v = Check {
        out: Violations::default(),
        now,
    };
    let path = "fileDetails";
    if file.report_id <= 0 {
        v.out.push(
            format!("{path}/reportId"),
            format!("expected a positive report id, got {}", file.report_id),
        );
    }
    if file.file_id.trim().is_empty() {
        v.out.push(
            format!("{path}/fileId"),
            "expected the fileId /upload returned, got blank",
        );
    }
    v.text(&format!("{path}/fileId"), Some(&file.file_id), None);
    v.text(&format!("{path}/fileName"), file.file_name.as_deref(), None);
    v.text(
        &format!("{path}/originalFileName"),
        file.original_file_name.as_deref(),
        Some(MAX_ORIGINAL_FILE_NAME),
    );
    v.past(
        &format!("{path}/uploadedToEspTimestamp"),
        file.uploaded_to_esp_timestamp,
    );
    if let Some(url) = &file.location_of_file {
        v.url(&format!("{path}/locationOfFile"), url);
    }
    if file.exif_viewed_by_esp == Some(true) && file.file_viewed_by_esp != Some(true) {
        v.out.push(
            format!("{path}/fileViewedByEsp"),
            "expected true when exifViewedByEsp is true, got false or nothing",
        );
    }
    if file.file_relevance == Some(FileRelevance::SupplementalReported) {
        if file.annotations.potential_meme {
            v.out.push(
                format!("{path}/fileAnnotations/potentialMeme"),
                "not allowed on a Supplemental Reported file",
            );
        }
        if file.industry_classification.is_some() {
            v.out.push(
                format!("{path}/industryClassification"),
                "not allowed on a Supplemental Reported file",
            );
        }
    }
    for (idx, hash) in file.original_file_hashes.iter().enumerate() {
        let field = format!("{path}/originalFileHash[{}]", idx + 1);
        if hash.hash_type.trim().is_empty() {
            v.out.push(
                format!("{field}/@hashType"),
                "expected a hash type such as MD5, got blank",
            );
        }
        v.text(&format!("{field}/@hashType"), Some(&hash.hash_type), None);
        v.text(&field, Some(&hash.value), Some(MAX_HASH_OR_NAME));
    }
    if let Some(event) = &file.ip_capture_event {
        v.ip_event(&format!("{path}/ipCaptureEvent"), event);
    }
    for (idx, device) in file.device_ids.iter().enumerate() {
        v.device(&format!("{path}/deviceId[{}]", idx + 1), device);
    }
    for (idx, details) in file.details.iter().enumerate() {
        let field = format!("{path}/details[{}]", idx + 1);
        if details.pairs.is_empty() {
            v.out
                .push(&field, "expected at least one nameValuePair, got none");
        }
        for (pair_idx, (name, value)) in details.pairs.iter().enumerate() {
            let pair = format!("{field}/nameValuePair[{}]", pair_idx + 1);
            v.text(&format!("{pair}/name"), Some(name), Some(MAX_HASH_OR_NAME));
            v.text(&format!("{pair}/value"), Some(value), None);
        }
    }
    for (idx, info) in file.additional_info.iter().enumerate() {
        v.text(
            &format!("{path}/additionalInfo[{}]", idx + 1),
            Some(info),
            None,
        );
    }
    if batched {
        check_batched_file(file, &mut v.out);
    }
    v.out.into_result()
}

/// Appendix E: the one file of a batched report.
fn check_batched_file(file: &FileDetails, out: &mut Violations) {
    const WHY: &str =
        "not allowed on the file of a VIRAL_POTENTIAL_MEME batched report (Appendix E)";
    let path = "fileDetails";
    if !file.annotations.viral && !file.annotations.potential_meme {
        out.push(
            format!("{path}/fileAnnotations"),
            "expected viral and/or potentialMeme on the file of a batched report (Appendix E), got neither",
        );
    }
    for (name, set) in file.annotations.flags() {
        if set && name != "viral" && name != "potentialMeme" {
            out.push(format!("{path}/fileAnnotations/{name}"), WHY);
        }
    }
    if file.file_relevance != Some(FileRelevance::Reported) {
        out.push(
            format!("{path}/fileRelevance"),
            "expected Reported on the file of a batched report (Appendix E)",
        );
    }
    let forbidden: [(&str, bool); 7] = [
        ("originalFileName", file.original_file_name.is_some()),
        ("locationOfFile", file.location_of_file.is_some()),
        ("originalFileHash", !file.original_file_hashes.is_empty()),
        ("ipCaptureEvent", file.ip_capture_event.is_some()),
        ("deviceId", !file.device_ids.is_empty()),
        ("details", !file.details.is_empty()),
        ("additionalInfo", !file.additional_info.is_empty()),
    ];
    for (name, present) in forbidden {
        if present {
            out.push(format!("{path}/{name}"), WHY);
        }
    }
}

/// Appendix E: a batched report is finished with exactly one file.
///
/// # Errors
/// [`Error::Rules`] naming the file count.
pub fn check_batched_file_count(count: usize) -> Result<(), Error> {
    if count == 1 {
        return Ok(());
    }
    let mut out = Violations::default();
    out.push(
        "report/files",
        format!("expected exactly one file in a VIRAL_POTENTIAL_MEME batched report (Appendix E), got {count}"),
    );
    out.into_result()
}

struct Check {
    out: Violations,
    now: OffsetDateTime,
}

impl Check {
    fn text(&mut self, field: &str, value: Option<&str>, max: Option<usize>) {
        let Some(value) = value else { return };
        if let Some(max) = max {
            let len = value.encode_utf16().count();
            if len > max {
                self.out.push(
                    field,
                    format!("expected at most {max} characters, got {len}"),
                );
            }
        }
        if let Some((at, ch)) = value.chars().enumerate().find(|(_, ch)| !is_xml_char(*ch)) {
            self.out.push(
                field,
                format!(
                    "expected characters allowed in XML, got U+{:04X} at character {}",
                    u32::from(ch),
                    at + 1
                ),
            );
        }
    }

    fn url(&mut self, field: &str, value: &str) {
        self.text(field, Some(value), Some(MAX_URL));
        if value.trim().is_empty() {
            self.out.push(field, "expected a URL, got blank");
        }
    }

    fn past(&mut self, field: &str, value: Option<OffsetDateTime>) {
        let Some(value) = value else { return };
        if value > self.now {
            self.out.push(
                field,
                format!(
                    "expected a date in the past, got {} (now is {})",
                    crate::xml::format_date_time(value),
                    crate::xml::format_date_time(self.now)
                ),
            );
        }
    }

    fn person(&mut self, path: &str, person: &Person) {
        self.text(
            &format!("{path}/firstName"),
            person.first_name.as_deref(),
            None,
        );
        self.text(
            &format!("{path}/lastName"),
            person.last_name.as_deref(),
            None,
        );
        self.phones(path, &person.phones);
        self.emails(path, &person.emails);
        self.addresses(path, &person.addresses);
        if let Some(age) = person.age
            && !(0..=MAX_AGE).contains(&age)
        {
            self.out.push(
                format!("{path}/age"),
                format!("expected 0 to {MAX_AGE}, got {age}"),
            );
        }
        if let Some(born) = person.date_of_birth
            && born > self.now.date()
        {
            self.out.push(
                format!("{path}/dateOfBirth"),
                format!("expected a date in the past, got {born}"),
            );
        }
    }

    fn phones(&mut self, path: &str, phones: &[Phone]) {
        for (idx, phone) in phones.iter().enumerate() {
            let field = format!("{path}/phone[{}]", idx + 1);
            self.text(&field, Some(&phone.number), None);
            if let Some(code) = &phone.country_calling_code {
                let digits = code.strip_prefix('+').unwrap_or("");
                if digits.is_empty()
                    || digits.len() > 3
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    self.out.push(
                        format!("{field}/@countryCallingCode"),
                        format!("expected + and 1 to 3 digits, got {code:?}"),
                    );
                }
            }
            if let Some(extension) = &phone.extension
                && (extension.is_empty() || !extension.bytes().all(|b| b.is_ascii_digit()))
            {
                self.out.push(
                    format!("{field}/@extension"),
                    format!("expected digits, got {extension:?}"),
                );
            }
        }
    }

    fn emails(&mut self, path: &str, emails: &[Email]) {
        for (idx, email) in emails.iter().enumerate() {
            let field = format!("{path}/email[{}]", idx + 1);
            self.text(&field, Some(&email.address), None);
            if !email.address.contains('@') {
                self.out
                    .push(&field, "expected an email address, got text without @");
            }
            self.past(
                &format!("{field}/@verificationDate"),
                email.verification_date,
            );
        }
    }

    fn addresses(&mut self, path: &str, addresses: &[Address]) {
        for (idx, address) in addresses.iter().enumerate() {
            let field = format!("{path}/address[{}]", idx + 1);
            for (name, value) in [
                ("address", &address.street),
                ("city", &address.city),
                ("zipCode", &address.zip_code),
                ("nonUsaState", &address.non_usa_state),
            ] {
                self.text(&format!("{field}/{name}"), value.as_deref(), None);
            }
            for (name, value) in [("state", &address.state), ("country", &address.country)] {
                if let Some(code) = value
                    && !(code.len() == 2
                        && code
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
                {
                    self.out.push(
                        format!("{field}/{name}"),
                        format!("expected a two-letter code, got {code:?}"),
                    );
                }
            }
        }
    }

    fn ip_event(&mut self, path: &str, event: &IpCaptureEvent) {
        self.text(&format!("{path}/ipAddress"), Some(&event.ip_address), None);
        if event.ip_address.trim().parse::<std::net::IpAddr>().is_err() {
            self.out.push(
                format!("{path}/ipAddress"),
                format!(
                    "expected an IPv4 or IPv6 address, got {:?}",
                    event.ip_address
                ),
            );
        }
        self.past(&format!("{path}/dateTime"), event.date_time);
        if let Some(port) = event.port
            && !(1..=65535).contains(&port)
        {
            self.out.push(
                format!("{path}/port"),
                format!("expected 1 to 65535, got {port}"),
            );
        }
    }

    fn device(&mut self, path: &str, device: &DeviceId) {
        self.text(&format!("{path}/idType"), Some(&device.id_type), None);
        self.text(&format!("{path}/idValue"), Some(&device.id_value), None);
        self.past(&format!("{path}/dateTime"), device.date_time);
    }

    fn disabled(&mut self, path: &str, disabled: &AccountDisabled) {
        self.past(&format!("{path}/@disabledDate"), disabled.disabled_date);
        self.past(
            &format!("{path}/@userNotifiedDate"),
            disabled.user_notified_date,
        );
        self.past(&format!("{path}/@reenabledDate"), disabled.reenabled_date);
    }
}

/// XML 1.0's `Char` production.
fn is_xml_char(ch: char) -> bool {
    matches!(ch, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
