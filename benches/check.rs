//! `wasmgate check` over a directory of 1,000 workloads (issue 5), in process: walking the
//! directory, reading and parsing the files (with line tracking), the inventory, every object
//! through the webhook's evaluation (worlds from annotations, defaults, resolution, patch),
//! and rendering the report as JSON and SARIF.
//!
//! Method: 1,000 files, one Workload each, written by `generate` below: every workload has
//! two components whose worlds come from `wit.wasmgate.dev/<component>` annotations (WIT text
//! parsed per object, as the webhook does); they import wasi:keyvalue, wasi:config,
//! wasi:logging (defaulted entries), wasmcloud:messaging 0.3.0, wasi:io (built-in), and one
//! imports an interface the other exports. One in ten pins its messaging entry to 0.2.0 and is
//! denied (version-mismatch). The
//! inventory is `examples/inventory.yaml` (five hosts). The end-to-end binary figure in
//! BENCHMARKS.md (`hyperfine`-style wall clock of `target/release/wasmgate check`) uses the
//! same generator: `WASMGATE_BENCH_DIR=DIR cargo bench --bench check` leaves the files in DIR.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion};

use wasmgate::check::{self, output, CheckArgs};
use wasmgate::cli::{Cli, Command};

/// Number of workloads checked per iteration.
pub const WORKLOADS: usize = 1_000;

fn workload(i: usize) -> String {
    // One in ten pins the entry to 0.2.0 while the component imports 0.3.0: version-mismatch.
    let pinned = if i % 10 == 9 { "0.2.0" } else { "0.3.0" };
    format!(
        r#"apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata:
  name: app-{i}
  namespace: team-a
  annotations:
    wit.wasmgate.dev/api: |
      package bench:api{i};
      world api {{
        import wasi:keyvalue/store@0.2.0-draft;
        import wasi:config/store@0.2.0-rc.1;
        import wasi:logging/logging@0.1.0-draft;
        import wasi:io/streams@0.2.6;
        import bench:pricing/quote@0.1.0;
        export wasi:http/incoming-handler@0.2.0;
      }}
    wit.wasmgate.dev/worker: |
      package bench:worker{i};
      world worker {{
        import wasmcloud:messaging/consumer@0.3.0;
        export wasmcloud:messaging/handler@0.3.0;
        export bench:pricing/quote@0.1.0;
      }}
spec:
  hostSelector:
    hostgroup: default
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config:
        host: app-{i}.example.test
    - namespace: wasmcloud
      package: messaging
      version: "{pinned}"
      interfaces: [consumer, handler]
  components:
    - name: api
      image: ghcr.io/example/api:1.{i}.0
    - name: worker
      image: ghcr.io/example/worker:1.{i}.0
"#
    )
}

/// Writes [`WORKLOADS`] workload files into `dir` (in subdirectories of 100).
pub fn generate(dir: &Path) {
    for i in 0..WORKLOADS {
        let sub = dir.join(format!("team-{:02}", i / 100));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(format!("app-{i:04}.yaml")), workload(i)).expect("write");
    }
}

fn args(dir: &Path) -> CheckArgs {
    let inventory = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.yaml");
    let cli = Cli::parse_from([
        "wasmgate",
        "check",
        "--inventory",
        inventory,
        dir.to_str().expect("UTF-8 path"),
    ]);
    match cli.command {
        Command::Check(a) => a,
        _ => unreachable!("parsed a check command"),
    }
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = std::env::var_os("WASMGATE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    generate(&dir);
    let args = args(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // Sanity: the verdicts the method promises.
    let outcome = rt
        .block_on(check::run(&args, &mut Cursor::new(Vec::new())))
        .expect("check runs");
    let s = &outcome.report.summary;
    assert_eq!(s.objects, WORKLOADS);
    assert_eq!(s.denied, WORKLOADS / 10, "{s:?}");

    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.bench_function("1000 workloads from a directory", |b| {
        b.iter(|| {
            rt.block_on(check::run(&args, &mut Cursor::new(Vec::new())))
                .expect("check runs")
        })
    });
    group.bench_function("render json (1000 results)", |b| {
        b.iter(|| output::render(&outcome.report, output::OutputFormat::Json, 1))
    });
    group.bench_function("render sarif (1000 results)", |b| {
        b.iter(|| output::render(&outcome.report, output::OutputFormat::Sarif, 1))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
