//! Hashing throughput of `hash_file` on a large artefact.
//!
//! `cargo run --release -p exmap-artefact --example hash_bench -- [GIB] [FOLDER]` writes a file
//! of GIB gibibytes (default 1) of pseudo-random bytes, hashes it three times and prints GB/s.

use std::io::Write;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let gib: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let folder = args.next().map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let path = folder.join(format!("exmap-hash-bench-{}", std::process::id()));
    let bytes = (gib * (1u64 << 30) as f64) as usize;

    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..bytes / chunk.len() {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).expect("write");
    }
    drop(file);

    for round in 0..3 {
        let started = Instant::now();
        let digest = exmap_artefact::hash_file(&path).expect("hash");
        let seconds = started.elapsed().as_secs_f64();
        let rate = bytes as f64 / seconds / 1e9;
        println!("round {round}: {:.3} s, {rate:.2} GB/s ({})", seconds, digest.short());
    }
    let _ = std::fs::remove_file(&path);
}
