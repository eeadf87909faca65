//! A small team of helper threads that split one piece of work (a matrix product, an SGD step,
//! a batch of images) into blocks with the calling thread.
//!
//! Why not rayon, which the rest of the program uses: a training step runs a parallel product
//! every few hundred microseconds, and between them rayon's idle workers go to sleep at once.
//! Waking one costs a large part of a product (docs/performance.md has the figures), so two
//! threads ran a step only 1.3x faster than one. These helpers spin (yielding the core to
//! any other runnable thread) for a couple of milliseconds before they sleep, as OpenMP's
//! workers do behind PyTorch, so back-to-back products find them awake.
//!
//! While they spin they also take blocks of work posted ahead ([`Ahead`]: the next batch), so
//! the step's serial parts (the loss, the Learner's bookkeeping) no longer leave a core idle.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
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
    let mut began = Instant::now();
    while slot.state.compare_exchange(READY, RUNNING, SeqCst, SeqCst).is_err() {
        if began.elapsed() < SPIN {
            if Ahead::help() {
                began = Instant::now();
            } else {
                std::hint::spin_loop();
                thread::yield_now();
            }
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

// SAFETY: blocks on several threads write disjoint ranges of `T`s (so `T` must be `Send`), and
// `run` returns only when all of them are done.
unsafe impl<T: Send> Sync for Disjoint<T> {}
// SAFETY: as for `Sync`: work posted ahead ([`Ahead`]) is finished before its buffer goes away.
unsafe impl<T: Send> Send for Disjoint<T> {}

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
    #[cfg(feature = "team-alternatives")]
    if super::sched_alt::divert(blocks, block) {
        return;
    }
    let team = team();
    // `busy` guards no data, only who posts: a panic re-raised by an earlier run (which waited
    // for its helpers first) leaves it poisoned but the team sound, so poison is not "busy".
    let guard = match team.busy.try_lock() {
        _ if blocks < 2 => None,
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    let Some(_guard) = guard else {
        (0..blocks).for_each(block);
        return;
    };
    // SAFETY: lifetime erasure only. Every helper given this pointer reports DONE below, before
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

/// Work posted for the helpers to do while they would otherwise wait for the next product (the
/// next batch, built during this step's serial parts). They take one block at a time and look
/// for a product's job before each, so a product that starts waits for them one block at most.
/// Whoever posted the work calls [`Ahead::finish`] before using (or freeing) what it writes.
pub struct Ahead {
    block: Box<dyn Fn(usize) + Send + Sync>,
    blocks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
}

/// The one piece of work posted for the helpers (one caller posts at a time: see [`Ahead::post`]).
static POSTED: Mutex<Option<Arc<Ahead>>> = Mutex::new(None);

impl Ahead {
    /// Post `block(i)` for `i` in `0..blocks` for idle helpers to run. `None` where this thread
    /// has no helpers (one core, a sweep worker's pool of one) or other work is posted: the
    /// caller then does the work itself.
    ///
    /// # Safety
    /// Whatever the blocks write through raw pointers must stay valid until [`Ahead::finish`]
    /// or [`Ahead::settle`] has returned, even if the caller panics first: keep it in a guard
    /// whose `Drop` settles (`engine::batches::Prefilled` is the one caller).
    pub unsafe fn post(blocks: usize, block: Box<dyn Fn(usize) + Send + Sync>) -> Option<Arc<Ahead>> {
        if width() < 2 {
            return None;
        }
        #[cfg(feature = "team-alternatives")]
        if !super::sched_alt::ahead_allowed() {
            return None;
        }
        let mut posted = POSTED.try_lock().ok()?;
        if posted.is_some() {
            return None;
        }
        let ahead = Arc::new(Ahead { block, blocks, next: AtomicUsize::new(0), done: AtomicUsize::new(0), panicked: AtomicBool::new(false) });
        *posted = Some(ahead.clone());
        Some(ahead)
    }

    /// Run one block of the posted work, if any is left: whether one ran.
    fn help() -> bool {
        let Some(ahead) = POSTED.try_lock().ok().and_then(|p| p.clone()) else {
            return false;
        };
        ahead.claim_one()
    }

    fn claim_one(&self) -> bool {
        let i = self.next.fetch_add(1, SeqCst);
        if i >= self.blocks {
            return false;
        }
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.block)(i))).is_err() {
            self.panicked.store(true, SeqCst);
        }
        self.done.fetch_add(1, SeqCst);
        true
    }

    /// Withdraw the work, run what is left on this thread and the team, and wait for the blocks
    /// the helpers are running: on return every block is done. A panic in a block is re-raised.
    pub fn finish(self: &Arc<Self>) {
        self.settle();
        assert!(!self.panicked.load(SeqCst), "a block of work done ahead panicked");
    }

    /// [`Ahead::finish`] without re-raising a panic (for a `Drop`, which may run while one
    /// unwinds).
    pub fn settle(self: &Arc<Self>) {
        {
            let mut posted = POSTED.lock().unwrap_or_else(|e| e.into_inner());
            if posted.as_ref().is_some_and(|p| Arc::ptr_eq(p, self)) {
                *posted = None;
            }
        }
        let left = self.blocks.saturating_sub(self.next.load(SeqCst));
        if left > 0 {
            run(left, &|_| {
                self.claim_one();
            });
        }
        while self.done.load(SeqCst) < self.blocks {
            std::hint::spin_loop();
            thread::yield_now();
        }
    }
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
    fn a_panic_in_a_block_is_raised_and_the_team_stays_on() {
        let caught = std::panic::catch_unwind(|| {
            run(4, &|i| {
                if i == 1 {
                    panic!("block 1 fails");
                }
            })
        });
        assert!(caught.is_err(), "the block's panic reaches the caller");
        if width() < 2 {
            return;
        }
        // Later splits still reach a helper (other tests may hold the team for a while).
        let me = thread::current().id();
        let helped = (0..2000).any(|_| {
            let other = AtomicUsize::new(0);
            run(8, &|_| {
                if thread::current().id() != me {
                    other.fetch_add(1, SeqCst);
                }
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_micros(50) {}
            });
            other.load(SeqCst) > 0
        });
        assert!(helped, "after a panic the team splits work again");
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

    /// Other tests of this process (the loader's, the model's) post work too, and only one piece
    /// is posted at a time: retry for up to a second while the slot is taken. `None` only where
    /// there are no helpers.
    fn post_when_free<T>(mut post: impl FnMut() -> (T, Option<Arc<Ahead>>)) -> (T, Option<Arc<Ahead>>) {
        for _ in 0..1000 {
            let (t, work) = post();
            if work.is_some() || width() < 2 {
                return (t, work);
            }
            thread::sleep(Duration::from_millis(1));
        }
        panic!("the posting slot stayed taken for a second");
    }

    /// Blocks of posted work, each counted where it ran: (on the posting thread, elsewhere).
    fn post_counted(blocks: usize) -> (Arc<[AtomicUsize]>, Arc<AtomicUsize>, Option<Arc<Ahead>>) {
        let hits: Arc<[AtomicUsize]> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
        let elsewhere = Arc::new(AtomicUsize::new(0));
        let poster = thread::current().id();
        let (h, e) = (hits.clone(), elsewhere.clone());
        // SAFETY: the blocks write through no raw pointer (only the `Arc`s they own).
        let work = unsafe {
            Ahead::post(blocks, Box::new(move |i| {
                h[i].fetch_add(1, SeqCst);
                if thread::current().id() != poster {
                    e.fetch_add(1, SeqCst);
                }
                thread::sleep(Duration::from_micros(50));
            }))
        };
        (hits, elsewhere, work)
    }

    #[test]
    fn posted_work_is_done_once_and_partly_by_the_helpers() {
        let mut helped = false;
        for _ in 0..20 {
            run(2, &|_| {}); // wakes the helpers, which then spin for a while
            let ((hits, elsewhere), work) = post_when_free(|| {
                let (h, e, w) = post_counted(40);
                ((h, e), w)
            });
            let Some(work) = work else {
                assert_eq!(width(), 1, "work is posted wherever there are helpers");
                return;
            };
            // A loaded machine may not schedule the spinning helper at once: give it up to 10 ms.
            for _ in 0..10 {
                thread::sleep(Duration::from_millis(1));
                if elsewhere.load(SeqCst) > 0 {
                    break;
                }
            }
            // Counted before `finish`, which runs what is left on the team itself.
            helped |= elsewhere.load(SeqCst) > 0;
            work.finish();
            assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "every block exactly once");
            if helped {
                break;
            }
        }
        assert!(helped, "the helpers never took a block of posted work");
    }

    #[test]
    fn one_piece_of_work_is_posted_at_a_time() {
        let (_, first) = post_when_free(|| ((), post_counted(3).2));
        let (hits, _, second) = post_counted(3);
        if let Some(first) = first {
            assert!(second.is_none(), "a second piece of work while the first is posted");
            first.finish();
            let (_, third) = post_when_free(|| ((), post_counted(3).2));
            third.expect("posting again once the first is finished").finish();
        }
        assert!(hits.iter().all(|h| h.load(SeqCst) == 0));
    }

    #[test]
    fn a_panic_in_posted_work_reaches_finish_and_not_settle() {
        // SAFETY: the blocks write nothing.
        let post = || unsafe { Ahead::post(4, Box::new(|i| assert_ne!(i, 2, "block 2 fails"))) };
        let (_, work) = post_when_free(|| ((), post()));
        let Some(work) = work else {
            return assert_eq!(width(), 1);
        };
        work.settle();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.finish()));
        assert!(caught.is_err(), "finish re-raises the block's panic");
    }
}
