//! Subscriptions: insert, lookup, the workspace's current subscription and compare-and-set updates.

use billing_domain::error::StoreError;
use billing_domain::ids::{ProcessorId, SubscriptionId};
use billing_domain::ports::SubscriptionRepository;
use billing_domain::subscription::SubscriptionStatus::{Active, Canceled, IncompleteExpired, PastDue};
use billing_store::Store;

use crate::helpers::{at, now, subscription, ws_id};

both!(insert_get_and_duplicate, |store: Store| async move {
    let repo: &dyn SubscriptionRepository = &store;
    let sub = subscription("sub_1", "team_1", Active, 10);
    repo.insert(&sub, now()).await.unwrap();
    let stored = repo.get(&sub.processor, &sub.id).await.unwrap();
    assert_eq!(stored, Some(sub.clone()));
    assert!(matches!(repo.insert(&sub, now()).await, Err(StoreError::Duplicate(_))));
    let other_processor = repo.get(&ProcessorId::new("stripe"), &sub.id).await.unwrap();
    assert_eq!(other_processor, None);
});

both!(current_prefers_live_then_latest_then_greatest_id, |store: Store| async move {
    let repo: &dyn SubscriptionRepository = &store;
    assert_eq!(repo.current_for_workspace(&ws_id("team_1")).await.unwrap(), None);

    repo.insert(&subscription("sub_old", "team_1", Canceled, 500), now()).await.unwrap();
    assert_eq!(
        repo.current_for_workspace(&ws_id("team_1")).await.unwrap().unwrap().id,
        SubscriptionId::new("sub_old"),
        "a terminal subscription is still the current one when it is the only one"
    );
    repo.insert(&subscription("sub_a", "team_1", Active, 10), now()).await.unwrap();
    repo.insert(&subscription("sub_b", "team_1", PastDue, 20), now()).await.unwrap();
    repo.insert(&subscription("sub_x", "team_1", IncompleteExpired, 900), now()).await.unwrap();
    repo.insert(&subscription("sub_z", "team_2", Active, 1000), now()).await.unwrap();
    let current = repo.current_for_workspace(&ws_id("team_1")).await.unwrap().unwrap();
    assert_eq!(current.id, SubscriptionId::new("sub_b"), "latest live one wins");

    // Same status time: the greatest id, compared byte-wise on both backends.
    repo.insert(&subscription("sub_c", "team_1", Active, 20), now()).await.unwrap();
    repo.insert(&subscription("sub_C", "team_1", Active, 20), now()).await.unwrap();
    let current = repo.current_for_workspace(&ws_id("team_1")).await.unwrap().unwrap();
    assert_eq!(current.id, SubscriptionId::new("sub_c"));
});

both!(update_is_compare_and_set, |store: Store| async move {
    let repo: &dyn SubscriptionRepository = &store;
    let sub = subscription("sub_1", "team_1", Active, 10);
    repo.insert(&sub, now()).await.unwrap();

    let mut next = sub.clone();
    next.status = PastDue;
    next.status_at = at(20);
    next.terms.cancel_at_period_end = true;
    next.terms.quantity = 7;
    next.version = 1;
    repo.update(&next, 0, now()).await.unwrap();
    assert_eq!(repo.get(&sub.processor, &sub.id).await.unwrap(), Some(next.clone()));

    let mut stale = sub.clone();
    stale.version = 1;
    assert!(matches!(repo.update(&stale, 0, now()).await, Err(StoreError::Conflict(_))));
    assert_eq!(repo.get(&sub.processor, &sub.id).await.unwrap(), Some(next));

    let ghost = subscription("sub_ghost", "team_1", Active, 10);
    assert!(matches!(repo.update(&ghost, 0, now()).await, Err(StoreError::Conflict(_))));
});
