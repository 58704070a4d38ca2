//! Splitting pixel work across the threads of the current rayon pool (the session's), with
//! working memory per worker.
//!
//! Kernels run inside [`crate::Session`]'s pool ([`rayon::ThreadPool::install`]), so
//! [`rayon::current_num_threads`] is the session's thread count; with one thread everything
//! runs inline on the caller, in order.
use std::sync::Mutex;

use rayon::prelude::*;

/// One working memory per worker thread of the current pool, reused every frame.
#[derive(Debug, Default)]
pub struct PerWorker<S> {
    slots: Vec<Mutex<S>>,
}

impl<S: Default> PerWorker<S> {
    /// Makes sure there is a slot for every thread of the current pool (allocates only when the
    /// pool is larger than any seen before).
    pub fn ensure(&mut self) {
        let n = rayon::current_num_threads().max(1);
        if self.slots.len() < n {
            self.slots.resize_with(n, || Mutex::new(S::default()));
        }
    }

    /// The slots, for warming them up before the first frame.
    pub fn each_mut(&mut self) -> impl Iterator<Item = &mut S> {
        self.slots.iter_mut().map(|m| m.get_mut().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `f` on the calling worker's slot.
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.slots.len().max(1);
        let mut slot = self.slots[i].lock().unwrap_or_else(|e| e.into_inner());
        f(&mut slot)
    }

    /// Bytes reserved by all slots, as `bytes` counts one.
    pub fn allocated_bytes(&self, bytes: impl Fn(&S) -> usize) -> usize {
        self.slots.iter().map(|m| bytes(&m.lock().unwrap_or_else(|e| e.into_inner()))).sum()
    }
}

/// Tile length for `len` items on `threads` workers: at most `max_tile`, and enough tiles that
/// each worker gets the same number (so two threads never wait on an odd tile).
pub fn tile_len(len: usize, max_tile: usize, threads: usize) -> usize {
    if len == 0 {
        return 1;
    }
    let threads = threads.max(1);
    let tiles = len.div_ceil(max_tile).max(threads).div_ceil(threads) * threads;
    len.div_ceil(tiles).max(1)
}

/// Calls `f` on consecutive chunks of `items` of length `tile_len(items.len(), max_tile,
/// threads)`, in parallel on the current pool when it has more than one thread.
pub fn for_each_tile<T: Sync>(items: &[T], max_tile: usize, f: impl Fn(&[T]) + Sync + Send) {
    let threads = rayon::current_num_threads();
    let tile = tile_len(items.len(), max_tile, threads);
    if threads <= 1 || items.len() <= tile {
        items.chunks(tile).for_each(f);
    } else {
        items.par_chunks(tile).for_each(f);
    }
}

/// A raw pointer that may cross threads. Used where parallel tiles write disjoint elements of
/// one buffer (distinct pixels); each use states why the writes cannot overlap.
#[derive(Debug, Clone, Copy)]
pub struct SharedMut<T>(pub *mut T);

// SAFETY: only ever used to write disjoint elements from different threads (see each use).
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedMut<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_everything_evenly() {
        assert_eq!(tile_len(1200, 256, 2), 200);
        assert_eq!(tile_len(1200, 256, 1), 240);
        assert_eq!(tile_len(4800, 256, 2), 240);
        assert_eq!(tile_len(3, 256, 2), 2);
        assert_eq!(tile_len(0, 256, 2), 1);
        for (len, threads) in [(1usize, 1usize), (7, 2), (4801, 3), (100, 8)] {
            let t = tile_len(len, 64, threads);
            assert!(t >= 1 && t <= 64.max(len.div_ceil(threads)));
            assert!(len.div_ceil(t) >= threads.min(len));
        }
    }
}
