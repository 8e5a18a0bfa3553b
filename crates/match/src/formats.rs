//! Hash list formats: parsing (import) and writing (export).
//!
//! - `hex`: one hash per line, optionally preceded by its signal type and a
//!   space (`pdq d8f8...`, python-threatexchange's local file exchange,
//!   `threatexchange/exchanges/impl/file_api.py`). `#` comments and blank
//!   lines are skipped. The kind is taken from the prefix, else the
//!   `--signal` option, else the length (32 md5, 40 sha1, 64 pdq).
//! - `csv`: a header row naming the columns, in any order: `hash` (required;
//!   or a column named after its signal type, `pdq`, `pdq_hex`, `md5`, `sha1`,
//!   `sha256`), `signal` (or `signal_type`, `type`), `id` (or `entry_id`),
//!   `category`, `source`, `added` (RFC 3339 or Unix seconds), `enabled`.
//!   Other columns are ignored. Comment lines start with `#`.
//! - `hma`: the CSV that python-threatexchange writes for a collaboration
//!   (`threatexchange dataset -P --csv`, `threatexchange/cli/dataset_cmd.py`):
//!   `collab,signal_type,signal_str,category,tags`, where `category` is the
//!   opinion (`POSITIVE_CLASS`, `NEGATIVE_CLASS`, `INVESTIGATION_SEED`,
//!   `DISPUTED`; `threatexchange/exchanges/fetch_state.py`). HMA 2.0
//!   (OpenMediaMatch) has no bank CSV export of its own; this is the CSV
//!   form of its signal exchange. Negative-class rows import disabled (a
//!   known false positive must not match); rows of signal types a bank
//!   cannot hold (`url`, `raw_text`, `vpdq`, ...) are skipped and counted.
//!
//! Parsing is all or nothing: the first malformed line is an error of the
//! form `file:line: field: expected X, got Y`, and nothing is returned. Error
//! messages quote at most a short, sanitised prefix of a field, never a line.

use std::io::Write;

use childsafe_core::{Category, SignalKind};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    entry::{Entry, Signal, check_name, now_unix},
    error::Error,
};

/// A list file format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListFormat {
    /// Detect from the first line (import only; export writes `csv`).
    #[default]
    Auto,
    /// One hex hash per line.
    Hex,
    /// CSV with a header (`hash,signal,id,category,source,added,enabled`).
    Csv,
    /// python-threatexchange / HMA collaboration CSV.
    Hma,
}

impl ListFormat {
    /// Every name, as accepted by `FromStr`.
    pub const NAMES: [&'static str; 4] = ["auto", "hex", "csv", "hma"];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ListFormat::Auto => "auto",
            ListFormat::Hex => "hex",
            ListFormat::Csv => "csv",
            ListFormat::Hma => "hma",
        }
    }
}

impl std::str::FromStr for ListFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<ListFormat, String> {
        match text {
            "auto" => Ok(ListFormat::Auto),
            "hex" => Ok(ListFormat::Hex),
            "csv" => Ok(ListFormat::Csv),
            "hma" => Ok(ListFormat::Hma),
            other => Err(format!("expected auto, hex, csv or hma, got {other:?}")),
        }
    }
}

/// Defaults for fields a list does not carry.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The format (default: detect).
    pub format: ListFormat,
    /// Category of entries whose row has none. Default `csam_known`.
    pub category: Category,
    /// Source list name for rows without one. Default: the file name.
    pub source: String,
    /// Signal kind of `hex` lines without a type prefix (needed for SHA-256,
    /// which has the same length as PDQ). Default: by length.
    pub signal: Option<SignalKind>,
    /// When the entries were added (Unix seconds), for rows without `added`.
    /// Default: now.
    pub added: i64,
}

impl ImportOptions {
    /// Defaults for a file: source = `source`, category `csam_known`, now.
    pub fn new(source: impl Into<String>) -> ImportOptions {
        ImportOptions {
            format: ListFormat::Auto,
            category: Category::CsamKnown,
            source: source.into(),
            signal: None,
            added: now_unix(),
        }
    }
}

/// The entries of a parsed list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedList {
    /// The format that was parsed (never `Auto`).
    pub format: ListFormat,
    /// Entries in file order.
    pub entries: Vec<Entry>,
    /// Rows skipped because the bank cannot hold their signal type (`hma`).
    pub skipped_unsupported: usize,
}

/// Parses a whole list file. `file` names it in errors.
///
/// # Errors
/// [`Error::Parse`] for the first malformed line; nothing is returned then.
pub fn parse_list(file: &str, bytes: &[u8], options: &ImportOptions) -> Result<ParsedList, Error> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let format = match options.format {
        ListFormat::Auto => detect(bytes),
        other => other,
    };
    let mut res = ParsedList {
        format,
        ..ParsedList::default()
    };
    match format {
        ListFormat::Hex | ListFormat::Auto => parse_hex(file, bytes, options, &mut res)?,
        ListFormat::Csv => parse_csv(file, bytes, options, &mut res)?,
        ListFormat::Hma => parse_hma(file, bytes, options, &mut res)?,
    }
    Ok(res)
}

/// Guesses the format from the first line that is not blank or a comment.
fn detect(bytes: &[u8]) -> ListFormat {
    let first = bytes
        .split(|&it| it == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .find(|line| {
            let trimmed = line.trim_ascii();
            !trimmed.is_empty() && !trimmed.starts_with(b"#")
        })
        .unwrap_or_default();
    let lower = String::from_utf8_lossy(first).to_ascii_lowercase();
    let columns: Vec<&str> = lower
        .split(',')
        .map(|it| it.trim().trim_matches('"'))
        .collect();
    let hash_columns = [
        "hash", "pdq", "pdq_hex", "pdq_hash", "md5", "sha1", "sha256",
    ];
    if columns.contains(&"signal_str") {
        ListFormat::Hma
    } else if columns.len() > 1 && columns.iter().any(|it| hash_columns.contains(it)) {
        ListFormat::Csv
    } else {
        ListFormat::Hex
    }
}

/// A short, printable rendering of untrusted text for error messages.
fn shown(text: &str) -> String {
    let clean: String = text
        .chars()
        .take(24)
        .map(|it| if it.is_control() { '?' } else { it })
        .collect();
    if text.chars().count() > 24 {
        format!("{clean:?}...")
    } else {
        format!("{clean:?}")
    }
}

fn parse_hex(
    file: &str,
    bytes: &[u8],
    options: &ImportOptions,
    out: &mut ParsedList,
) -> Result<(), Error> {
    for (line_idx, raw) in bytes.split(|&it| it == b'\n').enumerate() {
        let line_no = line_idx + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|_| Error::parse(file, line_no, "text", "expected UTF-8"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, hex) = match line.split_once(char::is_whitespace) {
            Some((kind, hex)) => {
                let kind = signal_name(kind).ok_or_else(|| {
                    Error::parse(
                        file,
                        line_no,
                        "signal",
                        format!("expected pdq, md5, sha1 or sha256, got {}", shown(kind)),
                    )
                })?;
                (Some(kind), hex.trim())
            }
            None => (options.signal, line),
        };
        let signal = match kind {
            Some(kind) => Signal::parse(kind, hex),
            None => Signal::parse_guess(hex),
        }
        .map_err(|reason| Error::parse(file, line_no, "hash", reason))?;
        out.entries.push(Entry {
            id: signal.to_string(),
            signal,
            source: options.source.clone(),
            category: options.category,
            added: options.added,
            enabled: true,
        });
    }
    Ok(())
}

/// Our names and python-threatexchange's for the kinds a bank holds.
fn signal_name(name: &str) -> Option<SignalKind> {
    match name.to_ascii_lowercase().as_str() {
        "pdq" => Some(SignalKind::Pdq),
        "md5" | "photo_md5" | "video_md5" => Some(SignalKind::Md5),
        "sha1" => Some(SignalKind::Sha1),
        "sha256" | "photo_sha256" | "video_sha256" => Some(SignalKind::Sha256),
        _ => None,
    }
}

/// One CSV record: its fields (text, and whether it was quoted) and the
/// line it starts on.
struct Record {
    line: usize,
    fields: Vec<(String, bool)>,
}

/// Splits RFC 4180 CSV into records (quoted fields may hold commas, quotes
/// as `""`, and line breaks). Blank lines and lines starting with `#` outside
/// quotes are skipped.
fn csv_records(file: &str, bytes: &[u8]) -> Result<Vec<Record>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let line = bytes[..err.valid_up_to()]
            .iter()
            .filter(|&&it| it == b'\n')
            .count()
            + 1;
        Error::parse(file, line, "text", "expected UTF-8")
    })?;
    let mut res = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    loop {
        // Skip blank and comment lines between records.
        match chars.peek() {
            None => break,
            Some('\n') => {
                chars.next();
                line += 1;
                continue;
            }
            Some('\r') => {
                chars.next();
                continue;
            }
            Some('#') => {
                for it in chars.by_ref() {
                    if it == '\n' {
                        break;
                    }
                }
                line += 1;
                continue;
            }
            Some(_) => {}
        }
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(it) = chars.next() else {
                if quoted {
                    return Err(Error::parse(
                        file,
                        start_line,
                        "csv",
                        "unterminated quoted field",
                    ));
                }
                fields.push((std::mem::take(&mut field), was_quoted));
                break;
            };
            if quoted {
                match it {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push('\n');
                    }
                    other => field.push(other),
                }
                continue;
            }
            match it {
                ',' => {
                    fields.push((std::mem::take(&mut field), was_quoted));
                    was_quoted = false;
                }
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                '"' => {
                    return Err(Error::parse(
                        file,
                        line,
                        "csv",
                        "expected a quote only at the start of a field",
                    ));
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    fields.push((std::mem::take(&mut field), was_quoted));
                    break;
                }
                other if was_quoted => {
                    return Err(Error::parse(
                        file,
                        line,
                        "csv",
                        format!(
                            "expected a comma after a closing quote, got {}",
                            shown(&other.to_string())
                        ),
                    ));
                }
                other => field.push(other),
            }
        }
        res.push(Record {
            line: start_line,
            fields,
        });
    }
    Ok(res)
}

/// Column positions of our CSV header.
struct Columns {
    hash: usize,
    /// The signal type the hash column's name implies.
    implied: Option<SignalKind>,
    signal: Option<usize>,
    id: Option<usize>,
    category: Option<usize>,
    source: Option<usize>,
    added: Option<usize>,
    enabled: Option<usize>,
    count: usize,
}

fn csv_columns(file: &str, header: &Record) -> Result<Columns, Error> {
    let names: Vec<String> = header
        .fields
        .iter()
        .map(|(it, _)| it.trim().to_ascii_lowercase())
        .collect();
    let find = |aliases: &[&str]| {
        names
            .iter()
            .position(|name| aliases.contains(&name.as_str()))
    };
    // A column named after a signal type holds hashes of that type (lists
    // often have an `md5` column, the PDQ reference hasher a `pdq_hex` one).
    let (hash, implied) = if let Some(at) = find(&["hash", "signal_str", "signal_value"]) {
        (at, None)
    } else if let Some(at) = find(&["pdq", "pdq_hex", "pdq_hash"]) {
        (at, Some(SignalKind::Pdq))
    } else if let Some(at) = find(&["md5"]) {
        (at, Some(SignalKind::Md5))
    } else if let Some(at) = find(&["sha1"]) {
        (at, Some(SignalKind::Sha1))
    } else if let Some(at) = find(&["sha256"]) {
        (at, Some(SignalKind::Sha256))
    } else {
        return Err(Error::parse(
            file,
            header.line,
            "header",
            "expected a hash column (hash, pdq, md5, sha1 or sha256)",
        ));
    };
    Ok(Columns {
        hash,
        implied,
        signal: find(&["signal", "signal_type", "type"]),
        id: find(&["id", "entry_id"]),
        category: find(&["category"]),
        source: find(&["source", "list"]),
        added: find(&["added", "added_at"]),
        enabled: find(&["enabled"]),
        count: names.len(),
    })
}

/// A field's text: unquoted fields are trimmed, quoted ones kept verbatim;
/// empty means absent.
fn field(record: &Record, column: Option<usize>) -> Option<&str> {
    column
        .and_then(|it| record.fields.get(it))
        .map(|(text, quoted)| if *quoted { text.as_str() } else { text.trim() })
        .filter(|it| !it.is_empty())
}

fn parse_csv(
    file: &str,
    bytes: &[u8],
    options: &ImportOptions,
    out: &mut ParsedList,
) -> Result<(), Error> {
    let records = csv_records(file, bytes)?;
    let Some((header, rows)) = records.split_first() else {
        return Ok(());
    };
    let columns = csv_columns(file, header)?;
    for record in rows {
        let line = record.line;
        if record.fields.len() != columns.count {
            return Err(Error::parse(
                file,
                line,
                "csv",
                format!(
                    "expected {} fields, got {}",
                    columns.count,
                    record.fields.len()
                ),
            ));
        }
        let hex = field(record, Some(columns.hash)).unwrap_or_default().trim();
        let kind = match field(record, columns.signal) {
            Some(name) => Some(signal_name(name).ok_or_else(|| {
                Error::parse(
                    file,
                    line,
                    "signal",
                    format!("expected pdq, md5, sha1 or sha256, got {}", shown(name)),
                )
            })?),
            None => columns.implied.or(options.signal),
        };
        let signal = match kind {
            Some(kind) => Signal::parse(kind, hex),
            None => Signal::parse_guess(hex),
        }
        .map_err(|reason| Error::parse(file, line, "hash", reason))?;
        let category = match field(record, columns.category) {
            Some(name) => name.parse::<Category>().map_err(|_| {
                Error::parse(
                    file,
                    line,
                    "category",
                    format!(
                        "expected a category such as csam_known, got {}",
                        shown(name)
                    ),
                )
            })?,
            None => options.category,
        };
        let id = field(record, columns.id).map_or_else(|| signal.to_string(), str::to_owned);
        check_name("id", &id).map_err(|reason| Error::parse(file, line, "id", reason))?;
        let source =
            field(record, columns.source).map_or_else(|| options.source.clone(), str::to_owned);
        check_name("source", &source)
            .map_err(|reason| Error::parse(file, line, "source", reason))?;
        let added = match field(record, columns.added) {
            Some(text) => parse_time(text).ok_or_else(|| {
                Error::parse(
                    file,
                    line,
                    "added",
                    format!("expected RFC 3339 or Unix seconds, got {}", shown(text)),
                )
            })?,
            None => options.added,
        };
        let enabled = match field(record, columns.enabled) {
            Some(text) => parse_bool(text).ok_or_else(|| {
                Error::parse(
                    file,
                    line,
                    "enabled",
                    format!("expected true or false, got {}", shown(text)),
                )
            })?,
            None => true,
        };
        out.entries.push(Entry {
            signal,
            id,
            source,
            category,
            added,
            enabled,
        });
    }
    Ok(())
}

fn parse_hma(
    file: &str,
    bytes: &[u8],
    options: &ImportOptions,
    out: &mut ParsedList,
) -> Result<(), Error> {
    let records = csv_records(file, bytes)?;
    let Some((header, rows)) = records.split_first() else {
        return Ok(());
    };
    let names: Vec<String> = header
        .fields
        .iter()
        .map(|(it, _)| it.trim().to_ascii_lowercase())
        .collect();
    let find = |name: &str| names.iter().position(|it| it == name);
    let (Some(signal_col), Some(hash_col)) = (find("signal_type"), find("signal_str")) else {
        return Err(Error::parse(
            file,
            header.line,
            "header",
            "expected collab,signal_type,signal_str,category,tags",
        ));
    };
    let collab_col = find("collab");
    let opinion_col = find("category");
    for record in rows {
        let line = record.line;
        if record.fields.len() != names.len() {
            return Err(Error::parse(
                file,
                line,
                "csv",
                format!(
                    "expected {} fields, got {}",
                    names.len(),
                    record.fields.len()
                ),
            ));
        }
        let type_name = field(record, Some(signal_col)).unwrap_or_default();
        let Some(kind) = signal_name(type_name) else {
            if type_name.is_empty() {
                return Err(Error::parse(
                    file,
                    line,
                    "signal_type",
                    "expected a signal type, got nothing",
                ));
            }
            out.skipped_unsupported += 1;
            continue;
        };
        let hex = field(record, Some(hash_col)).unwrap_or_default().trim();
        let signal = Signal::parse(kind, hex)
            .map_err(|reason| Error::parse(file, line, "signal_str", reason))?;
        let enabled = match field(record, opinion_col) {
            None => true,
            Some(opinion) => match opinion.to_ascii_uppercase().as_str() {
                "POSITIVE_CLASS"
                | "INVESTIGATION_SEED"
                | "DISPUTED"
                | "TRUE_POSITIVE"
                | "WORTH_INVESTIGATING" => true,
                "NEGATIVE_CLASS" | "FALSE_POSITIVE" => false,
                _ => {
                    return Err(Error::parse(
                        file,
                        line,
                        "category",
                        format!(
                            "expected POSITIVE_CLASS, NEGATIVE_CLASS, INVESTIGATION_SEED or DISPUTED, got {}",
                            shown(opinion)
                        ),
                    ));
                }
            },
        };
        let source =
            field(record, collab_col).map_or_else(|| options.source.clone(), str::to_owned);
        check_name("source", &source)
            .map_err(|reason| Error::parse(file, line, "collab", reason))?;
        out.entries.push(Entry {
            id: signal.to_string(),
            signal,
            source,
            category: options.category,
            added: options.added,
            enabled,
        });
    }
    Ok(())
}

fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|it| it.unix_timestamp())
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// RFC 3339 in UTC, or the number of seconds if out of range.
fn format_time(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|it| it.format(&Rfc3339).ok())
        .unwrap_or_else(|| seconds.to_string())
}

/// Quotes a CSV field if it needs it (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.trim() != text {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Writes entries in a format (`Auto` writes `csv`).
///
/// # Errors
/// Errors of the writer.
pub fn write_list(
    format: ListFormat,
    entries: impl Iterator<Item = Entry>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        ListFormat::Hex => {
            for entry in entries {
                match entry.signal {
                    // SHA-256 has PDQ's length: say which it is.
                    Signal::Sha256(_) => writeln!(out, "sha256 {}", entry.signal)?,
                    _ => writeln!(out, "{}", entry.signal)?,
                }
            }
        }
        ListFormat::Csv | ListFormat::Auto => {
            writeln!(out, "hash,signal,id,category,source,added,enabled")?;
            for entry in entries {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    entry.signal,
                    entry.signal.kind(),
                    csv_field(&entry.id),
                    entry.category,
                    csv_field(&entry.source),
                    format_time(entry.added),
                    entry.enabled
                )?;
            }
        }
        ListFormat::Hma => {
            // Python's csv module, which python-threatexchange uses, ends
            // rows with CRLF.
            write!(out, "collab,signal_type,signal_str,category,tags\r\n")?;
            for entry in entries {
                let opinion = if entry.enabled {
                    "POSITIVE_CLASS"
                } else {
                    "NEGATIVE_CLASS"
                };
                write!(
                    out,
                    "{},{},{},{},\r\n",
                    csv_field(&entry.source),
                    entry.signal.kind(),
                    entry.signal,
                    opinion
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
