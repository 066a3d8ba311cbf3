//! A global allocator for tests that proves secrets are wiped: before it hands a block back
//! (free, or the old block of a realloc) it searches the block for marker strings and counts
//! each marker it finds. A secret dropped without being wiped, or copied into a buffer that
//! was, leaves its marker in freed memory and the count goes up. A test binary installs it
//! with `#[global_allocator] static A: Scanning = Scanning;` and runs code under `watch`.
//! Markers live in a static buffer (never on the heap); `watch` calls hold one lock so that
//! the counts of concurrent tests cannot mix.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const MARKERS: usize = 8;
/// The markers being looked for, as raw bytes in a static buffer (never on the heap).
static mut WATCHED: [[u8; 32]; MARKERS] = [[0; 32]; MARKERS];
static WATCHED_LEN: [AtomicUsize; MARKERS] = [const { AtomicUsize::new(0) }; MARKERS];
static HITS: [AtomicUsize; MARKERS] = [const { AtomicUsize::new(0) }; MARKERS];
static SCANNING: AtomicBool = AtomicBool::new(false);
static SERIAL: Mutex<()> = Mutex::new(());

/// The scanning allocator: forwards to the system allocator.
pub struct Scanning;

/// Counts the watched markers found in the block about to be freed.
///
/// # Safety
/// `block` must point to `len` readable bytes.
unsafe fn scan(block: *const u8, len: usize) {
    if !SCANNING.load(Ordering::Acquire) || len == 0 {
        return;
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { std::slice::from_raw_parts(block, len) };
    for (index, hits) in HITS.iter().enumerate() {
        let marker_len = WATCHED_LEN[index].load(Ordering::Acquire);
        if marker_len == 0 || marker_len > len {
            continue;
        }
        // SAFETY: markers are written only while SCANNING is off, under SERIAL.
        let watched: &[[u8; 32]; MARKERS] = unsafe { &*std::ptr::addr_of!(WATCHED) };
        let marker = &watched[index][..marker_len];
        if bytes.windows(marker_len).any(|window| window == marker) {
            hits.fetch_add(1, Ordering::AcqRel);
        }
    }
}

// SAFETY: every call is forwarded to the system allocator; blocks are only read before
// they are freed.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: a live block of `layout.size()` bytes, about to be freed.
        unsafe {
            scan(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Always move, so that the old block is scanned as it is freed.
        // SAFETY: the layout is valid for new_size (GlobalAlloc's contract); both blocks live.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                scan(ptr, layout.size());
                System.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// Watches `markers` while `run` runs; returns the hits of each.
pub fn watch(markers: &[&str], run: impl FnOnce()) -> Vec<usize> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(markers.len() <= MARKERS);
    for (index, marker) in markers.iter().enumerate() {
        assert!(marker.len() <= 32);
        // SAFETY: scanning is off and SERIAL is held: nobody reads WATCHED now.
        let watched: &mut [[u8; 32]; MARKERS] = unsafe { &mut *std::ptr::addr_of_mut!(WATCHED) };
        watched[index][..marker.len()].copy_from_slice(marker.as_bytes());
        WATCHED_LEN[index].store(marker.len(), Ordering::Release);
        HITS[index].store(0, Ordering::Release);
    }
    SCANNING.store(true, Ordering::Release);
    run();
    SCANNING.store(false, Ordering::Release);
    let hits = markers.iter().enumerate().map(|(index, _)| HITS[index].load(Ordering::Acquire)).collect();
    for length in &WATCHED_LEN {
        length.store(0, Ordering::Release);
    }
    hits
}
