//! Tuning of mimalloc, the allocator the `cdc` binary (and its benchmarks) run with.

use std::ffi::c_long;

/// mimalloc.h's `mi_option_purge_delay` (15 in both mimalloc v2 and v3, which the bindings do
/// not name): how long freed memory stays with the process before it is given back to the OS.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's default, 10 ms, gives pages back between two batches of a busy pipeline, and the
/// kernel zeroes them again at the next fault: 11% of the embedded pipeline's CPU in a profile.
/// One second keeps them across batches (embedded rows/s +25% in the same run), and an idle
/// process still gives them back.
const PURGE_DELAY_MS: c_long = 1000;

/// Applies the host's mimalloc options; call it first thing in `main`.
pub fn tune() {
    // A plain option store in mimalloc, safe at any time and from any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS);
    }
}
