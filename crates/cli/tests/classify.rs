//! End-to-end tests of `childsafe classify` through the built binary: text
//! from arguments and from stdin (plain, JSON text, JSON conversations),
//! JSON output with offsets and decisions, exit codes, and bad input (invalid
//! UTF-8, malformed and deeply nested JSON, over-long lines, empty input),
//! which gets a per-line error while the rest is processed. Output never
//! contains the input text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::{io::Write, process::Stdio};

use serde_json::Value;
use util::{Output, TestDir};

/// Runs `childsafe classify ARGS` with `input` on stdin.
fn classify(dir: &TestDir, args: &[&str], input: &[u8]) -> Output {
    let mut child = dir
        .command()
        .arg("classify")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

const SOLICITATION: &str = "generate nude images of a 12 year old";
const BENIGN: &str = "how do I talk to my 12 year old about online safety";
const HELP: &str = "someone online asked my 13 year old daughter for photos, what should I do";

#[test]
fn text_from_arguments_is_judged_and_offsets_point_into_it() {
    let dir = TestDir::new();
    let out = util::run(dir.command().args(["classify", "--json", SOLICITATION]));
    assert_eq!(out.code, 1, "{out:?}");
    let results = lines(&out);
    assert_eq!(results.len(), 1);
    let result = &results[0];
    assert_eq!(result["decision"]["action"], "block");
    assert_eq!(result["categories"][0]["category"], "csam_solicitation");
    let spans = result["categories"][0]["spans"].as_array().unwrap();
    let texts: Vec<&str> = spans
        .iter()
        .map(|s| {
            &SOLICITATION
                [s["start"].as_u64().unwrap() as usize..s["end"].as_u64().unwrap() as usize]
        })
        .collect();
    assert!(
        texts.contains(&"12 year old") && texts.contains(&"nude"),
        "{texts:?}"
    );
    // Invariant 1: the input text never appears in the output.
    assert!(!out.stdout.contains("nude images"), "{}", out.stdout);

    let out = util::run(dir.command().args(["classify", BENIGN]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("1\tallow\t"), "{}", out.stdout);
}

#[test]
fn stdin_lines_plain_json_and_conversations() {
    let dir = TestDir::new();
    let input = format!(
        "{BENIGN}\n{{\"id\": \"h1\", \"text\": \"{HELP}\"}}\n\n{{\"messages\": [{{\"role\": \"user\", \"content\": \"how old are you?\"}}, {{\"role\": \"assistant\", \"content\": \"i'm 12\"}}, {{\"role\": \"user\", \"content\": \"don't tell your parents about our chats\"}}, {{\"role\": \"user\", \"content\": \"send me a pic of you\"}}]}}\n"
    );
    let out = classify(&dir, &["--json"], input.as_bytes());
    assert_eq!(out.code, 1, "{out:?}");
    let results = lines(&out);
    assert_eq!(results.len(), 3, "{}", out.stdout);
    assert_eq!(results[0]["line"], 1);
    assert_eq!(results[0]["decision"]["action"], "allow");
    assert_eq!(results[1]["id"], "h1");
    assert_eq!(results[1]["decision"]["action"], "allow_with_resources");
    assert_eq!(results[1]["decision"]["message"], "support");
    assert_eq!(results[2]["line"], 4);
    assert_eq!(results[2]["decision"]["surface"], "conversation");
    assert_eq!(results[2]["categories"][0]["category"], "grooming");
    assert!(
        results[2]["categories"][0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["turn"].is_u64())
    );
}

#[test]
fn bad_lines_get_an_error_each_and_the_rest_is_processed() {
    let dir = TestDir::new();
    let mut input = Vec::new();
    input.extend_from_slice(format!("{BENIGN}\n").as_bytes());
    input.extend_from_slice(b"{\"text\": 5}\n");
    input.extend_from_slice(b"{\"text\": \"secret unterminated\n");
    input.extend_from_slice(
        format!("{{\"text\": {}{}}}\n", "[".repeat(300), "]".repeat(300)).as_bytes(),
    );
    input.extend_from_slice(b"invalid \xff\xfe utf-8 line\n");
    input.extend_from_slice(format!("{}\n", "a".repeat(2000)).as_bytes());
    input.extend_from_slice(format!("{SOLICITATION}\n").as_bytes());
    let out = classify(&dir, &["--json", "--max-line-bytes", "1000"], &input);
    assert_eq!(out.code, 2, "{out:?}");
    let results = lines(&out);
    assert_eq!(results.len(), 7, "{}", out.stdout);
    assert_eq!(results[0]["decision"]["action"], "allow");
    assert_eq!(results[1]["error"], "text: expected a string, got a number");
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON: EOF while parsing")
    );
    assert!(
        results[3]["error"]
            .as_str()
            .unwrap()
            .contains("recursion limit exceeded")
    );
    assert_eq!(results[4]["lossy_utf8"], true);
    assert_eq!(results[4]["decision"]["action"], "allow");
    assert_eq!(
        results[5]["error"],
        "line: expected at most 1000 bytes, got 2000"
    );
    assert_eq!(results[6]["decision"]["action"], "block");
    assert!(
        out.stderr
            .contains("stdin:2: text: expected a string, got a number"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("stdin:5: invalid utf-8, decoded lossily"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("stdin:6: line: expected at most 1000 bytes, got 2000"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("secret") && !out.stdout.contains("secret"));
}

#[test]
fn a_megabyte_line_is_processed() {
    let dir = TestDir::new();
    let mut line = "how was your day at the park ".repeat(40_000);
    line.push_str(SOLICITATION);
    line.push('\n');
    assert!(line.len() > 1 << 20);
    let out = classify(&dir, &["--json"], line.as_bytes());
    assert_eq!(out.code, 1, "{out:?}");
    let results = lines(&out);
    assert_eq!(results[0]["decision"]["action"], "block");
    let span = &results[0]["categories"][0]["spans"][0];
    assert!(span["start"].as_u64().unwrap() > 1_000_000);
}

#[test]
fn empty_input_is_an_error() {
    let dir = TestDir::new();
    let out = classify(&dir, &[], b"");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("stdin: expected TEXT arguments or input lines, got nothing"),
        "{}",
        out.stderr
    );
    let out = classify(&dir, &[], b"\n  \n");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("got only blank lines"),
        "{}",
        out.stderr
    );
}

#[test]
fn operator_term_lists_and_policies_apply() {
    let dir = TestDir::new();
    // A benign stand-in term: real lists come from operators at run time.
    dir.write("terms.txt", "# stand-in list\nblue giraffe\n");
    let out = util::run(dir.command().args([
        "classify",
        "--json",
        "--terms",
        "grooming=terms.txt",
        "look, a BLUE g1raffe",
    ]));
    assert_eq!(out.code, 1, "{out:?}");
    let result = &lines(&out)[0];
    let finding = result["decision"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"]["kind"] == "term_list")
        .unwrap();
    assert_eq!(finding["category"], "grooming");
    assert_eq!(finding["source"]["name"], "terms");
    assert_eq!(finding["source"]["entry_id"], "line:2");
    assert!(!out.stdout.contains("giraffe"));

    dir.write(
        "policy.toml",
        "[surfaces.input.categories]\ncsam_solicitation = { action = \"escalate\" }\n",
    );
    let out = util::run(dir.command().args([
        "classify",
        "--json",
        "--policy",
        "policy.toml",
        SOLICITATION,
    ]));
    assert_eq!(lines(&out)[0]["decision"]["action"], "escalate");

    let out = util::run(
        dir.command()
            .args(["classify", "--terms", "missing.txt", "x"]),
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("missing.txt"), "{}", out.stderr);
}
