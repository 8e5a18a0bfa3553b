//! Writing the model as NCMEC XML, by hand, in the exact XSD sequence order.
//!
//! Each `write_*` function lists its children in the order of the XSD
//! `xs:sequence` it mirrors; tests validate every document against the XSD
//! with xmllint and fastxml, so an order mistake fails a test. Presence flags
//! are written as empty elements and only when set.

use quick_xml::{
    Writer,
    events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event},
};
use time::{Date, OffsetDateTime};

use crate::{
    error::Error,
    model::{
        AccountDisabled, Address, ContactPerson, Details, DeviceId, Email, FileDetails,
        IncidentSummary, InternetDetails, IpCaptureEvent, Person, PersonOrUserReported, Phone,
        Report, ReportDoneResponse, ReportResponse, Reporter,
    },
};

/// The schema location NCMEC's own examples declare on the root element.
const SCHEMA_LOCATION: &str = "https://report.cybertip.org/ispws/xsd";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Writes a `<report>` document.
///
/// # Errors
/// Only if the XML writer fails, which it does not for in-memory output.
pub fn report_to_xml(report: &Report) -> Result<String, Error> {
    let mut w = Out::new();
    w.open_root("report");
    if report.batched_viral_meme {
        w.empty("batchedReport", &[("reason", "VIRAL_POTENTIAL_MEME")]);
    }
    write_incident_summary(&mut w, &report.incident_summary);
    for details in &report.internet_details {
        write_internet_details(&mut w, details);
    }
    write_reporter(&mut w, &report.reporter);
    for person in &report.persons_reported {
        write_person_reported(&mut w, person);
    }
    w.opt("additionalInfo", report.additional_info.as_deref());
    w.close("report");
    w.finish()
}

/// Writes a `<fileDetails>` document.
///
/// # Errors
/// Only if the XML writer fails, which it does not for in-memory output.
pub fn file_details_to_xml(file: &FileDetails) -> Result<String, Error> {
    let mut w = Out::new();
    w.open_root("fileDetails");
    w.leaf("reportId", &file.report_id.to_string());
    w.leaf("fileId", &file.file_id);
    w.opt("fileName", file.file_name.as_deref());
    w.opt("originalFileName", file.original_file_name.as_deref());
    w.opt_time("uploadedToEspTimestamp", file.uploaded_to_esp_timestamp);
    w.opt("locationOfFile", file.location_of_file.as_deref());
    w.opt_bool("fileViewedByEsp", file.file_viewed_by_esp);
    w.opt_bool("exifViewedByEsp", file.exif_viewed_by_esp);
    w.opt_bool("publiclyAvailable", file.publicly_available);
    w.opt("fileRelevance", file.file_relevance.map(|it| it.as_str()));
    if file.annotations.any() {
        w.open("fileAnnotations", &[]);
        for (name, set) in file.annotations.flags() {
            if set {
                w.empty(name, &[]);
            }
        }
        w.close("fileAnnotations");
    }
    w.opt(
        "industryClassification",
        file.industry_classification.map(|it| it.as_str()),
    );
    for hash in &file.original_file_hashes {
        w.leaf_with(
            "originalFileHash",
            &[("hashType", &hash.hash_type)],
            &hash.value,
        );
    }
    if let Some(event) = &file.ip_capture_event {
        write_ip_capture_event(&mut w, "ipCaptureEvent", event);
    }
    for device in &file.device_ids {
        write_device_id(&mut w, device);
    }
    for details in &file.details {
        write_details(&mut w, details);
    }
    for info in &file.additional_info {
        w.leaf("additionalInfo", info);
    }
    w.close("fileDetails");
    w.finish()
}

/// Writes a `<reportResponse>` document (the fake server's answers).
///
/// # Errors
/// Only if the XML writer fails, which it does not for in-memory output.
pub fn report_response_to_xml(response: &ReportResponse) -> Result<String, Error> {
    let mut w = Out::new();
    w.open_standalone("reportResponse");
    w.leaf("responseCode", &response.response_code.to_string());
    w.leaf("responseDescription", &response.response_description);
    w.opt(
        "reportId",
        response.report_id.map(|it| it.to_string()).as_deref(),
    );
    w.opt("fileId", response.file_id.as_deref());
    w.opt("hash", response.hash.as_deref());
    w.close("reportResponse");
    w.finish()
}

/// Writes a `<reportDoneResponse>` document (the fake server's receipts).
///
/// # Errors
/// Only if the XML writer fails, which it does not for in-memory output.
pub fn report_done_response_to_xml(response: &ReportDoneResponse) -> Result<String, Error> {
    let mut w = Out::new();
    w.open_standalone("reportDoneResponse");
    w.leaf("responseCode", &response.response_code.to_string());
    w.leaf("reportId", &response.report_id.to_string());
    w.open("files", &[]);
    for file_id in &response.files {
        w.leaf("fileId", file_id);
    }
    w.close("files");
    w.close("reportDoneResponse");
    w.finish()
}

fn write_incident_summary(w: &mut Out, summary: &IncidentSummary) {
    w.open("incidentSummary", &[]);
    w.leaf("incidentType", summary.incident_type.as_str());
    w.opt("platform", summary.platform.as_deref());
    w.opt(
        "escalateToHighPriority",
        summary.escalate_to_high_priority.as_deref(),
    );
    if summary.annotations.any() {
        w.open("reportAnnotations", &[]);
        for (name, set) in summary.annotations.flags() {
            if set {
                w.empty(name, &[]);
            }
        }
        w.close("reportAnnotations");
    }
    w.leaf(
        "incidentDateTime",
        &format_date_time(summary.incident_date_time),
    );
    w.opt(
        "incidentDateTimeDescription",
        summary.incident_date_time_description.as_deref(),
    );
    w.close("incidentSummary");
}

fn write_internet_details(w: &mut Out, details: &InternetDetails) {
    w.open("internetDetails", &[]);
    match details {
        InternetDetails::WebPage {
            urls,
            additional_info,
            third_party_hosted_content,
        } => {
            let third_party = third_party_hosted_content.map(bool_str);
            let attrs: Vec<(&str, &str)> = third_party
                .iter()
                .map(|value| ("thirdPartyHostedContent", *value))
                .collect();
            w.open("webPageIncident", &attrs);
            for url in urls {
                w.leaf("url", url);
            }
            w.opt("additionalInfo", additional_info.as_deref());
            w.close("webPageIncident");
        }
        InternetDetails::ChatIm {
            chat_client,
            chat_room_name,
            additional_info,
        } => {
            w.open("chatImIncident", &[]);
            w.opt("chatClient", chat_client.as_deref());
            w.opt("chatRoomName", chat_room_name.as_deref());
            w.opt("additionalInfo", additional_info.as_deref());
            w.close("chatImIncident");
        }
        InternetDetails::Other { kind } => w.empty(kind, &[]),
    }
    w.close("internetDetails");
}

fn write_reporter(w: &mut Out, reporter: &Reporter) {
    w.open("reporter", &[]);
    write_person(w, "reportingPerson", &reporter.reporting_person);
    if let Some(contact) = &reporter.contact_person {
        write_contact_person(w, "contactPerson", contact);
    }
    w.opt("companyTemplate", reporter.company_template.as_deref());
    w.opt("termsOfService", reporter.terms_of_service.as_deref());
    w.opt("legalURL", reporter.legal_url.as_deref());
    w.close("reporter");
}

fn write_person(w: &mut Out, name: &str, person: &Person) {
    w.open(name, &[]);
    write_contact_fields(
        w,
        &person.first_name,
        &person.last_name,
        &person.phones,
        &person.emails,
        &person.addresses,
    );
    w.opt("age", person.age.map(|it| it.to_string()).as_deref());
    w.opt(
        "dateOfBirth",
        person.date_of_birth.map(format_date).as_deref(),
    );
    w.close(name);
}

fn write_contact_person(w: &mut Out, name: &str, contact: &ContactPerson) {
    w.open(name, &[]);
    write_contact_fields(
        w,
        &contact.first_name,
        &contact.last_name,
        &contact.phones,
        &contact.emails,
        &contact.addresses,
    );
    w.close(name);
}

fn write_contact_fields(
    w: &mut Out,
    first_name: &Option<String>,
    last_name: &Option<String>,
    phones: &[Phone],
    emails: &[Email],
    addresses: &[Address],
) {
    w.opt("firstName", first_name.as_deref());
    w.opt("lastName", last_name.as_deref());
    for phone in phones {
        let verified = phone.verified.map(bool_str);
        let mut attrs: Vec<(&str, &str)> = Vec::new();
        if let Some(kind) = phone.kind {
            attrs.push(("type", kind.as_str()));
        }
        if let Some(verified) = verified {
            attrs.push(("verified", verified));
        }
        if let Some(code) = &phone.country_calling_code {
            attrs.push(("countryCallingCode", code));
        }
        if let Some(extension) = &phone.extension {
            attrs.push(("extension", extension));
        }
        w.leaf_with("phone", &attrs, &phone.number);
    }
    for email in emails {
        let verification_date = email.verification_date.map(format_date_time);
        let mut attrs: Vec<(&str, &str)> = Vec::new();
        if let Some(kind) = email.kind {
            attrs.push(("type", kind.as_str()));
        }
        if let Some(verified) = email.verified {
            attrs.push(("verified", bool_str(verified)));
        }
        if let Some(date) = &verification_date {
            attrs.push(("verificationDate", date));
        }
        w.leaf_with("email", &attrs, &email.address);
    }
    for address in addresses {
        let attrs: Vec<(&str, &str)> = address
            .kind
            .iter()
            .map(|kind| ("type", kind.as_str()))
            .collect();
        w.open("address", &attrs);
        w.opt("address", address.street.as_deref());
        w.opt("city", address.city.as_deref());
        w.opt("zipCode", address.zip_code.as_deref());
        w.opt("state", address.state.as_deref());
        w.opt("nonUsaState", address.non_usa_state.as_deref());
        w.opt("country", address.country.as_deref());
        w.close("address");
    }
}

fn write_person_reported(w: &mut Out, person: &PersonOrUserReported) {
    w.open("personOrUserReported", &[]);
    if let Some(details) = &person.person {
        write_person(w, "personOrUserReportedPerson", details);
    }
    w.opt("espIdentifier", person.esp_identifier.as_deref());
    w.opt("espService", person.esp_service.as_deref());
    w.opt_bool("compromisedAccount", person.compromised_account);
    w.opt("screenName", person.screen_name.as_deref());
    for name in &person.display_names {
        w.leaf("displayName", name);
    }
    for url in &person.profile_urls {
        w.leaf("profileUrl", url);
    }
    for event in &person.ip_capture_events {
        write_ip_capture_event(w, "ipCaptureEvent", event);
    }
    for device in &person.device_ids {
        write_device_id(w, device);
    }
    w.opt_bool("thirdPartyUserReported", person.third_party_user_reported);
    for report_id in &person.prior_ct_reports {
        w.leaf("priorCTReports", &report_id.to_string());
    }
    w.opt("groupIdentifier", person.group_identifier.as_deref());
    if let Some(disabled) = &person.account_temporarily_disabled {
        write_account_disabled(w, "accountTemporarilyDisabled", disabled, true);
    }
    if let Some(disabled) = &person.account_permanently_disabled {
        write_account_disabled(w, "accountPermanentlyDisabled", disabled, false);
    }
    w.opt("additionalInfo", person.additional_info.as_deref());
    w.close("personOrUserReported");
}

fn write_account_disabled(w: &mut Out, name: &str, disabled: &AccountDisabled, temporary: bool) {
    let disabled_date = disabled.disabled_date.map(format_date_time);
    let notified_date = disabled.user_notified_date.map(format_date_time);
    let reenabled_date = disabled
        .reenabled_date
        .filter(|_| temporary)
        .map(format_date_time);
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    if let Some(date) = &disabled_date {
        attrs.push(("disabledDate", date));
    }
    if let Some(notified) = disabled.user_notified {
        attrs.push(("userNotified", bool_str(notified)));
    }
    if let Some(date) = &notified_date {
        attrs.push(("userNotifiedDate", date));
    }
    if let Some(date) = &reenabled_date {
        attrs.push(("reenabledDate", date));
    }
    w.leaf_with(name, &attrs, bool_str(disabled.disabled));
}

fn write_ip_capture_event(w: &mut Out, name: &str, event: &IpCaptureEvent) {
    w.open(name, &[]);
    w.leaf("ipAddress", &event.ip_address);
    w.opt("eventName", event.event_name.map(|it| it.as_str()));
    w.opt_time("dateTime", event.date_time);
    w.opt_bool("possibleProxy", event.possible_proxy);
    w.opt("port", event.port.map(|it| it.to_string()).as_deref());
    w.close(name);
}

fn write_device_id(w: &mut Out, device: &DeviceId) {
    w.open("deviceId", &[]);
    w.leaf("idType", &device.id_type);
    w.leaf("idValue", &device.id_value);
    w.opt("eventName", device.event_name.map(|it| it.as_str()));
    w.opt_time("dateTime", device.date_time);
    w.close("deviceId");
}

fn write_details(w: &mut Out, details: &Details) {
    let attrs: Vec<(&str, &str)> = details
        .kind
        .iter()
        .map(|kind| ("type", kind.as_str()))
        .collect();
    w.open("details", &attrs);
    for (name, value) in &details.pairs {
        w.open("nameValuePair", &[]);
        w.leaf("name", name);
        w.leaf("value", value);
        w.close("nameValuePair");
    }
    w.close("details");
}

/// `xs:dateTime` with an explicit zone, whole seconds: `2025-01-15T08:00:00Z`.
pub(crate) fn format_date_time(at: OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    let offset = at.offset();
    let zone = if offset.is_utc() {
        "Z".to_owned()
    } else {
        let (hours, minutes, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        format!(
            "{sign}{:02}:{:02}",
            hours.unsigned_abs(),
            minutes.unsigned_abs()
        )
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `xs:date`: `2010-05-31`.
pub(crate) fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

const fn bool_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// An indenting XML writer that remembers its first error instead of making
/// every call site handle one (writing to a `Vec` does not fail).
struct Out {
    writer: Writer<Vec<u8>>,
    failed: Option<std::io::Error>,
}

impl Out {
    fn new() -> Out {
        let mut out = Out {
            writer: Writer::new_with_indent(Vec::new(), b' ', 4),
            failed: None,
        };
        out.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        out
    }

    fn event(&mut self, event: Event<'_>) {
        if self.failed.is_none()
            && let Err(err) = self.writer.write_event(event)
        {
            self.failed = Some(err);
        }
    }

    fn open_root(&mut self, name: &str) {
        let start = BytesStart::new(name).with_attributes([
            ("xmlns:xsi", XSI_NS),
            ("xsi:noNamespaceSchemaLocation", SCHEMA_LOCATION),
        ]);
        self.event(Event::Start(start));
    }

    fn open_standalone(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.event(Event::Start(start));
    }

    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.event(Event::Empty(start));
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    fn leaf_with(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.event(Event::Start(start));
        if !text.is_empty() {
            self.event(Event::Text(BytesText::new(text)));
        }
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    fn opt_bool(&mut self, name: &str, value: Option<bool>) {
        if let Some(value) = value {
            self.leaf(name, bool_str(value));
        }
    }

    fn opt_time(&mut self, name: &str, value: Option<OffsetDateTime>) {
        if let Some(value) = value {
            self.leaf(name, &format_date_time(value));
        }
    }

    fn finish(self) -> Result<String, Error> {
        if let Some(err) = self.failed {
            return Err(Error::Build(format!("writing XML: {err}")));
        }
        let mut bytes = self.writer.into_inner();
        bytes.push(b'\n');
        String::from_utf8(bytes).map_err(|err| Error::Build(format!("writing XML: {err}")))
    }
}
