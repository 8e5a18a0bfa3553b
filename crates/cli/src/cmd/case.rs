//! `childsafe case list|show|assign|decide|close|import-queue`: review cases
//! in the store.
//!
//! All the work is `childsafe_store::Store`; this file parses flags, reads
//! the report queue file (JSON lines written by `childsafe scan`), and prints.
//! It also holds the `--db` and `--by` options the other store commands
//! (`vault`, `audit`) share.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
};

use anyhow::Context;
use childsafe_core::QueueEntry;
use childsafe_store::{Case, CaseFilter, CaseId, CaseStatus, Store, StoreOptions, Verdict};

use crate::{Global, exit};

/// Where the store is.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct DbArgs {
    /// The database: a file path or sqlite:PATH for SQLite, or
    /// postgres://USER@HOST/DB for PostgreSQL. Created and migrated on first
    /// use. Default: childsafe.db in the current directory.
    #[arg(
        long,
        env = "CHILDSAFE_DB",
        hide_env_values = true,
        value_name = "URL",
        default_value = "childsafe.db"
    )]
    pub(crate) db: String,
    /// PostgreSQL only: keep the tables in this schema (created if missing),
    /// so several deployments can share one database. Default: public.
    #[arg(long, env = "CHILDSAFE_DB_SCHEMA", value_name = "SCHEMA")]
    pub(crate) db_schema: Option<String>,
}

impl DbArgs {
    pub(crate) async fn open(&self) -> anyhow::Result<Store> {
        let options = StoreOptions {
            postgres_schema: self.db_schema.clone(),
            ..StoreOptions::default()
        };
        Store::open_with(&self.db, options)
            .await
            .context("opening the store (--db)")
    }
}

/// Who is acting: recorded with every change in the audit log.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ActorArgs {
    /// Who you are (a reviewer's name or id), recorded with the change.
    #[arg(long = "by", env = "CHILDSAFE_ACTOR", value_name = "NAME")]
    pub(crate) by: String,
}

/// Runs an async store operation on a small runtime.
pub(crate) fn block_on<T>(
    future: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

/// Review cases: the findings about one end user or dataset source, decided
/// by a person and reported to NCMEC once.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: CaseCommand,
}

#[derive(clap::Subcommand)]
enum CaseCommand {
    /// List cases, newest first.
    List {
        /// Only cases in this state: new, in_review, confirmed, dismissed, reported, closed.
        #[arg(long)]
        status: Option<CaseStatus>,
        /// Only cases assigned to this reviewer.
        #[arg(long)]
        assignee: Option<String>,
        /// At most this many. Default: 100.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show a case: items (hashes, origin, AI-generated flag), history, evidence, report.
    Show {
        /// The case number.
        id: CaseId,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Assign a case to a reviewer (a new case moves to in_review).
    Assign {
        /// The case number.
        id: CaseId,
        /// The reviewer.
        #[arg(long = "to", value_name = "REVIEWER")]
        to: String,
        /// Why (optional).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Record a decision: confirm (reportable) or dismiss.
    Decide {
        /// The case number.
        id: CaseId,
        /// confirm or dismiss.
        verdict: Verdict,
        /// Why: required, recorded with who and when.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Close a reported or dismissed case.
    Close {
        /// The case number.
        id: CaseId,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Open cases from the scanner's report queue (JSON lines). Idempotent:
    /// entries already imported are skipped.
    ImportQueue {
        /// The queue file, or `-` for standard input.
        file: PathBuf,
        /// Recorded as the actor. Default: scan-import.
        #[arg(long = "by", env = "CHILDSAFE_ACTOR", default_value = "scan-import")]
        by: String,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    match args.command {
        CaseCommand::List {
            status,
            assignee,
            limit,
            json,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let cases = store
                .list_cases(&CaseFilter {
                    status,
                    assignee,
                    limit,
                })
                .await?;
            if json {
                for case in &cases {
                    println!("{}", serde_json::to_string(case)?);
                }
            } else {
                println!(
                    "{:>6}  {:<10} {:<14} {:<40} SUBJECT",
                    "CASE", "STATUS", "ASSIGNEE", "CATEGORIES"
                );
                for case in &cases {
                    print_case_line(case);
                }
            }
            Ok(exit::OK)
        }),
        CaseCommand::Show { id, json, db } => block_on(async {
            let store = db.open().await?;
            let detail = store.case_detail(id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
                return Ok(exit::OK);
            }
            let case = &detail.case;
            println!("case {}  {}  {}", case.id, case.status, case.subject);
            println!(
                "  opened {}  updated {}",
                rfc3339(case.opened_at),
                rfc3339(case.updated_at)
            );
            println!("  categories: {}", categories(&case.categories));
            if let Some(assignee) = &case.assignee {
                println!("  assignee: {assignee}");
            }
            if let Some(d) = &case.decision {
                println!(
                    "  decision: {} by {} at {}: {}",
                    d.verdict,
                    d.by,
                    rfc3339(d.at),
                    d.reason
                );
            }
            println!("items:");
            for item in &detail.items {
                let sha = item
                    .hashes
                    .as_ref()
                    .map_or("-".to_owned(), |h| h.sha256.to_string());
                let vault = item.vault_item.map_or("-".to_owned(), |v| v.to_string());
                println!(
                    "  #{} {} {} origin={} generative_ai={} sha256={} vault={}",
                    item.id,
                    item.kind,
                    categories(&item.categories),
                    item.origin,
                    item.generative_ai,
                    sha,
                    vault
                );
            }
            if !detail.evidence.is_empty() {
                println!("evidence:");
                for e in &detail.evidence {
                    println!(
                        "  {} sha256={} viewed={} hold={} retain_until={}",
                        e.id,
                        e.sha256,
                        e.viewed,
                        e.legal_hold,
                        e.retain_until.map_or("-".to_owned(), rfc3339)
                    );
                }
            }
            println!("history:");
            for e in &detail.events {
                let transition = match (e.from_status, e.to_status) {
                    (Some(from), Some(to)) => format!(" {from} -> {to}"),
                    _ => String::new(),
                };
                let reason = e
                    .reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(": {r}"));
                println!(
                    "  {} {} {}{}{}",
                    rfc3339(e.at),
                    e.actor,
                    e.kind,
                    transition,
                    reason
                );
            }
            if let Some(report) = &detail.report {
                println!(
                    "report: #{} {} step={} attempts={} ncmec_report_id={}",
                    report.id,
                    report.status,
                    report.step,
                    report.attempts,
                    report.ncmec_report_id.as_deref().unwrap_or("-")
                );
            }
            Ok(exit::OK)
        }),
        CaseCommand::Assign {
            id,
            to,
            reason,
            actor,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let case = store
                .assign_case(id, &to, &actor.by, reason.as_deref())
                .await?;
            println!("case {}: {} (assigned to {to})", case.id, case.status);
            Ok(exit::OK)
        }),
        CaseCommand::Decide {
            id,
            verdict,
            reason,
            actor,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let case = store.decide_case(id, verdict, &actor.by, &reason).await?;
            println!("case {}: {}", case.id, case.status);
            Ok(exit::OK)
        }),
        CaseCommand::Close {
            id,
            reason,
            actor,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let case = store.close_case(id, &actor.by, &reason).await?;
            println!("case {}: {}", case.id, case.status);
            Ok(exit::OK)
        }),
        CaseCommand::ImportQueue { file, by, json, db } => {
            let entries = read_queue(&file)?;
            block_on(async {
                let store = db.open().await?;
                let summary = store
                    .import_queue_entries(&entries, &by)
                    .await
                    .with_context(|| format!("importing {}", file.display()))?;
                if json {
                    println!("{}", serde_json::to_string(&summary)?);
                } else {
                    let opened: Vec<String> = summary
                        .cases_opened
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    println!(
                        "{}: {} entries, {} imported, {} already present; {} cases touched, opened: {}",
                        file.display(),
                        summary.read,
                        summary.imported,
                        summary.already_present,
                        summary.cases_touched.len(),
                        if opened.is_empty() {
                            "none".to_owned()
                        } else {
                            opened.join(", ")
                        }
                    );
                }
                Ok(exit::OK)
            })
        }
    }
}

/// Reads a report queue: one JSON object per line; blank lines are skipped.
/// An unreadable line fails the whole import, naming `FILE:LINE`.
fn read_queue(path: &std::path::Path) -> anyhow::Result<Vec<QueueEntry>> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?,
        ))
    };
    let mut entries = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: QueueEntry =
            serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        entries.push(entry);
    }
    Ok(entries)
}

fn print_case_line(case: &Case) {
    println!(
        "{:>6}  {:<10} {:<14} {:<40} {}",
        case.id,
        case.status,
        case.assignee.as_deref().unwrap_or("-"),
        categories(&case.categories),
        case.subject
    );
}

fn categories(list: &[childsafe_core::Category]) -> String {
    if list.is_empty() {
        return "-".to_owned();
    }
    list.iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
