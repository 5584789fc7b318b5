fn main() {
    exmap_fingerprint::emit(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
}
