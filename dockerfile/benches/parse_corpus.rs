//! Parses every Dockerfile of the shared corpus (`../shared/corpus` beside the workspace) and reports
//! throughput; skipped with a message when the corpus is absent.

use std::path::{Path, PathBuf};

use criterion::{criterion_main, Criterion, Throughput};
use lade_dockerfile::Dockerfile;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");

/// Every corpus Dockerfile: the file beside each `NAME.expected.json`.
fn collect_dockerfiles(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_dockerfiles(&path, found);
        } else if let Some(dockerfile) = path
            .to_str()
            .and_then(|text| text.strip_suffix(".expected.json"))
        {
            found.push(PathBuf::from(dockerfile));
        }
    }
}

fn parse_corpus(c: &mut Criterion) {
    let mut paths = Vec::new();
    collect_dockerfiles(Path::new(CORPUS), &mut paths);
    if paths.is_empty() {
        println!("SKIP: no Dockerfiles under {CORPUS}; benchmark not run");
        return;
    }
    let sources: Vec<String> = paths
        .iter()
        .map(|path| {
            String::from_utf8_lossy(&std::fs::read(path).expect("readable corpus file"))
                .into_owned()
        })
        .collect();
    let total_bytes: usize = sources.iter().map(String::len).sum();
    let mut group = c.benchmark_group("corpus");
    group.throughput(Throughput::Bytes(total_bytes as u64));
    group.bench_function(format!("parse {} files", sources.len()), |b| {
        b.iter(|| {
            for source in &sources {
                let _ = std::hint::black_box(Dockerfile::parse(source, "Dockerfile"));
            }
        })
    });
    group.bench_function(format!("parse+type+plan {} files", sources.len()), |b| {
        b.iter(|| {
            for source in &sources {
                if let Ok(dockerfile) = Dockerfile::parse(source, "Dockerfile") {
                    let _ = std::hint::black_box(dockerfile.plan(&Default::default()));
                }
            }
        })
    });
    group.finish();
}

// The group function `criterion_group!` generates is `pub` and cannot carry a doc comment; in a private module it is
// not part of the crate's public items, so the workspace's `missing_docs` lint does not apply to it.
mod group {
    criterion::criterion_group!(benches, super::parse_corpus);
}
criterion_main!(group::benches);
