//! Idempotency keys: one claim wins, a finished request is replayed as stored, another body is refused, a 5xx is
//! forgotten, expired and abandoned keys are claimed afresh, and concurrent claims of one key start one request.

use std::sync::Arc;

use billing_domain::ports::{Claimed, IdempotencyKeys, KeyClaim, StoredResponse};
use billing_store::Store;
use chrono::Duration;

use crate::helpers::at;

fn claim(key: &str, fingerprint: &str, secs: i64) -> KeyClaim {
    KeyClaim {
        owner: "backend".into(),
        key: key.into(),
        token: format!("req-{secs}"),
        fingerprint: fingerprint.into(),
        now: at(secs),
        expires_at: at(secs) + Duration::hours(24),
        abandoned_before: at(secs) - Duration::seconds(60),
    }
}

fn created(body: &str) -> StoredResponse {
    StoredResponse { status: 201, content_type: Some("application/json".into()), body: body.as_bytes().to_vec() }
}

both!(a_finished_request_is_replayed_and_another_body_refused, |store: Store| async move {
    let keys: &dyn IdempotencyKeys = &store;
    assert_eq!(keys.claim(&claim("k1", "f1", 0)).await.unwrap(), Claimed::Started);
    assert_eq!(keys.claim(&claim("k1", "f1", 1)).await.unwrap(), Claimed::InProgress);
    assert_eq!(keys.claim(&claim("k1", "f2", 1)).await.unwrap(), Claimed::Reused);
    keys.complete(&claim("k1", "f1", 0), &created(r#"{"id":1}"#)).await.unwrap();
    assert_eq!(keys.claim(&claim("k1", "f1", 2)).await.unwrap(), Claimed::Replay(created(r#"{"id":1}"#)));
    assert_eq!(keys.claim(&claim("k1", "f2", 2)).await.unwrap(), Claimed::Reused);
    // Another caller's key of the same name is its own.
    let other = KeyClaim { owner: "other".into(), ..claim("k1", "f2", 2) };
    assert_eq!(keys.claim(&other).await.unwrap(), Claimed::Started);
    // A second completion does not overwrite the first answer.
    keys.complete(&claim("k1", "f1", 0), &created("{}")).await.unwrap();
    assert_eq!(keys.claim(&claim("k1", "f1", 3)).await.unwrap(), Claimed::Replay(created(r#"{"id":1}"#)));
});

both!(a_released_key_runs_again, |store: Store| async move {
    let keys: &dyn IdempotencyKeys = &store;
    assert_eq!(keys.claim(&claim("k2", "f1", 0)).await.unwrap(), Claimed::Started);
    keys.release(&claim("k2", "f1", 0)).await.unwrap();
    assert_eq!(keys.claim(&claim("k2", "f1", 1)).await.unwrap(), Claimed::Started);
    // A finished key is not released.
    keys.complete(&claim("k2", "f1", 1), &created("{}")).await.unwrap();
    keys.release(&claim("k2", "f1", 1)).await.unwrap();
    assert!(matches!(keys.claim(&claim("k2", "f1", 2)).await.unwrap(), Claimed::Replay(_)));
});

both!(expired_and_abandoned_keys_are_claimed_afresh_and_pruned, |store: Store| async move {
    let keys: &dyn IdempotencyKeys = &store;
    assert_eq!(keys.claim(&claim("done", "f1", 0)).await.unwrap(), Claimed::Started);
    keys.complete(&claim("done", "f1", 0), &created("{}")).await.unwrap();
    assert_eq!(keys.claim(&claim("stuck", "f1", 0)).await.unwrap(), Claimed::Started);
    // Within the abandon window a stuck key is still in progress; after it, the next request takes it.
    assert_eq!(keys.claim(&claim("stuck", "f1", 59)).await.unwrap(), Claimed::InProgress);
    assert_eq!(keys.claim(&claim("stuck", "f1", 61)).await.unwrap(), Claimed::Started);
    assert_eq!(keys.claim(&claim("stuck", "f1", 62)).await.unwrap(), Claimed::InProgress);
    // The request that lost its claim can neither answer for nor free its successor's.
    keys.complete(&claim("stuck", "f1", 0), &created("late")).await.unwrap();
    keys.release(&claim("stuck", "f1", 0)).await.unwrap();
    assert_eq!(keys.claim(&claim("stuck", "f1", 63)).await.unwrap(), Claimed::InProgress);
    keys.complete(&claim("stuck", "f1", 61), &created("{}")).await.unwrap();
    assert_eq!(keys.claim(&claim("stuck", "f1", 64)).await.unwrap(), Claimed::Replay(created("{}")));
    // A day later the finished key is gone for claims, even with another body.
    let day = 24 * 3600;
    assert_eq!(keys.claim(&claim("done", "f9", day)).await.unwrap(), Claimed::Started);
    assert_eq!(keys.prune(at(day + 61)).await.unwrap(), 1, "only `stuck` (claimed at 61) had expired");
    assert_eq!(keys.prune(at(day + 61)).await.unwrap(), 0);
    assert_eq!(keys.claim(&claim("done", "f9", day + 1)).await.unwrap(), Claimed::InProgress);
});

both!(concurrent_claims_of_one_key_start_one_request, |store: Store| async move {
    let store = Arc::new(store);
    let claims = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.claim(&claim("race", "f1", 0)).await.unwrap() })
    });
    let outcomes: Vec<Claimed> = futures::future::join_all(claims).await.into_iter().map(Result::unwrap).collect();
    let started = outcomes.iter().filter(|c| **c == Claimed::Started).count();
    assert_eq!(started, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|c| matches!(c, Claimed::Started | Claimed::InProgress)), "{outcomes:?}");
});
