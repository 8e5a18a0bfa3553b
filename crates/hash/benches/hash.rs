//! Criterion benchmarks of hashing, split the way the time splits (STYLE.md
//! §7): decoding alone (DCT-domain fast path and full decoding), PDQ alone
//! on decoded luminance, the byte hashes alone, and all of it end to end.
//!
//! Run: `cargo bench -p childsafe-hash` (fixtures from ../shared/fixtures).

#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use childsafe_hash::{HashConfig, Hasher, LumaImage, PdqHasher, crypto_hashes};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Representative fixtures: a large baseline JPEG, a large progressive JPEG,
/// a small JPEG, a large PNG, a lossy WebP.
const FILES: [(&str, &str); 5] = [
    ("jpeg-1600x1004", "pdq-data/bridge-mods/aaa-orig.jpg"),
    (
        "jpeg-progressive-1004x1600",
        "pdq-data/reg-test-input/dih/bridge-2-rotate-90.jpg",
    ),
    (
        "jpeg-256x256",
        "pdq-data/reg-test-input/labelme-subset/q0122.jpg",
    ),
    ("png-924x735", "pdq-data/reg-test-input/pen-and-coaster.png"),
    ("webp-1600x1004", "pdq-data/misc-images/modes/F.webp"),
];

fn load(rel: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/pdq/images");
    std::fs::read(root.join(rel)).unwrap()
}

fn full() -> HashConfig {
    HashConfig {
        full_decode: true,
        ..HashConfig::default()
    }
}

fn benches(c: &mut Criterion) {
    let mut decode = c.benchmark_group("decode");
    decode.throughput(Throughput::Elements(1));
    for (name, rel) in FILES {
        let bytes = load(rel);
        let mut fast = Hasher::new(HashConfig::default());
        decode.bench_function(format!("{name}/fast"), |b| {
            b.iter(|| fast.decode(&bytes).unwrap())
        });
        if name.starts_with("jpeg") {
            let mut slow = Hasher::new(full());
            decode.bench_function(format!("{name}/full"), |b| {
                b.iter(|| slow.decode(&bytes).unwrap())
            });
        }
    }
    decode.finish();

    let mut pdq = c.benchmark_group("pdq");
    pdq.throughput(Throughput::Elements(1));
    let bytes = load("pdq-data/misc-images/modes/L.png");
    let grey = image::load_from_memory(&bytes).unwrap().to_luma8();
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let luma = LumaImage::from_interleaved8(w, h, 1, grey.as_raw()).unwrap();
    let mut hasher = PdqHasher::new();
    pdq.bench_function(format!("{w}x{h}"), |b| {
        b.iter(|| hasher.hash(luma.clone(), false))
    });
    pdq.bench_function(format!("{w}x{h}/dihedral"), |b| {
        b.iter(|| hasher.hash(luma.clone(), true))
    });
    pdq.bench_function(format!("{w}x{h}/weighted"), |b| {
        b.iter(|| hasher.hash_fast(luma.clone(), false))
    });
    let small = LumaImage::from_luma(512, 321, luma.pixels()[..512 * 321].to_vec()).unwrap();
    pdq.bench_function("512x321", |b| b.iter(|| hasher.hash(small.clone(), false)));
    pdq.bench_function("512x321/weighted", |b| {
        b.iter(|| hasher.hash_fast(small.clone(), false))
    });
    let mut fast = Hasher::new(HashConfig::default());
    let jpeg = load("pdq-data/bridge-mods/aaa-orig.jpg");
    pdq.bench_function("jpeg-1600x1004/from-dc-plane", |b| {
        b.iter(|| {
            let decoded = fast.decode(&jpeg).unwrap();
            fast.pdq_of(decoded)
        })
    });
    pdq.finish();

    let mut crypto = c.benchmark_group("crypto");
    let bytes = load("pdq-data/bridge-mods/aaa-orig.jpg");
    crypto.throughput(Throughput::Bytes(bytes.len() as u64));
    crypto.bench_function("md5+sha1+sha256/361KB", |b| {
        b.iter(|| crypto_hashes(&bytes))
    });
    crypto.finish();

    let mut end_to_end = c.benchmark_group("end_to_end");
    end_to_end.throughput(Throughput::Elements(1));
    for (name, rel) in FILES {
        let bytes = load(rel);
        let mut fast = Hasher::new(HashConfig::default());
        end_to_end.bench_function(name, |b| b.iter(|| fast.hash(&bytes)));
    }
    end_to_end.finish();
}

criterion_group! {
    name = hashing;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(hashing);
