//! Tuning of mimalloc, the allocator the `cdc` binary (and its benchmarks) run with.

use std::ffi::c_long;

/// mimalloc.h's `mi_option_purge_delay` (15 in both mimalloc v2 and v3, which the bindings do
/// not name): how long freed memory stays with the process before it is given back to the OS.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's default, 10 ms, gave pages back between two batches of a busy pipeline, and the
/// kernel zeroed them again at the next fault: 11% of the embedded pipeline's CPU in a profile
/// while its records were JSON trees. One second kept them, but also kept every freed page of a
/// 4-partition Kafka backlog for a second: peak RSS 92–111 MB against 61–76 MB at 100 ms, which
/// costs the embedded pipeline nothing measurable now that it allocates far less per row.
const PURGE_DELAY_MS: c_long = 100;

/// Applies the host's mimalloc options and memory settings; call it first thing in `main`.
pub fn tune() {
    // A plain option store in mimalloc, safe at any time and from any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS);
    }
    disable_transparent_huge_pages();
}

/// Turns transparent huge pages off for this process. A pipeline frees and refills its batch
/// memory many times a second; with huge pages every refill after a purge faulted in and
/// zeroed 2 MiB at a time, often after compacting memory to find it: about 15% of the CPU of a
/// Kafka → PostgreSQL pipeline in a profile. The process-wide switch, not mimalloc's own
/// option: that one comes too late for the arena mapped before `main`, and its index differs
/// between mimalloc versions. The kernel checks the switch at every fault, whatever a mapping
/// was advised; it is kept across `exec`.
#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    // PR_SET_THP_DISABLE only sets a flag of the process. A kernel without it keeps huge
    // pages: slower, not wrong, so its refusal is ignored (this runs before logging is set up).
    #[allow(unsafe_code)]
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() {}
