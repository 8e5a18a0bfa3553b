//! Reading NCMEC documents into the model.
//!
//! Used by the client (responses) and by the fake server (request bodies, after
//! XSD validation). Typed values are checked here with errors that name the
//! element path and line; presence flags accept only an empty element or
//! `true`, so `false`, `0` and the ambiguous `1` are refused exactly as
//! libxml2 refuses them. Elements of a valid document that the model does not
//! carry are listed in [`Report::unmodelled`] rather than silently dropped, so
//! the documented rules can still see them.

use time::{
    Date, OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description,
};

use crate::{
    error::Error,
    model::{
        AccountDisabled, Address, ContactPerson, Details, DeviceId, Email, FileDetails, FileHash,
        IncidentSummary, InternetDetails, IpCaptureEvent, Person, PersonOrUserReported, Phone,
        Report, ReportAnnotations, ReportDoneResponse, ReportResponse, Reporter,
    },
    xml::dom::{self, Node},
};

/// Reads a `<report>` document.
///
/// # Errors
/// [`Error::Xml`] naming the element path and line of the first problem.
pub fn report_from_xml(bytes: &[u8]) -> Result<Report, Error> {
    let root = dom::parse(bytes)?;
    let mut r = Read::default();
    let report = r.report(&root)?;
    Ok(Report {
        unmodelled: r.unmodelled,
        ..report
    })
}

/// Reads a `<fileDetails>` document.
///
/// # Errors
/// [`Error::Xml`] naming the element path and line of the first problem.
pub fn file_details_from_xml(bytes: &[u8]) -> Result<FileDetails, Error> {
    let root = dom::parse(bytes)?;
    Read::default().file_details(&root)
}

/// Reads a `<reportResponse>` document.
///
/// # Errors
/// [`Error::Xml`] naming the element path and line of the first problem.
pub fn report_response_from_xml(bytes: &[u8]) -> Result<ReportResponse, Error> {
    let root = dom::parse(bytes)?;
    let path = "reportResponse";
    expect_name(&root, path)?;
    let mut r = Read::default();
    r.known(
        &root,
        path,
        &[
            "responseCode",
            "responseDescription",
            "reportId",
            "fileId",
            "hash",
        ],
    );
    Ok(ReportResponse {
        response_code: r.required(&root, path, "responseCode", parse_i32)?,
        response_description: root
            .child("responseDescription")
            .map(|it| it.text.clone())
            .unwrap_or_default(),
        report_id: r.optional(&root, path, "reportId", parse_i64)?,
        file_id: r.optional(&root, path, "fileId", parse_token)?,
        hash: r.optional(&root, path, "hash", parse_token)?,
    })
}

/// Reads a `<reportDoneResponse>` document.
///
/// # Errors
/// [`Error::Xml`] naming the element path and line of the first problem.
pub fn report_done_response_from_xml(bytes: &[u8]) -> Result<ReportDoneResponse, Error> {
    let root = dom::parse(bytes)?;
    let path = "reportDoneResponse";
    expect_name(&root, path)?;
    let mut r = Read::default();
    let files = match root.child("files") {
        Some(files) => files
            .children_named("fileId")
            .map(|it| parse_token(it, &format!("{path}/files/fileId")))
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            return Err(missing(&root, path, "files"));
        }
    };
    Ok(ReportDoneResponse {
        response_code: r.required(&root, path, "responseCode", parse_i32)?,
        report_id: r.required(&root, path, "reportId", parse_i64)?,
        files,
    })
}

/// Which `<...>` root a document has, without reading the rest (for routing
/// and error messages).
///
/// # Errors
/// [`Error::Xml`] if the document is not well-formed.
pub fn root_name(bytes: &[u8]) -> Result<String, Error> {
    Ok(dom::parse(bytes)?.name)
}

#[derive(Default)]
struct Read {
    unmodelled: Vec<String>,
}

type Parse<T> = fn(&Node, &str) -> Result<T, Error>;

impl Read {
    /// Records children of `node` whose names are not in `known`.
    fn known(&mut self, node: &Node, path: &str, known: &[&str]) {
        for child in &node.children {
            if !known.contains(&child.name.as_str()) {
                let entry = format!("{path}/{}", child.name);
                if !self.unmodelled.contains(&entry) {
                    self.unmodelled.push(entry);
                }
            }
        }
    }

    fn required<T>(
        &mut self,
        node: &Node,
        path: &str,
        name: &str,
        parse: Parse<T>,
    ) -> Result<T, Error> {
        match node.child(name) {
            Some(child) => parse(child, &format!("{path}/{name}")),
            None => Err(missing(node, path, name)),
        }
    }

    fn optional<T>(
        &mut self,
        node: &Node,
        path: &str,
        name: &str,
        parse: Parse<T>,
    ) -> Result<Option<T>, Error> {
        node.child(name)
            .map(|child| parse(child, &format!("{path}/{name}")))
            .transpose()
    }

    fn many<T>(
        &mut self,
        node: &Node,
        path: &str,
        name: &str,
        parse: Parse<T>,
    ) -> Result<Vec<T>, Error> {
        node.children_named(name)
            .enumerate()
            .map(|(idx, child)| parse(child, &format!("{path}/{name}[{}]", idx + 1)))
            .collect()
    }

    fn report(&mut self, root: &Node) -> Result<Report, Error> {
        let path = "report";
        expect_name(root, path)?;
        self.known(
            root,
            path,
            &[
                "batchedReport",
                "incidentSummary",
                "internetDetails",
                "reporter",
                "personOrUserReported",
                "additionalInfo",
            ],
        );
        let batched_viral_meme = match root.child("batchedReport") {
            Some(batched) => match batched.attr("reason") {
                Some("VIRAL_POTENTIAL_MEME") => true,
                other => {
                    return Err(Error::Xml {
                        line: batched.line,
                        path: format!("{path}/batchedReport/@reason"),
                        message: format!("expected VIRAL_POTENTIAL_MEME, got {other:?}"),
                    });
                }
            },
            None => false,
        };
        let summary = root
            .child("incidentSummary")
            .ok_or_else(|| missing(root, path, "incidentSummary"))?;
        let incident_summary =
            self.incident_summary(summary, &format!("{path}/incidentSummary"))?;
        let mut internet_details = Vec::new();
        for (idx, node) in root.children_named("internetDetails").enumerate() {
            internet_details.push(
                self.internet_details(node, &format!("{path}/internetDetails[{}]", idx + 1))?,
            );
        }
        let reporter_node = root
            .child("reporter")
            .ok_or_else(|| missing(root, path, "reporter"))?;
        let reporter = self.reporter(reporter_node, &format!("{path}/reporter"))?;
        let mut persons_reported = Vec::new();
        for (idx, node) in root.children_named("personOrUserReported").enumerate() {
            persons_reported.push(
                self.person_reported(node, &format!("{path}/personOrUserReported[{}]", idx + 1))?,
            );
        }
        Ok(Report {
            batched_viral_meme,
            incident_summary,
            internet_details,
            reporter,
            persons_reported,
            additional_info: self.optional(root, path, "additionalInfo", parse_string)?,
            unmodelled: Vec::new(),
        })
    }

    fn incident_summary(&mut self, node: &Node, path: &str) -> Result<IncidentSummary, Error> {
        self.known(
            node,
            path,
            &[
                "incidentType",
                "platform",
                "escalateToHighPriority",
                "reportAnnotations",
                "incidentDateTime",
                "incidentDateTimeDescription",
            ],
        );
        let mut annotations = ReportAnnotations::default();
        if let Some(flags) = node.child("reportAnnotations") {
            for flag in &flags.children {
                let flag_path = format!("{path}/reportAnnotations/{}", flag.name);
                parse_flag(flag, &flag_path)?;
                if !annotations.set(&flag.name) {
                    self.unmodelled.push(flag_path);
                }
            }
        }
        Ok(IncidentSummary {
            incident_type: self.required(node, path, "incidentType", parse_enum)?,
            platform: self.optional(node, path, "platform", parse_string)?,
            escalate_to_high_priority: self.optional(
                node,
                path,
                "escalateToHighPriority",
                parse_string,
            )?,
            annotations,
            incident_date_time: self.required(node, path, "incidentDateTime", parse_date_time)?,
            incident_date_time_description: self.optional(
                node,
                path,
                "incidentDateTimeDescription",
                parse_string,
            )?,
        })
    }

    fn internet_details(&mut self, node: &Node, path: &str) -> Result<InternetDetails, Error> {
        let Some(incident) = node.children.first() else {
            return Err(Error::Xml {
                line: node.line,
                path: path.to_owned(),
                message: "expected one incident element, got none".to_owned(),
            });
        };
        let inner = format!("{path}/{}", incident.name);
        match incident.name.as_str() {
            "webPageIncident" => {
                self.known(incident, &inner, &["url", "additionalInfo"]);
                Ok(InternetDetails::WebPage {
                    urls: self.many(incident, &inner, "url", parse_string)?,
                    additional_info: self.optional(
                        incident,
                        &inner,
                        "additionalInfo",
                        parse_string,
                    )?,
                    third_party_hosted_content: incident
                        .attr("thirdPartyHostedContent")
                        .map(|value| {
                            parse_bool_text(
                                value,
                                incident.line,
                                &format!("{inner}/@thirdPartyHostedContent"),
                            )
                        })
                        .transpose()?,
                })
            }
            "chatImIncident" => {
                self.known(
                    incident,
                    &inner,
                    &["chatClient", "chatRoomName", "additionalInfo"],
                );
                Ok(InternetDetails::ChatIm {
                    chat_client: self.optional(incident, &inner, "chatClient", parse_string)?,
                    chat_room_name: self.optional(
                        incident,
                        &inner,
                        "chatRoomName",
                        parse_string,
                    )?,
                    additional_info: self.optional(
                        incident,
                        &inner,
                        "additionalInfo",
                        parse_string,
                    )?,
                })
            }
            other => {
                if !incident.children.is_empty() {
                    self.unmodelled.push(inner.clone());
                }
                Ok(InternetDetails::Other {
                    kind: other.to_owned(),
                })
            }
        }
    }

    fn reporter(&mut self, node: &Node, path: &str) -> Result<Reporter, Error> {
        self.known(
            node,
            path,
            &[
                "reportingPerson",
                "contactPerson",
                "companyTemplate",
                "termsOfService",
                "legalURL",
            ],
        );
        let reporting = node
            .child("reportingPerson")
            .ok_or_else(|| missing(node, path, "reportingPerson"))?;
        Ok(Reporter {
            reporting_person: self.person(reporting, &format!("{path}/reportingPerson"))?,
            contact_person: node
                .child("contactPerson")
                .map(|it| self.contact_person(it, &format!("{path}/contactPerson")))
                .transpose()?,
            company_template: self.optional(node, path, "companyTemplate", parse_string)?,
            terms_of_service: self.optional(node, path, "termsOfService", parse_string)?,
            legal_url: self.optional(node, path, "legalURL", parse_string)?,
        })
    }

    fn person(&mut self, node: &Node, path: &str) -> Result<Person, Error> {
        self.known(
            node,
            path,
            &[
                "firstName",
                "lastName",
                "phone",
                "email",
                "address",
                "age",
                "dateOfBirth",
            ],
        );
        Ok(Person {
            first_name: self.optional(node, path, "firstName", parse_string)?,
            last_name: self.optional(node, path, "lastName", parse_string)?,
            phones: self.many(node, path, "phone", parse_phone)?,
            emails: self.many(node, path, "email", parse_email)?,
            addresses: self.addresses(node, path)?,
            age: self.optional(node, path, "age", parse_i32)?,
            date_of_birth: self.optional(node, path, "dateOfBirth", parse_date)?,
        })
    }

    fn contact_person(&mut self, node: &Node, path: &str) -> Result<ContactPerson, Error> {
        self.known(
            node,
            path,
            &["firstName", "lastName", "phone", "email", "address"],
        );
        Ok(ContactPerson {
            first_name: self.optional(node, path, "firstName", parse_string)?,
            last_name: self.optional(node, path, "lastName", parse_string)?,
            phones: self.many(node, path, "phone", parse_phone)?,
            emails: self.many(node, path, "email", parse_email)?,
            addresses: self.addresses(node, path)?,
        })
    }

    fn addresses(&mut self, node: &Node, path: &str) -> Result<Vec<Address>, Error> {
        let mut res = Vec::new();
        for (idx, it) in node.children_named("address").enumerate() {
            let inner = format!("{path}/address[{}]", idx + 1);
            self.known(
                it,
                &inner,
                &[
                    "address",
                    "city",
                    "zipCode",
                    "state",
                    "nonUsaState",
                    "country",
                ],
            );
            res.push(Address {
                kind: it
                    .attr("type")
                    .map(|value| {
                        value
                            .parse()
                            .map_err(|err: Error| attr_error(it, &inner, "type", err))
                    })
                    .transpose()?,
                street: self.optional(it, &inner, "address", parse_string)?,
                city: self.optional(it, &inner, "city", parse_string)?,
                zip_code: self.optional(it, &inner, "zipCode", parse_string)?,
                state: self.optional(it, &inner, "state", parse_token)?,
                non_usa_state: self.optional(it, &inner, "nonUsaState", parse_string)?,
                country: self.optional(it, &inner, "country", parse_token)?,
            });
        }
        Ok(res)
    }

    fn person_reported(&mut self, node: &Node, path: &str) -> Result<PersonOrUserReported, Error> {
        self.known(
            node,
            path,
            &[
                "personOrUserReportedPerson",
                "espIdentifier",
                "espService",
                "compromisedAccount",
                "screenName",
                "displayName",
                "profileUrl",
                "ipCaptureEvent",
                "deviceId",
                "thirdPartyUserReported",
                "priorCTReports",
                "groupIdentifier",
                "accountTemporarilyDisabled",
                "accountPermanentlyDisabled",
                "additionalInfo",
            ],
        );
        Ok(PersonOrUserReported {
            person: node
                .child("personOrUserReportedPerson")
                .map(|it| self.person(it, &format!("{path}/personOrUserReportedPerson")))
                .transpose()?,
            esp_identifier: self.optional(node, path, "espIdentifier", parse_string)?,
            esp_service: self.optional(node, path, "espService", parse_string)?,
            compromised_account: self.optional(node, path, "compromisedAccount", parse_bool)?,
            screen_name: self.optional(node, path, "screenName", parse_string)?,
            display_names: self.many(node, path, "displayName", parse_string)?,
            profile_urls: self.many(node, path, "profileUrl", parse_string)?,
            ip_capture_events: self.many(node, path, "ipCaptureEvent", parse_ip_capture_event)?,
            device_ids: self.many(node, path, "deviceId", parse_device_id)?,
            third_party_user_reported: self.optional(
                node,
                path,
                "thirdPartyUserReported",
                parse_bool,
            )?,
            prior_ct_reports: self.many(node, path, "priorCTReports", parse_i64)?,
            group_identifier: self.optional(node, path, "groupIdentifier", parse_string)?,
            account_temporarily_disabled: self.optional(
                node,
                path,
                "accountTemporarilyDisabled",
                parse_account_disabled,
            )?,
            account_permanently_disabled: self.optional(
                node,
                path,
                "accountPermanentlyDisabled",
                parse_account_disabled,
            )?,
            additional_info: self.optional(node, path, "additionalInfo", parse_string)?,
        })
    }

    fn file_details(&mut self, root: &Node) -> Result<FileDetails, Error> {
        let path = "fileDetails";
        expect_name(root, path)?;
        let mut annotations = crate::model::FileAnnotations::default();
        if let Some(flags) = root.child("fileAnnotations") {
            for flag in &flags.children {
                let flag_path = format!("{path}/fileAnnotations/{}", flag.name);
                parse_flag(flag, &flag_path)?;
                if !annotations.set(&flag.name) {
                    return Err(Error::Xml {
                        line: flag.line,
                        path: flag_path,
                        message: "unknown file annotation".to_owned(),
                    });
                }
            }
        }
        // The legacy top-level potentialMeme is an ordinary xs:boolean.
        if let Some(legacy) = root.child("potentialMeme")
            && parse_bool(legacy, &format!("{path}/potentialMeme"))?
        {
            annotations.potential_meme = true;
        }
        let mut details = Vec::new();
        for (idx, node) in root.children_named("details").enumerate() {
            let inner = format!("{path}/details[{}]", idx + 1);
            let mut pairs = Vec::new();
            for (pair_idx, pair) in node.children_named("nameValuePair").enumerate() {
                let pair_path = format!("{inner}/nameValuePair[{}]", pair_idx + 1);
                let name = self.required(pair, &pair_path, "name", parse_string)?;
                let value = self.required(pair, &pair_path, "value", parse_string)?;
                pairs.push((name, value));
            }
            details.push(Details {
                kind: node
                    .attr("type")
                    .map(|value| {
                        value
                            .parse()
                            .map_err(|err: Error| attr_error(node, &inner, "type", err))
                    })
                    .transpose()?,
                pairs,
            });
        }
        let mut hashes = Vec::new();
        for (idx, node) in root.children_named("originalFileHash").enumerate() {
            let inner = format!("{path}/originalFileHash[{}]", idx + 1);
            let hash_type = node.attr("hashType").ok_or_else(|| Error::Xml {
                line: node.line,
                path: format!("{inner}/@hashType"),
                message: "required attribute is missing".to_owned(),
            })?;
            hashes.push(FileHash {
                hash_type: hash_type.to_owned(),
                value: node.text.trim().to_owned(),
            });
        }
        Ok(FileDetails {
            report_id: self.required(root, path, "reportId", parse_i64)?,
            file_id: self.required(root, path, "fileId", parse_token)?,
            file_name: self.optional(root, path, "fileName", parse_string)?,
            original_file_name: self.optional(root, path, "originalFileName", parse_string)?,
            uploaded_to_esp_timestamp: self.optional(
                root,
                path,
                "uploadedToEspTimestamp",
                parse_date_time,
            )?,
            location_of_file: self.optional(root, path, "locationOfFile", parse_string)?,
            file_viewed_by_esp: self.optional(root, path, "fileViewedByEsp", parse_bool)?,
            exif_viewed_by_esp: self.optional(root, path, "exifViewedByEsp", parse_bool)?,
            publicly_available: self.optional(root, path, "publiclyAvailable", parse_bool)?,
            file_relevance: self.optional(root, path, "fileRelevance", parse_enum)?,
            annotations,
            industry_classification: self.optional(
                root,
                path,
                "industryClassification",
                parse_enum,
            )?,
            original_file_hashes: hashes,
            ip_capture_event: self.optional(
                root,
                path,
                "ipCaptureEvent",
                parse_ip_capture_event,
            )?,
            device_ids: self.many(root, path, "deviceId", parse_device_id)?,
            details,
            additional_info: self.many(root, path, "additionalInfo", parse_string)?,
        })
    }
}

fn expect_name(node: &Node, want: &str) -> Result<(), Error> {
    if node.name == want {
        return Ok(());
    }
    Err(Error::Xml {
        line: node.line,
        path: node.name.clone(),
        message: format!("expected a <{want}> document, got <{}>", node.name),
    })
}

fn missing(node: &Node, path: &str, name: &str) -> Error {
    Error::Xml {
        line: node.line,
        path: format!("{path}/{name}"),
        message: "required element is missing".to_owned(),
    }
}

fn attr_error(node: &Node, path: &str, attr: &str, err: Error) -> Error {
    Error::Xml {
        line: node.line,
        path: format!("{path}/@{attr}"),
        message: err.to_string(),
    }
}

fn value_error(node: &Node, path: &str, expected: &str) -> Error {
    Error::Xml {
        line: node.line,
        path: path.to_owned(),
        message: format!("expected {expected}, got {:?}", truncate(node.text.trim())),
    }
}

/// Values echoed in errors are cut short: they come from outside.
fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut res: String = text.chars().take(MAX).collect();
    res.push_str("...");
    res
}

fn parse_string(node: &Node, _path: &str) -> Result<String, Error> {
    Ok(node.text.clone())
}

/// `xs:token`: whitespace collapsed.
fn parse_token(node: &Node, _path: &str) -> Result<String, Error> {
    Ok(node.text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn parse_i64(node: &Node, path: &str) -> Result<i64, Error> {
    node.text
        .trim()
        .parse()
        .map_err(|_| value_error(node, path, "an integer (xs:long)"))
}

fn parse_i32(node: &Node, path: &str) -> Result<i32, Error> {
    node.text
        .trim()
        .parse()
        .map_err(|_| value_error(node, path, "an integer (xs:int)"))
}

fn parse_bool(node: &Node, path: &str) -> Result<bool, Error> {
    parse_bool_text(&node.text, node.line, path)
}

fn parse_bool_text(text: &str, line: u64, path: &str) -> Result<bool, Error> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::Xml {
            line,
            path: path.to_owned(),
            message: format!("expected true or false, got {:?}", truncate(other)),
        }),
    }
}

/// A presence flag (`xs:boolean fixed="true"`): an empty element or `true`.
/// `1` is refused as libxml2 refuses it (API-NOTES §2.4).
fn parse_flag(node: &Node, path: &str) -> Result<(), Error> {
    if !node.children.is_empty() {
        return Err(Error::Xml {
            line: node.line,
            path: path.to_owned(),
            message: "expected an empty element, got child elements".to_owned(),
        });
    }
    match node.text.trim() {
        "" | "true" => Ok(()),
        _ => Err(value_error(
            node,
            path,
            "an empty element or true (a presence flag)",
        )),
    }
}

fn parse_enum<T: std::str::FromStr<Err = Error>>(node: &Node, path: &str) -> Result<T, Error> {
    node.text.trim().parse().map_err(|err: Error| Error::Xml {
        line: node.line,
        path: path.to_owned(),
        message: err.to_string(),
    })
}

fn parse_date_time(node: &Node, path: &str) -> Result<OffsetDateTime, Error> {
    parse_date_time_text(node.text.trim(), node.line, path)
}

fn parse_date_time_text(text: &str, line: u64, path: &str) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| Error::Xml {
        line,
        path: path.to_owned(),
        message: format!(
            "expected a date-time with a zone offset such as 2025-01-15T08:00:00Z, got {:?}",
            truncate(text)
        ),
    })
}

fn parse_date(node: &Node, path: &str) -> Result<Date, Error> {
    let format = format_description!("[year]-[month]-[day]");
    Date::parse(node.text.trim(), &format)
        .map_err(|_| value_error(node, path, "a date such as 2010-05-31"))
}

fn parse_opt_date_time_attr(
    node: &Node,
    path: &str,
    attr: &str,
) -> Result<Option<OffsetDateTime>, Error> {
    node.attr(attr)
        .map(|value| parse_date_time_text(value.trim(), node.line, &format!("{path}/@{attr}")))
        .transpose()
}

fn parse_opt_bool_attr(node: &Node, path: &str, attr: &str) -> Result<Option<bool>, Error> {
    node.attr(attr)
        .map(|value| parse_bool_text(value, node.line, &format!("{path}/@{attr}")))
        .transpose()
}

fn parse_phone(node: &Node, path: &str) -> Result<Phone, Error> {
    Ok(Phone {
        number: node.text.clone(),
        kind: node
            .attr("type")
            .map(|value| {
                value
                    .parse()
                    .map_err(|err: Error| attr_error(node, path, "type", err))
            })
            .transpose()?,
        verified: parse_opt_bool_attr(node, path, "verified")?,
        country_calling_code: node.attr("countryCallingCode").map(str::to_owned),
        extension: node.attr("extension").map(str::to_owned),
    })
}

fn parse_email(node: &Node, path: &str) -> Result<Email, Error> {
    Ok(Email {
        address: node.text.clone(),
        kind: node
            .attr("type")
            .map(|value| {
                value
                    .parse()
                    .map_err(|err: Error| attr_error(node, path, "type", err))
            })
            .transpose()?,
        verified: parse_opt_bool_attr(node, path, "verified")?,
        verification_date: parse_opt_date_time_attr(node, path, "verificationDate")?,
    })
}

fn parse_account_disabled(node: &Node, path: &str) -> Result<AccountDisabled, Error> {
    Ok(AccountDisabled {
        disabled: parse_bool(node, path)?,
        disabled_date: parse_opt_date_time_attr(node, path, "disabledDate")?,
        user_notified: parse_opt_bool_attr(node, path, "userNotified")?,
        user_notified_date: parse_opt_date_time_attr(node, path, "userNotifiedDate")?,
        reenabled_date: parse_opt_date_time_attr(node, path, "reenabledDate")?,
    })
}

fn parse_ip_capture_event(node: &Node, path: &str) -> Result<IpCaptureEvent, Error> {
    let mut r = Read::default();
    Ok(IpCaptureEvent {
        ip_address: r.required(node, path, "ipAddress", parse_token)?,
        event_name: r.optional(node, path, "eventName", parse_enum)?,
        date_time: r.optional(node, path, "dateTime", parse_date_time)?,
        possible_proxy: r.optional(node, path, "possibleProxy", parse_bool)?,
        port: r.optional(node, path, "port", parse_i32)?,
    })
}

fn parse_device_id(node: &Node, path: &str) -> Result<DeviceId, Error> {
    let mut r = Read::default();
    Ok(DeviceId {
        id_type: r.required(node, path, "idType", parse_string)?,
        id_value: r.required(node, path, "idValue", parse_string)?,
        event_name: r.optional(node, path, "eventName", parse_enum)?,
        date_time: r.optional(node, path, "dateTime", parse_date_time)?,
    })
}
