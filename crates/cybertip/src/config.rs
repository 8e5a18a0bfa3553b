//! Reporter configuration: who we are, for the `<reporter>` block and the
//! service fields of every report, read from a TOML file and/or environment
//! variables. Credentials are never in this file: they come from
//! `CHILDSAFE_NCMEC_USER` and `CHILDSAFE_NCMEC_PASSWORD` (see [`crate::client`]).
//!
//! ```toml
//! [reporter]                       # the reportingPerson; email is required
//! first_name = "Trust"
//! last_name = "Safety"
//! email = "trust-safety@example.com"
//! phone = "5550100"                # optional
//! phone_country_code = "+1"        # optional, + and 1 to 3 digits
//! company_template = "Legal process: legal@example.com. Data preserved 1 year."   # optional
//! terms_of_service = "https://example.com/terms"   # optional
//! legal_url = "https://example.com/legal"          # optional
//!
//! [reporter.contact]               # optional: who law enforcement should contact
//! first_name = "Legal"
//! last_name = "Contact"
//! email = "legal@example.com"
//!
//! [service]
//! platform = "Example Image Generation API"   # incidentSummary/platform and espService
//! url = "https://api.example.com/v1"          # optional: the webPageIncident URL for gateway cases
//! ```
//!
//! Environment variables override the file, or stand in for it:
//! `CHILDSAFE_NCMEC_REPORTER_EMAIL`, `CHILDSAFE_NCMEC_REPORTER_FIRST_NAME`,
//! `CHILDSAFE_NCMEC_REPORTER_LAST_NAME`, `CHILDSAFE_NCMEC_PLATFORM`,
//! `CHILDSAFE_NCMEC_SERVICE_URL`.

use std::path::Path;

use serde::Deserialize;

use crate::{
    error::Error,
    model::{ContactPerson, Email, Person, Phone, Reporter},
};

/// Environment variable naming the reporter configuration file.
pub const CONFIG_ENV: &str = "CHILDSAFE_NCMEC_CONFIG";

/// Who files the reports, and for which service.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReporterConfig {
    /// The reporting person (`[reporter]`).
    #[serde(default)]
    pub reporter: ReportingPersonConfig,
    /// The reporting company's service (`[service]`).
    #[serde(default)]
    pub service: ServiceConfig,
}

/// `[reporter]`: the person NCMEC sees as the reporter.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingPersonConfig {
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email address (required by NCMEC).
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Phone country calling code, e.g. `+1`.
    #[serde(default)]
    pub phone_country_code: Option<String>,
    /// `companyTemplate`: text for every report (legal process, retention, emergency contact).
    #[serde(default)]
    pub company_template: Option<String>,
    /// `termsOfService`.
    #[serde(default)]
    pub terms_of_service: Option<String>,
    /// `legalURL`.
    #[serde(default)]
    pub legal_url: Option<String>,
    /// `[reporter.contact]`: the law-enforcement contact, if not the reporting person.
    #[serde(default)]
    pub contact: Option<ContactConfig>,
}

/// `[reporter.contact]`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactConfig {
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Phone country calling code.
    #[serde(default)]
    pub phone_country_code: Option<String>,
}

/// `[service]`: what the reporting company runs.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The product name: `incidentSummary/platform` (at most 256 characters)
    /// and `espService` (at most 100).
    #[serde(default)]
    pub platform: Option<String>,
    /// The service's public URL, used as the `webPageIncident` URL for cases
    /// from the gateway.
    #[serde(default)]
    pub url: Option<String>,
}

impl ReporterConfig {
    /// Reads a TOML file, then applies environment overrides.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and the offending key.
    pub fn load(path: &Path) -> Result<ReporterConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config: ReporterConfig = toml::from_str(&text).map_err(|err| Error::Config {
            source_name: path.display().to_string(),
            message: err.message().to_owned()
                + &err
                    .span()
                    .map(|span| format!(" (line {})", 1 + text[..span.start].matches('\n').count()))
                    .unwrap_or_default(),
        })?;
        config.apply_env(|name| std::env::var(name).ok());
        Ok(config)
    }

    /// Loads from `path` if given, else from `$CHILDSAFE_NCMEC_CONFIG` if set,
    /// else from environment variables alone.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and the offending key.
    pub fn from_file_or_env(path: Option<&Path>) -> Result<ReporterConfig, Error> {
        let from_env = std::env::var_os(CONFIG_ENV).map(std::path::PathBuf::from);
        match path.map(Path::to_owned).or(from_env) {
            Some(path) => ReporterConfig::load(&path),
            None => {
                let mut config = ReporterConfig::default();
                config.apply_env(|name| std::env::var(name).ok());
                Ok(config)
            }
        }
    }

    /// Applies `CHILDSAFE_NCMEC_*` overrides from `lookup`.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        let set = |slot: &mut Option<String>, name: &str| {
            if let Some(value) = lookup(name).filter(|it| !it.trim().is_empty()) {
                *slot = Some(value);
            }
        };
        set(&mut self.reporter.email, "CHILDSAFE_NCMEC_REPORTER_EMAIL");
        set(
            &mut self.reporter.first_name,
            "CHILDSAFE_NCMEC_REPORTER_FIRST_NAME",
        );
        set(
            &mut self.reporter.last_name,
            "CHILDSAFE_NCMEC_REPORTER_LAST_NAME",
        );
        set(&mut self.service.platform, "CHILDSAFE_NCMEC_PLATFORM");
        set(&mut self.service.url, "CHILDSAFE_NCMEC_SERVICE_URL");
    }

    /// The `<reporter>` block.
    ///
    /// # Errors
    /// [`Error::Config`] if the reporter email is missing.
    pub fn reporter(&self) -> Result<Reporter, Error> {
        let person = &self.reporter;
        let Some(email) = person.email.clone().filter(|it| !it.trim().is_empty()) else {
            return Err(Error::Config {
                source_name: "reporter configuration".to_owned(),
                message: "reporter.email: expected the reporting person's email address (NCMEC requires it), got nothing; set it in the file or CHILDSAFE_NCMEC_REPORTER_EMAIL".to_owned(),
            });
        };
        Ok(Reporter {
            reporting_person: Person {
                first_name: person.first_name.clone(),
                last_name: person.last_name.clone(),
                phones: phone(&person.phone, &person.phone_country_code),
                emails: vec![Email {
                    address: email,
                    ..Email::default()
                }],
                ..Person::default()
            },
            contact_person: person.contact.as_ref().map(|contact| ContactPerson {
                first_name: contact.first_name.clone(),
                last_name: contact.last_name.clone(),
                phones: phone(&contact.phone, &contact.phone_country_code),
                emails: contact
                    .email
                    .iter()
                    .map(|address| Email {
                        address: address.clone(),
                        ..Email::default()
                    })
                    .collect(),
                addresses: Vec::new(),
            }),
            company_template: person.company_template.clone(),
            terms_of_service: person.terms_of_service.clone(),
            legal_url: person.legal_url.clone(),
        })
    }
}

fn phone(number: &Option<String>, code: &Option<String>) -> Vec<Phone> {
    number
        .iter()
        .map(|number| Phone {
            number: number.clone(),
            country_calling_code: code.clone(),
            ..Phone::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_file_and_env_overrides_it() {
        let mut config: ReporterConfig = toml::from_str(
            "[reporter]\nemail = \"a@example.com\"\nfirst_name = \"Trust\"\n[service]\nplatform = \"Gen\"\n",
        )
        .unwrap();
        config.apply_env(|name| (name == "CHILDSAFE_NCMEC_PLATFORM").then(|| "Other".to_owned()));
        assert_eq!(config.service.platform.as_deref(), Some("Other"));
        let reporter = config.reporter().unwrap();
        assert_eq!(reporter.reporting_person.emails[0].address, "a@example.com");
    }

    #[test]
    fn missing_email_and_unknown_keys_are_named() {
        let err = ReporterConfig::default().reporter().unwrap_err();
        assert!(err.to_string().contains("reporter.email"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ncmec.toml");
        std::fs::write(&path, "[reporter]\nemial = \"x\"\n").unwrap();
        let err = ReporterConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("ncmec.toml") && err.contains("emial") && err.contains("line 2"),
            "{err}"
        );
    }
}
