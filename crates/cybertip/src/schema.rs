//! Validation against NCMEC's XSD, in pure Rust (fastxml).
//!
//! The XSD is NCMEC's reference material and is not copied into this
//! repository: it is read at run time from a path (`--xsd`,
//! `CHILDSAFE_NCMEC_XSD`, or the shared fixtures folder next to the checkout).
//! fastxml agreed with xmllint (libxml2) on every example NCMEC and we
//! provide, including the `generativeAi` `false`/`0`/`1` cases, and the tests
//! keep cross-checking the two on every document we generate. We chose it
//! over shelling out to xmllint so that the fake server, which users run as
//! `childsafe dev fake-cybertip`, needs no system package.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use fastxml::schema::{Schema as CompiledSchema, Validator};

use crate::error::Error;

/// File name of the November 2025 XSD in the shared fixtures folder.
pub const XSD_FILE_NAME: &str = "cybertipline_report_ispws_2025-11.xsd";

/// Environment variable naming the XSD file.
pub const XSD_ENV: &str = "CHILDSAFE_NCMEC_XSD";

/// A compiled CyberTipline XSD. Cheap to clone; shareable across threads.
#[derive(Clone)]
pub struct Schema {
    compiled: Arc<CompiledSchema>,
    source: Arc<Vec<u8>>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("bytes", &self.source.len())
            .finish()
    }
}

impl Schema {
    /// Compiles an XSD from its text.
    ///
    /// # Errors
    /// [`Error::SchemaLoad`] if it does not compile.
    pub fn from_bytes(xsd: Vec<u8>, origin: &Path) -> Result<Schema, Error> {
        let compiled = CompiledSchema::from_xsd(&xsd).map_err(|err| Error::SchemaLoad {
            path: origin.to_owned(),
            message: format!("not a usable XSD: {err}"),
        })?;
        Ok(Schema {
            compiled: Arc::new(compiled),
            source: Arc::new(xsd),
        })
    }

    /// Reads and compiles an XSD file.
    ///
    /// # Errors
    /// [`Error::SchemaLoad`] if it cannot be read or does not compile.
    pub fn load(path: &Path) -> Result<Schema, Error> {
        let bytes = std::fs::read(path).map_err(|err| Error::SchemaLoad {
            path: path.to_owned(),
            message: format!("cannot read the XSD: {err}"),
        })?;
        Schema::from_bytes(bytes, path)
    }

    /// Finds the XSD: `explicit` if given, else `$CHILDSAFE_NCMEC_XSD`, else
    /// [`default_xsd_path`] if it exists. `None` when none of these is set or present.
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = explicit {
            return Some(path.to_owned());
        }
        if let Some(path) = std::env::var_os(XSD_ENV) {
            return Some(PathBuf::from(path));
        }
        let default = default_xsd_path();
        default.is_file().then_some(default)
    }

    /// The XSD's bytes, as served by the fake's `GET /xsd`.
    pub fn source(&self) -> &[u8] {
        &self.source
    }

    /// Validates one document.
    ///
    /// # Errors
    /// [`Error::Schema`] with every message (element path and line), or
    /// [`Error::Xml`] if the document is not well-formed.
    pub fn validate(&self, document: &[u8]) -> Result<(), Error> {
        let report = Validator::from(document)
            .schema(Arc::clone(&self.compiled))
            .max_errors(20)
            .run()
            .map_err(|err| Error::Xml {
                line: 0,
                path: String::new(),
                message: format!("not well-formed XML: {err}"),
            })?;
        if report.is_valid() {
            return Ok(());
        }
        Err(Error::Schema {
            errors: report.errors().iter().map(|it| it.to_string()).collect(),
        })
    }
}

/// The shared fixtures copy of the XSD, relative to this crate's source:
/// `<checkout>/../shared/ncmec/cybertipline_report_ispws_2025-11.xsd`.
pub fn default_xsd_path() -> PathBuf {
    shared_ncmec_dir().join(XSD_FILE_NAME)
}

/// The shared NCMEC fixtures folder (`<checkout>/../shared/ncmec`).
pub fn shared_ncmec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ncmec")
}
