//! NCMEC XML: writing the model in exact XSD order, and reading documents
//! from outside (responses, request bodies) into it.
//!
//! This is the only place in childsafe that knows the CyberTipline's XML
//! (ARCHITECTURE.md: "only cybertip knows NCMEC XML").

pub(crate) mod dom;
mod read;
mod write;

pub use read::{
    file_details_from_xml, report_done_response_from_xml, report_from_xml,
    report_response_from_xml, root_name,
};
pub(crate) use write::format_date_time;
pub use write::{
    file_details_to_xml, report_done_response_to_xml, report_response_to_xml, report_to_xml,
};
