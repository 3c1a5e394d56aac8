//! The in-process cache of billing state read by the hot path (SPEC §11): per workspace its [`BillingState`] and the
//! usage totals of one period. Bounded (LRU), with hit and miss counts.
//!
//! Freshness: this process invalidates a workspace right after a write to it commits, before the write returns
//! (see [`crate::changes`]); other processes' writes arrive as PostgreSQL notifications and invalidate within
//! milliseconds; and no entry is served once older than `max_age`, which bounds staleness even when a notification
//! is lost (or on SQLite, where another process may write the same file).
//!
//! A read that misses loads from the database and may only store what it loaded if nothing invalidated the
//! workspace meanwhile: every miss leaves a tombstone with a fresh stamp, every invalidation removes the entry,
//! and a load is stored only over the very tombstone it started from. A load can therefore never
//! put back a state older than a committed write.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use billing_domain::ids::WorkspaceId;
use billing_domain::ports::BillingState;
use billing_domain::usage::{UsageRange, UsageTotals};
use lru::LruCache;

/// The usage period an entry's totals are for.
type Period = UsageRange;

/// Cache sizing and freshness.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Workspaces kept at most; the least recently used go first.
    pub capacity: NonZeroUsize,
    /// No entry is served older than this: the bound on staleness across processes.
    pub max_age: Duration,
}

/// Hit and miss counts since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    stamp: u64,
    /// `Some(None)`: the workspace is known not to exist.
    state: Option<Part<Option<BillingState>>>,
    usage: Option<Part<(Period, UsageTotals)>>,
}

/// One cached part of an entry, with when the load that produced it started.
#[derive(Debug, Clone)]
struct Part<T> {
    value: T,
    loaded_at: Instant,
    /// When a reader was sent to refresh it ahead of expiry (only one at a time).
    refreshing_since: Option<Instant>,
}

/// What a load must present to store its result: the entry's stamp (no invalidation since) and when the load
/// started (the age its result gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    stamp: u64,
    started: Instant,
}

/// What a lookup found: the value, or a ticket to load it (a miss, or a refresh ahead of expiry).
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    Hit(T),
    Miss(Ticket),
}

/// The cache. Shared by every clone of a `Store`.
pub struct BillingCache {
    entries: Mutex<LruCache<WorkspaceId, Entry>>,
    max_age: Duration,
    stamps: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for BillingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingCache").field("max_age", &self.max_age).field("stats", &self.stats()).finish()
    }
}

impl BillingCache {
    pub fn new(settings: CacheSettings) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(settings.capacity)),
            max_age: settings.max_age,
            stamps: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats { hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed) }
    }

    pub(crate) fn state(&self, id: &WorkspaceId) -> Lookup<Option<BillingState>> {
        self.lookup(id, |entry| &mut entry.state, |_| true)
    }

    pub(crate) fn usage(&self, id: &WorkspaceId, period: Period) -> Lookup<UsageTotals> {
        self.lookup(id, |entry| &mut entry.usage, |(p, _)| *p == period).map(|(_, totals)| totals)
    }

    pub(crate) fn store_state(&self, id: &WorkspaceId, ticket: Ticket, state: Option<BillingState>) {
        self.store(id, ticket, |entry| &mut entry.state, state);
    }

    pub(crate) fn store_usage(&self, id: &WorkspaceId, ticket: Ticket, period: Period, totals: UsageTotals) {
        self.store(id, ticket, |entry| &mut entry.usage, (period, totals));
    }

    /// Forgets the workspace; a load that started before this stores nothing (its tombstone is gone). Writes to
    /// workspaces nobody reads add nothing, so they never push hot entries out.
    pub fn invalidate(&self, id: &WorkspaceId) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).pop(id);
    }

    /// Forgets the workspace's usage totals but keeps its state (only its usage changed); a usage load that
    /// started before this stores nothing.
    pub fn invalidate_usage(&self, id: &WorkspaceId) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.peek_mut(id) {
            entry.stamp = self.next_stamp();
            entry.usage = None;
        }
    }

    /// Forgets everything (a notification may have been lost).
    pub fn invalidate_all(&self) {
        // Stamps only grow, so clearing also voids every load in flight: none finds its tombstone.
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn next_stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A part younger than half of `max_age` is served; an older one still is, while one reader (the first to
    /// see it, then one per quarter of `max_age` should that reader fail) reloads it — so a workspace read
    /// steadily never expires and its readers never queue on the database together. Past `max_age` it is a miss.
    fn lookup<T: Clone>(
        &self,
        id: &WorkspaceId,
        part: impl Fn(&mut Entry) -> &mut Option<Part<T>>,
        matches: impl Fn(&T) -> bool,
    ) -> Lookup<T> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(id) {
            let stamp = entry.stamp;
            if let Some(cached) = part(entry).as_mut().filter(|c| matches(&c.value)) {
                let age = now.saturating_duration_since(cached.loaded_at);
                let refresh_due = age >= self.max_age / 2
                    && cached
                        .refreshing_since
                        .is_none_or(|since| now.saturating_duration_since(since) >= self.max_age / 4);
                if age < self.max_age && !refresh_due {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Hit(cached.value.clone());
                }
                if age < self.max_age {
                    cached.refreshing_since = Some(now);
                }
            }
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss(Ticket { stamp, started: now });
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let stamp = self.next_stamp();
        entries.put(id.clone(), Entry { stamp, state: None, usage: None });
        Lookup::Miss(Ticket { stamp, started: now })
    }

    /// Stores a load's result if nothing invalidated the workspace since its ticket was issued, aged from when the
    /// load started; a part loaded later already is kept.
    fn store<T>(&self, id: &WorkspaceId, ticket: Ticket, part: impl Fn(&mut Entry) -> &mut Option<Part<T>>, value: T) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(id)
            && entry.stamp == ticket.stamp
        {
            let slot = part(entry);
            if slot.as_ref().is_none_or(|cached| cached.loaded_at <= ticket.started) {
                *slot = Some(Part { value, loaded_at: ticket.started, refreshing_since: None });
            }
        }
    }
}

impl<T> Lookup<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Hit(value) => Lookup::Hit(f(value)),
            Lookup::Miss(ticket) => Lookup::Miss(ticket),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use billing_domain::usage::{MetricTotal, calendar_month};
    use billing_domain::workspace::Workspace;
    use rust_decimal::Decimal;

    use super::*;

    fn cache(max_age: Duration) -> BillingCache {
        BillingCache::new(CacheSettings { capacity: NonZeroUsize::new(2).unwrap(), max_age })
    }

    fn state(id: &str, credits: i64) -> Option<BillingState> {
        let workspace = Workspace { credit_balance: credits, ..billing_domain::testing::workspace(id) };
        Some(BillingState { workspace, subscription: None })
    }

    fn ws(id: &str) -> WorkspaceId {
        WorkspaceId::parse(id).unwrap()
    }

    fn miss<T: std::fmt::Debug>(lookup: Lookup<T>) -> Ticket {
        match lookup {
            Lookup::Miss(ticket) => ticket,
            Lookup::Hit(value) => panic!("expected a miss, got {value:?}"),
        }
    }

    #[test]
    fn a_loaded_state_is_served_until_invalidated() {
        let cache = cache(Duration::from_secs(60));
        let stamp = miss(cache.state(&ws("a")));
        cache.store_state(&ws("a"), stamp, state("a", 1));
        assert!(matches!(cache.state(&ws("a")), Lookup::Hit(Some(s)) if s.workspace.credit_balance == 1));
        cache.invalidate(&ws("a"));
        miss(cache.state(&ws("a")));
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 2 });
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_stored() {
        let cache = cache(Duration::from_secs(60));
        let stamp = miss(cache.state(&ws("a")));
        cache.invalidate(&ws("a")); // a write committed while the load ran
        cache.store_state(&ws("a"), stamp, state("a", 1));
        let again = miss(cache.state(&ws("a")));
        cache.store_state(&ws("a"), again, state("a", 2));
        assert!(matches!(cache.state(&ws("a")), Lookup::Hit(Some(s)) if s.workspace.credit_balance == 2));
    }

    #[test]
    fn a_load_that_raced_an_eviction_or_a_flush_is_not_stored() {
        let cache = cache(Duration::from_secs(60));
        let stamp = miss(cache.state(&ws("a")));
        cache.invalidate_all();
        cache.store_state(&ws("a"), stamp, state("a", 1));
        miss(cache.state(&ws("a")));
        let stamp = miss(cache.state(&ws("b")));
        miss(cache.state(&ws("c")));
        miss(cache.state(&ws("d"))); // capacity 2: b is evicted
        cache.store_state(&ws("b"), stamp, state("b", 1));
        miss(cache.state(&ws("b")));
    }

    #[test]
    fn entries_older_than_max_age_are_reloaded() {
        let cache = cache(Duration::from_millis(20));
        let stamp = miss(cache.state(&ws("a")));
        cache.store_state(&ws("a"), stamp, state("a", 1));
        std::thread::sleep(Duration::from_millis(30));
        miss(cache.state(&ws("a")));
    }

    #[test]
    fn one_reader_refreshes_an_entry_past_half_its_age_while_the_others_are_served() {
        let cache = cache(Duration::from_millis(200));
        let ticket = miss(cache.state(&ws("a")));
        cache.store_state(&ws("a"), ticket, state("a", 1));
        std::thread::sleep(Duration::from_millis(110));
        let refresh = miss(cache.state(&ws("a")));
        for _ in 0..3 {
            assert!(matches!(cache.state(&ws("a")), Lookup::Hit(Some(s)) if s.workspace.credit_balance == 1));
        }
        cache.store_state(&ws("a"), refresh, state("a", 2));
        std::thread::sleep(Duration::from_millis(110));
        // 220 ms after the first load, past its max_age, the refreshed value is still served (while one reader
        // refreshes it again).
        miss(cache.state(&ws("a")));
        assert!(matches!(cache.state(&ws("a")), Lookup::Hit(Some(s)) if s.workspace.credit_balance == 2));
        assert_eq!(cache.stats(), CacheStats { hits: 4, misses: 3 });
    }

    #[test]
    fn a_refresh_that_raced_an_invalidation_is_not_stored() {
        let cache = cache(Duration::from_millis(100));
        let ticket = miss(cache.state(&ws("a")));
        cache.store_state(&ws("a"), ticket, state("a", 1));
        std::thread::sleep(Duration::from_millis(60));
        let refresh = miss(cache.state(&ws("a")));
        cache.invalidate(&ws("a"));
        cache.store_state(&ws("a"), refresh, state("a", 1));
        miss(cache.state(&ws("a")));
    }

    #[test]
    fn usage_totals_are_kept_per_period_beside_the_state() {
        let cache = cache(Duration::from_secs(60));
        let may = calendar_month(2026, 5).unwrap();
        let june = calendar_month(2026, 6).unwrap();
        let stamp = miss(cache.state(&ws("a")));
        cache.store_state(&ws("a"), stamp, state("a", 1));
        let stamp = miss(cache.usage(&ws("a"), may));
        let three = MetricTotal::of_event(Decimal::from(3));
        cache.store_usage(&ws("a"), stamp, may, BTreeMap::from([("alerts".to_owned(), three)]));
        assert!(matches!(cache.usage(&ws("a"), may), Lookup::Hit(t) if t["alerts"] == three));
        assert!(matches!(cache.state(&ws("a")), Lookup::Hit(Some(_))), "the state is kept");
        miss(cache.usage(&ws("a"), june));
    }
}
