//! Quick timing of the bare index on random codes (development aid; the
//! reproducible benchmark is bench/index.sh).

// A development tool: it prints, and panics on bad arguments.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::time::Instant;

use childsafe_match::bench_support::BareIndex;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// CPU time of this thread (the machine is shared; wall time is not per core).
fn cpu_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    text.split_whitespace()
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1e9
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|it| it.parse().unwrap())
        .collect();
    let (n, n_queries, budget) = (args[0], args[1], args[2] as u32);
    let mut rng = Rng(1);
    let codes: Vec<[u64; 4]> = (0..n)
        .map(|_| [rng.next(), rng.next(), rng.next(), rng.next()])
        .collect();
    let mut queries = Vec::new();
    for query_idx in 0..n_queries {
        if query_idx % 2 == 0 {
            let mut code = codes[(rng.next() % n as u64) as usize];
            let flips = 10 + rng.next() % 22;
            let mut done = 0;
            while done < flips {
                let bit = (rng.next() % 256) as usize;
                let before = code;
                code[bit / 64] ^= 1 << (bit % 64);
                let d: u32 = (0..4).map(|i| (code[i] ^ before[i]).count_ones()).sum();
                if d == 1 {
                    done += 1;
                }
            }
            queries.push(code);
        } else {
            queries.push([rng.next(), rng.next(), rng.next(), rng.next()]);
        }
    }
    let started = Instant::now();
    let index = BareIndex::build(&codes, 31, budget);
    eprintln!(
        "build {:.2}s, {:.1} B/code, {}",
        started.elapsed().as_secs_f64(),
        index.bytes_per_code(),
        index.describe()
    );
    let mut out = Vec::new();
    let started = cpu_secs();
    let mut n_hits = 0;
    for query in &queries {
        out.clear();
        index.search(query, 31, &mut out);
        n_hits += out.len();
    }
    let secs = cpu_secs() - started;
    eprintln!("single: {:.0} q/s, {n_hits} hits", n_queries as f64 / secs);
    let mut pairs = Vec::new();
    let started = cpu_secs();
    index.search_batch(&queries, 31, &mut pairs);
    let secs = cpu_secs() - started;
    eprintln!(
        "batch: {:.0} q/s, {} hits",
        n_queries as f64 / secs,
        pairs.len()
    );
}
