//! Metric names and the Prometheus recorder.
//!
//! Names are constants so that dashboards do not break on a retyped string.
//! Labels are low-cardinality only: protocol, surface, action, category,
//! error kind, upstream name. Never user ids, tenant keys or hashes.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Requests handled, by `route` and `status` class.
pub const REQUESTS: &str = "childsafe_gateway_requests_total";
/// Time to the response head, in seconds, by `route`.
pub const LATENCY: &str = "childsafe_gateway_request_duration_seconds";
/// Time spent in checks, in seconds, by `surface`.
pub const CHECK_LATENCY: &str = "childsafe_gateway_check_duration_seconds";
/// Decisions, by `surface`, `action` and `category` (`none` when no category).
pub const DECISIONS: &str = "childsafe_gateway_decisions_total";
/// Errors answered, by `kind`.
pub const ERRORS: &str = "childsafe_gateway_errors_total";
/// Upstream failures, by `upstream` and `kind` (`timeout`, `connect`, `status_5xx`, `reset`, `stream`).
pub const UPSTREAM_ERRORS: &str = "childsafe_gateway_upstream_errors_total";
/// Required detectors that could not answer, by `detector` class.
pub const DETECTOR_FAILURES: &str = "childsafe_gateway_detector_failures_total";
/// Incident writes retried, and writes that failed for good, by `outcome`.
pub const RECORD_WRITES: &str = "childsafe_gateway_record_writes_total";
/// Open cases (gauge, refreshed periodically).
pub const OPEN_CASES: &str = "childsafe_gateway_open_cases";
/// Streams cut by the output guard.
pub const STREAMS_BLOCKED: &str = "childsafe_gateway_streams_blocked_total";
/// Requests refused for an active sanction, by `action`.
pub const SANCTIONED: &str = "childsafe_gateway_sanctioned_total";
/// Remote image URLs forwarded without being fetched.
pub const UNCHECKED_IMAGE_URLS: &str = "childsafe_gateway_unchecked_image_urls_total";
/// Requests shed by the concurrency limit.
pub const SHED: &str = "childsafe_gateway_shed_total";
/// Rollout stage transitions, by `transition`.
pub const ROLLOUT_TRANSITIONS: &str = "childsafe_gateway_rollout_transitions_total";

/// Histogram bucket bounds, in seconds: every histogram here is a duration,
/// from sub-millisecond checks to minute-long streams.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Installs the global Prometheus recorder once; later calls return the same handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Histograms with fixed buckets, not the exporter's default
            // summaries: buckets add up across replicas (summaries' quantiles
            // do not), and the periodic upkeep only counts samples into
            // buckets instead of folding every sample into quantile sketches,
            // which under load stalled a worker for milliseconds every 5 s.
            let builder = PrometheusBuilder::new();
            let recorder = match builder.set_buckets(&DURATION_BUCKETS) {
                Ok(builder) => builder,
                // Only for an empty bucket list, which the constant is not.
                Err(_) => PrometheusBuilder::new(),
            }
            .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding
            // program); then ours only renders what was registered with it.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
