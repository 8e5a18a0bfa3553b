//! End-to-end tests of `childsafe hash` through the built binary: output
//! formats, deterministic order over directories, and bad input (one error
//! per file naming it, the run goes on, a summary, exit 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use childsafe_core::PdqHash;
use serde_json::Value;
use util::{TestDir, fixtures, run};

fn pdq_fixture(rel: &str) -> std::path::PathBuf {
    fixtures().join("pdq/images").join(rel)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn json_has_pdq_quality_and_byte_hashes() {
    let dir = TestDir::new();
    let out = run(dir
        .command()
        .args(["hash", "--json"])
        .arg(pdq_fixture("pdq-data/bridge-mods/aaa-orig.jpg"))
        .arg(pdq_fixture("pixel-exact/bridge-64x64.png")));
    assert_eq!(out.code, 0, "{out:?}");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2);
    // The MD5 the fixture README records for this file.
    assert_eq!(lines[0]["md5"], "d35c785545392755e7e4164457657269");
    assert_eq!(lines[0]["sha1"].as_str().map(str::len), Some(40));
    assert_eq!(lines[0]["sha256"].as_str().map(str::len), Some(64));
    let reference: PdqHash = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
        .parse()
        .unwrap();
    let got: PdqHash = lines[0]["pdq"].as_str().unwrap().parse().unwrap();
    assert!(
        got.distance(&reference) <= 10,
        "distance {}",
        got.distance(&reference)
    );
    assert_eq!(lines[0]["quality"], 100);
    // Same pixels as the reference: the exact hash.
    assert_eq!(
        lines[1]["pdq"],
        "58f870cee0f4e84f06370a32038f67f0b36e2ed596621e1d33e6b39c4e9c9b22"
    );
    assert!(
        lines[1]["path"]
            .as_str()
            .unwrap()
            .ends_with("bridge-64x64.png")
    );
    assert!(
        out.stderr.contains("hash: 2 files: 2 hashed, 0 errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn dihedral_json_has_the_reference_columns() {
    let dir = TestDir::new();
    let out = run(dir
        .command()
        .args(["hash", "--json", "--dihedral"])
        .arg(pdq_fixture("pixel-exact/bridge-65x63.png")));
    assert_eq!(out.code, 0, "{out:?}");
    let line = &json_lines(&out.stdout)[0];
    let dihedral = &line["dihedral"];
    assert_eq!(dihedral["orig"], line["pdq"]);
    assert_eq!(
        dihedral["rot90"],
        "70a10efd738c3f429053d68d0efffc7ac34e0e17a5a952a9c29614211aa9e5af"
    );
    assert_eq!(
        dihedral["flipminus1"],
        "25f45ba826996a17c50683d85aaaa92f961b5b42f8fc07fc83c3c1740bfcb0fa"
    );
    assert_eq!(dihedral.as_object().map(|o| o.len()), Some(8));
}

#[test]
fn text_output_is_one_readable_line_per_file() {
    let dir = TestDir::new();
    let out = run(dir
        .command()
        .arg("hash")
        .arg(pdq_fixture("pixel-exact/wee-34x42.png")));
    assert_eq!(out.code, 0, "{out:?}");
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        fields[0],
        "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d"
    );
    assert_eq!(fields[1], "100");
    assert_eq!(fields[2].len(), 32);
    assert_eq!(fields[3].len(), 40);
    assert_eq!(fields[4].len(), 64);
    assert!(fields[5].ends_with("wee-34x42.png"));
}

#[test]
fn directories_are_walked_recursively_in_sorted_order_at_any_thread_count() {
    let dir = TestDir::new();
    let png = std::fs::read(pdq_fixture("pixel-exact/bridge-64x64.png")).unwrap();
    let jpg = std::fs::read(pdq_fixture("pdq-data/bridge-mods/square-128x128.jpg")).unwrap();
    for name in [
        "set/b.png",
        "set/a/z.png",
        "set/a/y.jpg",
        "set/c/d/e.png",
        "set/C.jpg",
        "set/a0.png",
    ] {
        dir.write(name, if name.ends_with(".png") { &png } else { &jpg });
    }
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = run(dir
            .command()
            .env("RAYON_NUM_THREADS", threads)
            .args(["hash", "--json", "set"]));
        assert_eq!(out.code, 0, "{out:?}");
        outputs.push(out.stdout);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    let paths: Vec<String> = json_lines(&outputs[0])
        .iter()
        .map(|l| l["path"].as_str().unwrap().to_owned())
        .collect();
    // Byte order of names at each level: upper case before lower case, and
    // a directory's contents where its name sorts.
    assert_eq!(
        paths,
        [
            "set/C.jpg",
            "set/a/y.jpg",
            "set/a/z.png",
            "set/a0.png",
            "set/b.png",
            "set/c/d/e.png"
        ]
    );
}

/// A PNG whose header announces `width` x `height` RGB pixels, with a
/// valid header checksum and a few bytes of image data.
fn png_announcing(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn bad_inputs_give_one_error_each_and_the_run_goes_on() {
    let dir = TestDir::new();
    let jpg = std::fs::read(pdq_fixture("pdq-data/bridge-mods/aaa-orig.jpg")).unwrap();
    let png = std::fs::read(pdq_fixture("pixel-exact/q0122-256x256.png")).unwrap();
    dir.write("in/a-empty.jpg", b"");
    dir.write("in/b-truncated.jpg", &jpg[..jpg.len() / 2]);
    dir.write("in/c-corrupt.png", {
        let mut bad = png.clone();
        for b in &mut bad[100..2000] {
            *b ^= 0x5a;
        }
        bad
    });
    dir.write("in/d-notes.txt", b"caption: do-not-echo-this-caption\n");
    dir.write("in/e-bomb.png", png_announcing(100_000, 100_000));
    dir.write("in/f-good.png", &png);
    std::os::unix::fs::symlink(dir.join("in/missing-target"), dir.join("in/g-dangling.png"))
        .unwrap();
    for json in [false, true] {
        let mut cmd = dir.command();
        cmd.arg("hash");
        if json {
            cmd.arg("--json");
        }
        let out = run(cmd.arg("in"));
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr.contains("hash: 7 files: 1 hashed, 6 errors"),
            "{}",
            out.stderr
        );
        let errors: Vec<(String, String)> = if json {
            json_lines(&out.stdout)
                .iter()
                .filter(|l| l.get("error").is_some())
                .map(|l| {
                    (
                        l["path"].as_str().unwrap().to_owned(),
                        l["error"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        } else {
            out.stderr
                .lines()
                .filter_map(|l| l.strip_prefix("childsafe: hash: "))
                .map(|l| {
                    let (path, reason) = l.split_once(": ").unwrap();
                    (path.to_owned(), reason.to_owned())
                })
                .collect()
        };
        let expected = [
            ("in/a-empty.jpg", "empty file"),
            ("in/b-truncated.jpg", "jpeg: corrupt or truncated image"),
            ("in/c-corrupt.png", "png: corrupt or truncated image"),
            ("in/d-notes.txt", "not a supported image"),
            ("in/e-bomb.png", "png: image too large: 100000x100000"),
            ("in/g-dangling.png", "No such file or directory"),
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:?}");
        for ((path, reason), (want_path, want_reason)) in errors.iter().zip(expected) {
            assert_eq!(path, want_path);
            assert!(reason.contains(want_reason), "{path}: {reason}");
        }
        // The good file is still hashed, and content never leaks.
        assert!(out.stdout.contains("in/f-good.png"), "{}", out.stdout);
        assert!(!out.stdout.contains("do-not-echo") && !out.stderr.contains("do-not-echo"));
    }
}

#[test]
fn files_over_the_byte_limit_are_refused_unread() {
    let dir = TestDir::new();
    let png = std::fs::read(pdq_fixture("pixel-exact/bridge-64x64.png")).unwrap();
    dir.write("big.png", &png);
    let out = run(dir
        .command()
        .args(["hash", "--json", "--max-bytes", "1000", "big.png"]));
    assert_eq!(out.code, 2, "{out:?}");
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(
        line["error"],
        format!("file too large: {} bytes, limit 1000", png.len())
    );
    // Unread, so no byte hashes either.
    assert!(line.get("md5").is_none());
}

#[test]
fn no_paths_is_a_usage_error() {
    let dir = TestDir::new();
    let out = run(dir.command().arg("hash"));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("PATH"), "{}", out.stderr);
}
