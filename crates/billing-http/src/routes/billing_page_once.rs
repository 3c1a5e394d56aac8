//! A page form posted twice — a double click, a reload of the redirect, Back and submit again — is answered with
//! where the first post went, and does nothing twice. Each rendered form carries an `attempt`; the action, the plan
//! and the attempt are the key of an idempotency claim owned by the page's session (the `IdempotencyKeys` store of
//! `Idempotency-Key`), and the redirect is the stored answer.

use billing_domain::ports::{Claimed, KeyClaim, StoredResponse};
use sha2::{Digest as _, Sha256};

use crate::billing_page::tokens::Session;
use crate::billing_page::view::Flash;
use crate::error::ApiError;
use crate::state::AppState;

/// What became of a claimed post.
pub(super) enum Once {
    /// The first post: run it, then [`finish`].
    First(KeyClaim),
    /// Already answered: go where the first one went.
    Again(String),
    /// The first is still running, or the form was changed and posted under the same attempt.
    Refused(Flash),
}

/// Claims the post of `action` for `plan` under the form's `attempt`; `fields` are what else it asks (a coupon).
pub(super) async fn claim(
    state: &AppState,
    session: &Session,
    request: (&str, Option<&str>, &str),
    fields: &[Option<&str>],
) -> Result<Once, ApiError> {
    let (action, plan, attempt) = request;
    let mut digest = Sha256::new();
    for part in fields.iter().map(|f| f.unwrap_or_default()) {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let now = state.clock.now();
    let claim = KeyClaim {
        owner: format!("billing-page:{}", session.id),
        key: format!("{action}:{}:{attempt}", plan.unwrap_or_default()),
        token: uuid::Uuid::now_v7().to_string(),
        fingerprint: hex::encode(digest.finalize()),
        now,
        // As long as the session may post at all.
        expires_at: session.expires_at.max(now),
        abandoned_before: now - state.idempotency_policy.abandoned_after,
    };
    Ok(match state.idempotency.claim(&claim).await? {
        Claimed::Started => Once::First(claim),
        Claimed::Replay(stored) => Once::Again(String::from_utf8_lossy(&stored.body).into_owned()),
        Claimed::InProgress => Once::Refused(Flash::InProgress),
        Claimed::Reused => Once::Refused(Flash::FormExpired),
    })
}

/// Keeps where the first post went; a failure of ours or the processor's is forgotten, so the same form may be
/// posted again (nothing changed).
pub(super) async fn finish(
    state: &AppState,
    claim: &KeyClaim,
    location: &str,
    retryable: bool,
) -> Result<(), ApiError> {
    if retryable {
        state.idempotency.release(claim).await?;
    } else {
        let stored = StoredResponse { status: 303, content_type: None, body: location.as_bytes().to_vec() };
        state.idempotency.complete(claim, &stored).await?;
    }
    Ok(())
}
