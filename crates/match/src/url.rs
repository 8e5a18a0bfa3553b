//! URL and domain lists, as hotlines distribute them: one URL or domain per
//! line, `#` comments and blank lines ignored.
//!
//! Entries and queries are normalised the same way ([`normalize_url`]): the
//! scheme, userinfo and fragment are dropped (`http` and `https` copies of a
//! page are the same page), the host is lowercased, stripped of a trailing
//! dot and converted to punycode if it is internationalised, default ports
//! (80 and 443) are dropped, percent-escapes of unreserved characters are
//! decoded and the others uppercased, characters that must be escaped are,
//! dot segments are resolved and trailing slashes removed.
//!
//! An entry without a path (`example.com`, `https://example.com/`) is a
//! domain: it matches that host and every subdomain, on any port and path.
//! An entry with a path or query matches exactly that normalised URL.
//!
//! Findings name the list and a short fingerprint of the entry, never the
//! listed URL itself: the list is confidential and its entries point at abuse
//! material.

use std::{collections::HashMap, path::Path};

use childsafe_core::{Category, Finding, FindingSource, SignalKind, SourceKind};
use unicode_normalization::UnicodeNormalization;

use crate::error::Error;

/// Whether a list entry is a domain or a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlEntryKind {
    /// Matches the host and all its subdomains.
    Domain,
    /// Matches one normalised URL.
    Url,
}

/// A URL list.
#[derive(Clone)]
pub struct UrlList {
    name: String,
    category: Category,
    domains: HashMap<String, usize>,
    urls: HashMap<String, usize>,
}

impl std::fmt::Debug for UrlList {
    /// Counts only: the entries are confidential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlList")
            .field("name", &self.name)
            .field("category", &self.category)
            .field("domains", &self.domains.len())
            .field("urls", &self.urls.len())
            .finish()
    }
}

/// A URL that is on a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlMatch {
    /// The list's name.
    pub list: String,
    /// Domain or URL entry.
    pub kind: UrlEntryKind,
    /// The entry's line in the list file (for the operator).
    pub line: usize,
    /// A stable fingerprint of the normalised entry (`u-` and 16 hex digits),
    /// safe to log and store where the entry itself is not.
    pub entry_id: String,
    /// The list's category.
    pub category: Category,
}

impl UrlMatch {
    /// The match as a finding (`source.kind = url_list`, score 1.0).
    pub fn to_finding(&self) -> Finding {
        Finding::new(
            self.category,
            1.0,
            FindingSource {
                kind: SourceKind::UrlList,
                name: self.list.clone(),
                signal: Some(SignalKind::Url),
                entry_id: Some(self.entry_id.clone()),
                distance: None,
            },
        )
    }
}

/// A URL split into the parts that matter for matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedUrl {
    /// Lowercase ASCII host (punycode for IDN), without trailing dot.
    pub host: String,
    /// The port, if not the scheme's default.
    pub port: Option<u16>,
    /// Path (always starting with `/`, no trailing slash but the root) and
    /// `?query` if any, percent-encoding normalised.
    pub path_and_query: String,
}

impl NormalizedUrl {
    /// The key a URL entry is stored under: `host[:port]/path[?query]`.
    pub fn key(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}{}", self.host, self.path_and_query),
            None => format!("{}{}", self.host, self.path_and_query),
        }
    }

    /// True if there is no path (other than `/`) and no query.
    pub fn is_domain(&self) -> bool {
        self.path_and_query == "/"
    }
}

impl UrlList {
    /// Parses a list (all or nothing). `file` names it in errors; `name` is
    /// the list name findings carry.
    ///
    /// # Errors
    /// [`Error::Parse`] naming the first line that is not a URL or domain.
    pub fn parse(
        name: &str,
        file: &str,
        bytes: &[u8],
        category: Category,
    ) -> Result<UrlList, Error> {
        let mut res = UrlList {
            name: name.to_owned(),
            category,
            domains: HashMap::new(),
            urls: HashMap::new(),
        };
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        for (line_idx, raw) in bytes.split(|&it| it == b'\n').enumerate() {
            let line_no = line_idx + 1;
            let line = std::str::from_utf8(raw)
                .map_err(|_| Error::parse(file, line_no, "text", "expected UTF-8"))?
                .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let url =
                normalize_url(line).map_err(|reason| Error::parse(file, line_no, "url", reason))?;
            if url.is_domain() {
                res.domains.entry(url.host).or_insert(line_no);
            } else {
                res.urls.entry(url.key()).or_insert(line_no);
            }
        }
        Ok(res)
    }

    /// Reads and parses a list file; the list is named after the file stem.
    ///
    /// # Errors
    /// I/O, or as [`UrlList::parse`].
    pub fn load(path: &Path, category: Category) -> Result<UrlList, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::io(path, source))?;
        let name = path
            .file_stem()
            .map(|it| it.to_string_lossy().into_owned())
            .unwrap_or_else(|| "url-list".into());
        UrlList::parse(&name, &path.display().to_string(), &bytes, category)
    }

    /// The list's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The category its matches carry.
    pub fn category(&self) -> Category {
        self.category
    }

    /// Number of entries (domains plus URLs).
    pub fn len(&self) -> usize {
        self.domains.len() + self.urls.len()
    }

    /// True if the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks a URL up: an exact URL entry first, then the host and each of
    /// its parent domains. A string that is not a URL matches nothing.
    pub fn matches(&self, url: &str) -> Option<UrlMatch> {
        let url = normalize_url(url).ok()?;
        let found = |kind, key: &str, line: usize| UrlMatch {
            list: self.name.clone(),
            kind,
            line,
            entry_id: format!("u-{:016x}", fingerprint(key)),
            category: self.category,
        };
        let key = url.key();
        if let Some(&line) = self.urls.get(&key) {
            return Some(found(UrlEntryKind::Url, &key, line));
        }
        let mut host = url.host.as_str();
        loop {
            if let Some(&line) = self.domains.get(host) {
                return Some(found(UrlEntryKind::Domain, host, line));
            }
            match host.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => host = parent,
                _ => return None,
            }
        }
    }
}

/// A 64-bit FNV-1a fingerprint, for entry ids.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |acc, byte| {
        (acc ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Normalises a URL or bare domain (see the module docs).
///
/// # Errors
/// What is wrong, e.g. `expected a host, got nothing`.
pub fn normalize_url(text: &str) -> Result<NormalizedUrl, String> {
    let text = text.trim();
    let (scheme, rest) = match text.find("://") {
        Some(at)
            if at > 0
                && text[..at]
                    .chars()
                    .all(|it| it.is_ascii_alphanumeric() || "+-.".contains(it)) =>
        {
            (text[..at].to_ascii_lowercase(), &text[at + 3..])
        }
        _ => (String::from("http"), text),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, it)| it);
    let (host, port) = split_port(authority)?;
    let host = normalize_host(host)?;
    // 80 and 443 are dropped whatever the scheme says (a page is the same
    // page over http and https, and it keeps normalisation idempotent on
    // the scheme-less keys); 21 only for ftp.
    let port = port.filter(|&it| it != 80 && it != 443 && !(it == 21 && scheme == "ftp"));
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    let mut path = remove_dot_segments(&escape(path, false));
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(query) = query.filter(|it| !it.is_empty()) {
        path.push('?');
        path.push_str(&escape(query, true));
    }
    Ok(NormalizedUrl {
        host,
        port,
        path_and_query: path,
    })
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    // IPv6 literal: [::1]:8080
    if let Some(inner) = authority.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err("expected ']' after an IPv6 address".into());
        };
        let port = match after.strip_prefix(':') {
            Some(port) => Some(parse_port(port)?),
            None if after.is_empty() => None,
            None => return Err("expected ':' or nothing after ']'".into()),
        };
        return Ok((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((authority, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| {
        format!(
            "expected a port number, got {:?}",
            text.chars().take(8).collect::<String>()
        )
    })
}

fn normalize_host(host: &str) -> Result<String, String> {
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return Err("expected a host, got nothing".into());
    }
    if host.contains(':') {
        // IPv6 literal (brackets removed by `split_port`).
        if host
            .chars()
            .all(|it| it.is_ascii_hexdigit() || it == ':' || it == '.')
        {
            return Ok(format!("[{}]", host.to_ascii_lowercase()));
        }
        return Err("expected an IPv6 address inside brackets".into());
    }
    let mut labels = Vec::new();
    for label in host.split('.') {
        if label.is_empty() {
            return Err("expected no empty labels in the host".into());
        }
        let label: String = label.nfc().flat_map(char::to_lowercase).collect();
        let label = if label.is_ascii() {
            label
        } else {
            format!(
                "xn--{}",
                punycode(&label).ok_or("expected a valid internationalised domain name")?
            )
        };
        if let Some(bad) = label
            .chars()
            .find(|it| !(it.is_ascii_alphanumeric() || *it == '-' || *it == '_'))
        {
            return Err(format!(
                "expected letters, digits or '-' in the host, got {bad:?}"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "expected labels of at most 63 characters, got {}",
                label.len()
            ));
        }
        labels.push(label);
    }
    Ok(labels.join("."))
}

/// RFC 3492 punycode of one label (the part after `xn--`).
fn punycode(label: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    fn adapt(mut delta: u32, points: u32, first: bool) -> u32 {
        delta = if first { delta / DAMP } else { delta / 2 };
        delta += delta / points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
    }
    fn digit(value: u32) -> char {
        let byte = if value < 26 {
            b'a' + value as u8
        } else {
            b'0' + (value - 26) as u8
        };
        char::from(byte)
    }
    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut output: String = label.chars().filter(char::is_ascii).collect();
    let basic = output.len() as u32;
    let mut handled = basic;
    if basic > 0 {
        output.push('-');
    }
    let (mut n, mut delta, mut bias) = (128u32, 0u32, 72u32);
    while (handled as usize) < input.len() {
        let next = *input.iter().filter(|&&it| it >= n).min()?;
        delta = delta.checked_add((next - n).checked_mul(handled + 1)?)?;
        n = next;
        for &code in &input {
            if code < n {
                delta = delta.checked_add(1)?;
            }
            if code == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    output.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                output.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(output)
}

/// Normalises percent-encoding: decodes escapes of unreserved characters,
/// uppercases the others, escapes what may not appear raw.
fn escape(text: &str, query: bool) -> String {
    let bytes = text.as_bytes();
    let mut res = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'%' {
            let hex = bytes.get(at + 1..at + 3).and_then(|pair| {
                let text = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(text, 16).ok()
            });
            if let Some(value) = hex {
                if is_unreserved(value) {
                    res.push(char::from(value));
                } else {
                    res.push_str(&format!("%{value:02X}"));
                }
                at += 3;
                continue;
            }
            res.push_str("%25");
            at += 1;
            continue;
        }
        let allowed =
            is_unreserved(byte) || b"!$&'()*+,;=:@/".contains(&byte) || (query && byte == b'?');
        if allowed {
            res.push(char::from(byte));
        } else {
            res.push_str(&format!("%{byte:02X}"));
        }
        at += 1;
    }
    res
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (idx, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if idx == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 || (out.len() == 1 && !out[0].is_empty()) {
                    out.pop();
                }
                if idx == last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    let mut res = out.join("/");
    if absolute && !res.starts_with('/') {
        res.insert(0, '/');
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> String {
        match normalize_url(url) {
            Ok(it) => it.key(),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn normalisation_cases() {
        let cases = [
            ("HTTP://Example.COM:80/a/./b/../c/", "example.com/a/c"),
            ("https://example.com:443", "example.com/"),
            ("https://example.com:8443/x", "example.com:8443/x"),
            (
                "example.com/%7euser/%2f/a%20b%zz",
                "example.com/~user/%2F/a%20b%25zz",
            ),
            ("user:pw@example.org/path?q=1#frag", "example.org/path?q=1"),
            ("example.org./path//", "example.org/path"),
            ("http://bücher.example/ä", "xn--bcher-kva.example/%C3%A4"),
            ("http://[2001:DB8::1]:8080/", "[2001:db8::1]:8080/"),
            ("http:///nohost", "error: expected a host, got nothing"),
            (
                "exa mple.com",
                "error: expected letters, digits or '-' in the host, got ' '",
            ),
            (
                "example.com:99999",
                "error: expected a port number, got \"99999\"",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(key(input), expected, "{input}");
        }
    }

    #[test]
    fn normalising_is_idempotent() {
        for input in [
            "https://example.com:80/a/../b%2e/./c?x=%7e#f",
            "http://[::1]:8443//x/",
            "ftp://example.net:21/",
            "HTTP://Bücher.Example/ä%zz",
        ] {
            let once = normalize_url(input).unwrap().key();
            assert_eq!(normalize_url(&once).unwrap().key(), once, "{input}");
        }
    }

    #[test]
    fn punycode_matches_rfc_3492_samples() {
        assert_eq!(punycode("bücher").unwrap(), "bcher-kva");
        assert_eq!(punycode("münchen").unwrap(), "mnchen-3ya");
        assert_eq!(punycode("例え").unwrap(), "r8jz45g");
    }

    #[test]
    fn domains_match_subdomains_and_urls_match_exactly() {
        let list = UrlList::parse(
            "hotline",
            "list.txt",
            b"# benign stand-ins\n\nexample.com\nhttps://www.example.net/gallery/page.html\nEXAMPLE.ORG/\n",
            Category::CsamKnown,
        )
        .unwrap();
        assert_eq!(list.len(), 3);
        let hit = list
            .matches("https://cdn.img.example.com:443/any/path?x=1")
            .unwrap();
        assert_eq!(hit.kind, UrlEntryKind::Domain);
        assert_eq!(hit.line, 3);
        assert!(list.matches("http://example.com").is_some());
        assert!(list.matches("notexample.com").is_none());
        assert!(list.matches("example.com.evil.test").is_none());
        assert!(
            list.matches("http://WWW.example.net/gallery/page.html/")
                .is_some()
        );
        assert!(
            list.matches("http://www.example.net/gallery/other.html")
                .is_none()
        );
        assert!(list.matches("example.net").is_none());
        assert!(list.matches("sub.example.org/x").is_some());
        assert!(list.matches("not a url at all").is_none());
        let finding = hit.to_finding();
        assert_eq!(finding.source.kind, SourceKind::UrlList);
        assert_eq!(finding.category, Category::CsamKnown);
        let json = serde_json::to_string(&finding).unwrap();
        assert!(
            !json.contains("example"),
            "findings must not carry the listed URL: {json}"
        );
        assert!(!format!("{list:?}").contains("example"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = UrlList::parse(
            "l",
            "list.txt",
            b"example.com\nhttp://\n",
            Category::CsamKnown,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "list.txt:2: url: expected a host, got nothing"
        );
    }
}
