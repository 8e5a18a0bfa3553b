//! The scanner end to end in-process: generated img2dataset-shaped datasets
//! (WebDataset, Parquet, Hugging Face Parquet, JSON lines, image
//! directories) with planted list entries; exactly the planted samples are
//! removed, the clean copies keep everything else verbatim, and an
//! interrupted scan resumed gives the same bytes as an uninterrupted one.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray, cast::AsArray};
use arrow_schema::{DataType, Field, Fields};
use childsafe_core::Policy;
use childsafe_scan::{ScanConfig, scan};
use common::{GenSample, ListChecker, PlantedList, encode, jpeg_quality, picture, write_tar};
use image::{ImageFormat, imageops::FilterType};
use parquet::arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder};

struct Dataset {
    samples: Vec<Vec<GenSample>>,
    list: PlantedList,
    planted: Vec<(usize, String)>,
}

/// Three shards of 12 samples; planted: an exact copy, a resized and
/// recompressed copy, a listed URL, and one image that does not decode.
fn dataset() -> Dataset {
    let mut samples = Vec::new();
    let mut list = PlantedList::default();
    let mut planted = Vec::new();
    for shard in 0..3usize {
        let mut shard_samples = Vec::new();
        for i in 0..12u32 {
            let key = format!("{shard:05}{i:04}");
            let img = picture(shard as u32 * 100 + i, 96 + 16 * (i % 3), 80);
            let image = jpeg_quality(&img, 90);
            shard_samples.push(GenSample {
                key: key.clone(),
                image,
                caption: format!("a generated pattern number {i}"),
                url: format!("https://images.example.com/{shard}/{i}.jpg"),
            });
        }
        samples.push(shard_samples);
    }
    // Exact copy: the list holds the file's SHA-256.
    list.sha256
        .insert(childsafe_hash::crypto_hashes(&samples[0][3].image).sha256);
    planted.push((0, samples[0][3].key.clone()));
    // Near copy: the list holds the PDQ of an original; the dataset has it
    // resized and recompressed.
    let original = picture(1005, 400, 300);
    let original_pdq =
        childsafe_hash::hash_image(&encode(&original, ImageFormat::Png), &Default::default())
            .pdq
            .unwrap();
    list.pdq.push(original_pdq.hash);
    let resized = image::imageops::resize(&original, 256, 192, FilterType::Triangle);
    samples[1][5].image = jpeg_quality(&resized, 75);
    planted.push((1, samples[1][5].key.clone()));
    // Listed URL.
    list.urls.insert(samples[2][7].url.clone());
    planted.push((2, samples[2][7].key.clone()));
    // Not an image at all: undecodable, quarantined by the default policy.
    samples[1][9].image = b"this is not an image".to_vec();
    planted.push((1, samples[1][9].key.clone()));
    Dataset {
        samples,
        list,
        planted,
    }
}

fn checker(list: PlantedList) -> ListChecker {
    ListChecker {
        list,
        policy: Policy::default(),
    }
}

fn run(config: &ScanConfig, checker: &ListChecker) -> childsafe_scan::ScanOutcome {
    scan(config, checker, &mut |_| {}, &|_| {}).unwrap()
}

fn tar_keys(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut header = e.header().as_bytes().to_vec();
            header.truncate(512);
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            header.extend_from_slice(&data);
            (name, header)
        })
        .collect()
}

#[test]
fn webdataset_exactly_the_planted_samples_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let data = dataset();
    for (shard, samples) in data.samples.iter().enumerate() {
        write_tar(&input.join(format!("{shard:05}.tar")), samples);
    }
    let out = tmp.path().join("out");
    let quarantine = tmp.path().join("q");
    let mut config = ScanConfig::new(
        vec![format!("{}/{{00000..00002}}.tar", input.display())],
        out.clone(),
        quarantine.clone(),
    );
    config.batch_samples = 5;
    let checker = checker(data.list);
    let outcome = run(&config, &checker);
    assert_eq!(outcome.summary.total.samples, 36);
    assert_eq!(outcome.summary.total.removed, 4);
    assert_eq!(outcome.summary.total.reported, 3);
    assert_eq!(outcome.summary.total.undecodable, 1);
    assert!(outcome.summary.failed.is_empty());

    let manifest = std::fs::read_to_string(quarantine.join("manifest.jsonl")).unwrap();
    let removed: Vec<(String, String)> = manifest
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                row["shard"].as_str().unwrap().to_owned(),
                row["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = data
        .planted
        .iter()
        .map(|(s, k)| (format!("{s:05}.tar"), k.clone()))
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(removed, expected_sorted);
    // The checker matches SHA-256 only, so the scan skipped MD5 and SHA-1,
    // yet a removed sample's row carries all three digests for reporting.
    let exact = childsafe_hash::crypto_hashes(&data.samples[0][3].image);
    let row: serde_json::Value = manifest
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|row| row["key"] == data.samples[0][3].key.as_str())
        .unwrap();
    assert_eq!(row["md5"], exact.md5.to_string());
    assert_eq!(row["sha1"], exact.sha1.to_string());
    assert_eq!(row["sha256"], exact.sha256.to_string());
    // No content in the manifest: no captions, no URLs.
    assert!(!manifest.contains("generated pattern"));
    assert!(!manifest.contains("example.com"));
    // The queue carries the URL for reporting, and the hashes.
    let queue = std::fs::read_to_string(quarantine.join("report-queue.jsonl")).unwrap();
    assert_eq!(queue.lines().count(), 3);
    let entry: childsafe_core::QueueEntry =
        serde_json::from_str(queue.lines().last().unwrap()).unwrap();
    assert_eq!(
        entry.location.url.as_deref(),
        Some("https://images.example.com/2/7.jpg")
    );

    // Clean shards: every other member, headers and data verbatim.
    for shard in 0..3 {
        let name = format!("{shard:05}.tar");
        let original = tar_keys(&input.join(&name));
        let clean = tar_keys(&out.join(&name));
        let removed_keys: Vec<&String> = expected
            .iter()
            .filter(|(s, _)| *s == name)
            .map(|(_, k)| k)
            .collect();
        let want: Vec<_> = original
            .into_iter()
            .filter(|(member, _)| !removed_keys.iter().any(|k| member.starts_with(k.as_str())))
            .collect();
        assert_eq!(clean, want, "{name}");
        assert_eq!(std::fs::metadata(out.join(&name)).unwrap().len() % 10240, 0);
    }
}

#[test]
fn an_interrupted_scan_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let data = dataset();
    for (shard, samples) in data.samples.iter().enumerate() {
        write_tar(&input.join(format!("{shard:05}.tar")), samples);
    }
    let checker = checker(data.list);
    let config_for = |name: &str| {
        let mut config = ScanConfig::new(
            vec![input.display().to_string()],
            tmp.path().join(name).join("out"),
            tmp.path().join(name).join("q"),
        );
        config.jobs = 2;
        config
    };
    run(&config_for("a"), &checker);
    let b = config_for("b");
    run(&b, &checker);
    // Undo shard 1 as a kill before its record would: its record gone, a
    // stale temporary clean copy and part file left behind.
    let state = b.out.join(".childsafe-scan/worker-00000-of-00001");
    std::fs::remove_file(state.join("shards/000001.json")).unwrap();
    std::fs::write(b.out.join(".00001.tar.childsafe-tmp"), b"partial").unwrap();
    std::fs::write(state.join("tmp/000001.manifest.jsonl"), b"partial").unwrap();
    std::fs::remove_file(b.quarantine.join("manifest.parquet")).unwrap();
    let outcome = run(&b, &checker);
    assert_eq!(outcome.planned.already_done, 2);
    assert_eq!(outcome.timing.samples, 12);
    assert_eq!(tree(&tmp.path().join("a")), tree(&tmp.path().join("b")));
}

/// Every file under `root` (relative path to bytes), without timing files
/// and with `found_at` masked (wall-clock values, by design).
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut res = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file()
            || entry.file_name().to_string_lossy().ends_with("timing.json")
        {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let masked = regex_lite_mask(&text);
        let bytes = if masked != text {
            masked.into_bytes()
        } else {
            bytes
        };
        res.insert(entry.path().strip_prefix(root).unwrap().to_owned(), bytes);
    }
    res
}

fn regex_lite_mask(text: &str) -> String {
    let mut res = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\"found_at\":\"") {
        let start = at + "\"found_at\":\"".len();
        res.push_str(&rest[..start]);
        let end = rest[start..].find('"').map_or(rest.len(), |e| start + e);
        res.push_str("MASKED");
        rest = &rest[end..];
    }
    res.push_str(rest);
    res
}

fn write_parquet(path: &Path, batch: RecordBatch, metadata: Option<(&str, &str)>) {
    let mut schema = (*batch.schema()).clone();
    if let Some((k, v)) = metadata {
        schema = schema.with_metadata(std::collections::HashMap::from([(
            k.to_owned(),
            v.to_owned(),
        )]));
    }
    let batch = batch.with_schema(Arc::new(schema)).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(5))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn read_parquet(
    path: &Path,
) -> (
    Vec<RecordBatch>,
    usize,
    std::collections::HashMap<String, String>,
) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let groups = builder.metadata().num_row_groups();
    let metadata = builder.schema().metadata().clone();
    (
        builder.build().unwrap().map(|b| b.unwrap()).collect(),
        groups,
        metadata.into(),
    )
}

#[test]
fn parquet_img2dataset_and_huggingface_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let data = dataset();
    let samples = &data.samples[1];
    // img2dataset: key, url, caption, jpg, status.
    let strings = |f: &dyn Fn(&GenSample) -> String| -> ArrayRef {
        Arc::new(StringArray::from(samples.iter().map(f).collect::<Vec<_>>()))
    };
    let jpg: ArrayRef = Arc::new(BinaryArray::from(
        samples
            .iter()
            .map(|s| s.image.as_slice())
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_from_iter([
        ("key", strings(&|s| s.key.clone())),
        ("url", strings(&|s| s.url.clone())),
        ("caption", strings(&|s| s.caption.clone())),
        ("jpg", jpg),
        ("status", strings(&|_| "success".to_owned())),
    ])
    .unwrap();
    write_parquet(&input.join("i2d.parquet"), batch, None);
    // Hugging Face datasets: an `image` struct {bytes, path} and a text column.
    let fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    let image = StructArray::new(
        fields,
        vec![
            Arc::new(BinaryArray::from(
                samples
                    .iter()
                    .map(|s| s.image.as_slice())
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
            strings(&|s| format!("{}.jpg", s.key)),
        ],
        None,
    );
    let batch = RecordBatch::try_from_iter([
        ("image", Arc::new(image) as ArrayRef),
        ("text", strings(&|s| s.caption.clone())),
    ])
    .unwrap();
    write_parquet(
        &input.join("hf.parquet"),
        batch,
        Some(("huggingface", "{\"info\": {\"features\": {}}}")),
    );

    let out = tmp.path().join("out");
    let config = ScanConfig::new(
        vec![input.display().to_string()],
        out.clone(),
        tmp.path().join("q"),
    );
    let outcome = run(&config, &checker(data.list));
    // Rows 5 (near copy) and 9 (undecodable) of each file.
    assert_eq!(
        outcome.summary.total.removed,
        4,
        "{}",
        outcome.summary.table()
    );
    for name in ["i2d.parquet", "hf.parquet"] {
        let (batches, groups, metadata) = read_parquet(&out.join(name));
        let (original, original_groups, original_metadata) = read_parquet(&input.join(name));
        assert_eq!(batches[0].schema().fields(), original[0].schema().fields());
        assert_eq!(metadata, original_metadata, "{name}");
        assert_eq!(groups, original_groups, "{name}: row groups kept");
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 10, "{name}");
        let first = &batches[0];
        if name == "i2d.parquet" {
            let keys: Vec<String> = batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_string::<i32>()
                        .iter()
                        .map(|k| k.unwrap().to_owned())
                        .collect::<Vec<_>>()
                })
                .collect();
            assert!(!keys.contains(&samples[5].key) && !keys.contains(&samples[9].key));
            assert_eq!(keys.len(), 10);
            assert_eq!(first.num_columns(), 5);
        }
    }
}

#[test]
fn jsonl_and_image_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let photos = input.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let data = dataset();
    for sample in &data.samples[0] {
        std::fs::write(photos.join(format!("{}.jpg", sample.key)), &sample.image).unwrap();
        std::fs::write(photos.join(format!("{}.txt", sample.key)), &sample.caption).unwrap();
    }
    let corpus: String = (0..5)
        .map(|i| format!("{{\"text\": \"line {i}\", \"url\": \"https://example.org/{i}\"}}\n"))
        .collect::<String>()
        + "not json\n";
    std::fs::write(input.join("corpus.jsonl"), &corpus).unwrap();
    let mut list = data.list;
    list.urls.insert("https://example.org/2".to_owned());
    let out = tmp.path().join("out");
    let config = ScanConfig::new(
        vec![input.display().to_string()],
        out.clone(),
        tmp.path().join("q"),
    );
    let outcome = run(&config, &checker(list));
    assert!(
        outcome.summary.failed.is_empty(),
        "{}",
        outcome.summary.table()
    );
    // Directory: sample 3 of shard 0 (exact copy) is gone with its caption.
    let mut names: Vec<String> = std::fs::read_dir(out.join("photos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 22);
    let gone = &data.samples[0][3].key;
    assert!(!names.iter().any(|n| n.starts_with(gone.as_str())));
    // JSON lines: the listed line and the unreadable one are gone, the rest verbatim.
    let clean = std::fs::read_to_string(out.join("corpus.jsonl")).unwrap();
    let want: String = corpus
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2 && *i != 5)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert_eq!(clean, want);
}

#[test]
fn a_truncated_shard_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let data = dataset();
    for (shard, samples) in data.samples.iter().enumerate() {
        write_tar(&input.join(format!("{shard:05}.tar")), samples);
    }
    let bytes = std::fs::read(input.join("00000.tar")).unwrap();
    std::fs::write(input.join("00000.tar"), &bytes[..bytes.len() / 2 + 100]).unwrap();
    let out = tmp.path().join("out");
    let config = ScanConfig::new(
        vec![input.display().to_string()],
        out.clone(),
        tmp.path().join("q"),
    );
    let outcome = run(&config, &checker(data.list));
    assert_eq!(outcome.summary.failed, ["00000.tar"]);
    let error = outcome.summary.shards[0].error.as_deref().unwrap();
    assert!(
        error.contains("00000.tar:") && error.contains("truncated"),
        "{error}"
    );
    assert!(!out.join("00000.tar").exists());
    assert!(out.join("00001.tar").exists() && out.join("00002.tar").exists());
    // The exact copy in the readable half was still found and queued.
    assert!(
        std::fs::read_to_string(tmp.path().join("q/report-queue.jsonl"))
            .unwrap()
            .lines()
            .count()
            >= 1
    );
}
