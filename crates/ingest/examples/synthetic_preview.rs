//! Writes the built-in synthetic scenes as a Waterbirds-format folder, for looking at them.
//!
//! Usage: `cargo run -p exmap-ingest --example synthetic_preview -- FOLDER [SEED] [SIZE]`

use std::path::PathBuf;

use exmap_ingest::synthetic::{generate, SyntheticSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let folder = PathBuf::from(args.next().ok_or("usage: synthetic_preview FOLDER [SEED] [SIZE]")?);
    let seed = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let size = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let spec = SyntheticSpec { seed, size, ..SyntheticSpec::default() };
    let start = std::time::Instant::now();
    let count = generate(&spec, &folder, &|_, _| {})?;
    eprintln!("{count} images in {:.2} s into {}", start.elapsed().as_secs_f64(), folder.display());
    Ok(())
}
