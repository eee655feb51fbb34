//! Hostile component binaries must cost what they weigh, not what their headers claim.
//!
//! This test binary counts the largest single allocation made while decoding (its own global
//! allocator), so a decoder that trusts a section header's size is caught by the number, not by
//! the machine running out of memory.

// The counting allocator is the only unsafe code in wasmgate: a test's instrument, never built
// into the product.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use wasmgate_core::wit::{decode_component, WitError};

/// The system allocator, remembering the largest allocation asked of it.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Tests of this binary run one at a time, so that one's allocations are not another's.
static SERIAL: Mutex<()> = Mutex::new(());

/// Far above what decoding a few kilobytes needs, far below what the headers below claim.
const BUDGET: usize = 16 << 20;

/// Decodes `bytes` and returns the result with the largest allocation made meanwhile.
fn decode_measured(bytes: &[u8]) -> (Result<usize, WitError>, usize) {
    let _one_at_a_time = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    LARGEST.store(0, Ordering::Relaxed);
    let result = decode_component(bytes).map(|world| world.imports.len() + world.exports.len());
    (result, LARGEST.load(Ordering::Relaxed))
}

const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// A component whose first section (a custom one) claims `size` bytes and holds four.
fn claiming(section_id: u8, size: u32) -> Vec<u8> {
    let mut bytes = COMPONENT_HEADER.to_vec();
    bytes.push(section_id);
    let mut rest = size;
    loop {
        let byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(b"\x04name");
    bytes
}

fn assert_refused_cheaply(what: &str, bytes: &[u8]) {
    let (result, largest) = decode_measured(bytes);
    assert!(
        matches!(result, Err(WitError::Corrupt(_))),
        "{what}: expected a corrupt-component error, got {result:?}"
    );
    assert!(
        largest < BUDGET,
        "{what}: {} bytes in, one allocation of {largest} bytes",
        bytes.len()
    );
}

#[test]
fn a_section_claiming_gigabytes_is_refused_without_allocating_them() {
    // 19 bytes that cost wit-parser 0.263 a 3 GB zero-filled buffer and 2.5 s.
    assert_refused_cheaply("custom section of 3 GB", &claiming(0, 0xB000_0000));
    assert_refused_cheaply("custom section of 4 GB", &claiming(0, u32::MAX));
    // A nested core module (section 1) and a nested component (section 4) that claim too much.
    assert_refused_cheaply("core module section of 3 GB", &claiming(1, 0xB000_0000));
    assert_refused_cheaply("component section of 3 GB", &claiming(4, 0xB000_0000));
}

#[test]
fn the_fuzzer_s_out_of_memory_input_is_refused_without_allocating_much() {
    // What scripts/fuzz found in CI: a real component with one byte run inserted, so that a
    // section deep inside claims about 2.9 GB.
    let found = include_bytes!("../../../fuzz/seeds/component_binary/oversized-section-hint.wasm");
    assert_refused_cheaply("fuzzer's input", found);
}

#[test]
fn a_sound_component_still_decodes_within_the_budget() {
    let component = include_bytes!("../../../fuzz/seeds/component_binary/http-kv.wasm");
    let (result, largest) = decode_measured(component);
    let items = result.expect("the http-kv seed is a sound component");
    assert!(items > 0, "the http-kv seed imports and exports interfaces");
    assert!(largest < BUDGET, "one allocation of {largest} bytes");
}

#[test]
fn a_parser_panic_is_a_typed_error() {
    // What scripts/fuzz found next: a component whose instance type names a function like an
    // interface (`ns:pkg/iface`), on which wit-parser 0.263 reaches an `unreachable!()`
    // (`decoding.rs`). The panic is wit-parser's; wasmgate answers it with an error.
    let found =
        include_bytes!("../../../fuzz/seeds/component_binary/function-with-interface-name.wasm");
    let (result, _) = decode_measured(found);
    assert!(
        matches!(result, Err(WitError::ParserPanicked("wit-component", _))),
        "{result:?}"
    );
}
