//! Criterion benchmarks of the match crate on fixed inputs: PDQ lookups
//! (single and batch, both index layouts) over 200,000 random codes at
//! threshold 31, list parsing, and URL list matching. The comparison with
//! faiss at 1M and 10M codes is `bench/index.sh`.

// Benchmarks give up on setup errors.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use childsafe_core::Category;
use childsafe_match::{
    ImportOptions, IndexLayout, ListFormat, UrlList, bench_support::BareIndex, parse_list,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ROWS: usize = 200_000;
const QUERIES: usize = 1_000;

/// splitmix64, so the inputs are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn code(&mut self) -> [u64; 4] {
        [self.next(), self.next(), self.next(), self.next()]
    }
}

/// Half near-duplicates (10 to 31 bits flipped), half random.
fn queries(rng: &mut Rng, codes: &[[u64; 4]]) -> Vec<[u64; 4]> {
    (0..QUERIES)
        .map(|idx| {
            if idx % 2 == 1 {
                return rng.code();
            }
            let mut code = codes[(rng.next() % codes.len() as u64) as usize];
            for _ in 0..(10 + rng.next() % 22) {
                let bit = rng.next() % 256;
                code[(bit / 64) as usize] ^= 1 << (bit % 64);
            }
            code
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    let mut rng = Rng(7);
    let codes: Vec<[u64; 4]> = (0..ROWS).map(|_| rng.code()).collect();
    let queries = queries(&mut rng, &codes);
    let mut group = c.benchmark_group("pdq_lookup_200k");
    group.sample_size(10);
    for layout in [IndexLayout::Compact, IndexLayout::Fast] {
        let index = BareIndex::build(&codes, 31, layout.max_bytes_per_hash()).unwrap();
        group.throughput(Throughput::Elements(QUERIES as u64));
        group.bench_function(BenchmarkId::new("single", layout.as_str()), |b| {
            let mut found = Vec::new();
            b.iter(|| {
                for query in &queries {
                    found.clear();
                    index.search(query, 31, &mut found);
                    black_box(&found);
                }
            });
        });
        group.bench_function(BenchmarkId::new("batch", layout.as_str()), |b| {
            let mut found = Vec::new();
            b.iter(|| {
                found.clear();
                index.search_batch(&queries, 31, &mut found);
                black_box(&found);
            });
        });
    }
    group.finish();
}

fn lists(c: &mut Criterion) {
    let mut rng = Rng(11);
    let mut hex = String::new();
    for _ in 0..10_000 {
        let code = rng.code();
        hex.push_str(&format!(
            "{:016x}{:016x}{:016x}{:016x}\n",
            code[0], code[1], code[2], code[3]
        ));
    }
    let mut group = c.benchmark_group("import");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("hex_10k", |b| {
        let options = ImportOptions {
            format: ListFormat::Hex,
            ..ImportOptions::new("bench")
        };
        b.iter(|| black_box(parse_list("bench", hex.as_bytes(), &options).unwrap()));
    });
    group.finish();

    let mut urls = String::new();
    for idx in 0..10_000 {
        urls.push_str(&format!(
            "host{idx}.example.com\nexample.org/gallery/{idx}.html\n"
        ));
    }
    let list = UrlList::parse("bench", "bench", urls.as_bytes(), Category::CsamKnown).unwrap();
    let mut group = c.benchmark_group("url_list");
    group.throughput(Throughput::Elements(3));
    group.bench_function("matches", |b| {
        b.iter(|| {
            black_box(list.matches("https://cdn.host42.example.com/a/b.jpg"));
            black_box(list.matches("http://EXAMPLE.org/gallery/77.html/"));
            black_box(list.matches("https://unlisted.example.net/"));
        });
    });
    group.finish();
}

criterion_group!(benches, lookups, lists);
criterion_main!(benches);
