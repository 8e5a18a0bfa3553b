//! A small, bounded element tree for reading NCMEC documents from outside
//! (the server's responses in the client, request bodies in the fake).
//!
//! It keeps element names, attributes, text and the line each element starts
//! on, and nothing else: no DTD processing (so no external entities), only the
//! five predefined entities and character references, a depth limit and a node
//! limit. Bytes are decoded as the XML declaration says (UTF-8 or ISO-8859-1),
//! whatever the HTTP `Content-Type` claimed (API-NOTES §1.4).

use quick_xml::{XmlVersion, events::Event, reader::Reader};

use crate::error::Error;

/// Deepest nesting accepted; the XSD's deepest path is well under 10.
const MAX_DEPTH: usize = 32;
/// Most elements accepted in one document.
const MAX_NODES: usize = 100_000;

/// One element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) children: Vec<Node>,
    /// Concatenated character data directly inside this element.
    pub(crate) text: String,
    /// 1-based line of the start tag.
    pub(crate) line: u64,
}

impl Node {
    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|it| it.name == name)
    }

    /// Every child named `name`, in document order.
    pub(crate) fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |it| it.name == name)
    }

    /// The attribute `name`.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses a whole document into its root element.
pub(crate) fn parse(bytes: &[u8]) -> Result<Node, Error> {
    let text = decode(bytes)?;
    let mut reader = Reader::from_str(&text);
    let lines = LineCounter::new(&text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|err| Error::Xml {
            line: lines.line_at(reader.error_position()),
            path: path_of(&stack),
            message: format!("not well-formed XML: {err}"),
        })?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(Error::Xml {
                    line: lines.line_at(at),
                    path: String::new(),
                    message: "content after the root element".to_owned(),
                });
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                nodes += 1;
                if nodes > MAX_NODES || stack.len() >= MAX_DEPTH {
                    return Err(Error::Xml {
                        line: lines.line_at(at),
                        path: path_of(&stack),
                        message: format!(
                            "document too large: more than {MAX_NODES} elements or {MAX_DEPTH} levels"
                        ),
                    });
                }
                let name = start.name().as_ref().to_owned();
                let mut attrs = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|err| Error::Xml {
                        line: lines.line_at(at),
                        path: format!("{}{name}", prefix(&stack)),
                        message: format!("bad attribute: {err}"),
                    })?;
                    let key = attr.key.as_ref().to_owned();
                    let value = attr
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|err| Error::Xml {
                            line: lines.line_at(at),
                            path: format!("{}{name}/@{key}", prefix(&stack)),
                            message: format!("bad attribute value: {err}"),
                        })?
                        .into_owned();
                    attrs.push((key, value));
                }
                let node = Node {
                    name,
                    attrs,
                    children: Vec::new(),
                    text: String::new(),
                    line: lines.line_at(at),
                };
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, node);
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start tags.
                if let Some(node) = stack.pop() {
                    attach(&mut stack, &mut root, node);
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                push_text(&mut stack, &content, &lines, at)?;
            }
            Event::CData(data) => {
                let content = data.xml10_content().into_owned();
                push_text(&mut stack, &content, &lines, at)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => match &*reference {
                        "amp" => "&".to_owned(),
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "apos" => "'".to_owned(),
                        "quot" => "\"".to_owned(),
                        other => {
                            return Err(Error::Xml {
                                line: lines.line_at(at),
                                path: path_of(&stack),
                                message: format!("unknown entity &{other};"),
                            });
                        }
                    },
                    Err(err) => {
                        return Err(Error::Xml {
                            line: lines.line_at(at),
                            path: path_of(&stack),
                            message: format!("bad character reference: {err}"),
                        });
                    }
                };
                push_text(&mut stack, &resolved, &lines, at)?;
            }
            Event::DocType(_) => {
                return Err(Error::Xml {
                    line: lines.line_at(at),
                    path: String::new(),
                    message: "DOCTYPE is not allowed".to_owned(),
                });
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(Error::Xml {
            line: lines.line_at(text.len() as u64),
            path: path_of(&stack),
            message: "unexpected end of document".to_owned(),
        });
    }
    root.ok_or_else(|| Error::Xml {
        line: 0,
        path: String::new(),
        message: "no root element".to_owned(),
    })
}

fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

fn push_text(
    stack: &mut [Node],
    content: &str,
    lines: &LineCounter<'_>,
    at: u64,
) -> Result<(), Error> {
    match stack.last_mut() {
        Some(parent) => {
            parent.text.push_str(content);
            Ok(())
        }
        None if content.trim().is_empty() => Ok(()),
        None => Err(Error::Xml {
            line: lines.line_at(at),
            path: String::new(),
            message: "text outside the root element".to_owned(),
        }),
    }
}

fn prefix(stack: &[Node]) -> String {
    let mut res = String::new();
    for node in stack {
        res.push_str(&node.name);
        res.push('/');
    }
    res
}

fn path_of(stack: &[Node]) -> String {
    let mut res = prefix(stack);
    res.pop();
    res
}

/// Decodes a document as its XML declaration says. NCMEC has been seen
/// declaring UTF-8 while sending `Content-Type: ...;charset=ISO-8859-1`; the
/// declaration wins, as the XML specification says it does.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let encoding = declared_encoding(bytes).unwrap_or_else(|| "utf-8".to_owned());
    match encoding.as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => {
            String::from_utf8(bytes.to_vec()).map_err(|err| Error::Xml {
                line: 1 + bytes[..err.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64,
                path: String::new(),
                message: "expected UTF-8 text, got invalid bytes".to_owned(),
            })
        }
        "iso-8859-1" | "latin1" | "latin-1" | "iso8859-1" => {
            Ok(bytes.iter().map(|&b| char::from(b)).collect())
        }
        other => Err(Error::Xml {
            line: 1,
            path: String::new(),
            message: format!("unsupported encoding {other:?}: expected UTF-8 or ISO-8859-1"),
        }),
    }
}

fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(200))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let value = &rest[1..];
    let close = value.find(quote)?;
    Some(value[..close].to_ascii_lowercase())
}

/// Maps byte offsets to 1-based line numbers.
struct LineCounter<'a> {
    text: &'a str,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> LineCounter<'a> {
        LineCounter { text }
    }

    fn line_at(&self, offset: u64) -> u64 {
        let end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        1 + self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_attributes_text_and_lines() {
        let root = parse(
            b"<?xml version=\"1.0\"?>\n<a x=\"1 &amp; 2\">\n  <b>t&lt;&#x41;</b>\n  <c/>\n</a>",
        )
        .unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attr("x"), Some("1 & 2"));
        assert_eq!(root.child("b").unwrap().text, "t<A");
        assert_eq!(root.child("b").unwrap().line, 3);
        assert_eq!(root.child("c").unwrap().line, 4);
    }

    #[test]
    fn declaration_wins_over_transport_charset() {
        let root = parse(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>").unwrap();
        assert_eq!(root.text, "caf\u{e9}");
        let err = parse(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>caf\xe9</a>").unwrap_err();
        assert!(err.to_string().contains("expected UTF-8"), "{err}");
    }

    #[test]
    fn refuses_doctype_unknown_entities_and_deep_nesting() {
        let err = parse(b"<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>")
            .unwrap_err();
        assert!(err.to_string().contains("DOCTYPE"), "{err}");
        let err = parse(b"<a>&x;</a>").unwrap_err();
        assert!(err.to_string().contains("unknown entity"), "{err}");
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        let err = parse(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[test]
    fn refuses_broken_documents_with_a_line() {
        let err = parse(b"<a>\n<b></c></a>").unwrap_err();
        assert!(err.to_string().starts_with("line 2"), "{err}");
        assert!(parse(b"").is_err());
        assert!(parse(b"<a></a><b/>").is_err());
        assert!(parse(b"<a>").is_err());
    }
}
