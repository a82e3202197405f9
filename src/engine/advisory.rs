//! Advisory locks: locks on 64-bit keys that applications take and
//! release themselves (PostgreSQL's `pg_advisory_lock` family; migration
//! tools and job queues use them to run something once). A lock is held
//! by a session until it releases it or disconnects, or, for the `_xact_`
//! forms, until its transaction ends. Locks are re-entrant: a session that
//! takes a key twice releases it twice. Exclusive locks conflict with any
//! lock of another session; shared locks only with exclusive ones.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A lock's key: one bigint, or two integers (a key space of its own, as
/// in PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey {
    pub value: i64,
    pub pair: bool,
}

impl LockKey {
    pub fn single(value: i64) -> LockKey {
        LockKey { value, pair: false }
    }

    pub fn pair(high: i32, low: i32) -> LockKey {
        LockKey {
            value: ((high as i64) << 32) | (low as u32 as i64),
            pair: true,
        }
    }
}

/// Who holds a lock: a session, for itself or for its open
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The session (`SessionInfo::id`): locks of one session never
    /// block each other.
    pub session: u64,
    /// Its pid, as `pg_locks` shows it.
    pub pid: i32,
    pub transaction: bool,
}

/// One held lock, as `pg_locks` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldLock {
    pub key: LockKey,
    pub pid: i32,
    pub shared: bool,
    pub granted: bool,
}

#[derive(Debug, Default)]
struct Entry {
    /// How many times each holder took the key exclusively.
    exclusive: HashMap<Holder, u32>,
    shared: HashMap<Holder, u32>,
}

impl Entry {
    fn blocks(&self, session: u64, shared: bool) -> bool {
        let other = |holders: &HashMap<Holder, u32>| holders.keys().any(|h| h.session != session);
        other(&self.exclusive) || (!shared && other(&self.shared))
    }

    fn is_empty(&self) -> bool {
        self.exclusive.is_empty() && self.shared.is_empty()
    }
}

/// Every advisory lock of a database.
#[derive(Debug, Default)]
pub struct AdvisoryLocks {
    locks: Mutex<HashMap<LockKey, Entry>>,
    /// Sessions waiting for a key, for pg_locks: (key, who, shared).
    waiting: Mutex<Vec<(LockKey, Holder, bool)>>,
    released: Condvar,
}

/// Why a wait for a lock ended without it.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitEnded {
    /// The statement was cancelled or timed out.
    Stopped,
}

impl AdvisoryLocks {
    /// Takes `key` if no other session's lock conflicts.
    pub fn try_lock(&self, key: LockKey, holder: Holder, shared: bool) -> bool {
        let mut locks = self.locks.lock();
        let entry = locks.entry(key).or_default();
        if entry.blocks(holder.session, shared) {
            if entry.is_empty() {
                locks.remove(&key);
            }
            return false;
        }
        let holders = if shared {
            &mut entry.shared
        } else {
            &mut entry.exclusive
        };
        *holders.entry(holder).or_default() += 1;
        true
    }

    /// Takes `key`, waiting for other sessions to release it; gives up
    /// when `stopped()` says the statement was cancelled.
    pub fn lock(
        &self,
        key: LockKey,
        holder: Holder,
        shared: bool,
        stopped: impl Fn() -> bool,
    ) -> Result<(), WaitEnded> {
        if self.try_lock(key, holder, shared) {
            return Ok(());
        }
        self.waiting.lock().push((key, holder, shared));
        let result = loop {
            if stopped() {
                break Err(WaitEnded::Stopped);
            }
            {
                let mut locks = self.locks.lock();
                self.released
                    .wait_until(&mut locks, Instant::now() + Duration::from_millis(50));
            }
            if self.try_lock(key, holder, shared) {
                // Stopped meanwhile (the session may be gone, its locks
                // already released): not taken after all.
                if stopped() {
                    self.unlock(key, holder, shared);
                    break Err(WaitEnded::Stopped);
                }
                break Ok(());
            }
        };
        let mut waiting = self.waiting.lock();
        if let Some(at) = waiting.iter().position(|w| *w == (key, holder, shared)) {
            waiting.remove(at);
        }
        result
    }

    /// Releases one hold of `key`; false (PostgreSQL warns) when the
    /// holder had none.
    pub fn unlock(&self, key: LockKey, holder: Holder, shared: bool) -> bool {
        let mut locks = self.locks.lock();
        let Some(entry) = locks.get_mut(&key) else {
            return false;
        };
        let holders = if shared {
            &mut entry.shared
        } else {
            &mut entry.exclusive
        };
        let Some(count) = holders.get_mut(&holder) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            holders.remove(&holder);
        }
        if entry.is_empty() {
            locks.remove(&key);
        }
        drop(locks);
        self.released.notify_all();
        true
    }

    /// Releases every lock `holder` has (session end, transaction end,
    /// `pg_advisory_unlock_all`).
    pub fn unlock_all(&self, holder: Holder) {
        let mut locks = self.locks.lock();
        let mut any = false;
        locks.retain(|_, entry| {
            any |= entry.exclusive.remove(&holder).is_some();
            any |= entry.shared.remove(&holder).is_some();
            !entry.is_empty()
        });
        drop(locks);
        if any {
            self.released.notify_all();
        }
    }

    /// Every lock held, and every wait, for `pg_locks`.
    pub fn list(&self) -> Vec<HeldLock> {
        let mut out = Vec::new();
        for (key, entry) in self.locks.lock().iter() {
            for (holders, shared) in [(&entry.exclusive, false), (&entry.shared, true)] {
                let mut pids: Vec<i32> = holders.keys().map(|h| h.pid).collect();
                pids.sort_unstable();
                pids.dedup();
                out.extend(pids.into_iter().map(|pid| HeldLock {
                    key: *key,
                    pid,
                    shared,
                    granted: true,
                }));
            }
        }
        for (key, holder, shared) in self.waiting.lock().iter() {
            out.push(HeldLock {
                key: *key,
                pid: holder.pid,
                shared: *shared,
                granted: false,
            });
        }
        out.sort_by_key(|l| (l.key, l.pid, !l.granted));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Holder = Holder {
        session: 1,
        pid: 1,
        transaction: false,
    };
    const B: Holder = Holder {
        session: 2,
        pid: 2,
        transaction: false,
    };
    const ONE: LockKey = LockKey {
        value: 1,
        pair: false,
    };
    const SEVEN: LockKey = LockKey {
        value: 7,
        pair: false,
    };

    #[test]
    fn a_pair_of_integers_is_a_key_space_of_its_own() {
        assert_ne!(LockKey::pair(0, 7), SEVEN);
        assert_eq!(LockKey::pair(1, -1).value, (1i64 << 32) | 0xffff_ffff);
    }

    #[test]
    fn exclusive_and_shared_conflict_across_sessions_only() {
        let locks = AdvisoryLocks::default();
        assert!(locks.try_lock(SEVEN, A, false));
        assert!(locks.try_lock(SEVEN, A, false), "re-entrant");
        assert!(
            locks.try_lock(SEVEN, A, true),
            "a session never blocks itself"
        );
        assert!(!locks.try_lock(SEVEN, B, true));
        assert!(locks.unlock(SEVEN, A, false));
        assert!(!locks.try_lock(SEVEN, B, false), "still held once");
        assert!(locks.unlock(SEVEN, A, false));
        assert!(locks.try_lock(SEVEN, B, true), "A only shares now");
        assert!(
            !locks.unlock(SEVEN, B, false),
            "B holds it shared, not exclusively"
        );
        locks.unlock_all(A);
        locks.unlock_all(B);
        assert!(locks.list().is_empty());
    }

    #[test]
    fn a_wait_ends_when_the_lock_is_released_or_the_statement_stops() {
        let locks = std::sync::Arc::new(AdvisoryLocks::default());
        assert!(locks.try_lock(ONE, A, false));
        assert_eq!(locks.lock(ONE, B, false, || true), Err(WaitEnded::Stopped));
        let waiter = {
            let locks = locks.clone();
            std::thread::spawn(move || locks.lock(ONE, B, false, || false))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(locks.list().iter().any(|l| l.pid == 2 && !l.granted));
        locks.unlock_all(A);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(
            locks.list(),
            vec![HeldLock {
                key: ONE,
                pid: 2,
                shared: false,
                granted: true
            }]
        );
    }
}
