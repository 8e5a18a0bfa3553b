//! `childsafe hash`: PDQ and MD5/SHA-1/SHA-256 of image files and
//! directories, one line per file in a deterministic order.
//!
//! The walking, reading, decoding and hashing are `childsafe_hash::walk`;
//! this file parses flags, formats each result and counts errors.

use std::{
    io::{BufWriter, Write},
    ops::ControlFlow,
    path::PathBuf,
};

use childsafe_hash::{DecodeLimits, Dihedral, Error, HashConfig, ImageHashes, walk};
use serde_json::{Map, Value, json};

use crate::{Global, exit, progress::Progress};

/// Hash images: PDQ (perceptual) and MD5, SHA-1, SHA-256 of the bytes.
///
/// Files and directories (recursive, sorted by name) are hashed in parallel
/// and printed in input order. A file that cannot be read or decoded gives
/// one error naming it and the reason; the run goes on, a summary goes to
/// stderr, and the exit status is 2 if any file failed.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// One JSON object per line: path, pdq, quality, md5, sha1, sha256 (and
    /// dihedral), or path and error (with the byte hashes if the file was
    /// read).
    #[arg(long)]
    json: bool,
    /// Also output the hashes of the 8 rotations and reflections (orig,
    /// rot90, rot180, rot270, flipx, flipy, flipplus1, flipminus1).
    #[arg(long)]
    dihedral: bool,
    /// Compute as the PDQ reference does: every JPEG decoded at full
    /// resolution through RGB, and the reference's box-filter passes.
    /// Default: JPEGs of 768 px and more on the short side are decoded at
    /// 1/8 scale in the DCT domain, others to their Y plane, and the filter
    /// is one weighted step: several times faster, within the reference
    /// tolerance.
    #[arg(long)]
    full_decode: bool,
    /// Rotate or flip by the EXIF orientation before hashing. Default: off,
    /// as in the PDQ reference (hash lists are built that way).
    #[arg(long)]
    exif_orientation: bool,
    /// Largest file read, in bytes. Default: 64 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = DecodeLimits::default().max_bytes)]
    max_bytes: u64,
    /// Most pixels (width x height) decoded. Default: 64 million.
    #[arg(long, value_name = "PIXELS", default_value_t = DecodeLimits::default().max_pixels)]
    max_pixels: u64,
    /// Image files or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

impl Args {
    fn to_config(&self) -> HashConfig {
        HashConfig {
            limits: DecodeLimits {
                max_bytes: self.max_bytes,
                max_pixels: self.max_pixels,
                ..DecodeLimits::default()
            },
            exif_orientation: self.exif_orientation,
            full_decode: self.full_decode,
            dihedral: self.dihedral,
        }
    }
}

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    hashed: u64,
    errors: u64,
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<u8> {
    let config = args.to_config();
    let list = walk::collect(&args.paths);
    let progress = Progress::new("hash", "files", Some(list.len() as u64));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    let mut write_error = None;
    walk::hash_files(&list, &config, |result| {
        progress.inc(1);
        let path = result.path.display().to_string();
        let written = match result.outcome {
            Ok(ImageHashes {
                crypto,
                pdq: Ok(pdq),
            }) => {
                tally.hashed += 1;
                if args.json {
                    let mut object = Map::new();
                    object.insert("path".into(), json!(path));
                    object.insert("pdq".into(), json!(pdq.hash));
                    object.insert("quality".into(), json!(pdq.quality));
                    object.insert("md5".into(), json!(crypto.md5));
                    object.insert("sha1".into(), json!(crypto.sha1));
                    object.insert("sha256".into(), json!(crypto.sha256));
                    if let Some(all) = pdq.dihedral {
                        let variants: Map<String, Value> = Dihedral::ALL
                            .iter()
                            .zip(all)
                            .map(|(t, h)| (t.as_str().to_owned(), json!(h)))
                            .collect();
                        object.insert("dihedral".into(), Value::Object(variants));
                    }
                    writeln!(out, "{}", Value::Object(object))
                } else {
                    let mut line = format!(
                        "{} {:3} {} {} {} {path}",
                        pdq.hash, pdq.quality, crypto.md5, crypto.sha1, crypto.sha256
                    );
                    if let Some(all) = pdq.dihedral {
                        for (t, h) in Dihedral::ALL.iter().zip(all) {
                            line.push_str(&format!("\n  {:<10} {h}", t.as_str()));
                        }
                    }
                    writeln!(out, "{line}")
                }
            }
            Ok(ImageHashes {
                crypto,
                pdq: Err(err),
            }) => {
                tally.errors += 1;
                if args.json {
                    let object = json!({
                        "path": path,
                        "error": err.reason(),
                        "md5": crypto.md5,
                        "sha1": crypto.sha1,
                        "sha256": crypto.sha256,
                    });
                    writeln!(out, "{object}")
                } else {
                    report_error(&progress, &path, &err);
                    Ok(())
                }
            }
            Err(err) => {
                tally.errors += 1;
                if args.json {
                    writeln!(out, "{}", json!({"path": path, "error": err.reason()}))
                } else {
                    report_error(&progress, &path, &err);
                    Ok(())
                }
            }
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                write_error = Some(err);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(err) = write_error {
        return Err(err.into());
    }
    out.flush()?;
    progress.finish();
    eprintln!(
        "hash: {} files: {} hashed, {} errors",
        tally.hashed + tally.errors,
        tally.hashed,
        tally.errors
    );
    Ok(if tally.errors > 0 {
        exit::ERROR
    } else {
        exit::OK
    })
}

/// One error line on stderr naming the file and the reason (never content).
fn report_error(progress: &Progress, path: &str, err: &Error) {
    progress.suspend(|| eprintln!("childsafe: hash: {path}: {}", err.reason()));
}
