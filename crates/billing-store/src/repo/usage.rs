//! `UsageRepository`: idempotent usage events, recorded a batch at a time, and the exact totals of each range
//! their workspace opened (`usage_periods`, `usage_totals`), kept in the same transaction so a period's usage is
//! one read whatever the number of events.
//!
//! A batch costs a fixed number of statements, not one per event: the workspaces' locks, their open ranges, one
//! multi-row insert of the events (which tells the duplicates apart itself), one read and one multi-row upsert of
//! the totals they change — plus, once per new range, a scan of the events it already holds. Every writer of a
//! workspace's usage holds its lock, so reading the totals and writing them back cannot lose an update.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;

use async_trait::async_trait;
use billing_domain::error::StoreError;
use billing_domain::ids::WorkspaceId;
use billing_domain::ports::{PlacedEvent, UsageRepository};
use billing_domain::usage::{MetricTotal, UsageEvent, UsageRange, UsageTotals};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement};

use super::{Executor, Repo};
use crate::entities::{usage_event, usage_period, usage_total};
use crate::errors::{corrupt, map_db_err};

/// Rows per multi-row insert: 6,000 bound values, within both SQLite's and PostgreSQL's limits.
const ROWS_PER_INSERT: usize = 1000;

/// Totals per (workspace, range, metric).
type TotalsByKey = BTreeMap<(WorkspaceId, UsageRange, String), MetricTotal>;

#[async_trait]
impl<C: Executor> UsageRepository for Repo<C> {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn record(&self, events: &[PlacedEvent], now: DateTime<Utc>) -> Result<Vec<bool>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(p) = events.iter().find(|p| !p.period.contains(p.event.at)) {
            return Err(StoreError::Other(format!("usage event `{}` is outside the period given", p.event.id)));
        }
        // Its own transaction (a savepoint inside the caller's), so the batch commits whole however it is called.
        let tx = self.begin_write().await?;
        let inner = Repo::new(tx, self.changes.clone());
        let (recorded, changed) = inner.record_in(events, now).await?;
        inner.conn.commit().await.map_err(map_db_err)?;
        for id in changed {
            self.usage_changed(&id).await?;
        }
        Ok(recorded)
    }

    /// Debug-level span: read on the entitlement check's hot path.
    #[tracing::instrument(level = "debug", skip_all, fields(workspace_id = %workspace))]
    async fn totals(&self, workspace: &WorkspaceId, range: UsageRange) -> Result<UsageTotals, StoreError> {
        self.through_cache(
            |cache| cache.usage(workspace, range),
            self.load_totals(workspace, range),
            |cache, stamp, totals| cache.store_usage(workspace, stamp, range, totals),
        )
        .await
    }

    async fn contains(&self, workspace: &WorkspaceId, id: &str) -> Result<bool, StoreError> {
        use usage_event::Column;
        let found = usage_event::Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .filter(Column::EventId.eq(id))
            .into_tuple::<i64>()
            .one(&self.conn)
            .await
            .map_err(map_db_err)?;
        Ok(found.is_some())
    }
}

impl<C: Executor> Repo<C> {
    /// [`UsageRepository::record`]'s statements; also the workspaces whose usage changed.
    async fn record_in(
        &self,
        events: &[PlacedEvent],
        now: DateTime<Utc>,
    ) -> Result<(Vec<bool>, BTreeSet<WorkspaceId>), StoreError> {
        let workspaces: BTreeSet<&WorkspaceId> = events.iter().map(|p| &p.event.workspace_id).collect();
        // Sorted (a set), so lockers of overlapping sets never wait on each other in a cycle.
        self.lock_for_usage(&workspaces.iter().copied().collect::<Vec<_>>()).await?;
        self.hold_report_horizon().await?;

        let mut seen = HashSet::with_capacity(events.len());
        let first: Vec<bool> = events.iter().map(|p| seen.insert((&p.event.workspace_id, &p.event.id))).collect();
        let earliest = events.iter().map(|p| p.event.at).min().unwrap_or(now);
        let mut ranges = self.open_ranges(&workspaces, earliest).await?;
        for placed in events.iter().zip(&first).filter(|(_, first)| **first).map(|(p, _)| p) {
            let held = ranges.entry(placed.event.workspace_id.clone()).or_default();
            if !held.iter().any(|r| r.contains(placed.event.at)) {
                self.open_range(&placed.event.workspace_id, placed.period, now).await?;
                held.push(placed.period);
            }
        }

        let fresh: Vec<&PlacedEvent> = events.iter().zip(&first).filter(|(_, first)| **first).map(|(p, _)| p).collect();
        let inserted = self.insert_events(&fresh, now).await?;
        let mut deltas = TotalsByKey::new();
        for placed in fresh.iter().zip(&inserted).filter(|(_, new)| **new).map(|(p, _)| p) {
            let event = &placed.event;
            for range in ranges.get(&event.workspace_id).into_iter().flatten().filter(|r| r.contains(event.at)) {
                let key = (event.workspace_id.clone(), *range, event.metric.clone());
                deltas.entry(key).or_default().add(event.quantity).map_err(overflow)?;
            }
        }
        self.add_totals(deltas, earliest).await?;

        // Each first occurrence takes the next verdict of the insert; a repeat within the batch is a duplicate.
        let mut verdicts = inserted.into_iter();
        let recorded: Vec<bool> = first.iter().map(|first| *first && verdicts.next().unwrap_or(false)).collect();
        let changed = events.iter().zip(&recorded).filter(|(_, new)| **new).map(|(p, _)| p.event.workspace_id.clone());
        let changed = changed.collect();
        Ok((recorded, changed))
    }

    /// PostgreSQL: a shared lock every transaction that inserts usage events holds to its end. Reporting to a
    /// processor takes it exclusively for an instant to learn the highest event id below which every insert has
    /// committed (ids come from a sequence, and commits need not follow its order). SQLite has one writer.
    async fn hold_report_horizon(&self) -> Result<(), StoreError> {
        if self.conn.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let sql = "SELECT pg_advisory_xact_lock_shared(hashtextextended('tollgate:usage-events', 0))";
        self.conn.execute_raw(Statement::from_string(DbBackend::Postgres, sql)).await.map_err(map_db_err)?;
        Ok(())
    }

    /// The ranges of `workspaces` that end after `earliest` (older ones cannot hold an event of the batch).
    async fn open_ranges(
        &self,
        workspaces: &BTreeSet<&WorkspaceId>,
        earliest: DateTime<Utc>,
    ) -> Result<BTreeMap<WorkspaceId, Vec<UsageRange>>, StoreError> {
        use usage_period::Column;
        let rows = usage_period::Entity::find()
            .filter(Column::WorkspaceId.is_in(workspaces.iter().map(|w| w.as_str())))
            .filter(Column::PeriodEnd.gt(earliest))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let mut ranges: BTreeMap<WorkspaceId, Vec<UsageRange>> = BTreeMap::new();
        for row in rows {
            let workspace =
                WorkspaceId::parse(row.workspace_id).map_err(|e| corrupt("usage_periods.workspace_id", e))?;
            ranges.entry(workspace).or_default().push(UsageRange { start: row.period_start, end: row.period_end });
        }
        Ok(ranges)
    }

    /// Opens `range` for `workspace` with the totals of the events it already holds.
    async fn open_range(
        &self,
        workspace: &WorkspaceId,
        range: UsageRange,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let marker = usage_period::ActiveModel {
            workspace_id: sea_orm::ActiveValue::Set(workspace.as_str().to_owned()),
            period_start: sea_orm::ActiveValue::Set(range.start),
            period_end: sea_orm::ActiveValue::Set(range.end),
            opened_at: sea_orm::ActiveValue::Set(now),
        };
        usage_period::Entity::insert(marker)
            .on_conflict_do_nothing()
            .exec_without_returning(&self.conn)
            .await
            .map_err(map_db_err)?;
        let existing = self.scan_totals(workspace, range).await?;
        let rows: TotalsByKey =
            existing.into_iter().map(|(metric, total)| ((workspace.clone(), range, metric), total)).collect();
        self.write_totals(&rows).await
    }

    /// Adds `deltas` to the stored totals.
    async fn add_totals(&self, deltas: TotalsByKey, earliest: DateTime<Utc>) -> Result<(), StoreError> {
        if deltas.is_empty() {
            return Ok(());
        }
        use usage_total::Column;
        let workspaces: BTreeSet<&str> = deltas.keys().map(|(w, _, _)| w.as_str()).collect();
        let rows = usage_total::Entity::find()
            .filter(Column::WorkspaceId.is_in(workspaces))
            .filter(Column::PeriodEnd.gt(earliest))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let mut stored = TotalsByKey::new();
        for row in rows {
            let workspace = WorkspaceId::parse(row.workspace_id.clone()).map_err(|e| corrupt("usage_totals", e))?;
            let key = (workspace, UsageRange { start: row.period_start, end: row.period_end }, row.metric.clone());
            if deltas.contains_key(&key) {
                stored.insert(key, total_from_row(&row)?);
            }
        }
        let mut merged = TotalsByKey::new();
        for (key, delta) in deltas {
            let mut total = stored.remove(&key).unwrap_or_default();
            total.merge(&delta).map_err(overflow)?;
            merged.insert(key, total);
        }
        self.write_totals(&merged).await
    }

    /// Upserts whole totals rows, in key order (so concurrent writers lock rows in one order).
    async fn write_totals(&self, rows: &TotalsByKey) -> Result<(), StoreError> {
        use usage_total::Column;
        let entries: Vec<_> = rows.iter().collect();
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            let mut insert = Query::insert();
            insert.into_table(usage_total::Entity).columns([
                Column::WorkspaceId,
                Column::PeriodStart,
                Column::PeriodEnd,
                Column::Metric,
                Column::TotalSum,
                Column::TotalMax,
                Column::EventCount,
            ]);
            for ((workspace, range, metric), total) in chunk {
                let events = i64::try_from(total.events).map_err(|_| overflow(billing_domain::usage::TotalOverflow))?;
                insert.values_panic([
                    Expr::val(workspace.as_str()),
                    Expr::val(range.start),
                    Expr::val(range.end),
                    Expr::val(metric.as_str()),
                    Expr::val(total.sum.to_string()),
                    Expr::val(total.max.to_string()),
                    Expr::val(events),
                ]);
            }
            insert.on_conflict(
                OnConflict::columns([Column::WorkspaceId, Column::PeriodStart, Column::PeriodEnd, Column::Metric])
                    .update_columns([Column::TotalSum, Column::TotalMax, Column::EventCount])
                    .to_owned(),
            );
            self.conn.execute(&insert).await.map_err(map_db_err)?;
        }
        Ok(())
    }

    /// Inserts the events their workspaces have not recorded; whether each one was. The insert
    /// itself tells the duplicates apart (`ON CONFLICT DO NOTHING`), so a batch costs one pass over the unique index,
    /// not a read of it and then a write.
    async fn insert_events(&self, events: &[&PlacedEvent], now: DateTime<Utc>) -> Result<Vec<bool>, StoreError> {
        let skipped = if self.conn.get_database_backend() == DbBackend::Postgres {
            self.insert_events_postgres(events, now).await?
        } else {
            self.insert_events_sqlite(events, now).await?
        };
        if skipped.is_empty() {
            return Ok(vec![true; events.len()]);
        }
        Ok(events.iter().map(|p| !skipped.contains(&event_key(p))).collect())
    }

    /// SQLite: multi-row inserts; those that were not all written are told apart afterwards by reading back the
    /// rows above the highest id seen before the insert. That is exact because the transaction holds SQLite's one
    /// write lock (`BEGIN IMMEDIATE`): no other writer can add rows in between. The (workspace, id) of each event
    /// already recorded.
    async fn insert_events_sqlite(
        &self,
        events: &[&PlacedEvent],
        now: DateTime<Utc>,
    ) -> Result<HashSet<(String, String)>, StoreError> {
        use usage_event::Column;
        let watermark =
            Statement::from_string(DbBackend::Sqlite, "SELECT COALESCE(MAX(id), 0) AS id FROM usage_events");
        let watermark: i64 = match self.conn.query_one_raw(watermark).await.map_err(map_db_err)? {
            Some(row) => row.try_get("", "id").map_err(map_db_err)?,
            None => 0,
        };
        let mut written = 0;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut insert = Query::insert();
            insert.into_table(usage_event::Entity).columns([
                Column::WorkspaceId,
                Column::EventId,
                Column::Metric,
                Column::Quantity,
                Column::OccurredAt,
                Column::RecordedAt,
            ]);
            for placed in chunk {
                let event = &placed.event;
                insert.values_panic([
                    Expr::val(event.workspace_id.as_str()),
                    Expr::val(event.id.as_str()),
                    Expr::val(event.metric.as_str()),
                    Expr::val(event.quantity.to_string()),
                    Expr::val(event.at),
                    Expr::val(now),
                ]);
            }
            insert.on_conflict(OnConflict::columns([Column::WorkspaceId, Column::EventId]).do_nothing().to_owned());
            written += self.conn.execute(&insert).await.map_err(map_db_err)?.rows_affected();
        }
        if written == events.len() as u64 {
            return Ok(HashSet::new());
        }
        let sql = format!("SELECT workspace_id, event_id FROM usage_events WHERE id > {watermark}");
        let ours = self.event_keys(Statement::from_string(DbBackend::Sqlite, sql)).await?;
        Ok(events.iter().map(|p| event_key(p)).filter(|k| !ours.contains(k)).collect())
    }

    /// PostgreSQL: the whole batch as one array per column, unnested by the server — six bound values instead of
    /// six per event (binding thousands of parameters costs more than inserting the rows) — and only the rows
    /// the insert skipped handed back: usually none. The (workspace, id) of each event already recorded.
    async fn insert_events_postgres(
        &self,
        events: &[&PlacedEvent],
        now: DateTime<Utc>,
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let column = |f: &dyn Fn(&UsageEvent) -> String| -> sea_orm::Value {
            events.iter().map(|p| f(&p.event)).collect::<Vec<String>>().into()
        };
        let values = vec![
            column(&|e| e.workspace_id.as_str().to_owned()),
            column(&|e| e.id.clone()),
            column(&|e| e.metric.clone()),
            column(&|e| e.quantity.to_string()),
            events.iter().map(|p| p.event.at).collect::<Vec<DateTime<Utc>>>().into(),
            now.into(),
        ];
        let sql = "WITH input AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
                   $5::timestamptz[]) AS t(w, e, m, q, o)), \
                   inserted AS (INSERT INTO usage_events \
                   (workspace_id, event_id, metric, quantity, occurred_at, recorded_at) \
                   SELECT w, e, m, q, o, $6 FROM input ON CONFLICT (workspace_id, event_id) DO NOTHING \
                   RETURNING workspace_id, event_id) \
                   SELECT w AS workspace_id, e AS event_id FROM input \
                   EXCEPT SELECT workspace_id, event_id FROM inserted";
        self.event_keys(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await
    }

    /// The (workspace, event id) pairs `statement` returns.
    async fn event_keys(&self, statement: Statement) -> Result<HashSet<(String, String)>, StoreError> {
        let mut found = HashSet::new();
        for row in self.conn.query_all_raw(statement).await.map_err(map_db_err)? {
            let workspace: String = row.try_get("", "workspace_id").map_err(map_db_err)?;
            let id: String = row.try_get("", "event_id").map_err(map_db_err)?;
            found.insert((workspace, id));
        }
        Ok(found)
    }

    /// The kept totals of `range` when it was opened, else a scan of its events.
    async fn load_totals(&self, workspace: &WorkspaceId, range: UsageRange) -> Result<UsageTotals, StoreError> {
        let opened = usage_period::Entity::find_by_id((workspace.as_str().to_owned(), range.start, range.end))
            .one(&self.conn)
            .await
            .map_err(map_db_err)?;
        if opened.is_none() {
            return self.scan_totals(workspace, range).await;
        }
        use usage_total::Column;
        let rows = usage_total::Entity::find()
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .filter(Column::PeriodStart.eq(range.start))
            .filter(Column::PeriodEnd.eq(range.end))
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        rows.iter().map(|row| Ok((row.metric.clone(), total_from_row(row)?))).collect()
    }

    /// Totals of the events `range` holds, read one by one (summed here: SQLite has no exact decimal type).
    async fn scan_totals(&self, workspace: &WorkspaceId, range: UsageRange) -> Result<UsageTotals, StoreError> {
        use usage_event::Column;
        let rows = usage_event::Entity::find()
            .select_only()
            .column(Column::Metric)
            .column(Column::Quantity)
            .filter(Column::WorkspaceId.eq(workspace.as_str()))
            .filter(Column::OccurredAt.gte(range.start))
            .filter(Column::OccurredAt.lt(range.end))
            .into_tuple::<(String, String)>()
            .all(&self.conn)
            .await
            .map_err(map_db_err)?;
        let mut totals = UsageTotals::new();
        for (metric, raw) in rows {
            let quantity = Decimal::from_str(&raw).map_err(|e| corrupt("usage_events.quantity", e))?;
            totals.entry(metric).or_default().add(quantity).map_err(overflow)?;
        }
        Ok(totals)
    }
}

/// An event's (workspace, id), as [`Repo::event_keys`] reads them back.
fn event_key(placed: &PlacedEvent) -> (String, String) {
    (placed.event.workspace_id.as_str().to_owned(), placed.event.id.clone())
}

fn total_from_row(row: &usage_total::Model) -> Result<MetricTotal, StoreError> {
    let decimal = |raw: &str| Decimal::from_str(raw).map_err(|e| corrupt("usage_totals", e));
    Ok(MetricTotal {
        sum: decimal(&row.total_sum)?,
        max: decimal(&row.total_max)?,
        events: u64::try_from(row.event_count).map_err(|e| corrupt("usage_totals.event_count", e))?,
    })
}

fn overflow(e: billing_domain::usage::TotalOverflow) -> StoreError {
    StoreError::Other(e.to_string())
}
