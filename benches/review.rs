//! One admission review in process, without the network: the CPU a review costs the webhook.
//!
//! Method: the inputs are `scripts/bench-admission`'s (written by `admission-fixtures`): the
//! 10-component `wide` workload with its worlds in annotations and the 1-component `single`
//! one, each judged against the 1,000-host inventory. Each iteration does what `POST /validate`
//! or `POST /mutate` does between reading the body and writing the answer: parse the review,
//! judge it ([`wasmgate::admission::review`]) and encode the AdmissionReview response. The
//! worlds are warm (the first review parses the annotation worlds; later ones find them in the
//! cache), as in the closed-loop runs of `scripts/bench-admission`. Each case runs twice: with
//! the engine's review memo off (`fresh`: judged from scratch, the cost of a spec never seen)
//! and on (`judged`: the same object again, the judgment reused).
//!
//! Run: `cargo run --release -p wasmgate-bench-admission --bin admission-fixtures DIR 1000`,
//! then `REVIEW_FIXTURES=DIR cargo bench --bench review`.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};

use wasmgate::admission::{parse_review, review, review_response};
use wasmgate::components::WorldResolver;
use wasmgate::engine::{Engine, Mode, DEFAULT_MEMO_ENTRIES};
use wasmgate::inventory::{load_hosts, SharedInventory};
use wasmgate::policy::Policy;

/// The fixtures' directory; `None` (the bench is skipped, saying how to run it) when unset, as
/// under `cargo test --all-targets`.
fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("REVIEW_FIXTURES").map(PathBuf::from);
    if dir.is_none() {
        eprintln!(
            "review bench skipped: set REVIEW_FIXTURES to a directory written by \
             `cargo run --release -p wasmgate-bench-admission --bin admission-fixtures DIR 1000`"
        );
    }
    dir
}

/// What the webhook does with one body: parse, judge, encode.
async fn answer(engine: &Engine, mode: Mode, body: &[u8]) -> Vec<u8> {
    let parsed = parse_review(body).expect("the fixture is a review");
    let verdict = review(engine, mode, &parsed.request, parsed.object.as_deref()).await;
    assert!(verdict.allowed, "the fixture is admitted: {verdict:?}");
    let response = review_response(&parsed.request, &verdict).expect("encodable");
    serde_json::to_vec(&response).expect("encodable")
}

fn bench(c: &mut Criterion) {
    let Some(dir) = fixtures() else {
        return;
    };
    let hosts = load_hosts(&dir.join("inventory-1000.json")).expect("inventory-1000.json");
    let inventory = Arc::new(SharedInventory::new(hosts));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // `judged`: the same object again (a remembered judgment: the second webhook of one
    // apply, a template stamped out again, a re-sync); `fresh`: the memo off, every review
    // judged from scratch (a spec never seen before).
    for (memo, entries) in [("fresh", 0), ("judged", DEFAULT_MEMO_ENTRIES)] {
        let engine = Engine::with_memo(
            Arc::new(WorldResolver::new(vec![])),
            inventory.clone(),
            Arc::new(Policy::default()),
            entries,
        );
        for (case, file) in [("wide", "wide-annotations.json"), ("single", "single.json")] {
            let body = std::fs::read(dir.join(file)).expect("fixture");
            for (mode, name) in [(Mode::Validate, "validate"), (Mode::Mutate, "mutate")] {
                // Warm: the annotation worlds parsed once.
                runtime.block_on(answer(&engine, mode, &body));
                c.bench_function(&format!("review {case} {name} {memo}"), |b| {
                    b.iter(|| runtime.block_on(answer(&engine, mode, &body)))
                });
            }
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
