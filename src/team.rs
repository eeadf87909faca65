//! A small team of helper threads that split one piece of work (a matrix product, an SGD step,
//! a batch of images) into blocks with the calling thread.
//!
//! Why not rayon, which the rest of the program uses: a training step runs a parallel product
//! every few hundred microseconds, and between them rayon's idle workers go to sleep at once.
//! Waking one costs 45-150 us on a 2-core VM (measured), a large part of a 500 us product, so
//! two threads ran a step only 1.3x faster than one. These helpers spin (yielding the core to
//! any other runnable thread) for a couple of milliseconds before they sleep, as OpenMP's
//! workers do behind PyTorch, so back-to-back products find them awake.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle helper keeps looking for work before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

const IDLE: u8 = 0;
const READY: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

/// The job a helper runs: the blocks it claims from `next`. The pointers borrow the caller's
/// closure and counter, which [`run`] keeps alive until every helper has reported `DONE`.
#[derive(Clone, Copy)]
struct Job {
    block: *const (dyn Fn(usize) + Sync),
    next: *const AtomicUsize,
    blocks: usize,
}

// SAFETY: the closure behind the pointer is `Sync`, and `run` outlives every use of it.
unsafe impl Send for Job {}

struct Slot {
    state: AtomicU8,
    sleeping: AtomicBool,
    panicked: AtomicBool,
    job: Mutex<Option<Job>>,
    thread: OnceLock<Thread>,
}

struct Team {
    slots: Vec<&'static Slot>,
    /// One caller at a time (tests and sweep workers may call from several threads); the others
    /// run their blocks themselves.
    busy: Mutex<()>,
}

fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let helpers = thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1);
        let slots = (0..helpers).filter_map(spawn_helper).collect();
        Team { slots, busy: Mutex::new(()) }
    })
}

fn spawn_helper(i: usize) -> Option<&'static Slot> {
    let slot: &'static Slot = Box::leak(Box::new(Slot {
        state: AtomicU8::new(IDLE),
        sleeping: AtomicBool::new(false),
        panicked: AtomicBool::new(false),
        job: Mutex::new(None),
        thread: OnceLock::new(),
    }));
    let handle = thread::Builder::new().name(format!("kernel-{}", i + 1)).spawn(move || helper(slot)).ok()?;
    slot.thread.set(handle.thread().clone()).ok()?;
    Some(slot)
}

fn helper(slot: &'static Slot) {
    loop {
        wait_for_work(slot);
        let job = slot.job.lock().map(|j| *j).unwrap_or(None);
        if let Some(job) = job {
            // SAFETY: `run` set this job and waits for `DONE` before its closure and counter go away.
            let (block, next) = unsafe { (&*job.block, &*job.next) };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| claim(next, job.blocks, block))).is_err() {
                slot.panicked.store(true, SeqCst);
            }
        }
        slot.state.store(DONE, SeqCst);
    }
}

/// Wait until a job is ready and take it (READY -> RUNNING; the caller may have taken it back).
fn wait_for_work(slot: &Slot) {
    let began = Instant::now();
    while slot.state.compare_exchange(READY, RUNNING, SeqCst, SeqCst).is_err() {
        if began.elapsed() < SPIN {
            std::hint::spin_loop();
            thread::yield_now();
            continue;
        }
        // Announce the sleep, then look once more: `run` sets READY before it checks
        // `sleeping`, so one of the two sees the other and no wake-up is lost.
        slot.sleeping.store(true, SeqCst);
        if slot.state.load(SeqCst) != READY {
            thread::park();
        }
        slot.sleeping.store(false, SeqCst);
    }
}

/// The base of a buffer that the blocks of one [`run`] fill, each its own disjoint part (a
/// product's rows, an SGD chunk, a batch's images).
#[derive(Clone, Copy)]
pub struct Disjoint<T>(*mut T);

// SAFETY: blocks write disjoint ranges, and `run` returns only when all of them are done.
unsafe impl<T> Sync for Disjoint<T> {}

impl<T> Disjoint<T> {
    pub fn new(base: *mut T) -> Self {
        Self(base)
    }

    /// # Safety
    /// `offset` must be inside the allocation, and the caller's block alone may write there.
    pub unsafe fn at(self, offset: usize) -> *mut T {
        // SAFETY: the caller's promise.
        unsafe { self.0.add(offset) }
    }
}

/// How many blocks [`run`] can run at once from this thread: the current rayon pool's size
/// (a sweep worker's pool of one keeps to its thread), at most one more than the helpers.
pub fn width() -> usize {
    rayon::current_num_threads().clamp(1, team().slots.len() + 1)
}

/// Run blocks claimed from `next` until all `blocks` are taken.
fn claim(next: &AtomicUsize, blocks: usize, block: &(dyn Fn(usize) + Sync)) {
    loop {
        let i = next.fetch_add(1, SeqCst);
        if i >= blocks {
            return;
        }
        block(i);
    }
}

/// `block(i)` for every `i` in `0..blocks`, each exactly once, on this thread and the helpers
/// (when they are free). Blocks are claimed one at a time, so a thread that the machine holds
/// up (another process, the batch thread) takes fewer of them instead of making the others
/// wait. Returns when all are done; a panic in a block is re-raised.
pub fn run(blocks: usize, block: &(dyn Fn(usize) + Sync)) {
    let team = team();
    let guard = if blocks > 1 { team.busy.try_lock().ok() } else { None };
    let Some(_guard) = guard else {
        (0..blocks).for_each(block);
        return;
    };
    // SAFETY (lifetime erasure): every helper given this pointer reports DONE below, before
    // `block` can go out of scope; the pointer is never used after that.
    let erased: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(block) };
    let next = AtomicUsize::new(0);
    let helpers = &team.slots[..(blocks - 1).min(team.slots.len())];
    for slot in helpers {
        *slot.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job { block: erased, next: &next, blocks });
        slot.state.store(READY, SeqCst);
        if slot.sleeping.load(SeqCst) {
            if let Some(t) = slot.thread.get() {
                t.unpark();
            }
        }
    }
    // The helpers must be done with `block` before this function returns, even by a panic.
    let own = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| claim(&next, blocks, block)));
    let mut panicked = false;
    for slot in helpers {
        // A helper that has not started yet (asleep, or not scheduled) is not waited for: all
        // blocks are done, so its job is taken back.
        if slot.state.compare_exchange(READY, IDLE, SeqCst, SeqCst).is_ok() {
            continue;
        }
        while slot.state.load(SeqCst) != DONE {
            std::hint::spin_loop();
            thread::yield_now();
        }
        slot.state.store(IDLE, SeqCst);
        panicked |= slot.panicked.swap(false, SeqCst);
    }
    if let Err(payload) = own {
        std::panic::resume_unwind(payload);
    }
    assert!(!panicked, "a kernel block panicked on a helper thread");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_block_runs_exactly_once() {
        for blocks in [1, 2, 3, 7] {
            let hits: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..200 {
                run(blocks, &|i| {
                    hits[i].fetch_add(1, SeqCst);
                });
            }
            assert!(hits.iter().all(|h| h.load(SeqCst) == 200), "{blocks} blocks");
        }
    }

    #[test]
    fn callers_on_many_threads_all_finish() {
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        run(2, &|_| {
                            total.fetch_add(1, SeqCst);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(SeqCst), 4 * 100 * 2);
    }

    #[test]
    fn helpers_wake_after_sleeping() {
        let count = AtomicUsize::new(0);
        run(2, &|_| {
            count.fetch_add(1, SeqCst);
        });
        thread::sleep(SPIN * 3);
        run(2, &|_| {
            count.fetch_add(1, SeqCst);
        });
        assert_eq!(count.load(SeqCst), 4);
    }
}
