//! The billing page's storage: a link's nonce redeems once — also when twenty openings race on one database —
//! expired links are pruned, and the credit ledger reads newest first.

use std::sync::Arc;

use billing_domain::ports::{CreditHistory, PageLinks, WorkspaceRepository};
use billing_store::Store;

use crate::helpers::{at, workspace};

both!(a_link_redeems_once_and_expired_links_are_pruned, |store: Store| async move {
    let links: &dyn PageLinks = &store;
    let ws = workspace("team_links").id;
    assert!(links.redeem("n1", &ws, at(900), at(0)).await.unwrap());
    assert!(!links.redeem("n1", &ws, at(900), at(5)).await.unwrap(), "a second opening of n1");
    assert!(links.redeem("n2", &ws, at(1900), at(1000)).await.unwrap());
    assert_eq!(links.prune(at(901)).await.unwrap(), 1, "only n1 had expired");
    assert_eq!(links.prune(at(901)).await.unwrap(), 0);
    assert!(!links.redeem("n2", &ws, at(1900), at(1001)).await.unwrap(), "n2 is kept until it expires");
});

both!(concurrent_openings_of_one_link_redeem_it_once, |store: Store| async move {
    let store = Arc::new(store);
    let ws = workspace("team_race").id;
    let openings = (0..20).map(|i| {
        let (store, ws) = (store.clone(), ws.clone());
        tokio::spawn(async move { store.redeem("same-nonce", &ws, at(900), at(i)).await.unwrap() })
    });
    let won: Vec<bool> = futures::future::join_all(openings).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
});

both!(the_credit_ledger_reads_newest_first, |store: Store| async move {
    let ws = workspace("team_ledger");
    WorkspaceRepository::insert(&store, &ws).await.unwrap();
    assert!(store.grant_credits(&ws.id, 10, "grant:payment:pi_1", at(1)).await.unwrap());
    store.consume_credits(&ws.id, 3, "consume:export", at(2)).await.unwrap();
    assert!(store.grant_credits(&ws.id, 5, "grant:payment:pi_2", at(3)).await.unwrap());
    let other = workspace("team_other");
    WorkspaceRepository::insert(&store, &other).await.unwrap();
    assert!(store.grant_credits(&other.id, 99, "grant:payment:pi_9", at(4)).await.unwrap());

    let history: &dyn CreditHistory = &store;
    let recent = history.recent_ledger(&ws.id, 2).await.unwrap();
    let seen: Vec<_> = recent.iter().map(|e| (e.key.as_str(), e.amount, e.balance_after)).collect();
    assert_eq!(seen, [("grant:payment:pi_2", 5, 12), ("consume:export", -3, 7)]);
    assert_eq!(recent[0].at, at(3));
    assert_eq!(history.recent_ledger(&ws.id, 10).await.unwrap().len(), 3);
});

both!(usage_is_summed_per_utc_day_within_the_range, |store: Store| async move {
    use std::str::FromStr;

    use billing_domain::ports::{PlacedEvent, UnitOfWork, UsageEvent, UsageHistory};
    use billing_domain::usage::UsageRange;
    use rust_decimal::Decimal;

    let ws = workspace("team_days");
    WorkspaceRepository::insert(&store, &ws).await.unwrap();
    let day = 24 * 3600;
    // Seconds from at(0) to the next UTC midnight: the days below start there.
    let m = day - at(0).timestamp().rem_euclid(day);
    let month = UsageRange { start: at(m), end: at(m + 30 * day) };
    let next = UsageRange { start: at(m + 30 * day), end: at(m + 60 * day) };
    let event = |id: &str, metric: &str, quantity: &str, secs: i64| PlacedEvent {
        event: UsageEvent {
            id: id.into(),
            workspace_id: ws.id.clone(),
            metric: metric.into(),
            quantity: Decimal::from_str(quantity).unwrap(),
            at: at(m + secs),
        },
        period: if secs < 30 * day { month } else { next },
    };
    let events = [
        event("a", "alerts", "2", 10),
        event("b", "alerts", "3.5", day - 1),
        event("c", "alerts", "1", day),
        event("d", "storage_gb", "7", day + 5),
        event("e", "alerts", "100", 30 * day + 1),
    ];
    let tx = store.begin().await.unwrap();
    tx.usage().record(&events, at(m)).await.unwrap();
    tx.commit().await.unwrap();

    let days = store.daily_totals(&ws.id, month).await.unwrap();
    let seen: Vec<_> = days
        .iter()
        .flat_map(|(date, totals)| totals.iter().map(move |(m, t)| (date.to_string(), m.clone(), t.sum, t.max)))
        .collect();
    let d = |raw: &str| Decimal::from_str(raw).unwrap();
    let first = at(m).date_naive().to_string();
    let second = at(m + day).date_naive().to_string();
    assert_eq!(
        seen,
        [
            (first, "alerts".to_string(), d("5.5"), d("3.5")),
            (second.clone(), "alerts".to_string(), d("1"), d("1")),
            (second, "storage_gb".to_string(), d("7"), d("7")),
        ],
        "the event after the range's end is not counted"
    );
});
