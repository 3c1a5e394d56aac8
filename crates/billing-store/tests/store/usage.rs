//! Usage events: idempotent recording and exact totals over half-open periods.

use std::str::FromStr;

use billing_domain::ports::{UsageEvent, UsageRepository};
use billing_store::Store;
use rust_decimal::Decimal;

use crate::helpers::{at, now, ws_id};

fn usage(id: &str, workspace: &str, metric: &str, quantity: &str, secs: i64) -> UsageEvent {
    UsageEvent {
        id: id.into(),
        workspace_id: ws_id(workspace),
        metric: metric.into(),
        quantity: Decimal::from_str(quantity).unwrap(),
        at: at(secs),
    }
}

both!(records_once_and_totals_half_open_periods, |store: Store| async move {
    let repo: &dyn UsageRepository = &store;
    assert!(repo.record(&usage("e1", "team_1", "compute_hours", "1.5", 0), now()).await.unwrap());
    assert!(repo.record(&usage("e2", "team_1", "compute_hours", "2.25", 5), now()).await.unwrap());
    assert!(repo.record(&usage("e3", "team_1", "compute_hours", "4", 10), now()).await.unwrap());
    assert!(repo.record(&usage("e4", "team_1", "bandwidth_gb", "0.000000001", 9), now()).await.unwrap());
    assert!(repo.record(&usage("e1", "team_2", "compute_hours", "100", 1), now()).await.unwrap());
    // The same id again is a replay, whatever it carries.
    assert!(!repo.record(&usage("e2", "team_1", "compute_hours", "999", 6), now()).await.unwrap());

    let totals = repo.totals(&ws_id("team_1"), at(0), at(10)).await.unwrap();
    assert_eq!(totals.len(), 2);
    assert_eq!(totals["compute_hours"], Decimal::from_str("3.75").unwrap());
    assert_eq!(totals["bandwidth_gb"], Decimal::from_str("0.000000001").unwrap());

    let later = repo.totals(&ws_id("team_1"), at(10), at(11)).await.unwrap();
    assert_eq!(later["compute_hours"], Decimal::from(4));
    assert!(repo.totals(&ws_id("team_1"), at(11), at(20)).await.unwrap().is_empty());
    assert!(repo.totals(&ws_id("nobody"), at(0), at(20)).await.unwrap().is_empty());
});
