//! An AdmissionReview request body, as `POST /validate` and `POST /mutate` receive it: the
//! protocol's parse, then (when it parses) both webhooks' review through the engine (worlds from
//! annotations, no registry; the hosts of examples/inventory.yaml) and the response encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgate::admission::{parse_review, review, review_response};
use wasmgate::engine::Mode;
use wasmgate_fuzz::{engine, example_inventory, runtime};

fuzz_target!(|data: &[u8]| {
    wasmgate_fuzz::contain_parser_panics();
    let Ok(parsed) = parse_review(data) else {
        return;
    };
    let engine = engine(example_inventory());
    for mode in [Mode::Mutate, Mode::Validate] {
        let verdict = runtime().block_on(review(
            &engine,
            mode,
            &parsed.request,
            parsed.object.as_deref(),
        ));
        if mode == Mode::Validate {
            assert!(
                verdict.patch.is_empty(),
                "the validating webhook never patches"
            );
        }
        // The server answers 500 when this fails; a verdict of ours must always encode.
        let response = review_response(&parsed.request, &verdict)
            .unwrap_or_else(|e| panic!("cannot encode the verdict {verdict:?}: {e}"));
        serde_json::to_vec(&response).expect("an AdmissionReview serializes");
    }
});
