//! `childsafe report build|submit|status|requeue`: NCMEC CyberTipline reports
//! of confirmed cases, through the outbox.
//!
//! All the work is `childsafe_cybertip` (the report, the client, the outbox
//! driver) and `childsafe_store`; this file parses flags and prints. The
//! `--db`, `--by` and vault options are the store commands' own
//! (`cmd::case`, `cmd::vault`).

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use childsafe_cybertip::{
    builder::{BuiltReport, ReportOverrides, build_report},
    client::{Client, ClientConfig, Credentials, Environment, RetryPolicy},
    config::ReporterConfig,
    model::{IncidentType, ReportAnnotations},
    outbox::{DriveOutcome, Driver, DriverOptions, SubmissionState},
    schema::Schema,
    store_case::case_facts,
    xml,
};
use childsafe_store::{CaseId, OutboxReport, Store};

use crate::{
    Global,
    cmd::{
        case::{ActorArgs, DbArgs, block_on, rfc3339},
        vault::VaultArgs,
    },
    exit,
};

/// Report confirmed cases to NCMEC's CyberTipline: build the XML, submit it
/// through the outbox (resumable; never finished twice), and show progress.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(clap::Subcommand)]
enum ReportCommand {
    /// Print the <report> XML for a case: the frozen document if the case's
    /// report is already queued, else what would be queued now.
    Build {
        /// The case number.
        case: CaseId,
        /// Print this file's <fileDetails> (1-based) instead of the report.
        #[arg(long, value_name = "N")]
        file: Option<usize>,
        #[command(flatten)]
        report: ReportArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Queue a confirmed case's report and drive it through the API: submit,
    /// upload each file, send its details, finish. Rerun to resume after a
    /// crash or a temporary failure. Credentials: $CHILDSAFE_NCMEC_USER and
    /// $CHILDSAFE_NCMEC_PASSWORD.
    Submit {
        /// The case number.
        case: CaseId,
        /// test (exttest.cybertip.org) or production (report.cybertip.org).
        /// A case's report stays in the environment it was first queued for.
        #[arg(long = "env", default_value = "test", value_parser = parse_environment)]
        environment: Environment,
        /// Send to this base URL instead of the environment's (for the fake:
        /// `childsafe dev fake-cybertip` prints it).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// How long this run holds the report, in seconds; every step extends
        /// it. A run that is killed blocks the next one until it runs out.
        #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
        lease_seconds: f64,
        /// The first retry delay of a failed call, in milliseconds (doubling,
        /// with jitter, up to a minute).
        #[arg(long, default_value_t = 1000, value_name = "MS", hide = true)]
        retry_base_ms: u64,
        #[command(flatten)]
        report: ReportArgs,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show queued reports (newest first), or one case's report with its
    /// receipts and Request-IDs.
    Status {
        /// Only this case, with its receipts.
        case: Option<CaseId>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Put a failed report back in the queue after fixing the cause; it
    /// resumes where it stopped.
    Requeue {
        /// The case number.
        case: CaseId,
        /// Why: recorded with who and when.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// How the report is built.
#[derive(clap::Args, Clone, Debug)]
struct ReportArgs {
    /// Reporter details (TOML: [reporter] email, names, phone, company
    /// template; [service] platform, url). Default: $CHILDSAFE_NCMEC_CONFIG,
    /// else $CHILDSAFE_NCMEC_REPORTER_EMAIL and friends.
    #[arg(long, value_name = "FILE")]
    reporter_config: Option<PathBuf>,
    /// The incident type, when the categories do not decide it (a reviewer's call).
    #[arg(long, value_enum)]
    incident_type: Option<IncidentArg>,
    /// A report annotation to add (sextortion, csamSolicitation,
    /// minorToMinorInteraction, spam, sadisticOnlineExploitation). Repeatable.
    #[arg(long = "annotation", value_name = "NAME")]
    annotations: Vec<String>,
    /// Escalate: why a child is at immediate risk. Leave out not to escalate.
    #[arg(long, value_name = "TEXT")]
    escalate: Option<String>,
    /// NCMEC's XSD, to validate every document before it is sent. Default:
    /// $CHILDSAFE_NCMEC_XSD, else the shared fixtures copy if present.
    #[arg(long, value_name = "FILE")]
    xsd: Option<PathBuf>,
}

/// The incident types, as command-line names.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum IncidentArg {
    ChildPornography,
    ChildSexTrafficking,
    ChildSexTourism,
    ChildSexualMolestation,
    MisleadingDomainName,
    MisleadingWordsOrImages,
    OnlineEnticement,
    UnsolicitedObsceneMaterial,
}

impl IncidentArg {
    fn incident_type(self) -> IncidentType {
        match self {
            IncidentArg::ChildPornography => IncidentType::ChildPornography,
            IncidentArg::ChildSexTrafficking => IncidentType::ChildSexTrafficking,
            IncidentArg::ChildSexTourism => IncidentType::ChildSexTourism,
            IncidentArg::ChildSexualMolestation => IncidentType::ChildSexualMolestation,
            IncidentArg::MisleadingDomainName => IncidentType::MisleadingDomainName,
            IncidentArg::MisleadingWordsOrImages => IncidentType::MisleadingWordsOrImages,
            IncidentArg::OnlineEnticement => IncidentType::OnlineEnticement,
            IncidentArg::UnsolicitedObsceneMaterial => IncidentType::UnsolicitedObsceneMaterial,
        }
    }
}

fn parse_environment(text: &str) -> Result<Environment, String> {
    text.parse()
        .map_err(|err: childsafe_cybertip::Error| err.to_string())
}

impl ReportArgs {
    fn overrides(&self) -> anyhow::Result<ReportOverrides> {
        let mut annotations = ReportAnnotations::default();
        for name in &self.annotations {
            if !annotations.set(name) {
                bail!(
                    "--annotation: expected sextortion, csamSolicitation, minorToMinorInteraction, spam or sadisticOnlineExploitation, got {name:?}"
                );
            }
        }
        Ok(ReportOverrides {
            incident_type: self.incident_type.map(IncidentArg::incident_type),
            annotations,
            escalate: self.escalate.clone(),
        })
    }

    fn config(&self) -> anyhow::Result<ReporterConfig> {
        Ok(ReporterConfig::from_file_or_env(
            self.reporter_config.as_deref(),
        )?)
    }

    fn schema(&self) -> anyhow::Result<Option<Schema>> {
        match Schema::locate(self.xsd.as_deref()) {
            Some(path) => Ok(Some(Schema::load(&path)?)),
            None => Ok(None),
        }
    }

    /// Builds the report of a case as it stands in the store.
    fn build(
        &self,
        store: &Store,
        detail: &childsafe_store::CaseDetail,
    ) -> Result<BuiltReport, childsafe_cybertip::Error> {
        let overrides = self
            .overrides()
            .map_err(|err| childsafe_cybertip::Error::Build(err.to_string()))?;
        let config = self
            .config()
            .map_err(|err| childsafe_cybertip::Error::Build(format!("{err:#}")))?;
        build_report(&case_facts(detail, overrides)?, &config, store.now())
    }
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    match args.command {
        ReportCommand::Build {
            case,
            file,
            report,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let state = match store.report_for_case(case).await? {
                Some(queued) if queued.step != "new" => {
                    eprintln!(
                        "case {case}: report #{} is queued; printing its frozen documents",
                        queued.id
                    );
                    SubmissionState::from_report(&queued)?
                }
                _ => {
                    let detail = store.case_detail(case).await?;
                    let built = report
                        .build(&store, &detail)
                        .with_context(|| format!("case {case}"))?;
                    SubmissionState::prepare(&built)?
                }
            };
            let document = match file {
                None => state.report_xml.clone(),
                Some(n) => match n.checked_sub(1).and_then(|idx| state.files.get(idx)) {
                    Some(planned) => planned.details_template.clone(),
                    None => bail!("--file {n}: the report has {} files", state.files.len()),
                },
            };
            if let Some(schema) = report.schema()? {
                if file.is_some() {
                    let mut details = xml::file_details_from_xml(document.as_bytes())?;
                    details.report_id = 1;
                    details.file_id = "0".to_owned();
                    schema.validate(xml::file_details_to_xml(&details)?.as_bytes())?;
                } else {
                    schema.validate(document.as_bytes())?;
                }
            }
            print!("{document}");
            Ok(exit::OK)
        }),
        ReportCommand::Submit {
            case,
            environment,
            base_url,
            lease_seconds,
            retry_base_ms,
            report,
            actor,
            vault,
            db,
        } => {
            init_logging();
            block_on(async {
                let store = db.open().await?;
                let vault = vault.open()?;
                let credentials = Credentials::from_env()?;
                let base_url = base_url.unwrap_or_else(|| environment.base_url().to_owned());
                let mut config = ClientConfig::new(base_url, credentials);
                config.retry = RetryPolicy {
                    base_delay: Duration::from_millis(retry_base_ms),
                    ..RetryPolicy::default()
                };
                let client = Client::new(config)?;
                let mut options = DriverOptions::new(actor.by.clone());
                options.lease_for = Duration::try_from_secs_f64(lease_seconds)
                    .ok()
                    .filter(|it| !it.is_zero())
                    .context("--lease-seconds: expected a positive number of seconds")?;
                options.schema = report.schema()?;
                let driver = Driver::new(store.clone(), vault, client, options);
                let outcome = driver
                    .submit_case(case, environment.as_str(), |detail| {
                        report.build(&store, detail)
                    })
                    .await
                    .with_context(|| format!("case {case}"))?;
                Ok(print_outcome(case, &outcome))
            })
        }
        ReportCommand::Status { case, json, db } => block_on(async {
            let store = db.open().await?;
            let reports = match case {
                Some(case) => store.report_for_case(case).await?.into_iter().collect(),
                None => store.list_reports(None, 1000).await?,
            };
            if case.is_some() && reports.is_empty() {
                bail!(
                    "case {}: no report queued",
                    case.map(|it| it.0).unwrap_or_default()
                );
            }
            for report in &reports {
                if json {
                    println!("{}", serde_json::to_string(report)?);
                } else {
                    print_report(report);
                }
                if case.is_some() {
                    print_details(&store, report, json).await?;
                }
            }
            Ok(exit::OK)
        }),
        ReportCommand::Requeue {
            case,
            reason,
            actor,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let Some(report) = store.report_for_case(case).await? else {
                bail!("case {case}: no report queued");
            };
            let report = store.requeue_report(report.id, &actor.by, &reason).await?;
            println!(
                "case {case}: report #{} {} (step {})",
                report.id, report.status, report.step
            );
            Ok(exit::OK)
        }),
    }
}

fn print_outcome(case: CaseId, outcome: &DriveOutcome) -> u8 {
    match outcome {
        DriveOutcome::Finished {
            report_id,
            receipt_lost,
        } => {
            println!("case {case}: finished as CyberTipline report {report_id}");
            if *receipt_lost {
                println!(
                    "  the finish answer was lost; NCMEC confirmed the report finished (5102), and that answer is stored in place of the receipt"
                );
            }
            exit::OK
        }
        DriveOutcome::AlreadyFinished { report_id } => {
            println!(
                "case {case}: already finished as CyberTipline report {}",
                report_id.as_deref().unwrap_or("?")
            );
            exit::OK
        }
        DriveOutcome::RetryLater { at, error } => {
            eprintln!(
                "childsafe: case {case}: {error}\n  the report is kept; rerun `childsafe report submit {case}` to resume (a worker would retry after {})",
                rfc3339(*at)
            );
            exit::ERROR
        }
        DriveOutcome::Failed { error } => {
            eprintln!(
                "childsafe: case {case}: stopped: {error}\n  fix the cause, then `childsafe report requeue {case} --reason ...` and submit again"
            );
            exit::ERROR
        }
        DriveOutcome::Busy { owner, until } => {
            eprintln!(
                "childsafe: case {case}: the report is being driven by {} until {} (or a run holding it was killed): try again after that",
                owner.as_deref().unwrap_or("another run"),
                until.map(rfc3339).unwrap_or_else(|| "?".to_owned())
            );
            exit::ERROR
        }
    }
}

fn print_report(report: &OutboxReport) {
    println!(
        "report #{} case {} {} {} step={} attempts={} ncmec_report_id={} finished_at={}{}",
        report.id,
        report.case_id,
        report.environment,
        report.status,
        report.step,
        report.attempts,
        report.ncmec_report_id.as_deref().unwrap_or("-"),
        report
            .finished_at
            .map(rfc3339)
            .unwrap_or_else(|| "-".to_owned()),
        report
            .last_error
            .as_deref()
            .map(|it| format!(" last_error={it:?}"))
            .unwrap_or_default()
    );
}

async fn print_details(store: &Store, report: &OutboxReport, json: bool) -> anyhow::Result<()> {
    let receipts = store.report_receipts(report.id).await?;
    if json {
        for receipt in &receipts {
            println!("{}", serde_json::to_string(receipt)?);
        }
        return Ok(());
    }
    if let Ok(state) = SubmissionState::from_report(report) {
        if let Some(attempt) = &state.attempt {
            let uploaded = attempt
                .files
                .iter()
                .filter(|it| it.file_id.is_some())
                .count();
            let described = attempt.files.iter().filter(|it| it.fileinfo_sent).count();
            println!(
                "  current CyberTipline report {}: {uploaded}/{n} files uploaded, {described}/{n} described",
                attempt.report_id,
                n = state.files.len()
            );
        }
        for abandoned in &state.abandoned {
            println!(
                "  abandoned {}{}: {}",
                abandoned
                    .report_id
                    .map(|it| format!("report {it}"))
                    .unwrap_or_else(|| "an unidentified report".to_owned()),
                if abandoned.retracted {
                    " (retracted)"
                } else {
                    " (left to expire unfinished)"
                },
                abandoned.reason
            );
        }
    }
    println!("  receipts:");
    for stored in &receipts {
        let receipt = &stored.receipt;
        println!(
            "    {} {} http={} code={} request_id={}",
            rfc3339(stored.at),
            receipt.step,
            receipt
                .http_status
                .map(|it| it.to_string())
                .unwrap_or_else(|| "-".to_owned()),
            receipt
                .response_code
                .map(|it| it.to_string())
                .unwrap_or_else(|| "-".to_owned()),
            receipt.request_id.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Warnings and errors of the driver on standard error (`CHILDSAFE_LOG` to
/// change the level); never content, only ids, codes and steps.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHILDSAFE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
