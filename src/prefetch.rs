//! Prefetch hints: a patient's state is some thirty small blocks, and a set of observations
//! touches most of them, each a cache miss (the monitors are memory-bound, not compute-bound).
//! Knowing which patient comes next, the monitors ask for its blocks while they work on the
//! current one. A hint never changes a result, only when memory arrives; on targets without one
//! it does nothing.

/// Asks for the cache line holding `p`. Never reads through `p`: any address is safe.
#[inline(always)]
pub fn line<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // A prefetch does not dereference: it is a hint, valid for any address.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>())
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for every cache line of `value` itself (not what it points to).
#[inline]
pub fn object<T>(value: *const T) {
    let start = value.cast::<u8>();
    let mut offset = 0;
    while offset < std::mem::size_of::<T>() {
        line(start.wrapping_add(offset));
        offset += 64;
    }
}
