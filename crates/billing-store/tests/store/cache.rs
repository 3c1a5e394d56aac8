//! The billing-state cache: served from memory, never staler than what this process committed, and told of other
//! processes' commits through PostgreSQL.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use billing_domain::ids::{PlanId, ProcessorId};
use billing_domain::ports::{
    BillingStateReader, BillingSubject, PlacedEvent, SubscriptionRepository, UnitOfWork, UsageEvent, UsageRepository,
    WorkspaceRepository,
};
use billing_domain::subscription::SubscriptionStatus::{Active, Canceled};
use billing_domain::usage::{UsageRange, UsageTotals};
use billing_store::{CacheSettings, CacheStats, Store};

use crate::helpers::{
    Backend, at, create_postgres_database, drop_postgres_database, now, run, subscription, workspace, ws_id,
};

/// A long max age, so only invalidation (not ageing) can make a change visible.
fn settings() -> CacheSettings {
    CacheSettings { capacity: NonZeroUsize::new(100).unwrap(), max_age: Duration::from_secs(600) }
}

both!(reads_are_served_from_memory_and_writes_are_seen_at_once, |store: Store| async move {
    let cached = store.clone().with_cache(settings());
    assert!(cached.listening(std::time::Duration::from_secs(10)).await, "the cache hears other processes");
    let id = ws_id("team_1");
    assert_eq!(cached.billing_state(&id).await.unwrap(), None, "not there yet");
    WorkspaceRepository::insert(&cached, &workspace("team_1")).await.unwrap();
    let state = cached.billing_state(&id).await.unwrap().expect("created: the remembered absence was dropped");
    assert_eq!(state.subscription, None);
    let again = cached.billing_state(&id).await.unwrap().unwrap();
    assert_eq!(again, state);
    assert_eq!(cached.cache_stats(), Some(CacheStats { hits: 1, misses: 2 }));

    // A pool write (the trial) and a transaction (subscription, credits) are each seen by the next read.
    assert!(cached.start_trial(&id, &PlanId::new("pro"), at(100), at(1)).await.unwrap());
    assert_eq!(cached.billing_state(&id).await.unwrap().unwrap().workspace.trial_ends_at, Some(at(100)));
    let tx = UnitOfWork::begin(&cached).await.unwrap();
    tx.lock(&BillingSubject::Workspace(id.clone())).await.unwrap();
    tx.subscriptions().insert(&subscription("sub_1", "team_1", Active, 1), now()).await.unwrap();
    assert!(tx.workspaces().grant_credits(&id, 10, "grant:a", at(2)).await.unwrap());
    tx.commit().await.unwrap();
    let state = cached.billing_state(&id).await.unwrap().unwrap();
    assert_eq!(state.subscription.map(|s| s.status), Some(Active));
    assert_eq!(state.workspace.credit_balance, 10);

    // A rolled-back transaction changes nothing, in the database or in the cache.
    let tx = UnitOfWork::begin(&cached).await.unwrap();
    let current = tx.subscriptions().get(&ProcessorId::new("sandbox"), &"sub_1".into()).await.unwrap().unwrap();
    let ended =
        billing_domain::subscription::Subscription { status: Canceled, version: current.version + 1, ..current };
    tx.subscriptions().update(&ended, 0, now()).await.unwrap();
    drop(tx);
    assert_eq!(cached.billing_state(&id).await.unwrap().unwrap().subscription.map(|s| s.status), Some(Active));
});

both!(usage_totals_are_cached_per_period_and_dropped_when_usage_is_recorded, |store: Store| async move {
    let cached = store.clone().with_cache(settings());
    assert!(cached.listening(std::time::Duration::from_secs(10)).await, "the cache hears other processes");
    let id = ws_id("team_1");
    WorkspaceRepository::insert(&cached, &workspace("team_1")).await.unwrap();
    let event = |n: i64| UsageEvent {
        id: format!("e{n}"),
        workspace_id: id.clone(),
        metric: "alerts".into(),
        quantity: 1.into(),
        at: at(10 + n),
    };
    let range = UsageRange { start: at(0), end: at(100) };
    let placed = |n: i64| [PlacedEvent { event: event(n), period: range }];
    let alerts = |totals: UsageTotals| totals["alerts"].sum;
    cached.record(&placed(1), now()).await.unwrap();
    assert_eq!(alerts(cached.totals(&id, range).await.unwrap()), 1.into());
    let before = cached.cache_stats().unwrap();
    assert_eq!(alerts(cached.totals(&id, range).await.unwrap()), 1.into());
    assert_eq!(cached.cache_stats().unwrap().hits, before.hits + 1, "the second read came from memory");
    cached.billing_state(&id).await.unwrap();
    cached.record(&placed(2), now()).await.unwrap();
    assert_eq!(alerts(cached.totals(&id, range).await.unwrap()), 2.into(), "recording dropped the totals");
    let before = cached.cache_stats().unwrap();
    assert!(cached.billing_state(&id).await.unwrap().is_some());
    assert_eq!(cached.cache_stats().unwrap().hits, before.hits + 1, "usage alone keeps the workspace's state cached");
});

/// Two processes on one database, each with its own cache (here: two stores, two pools). A commit through one is
/// seen by the other through PostgreSQL's notification, long before its entries would age out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_by_another_process_reaches_this_cache_on_postgres() {
    let (url, name) = create_postgres_database().await;
    let writer = billing_store::connect(&url).await.unwrap();
    writer.migrate().await.unwrap();
    let reader = billing_store::connect(&url).await.unwrap().with_cache(settings());
    let id = ws_id("team_1");
    WorkspaceRepository::insert(&writer, &workspace("team_1")).await.unwrap();
    // The reader's listener starts with its pool; it must be subscribed before the first change.
    assert!(reader.listening(Duration::from_secs(10)).await);
    assert_eq!(reader.billing_state(&id).await.unwrap().unwrap().subscription, None);
    assert_eq!(reader.billing_state(&id).await.unwrap().unwrap().subscription, None, "now cached");

    let tx = UnitOfWork::begin(&writer).await.unwrap();
    tx.lock(&BillingSubject::Workspace(id.clone())).await.unwrap();
    tx.subscriptions().insert(&subscription("sub_1", "team_1", Active, 1), now()).await.unwrap();
    tx.commit().await.unwrap();
    let started = Instant::now();
    loop {
        if reader.billing_state(&id).await.unwrap().unwrap().subscription.is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the other process's commit never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A pool write of the other process arrives too.
    writer.grant_credits(&id, 5, "grant:b", at(3)).await.unwrap();
    let started = Instant::now();
    while reader.billing_state(&id).await.unwrap().unwrap().workspace.credit_balance != 5 {
        assert!(started.elapsed() < Duration::from_secs(5), "the other process's grant never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = writer.close().await;
    let _ = reader.close().await;
    drop_postgres_database(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncached_read_answers_like_the_two_repositories() {
    run(Backend::Postgres, |store: Store| async move {
        let id = ws_id("team_1");
        WorkspaceRepository::insert(&store, &workspace("team_1")).await.unwrap();
        SubscriptionRepository::insert(&store, &subscription("sub_old", "team_1", Canceled, 1), now()).await.unwrap();
        SubscriptionRepository::insert(&store, &subscription("sub_new", "team_1", Active, 2), now()).await.unwrap();
        let state = store.billing_state(&id).await.unwrap().unwrap();
        assert_eq!(state.workspace, WorkspaceRepository::get(&store, &id).await.unwrap().unwrap());
        assert_eq!(state.subscription, store.current_for_workspace(&id).await.unwrap());
        assert_eq!(store.cache_stats(), None);
    })
    .await;
}
