//! A small team of helper threads that split one piece of work (a matrix product, an SGD step,
//! a batch of images) into blocks with the calling thread.
//!
//! Why not rayon, which the rest of the program uses: a training step runs a parallel product
//! every few hundred microseconds, and between them rayon's idle workers go to sleep at once.
//! Waking one costs a large part of a product (docs/performance.md, "The measurements behind
//! the fast path"), so two threads gained little over one. These helpers spin (yielding the core
//! to any other runnable thread) for a couple of milliseconds before they sleep, as OpenMP's
//! workers do behind PyTorch, so back-to-back products find them awake.
//!
//! While they spin they also take blocks of work posted ahead ([`Ahead`]: the next batch), so
//! the step's serial parts (the loss, the Learner's bookkeeping) no longer leave a core idle.
//!
//! Blocks that write one buffer each take their own part of it from [`Chunks`], which hands out
//! each part once: no block can reach another's.

use std::marker::PhantomData;
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
/// closure and counter, which [`Team::run`] keeps alive until every helper has reported `DONE`.
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

/// The one piece of work posted for a team's helpers (one caller posts at a time: see
/// [`Ahead::post`]).
type Posted = Mutex<Option<Arc<Ahead>>>;

/// Helper threads and the work posted for them.
struct Team {
    slots: Vec<&'static Slot>,
    /// One caller at a time (tests and sweep workers may call from several threads); the others
    /// run their blocks themselves.
    busy: Mutex<()>,
    posted: &'static Posted,
}

/// The process's team: as many threads as rayon's global pool (`RAYON_NUM_THREADS`, else the
/// machine's cores), the caller included.
fn team() -> &'static Team {
    static TEAM: OnceLock<&'static Team> = OnceLock::new();
    TEAM.get_or_init(|| Team::new(global_threads().saturating_sub(1)))
}

/// The size of rayon's global pool, asked from a thread outside every pool (the first caller
/// may be a sweep worker inside a pool of its own).
fn global_threads() -> usize {
    thread::spawn(rayon::current_num_threads).join().unwrap_or(1)
}

impl Team {
    /// A team of `helpers` threads beside its callers, for the life of the process.
    fn new(helpers: usize) -> &'static Team {
        let posted: &'static Posted = Box::leak(Box::new(Mutex::new(None)));
        let slots = (0..helpers).filter_map(|i| spawn_helper(i, posted)).collect();
        Box::leak(Box::new(Team { slots, busy: Mutex::new(()), posted }))
    }

    /// See [`width`].
    fn width(&self) -> usize {
        #[cfg(test)]
        if let Some(w) = tests::WIDTH.get() {
            return w;
        }
        rayon::current_num_threads().clamp(1, self.slots.len() + 1)
    }
}

fn spawn_helper(i: usize, posted: &'static Posted) -> Option<&'static Slot> {
    let slot: &'static Slot = Box::leak(Box::new(Slot {
        state: AtomicU8::new(IDLE),
        sleeping: AtomicBool::new(false),
        panicked: AtomicBool::new(false),
        job: Mutex::new(None),
        thread: OnceLock::new(),
    }));
    let handle = thread::Builder::new().name(format!("kernel-{}", i + 1)).spawn(move || helper(slot, posted)).ok()?;
    slot.thread.set(handle.thread().clone()).ok()?;
    Some(slot)
}

fn helper(slot: &'static Slot, posted: &'static Posted) {
    loop {
        wait_for_work(slot, posted);
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
fn wait_for_work(slot: &Slot, posted: &Posted) {
    let mut began = Instant::now();
    while slot.state.compare_exchange(READY, RUNNING, SeqCst, SeqCst).is_err() {
        if began.elapsed() < SPIN {
            if Ahead::help(posted) {
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

/// A buffer cut into consecutive chunks of `chunk` elements (the last may be shorter) for the
/// blocks of one piece of work to write, one chunk each: [`Chunks::take`] hands each out once,
/// so two blocks never hold the same elements, whichever threads run them.
pub struct Chunks<'a, T> {
    base: *mut T,
    len: usize,
    chunk: usize,
    taken: Box<[AtomicBool]>,
    _buffer: PhantomData<&'a mut [T]>,
}

// SAFETY: a chunk goes to one taker only (`taken`), which may use it on any thread: what a
// `&mut [T]` allows, so `T` must be `Send`.
unsafe impl<T: Send> Sync for Chunks<'_, T> {}
// SAFETY: as for `Sync`.
unsafe impl<T: Send> Send for Chunks<'_, T> {}

impl<'a, T> Chunks<'a, T> {
    /// `buffer` in chunks of `chunk` elements (at least one).
    pub fn new(buffer: &'a mut [T], chunk: usize) -> Self {
        let chunk = chunk.max(1);
        let count = buffer.len().div_ceil(chunk);
        let taken = (0..count).map(|_| AtomicBool::new(false)).collect();
        Self { base: buffer.as_mut_ptr(), len: buffer.len(), chunk, taken, _buffer: PhantomData }
    }

    /// How many chunks there are.
    pub fn count(&self) -> usize {
        self.taken.len()
    }

    /// Chunk `i`, elements `i * chunk..` of the buffer. Panics if it was taken before.
    pub fn take(&self, i: usize) -> &'a mut [T] {
        assert!(!self.taken[i].swap(true, SeqCst), "chunk {i} taken twice");
        let start = i * self.chunk;
        let len = self.chunk.min(self.len - start);
        // SAFETY: chunk `i` lies inside the buffer, which is borrowed mutably for `'a`, and
        // `taken` hands it out once: no other reference to these elements exists.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(start), len) }
    }
}

/// How many blocks [`run`] can run at once from this thread: the current rayon pool's size
/// (a sweep worker's pool of one keeps to its thread), at most one more than the helpers.
pub fn width() -> usize {
    team().width()
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

/// `block(i)` for every `i` in `0..blocks`, each exactly once, on this thread and the team's
/// helpers (when they are free); see [`Team::run`].
pub fn run(blocks: usize, block: &(dyn Fn(usize) + Sync)) {
    #[cfg(feature = "team-alternatives")]
    if super::sched_alt::divert(blocks, block) {
        return;
    }
    team().run(blocks, block);
}

impl Team {
    /// `block(i)` for every `i` in `0..blocks`, each exactly once, on this thread and the helpers
    /// (when they are free). Blocks are claimed one at a time, so a thread that the machine holds
    /// up (another process, the batch thread) takes fewer of them instead of making the others
    /// wait. Returns when all are done; a panic in a block is re-raised.
    pub fn run(&self, blocks: usize, block: &(dyn Fn(usize) + Sync)) {
        // `busy` guards no data, only who posts: a panic re-raised by an earlier run (which
        // waited for its helpers first) leaves it poisoned but the team sound, so poison is not
        // "busy".
        let guard = match self.busy.try_lock() {
            _ if blocks < 2 => None,
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let Some(_guard) = guard else {
            (0..blocks).for_each(block);
            return;
        };
        self.run_on_helpers(blocks, block);
    }

    /// [`Team::run`] once this thread holds `busy`.
    fn run_on_helpers(&self, blocks: usize, block: &(dyn Fn(usize) + Sync)) {
        // SAFETY: lifetime erasure only. Every helper given this pointer reports DONE below,
        // before `block` can go out of scope; the pointer is never used after that.
        let erased: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(block) };
        let next = AtomicUsize::new(0);
        let helpers = &self.slots[..(blocks - 1).min(self.slots.len())];
        for slot in helpers {
            *slot.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job { block: erased, next: &next, blocks });
            slot.state.store(READY, SeqCst);
            if slot.sleeping.load(SeqCst)
                && let Some(t) = slot.thread.get()
            {
                t.unpark();
            }
        }
        // The helpers must be done with `block` before this function returns, even by a panic.
        let own = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| claim(&next, blocks, block)));
        let mut panicked = false;
        for slot in helpers {
            // A helper that has not started yet (asleep, or not scheduled) is not waited for:
            // all blocks are done, so its job is taken back.
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

    /// See [`Ahead::post`].
    ///
    /// # Safety
    /// As for [`Ahead::post`].
    unsafe fn post(&'static self, blocks: usize, block: Box<dyn Fn(usize) + Send + Sync>) -> Option<Arc<Ahead>> {
        if self.slots.is_empty() || self.width() < 2 {
            return None;
        }
        // `lock`, not `try_lock`: a spinning helper holds it only to clone the `Arc`, and a
        // failed `try_lock` would make this `None` for no reason the caller is told of.
        let mut posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        if posted.is_some() {
            return None;
        }
        let ahead = Arc::new(Ahead {
            team: self,
            block,
            blocks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        });
        *posted = Some(ahead.clone());
        Some(ahead)
    }
}

/// Work posted for the helpers to do while they would otherwise wait for the next product (the
/// next batch, built during this step's serial parts). They take one block at a time and look
/// for a product's job before each, so a product that starts waits for them one block at most.
/// Whoever posted the work calls [`Ahead::finish`] before using (or freeing) what it writes.
pub struct Ahead {
    team: &'static Team,
    block: Box<dyn Fn(usize) + Send + Sync>,
    blocks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
}

impl Ahead {
    /// Post `block(i)` for `i` in `0..blocks` for the team's idle helpers to run. `None` where
    /// this thread has no helpers (one core, a sweep worker's pool of one) or other work is
    /// posted: the caller then does the work itself.
    ///
    /// # Safety
    /// Whatever the blocks write through raw pointers must stay valid until [`Ahead::finish`]
    /// or [`Ahead::settle`] has returned, even if the caller panics first: keep it in a guard
    /// whose `Drop` settles (`engine::batches::Prefilled` is the one caller).
    pub unsafe fn post(blocks: usize, block: Box<dyn Fn(usize) + Send + Sync>) -> Option<Arc<Ahead>> {
        #[cfg(feature = "team-alternatives")]
        if !super::sched_alt::ahead_allowed() {
            return None;
        }
        // SAFETY: the caller's promise, passed on.
        unsafe { team().post(blocks, block) }
    }

    /// Run one block of the work posted in `posted`, if any is left: whether one ran.
    fn help(posted: &Posted) -> bool {
        let Some(ahead) = posted.try_lock().ok().and_then(|p| p.clone()) else {
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
            let mut posted = self.team.posted.lock().unwrap_or_else(|e| e.into_inner());
            if posted.as_ref().is_some_and(|p| Arc::ptr_eq(p, self)) {
                *posted = None;
            }
        }
        let left = self.blocks.saturating_sub(self.next.load(SeqCst));
        if left > 0 {
            self.team.run(left, &|_| {
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
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;

    thread_local! {
        /// [`width`] on this thread, for [`with_width`].
        pub(super) static WIDTH: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// `f()` with [`width`] saying `threads` on this thread: the kernels split their work as
    /// for that many threads, whatever the machine has (blocks left over run on this thread).
    pub(crate) fn with_width<R>(threads: usize, f: impl FnOnce() -> R) -> R {
        let before = WIDTH.replace(Some(threads));
        let out = f();
        WIDTH.set(before);
        out
    }

    /// A team of its own for one test: two helpers whatever the machine, and no other test
    /// posting to it or holding it.
    fn own_team() -> &'static Team {
        Team::new(2)
    }

    #[test]
    fn every_block_runs_exactly_once() {
        let team = own_team();
        for blocks in [1, 2, 3, 7] {
            let hits: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..200 {
                team.run(blocks, &|i| {
                    hits[i].fetch_add(1, SeqCst);
                });
            }
            assert!(hits.iter().all(|h| h.load(SeqCst) == 200), "{blocks} blocks");
        }
    }

    #[test]
    fn callers_on_many_threads_all_finish() {
        let team = own_team();
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        team.run(2, &|_| {
                            total.fetch_add(1, SeqCst);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(SeqCst), 4 * 100 * 2);
    }

    /// `team.run(2, ..)` whose first block (this thread's) waits until a helper has started the
    /// second: a helper certainly takes part, without a timed wait. This test's own team is
    /// never busy, so the blocks cannot fall back to running one after the other here.
    fn run_with_a_helper(team: &Team) -> thread::ThreadId {
        let (started, on) = (AtomicBool::new(false), Mutex::new(None));
        let me = thread::current().id();
        let _busy = team.busy.lock().unwrap_or_else(|e| e.into_inner());
        team.run_on_helpers(2, &|i| {
            if thread::current().id() != me {
                *on.lock().unwrap() = Some(thread::current().id());
                started.store(true, SeqCst);
            }
            while i == 0 && thread::current().id() == me && !started.load(SeqCst) {
                std::hint::spin_loop();
                thread::yield_now();
            }
        });
        on.into_inner().unwrap().expect("a helper ran a block")
    }

    #[test]
    fn a_panic_in_a_block_is_raised_and_the_team_stays_on() {
        let team = own_team();
        let caught = std::panic::catch_unwind(|| {
            team.run(4, &|i| {
                if i == 1 {
                    panic!("block 1 fails");
                }
            })
        });
        assert!(caught.is_err(), "the block's panic reaches the caller");
        assert_ne!(run_with_a_helper(team), thread::current().id(), "after a panic the team splits work again");
    }

    #[test]
    fn helpers_wake_after_sleeping() {
        let team = own_team();
        run_with_a_helper(team);
        // Every helper asleep: each announces it before it parks (no timed wait).
        for slot in &team.slots {
            while !slot.sleeping.load(SeqCst) {
                thread::yield_now();
            }
        }
        run_with_a_helper(team);
    }

    /// Blocks of posted work, each counted where it ran: (on the posting thread, elsewhere).
    fn post_counted(team: &'static Team, blocks: usize) -> (Arc<[AtomicUsize]>, Arc<AtomicUsize>, Option<Arc<Ahead>>) {
        let hits: Arc<[AtomicUsize]> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
        let elsewhere = Arc::new(AtomicUsize::new(0));
        let poster = thread::current().id();
        let (h, e) = (hits.clone(), elsewhere.clone());
        // SAFETY: the blocks write through no raw pointer (only the `Arc`s they own).
        let work = with_width(3, || unsafe {
            team.post(blocks, Box::new(move |i| {
                h[i].fetch_add(1, SeqCst);
                if thread::current().id() != poster {
                    e.fetch_add(1, SeqCst);
                }
            }))
        });
        (hits, elsewhere, work)
    }

    #[test]
    fn posted_work_is_done_once_and_partly_by_the_helpers() {
        let team = own_team();
        let (hits, elsewhere, work) = post_counted(team, 40);
        let work = work.expect("a team with helpers and nothing posted takes work");
        // A helper that has just run a block spins, and helps with posted work while it does:
        // give them jobs until one has taken a block (the first does unless the machine holds
        // the helper up past its spin; no timed wait).
        for _ in 0..10_000 {
            if elsewhere.load(SeqCst) > 0 {
                break;
            }
            run_with_a_helper(team);
        }
        // Counted before `finish`, which runs what is left on the team itself.
        let helped = elsewhere.load(SeqCst) > 0;
        work.finish();
        assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "every block exactly once");
        assert!(helped, "the helpers never took a block of posted work");
    }

    #[test]
    fn one_piece_of_work_is_posted_at_a_time() {
        let team = own_team();
        let first = post_counted(team, 3).2.expect("posted");
        let (hits, _, second) = post_counted(team, 3);
        assert!(second.is_none(), "a second piece of work while the first is posted");
        first.finish();
        post_counted(team, 3).2.expect("posting again once the first is finished").finish();
        assert!(hits.iter().all(|h| h.load(SeqCst) == 0));
    }

    #[test]
    fn a_panic_in_posted_work_reaches_finish_and_not_settle() {
        let team = own_team();
        // SAFETY: the blocks write nothing.
        let work = with_width(3, || unsafe { team.post(4, Box::new(|i| assert_ne!(i, 2, "block 2 fails"))) });
        let work = work.expect("posted");
        work.settle();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.finish()));
        assert!(caught.is_err(), "finish re-raises the block's panic");
    }

    #[test]
    fn each_chunk_is_taken_once_and_they_cover_the_buffer() {
        let mut buffer = vec![0u32; 10];
        let chunks = Chunks::new(&mut buffer, 4);
        assert_eq!(chunks.count(), 3);
        own_team().run(3, &|i| chunks.take(i).iter_mut().for_each(|v| *v = i as u32 + 1));
        let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| chunks.take(1).len()));
        assert!(twice.is_err(), "a chunk handed out twice");
        assert_eq!(buffer, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
        assert_eq!(Chunks::new(&mut [0u8; 0], 4).count(), 0);
    }
}
