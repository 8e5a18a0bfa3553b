//! The gateway's configuration: a TOML file where every key has a documented
//! default (`examples/gateway.toml` lists them all).
//!
//! Parsing checks the shape (unknown keys are errors, so typos surface);
//! [`GatewayConfig::validate`] checks what the shape cannot (references
//! between sections, ladders in order, percentages in range) and names the
//! offending key.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Header naming the end user; takes precedence over the body's `user`
    /// (OpenAI) or `metadata.user_id` (Anthropic). Default: `x-childsafe-user`.
    #[serde(default = "default_user_header")]
    pub user_header: String,
    /// A policy file layered over the built-in policy. Default: none (built-in).
    #[serde(default)]
    pub policy_file: Option<PathBuf>,
    /// The engine's config file (extra lexicons, operator term lists, remote
    /// classifiers, account risk). Default: none (built-in detectors only).
    #[serde(default)]
    pub engine_config: Option<PathBuf>,
    /// Directory of hash banks (as `childsafe bank` writes them) that inline
    /// images are matched against on the input surface; `childsafe serve
    /// --banks DIR` overrides it. Default: none (images are only hashed,
    /// for incidents).
    #[serde(default)]
    pub banks_dir: Option<PathBuf>,
    /// Model APIs, by name.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Which upstream serves which route, and what happens to other paths.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// Tenants and their API keys (hashed).
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Size, time and concurrency limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Prevention, support and refusal texts per language, over the defaults.
    #[serde(default)]
    pub messages: MessagesConfig,
    /// The database.
    #[serde(default)]
    pub store: StoreConfig,
    /// The evidence vault.
    #[serde(default)]
    pub vault: VaultConfig,
    /// Strike ladders and appeals.
    #[serde(default)]
    pub enforcement: EnforcementConfig,
    /// User reports.
    #[serde(default)]
    pub reports: ReportsConfig,
    /// Phased rollout of a new upstream.
    #[serde(default)]
    pub rollout: Option<RolloutConfig>,
    /// The admin API.
    #[serde(default)]
    pub admin: AdminConfig,
}

/// One model API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL, e.g. `https://api.openai.com` (paths such as
    /// `/v1/chat/completions` are appended). Required.
    pub base_url: String,
    /// Environment variable holding the upstream API key. Default: none (no
    /// key sent; for local models).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Connect timeout in milliseconds. Default: 5000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time to the response headers, in seconds. Default: 120.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Longest pause between two chunks of a streamed body, in seconds. Default: 120.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Idle connections kept per host. Default: 256.
    #[serde(default = "default_pool_idle")]
    pub pool_max_idle_per_host: usize,
}

/// Routing.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Upstream for `POST /v1/chat/completions`. Default: `openai`.
    #[serde(default = "default_openai")]
    pub openai_upstream: String,
    /// Upstream for `POST /v1/messages`. Default: `anthropic`.
    #[serde(default = "default_anthropic")]
    pub anthropic_upstream: String,
    /// Other paths under `/v1/`: `refuse` (404) or `pass` (forwarded
    /// unchanged to `other_upstream`, unchecked). Default: `refuse`.
    #[serde(default)]
    pub other_paths: OtherPaths,
    /// Upstream for passed-through paths. Default: the OpenAI upstream.
    #[serde(default)]
    pub other_upstream: Option<String>,
    /// Remote image URLs: `pass` (forwarded unfetched and counted), `refuse`,
    /// or `allowlisted` (only URLs on `remote_image_allowlist` hosts are
    /// forwarded; others are refused). Default: `pass`. The gateway never
    /// fetches image URLs itself: fetching what clients name would let them
    /// make it request internal addresses (server-side request forgery), so
    /// remote images are not hashed against the banks.
    #[serde(default)]
    pub remote_images: RemoteImages,
    /// Hosts accepted by `allowlisted` (https only). Default: none.
    #[serde(default)]
    pub remote_image_allowlist: Vec<String>,
    /// How help-seeking requests that the policy allows get their resources:
    /// `append` (the support text is appended to the model's answer, and the
    /// header is set) or `header` (the `x-childsafe-resources` header and a
    /// `childsafe` body field only). Default: `append`.
    #[serde(default)]
    pub help_seeking: HelpSeeking,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            openai_upstream: default_openai(),
            anthropic_upstream: default_anthropic(),
            other_paths: OtherPaths::default(),
            other_upstream: None,
            remote_images: RemoteImages::default(),
            remote_image_allowlist: Vec::new(),
            help_seeking: HelpSeeking::default(),
        }
    }
}

/// What happens to paths other than the two checked routes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherPaths {
    /// Answer 404 in the OpenAI error shape.
    #[default]
    Refuse,
    /// Forward unchanged and unchecked.
    Pass,
}

/// Remote image URL handling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteImages {
    /// Forward without fetching.
    #[default]
    Pass,
    /// Refuse requests that carry remote image URLs.
    Refuse,
    /// Forward URLs on allowlisted https hosts; refuse others.
    Allowlisted,
}

/// How support resources reach a help-seeking user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelpSeeking {
    /// Append the support text to the answer (and set the header).
    #[default]
    Append,
    /// Header and body field only.
    Header,
}

/// A tenant: an application that calls the gateway with its own key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Stable id, stored with incidents. Required.
    pub id: String,
    /// SHA-256 (lowercase hex) of each API key the tenant may use; the keys
    /// themselves are never stored (`childsafe serve --hash-key` prints one).
    pub api_key_sha256: Vec<String>,
}

/// Limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, in bytes. Default: 16 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest non-streamed upstream response, in bytes. Default: 32 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// Largest decoded inline image, in bytes. Default: 10 MiB.
    #[serde(default = "default_max_image")]
    pub max_image_bytes: usize,
    /// Most inline images in one request. Default: 16.
    #[serde(default = "default_max_images")]
    pub max_images: usize,
    /// Requests handled at once; more are shed with 503. Default: 1024.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Time for the gateway to produce response headers, in seconds
    /// (streams then run as long as the upstream keeps sending). Default: 180.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Streamed output held back for checking, in bytes; raised to the
    /// detectors' longest span if smaller. Default: 512.
    #[serde(default = "default_window")]
    pub stream_window_bytes: usize,
    /// Largest single server-sent event from an upstream, in bytes. Default: 1 MiB.
    #[serde(default = "default_max_event")]
    pub max_sse_event_bytes: usize,
    /// Image decodes and hashes running at once (off the async runtime). Default: 2.
    #[serde(default = "default_image_workers")]
    pub image_workers: usize,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_body_bytes: default_max_body(),
            max_response_bytes: default_max_response(),
            max_image_bytes: default_max_image(),
            max_images: default_max_images(),
            max_concurrency: default_concurrency(),
            request_timeout_secs: default_request_timeout_secs(),
            stream_window_bytes: default_window(),
            max_sse_event_bytes: default_max_event(),
            image_workers: default_image_workers(),
        }
    }
}

/// Texts per language (`en = "..."`), layered over the built-in defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    /// Prevention (deterrence) messages.
    #[serde(default)]
    pub prevention: BTreeMap<String, String>,
    /// Support resources for help-seeking.
    #[serde(default)]
    pub support: BTreeMap<String, String>,
    /// Plain refusals (output withheld, no message kind).
    #[serde(default)]
    pub refusal: BTreeMap<String, String>,
}

/// The database.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (created if missing) or `postgres://...`. Default:
    /// `sqlite://childsafe-gateway.db`.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// Attempts to record an incident before the request fails closed. Default: 3.
    #[serde(default = "default_record_attempts")]
    pub record_attempts: u32,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            url: default_store_url(),
            record_attempts: default_record_attempts(),
        }
    }
}

/// The evidence vault.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Vault directory. Default: none (then known-CSAM input cannot be
    /// preserved, and such requests fail closed with an error logged).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Environment variable holding the master key (base64). Default:
    /// `CHILDSAFE_VAULT_KEY`.
    #[serde(default)]
    pub key_env: Option<String>,
    /// File holding the master key instead. Default: none.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Strike ladders.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnforcementConfig {
    /// Strikes older than this no longer count, in days. Default: 90.
    #[serde(default = "default_decay_days")]
    pub decay_days: u32,
    /// Steps for end users, by number of live strikes. Default: 1 warn,
    /// 2 suspend for 24 h, 3 ban.
    #[serde(default = "default_user_ladder")]
    pub user_ladder: Vec<LadderStep>,
    /// Steps for tenants, counting every strike of their users. Default:
    /// 100 warn (the operator is alerted through the audit log), no automatic suspension.
    #[serde(default = "default_tenant_ladder")]
    pub tenant_ladder: Vec<LadderStep>,
    /// How a sanctioned user appeals, shown in the 403. Default: the
    /// `POST /v1/appeals` instructions.
    #[serde(default = "default_appeal_instructions")]
    pub appeal_instructions: String,
    /// How often each replica reloads sanctions from the store, in seconds. Default: 5.
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u64,
}

impl Default for EnforcementConfig {
    fn default() -> EnforcementConfig {
        EnforcementConfig {
            decay_days: default_decay_days(),
            user_ladder: default_user_ladder(),
            tenant_ladder: default_tenant_ladder(),
            appeal_instructions: default_appeal_instructions(),
            refresh_secs: default_refresh_secs(),
        }
    }
}

/// One step of a ladder: at `strikes` live strikes, take `action`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderStep {
    /// Live strikes that trigger this step.
    pub strikes: u32,
    /// What happens.
    pub action: LadderAction,
    /// For `suspend`: how long, in hours. Default: 24.
    #[serde(default = "default_suspend_hours")]
    pub hours: u32,
}

/// An enforcement action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LadderAction {
    /// Recorded; the request is still refused, nothing else.
    Warn,
    /// Refused with 403 for `hours`.
    Suspend,
    /// Refused with 403 until lifted by an admin.
    Ban,
}

impl LadderAction {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LadderAction::Warn => "warn",
            LadderAction::Suspend => "suspend",
            LadderAction::Ban => "ban",
        }
    }
}

/// User reports.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Reports one reporter may file per hour. Default: 20.
    #[serde(default = "default_reports_per_hour")]
    pub per_reporter_per_hour: u32,
    /// Longest pasted content, in bytes. Default: 64 KiB.
    #[serde(default = "default_report_content")]
    pub max_content_bytes: usize,
    /// Longest comment, in bytes. Default: 4 KiB.
    #[serde(default = "default_report_comment")]
    pub max_comment_bytes: usize,
}

impl Default for ReportsConfig {
    fn default() -> ReportsConfig {
        ReportsConfig {
            per_reporter_per_hour: default_reports_per_hour(),
            max_content_bytes: default_report_content(),
            max_comment_bytes: default_report_comment(),
        }
    }
}

/// A phased rollout of a candidate upstream on one protocol.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Rollout name (the key of its state in the store). Default: `default`.
    #[serde(default = "default_rollout_name")]
    pub name: String,
    /// Which route: `openai` or `anthropic`. Required.
    pub protocol: RolloutProtocol,
    /// The new upstream being rolled out. Required.
    pub candidate_upstream: String,
    /// Stages, in order, each with the percentage of end users (by a hash of
    /// the user id) that get the candidate. Required, increasing, 0 to 100.
    pub stages: Vec<StageConfig>,
    /// Sliding window for abuse rates, in seconds. Default: 3600.
    #[serde(default = "default_rollout_window")]
    pub window_secs: u64,
    /// Requests needed in the window before a rate can halt a stage. Default: 200.
    #[serde(default = "default_rollout_min_requests")]
    pub min_requests: u64,
    /// Incidents per 1,000 requests, by category name, above which the stage
    /// halts; `any` covers the sum of every abuse category. Default: `any = 5.0`.
    #[serde(default = "default_thresholds")]
    pub thresholds: BTreeMap<String, f64>,
    /// Users of a halted stage: `previous` (served by the baseline upstream)
    /// or `unavailable` (503). Default: `previous`.
    #[serde(default)]
    pub on_halt: OnHalt,
    /// How often counters are flushed to and rates read from the store, in seconds. Default: 5.
    #[serde(default = "default_refresh_secs")]
    pub sync_secs: u64,
}

/// Which protocol route a rollout applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutProtocol {
    /// `POST /v1/chat/completions`.
    Openai,
    /// `POST /v1/messages`.
    Anthropic,
}

/// One rollout stage.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Stage name, e.g. `canary`.
    pub name: String,
    /// Percentage of end users on the candidate at this stage (cumulative).
    pub percent: f64,
}

/// What a halted stage's users get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnHalt {
    /// The baseline upstream.
    #[default]
    Previous,
    /// 503 with a retry hint.
    Unavailable,
}

/// The admin API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Environment variable whose value, if set at startup, is registered as
    /// an admin token (only its hash is stored). Default: `CHILDSAFE_ADMIN_TOKEN`.
    #[serde(default = "default_admin_env")]
    pub token_env: String,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            token_env: default_admin_env(),
        }
    }
}

impl GatewayConfig {
    /// Parses a config file's text and validates it.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key that is wrong.
    pub fn from_toml(text: &str) -> Result<GatewayConfig, Error> {
        let res: GatewayConfig = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        res.validate()?;
        Ok(res)
    }

    /// Checks what parsing cannot: references, orders and ranges.
    ///
    /// # Errors
    /// [`Error::Config`] with `key: expected X, got Y`.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, msg: String| Err(Error::Config(format!("{key}: {msg}")));
        for (key, name) in [
            ("proxy.openai_upstream", &self.proxy.openai_upstream),
            ("proxy.anthropic_upstream", &self.proxy.anthropic_upstream),
        ] {
            if !self.upstreams.contains_key(name) {
                return bad(
                    key,
                    format!("expected the name of an [upstreams] entry, got {name:?}"),
                );
            }
        }
        if let Some(name) = &self.proxy.other_upstream
            && !self.upstreams.contains_key(name)
        {
            return bad(
                "proxy.other_upstream",
                format!("expected the name of an [upstreams] entry, got {name:?}"),
            );
        }
        for (name, upstream) in &self.upstreams {
            if !(upstream.base_url.starts_with("http://")
                || upstream.base_url.starts_with("https://"))
            {
                return bad(
                    &format!("upstreams.{name}.base_url"),
                    format!(
                        "expected an http:// or https:// URL, got {:?}",
                        upstream.base_url
                    ),
                );
            }
        }
        for (idx, tenant) in self.tenants.iter().enumerate() {
            if tenant.id.is_empty() {
                return bad(
                    &format!("tenants[{idx}].id"),
                    "expected a non-empty id, got \"\"".to_owned(),
                );
            }
            for key in &tenant.api_key_sha256 {
                if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return bad(
                        &format!("tenants[{idx}].api_key_sha256"),
                        format!("expected 64 hex chars, got {} chars", key.len()),
                    );
                }
            }
        }
        for (key, ladder) in [
            ("enforcement.user_ladder", &self.enforcement.user_ladder),
            ("enforcement.tenant_ladder", &self.enforcement.tenant_ladder),
        ] {
            for pair in ladder.windows(2) {
                if pair[1].strikes <= pair[0].strikes {
                    return bad(
                        key,
                        format!(
                            "expected strikes in increasing order, got {} after {}",
                            pair[1].strikes, pair[0].strikes
                        ),
                    );
                }
            }
            if ladder.first().is_some_and(|it| it.strikes == 0) {
                return bad(key, "expected strikes >= 1, got 0".to_owned());
            }
        }
        if self.limits.max_concurrency == 0 || self.limits.image_workers == 0 {
            return bad(
                "limits",
                "expected max_concurrency and image_workers >= 1, got 0".to_owned(),
            );
        }
        if let Some(rollout) = &self.rollout {
            if !self.upstreams.contains_key(&rollout.candidate_upstream) {
                return bad(
                    "rollout.candidate_upstream",
                    format!(
                        "expected the name of an [upstreams] entry, got {:?}",
                        rollout.candidate_upstream
                    ),
                );
            }
            if rollout.stages.is_empty() {
                return bad(
                    "rollout.stages",
                    "expected at least one stage, got none".to_owned(),
                );
            }
            let mut previous = 0.0;
            for (idx, stage) in rollout.stages.iter().enumerate() {
                if !(0.0..=100.0).contains(&stage.percent) || stage.percent < previous {
                    return bad(
                        &format!("rollout.stages[{idx}].percent"),
                        format!("expected {previous} to 100, got {}", stage.percent),
                    );
                }
                previous = stage.percent;
            }
            for (name, value) in &rollout.thresholds {
                if name != "any" && name.parse::<childsafe_core::Category>().is_err() {
                    return bad(
                        &format!("rollout.thresholds.{name}"),
                        "expected a category name or `any`".to_owned(),
                    );
                }
                if !value.is_finite() || *value < 0.0 {
                    return bad(
                        &format!("rollout.thresholds.{name}"),
                        format!("expected a rate >= 0, got {value}"),
                    );
                }
            }
        }
        Ok(())
    }
}

/// SHA-256 of an API key or token, lowercase hex: what config and the store keep.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_user_header() -> String {
    "x-childsafe-user".to_owned()
}
fn default_connect_timeout_ms() -> u64 {
    5000
}
fn default_header_timeout_secs() -> u64 {
    120
}
fn default_idle_timeout_secs() -> u64 {
    120
}
fn default_pool_idle() -> usize {
    256
}
fn default_openai() -> String {
    "openai".to_owned()
}
fn default_anthropic() -> String {
    "anthropic".to_owned()
}
fn default_max_body() -> usize {
    16 << 20
}
fn default_max_response() -> usize {
    32 << 20
}
fn default_max_image() -> usize {
    10 << 20
}
fn default_max_images() -> usize {
    16
}
fn default_concurrency() -> usize {
    1024
}
fn default_request_timeout_secs() -> u64 {
    180
}
fn default_window() -> usize {
    512
}
fn default_max_event() -> usize {
    1 << 20
}
fn default_image_workers() -> usize {
    2
}
fn default_store_url() -> String {
    "sqlite://childsafe-gateway.db".to_owned()
}
fn default_record_attempts() -> u32 {
    3
}
fn default_decay_days() -> u32 {
    90
}
fn default_suspend_hours() -> u32 {
    24
}
fn default_user_ladder() -> Vec<LadderStep> {
    vec![
        LadderStep {
            strikes: 1,
            action: LadderAction::Warn,
            hours: 24,
        },
        LadderStep {
            strikes: 2,
            action: LadderAction::Suspend,
            hours: 24,
        },
        LadderStep {
            strikes: 3,
            action: LadderAction::Ban,
            hours: 24,
        },
    ]
}
fn default_tenant_ladder() -> Vec<LadderStep> {
    vec![LadderStep {
        strikes: 100,
        action: LadderAction::Warn,
        hours: 24,
    }]
}
fn default_appeal_instructions() -> String {
    "To appeal, send POST /v1/appeals with your user id and a short explanation; a reviewer will answer.".to_owned()
}
fn default_refresh_secs() -> u64 {
    5
}
fn default_reports_per_hour() -> u32 {
    20
}
fn default_report_content() -> usize {
    64 << 10
}
fn default_report_comment() -> usize {
    4 << 10
}
fn default_rollout_name() -> String {
    "default".to_owned()
}
fn default_rollout_window() -> u64 {
    3600
}
fn default_rollout_min_requests() -> u64 {
    200
}
fn default_thresholds() -> BTreeMap<String, f64> {
    BTreeMap::from([("any".to_owned(), 5.0)])
}
fn default_admin_env() -> String {
    "CHILDSAFE_ADMIN_TOKEN".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[upstreams.openai]
base_url = "http://127.0.0.1:9000"
[upstreams.anthropic]
base_url = "http://127.0.0.1:9001"
"#;

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let config = GatewayConfig::from_toml(MINIMAL).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.user_header, "x-childsafe-user");
        assert_eq!(config.limits.stream_window_bytes, 512);
        assert_eq!(config.proxy.other_paths, OtherPaths::Refuse);
        assert_eq!(config.enforcement.user_ladder.len(), 3);
        assert_eq!(config.store.url, "sqlite://childsafe-gateway.db");
    }

    #[test]
    fn errors_name_the_key() {
        let check = |extra: &str, want: &str| {
            let err = GatewayConfig::from_toml(&format!("{MINIMAL}{extra}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        };
        check(
            "[proxy]\nopenai_upstream = \"nope\"\n",
            "proxy.openai_upstream: expected the name of an [upstreams] entry, got \"nope\"",
        );
        check(
            "[[tenants]]\nid = \"a\"\napi_key_sha256 = [\"abc\"]\n",
            "tenants[0].api_key_sha256: expected 64 hex chars, got 3 chars",
        );
        check(
            "[enforcement]\nuser_ladder = [{ strikes = 2, action = \"warn\" }, { strikes = 1, action = \"ban\" }]\n",
            "enforcement.user_ladder: expected strikes in increasing order, got 1 after 2",
        );
        check("[limits]\nmax_body = 1\n", "unknown field `max_body`");
        check(
            "[rollout]\nprotocol = \"openai\"\ncandidate_upstream = \"anthropic\"\nstages = [{ name = \"a\", percent = 50.0 }, { name = \"b\", percent = 10.0 }]\n",
            "rollout.stages[1].percent: expected 50 to 100, got 10",
        );
        check(
            "[rollout]\nprotocol = \"openai\"\ncandidate_upstream = \"anthropic\"\nstages = [{ name = \"a\", percent = 5.0 }]\nthresholds = { csam = 1.0 }\n",
            "rollout.thresholds.csam: expected a category name or `any`",
        );
    }

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        let example =
            GatewayConfig::from_toml(include_str!("../../../examples/gateway.toml")).unwrap();
        let minimal = GatewayConfig::from_toml(MINIMAL).unwrap();
        assert_eq!(example.listen, minimal.listen);
        assert_eq!(example.limits.max_body_bytes, minimal.limits.max_body_bytes);
        assert_eq!(
            example.limits.stream_window_bytes,
            minimal.limits.stream_window_bytes
        );
        assert_eq!(
            example.enforcement.user_ladder,
            minimal.enforcement.user_ladder
        );
        assert_eq!(
            example.enforcement.appeal_instructions,
            minimal.enforcement.appeal_instructions
        );
        assert_eq!(example.store.url, minimal.store.url);
        assert_eq!(
            example.tenants[0].api_key_sha256[0],
            hash_secret("example-key")
        );
    }

    #[test]
    fn secrets_are_hashed_as_lowercase_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
