//! Workspaces, trials, customer links and credits.

use billing_domain::error::StoreError;
use billing_domain::ids::{CustomerId, PlanId, ProcessorId};
use billing_domain::ports::{ConsumeOutcome, WorkspaceRepository};
use billing_domain::workspace::BillingDetails;
use billing_store::Store;

use crate::helpers::{at, workspace, ws_id};

both!(insert_get_and_duplicate, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    let ws = workspace("team_1");
    repo.insert(&ws).await.unwrap();
    assert_eq!(repo.get(&ws.id).await.unwrap(), Some(ws.clone()));
    assert!(matches!(repo.insert(&ws).await, Err(StoreError::Duplicate(_))));
    assert_eq!(repo.get(&ws_id("missing")).await.unwrap(), None);
});

both!(update_profile_keeps_billing_state, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    let ws = workspace("team_1");
    repo.insert(&ws).await.unwrap();
    assert!(repo.grant_credits(&ws.id, 5, "grant:1", at(1)).await.unwrap());
    assert!(repo.start_trial(&ws.id, &PlanId::new("pro"), at(100), at(2)).await.unwrap());

    let mut changed = ws.clone();
    changed.name = "Acme Renamed".into();
    changed.owner_email = billing_domain::email::Email::parse("new@acme.example").unwrap();
    changed.billing_details = BillingDetails::default();
    changed.updated_at = at(3);
    // Billing state in the argument must be ignored.
    changed.credit_balance = 999;
    changed.restricted = true;
    repo.update_profile(&changed).await.unwrap();

    let stored = repo.get(&ws.id).await.unwrap().unwrap();
    assert_eq!(stored.name, "Acme Renamed");
    assert_eq!(stored.owner_email.as_str(), "new@acme.example");
    assert_eq!(stored.billing_details, BillingDetails::default());
    assert_eq!(stored.updated_at, at(3));
    assert_eq!(stored.credit_balance, 5);
    assert!(!stored.restricted);
    assert_eq!(stored.trial_ends_at, Some(at(100)));

    let mut ghost = workspace("ghost");
    ghost.name = "Nobody".into();
    assert!(matches!(repo.update_profile(&ghost).await, Err(StoreError::Other(_))));
});

both!(trial_starts_once, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    let ws = workspace("team_1");
    repo.insert(&ws).await.unwrap();
    assert!(repo.start_trial(&ws.id, &PlanId::new("pro"), at(100), at(1)).await.unwrap());
    assert!(!repo.start_trial(&ws.id, &PlanId::new("enterprise"), at(200), at(2)).await.unwrap());
    let stored = repo.get(&ws.id).await.unwrap().unwrap();
    assert_eq!(stored.trial_plan, Some(PlanId::new("pro")));
    assert_eq!(stored.trial_ends_at, Some(at(100)));
    let missing = repo.start_trial(&ws_id("ghost"), &PlanId::new("pro"), at(100), at(1)).await;
    assert!(matches!(missing, Err(StoreError::Other(_))));
});

both!(concurrent_trial_starts_give_one_winner, |store: Store| async move {
    WorkspaceRepository::insert(&store, &workspace("team_1")).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.start_trial(&ws_id("team_1"), &PlanId::new(format!("plan_{i}")), at(100), at(1)).await.unwrap()
            })
        })
        .collect();
    let wins = futures::future::join_all(tasks).await.into_iter().filter(|won| *won.as_ref().unwrap()).count();
    assert_eq!(wins, 1);
});

both!(customer_links_are_idempotent_and_exclusive, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    for id in ["team_1", "team_2"] {
        repo.insert(&workspace(id)).await.unwrap();
    }
    let sandbox = ProcessorId::new("sandbox");
    let (cus_1, cus_2) = (CustomerId::new("cus_1"), CustomerId::new("cus_2"));
    let (team_1, team_2) = (ws_id("team_1"), ws_id("team_2"));

    assert!(repo.link_customer(&sandbox, &cus_1, &team_1, at(1)).await.unwrap());
    assert!(!repo.link_customer(&sandbox, &cus_1, &team_1, at(2)).await.unwrap());
    let customer_taken = repo.link_customer(&sandbox, &cus_1, &team_2, at(3)).await;
    assert!(matches!(customer_taken, Err(StoreError::Duplicate(_))));
    let workspace_taken = repo.link_customer(&sandbox, &cus_2, &team_1, at(3)).await;
    assert!(matches!(workspace_taken, Err(StoreError::Duplicate(_))));
    // Another processor has its own customers.
    let stripe = ProcessorId::new("stripe");
    assert!(repo.link_customer(&stripe, &cus_2, &team_1, at(4)).await.unwrap());

    assert_eq!(repo.workspace_of_customer(&sandbox, &cus_1).await.unwrap(), Some(team_1.clone()));
    assert_eq!(repo.workspace_of_customer(&sandbox, &cus_2).await.unwrap(), None);
    assert_eq!(repo.customer_of_workspace(&sandbox, &team_1).await.unwrap(), Some(cus_1.clone()));
    assert_eq!(repo.customer_of_workspace(&stripe, &team_1).await.unwrap(), Some(cus_2.clone()));
    assert_eq!(repo.customer_of_workspace(&sandbox, &team_2).await.unwrap(), None);

    let unknown = repo.link_customer(&sandbox, &CustomerId::new("cus_9"), &ws_id("ghost"), at(5)).await;
    assert!(matches!(unknown, Err(StoreError::Other(_))));
});

both!(credits_are_granted_once_per_key, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    let ws = workspace("team_1");
    repo.insert(&ws).await.unwrap();
    assert!(repo.grant_credits(&ws.id, 10, "grant:a", at(1)).await.unwrap());
    assert!(!repo.grant_credits(&ws.id, 10, "grant:a", at(2)).await.unwrap());
    assert!(repo.grant_credits(&ws.id, 5, "grant:b", at(3)).await.unwrap());
    assert_eq!(repo.get(&ws.id).await.unwrap().unwrap().credit_balance, 15);

    let missing = repo.grant_credits(&ws_id("ghost"), 10, "grant:a", at(4)).await;
    assert!(matches!(missing, Err(StoreError::Other(_))));
});

both!(concurrent_grants_with_one_key_grant_once, |store: Store| async move {
    WorkspaceRepository::insert(&store, &workspace("team_1")).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.grant_credits(&ws_id("team_1"), 10, "grant:x", at(1)).await.unwrap() })
        })
        .collect();
    let granted = futures::future::join_all(tasks).await.into_iter().filter(|g| *g.as_ref().unwrap()).count();
    assert_eq!(granted, 1);
    let balance = WorkspaceRepository::get(&store, &ws_id("team_1")).await.unwrap().unwrap().credit_balance;
    assert_eq!(balance, 10);
});

both!(concurrent_consumes_never_overdraw, |store: Store| async move {
    WorkspaceRepository::insert(&store, &workspace("team_1")).await.unwrap();
    store.grant_credits(&ws_id("team_1"), 10, "grant:a", at(1)).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.consume_credits(&ws_id("team_1"), 3, &format!("consume:{i}"), at(2)).await.unwrap()
            })
        })
        .collect();
    let outcomes: Vec<ConsumeOutcome> =
        futures::future::join_all(tasks).await.into_iter().map(|o| o.unwrap()).collect();
    let mut consumed: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            ConsumeOutcome::Consumed { balance } => Some(*balance),
            _ => None,
        })
        .collect();
    consumed.sort_unstable();
    assert_eq!(consumed, [1, 4, 7]);
    for outcome in &outcomes {
        match outcome {
            ConsumeOutcome::Consumed { .. } => {}
            ConsumeOutcome::Insufficient { balance } => assert!(*balance >= 0 && *balance < 3),
            ConsumeOutcome::AlreadyConsumed { .. } => panic!("distinct keys: {outcome:?}"),
        }
    }
    let balance = WorkspaceRepository::get(&store, &ws_id("team_1")).await.unwrap().unwrap().credit_balance;
    assert_eq!(balance, 1);
});

both!(the_same_consume_key_consumes_once, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    let ws = workspace("team_1");
    repo.insert(&ws).await.unwrap();
    repo.grant_credits(&ws.id, 10, "grant:a", at(1)).await.unwrap();
    assert_eq!(
        repo.consume_credits(&ws.id, 4, "consume:k", at(2)).await.unwrap(),
        ConsumeOutcome::Consumed { balance: 6 }
    );
    assert_eq!(
        repo.consume_credits(&ws.id, 4, "consume:k", at(3)).await.unwrap(),
        ConsumeOutcome::AlreadyConsumed { balance: 6 }
    );
    assert_eq!(
        repo.consume_credits(&ws.id, 100, "consume:big", at(4)).await.unwrap(),
        ConsumeOutcome::Insufficient { balance: 6 }
    );

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(
                async move { store.consume_credits(&ws_id("team_1"), 2, "consume:same", at(5)).await.unwrap() },
            )
        })
        .collect();
    let outcomes: Vec<ConsumeOutcome> =
        futures::future::join_all(tasks).await.into_iter().map(|o| o.unwrap()).collect();
    let consumed = outcomes.iter().filter(|o| matches!(o, ConsumeOutcome::Consumed { .. })).count();
    assert_eq!(consumed, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        ConsumeOutcome::Consumed { balance: 4 } | ConsumeOutcome::AlreadyConsumed { balance: 4 }
    )));
    assert_eq!(repo.get(&ws.id).await.unwrap().unwrap().credit_balance, 4);
});

both!(trials_ending_in_a_window_are_listed_soonest_first, |store: Store| async move {
    let repo: &dyn WorkspaceRepository = &store;
    for (id, ends) in [("late", 500), ("soon", 200), ("edge", 300), ("past", 100)] {
        repo.insert(&workspace(id)).await.unwrap();
        assert!(repo.start_trial(&ws_id(id), &PlanId::new("pro"), at(ends), at(0)).await.unwrap());
    }
    repo.insert(&workspace("never")).await.unwrap();
    let ending = repo.trials_ending(at(100), at(300), 10).await.unwrap();
    let ids: Vec<&str> = ending.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["soon", "edge"], "after 100 (exclusive), until 300 (inclusive)");
    assert_eq!(repo.trials_ending(at(100), at(1_000), 1).await.unwrap().len(), 1, "limit");
});
