//! Test helpers: benign generated images, img2dataset-shaped datasets, and a
//! stand-in checker (exact hash and URL sets plus PDQ distance, decided by
//! the core policy) so the scanner can be tested without the engine.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{collections::HashSet, io::Cursor, path::Path};

use childsafe_core::{
    Category, Decision, Finding, FindingSource, PdqHash, Policy, Sha256, SignalKind, Surface,
};
use childsafe_scan::check::{Checker, SampleSignals};
use image::{ImageFormat, Rgb, RgbImage};

/// A benign generated picture: gradients, rectangles and seeded noise.
pub fn picture(seed: u32, width: u32, height: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let (r0, g0, b0) = (
        (rand() % 256) as f32,
        (rand() % 256) as f32,
        (rand() % 256) as f32,
    );
    let mut img = RgbImage::from_fn(width, height, |x, y| {
        let fx = x as f32 / width as f32;
        let fy = y as f32 / height as f32;
        Rgb([
            (r0 * (1.0 - fx) + 255.0 * fx * fy) as u8,
            (g0 * fy + 60.0 * (1.0 - fy)) as u8,
            (b0 * (1.0 - fx * fy)) as u8,
        ])
    });
    for _ in 0..6 {
        let (x0, y0) = (rand() % width, rand() % height);
        let (w, h) = (1 + rand() % (width / 3), 1 + rand() % (height / 3));
        let color = Rgb([
            (rand() % 256) as u8,
            (rand() % 256) as u8,
            (rand() % 256) as u8,
        ]);
        for y in y0..(y0 + h).min(height) {
            for x in x0..(x0 + w).min(width) {
                img.put_pixel(x, y, color);
            }
        }
    }
    for _ in 0..(width * height / 50) {
        let (x, y) = (rand() % width, rand() % height);
        let v = (rand() % 256) as u8;
        img.put_pixel(x, y, Rgb([v, v, v]));
    }
    img
}

pub fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn jpeg_quality(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}

/// A sample of a generated dataset.
pub struct GenSample {
    pub key: String,
    pub image: Vec<u8>,
    pub caption: String,
    pub url: String,
}

/// img2dataset's `KEY.json`, indent=4 as it writes it.
pub fn meta_json(sample: &GenSample, width: u32, height: u32) -> String {
    let sha = childsafe_hash::crypto_hashes(&sample.image).sha256;
    serde_json::to_string_pretty(&serde_json::json!({
        "url": sample.url, "caption": sample.caption, "key": sample.key, "status": "success",
        "error_message": null, "width": width, "height": height,
        "original_width": width, "original_height": height, "sha256": sha.to_string(),
    }))
    .unwrap()
}

/// Writes a WebDataset shard the way img2dataset's TarWriter does.
pub fn write_tar(path: &Path, samples: &[GenSample]) {
    let mut builder = tar::Builder::new(Vec::new());
    for sample in samples {
        let json = meta_json(sample, 64, 64);
        for (suffix, data) in [
            ("jpg", sample.image.as_slice()),
            ("txt", sample.caption.as_bytes()),
            ("json", json.as_bytes()),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o444);
            header.set_mtime(1_700_000_000);
            header.set_username("bigdata").unwrap();
            header.set_groupname("bigdata").unwrap();
            builder
                .append_data(&mut header, format!("{}.{suffix}", sample.key), data)
                .unwrap();
        }
    }
    let mut bytes = builder.into_inner().unwrap();
    // Python's tarfile pads to 10240-byte records.
    bytes.resize(bytes.len().div_ceil(10240) * 10240, 0);
    std::fs::write(path, bytes).unwrap();
}

/// The planted "list": hashes and URLs standing in for a hotline list.
#[derive(Default)]
pub struct PlantedList {
    pub sha256: HashSet<Sha256>,
    pub pdq: Vec<PdqHash>,
    pub urls: HashSet<String>,
}

/// A stand-in for the engine: exact SHA-256, PDQ within 31 bits (quality
/// at least 50), exact URLs; decided by the built-in ingest policy, with
/// undecodable images and unreadable parts as failures (fail closed).
pub struct ListChecker {
    pub list: PlantedList,
    pub policy: Policy,
}

impl Checker for ListChecker {
    fn check_batch(&self, samples: &[SampleSignals<'_>]) -> Vec<Decision> {
        samples
            .iter()
            .map(|sample| {
                let mut findings = Vec::new();
                let mut failures = Vec::new();
                for image in sample.images {
                    if image.sha256.is_some_and(|h| self.list.sha256.contains(&h)) {
                        findings.push(Finding::new(
                            Category::CsamKnown,
                            1.0,
                            FindingSource::bank("test-list", SignalKind::Sha256, "e-sha", None),
                        ));
                    }
                    match &image.pdq {
                        Ok(pdq) if pdq.quality >= 50 => {
                            if let Some((idx, distance)) = self
                                .list
                                .pdq
                                .iter()
                                .enumerate()
                                .map(|(i, h)| (i, h.distance(&pdq.hash)))
                                .find(|(_, d)| *d <= 31)
                            {
                                findings.push(Finding::new(
                                    Category::CsamKnown,
                                    1.0,
                                    FindingSource::bank(
                                        "test-list",
                                        SignalKind::Pdq,
                                        format!("p-{idx}"),
                                        Some(distance),
                                    ),
                                ));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => failures.push("image.decode".to_owned()),
                    }
                }
                if let Some(url) = sample.url
                    && self.list.urls.contains(url)
                {
                    let mut source = FindingSource::bank("test-urls", SignalKind::Url, "u-1", None);
                    source.kind = childsafe_core::SourceKind::UrlList;
                    findings.push(Finding::new(Category::CsamKnown, 1.0, source));
                }
                for problem in sample.problems {
                    failures.push(format!("read.{}", problem.what));
                }
                self.policy
                    .decide_with_failures(Surface::Ingest, findings, failures)
            })
            .collect()
    }

    /// The list holds SHA-256 only, so the scanner skips MD5 and SHA-1.
    fn matches_digest(&self, kind: SignalKind) -> bool {
        kind == SignalKind::Sha256
    }
}
