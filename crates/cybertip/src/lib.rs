//! NCMEC CyberTipline reporting: the only place in childsafe that knows
//! NCMEC's XML and API.
//!
//! - [`model`]: `<report>`, `<fileDetails>` and the response documents as
//!   Rust types; [`xml`] writes them in exact XSD order and reads documents
//!   from outside; [`schema`] validates against NCMEC's XSD (fastxml).
//! - [`rules`]: the documented rules the XSD lacks (lengths, dates in the
//!   past, Appendix E batched reports), with errors naming the field.
//! - [`builder`]: from a confirmed case to a report and per-file details:
//!   incident type and annotations from the categories, `<generativeAi/>`
//!   only for model output, `fileViewedByEsp` only from recorded views.
//! - [`client`]: status, submit, upload, fileinfo, finish, retract, with
//!   classified errors and retries of retryable failures only.
//! - [`outbox`]: the driver that walks a case's report through the API as a
//!   persistent state machine in the store's outbox, so that a crash at any
//!   point resumes without losing a file or finishing a report twice.
//! - [`fake`]: a local fake CyberTipline with fault injection.
//!
//! Content (file bytes) passes through this crate only on its way from the
//! vault to `/upload`; it never reaches report XML, logs or errors.
//!
//! ```
//! use childsafe_cybertip::model::{FileAnnotations, FileDetails};
//!
//! let details = FileDetails {
//!     report_id: 4564654,
//!     file_id: "b0754af766b426f2928a02c651ed4b99".into(),
//!     annotations: FileAnnotations { generative_ai: true, ..FileAnnotations::default() },
//!     ..FileDetails::default()
//! };
//! let text = childsafe_cybertip::xml::file_details_to_xml(&details).unwrap();
//! assert!(text.contains("<fileAnnotations>\n        <generativeAi/>\n    </fileAnnotations>"));
//! ```

#![deny(missing_docs)]

pub mod builder;
pub mod client;
pub mod config;
pub mod error;
pub mod failpoint;
pub mod fake;
pub mod model;
pub mod outbox;
pub mod rules;
pub mod schema;
pub mod store_case;
pub mod xml;

pub use crate::error::Error;
