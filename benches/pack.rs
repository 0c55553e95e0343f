//! Criterion benchmarks of `artifact pack` through the library: cold (no
//! cache, no output), warm (nothing changed) and one handler edited, on a
//! generated tree of Python-like files shaped like a `pip install -t` folder.
//! The side-by-side comparison with `zip -r` is `scripts/bench-pack`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use artifact::config::{Env, Settings};
use artifact::pack::{self, PackOptions};

const CONFIG: &str = r#"
[project]
name = "bench"
[pack]
source = "lambda"
dependencies = "lambda/package"
[functions.a]
files = ["a.py"]
[functions.b]
files = ["b.py"]
[functions.c]
files = ["c.py"]
[functions.d]
files = ["d.py"]
[functions.e]
files = ["e.py"]
"#;

/// Writes about 8 MB in 600 files: text that compresses like real Python.
fn make_tree(root: &Path) {
    let pkg = root.join("lambda/package");
    for i in 0..600u32 {
        let dir = pkg.join(format!("lib{}/sub{}", i % 12, i % 5));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::new();
        for j in 0..(40 + i % 300) {
            text.push_str(&format!(
                "def function_{i}_{j}(value, option={j}):\n    \"\"\"Returns value {j} for {i}.\"\"\"\n    return value * option + {}\n\n",
                (i * 7919 + j * 104729) % 1000
            ));
        }
        std::fs::write(dir.join(format!("module_{i}.py")), text).unwrap();
    }
    for f in ["a", "b", "c", "d", "e"] {
        std::fs::write(
            root.join(format!("lambda/{f}.py")),
            format!("def handler(event, context):\n    return '{f}'\n"),
        )
        .unwrap();
    }
    std::fs::write(root.join("artifact.toml"), CONFIG).unwrap();
}

fn bench_pack(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let settings = Settings::load(&dir.path().join("artifact.toml"), &Env::default()).unwrap();
    let out = dir.path().join("build/lambda");

    let mut g = c.benchmark_group("pack");
    g.sample_size(10);
    g.bench_function("cold", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_dir_all(&out);
            },
            |()| {
                pack::run(
                    &settings,
                    &PackOptions {
                        no_cache: true,
                        ..PackOptions::default()
                    },
                )
                .unwrap()
            },
            BatchSize::PerIteration,
        );
    });
    pack::run(&settings, &PackOptions::default()).unwrap();
    g.bench_function("warm", |b| {
        b.iter(|| pack::run(&settings, &PackOptions::default()).unwrap());
    });
    let handler = dir.path().join("lambda/a.py");
    let mut n = 0u64;
    g.bench_function("one_edit", |b| {
        b.iter_batched(
            || {
                n += 1;
                std::fs::write(&handler, format!("def handler(e, c):\n    return {n}\n")).unwrap();
            },
            |()| pack::run(&settings, &PackOptions::default()).unwrap(),
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn bench_compress(c: &mut Criterion) {
    let text: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("    return value * {i} + option  # line {i}\n").into_bytes())
        .collect();
    let mut g = c.benchmark_group("compress");
    g.throughput(criterion::Throughput::Bytes(text.len() as u64));
    g.bench_function("deflate_6", |b| {
        b.iter(|| pack::compress(&text, pack::Codec { level: 6 }));
    });
    g.finish();
}

criterion_group!(benches, bench_pack, bench_compress);
criterion_main!(benches);
