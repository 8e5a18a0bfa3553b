//! `childsafe vault put|get|verify|purge|hold|rotate-key|keygen`: the
//! encrypted evidence vault, through the store, so that every access is
//! logged with a reason and every item has its retention.
//!
//! The master key comes from `--vault-key-file FILE` /
//! `$CHILDSAFE_VAULT_KEY_FILE`, or from `$CHILDSAFE_VAULT_KEY` (never a
//! command-line argument, which other users can see in the process list).
//! A key is 32 random bytes as 64 hex digits or base64; a source may hold
//! several (one per line): the first is current, the rest are retired keys
//! still accepted for reading.
//!
//! `get` writes content to standard output only when it is a pipe: never to
//! a terminal and never to a file (preserved material must not be copied to
//! disk in the clear), with a required purpose and reason.

use std::{
    io::{IsTerminal, Read, Write},
    path::PathBuf,
};

use anyhow::{Context, bail};
use childsafe_store::AccessPurpose;
use childsafe_vault::{ItemId, Keyring, MasterKey, Vault};
use serde_json::json;

use crate::{
    Global,
    cmd::case::{ActorArgs, DbArgs, block_on},
    exit,
};

/// Where the vault is and which key opens it.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct VaultArgs {
    /// The vault directory (created owner-only if missing). Default: ./vault.
    #[arg(
        long,
        env = "CHILDSAFE_VAULT_DIR",
        value_name = "DIR",
        default_value = "vault"
    )]
    vault_dir: PathBuf,
    /// A file holding the master key(s); it must not be readable by other
    /// users. Without it, the key is read from $CHILDSAFE_VAULT_KEY.
    #[arg(long, env = "CHILDSAFE_VAULT_KEY_FILE", value_name = "FILE")]
    vault_key_file: Option<PathBuf>,
}

const KEY_ENV: &str = "CHILDSAFE_VAULT_KEY";

impl VaultArgs {
    fn keyring(&self) -> anyhow::Result<Keyring> {
        match &self.vault_key_file {
            Some(path) => Ok(Keyring::from_file(path)?),
            None if std::env::var_os(KEY_ENV).is_some() => Ok(Keyring::from_env(KEY_ENV)?),
            None => bail!(
                "no vault key: set --vault-key-file FILE, $CHILDSAFE_VAULT_KEY_FILE or ${KEY_ENV} \
                 (make one with `childsafe vault keygen --out FILE`)"
            ),
        }
    }

    pub(crate) fn open(&self) -> anyhow::Result<Vault> {
        let keys = self.keyring()?;
        Ok(Vault::open_dir(&self.vault_dir, keys)?)
    }
}

/// The encrypted evidence vault: preserve, read (logged, with a reason),
/// verify, purge expired items, hold, rotate the master key.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(clap::Subcommand)]
enum VaultCommand {
    /// Preserve a file: encrypt it into the vault unmodified, record its
    /// SHA-256 and MD5; prints the item as JSON.
    Put {
        /// The file, or `-` for standard input.
        file: PathBuf,
        /// Why it is preserved.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write an item's original bytes to standard output, which must be a
    /// pipe (never a terminal or a file). The access is logged first.
    Get {
        /// The item id.
        id: ItemId,
        /// view (a person will look at it: sets NCMEC fileViewedByEsp),
        /// export (handed to another party or process), upload.
        #[arg(long)]
        purpose: AccessPurpose,
        /// Why: required, recorded with who and when.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check items (decrypt in memory, tags and hashes against the record);
    /// every item the store knows when no id is given, and report vault files
    /// the store does not know. Exit 1 if any item fails.
    Verify {
        /// Items to check. Default: all.
        ids: Vec<ItemId>,
        /// One JSON object per item.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Destroy every item whose retention has run out and that is not on
    /// legal hold; each destruction is in the audit log.
    Purge {
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Put an item on legal hold (never purged while held), or release it.
    Hold {
        /// The item id.
        id: ItemId,
        /// Release the hold instead of placing it.
        #[arg(long)]
        release: bool,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Re-wrap every item's data key with a new master key, without
    /// decrypting content. Afterwards put the new key first in the key file
    /// (the old one may stay as a retired key until you are sure).
    RotateKey {
        /// The new master key's file (as written by `vault keygen --out`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        #[command(flatten)]
        actor: ActorArgs,
        #[command(flatten)]
        vault: VaultArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Make a new random master key (32 bytes, base64).
    Keygen {
        /// Write it to this file, created owner-only (0600). Without it the
        /// key is printed to standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    match args.command {
        VaultCommand::Put {
            file,
            reason,
            actor,
            vault,
            db,
        } => {
            let vault = vault.open()?;
            let mut content = zeroize::Zeroizing::new(Vec::new());
            if file.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut content)
                    .context("reading standard input")?;
            } else {
                let mut f = std::fs::File::open(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                f.read_to_end(&mut content)
                    .with_context(|| format!("reading {}", file.display()))?;
            }
            block_on(async {
                let store = db.open().await?;
                let item = store
                    .preserve_evidence(&vault, &content, &actor.by, &reason)
                    .await?;
                println!("{}", serde_json::to_string(&item)?);
                Ok(exit::OK)
            })
        }
        VaultCommand::Get {
            id,
            purpose,
            reason,
            actor,
            vault,
            db,
        } => {
            check_stdout_is_a_pipe()?;
            let vault = vault.open()?;
            block_on(async {
                let store = db.open().await?;
                let opened = store
                    .open_evidence(&vault, id, &actor.by, purpose, &reason)
                    .await?;
                let mut out = std::io::stdout().lock();
                out.write_all(opened.content.as_bytes())?;
                out.flush()?;
                Ok(exit::OK)
            })
        }
        VaultCommand::Verify {
            ids,
            json,
            actor,
            vault,
            db,
        } => {
            let vault = vault.open()?;
            block_on(async {
                let store = db.open().await?;
                let known: Vec<ItemId> = store
                    .list_evidence(false)
                    .await?
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                let mut bad = 0usize;
                let check_all = ids.is_empty();
                let ids = if check_all { known.clone() } else { ids };
                for id in &ids {
                    let outcome = store.verify_evidence(&vault, *id, &actor.by).await;
                    match &outcome {
                        Ok(item) if json => {
                            println!("{}", json!({"id": id, "ok": true, "sha256": item.sha256}))
                        }
                        Ok(item) => println!("{id}: ok (sha256 {})", item.sha256),
                        Err(e) => {
                            bad += 1;
                            if json {
                                println!(
                                    "{}",
                                    json!({"id": id, "ok": false, "error": e.to_string()})
                                );
                            } else {
                                println!("{id}: FAILED: {e}");
                            }
                        }
                    }
                }
                if check_all {
                    // Items in the vault the store does not know: a crash
                    // between put and record, or a scanner's vault not yet imported.
                    for id in vault.list()? {
                        if !known.contains(&id) && store.evidence_item(id).await.is_err() {
                            if json {
                                println!(
                                    "{}",
                                    json!({"id": id, "ok": false, "error": "not registered in the store"})
                                );
                            } else {
                                println!("{id}: not registered in the store");
                            }
                        }
                    }
                }
                if !json {
                    eprintln!("{} checked, {} failed", ids.len(), bad);
                }
                Ok(if bad > 0 { exit::FOUND } else { exit::OK })
            })
        }
        VaultCommand::Purge {
            json,
            actor,
            vault,
            db,
        } => {
            let vault = vault.open()?;
            block_on(async {
                let store = db.open().await?;
                let report = store.purge_expired_evidence(&vault, &actor.by).await?;
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    for id in &report.destroyed {
                        println!("destroyed {id}");
                    }
                    for (id, why) in &report.failed {
                        println!("{id}: not removed: {why}");
                    }
                    eprintln!(
                        "{} destroyed, {} leftovers removed, {} failed",
                        report.destroyed.len(),
                        report.swept.len(),
                        report.failed.len()
                    );
                }
                Ok(if report.failed.is_empty() {
                    exit::OK
                } else {
                    exit::ERROR
                })
            })
        }
        VaultCommand::Hold {
            id,
            release,
            reason,
            actor,
            db,
        } => block_on(async {
            let store = db.open().await?;
            let item = store
                .set_legal_hold(id, !release, &actor.by, &reason)
                .await?;
            println!(
                "{}: legal hold {}",
                item.id,
                if item.legal_hold { "on" } else { "off" }
            );
            Ok(exit::OK)
        }),
        VaultCommand::RotateKey {
            new_key_file,
            actor,
            vault,
            db,
        } => {
            let new_keys = Keyring::from_file(&new_key_file)?;
            let current = vault.keyring()?;
            let mut rotating = current.rotated_to(new_keys.current().clone());
            for id in new_keys.ids().into_iter().skip(1) {
                if let Some(key) = new_keys.get(id) {
                    rotating = rotating.with_retired(key.clone());
                }
            }
            let vault = Vault::open_dir(&vault.vault_dir, rotating)?;
            let report = vault.rotate()?;
            for (id, e) in &report.failed {
                eprintln!("{id}: not re-wrapped: {e}");
            }
            let new_id = vault.keyring().current().id();
            block_on(async {
                let store = db.open().await?;
                store
                    .audit(
                        &actor.by,
                        "vault.rotate_key",
                        "vault",
                        None,
                        json!({
                            "new_key": new_id.to_string(),
                            "rewrapped": report.rewrapped.len(),
                            "already_current": report.already_current,
                            "failed": report.failed.len(),
                        }),
                    )
                    .await?;
                Ok(())
            })?;
            println!(
                "re-wrapped {} items with key {new_id} ({} already current, {} failed)",
                report.rewrapped.len(),
                report.already_current,
                report.failed.len()
            );
            if report.failed.is_empty() {
                eprintln!(
                    "now make {} the current key (first line of the key file)",
                    new_key_file.display()
                );
                Ok(exit::OK)
            } else {
                Ok(exit::ERROR)
            }
        }
        VaultCommand::Keygen { out } => {
            let key = MasterKey::generate()?;
            let text = key.to_base64();
            match out {
                Some(path) => {
                    write_private(&path, format!("{}\n", *text).as_bytes())?;
                    eprintln!("wrote key {} to {}", key.id(), path.display());
                }
                None => println!("{}", *text),
            }
            Ok(exit::OK)
        }
    }
}

/// Refuses to write content to a terminal or a regular file: only a pipe
/// (to a viewer, or to an upload) may receive it.
fn check_stdout_is_a_pipe() -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!("vault get: standard output is a terminal; pipe it to a viewer or uploader instead");
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = stdout
            .as_fd()
            .try_clone_to_owned()
            .context("inspecting standard output")?;
        let meta = std::fs::File::from(fd)
            .metadata()
            .context("inspecting standard output")?;
        if meta.file_type().is_file() {
            bail!(
                "vault get: standard output is a file; content is never written to disk in the clear, pipe it instead"
            );
        }
    }
    Ok(())
}

/// Writes a new owner-only file (0600), refusing to overwrite one.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
