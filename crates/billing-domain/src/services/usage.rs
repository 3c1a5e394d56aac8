//! Usage metering use cases: batch ingestion (each event judged on its own, the whole batch recorded in one
//! transaction), a period's usage with its cost, and the atomic check-and-consume of a usage limit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::Context;
use super::entitlements::{usage_period, whole_units};
use crate::catalog::{Aggregation, Limit, LimitSource};
use crate::entitlements::{LimitCheck, check_limit};
use crate::error::StoreError;
use crate::ids::{PlanId, WorkspaceId};
use crate::ports::{BillingSubject, PlacedEvent, UnitOfWork, UsageRepository};
use crate::subscription::Subscription;
use crate::usage::{
    RawUsageEvent, RejectCode, Rejection, TotalOverflow, UsageCost, UsageEvent, UsagePolicy, UsageRange, UsageTotals,
    calendar_month, cost_of, validate_event,
};

/// How often a batch is tried again when its transaction met a conflict (a PostgreSQL deadlock).
const CONFLICT_RETRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("workspace not found")]
    WorkspaceNotFound,
    /// `consume` names a limit that is not a summed usage limit.
    #[error("`{0}` is not a usage limit summed over the period, so it cannot be consumed")]
    NotConsumable(String),
    #[error("unknown limit `{0}`")]
    UnknownLimit(String),
    #[error("{0}")]
    InvalidPeriod(&'static str),
    #[error(transparent)]
    Overflow(#[from] TotalOverflow),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    Accepted,
    /// The workspace recorded an event of this id before (in any batch) or earlier in this one.
    Duplicate,
    Rejected(Rejection),
}

/// Which period a usage query is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodQuery {
    /// The period limits count in now.
    Current,
    /// A calendar month (UTC).
    Month { year: i32, month: u32 },
    /// Any `[from, to)`.
    Range(UsageRange),
}

/// A period's usage and its cost on the workspace's plan in effect now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    pub workspace_id: WorkspaceId,
    pub plan: PlanId,
    pub range: UsageRange,
    pub totals: UsageTotals,
    pub cost: UsageCost,
}

/// The answer of a check that consumes.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeCheck {
    pub check: LimitCheck,
    /// This call recorded the usage.
    pub consumed: bool,
    /// The idempotency key had consumed before: nothing more was taken.
    pub replayed: bool,
}

/// A batch whose events were judged and not yet recorded.
#[derive(Debug, Clone)]
pub struct JudgedBatch {
    /// Per event of the batch, in order: why it was rejected, or `None` when it is among `placed`.
    rejected: Vec<Option<Rejection>>,
    /// The valid events, in the batch's order, each in its period.
    placed: Vec<PlacedEvent>,
}

impl JudgedBatch {
    /// Events to record.
    pub fn len(&self) -> usize {
        self.placed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }

    /// Each event's outcome, given which of the valid ones the store recorded (`false`: a duplicate).
    pub fn outcomes(self, recorded: Vec<bool>) -> Vec<EventOutcome> {
        let mut recorded = recorded.into_iter();
        self.rejected
            .into_iter()
            .map(|rejected| match rejected {
                Some(rejection) => EventOutcome::Rejected(rejection),
                None if recorded.next() == Some(true) => EventOutcome::Accepted,
                None => EventOutcome::Duplicate,
            })
            .collect()
    }
}

/// The (batch, position) of every valid event of `batches`, in order, split by workspace into at most `count`
/// non-empty groups. One workspace's events always share a group, so duplicates across batches meet in order.
fn partition(batches: &[JudgedBatch], count: usize) -> Vec<Vec<(usize, usize)>> {
    use std::hash::{Hash, Hasher};
    let count = count.max(1);
    let mut groups = vec![Vec::new(); count];
    for (b, batch) in batches.iter().enumerate() {
        for (i, placed) in batch.placed.iter().enumerate() {
            let group = if count == 1 {
                0
            } else {
                let mut hasher = std::hash::DefaultHasher::new();
                placed.event.workspace_id.hash(&mut hasher);
                (hasher.finish() % count as u64) as usize
            };
            groups[group].push((b, i));
        }
    }
    groups.retain(|group| !group.is_empty());
    groups
}

/// A request to check a usage limit and, if it allows, record the usage at once.
#[derive(Debug, Clone)]
pub struct CheckAndConsume {
    pub workspace_id: WorkspaceId,
    pub key: String,
    pub amount: u64,
    /// Becomes the usage event's id: the same key consumes once.
    pub idempotency_key: String,
}

/// Usage use cases.
pub struct UsageService {
    ctx: Context,
    uow: Arc<dyn UnitOfWork>,
    usage: Arc<dyn UsageRepository>,
    policy: UsagePolicy,
    write_partitions: usize,
}

impl UsageService {
    pub fn new(ctx: Context, uow: Arc<dyn UnitOfWork>, usage: Arc<dyn UsageRepository>, policy: UsagePolicy) -> Self {
        Self { ctx, uow, usage, policy, write_partitions: 1 }
    }

    /// Batches recorded together are split by workspace into up to `partitions` transactions run side by side
    /// (1: one transaction; more only pays on a database with concurrent writers).
    pub fn with_write_partitions(mut self, partitions: usize) -> Self {
        self.write_partitions = partitions.max(1);
        self
    }

    /// Judges each event of a batch on its own — valid, of an existing workspace, placed in its period — without
    /// recording anything: [`UsageService::record_together`] records it, alone or with other batches.
    pub async fn judge(&self, batch: &[RawUsageEvent]) -> Result<JudgedBatch, UsageError> {
        let now = self.ctx.clock.now();
        let judged: Vec<Result<UsageEvent, Rejection>> =
            batch.iter().map(|raw| validate_event(raw, &self.ctx.catalog, &self.policy, now)).collect();
        let subscriptions = self.subscriptions_of(&judged).await?;
        let mut rejected = Vec::with_capacity(batch.len());
        let mut placed = Vec::with_capacity(batch.len());
        for verdict in judged {
            let event = match verdict {
                Ok(event) => event,
                Err(rejection) => {
                    rejected.push(Some(rejection));
                    continue;
                }
            };
            let Some(subscription) = subscriptions.get(&event.workspace_id) else {
                let message = format!("workspace `{}` does not exist", event.workspace_id);
                let rejection = Rejection { code: RejectCode::UnknownWorkspace, field: "workspace_id".into(), message };
                rejected.push(Some(rejection));
                continue;
            };
            let period = crate::usage::period_at(subscription.as_ref(), event.at);
            placed.push(PlacedEvent { event, period });
            rejected.push(None);
        }
        Ok(JudgedBatch { rejected, placed })
    }

    /// Records the valid events of several judged batches together, in the order given: an event of a later batch
    /// whose id an earlier one holds is that batch's duplicate. The events are split by workspace into
    /// `write_partitions` groups, each one transaction (one commit for all its batches), run side by side: their
    /// workspaces differ, so they never wait on each other's locks. When a group's transaction fails, each batch's
    /// share of it is recorded on its own, so one batch's failure is never its neighbours'. Each batch's
    /// outcomes, in the batches' order; a batch that failed answers its error (what another group recorded of it
    /// stays recorded, and comes back as duplicates when the batch is sent again).
    pub async fn record_together(&self, batches: Vec<JudgedBatch>) -> Vec<Result<Vec<EventOutcome>, StoreError>> {
        if batches.is_empty() {
            return Vec::new();
        }
        let now = self.ctx.clock.now();
        let groups = partition(&batches, self.write_partitions);
        let runs = groups.iter().map(|group| {
            let events: Vec<PlacedEvent> = group.iter().map(|&(b, i)| batches[b].placed[i].clone()).collect();
            async move { self.record(&events, now).await }
        });
        let results = futures::future::join_all(runs).await;

        let mut recorded: Vec<Vec<bool>> = batches.iter().map(|b| vec![false; b.placed.len()]).collect();
        let mut failed: Vec<Option<StoreError>> = batches.iter().map(|_| None).collect();
        for (group, result) in groups.iter().zip(results) {
            match result {
                Ok(flags) => {
                    for (&(b, i), flag) in group.iter().zip(flags) {
                        recorded[b][i] = flag;
                    }
                }
                Err(error) if group.iter().all(|&(b, _)| b == group[0].0) => failed[group[0].0] = Some(error),
                Err(_) => {
                    for b in group.iter().map(|&(b, _)| b).collect::<BTreeSet<_>>() {
                        let mine: Vec<usize> = group.iter().filter(|&&(of, _)| of == b).map(|&(_, i)| i).collect();
                        let events: Vec<PlacedEvent> = mine.iter().map(|&i| batches[b].placed[i].clone()).collect();
                        match self.record(&events, now).await {
                            Ok(flags) => mine.iter().zip(flags).for_each(|(&i, flag)| recorded[b][i] = flag),
                            Err(error) => failed[b] = Some(error),
                        }
                    }
                }
            }
        }
        batches
            .into_iter()
            .zip(recorded)
            .zip(failed)
            .map(|((batch, recorded), failed)| match failed {
                Some(error) => Err(error),
                None => Ok(batch.outcomes(recorded)),
            })
            .collect()
    }

    /// The current subscription of each existing workspace the valid events name; absent workspaces do not exist.
    async fn subscriptions_of(
        &self,
        judged: &[Result<UsageEvent, Rejection>],
    ) -> Result<BTreeMap<WorkspaceId, Option<Subscription>>, StoreError> {
        let ids: BTreeSet<&WorkspaceId> =
            judged.iter().filter_map(|v| v.as_ref().ok()).map(|e| &e.workspace_id).collect();
        let mut found = BTreeMap::new();
        for id in ids {
            if let Some(state) = self.ctx.state.billing_state(id).await? {
                found.insert(id.clone(), state.subscription);
            }
        }
        Ok(found)
    }

    /// One transaction for the whole batch, tried again on a conflict.
    async fn record(&self, placed: &[PlacedEvent], now: DateTime<Utc>) -> Result<Vec<bool>, StoreError> {
        if placed.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 0;
        loop {
            let tx = self.uow.begin().await?;
            let result = match tx.usage().record(placed, now).await {
                Ok(recorded) => tx.commit().await.map(|()| recorded),
                Err(e) => Err(e),
            };
            match result {
                Err(StoreError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    /// The usage of `query`'s period and what it costs on the plan in effect now.
    pub async fn report(&self, id: &WorkspaceId, query: PeriodQuery) -> Result<UsageReport, UsageError> {
        let (workspace, subscription) = self.ctx.billing_state(id).await?.ok_or(UsageError::WorkspaceNotFound)?;
        let now = self.ctx.clock.now();
        let range = match query {
            PeriodQuery::Current => usage_period(subscription.as_ref(), now),
            PeriodQuery::Month { year, month } => {
                calendar_month(year, month).ok_or(UsageError::InvalidPeriod("no such month"))?
            }
            PeriodQuery::Range(range) if range.start < range.end => range,
            PeriodQuery::Range(_) => return Err(UsageError::InvalidPeriod("`from` must be before `to`")),
        };
        let totals = self.usage.totals(id, range).await?;
        let effective = self.ctx.effective_plan(&workspace, subscription.as_ref(), now);
        let cost = cost_of(&self.ctx.catalog, effective.plan, &totals)?;
        Ok(UsageReport { workspace_id: id.clone(), plan: effective.plan.id.clone(), range, totals, cost })
    }

    /// Checks that `amount` more of a summed usage limit fit and, when they do, records them as one usage event
    /// in the same transaction, under the workspace's lock: concurrent consumers of the last units never take
    /// more than the limit, and an idempotency key consumes once.
    pub async fn check_and_consume(&self, request: &CheckAndConsume) -> Result<ConsumeCheck, UsageError> {
        let id = &request.workspace_id;
        let metric = self.consumable_metric(&request.key)?;
        let (workspace, subscription) = self.ctx.billing_state(id).await?.ok_or(UsageError::WorkspaceNotFound)?;
        let now = self.ctx.clock.now();
        let effective = self.ctx.effective_plan(&workspace, subscription.as_ref(), now);
        let limit = effective.plan.limits.get(&request.key).copied().unwrap_or(Limit::Limited(0));
        let period = usage_period(subscription.as_ref(), now);
        let tx = self.uow.begin().await?;
        tx.lock(&BillingSubject::Workspace(id.clone())).await?;
        let used = |totals: &UsageTotals| whole_units(totals.get(&metric).map(|t| t.sum));
        if tx.usage().contains(id, &request.idempotency_key).await? {
            let used = used(&tx.usage().totals(id, period).await?);
            let check = LimitCheck { allowed: true, ..check_limit(&request.key, limit, used, 0) };
            return Ok(ConsumeCheck { check, consumed: false, replayed: true });
        }
        let before = used(&tx.usage().totals(id, period).await?);
        let check = check_limit(&request.key, limit, before, request.amount);
        if !check.allowed {
            return Ok(ConsumeCheck { check, consumed: false, replayed: false });
        }
        let event = UsageEvent {
            id: request.idempotency_key.clone(),
            workspace_id: id.clone(),
            metric,
            quantity: Decimal::from(request.amount),
            at: now,
        };
        let recorded = tx.usage().record(&[PlacedEvent { event, period }], now).await?;
        tx.commit().await?;
        let after = before.saturating_add(request.amount);
        let check = LimitCheck { allowed: true, ..check_limit(&request.key, limit, after, 0) };
        Ok(ConsumeCheck { check, consumed: recorded.first().copied().unwrap_or(false), replayed: false })
    }

    /// The metric a consumable limit counts: only a usage limit whose metric sums (a gauge's peak is not used up).
    fn consumable_metric(&self, key: &str) -> Result<String, UsageError> {
        let catalog = &self.ctx.catalog;
        let Some(declaration) = catalog.limit_declarations().get(key) else {
            return Err(if catalog.feature_declarations().contains_key(key) {
                UsageError::NotConsumable(key.into())
            } else {
                UsageError::UnknownLimit(key.into())
            });
        };
        match declaration.source() {
            Some(LimitSource::Usage { metric })
                if catalog.metric_declarations().get(&metric).map(|d| d.aggregation) == Some(Aggregation::Sum) =>
            {
                Ok(metric)
            }
            _ => Err(UsageError::NotConsumable(key.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{UsageEvent, UsageRange};
    use chrono::TimeZone;

    fn batch(events: &[(&str, &str)]) -> JudgedBatch {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let period = UsageRange { start: at, end: at + chrono::Duration::days(31) };
        let placed = events
            .iter()
            .map(|(workspace, id)| PlacedEvent {
                event: UsageEvent {
                    id: (*id).to_owned(),
                    workspace_id: WorkspaceId::parse((*workspace).to_owned()).unwrap(),
                    metric: "alerts".into(),
                    quantity: Decimal::ONE,
                    at,
                },
                period,
            })
            .collect::<Vec<_>>();
        JudgedBatch { rejected: vec![None; placed.len()], placed }
    }

    #[test]
    fn partitions_keep_a_workspace_together_in_order_and_none_is_empty() {
        let workspaces: Vec<String> = (0..40).map(|i| format!("ws-{i}")).collect();
        let first: Vec<(&str, &str)> = workspaces.iter().map(|w| (w.as_str(), "a")).collect();
        let second: Vec<(&str, &str)> = workspaces.iter().rev().map(|w| (w.as_str(), "a")).collect();
        let batches = [batch(&first), batch(&second)];
        for count in [1, 2, 3, 16] {
            let groups = partition(&batches, count);
            assert!(!groups.is_empty() && groups.len() <= count);
            assert!(groups.iter().all(|g| !g.is_empty()));
            let placed = groups.iter().flatten().count();
            assert_eq!(placed, 80, "every event in exactly one group");
            let workspace_of = |&(b, i): &(usize, usize)| batches[b].placed[i].event.workspace_id.clone();
            for workspace in &workspaces {
                let holding: Vec<usize> = (0..groups.len())
                    .filter(|&g| groups[g].iter().any(|e| workspace_of(e).as_str() == workspace))
                    .collect();
                assert_eq!(holding.len(), 1, "{workspace} sits in one group");
                let order: Vec<usize> = groups[holding[0]]
                    .iter()
                    .filter(|e| workspace_of(e).as_str() == workspace)
                    .map(|&(b, _)| b)
                    .collect();
                assert_eq!(order, vec![0, 1], "the earlier batch's event comes first: it is the one accepted");
            }
        }
        assert_eq!(partition(&batches, 2).len(), 2, "40 workspaces fill both groups");
    }
}
