//! Faults the fake injects on demand, per endpoint and per call count.
//!
//! A rule applies to calls `first_call ..= first_call + count - 1` of one
//! endpoint (calls are counted per endpoint from 1, faulted or not), or of
//! every endpoint. Tests add rules through [`super::FakeServer::add_fault`];
//! people trying `childsafe dev fake-cybertip` POST them as JSON to
//! `/_fake/faults`, e.g.
//! `{"endpoint": "upload", "first_call": 1, "count": 1, "fault": {"kind": "drop_after_act"}}`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The API endpoints the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /status`.
    Status,
    /// `GET /xsd`.
    Xsd,
    /// `POST /submit`.
    Submit,
    /// `POST /upload`.
    Upload,
    /// `POST /fileinfo`.
    Fileinfo,
    /// `POST /finish`.
    Finish,
    /// `POST /retract`.
    Retract,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 7] = [
        Endpoint::Status,
        Endpoint::Xsd,
        Endpoint::Submit,
        Endpoint::Upload,
        Endpoint::Fileinfo,
        Endpoint::Finish,
        Endpoint::Retract,
    ];

    /// The path segment, e.g. `upload`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Endpoint::Status => "status",
            Endpoint::Xsd => "xsd",
            Endpoint::Submit => "submit",
            Endpoint::Upload => "upload",
            Endpoint::Fileinfo => "fileinfo",
            Endpoint::Finish => "finish",
            Endpoint::Retract => "retract",
        }
    }
}

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer this HTTP status (5xx) with a plain-text body, without acting:
    /// what a proxy in front of NCMEC does.
    HttpStatus {
        /// The status, e.g. 503.
        status: u16,
    },
    /// Answer a `<reportResponse>` with this code (1000, 1100, 1110, ...),
    /// without acting.
    ResponseCode {
        /// The `responseCode`.
        code: i32,
        /// The HTTP status. Default 500.
        #[serde(default = "default_error_status")]
        http_status: u16,
    },
    /// Hold the request for `millis` before answering, so that the client
    /// times out. With `act`, the server acts before holding (the client
    /// cannot know it did); without, it acts after (if the client is still there).
    Hang {
        /// How long to hold, in milliseconds.
        millis: u64,
        /// Act before holding.
        #[serde(default)]
        act: bool,
    },
    /// Close the connection without a response, before acting.
    DropBeforeAct,
    /// Act (create the report, store the file, finish...), then close the
    /// connection without a response: the hard case for a client.
    DropAfterAct,
    /// Upload only: store the file, but answer with an MD5 that is not the
    /// received bytes' (as if the bytes were damaged on the way).
    WrongMd5,
}

fn default_error_status() -> u16 {
    500
}

/// When a fault applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The endpoint, or every endpoint if absent.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// The first call (1-based, counted per endpoint) it applies to. Default 1.
    #[serde(default = "one")]
    pub first_call: u64,
    /// How many consecutive calls it applies to. Default 1.
    #[serde(default = "one_u32")]
    pub count: u32,
    /// The fault.
    pub fault: Fault,
}

fn one() -> u64 {
    1
}

fn one_u32() -> u32 {
    1
}

impl FaultRule {
    /// A fault on the `nth` call of `endpoint` only.
    pub fn nth(endpoint: Endpoint, nth: u64, fault: Fault) -> FaultRule {
        FaultRule {
            endpoint: Some(endpoint),
            first_call: nth,
            count: 1,
            fault,
        }
    }

    /// A fault on `count` calls of `endpoint` from the `first`.
    pub fn calls(endpoint: Endpoint, first: u64, count: u32, fault: Fault) -> FaultRule {
        FaultRule {
            endpoint: Some(endpoint),
            first_call: first,
            count,
            fault,
        }
    }

    /// Whether it applies to call number `call` of `endpoint`.
    pub fn applies(&self, endpoint: Endpoint, call: u64) -> bool {
        self.endpoint.is_none_or(|it| it == endpoint)
            && call >= self.first_call
            && call < self.first_call.saturating_add(u64::from(self.count))
    }

    /// How long a [`Fault::Hang`] holds.
    pub fn hang(&self) -> Option<Duration> {
        match self.fault {
            Fault::Hang { millis, .. } => Some(Duration::from_millis(millis)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_their_window_and_parse_from_json() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"endpoint": "upload", "first_call": 2, "count": 2, "fault": {"kind": "response_code", "code": 1110}}"#,
        )
        .unwrap();
        assert_eq!(
            rule.fault,
            Fault::ResponseCode {
                code: 1110,
                http_status: 500
            }
        );
        let hits: Vec<u64> = (1..6)
            .filter(|&n| rule.applies(Endpoint::Upload, n))
            .collect();
        assert_eq!(hits, [2, 3]);
        assert!(!rule.applies(Endpoint::Submit, 2));
        let any: FaultRule =
            serde_json::from_str(r#"{"fault": {"kind": "drop_after_act"}}"#).unwrap();
        assert!(any.applies(Endpoint::Finish, 1) && !any.applies(Endpoint::Finish, 2));
    }
}
