//! Coupons: unique codes whatever their case, and redemptions that take a use once per workspace, never past
//! `max_uses` — also when the last use is raced — and give it back exactly once.

use std::sync::Arc;

use billing_domain::coupon::{Coupon, Discount};
use billing_domain::error::StoreError;
use billing_domain::ids::PlanId;
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{CouponRepository, Redemption};
use billing_store::Store;

use crate::helpers::{at, ws_id};

fn coupon(code: &str, max_uses: Option<u32>) -> Coupon {
    Coupon {
        code: code.into(),
        discount: Discount::Amount { amount: Money::new(500, Currency::parse("EUR").unwrap()) },
        valid_until: Some(at(86_400)),
        max_uses,
        used_count: 0,
        plans: vec![PlanId::new("pro"), PlanId::new("hobby")],
        created_at: at(0),
    }
}

both!(codes_are_unique_and_round_trip, |store: Store| async move {
    let coupons: &dyn CouponRepository = &store;
    coupons.insert(&coupon("LAUNCH", Some(3))).await.unwrap();
    assert!(matches!(coupons.insert(&coupon("launch", None)).await, Err(StoreError::Duplicate(_))));
    let found = coupons.get("Launch").await.unwrap().unwrap();
    assert_eq!(found, coupon("LAUNCH", Some(3)), "every field round-trips");
    coupons.insert(&Coupon { discount: Discount::Percent { percent: 15 }, ..coupon("ALPHA", None) }).await.unwrap();
    let listed: Vec<String> = coupons.list(10).await.unwrap().into_iter().map(|c| c.code).collect();
    assert_eq!(listed, ["ALPHA", "LAUNCH"]);
    assert_eq!(coupons.list(1).await.unwrap().len(), 1);
    assert!(coupons.get("NOPE").await.unwrap().is_none());
});

both!(a_workspace_redeems_once_and_gives_back_once, |store: Store| async move {
    let coupons: &dyn CouponRepository = &store;
    coupons.insert(&coupon("TWO", Some(2))).await.unwrap();
    assert_eq!(coupons.redeem("two", &ws_id("team_1"), at(1)).await.unwrap(), Redemption::Redeemed);
    assert_eq!(coupons.redeem("TWO", &ws_id("team_1"), at(2)).await.unwrap(), Redemption::AlreadyRedeemed);
    assert_eq!(coupons.redeem("TWO", &ws_id("team_2"), at(3)).await.unwrap(), Redemption::Redeemed);
    assert_eq!(coupons.redeem("TWO", &ws_id("team_3"), at(4)).await.unwrap(), Redemption::Exhausted);
    assert_eq!(coupons.get("TWO").await.unwrap().unwrap().used_count, 2);
    coupons.unredeem("TWO", &ws_id("team_2")).await.unwrap();
    coupons.unredeem("TWO", &ws_id("team_2")).await.unwrap();
    coupons.unredeem("TWO", &ws_id("team_9")).await.unwrap();
    assert_eq!(coupons.get("TWO").await.unwrap().unwrap().used_count, 1, "one use given back, once");
    assert_eq!(coupons.redeem("TWO", &ws_id("team_3"), at(5)).await.unwrap(), Redemption::Redeemed);
    assert_eq!(coupons.redeem("GHOST", &ws_id("team_1"), at(6)).await.unwrap(), Redemption::NotFound);
});

both!(the_last_use_goes_to_one_of_many_concurrent_redemptions, |store: Store| async move {
    store.insert(&coupon("ONCE", Some(1))).await.unwrap();
    let store = Arc::new(store);
    let racers = (0..12).map(|i| {
        let store = store.clone();
        // Two racers per workspace: a double submit must not take a second use either.
        tokio::spawn(async move { store.redeem("ONCE", &ws_id(&format!("team_{}", i / 2)), at(1)).await.unwrap() })
    });
    let outcomes: Vec<Redemption> = futures::future::join_all(racers).await.into_iter().map(Result::unwrap).collect();
    let redeemed = outcomes.iter().filter(|o| **o == Redemption::Redeemed).count();
    assert_eq!(redeemed, 1, "{outcomes:?}");
    assert_eq!(store.get("ONCE").await.unwrap().unwrap().used_count, 1);
});
