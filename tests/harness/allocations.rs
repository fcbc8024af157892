//! Counting heap allocations, for benchmarks that report allocations per event.
//!
//! A bench wraps its allocator: `#[global_allocator] static A: CountingAllocator<MiMalloc> =
//! CountingAllocator(MiMalloc);`, then brackets a phase with [`start_counting`] and
//! [`stop_counting`]. Outside a counted phase an allocation costs one relaxed load more, so that
//! phases that are not counted measure what ships.

// Implementing `GlobalAlloc` takes `unsafe`; every call is passed on unchanged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// An allocator that counts the allocations (and reallocations) made through `A` while a
/// count is running.
pub struct CountingAllocator<A>(pub A);

impl<A> CountingAllocator<A> {
    fn count(&self) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is passed on unchanged to `A`, a `GlobalAlloc`.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: the caller's guarantees are `A::alloc`'s.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: the caller's guarantees are `A::alloc_zeroed`'s.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees are `A::dealloc`'s.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count();
        // SAFETY: the caller's guarantees are `A::realloc`'s.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

/// Starts counting allocations on every thread, from zero.
pub fn start_counting() {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
}

/// Stops counting and returns the allocations made since [`start_counting`].
pub fn stop_counting() -> u64 {
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCATIONS.load(Ordering::Relaxed)
}
