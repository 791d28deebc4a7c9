//! Query benchmark (placeholder).
fn main() {}
