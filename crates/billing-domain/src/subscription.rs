//! A processor subscription as Tollgate keeps it, merged from observations so that order and duplication of
//! webhooks never change the result (SPEC §3.5, "Convergence").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, PlanId, PriceId, ProcessorId, SubscriptionId, WorkspaceId};

/// Subscription states as processors report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    PastDue,
    Unpaid,
    Canceled,
    Incomplete,
    IncompleteExpired,
    Paused,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 8] = [
        Self::Trialing,
        Self::Active,
        Self::PastDue,
        Self::Unpaid,
        Self::Canceled,
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
            Self::Canceled => "canceled",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// A terminal subscription never comes back; a new one gets a new id.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }

    /// Whether this status grants the subscription's plan.
    pub fn grants_plan(self) -> bool {
        matches!(self, Self::Active | Self::Trialing)
    }

    /// Deterministic order among observations made in the same processor second: the status further along the
    /// lifecycle wins, so two same-second events converge whichever arrives first.
    fn precedence(self) -> u8 {
        match self {
            Self::Incomplete => 0,
            Self::Trialing => 1,
            Self::Active => 2,
            Self::PastDue => 3,
            Self::Unpaid => 4,
            Self::Paused => 5,
            Self::IncompleteExpired => 6,
            Self::Canceled => 7,
        }
    }
}

/// The plan-related fields of a subscription, taken from a processor snapshot (or, until one arrives, an invoice).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubscriptionTerms {
    pub plan_id: PlanId,
    pub price_id: PriceId,
    pub quantity: u32,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
}

/// How trustworthy a set of terms is: a full snapshot always beats terms inferred from an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermsSource {
    Invoice,
    Snapshot,
}

/// Tollgate's record of one processor subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub processor: ProcessorId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub status: SubscriptionStatus,
    /// Processor time of the observation that set `status`.
    pub status_at: DateTime<Utc>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub terms: SubscriptionTerms,
    pub terms_source: TermsSource,
    /// Processor time of the observation that set `terms`.
    pub terms_at: DateTime<Utc>,
    /// Row version for compare-and-set updates; bumped by every change.
    pub version: i64,
}

/// One thing a processor told us about a subscription at a moment in its own time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub at: DateTime<Utc>,
    pub status: SubscriptionStatus,
    /// The terms, when the event carries them (a payment failure carries only a status).
    pub terms: Option<ObservedTerms>,
}

/// Terms with where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedTerms {
    pub source: TermsSource,
    pub terms: SubscriptionTerms,
}

impl Subscription {
    /// The key that orders status observations: terminal states absorb everything, then later wins, then the
    /// status further along. A total order, so merging is commutative, associative and idempotent.
    fn status_key(status: SubscriptionStatus, at: DateTime<Utc>) -> (bool, DateTime<Utc>, u8) {
        (status.is_terminal(), at, status.precedence())
    }

    /// Builds the first record of a subscription from its first observation; `None` when it carries no terms.
    pub fn from_observation(
        id: SubscriptionId,
        processor: ProcessorId,
        workspace_id: WorkspaceId,
        customer_id: CustomerId,
        observation: Observation,
    ) -> Option<Self> {
        let observed = observation.terms?;
        Some(Self {
            id,
            processor,
            workspace_id,
            customer_id,
            status: observation.status,
            status_at: observation.at,
            canceled_at: observation.status.is_terminal().then_some(observation.at),
            terms: observed.terms,
            terms_source: observed.source,
            terms_at: observation.at,
            version: 0,
        })
    }

    /// Merges an observation: each of status and terms keeps whichever side is newer by its total order.
    /// Returns the merged record (version unchanged; the caller bumps it when persisting a change).
    pub fn merge(&self, observation: &Observation) -> Self {
        let mut next = self.clone();
        if Self::status_key(observation.status, observation.at) > Self::status_key(self.status, self.status_at) {
            next.status = observation.status;
            next.status_at = observation.at;
        }
        // The earliest terminal observation, whether or not it wins the status: a minimum over the set of events,
        // so the same whatever order they arrive in.
        if observation.status.is_terminal() {
            next.canceled_at = Some(next.canceled_at.map_or(observation.at, |at| at.min(observation.at)));
        }
        if let Some(observed) = &observation.terms
            && (observed.source, observation.at, &observed.terms) > (self.terms_source, self.terms_at, &self.terms)
        {
            next.terms = observed.terms.clone();
            next.terms_source = observed.source;
            next.terms_at = observation.at;
        }
        next
    }

    /// Whether two records hold the same billing state (ignoring the storage version).
    pub fn same_state(&self, other: &Self) -> bool {
        Self { version: 0, ..self.clone() } == Self { version: 0, ..other.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn terms(cancel: bool) -> SubscriptionTerms {
        SubscriptionTerms {
            plan_id: PlanId::new("pro"),
            price_id: PriceId::new("price_pro"),
            quantity: 1,
            cancel_at_period_end: cancel,
            current_period_start: None,
            current_period_end: None,
            trial_end: None,
        }
    }

    fn obs(secs: i64, status: SubscriptionStatus, cancel: bool) -> Observation {
        Observation {
            at: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            status,
            terms: Some(ObservedTerms { source: TermsSource::Snapshot, terms: terms(cancel) }),
        }
    }

    fn first(o: Observation) -> Subscription {
        Subscription::from_observation(
            "sub_1".into(),
            "sandbox".into(),
            WorkspaceId::parse("w").unwrap(),
            "cus_1".into(),
            o,
        )
        .unwrap()
    }

    #[test]
    fn an_older_snapshot_never_overwrites_a_newer_one() {
        let newer = first(obs(10, SubscriptionStatus::PastDue, false));
        let merged = newer.merge(&obs(5, SubscriptionStatus::Active, true));
        assert!(merged.same_state(&newer));
    }

    #[test]
    fn canceled_absorbs_later_observations() {
        let canceled = first(obs(10, SubscriptionStatus::Canceled, false));
        let merged = canceled.merge(&obs(20, SubscriptionStatus::Active, false));
        assert_eq!(merged.status, SubscriptionStatus::Canceled);
        assert_eq!(merged.canceled_at, canceled.canceled_at);
    }

    #[test]
    fn same_second_ties_resolve_the_same_way_in_either_order() {
        let a = obs(10, SubscriptionStatus::Active, false);
        let b = obs(10, SubscriptionStatus::PastDue, true);
        let ab = first(a.clone()).merge(&b);
        let ba = first(b).merge(&a);
        assert!(ab.same_state(&ba));
        assert_eq!(ab.status, SubscriptionStatus::PastDue);
    }

    #[test]
    fn canceled_at_is_the_earliest_terminal_observation_in_either_order() {
        let active = obs(0, SubscriptionStatus::Active, false);
        let expired = obs(10, SubscriptionStatus::IncompleteExpired, false);
        let deleted = obs(11, SubscriptionStatus::Canceled, false);
        let in_order = first(active.clone()).merge(&expired).merge(&deleted);
        let swapped = first(active).merge(&deleted).merge(&expired);
        assert!(in_order.same_state(&swapped));
        assert_eq!(in_order.canceled_at, Some(expired.at));
        assert_eq!(swapped.canceled_at, Some(expired.at));
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SubscriptionStatus::parse("nope"), None);
    }
}
