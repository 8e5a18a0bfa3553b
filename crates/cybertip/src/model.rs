//! The CyberTipline documents as Rust types: `<report>`, `<fileDetails>`,
//! `<reportResponse>` and `<reportDoneResponse>` (NCMEC XSD of November 2025).
//!
//! The types cover what a generative-AI provider files, plus enough of the
//! rest of the schema for the fake server to check NCMEC's documented rules
//! on any valid document. Field order in each struct is the XSD sequence
//! order, which [`crate::xml`] writes verbatim.
//!
//! Deliberately absent: the `content` elements of `emailIncident` and
//! `chatImIncident`, `profileBio`, and any other field that would carry the
//! reported content itself. Content goes to NCMEC only as uploaded files, from
//! the vault, so it can never end up in report XML, logs or errors
//! (DESIGN invariant 1).
//!
//! Presence flags (report and file annotations) are `bool`s: `true` is written
//! as an empty element, `false` is written as nothing. There is no way to
//! write `false`, `0` or `1` for them (API-NOTES §2.4).

use std::{fmt, str::FromStr};

use time::{Date, OffsetDateTime};

use crate::error::Error;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in XSD order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The exact XSD enumeration value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<$name, Error> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|it| it.as_str() == s)
                    .ok_or_else(|| Error::UnknownValue { kind: $what, value: s.to_owned() })
            }
        }
    };
}

string_enum!(
    /// `incidentType`: what kind of incident the report is about.
    IncidentType, "incident type" {
        /// Child Pornography (possession, manufacture, and distribution).
        ChildPornography => "Child Pornography (possession, manufacture, and distribution)",
        /// Child Sex Trafficking.
        ChildSexTrafficking => "Child Sex Trafficking",
        /// Child Sex Tourism.
        ChildSexTourism => "Child Sex Tourism",
        /// Child Sexual Molestation.
        ChildSexualMolestation => "Child Sexual Molestation",
        /// Misleading Domain Name.
        MisleadingDomainName => "Misleading Domain Name",
        /// Misleading Words or Digital Images on the Internet.
        MisleadingWordsOrImages => "Misleading Words or Digital Images on the Internet",
        /// Online Enticement of Children for Sexual Acts (includes sextortion).
        OnlineEnticement => "Online Enticement of Children for Sexual Acts",
        /// Unsolicited Obscene Material Sent to a Child.
        UnsolicitedObsceneMaterial => "Unsolicited Obscene Material Sent to a Child",
    }
);

string_enum!(
    /// `ipCaptureType`: the event during which an IP address or device id was recorded.
    IpEvent, "ip capture event" {
        /// Login.
        Login => "Login",
        /// Registration.
        Registration => "Registration",
        /// Purchase.
        Purchase => "Purchase",
        /// Upload.
        Upload => "Upload",
        /// Other.
        Other => "Other",
        /// Unknown.
        Unknown => "Unknown",
    }
);

string_enum!(
    /// `fileRelevance`: how an uploaded file relates to the report.
    FileRelevance, "file relevance" {
        /// The file is reported (NCMEC's default).
        Reported => "Reported",
        /// Context for the report (18 U.S.C. 2258A(b)): not itself the reported material.
        SupplementalReported => "Supplemental Reported",
    }
);

string_enum!(
    /// `fileClassification`: the Tech Coalition industry scale (only with the hash-sharing MOU).
    IndustryClassification, "industry classification" {
        /// A1.
        A1 => "A1",
        /// A2.
        A2 => "A2",
        /// B1.
        B1 => "B1",
        /// B2.
        B2 => "B2",
    }
);

string_enum!(
    /// `metadataTypes`: the kind of a `<details>` block.
    DetailsType, "details type" {
        /// EXIF metadata.
        Exif => "EXIF",
        /// Hash values (for example PDQ).
        Hash => "HASH",
    }
);

string_enum!(
    /// `emailType`.
    EmailType, "email type" {
        /// Home.
        Home => "Home",
        /// Work.
        Work => "Work",
        /// Business.
        Business => "Business",
        /// Recovery.
        Recovery => "Recovery",
    }
);

string_enum!(
    /// `phoneType`.
    PhoneType, "phone type" {
        /// Mobile.
        Mobile => "Mobile",
        /// Home.
        Home => "Home",
        /// Business.
        Business => "Business",
        /// Work.
        Work => "Work",
        /// Fax.
        Fax => "Fax",
        /// Internet.
        Internet => "Internet",
        /// Recovery.
        Recovery => "Recovery",
    }
);

string_enum!(
    /// `addressType`.
    AddressType, "address type" {
        /// Home.
        Home => "Home",
        /// Business.
        Business => "Business",
        /// Billing.
        Billing => "Billing",
        /// Shipping.
        Shipping => "Shipping",
        /// Technical.
        Technical => "Technical",
    }
);

/// `<report>`: the body of `POST /submit`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Report {
    /// `<batchedReport reason="VIRAL_POTENTIAL_MEME"/>`: an Appendix E batched report.
    pub batched_viral_meme: bool,
    /// `<incidentSummary>`.
    pub incident_summary: IncidentSummary,
    /// `<internetDetails>`, each holding one incident kind.
    pub internet_details: Vec<InternetDetails>,
    /// `<reporter>`.
    pub reporter: Reporter,
    /// `<personOrUserReported>`: at most one, except in a batched report.
    pub persons_reported: Vec<PersonOrUserReported>,
    /// Top-level `<additionalInfo>`.
    pub additional_info: Option<String>,
    /// Paths of elements present in a parsed document that this model does not
    /// carry (`lawEnforcement`, `victim`, `profileBio`, ...), so that rules can
    /// still see them. Always empty for reports we build; never written.
    pub unmodelled: Vec<String>,
}

/// `<incidentSummary>`.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentSummary {
    /// `incidentType`.
    pub incident_type: IncidentType,
    /// `platform`: the application where the content occurred (at most 256 characters).
    pub platform: Option<String>,
    /// `escalateToHighPriority`: supplying any text escalates the report (at most 3000 characters).
    pub escalate_to_high_priority: Option<String>,
    /// `reportAnnotations`.
    pub annotations: ReportAnnotations,
    /// `incidentDateTime`: when the incident happened; must be in the past.
    pub incident_date_time: OffsetDateTime,
    /// `incidentDateTimeDescription` (at most 3000 characters).
    pub incident_date_time_description: Option<String>,
}

impl Default for IncidentSummary {
    fn default() -> IncidentSummary {
        IncidentSummary {
            incident_type: IncidentType::ChildPornography,
            platform: None,
            escalate_to_high_priority: None,
            annotations: ReportAnnotations::default(),
            incident_date_time: OffsetDateTime::UNIX_EPOCH,
            incident_date_time_description: None,
        }
    }
}

/// `<reportAnnotations>`: presence flags describing the incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportAnnotations {
    /// `sextortion`.
    pub sextortion: bool,
    /// `csamSolicitation`.
    pub csam_solicitation: bool,
    /// `minorToMinorInteraction`.
    pub minor_to_minor_interaction: bool,
    /// `spam`.
    pub spam: bool,
    /// `sadisticOnlineExploitation`.
    pub sadistic_online_exploitation: bool,
}

impl ReportAnnotations {
    /// The flags as (element name, set) pairs, in XSD order.
    pub fn flags(&self) -> [(&'static str, bool); 5] {
        [
            ("sextortion", self.sextortion),
            ("csamSolicitation", self.csam_solicitation),
            ("minorToMinorInteraction", self.minor_to_minor_interaction),
            ("spam", self.spam),
            (
                "sadisticOnlineExploitation",
                self.sadistic_online_exploitation,
            ),
        ]
    }

    /// True if any flag is set.
    pub fn any(&self) -> bool {
        self.flags().iter().any(|(_, set)| *set)
    }

    /// Sets the flag named `name`; false if there is no such flag.
    pub fn set(&mut self, name: &str) -> bool {
        let slot = match name {
            "sextortion" => &mut self.sextortion,
            "csamSolicitation" => &mut self.csam_solicitation,
            "minorToMinorInteraction" => &mut self.minor_to_minor_interaction,
            "spam" => &mut self.spam,
            "sadisticOnlineExploitation" => &mut self.sadistic_online_exploitation,
            _ => return false,
        };
        *slot = true;
        true
    }
}

/// `<internetDetails>`: exactly one incident kind each.
#[derive(Clone, Debug, PartialEq)]
pub enum InternetDetails {
    /// `<webPageIncident>`.
    WebPage {
        /// `url`, each at most 2083 characters.
        urls: Vec<String>,
        /// `additionalInfo`.
        additional_info: Option<String>,
        /// `@thirdPartyHostedContent`: the URL is hosted by another company.
        third_party_hosted_content: Option<bool>,
    },
    /// `<chatImIncident>` (its `content` element is deliberately not modelled).
    ChatIm {
        /// `chatClient`.
        chat_client: Option<String>,
        /// `chatRoomName`.
        chat_room_name: Option<String>,
        /// `additionalInfo`.
        additional_info: Option<String>,
    },
    /// Another incident kind (`emailIncident`, `peer2peerIncident`, ...), known
    /// only by its element name. Parsed documents only; written as an empty element.
    Other {
        /// The element name.
        kind: String,
    },
}

/// `<reporter>`: the reporting company, from configuration.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Reporter {
    /// `reportingPerson`: NCMEC requires an email.
    pub reporting_person: Person,
    /// `contactPerson`: who law enforcement should contact, if not the reporting person.
    pub contact_person: Option<ContactPerson>,
    /// `companyTemplate`: text included in every report (legal process, retention).
    pub company_template: Option<String>,
    /// `termsOfService`.
    pub terms_of_service: Option<String>,
    /// `legalURL` (at most 2083 characters).
    pub legal_url: Option<String>,
}

/// The XSD `person` type.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Person {
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `phone`.
    pub phones: Vec<Phone>,
    /// `email`.
    pub emails: Vec<Email>,
    /// `address`.
    pub addresses: Vec<Address>,
    /// `age`, 0 to 150.
    pub age: Option<i32>,
    /// `dateOfBirth`; must be in the past.
    pub date_of_birth: Option<Date>,
}

/// The XSD `contactPerson` type (a person without age or date of birth).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ContactPerson {
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `phone`.
    pub phones: Vec<Phone>,
    /// `email`.
    pub emails: Vec<Email>,
    /// `address`.
    pub addresses: Vec<Address>,
}

/// The XSD `phone` type.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Phone {
    /// The number.
    pub number: String,
    /// `@type`.
    pub kind: Option<PhoneType>,
    /// `@verified`.
    pub verified: Option<bool>,
    /// `@countryCallingCode`, `+` and 1 to 3 digits.
    pub country_calling_code: Option<String>,
    /// `@extension`, digits.
    pub extension: Option<String>,
}

/// The XSD `email` type.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Email {
    /// The address.
    pub address: String,
    /// `@type`.
    pub kind: Option<EmailType>,
    /// `@verified`.
    pub verified: Option<bool>,
    /// `@verificationDate`; must be in the past.
    pub verification_date: Option<OffsetDateTime>,
}

/// The XSD `address` type.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Address {
    /// `@type`.
    pub kind: Option<AddressType>,
    /// `address`: the street address.
    pub street: Option<String>,
    /// `city`.
    pub city: Option<String>,
    /// `zipCode`.
    pub zip_code: Option<String>,
    /// `state`: a US state or territory, two letters.
    pub state: Option<String>,
    /// `nonUsaState`.
    pub non_usa_state: Option<String>,
    /// `country`: ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// `<personOrUserReported>`: the end user the report is about.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PersonOrUserReported {
    /// `personOrUserReportedPerson`.
    pub person: Option<Person>,
    /// `espIdentifier`: our id for the user (at most 255 characters).
    pub esp_identifier: Option<String>,
    /// `espService`: our product the user used (at most 100 characters).
    pub esp_service: Option<String>,
    /// `compromisedAccount`.
    pub compromised_account: Option<bool>,
    /// `screenName`.
    pub screen_name: Option<String>,
    /// `displayName`.
    pub display_names: Vec<String>,
    /// `profileUrl`, each at most 2083 characters.
    pub profile_urls: Vec<String>,
    /// `ipCaptureEvent`.
    pub ip_capture_events: Vec<IpCaptureEvent>,
    /// `deviceId`.
    pub device_ids: Vec<DeviceId>,
    /// `thirdPartyUserReported`.
    pub third_party_user_reported: Option<bool>,
    /// `priorCTReports`: earlier CyberTipline report ids about this user.
    pub prior_ct_reports: Vec<i64>,
    /// `groupIdentifier`.
    pub group_identifier: Option<String>,
    /// `accountTemporarilyDisabled`.
    pub account_temporarily_disabled: Option<AccountDisabled>,
    /// `accountPermanentlyDisabled` (its `reenabled_date` is never written).
    pub account_permanently_disabled: Option<AccountDisabled>,
    /// `additionalInfo`.
    pub additional_info: Option<String>,
}

/// `accountTemporarilyDisabled` / `accountPermanentlyDisabled`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountDisabled {
    /// The element's boolean value.
    pub disabled: bool,
    /// `@disabledDate`.
    pub disabled_date: Option<OffsetDateTime>,
    /// `@userNotified`.
    pub user_notified: Option<bool>,
    /// `@userNotifiedDate`.
    pub user_notified_date: Option<OffsetDateTime>,
    /// `@reenabledDate` (temporary disablement only).
    pub reenabled_date: Option<OffsetDateTime>,
}

/// The XSD `ipCaptureEvent` type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpCaptureEvent {
    /// `ipAddress`.
    pub ip_address: String,
    /// `eventName`.
    pub event_name: Option<IpEvent>,
    /// `dateTime`; must be in the past.
    pub date_time: Option<OffsetDateTime>,
    /// `possibleProxy`.
    pub possible_proxy: Option<bool>,
    /// `port`, 1 to 65535.
    pub port: Option<i32>,
}

/// The XSD `deviceId` type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId {
    /// `idType`, e.g. IMEI.
    pub id_type: String,
    /// `idValue`.
    pub id_value: String,
    /// `eventName`.
    pub event_name: Option<IpEvent>,
    /// `dateTime`; must be in the past.
    pub date_time: Option<OffsetDateTime>,
}

/// `<fileDetails>`: the body of `POST /fileinfo`, at most once per uploaded file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FileDetails {
    /// `reportId`.
    pub report_id: i64,
    /// `fileId`, as `/upload` returned it.
    pub file_id: String,
    /// `fileName`: the name we give the file.
    pub file_name: Option<String>,
    /// `originalFileName`: the name the user uploaded it under (at most 2056 characters).
    pub original_file_name: Option<String>,
    /// `uploadedToEspTimestamp`: when the file reached us; must be in the past.
    pub uploaded_to_esp_timestamp: Option<OffsetDateTime>,
    /// `locationOfFile`: where the file was originally located (at most 2083 characters).
    pub location_of_file: Option<String>,
    /// `fileViewedByEsp`: true only if a person at the company actually viewed it.
    pub file_viewed_by_esp: Option<bool>,
    /// `exifViewedByEsp`: true only if a person viewed its EXIF (then the file was viewed too).
    pub exif_viewed_by_esp: Option<bool>,
    /// `publiclyAvailable`.
    pub publicly_available: Option<bool>,
    /// `fileRelevance`.
    pub file_relevance: Option<FileRelevance>,
    /// `fileAnnotations` (the legacy top-level `potentialMeme` is read into
    /// `potential_meme` and never written).
    pub annotations: FileAnnotations,
    /// `industryClassification`.
    pub industry_classification: Option<IndustryClassification>,
    /// `originalFileHash`: hashes of the original bytes, before any modification.
    pub original_file_hashes: Vec<FileHash>,
    /// `ipCaptureEvent`: the upload IP.
    pub ip_capture_event: Option<IpCaptureEvent>,
    /// `deviceId`.
    pub device_ids: Vec<DeviceId>,
    /// `details`: metadata name/value pairs.
    pub details: Vec<Details>,
    /// `additionalInfo`.
    pub additional_info: Vec<String>,
}

/// `<fileAnnotations>`: presence flags describing one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileAnnotations {
    /// `animeDrawingVirtualHentai`.
    pub anime_drawing_virtual_hentai: bool,
    /// `potentialMeme`.
    pub potential_meme: bool,
    /// `viral`.
    pub viral: bool,
    /// `possibleSelfProduction`.
    pub possible_self_production: bool,
    /// `physicalHarm`.
    pub physical_harm: bool,
    /// `violenceGore`.
    pub violence_gore: bool,
    /// `bestiality`.
    pub bestiality: bool,
    /// `liveStreaming`.
    pub live_streaming: bool,
    /// `infant`.
    pub infant: bool,
    /// `generativeAi`: the file content is believed to be model output or AI-altered.
    /// Never for material merely found in training data.
    pub generative_ai: bool,
}

impl FileAnnotations {
    /// The flags as (element name, set) pairs, in XSD order.
    pub fn flags(&self) -> [(&'static str, bool); 10] {
        [
            (
                "animeDrawingVirtualHentai",
                self.anime_drawing_virtual_hentai,
            ),
            ("potentialMeme", self.potential_meme),
            ("viral", self.viral),
            ("possibleSelfProduction", self.possible_self_production),
            ("physicalHarm", self.physical_harm),
            ("violenceGore", self.violence_gore),
            ("bestiality", self.bestiality),
            ("liveStreaming", self.live_streaming),
            ("infant", self.infant),
            ("generativeAi", self.generative_ai),
        ]
    }

    /// True if any flag is set.
    pub fn any(&self) -> bool {
        self.flags().iter().any(|(_, set)| *set)
    }

    /// Sets the flag named `name`; false if there is no such flag.
    pub fn set(&mut self, name: &str) -> bool {
        let slot = match name {
            "animeDrawingVirtualHentai" => &mut self.anime_drawing_virtual_hentai,
            "potentialMeme" => &mut self.potential_meme,
            "viral" => &mut self.viral,
            "possibleSelfProduction" => &mut self.possible_self_production,
            "physicalHarm" => &mut self.physical_harm,
            "violenceGore" => &mut self.violence_gore,
            "bestiality" => &mut self.bestiality,
            "liveStreaming" => &mut self.live_streaming,
            "infant" => &mut self.infant,
            "generativeAi" => &mut self.generative_ai,
            _ => return false,
        };
        *slot = true;
        true
    }
}

/// `<originalFileHash hashType="...">`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHash {
    /// `@hashType`, e.g. `MD5`, `SHA256`.
    pub hash_type: String,
    /// The hash value (at most 64 characters).
    pub value: String,
}

/// `<details type="...">`: metadata name/value pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details {
    /// `@type`.
    pub kind: Option<DetailsType>,
    /// `nameValuePair`s (at least one; names at most 64 characters).
    pub pairs: Vec<(String, String)>,
}

/// `<reportResponse>`: the answer to status, submit, upload, fileinfo and retract.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReportResponse {
    /// `responseCode`: 0 is success.
    pub response_code: i32,
    /// `responseDescription`.
    pub response_description: String,
    /// `reportId`.
    pub report_id: Option<i64>,
    /// `fileId` (upload).
    pub file_id: Option<String>,
    /// `hash`: MD5 of the bytes the server received (upload).
    pub hash: Option<String>,
}

/// `<reportDoneResponse>`: the answer to finish, and the receipt that serves as
/// the ESP notification under 18 U.S.C. 2258A.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReportDoneResponse {
    /// `responseCode`: 0 is success.
    pub response_code: i32,
    /// `reportId`.
    pub report_id: i64,
    /// `files/fileId`: the files the report holds.
    pub files: Vec<String>,
}
