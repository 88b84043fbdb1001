//! The `lade` command line: a thin layer over the library crates.
fn main() {}
