//! Fuzz target: image bytes through every decoding path of `childsafe-hash`
//! (the DC-domain JPEG decoder, full decoding, EXIF orientation) under small
//! limits. Passes if nothing panics and memory stays bounded; the byte
//! hashes must always be present and must not depend on the decode path.

#![no_main]

use childsafe_hash::{DecodeLimits, HashConfig, hash_image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast and bound memory: a 4096x4096 header
    // is refused before allocation like any bomb.
    let limits = DecodeLimits {
        max_bytes: 1 << 20,
        max_width: 4096,
        max_height: 4096,
        max_pixels: 4_000_000,
    };
    let first = data.first().copied().unwrap_or(0);
    let fast = HashConfig {
        limits,
        exif_orientation: first & 1 == 1,
        dihedral: first & 2 == 2,
        full_decode: false,
    };
    let full = HashConfig {
        full_decode: true,
        ..fast
    };
    let a = hash_image(data, &fast);
    let b = hash_image(data, &full);
    assert_eq!(a.crypto, b.crypto);
    if let Ok(pdq) = &a.pdq {
        assert!(pdq.quality <= 100);
        assert_eq!(pdq.dihedral.is_some(), fast.dihedral);
    }
});
