//! Kept crates in place of [`super::team`], to measure the team against them
//! (`scripts/team_compare.sh`, docs/performance.md). Built only with the `team-alternatives`
//! feature; `D2L_MLP_TEAM` picks one for the whole process, read once.
//!
//! Each runs the blocks the kernels ask for, every one exactly once, and only the thread that
//! runs a block changes: the bits stay the team's on any thread count. [`super::team::width`]
//! still sizes the blocks, so each alternative gets the same number of threads as the team
//! (the caller and `width() - 1` others). Threads claim blocks from one counter, as the team's
//! do, so a thread the machine holds up takes fewer. Work posted ahead ([`super::team::Ahead`])
//! is the team's alone: under an alternative the loader builds each batch when asked, split
//! the same way.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// The environment variable that picks the scheduler.
pub const ENV: &str = "D2L_MLP_TEAM";

/// Who runs a split's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    /// The engine's own team, work ahead included (the default).
    Team,
    /// The team without work posted ahead: the loader builds each batch when asked.
    TeamNoAhead,
    /// `rayon::join` on the current pool (training runs on one of its threads).
    Rayon,
    /// As `Rayon`, with the pool's other threads kept awake between splits: each spins in
    /// `rayon::yield_now` (which steals) for as long as the team's helpers spin.
    RayonAwake,
    /// chili 0.2's heartbeat scheduler (its global pool: one thread fewer than the cores).
    Chili,
    /// forte 1.0's heartbeat scheduler (a pool of one thread fewer than the cores).
    Forte,
}

impl Scheduler {
    pub const ALL: [Scheduler; 6] = [Self::Team, Self::TeamNoAhead, Self::Rayon, Self::RayonAwake, Self::Chili, Self::Forte];

    pub fn name(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::TeamNoAhead => "team-noahead",
            Self::Rayon => "rayon",
            Self::RayonAwake => "rayon-awake",
            Self::Chili => "chili",
            Self::Forte => "forte",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// The scheduler `D2L_MLP_TEAM` names (unset or empty: the team), or why its value is refused.
pub fn chosen() -> Result<Scheduler, String> {
    static CHOSEN: OnceLock<Result<Scheduler, String>> = OnceLock::new();
    CHOSEN
        .get_or_init(|| match std::env::var(ENV) {
            Ok(v) if !v.is_empty() => Scheduler::parse(&v).ok_or_else(|| {
                let names: Vec<_> = Scheduler::ALL.iter().map(|k| k.name()).collect();
                format!("{ENV}={v} is not a scheduler: use one of {}", names.join(", "))
            }),
            _ => Ok(Scheduler::Team),
        })
        .clone()
}

/// The chosen scheduler; a refused value counts as the team (`bench` refuses it first).
fn current() -> Scheduler {
    chosen().unwrap_or(Scheduler::Team)
}

/// [`super::team::run`]'s hook: whether an alternative ran the blocks.
pub(super) fn divert(blocks: usize, block: &(dyn Fn(usize) + Sync)) -> bool {
    match current() {
        Scheduler::Team | Scheduler::TeamNoAhead => false,
        other => {
            run_on(other, blocks, block);
            true
        }
    }
}

/// [`super::team::Ahead::post`]'s hook: whether work may be posted ahead.
pub(super) fn ahead_allowed() -> bool {
    current() == Scheduler::Team
}

/// `block(i)` for every `i` in `0..blocks`, each exactly once, on `scheduler`'s threads; a
/// panic in a block is re-raised once all are done. `Team` and `TeamNoAhead` are
/// [`super::team::run`] (which itself follows `D2L_MLP_TEAM`: leave it unset to compare).
pub fn run_on(scheduler: Scheduler, blocks: usize, block: &(dyn Fn(usize) + Sync)) {
    let threads = blocks.min(super::team::width());
    if matches!(scheduler, Scheduler::Team | Scheduler::TeamNoAhead) {
        return super::team::run(blocks, block);
    }
    if threads < 2 {
        return (0..blocks).for_each(block);
    }
    let next = AtomicUsize::new(0);
    let claim = || claim(&next, blocks, block);
    let outcome = match scheduler {
        Scheduler::Rayon => on_rayon(threads, &claim),
        Scheduler::RayonAwake => {
            keep_rayon_awake();
            on_rayon(threads, &claim)
        }
        Scheduler::Chili => on_chili(threads, &claim),
        Scheduler::Forte => on_forte(threads, &claim),
        Scheduler::Team | Scheduler::TeamNoAhead => unreachable!("handled above"),
    };
    if let Err(payload) = outcome {
        std::panic::resume_unwind(payload);
    }
}

type Outcome = Result<(), Box<dyn Any + Send>>;

/// Run blocks claimed from `next` until all are taken. A panic is caught and returned, so that
/// no scheduler unwinds through its own frames.
fn claim(next: &AtomicUsize, blocks: usize, block: &(dyn Fn(usize) + Sync)) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        loop {
            let i = next.fetch_add(1, SeqCst);
            if i >= blocks {
                return;
            }
            block(i);
        }
    }))
}

/// The first of two outcomes' panics.
fn first(a: Outcome, b: Outcome) -> Outcome {
    a.and(b)
}

fn on_rayon(threads: usize, claim: &(dyn Fn() -> Outcome + Sync)) -> Outcome {
    if threads < 2 {
        return claim();
    }
    let (a, b) = rayon::join(|| on_rayon(threads - 1, claim), claim);
    first(a, b)
}

/// How long the pool's other threads look for work after a split before rayon may put them
/// to sleep: the team's spin.
const AWAKE: Duration = Duration::from_millis(2);

/// Spinners running on the pool (one per other thread), or 0 when they are all back.
static SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// Make sure the current pool's other threads are looking for work: where they have stopped,
/// broadcast a job that steals work (`rayon::yield_now`) until none has come for [`AWAKE`].
/// Rayon has no setting for how long an idle thread stays awake; this is the nearest.
fn keep_rayon_awake() {
    let Some(me) = rayon::current_thread_index() else {
        return;
    };
    let others = rayon::current_num_threads() - 1;
    if others == 0 || SPINNERS.compare_exchange(0, others, SeqCst, SeqCst).is_err() {
        return;
    }
    rayon::spawn_broadcast(move |ctx| {
        if ctx.index() == me {
            return;
        }
        let mut idle_since = Instant::now();
        while idle_since.elapsed() < AWAKE {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => idle_since = Instant::now(),
                _ => {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
            }
        }
        SPINNERS.fetch_sub(1, SeqCst);
    });
}

thread_local! {
    /// This thread's chili scope (a registration with the pool's heartbeat), made once.
    static CHILI: RefCell<Option<chili::Scope<'static>>> = const { RefCell::new(None) };
    /// Whether this thread is running a chili block: a split inside one runs on this thread.
    static IN_CHILI_BLOCK: Cell<bool> = const { Cell::new(false) };
}

fn on_chili(threads: usize, claim: &(dyn Fn() -> Outcome + Sync)) -> Outcome {
    if IN_CHILI_BLOCK.get() {
        return claim();
    }
    CHILI.with(|cell| {
        let Ok(mut scope) = cell.try_borrow_mut() else {
            return claim();
        };
        let scope = scope.get_or_insert_with(chili::Scope::global);
        chili_split(scope, threads, claim)
    })
}

/// chili's `join(a, b)` queues `a` and runs `b` here; it hands the oldest queued job to another
/// thread only when a queued job starts after a heartbeat (100 us apart). So `b` starts with one
/// (an empty job beside it); otherwise a split with no joins inside its blocks would never
/// leave this thread. Every join checks the heartbeat (chili's `join` checks one in 64).
fn chili_split(scope: &mut chili::Scope<'_>, threads: usize, claim: &(dyn Fn() -> Outcome + Sync)) -> Outcome {
    let in_block = || {
        IN_CHILI_BLOCK.set(true);
        let outcome = claim();
        IN_CHILI_BLOCK.set(false);
        outcome
    };
    if threads < 2 {
        return in_block();
    }
    let (a, b) = scope.join_with_heartbeat_every::<1, _, _, _, _>(
        |s| chili_split(s, threads - 1, claim),
        |s| s.join_with_heartbeat_every::<1, _, _, _, _>(|_| in_block(), |_| ()).0,
    );
    first(a, b)
}

/// forte's pool: one thread fewer than the cores, the caller joining it for each split (as a
/// temporary member, which costs the activation of a worker each time: the latency example
/// measures it).
static FORTE: forte::ThreadPool = forte::ThreadPool::new();

fn on_forte(threads: usize, claim: &(dyn Fn() -> Outcome + Sync)) -> Outcome {
    static SIZED: std::sync::Once = std::sync::Once::new();
    SIZED.call_once(|| {
        FORTE.resize_to_available();
    });
    FORTE.with_worker(|w| forte_split(w, threads, claim))
}

/// forte's `join(a, b)` queues `a` and runs `b` here, and shares `a` at a heartbeat only if
/// code in `b` asks (`promote`); the blocks never do, so `b` shares `a` first (`share_now`,
/// forte's call for work known to be long enough).
fn forte_split(worker: &forte::Worker, threads: usize, claim: &(dyn Fn() -> Outcome + Sync)) -> Outcome {
    if threads < 2 {
        return claim();
    }
    let (a, b) = worker.join(
        |w| forte_split(w, threads - 1, claim),
        |w| {
            w.share_now();
            claim()
        },
    );
    first(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheduler_runs_every_block_once() {
        for scheduler in Scheduler::ALL {
            for blocks in [1, 2, 3, 8] {
                let hits: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
                for _ in 0..50 {
                    run_on(scheduler, blocks, &|i| {
                        hits[i].fetch_add(1, SeqCst);
                    });
                }
                assert!(hits.iter().all(|h| h.load(SeqCst) == 50), "{scheduler:?}, {blocks} blocks");
            }
        }
    }

    #[test]
    fn a_split_inside_a_block_runs() {
        for scheduler in Scheduler::ALL {
            let total = AtomicUsize::new(0);
            run_on(scheduler, 4, &|_| {
                run_on(scheduler, 3, &|_| {
                    total.fetch_add(1, SeqCst);
                })
            });
            assert_eq!(total.load(SeqCst), 12, "{scheduler:?}");
        }
    }

    #[test]
    fn a_panic_in_a_block_reaches_the_caller() {
        for scheduler in Scheduler::ALL {
            let caught = std::panic::catch_unwind(|| run_on(scheduler, 4, &|i| assert_ne!(i, 2, "block 2 fails")));
            assert!(caught.is_err(), "{scheduler:?}");
            // and the scheduler still works afterwards
            let total = AtomicUsize::new(0);
            run_on(scheduler, 4, &|_| {
                total.fetch_add(1, SeqCst);
            });
            assert_eq!(total.load(SeqCst), 4, "{scheduler:?}");
        }
    }

    #[test]
    fn names_round_trip_and_a_wrong_one_is_refused() {
        for scheduler in Scheduler::ALL {
            assert_eq!(Scheduler::parse(scheduler.name()), Some(scheduler));
        }
        assert_eq!(Scheduler::parse("openmp"), None);
    }
}
