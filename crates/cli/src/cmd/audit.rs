//! `childsafe audit verify|head|log`: check and read the append-only,
//! hash-chained audit log.
//!
//! `verify` exits 0 when the chain is intact and 1 naming the first bad row
//! otherwise (2 when the database cannot be read). `head` prints `SEQ:HASH`;
//! keep it somewhere else (a ticket, a write-once bucket) and pass it back
//! as `verify --checkpoint SEQ:HASH` to detect a history rewritten wholesale,
//! which the chain alone cannot (see `childsafe_store` audit docs).

use childsafe_store::AuditHead;

use crate::{
    Global,
    cmd::case::{DbArgs, block_on, rfc3339},
    exit,
};

/// The audit log: every change to cases, evidence, reports, enforcement and
/// rollout, hash-chained so that edits and deletions are detected.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Check the whole chain; exit 1 naming the first bad row.
    Verify {
        /// A head recorded earlier (`childsafe audit head`): also check that
        /// the row at SEQ still has HASH.
        #[arg(long, value_name = "SEQ:HASH")]
        checkpoint: Option<AuditHead>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the chain head as SEQ:HASH.
    Head {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print entries, oldest first.
    Log {
        /// Only entries after this seq.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many. Default: 100.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    match args.command {
        AuditCommand::Verify {
            checkpoint,
            json,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let report = store.verify_audit(checkpoint.as_ref()).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            match &report.problem {
                None => {
                    if !json {
                        println!(
                            "audit log intact: {} rows, head {}",
                            report.rows, report.head
                        );
                    }
                    Ok(exit::OK)
                }
                Some(problem) => {
                    eprintln!("childsafe: {problem}");
                    Ok(exit::FOUND)
                }
            }
        }),
        AuditCommand::Head { db } => block_on(async {
            let store = db.open().await?;
            println!("{}", store.audit_head().await?);
            Ok(exit::OK)
        }),
        AuditCommand::Log {
            after,
            limit,
            json,
            db,
        } => block_on(async {
            let store = db.open().await?;
            for entry in store.audit_entries(after, limit).await? {
                if json {
                    println!("{}", serde_json::to_string(&entry)?);
                } else {
                    let reason = entry
                        .reason
                        .as_deref()
                        .map_or(String::new(), |r| format!(" ({r})"));
                    println!(
                        "{:>6} {} {} {} {}{} {}",
                        entry.seq,
                        rfc3339(entry.at),
                        entry.actor,
                        entry.action,
                        entry.subject,
                        reason,
                        entry.detail
                    );
                }
            }
            Ok(exit::OK)
        }),
    }
}
