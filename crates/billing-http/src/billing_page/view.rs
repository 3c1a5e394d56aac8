//! One view of the page: what it reads ([`gather`], the same services the API's reads call) and what it shows
//! ([`build`], every text already in the viewer's language). Templates only lay it out.

use std::collections::BTreeMap;

use billing_domain::catalog::{Catalog, Interval, Limit, LimitSource, Plan, PlanKind};
use billing_domain::dunning::DunningAction;
use billing_domain::entitlements::{PlanSource, check_limit};
use billing_domain::ids::{PlanId, WorkspaceId};
use billing_domain::money::Money;
use billing_domain::ports::{Invoice, LedgerEntry, Proration};
use billing_domain::services::{EntitlementsView, WorkspaceOverview};
use billing_domain::subscription::{Subscription, SubscriptionStatus};
use billing_domain::usage::{UsageRange, UsageTotals};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;

use super::BillingPage;
use super::chart::{self, Day};
use super::strings::{Locale, Strings, fill};
use super::tokens::Session;
use crate::error::ApiError;
use crate::state::AppState;

const INVOICES_SHOWN: u32 = 12;
const LEDGER_SHOWN: u32 = 10;

/// Everything one view reads.
pub(crate) struct Gathered {
    pub overview: WorkspaceOverview,
    pub entitlements: EntitlementsView,
    /// `None` when the processor could not list them (the rest of the page still shows).
    pub invoices: Option<Vec<Invoice>>,
    pub ledger: Vec<LedgerEntry>,
    pub days: BTreeMap<NaiveDate, UsageTotals>,
    pub previous: UsageRange,
    /// What switching the live subscription to each other plan would bill now, as the processor previews it
    /// (plans it could not preview are missing).
    pub previews: BTreeMap<PlanId, Money>,
    pub now: DateTime<Utc>,
}

pub(crate) async fn gather(state: &AppState, page: &BillingPage, ws: &WorkspaceId) -> Result<Gathered, ApiError> {
    let overview = state.workspaces.overview(ws).await?;
    let entitlements = state.entitlements.all(ws).await?;
    let invoices = match state.account.invoices(ws, INVOICES_SHOWN, None).await {
        Ok(page) => Some(page.invoices),
        Err(error) => {
            tracing::warn!(%error, "the billing page shows no invoices: the processor did not list them");
            None
        }
    };
    let ledger = page.ledger.recent_ledger(ws, LEDGER_SHOWN).await.map_err(ApiError::from)?;
    let previous = UsageRange {
        start: previous_start(entitlements.period_start, entitlements.period_end),
        end: entitlements.period_start,
    };
    let range = UsageRange { start: previous.start, end: entitlements.period_end };
    let days = page.usage_days.daily_totals(ws, range).await.map_err(ApiError::from)?;
    let previews = previews(state, ws, &overview, &entitlements).await;
    Ok(Gathered { overview, entitlements, invoices, ledger, days, previous, previews, now: state.clock.now() })
}

/// Where the period before `start`–`end` began: a month or a year back for monthly and yearly periods (months
/// differ in length), else as long before.
fn previous_start(start: DateTime<Utc>, end: DateTime<Utc>) -> DateTime<Utc> {
    let months = match (end - start).num_days() {
        28..=31 => 1,
        365 | 366 => 12,
        _ => 0,
    };
    match months {
        0 => start - (end - start),
        n => start.checked_sub_months(chrono::Months::new(n)).unwrap_or(start - (end - start)),
    }
}

/// The processor's preview of a switch to each plan a live subscription may switch to, asked at once.
async fn previews(
    state: &AppState,
    ws: &WorkspaceId,
    overview: &WorkspaceOverview,
    entitlements: &EntitlementsView,
) -> BTreeMap<PlanId, Money> {
    if overview.subscription.is_none()
        || !matches!(entitlements.plan_source, PlanSource::Subscription | PlanSource::GracePeriod)
    {
        return BTreeMap::new();
    }
    let switchable = state
        .catalog
        .plans()
        .iter()
        .filter(|p| p.is_subscription() && !p.is_default && p.id.as_str() != entitlements.plan.as_str());
    let asked = switchable.map(|plan| async move {
        match state.subscription_commands.preview_change(ws, &plan.id).await {
            Ok(preview) => Some((plan.id.clone(), preview.prorated)),
            Err(error) => {
                tracing::debug!(%error, plan = %plan.id, "no proration preview for this plan");
                None
            }
        }
    });
    futures::future::join_all(asked).await.into_iter().flatten().collect()
}

/// A message at the top of the page, from the `notice` or `problem` of the URL a form redirected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flash {
    PlanChanged,
    Canceled,
    Resumed,
    TrialStarted,
    CheckoutSuccess,
    CheckoutCanceled,
    Ours,
    Processor,
    NotAllowed,
    ReadOnly,
    InProgress,
    FormExpired,
    NoSubscription,
    AlreadySubscribed,
    TrialUsed,
    CouponInvalid,
    CouponExhausted,
    CouponRedeemed,
}

impl Flash {
    const NOTICES: [(Flash, &'static str); 6] = [
        (Flash::PlanChanged, "plan_changed"),
        (Flash::Canceled, "canceled"),
        (Flash::Resumed, "resumed"),
        (Flash::TrialStarted, "trial_started"),
        (Flash::CheckoutSuccess, "checkout_success"),
        (Flash::CheckoutCanceled, "checkout_canceled"),
    ];
    const PROBLEMS: [(Flash, &'static str); 12] = [
        (Flash::Ours, "ours"),
        (Flash::Processor, "processor"),
        (Flash::NotAllowed, "not_allowed"),
        (Flash::ReadOnly, "read_only"),
        (Flash::InProgress, "in_progress"),
        (Flash::FormExpired, "form_expired"),
        (Flash::NoSubscription, "no_subscription"),
        (Flash::AlreadySubscribed, "already_subscribed"),
        (Flash::TrialUsed, "trial_used"),
        (Flash::CouponInvalid, "coupon_invalid"),
        (Flash::CouponExhausted, "coupon_exhausted"),
        (Flash::CouponRedeemed, "coupon_redeemed"),
    ];

    /// The flash a page URL's query names; unknown values show nothing.
    pub fn from_query(query: &str) -> Option<Self> {
        form_urlencoded::parse(query.as_bytes()).find_map(|(name, value)| {
            let table: &[(Flash, &str)] = match name.as_ref() {
                "notice" => &Self::NOTICES,
                "problem" => &Self::PROBLEMS,
                _ => return None,
            };
            table.iter().find(|(_, key)| *key == value).map(|(flash, _)| *flash)
        })
    }

    /// `notice=…` or `problem=…`, for a redirect.
    pub fn query(self) -> String {
        let find = |table: &[(Flash, &'static str)]| table.iter().find(|(f, _)| *f == self).map(|(_, k)| *k);
        match find(&Self::NOTICES) {
            Some(key) => format!("notice={key}"),
            None => format!("problem={}", find(&Self::PROBLEMS).unwrap_or("ours")),
        }
    }

    pub fn is_problem(self) -> bool {
        !Self::NOTICES.iter().any(|(f, _)| *f == self)
    }

    fn text(self, t: &Strings) -> &'static str {
        match self {
            Self::PlanChanged => t.notice_plan_changed,
            Self::Canceled => t.notice_canceled,
            Self::Resumed => t.notice_resumed,
            Self::TrialStarted => t.notice_trial_started,
            Self::CheckoutSuccess => t.notice_checkout_success,
            Self::CheckoutCanceled => t.notice_checkout_canceled,
            Self::Ours => t.error_ours,
            Self::Processor => t.error_processor,
            Self::NotAllowed => t.error_not_allowed,
            Self::ReadOnly => t.error_read_only,
            Self::InProgress => t.error_in_progress,
            Self::FormExpired => t.error_form_expired,
            Self::NoSubscription => t.error_no_subscription,
            Self::AlreadySubscribed => t.error_already_subscribed,
            Self::TrialUsed => t.error_trial_used,
            Self::CouponInvalid => t.error_coupon_invalid,
            Self::CouponExhausted => t.error_coupon_exhausted,
            Self::CouponRedeemed => t.error_coupon_redeemed,
        }
    }
}

/// The page, ready to lay out.
pub(crate) struct PageView {
    pub lang: &'static str,
    pub t: &'static Strings,
    pub product: String,
    pub logo_url: Option<String>,
    pub back: Option<(String, String)>,
    pub workspace_name: String,
    pub notice: Option<&'static str>,
    pub problem: Option<&'static str>,
    pub can_act: bool,
    pub csrf: String,
    /// A fresh key per view: a form posted twice (a double click) makes one change.
    pub attempt: String,
    pub actions: String,
    pub plan_name: String,
    pub status: String,
    /// `ok`, `warn` or `bad`.
    pub status_tone: &'static str,
    pub details: Vec<String>,
    pub can_cancel: bool,
    pub can_resume: bool,
    /// The processor knows the workspace as a customer (it has subscribed once): its portal has a card to manage.
    pub can_open_portal: bool,
    pub trial_offer: Option<String>,
    pub period: String,
    pub limits: Vec<LimitRow>,
    pub charts: Vec<ChartView>,
    /// The metrics with no usage in either period, named in one line instead of as empty charts.
    pub quiet_metrics: Option<String>,
    pub features: Vec<FeatureRow>,
    pub credit_balance: String,
    pub packs: Vec<PackOffer>,
    pub ledger: Vec<LedgerRow>,
    pub invoices: Option<Vec<InvoiceRow>>,
    pub plans: Vec<PlanCard>,
    pub proration: Option<&'static str>,
}

pub(crate) struct LimitRow {
    pub label: String,
    pub value: String,
    /// Width of the bar, 0–100; `None` when there is nothing to measure (unlimited, or a count not given).
    pub percent: Option<String>,
    /// `ok`, `warn` (from 80%) or `full`.
    pub level: &'static str,
    pub level_text: Option<&'static str>,
}

pub(crate) struct ChartView {
    pub title: String,
    pub summary: String,
    pub svg: String,
}

pub(crate) struct FeatureRow {
    pub label: String,
    pub on: bool,
}

pub(crate) struct PackOffer {
    pub plan: String,
    pub label: String,
}

pub(crate) struct LedgerRow {
    pub date: String,
    pub change: String,
    pub balance: String,
    pub reference: String,
}

pub(crate) struct InvoiceRow {
    pub number: String,
    pub date: String,
    pub status: String,
    pub amount: String,
    pub hosted_url: Option<String>,
    pub pdf_url: Option<String>,
}

pub(crate) struct PlanCard {
    pub id: String,
    pub name: String,
    pub price: String,
    pub description: String,
    pub current: bool,
    pub lines: Vec<PlanLine>,
    /// `change-plan` (a live subscription switches), `checkout` (none yet), or `None` (no button).
    pub action: Option<&'static str>,
    pub button: String,
    /// What switching now bills, as the processor previews it.
    pub preview: Option<String>,
}

/// The processor's preview of a switch, in the customer's words.
fn preview_text(t: &Strings, prorated: &Money, proration: Proration) -> String {
    let amount = money(&Money { minor: prorated.minor.abs(), currency: prorated.currency.clone() });
    match (prorated.minor.signum(), proration) {
        (0, _) => t.preview_nothing.to_owned(),
        (-1, _) => fill(t.preview_credit, &[("amount", &amount)]),
        (_, Proration::AlwaysInvoice) => fill(t.preview_charge_now, &[("amount", &amount)]),
        _ => fill(t.preview_charge_next, &[("amount", &amount)]),
    }
}

pub(crate) struct PlanLine {
    pub label: String,
    pub value: String,
    /// What the current plan has, when it differs.
    pub now: Option<String>,
}

pub(crate) fn money(amount: &Money) -> String {
    let exponent = amount.currency.minor_exponent();
    let unit = 10_i64.pow(exponent);
    let sign = if amount.minor < 0 { "-" } else { "" };
    let (major, minor) = (amount.minor.unsigned_abs() / unit as u64, amount.minor.unsigned_abs() % unit as u64);
    if exponent == 0 {
        format!("{sign}{major} {}", amount.currency)
    } else {
        format!("{sign}{major}.{minor:0width$} {}", amount.currency, width = exponent as usize)
    }
}

fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn limit_text(t: &Strings, limit: Limit) -> String {
    match limit {
        Limit::Unlimited => t.unlimited.to_owned(),
        Limit::Limited(n) => n.to_string(),
    }
}

/// The live subscription: one not yet ended.
fn live(overview: &WorkspaceOverview) -> Option<&Subscription> {
    overview.subscription.as_ref().filter(|s| !s.status.is_terminal())
}

pub(crate) fn build(
    page: &BillingPage,
    catalog: &Catalog,
    session: &Session,
    ws: &WorkspaceId,
    g: &Gathered,
    flash: Option<Flash>,
    attempt: String,
) -> PageView {
    let locale = Locale::parse(&session.viewer.locale).unwrap_or(page.settings.default_locale);
    let t = locale.strings();
    let branding = &page.settings.branding;
    let can_act = session.viewer.role.may_act();
    let subscription = live(&g.overview);
    let current = catalog.get(&g.entitlements.plan).unwrap_or_else(|| catalog.default_plan());
    let (status, status_tone, details) = status(page, t, g, subscription);
    let can_cancel = subscription.is_some_and(|s| {
        !s.terms.cancel_at_period_end
            && matches!(
                s.status,
                SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue
            )
    });
    let trial_offer = (g.overview.workspace.trial_ends_at.is_none() && subscription.is_none())
        .then(|| catalog.get(&page.settings.trial.plan))
        .flatten()
        .map(|plan| fill(t.button_trial, &[("n", &page.settings.trial.days.to_string()), ("plan", &plan.name)]));
    let charts = charts(catalog, t, g);
    let quiet: Vec<&str> = charts.iter().filter(|(_, used)| !used).map(|(chart, _)| chart.title.as_str()).collect();
    let quiet_metrics = (!quiet.is_empty()).then(|| fill(t.no_usage_of, &[("metrics", &quiet.join(", "))]));
    PageView {
        lang: locale.tag(),
        t,
        product: branding.product_name.clone(),
        logo_url: branding.logo_url.clone(),
        back: session.viewer.return_url.clone().map(|url| (url, fill(t.back, &[("product", &branding.product_name)]))),
        workspace_name: g.overview.workspace.name.clone(),
        notice: flash.filter(|f| !f.is_problem()).map(|f| f.text(t)),
        problem: flash.filter(|f| f.is_problem()).map(|f| f.text(t)),
        can_act,
        csrf: session.csrf.clone(),
        attempt,
        actions: format!("/billing/{ws}/actions"),
        plan_name: current.name.clone(),
        status,
        status_tone,
        details,
        can_cancel,
        can_resume: subscription.is_some_and(|s| s.terms.cancel_at_period_end),
        can_open_portal: g.overview.subscription.is_some(),
        trial_offer,
        period: fill(
            t.period,
            &[("start", &date(g.entitlements.period_start)), ("end", &date(g.entitlements.period_end))],
        ),
        limits: limits(catalog, t, g, &session.viewer.counts),
        charts: charts.into_iter().filter_map(|(chart, used)| used.then_some(chart)).collect(),
        quiet_metrics,
        features: g
            .entitlements
            .features
            .iter()
            .map(|(name, on)| FeatureRow {
                label: catalog.feature_declarations().get(name).cloned().unwrap_or_else(|| name.clone()),
                on: *on,
            })
            .collect(),
        credit_balance: fill(t.credit_balance, &[("n", &g.overview.workspace.credit_balance.to_string())]),
        packs: catalog
            .plans()
            .iter()
            .filter(|p| matches!(p.kind, PlanKind::Credits { .. }))
            .map(|p| PackOffer {
                plan: p.id.to_string(),
                label: fill(t.buy_credits, &[("name", &p.name), ("price", &money(&p.price))]),
            })
            .collect(),
        ledger: g
            .ledger
            .iter()
            .map(|e| LedgerRow {
                date: date(e.at),
                change: format!("{:+}", e.amount),
                balance: e.balance_after.to_string(),
                reference: e.key.clone(),
            })
            .collect(),
        invoices: g.invoices.as_ref().map(|invoices| {
            invoices
                .iter()
                .map(|i| InvoiceRow {
                    number: i.number.clone().unwrap_or_else(|| i.id.to_string()),
                    date: date(i.created_at),
                    status: i.status.replace('_', " "),
                    amount: money(&i.amount_due),
                    hosted_url: i.hosted_url.clone().filter(|u| is_web_url(u)),
                    pdf_url: i.pdf_url.clone().filter(|u| is_web_url(u)),
                })
                .collect()
        }),
        plans: plans(catalog, t, current, subscription, g, page.settings.proration),
        // Each plan says what its switch bills as the processor previews it (the sandbox, prorating nothing, would
        // contradict general words); the policy in general words only when no preview came. A first checkout
        // prorates nothing.
        proration: match page.settings.proration {
            _ if subscription.is_none() || !g.previews.is_empty() => None,
            Proration::CreateProrations => Some(t.proration_create),
            Proration::AlwaysInvoice => Some(t.proration_invoice),
            Proration::None => Some(t.proration_none),
        },
    }
}

/// Only http(s) links reach an `href` (a processor's data never becomes a `javascript:` link).
fn is_web_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fn status(
    page: &BillingPage,
    t: &Strings,
    g: &Gathered,
    subscription: Option<&Subscription>,
) -> (String, &'static str, Vec<String>) {
    let mut details = Vec::new();
    if g.overview.plan_source == PlanSource::Restricted {
        return (t.status_restricted.to_owned(), "bad", details);
    }
    let Some(sub) = subscription else {
        return match g.overview.plan_source {
            PlanSource::Trial => {
                (fill(t.status_trialing, &[("n", &g.overview.trial_days_remaining.to_string())]), "ok", details)
            }
            _ if g.overview.subscription.is_some() => (t.status_canceled.to_owned(), "warn", details),
            _ => (t.status_free.to_owned(), "ok", details),
        };
    };
    let period_end = sub.terms.current_period_end.map(date).unwrap_or_default();
    match sub.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing if sub.terms.cancel_at_period_end => {
            (fill(t.status_canceling, &[("date", &period_end)]), "warn", details)
        }
        SubscriptionStatus::Trialing => {
            let days = sub.terms.trial_end.map_or(0, |end| (end - g.now).num_days().max(0));
            (fill(t.status_trialing, &[("n", &days.to_string())]), "ok", details)
        }
        SubscriptionStatus::Active => {
            if !period_end.is_empty() {
                details.push(fill(t.renews_on, &[("date", &period_end)]));
            }
            (t.status_active.to_owned(), "ok", details)
        }
        SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid => {
            if let Some(case) = &g.overview.dunning {
                details.push(fill(t.dunning_amount, &[("amount", &money(&case.amount))]));
                if let (Some(step), Some(at)) = (page.settings.dunning.step(case.next_step), case.next_step_at) {
                    let action = match step.action {
                        DunningAction::Reminder => t.dunning_reminder,
                        DunningAction::Urgent => t.dunning_urgent,
                        DunningAction::Restrict => t.dunning_restrict,
                        DunningAction::FinalWarning => t.dunning_final_warning,
                        DunningAction::Cancel => t.dunning_cancel,
                    };
                    details.push(fill(t.dunning_next, &[("date", &date(at)), ("action", action)]));
                }
            }
            (t.status_past_due.to_owned(), "bad", details)
        }
        other => (fill(t.status_other, &[("status", &other.as_str().replace('_', " "))]), "warn", details),
    }
}

fn limits(catalog: &Catalog, t: &Strings, g: &Gathered, counts: &BTreeMap<String, u64>) -> Vec<LimitRow> {
    g.entitlements
        .limits
        .iter()
        .map(|(name, view)| {
            let source = catalog.limit_declarations().get(name).and_then(|d| d.source());
            let check = match source {
                Some(LimitSource::Count) => counts.get(name).map(|&used| check_limit(name, view.check.limit, used, 0)),
                _ => Some(view.check.clone()),
            };
            let (value, percent) = match (&check, view.check.limit) {
                (_, Limit::Unlimited) => (t.unlimited.to_owned(), None),
                (Some(check), Limit::Limited(max)) => (
                    fill(t.used_of, &[("used", &check.used.to_string()), ("limit", &max.to_string())]),
                    check.percent_used,
                ),
                (None, limit) => (fill(t.up_to, &[("limit", &limit_text(t, limit))]), None),
            };
            let (level, level_text) = match percent {
                Some(p) if p > 100.0 => ("full", Some(t.over_limit)),
                Some(p) if p >= 100.0 => ("full", Some(t.at_limit)),
                Some(p) if p >= 80.0 => ("warn", Some(t.near_limit)),
                _ => ("ok", None),
            };
            LimitRow {
                label: view.description.clone(),
                value,
                percent: percent.map(|p| format!("{:.1}", p.min(100.0))),
                level,
                level_text,
            }
        })
        .collect()
}

/// A chart per metric, and whether it has any usage to show.
fn charts(catalog: &Catalog, t: &Strings, g: &Gathered) -> Vec<(ChartView, bool)> {
    let today = g.now.date_naive();
    let first = g.previous.start.date_naive();
    let current_start = g.previous.end.date_naive();
    let last = today.min((g.entitlements.period_end - chrono::Duration::seconds(1)).date_naive());
    catalog
        .metric_declarations()
        .iter()
        .enumerate()
        .map(|(i, (metric, declaration))| {
            let peak = matches!(declaration.aggregation, billing_domain::catalog::Aggregation::Max);
            let value = |day: &NaiveDate| {
                g.days
                    .get(day)
                    .and_then(|totals| totals.get(metric))
                    .map_or(0.0, |total| (if peak { total.max } else { total.sum }).to_f64().unwrap_or(0.0))
            };
            let days: Vec<Day> = first
                .iter_days()
                .take_while(|d| *d <= last)
                .map(|d| Day { date: d, value: value(&d), current: d >= current_start })
                .collect();
            let total = |current: bool| {
                let values = days.iter().filter(|d| d.current == current).map(|d| d.value);
                if peak { values.fold(0.0, f64::max) } else { values.sum() }
            };
            let summary = fill(
                t.chart_label,
                &[
                    ("metric", &declaration.description),
                    ("current", &chart::number(total(true))),
                    ("previous", &chart::number(total(false))),
                ],
            );
            let used = days.iter().any(|d| d.value != 0.0);
            let chart = ChartView {
                title: declaration.description.clone(),
                svg: chart::render(&format!("chart-{i}"), &summary, &days),
                summary,
            };
            (chart, used)
        })
        .collect()
}

fn plans(
    catalog: &Catalog,
    t: &Strings,
    current: &Plan,
    subscription: Option<&Subscription>,
    g: &Gathered,
    proration: Proration,
) -> Vec<PlanCard> {
    let source = g.entitlements.plan_source;
    let subscribed = subscription.is_some() && matches!(source, PlanSource::Subscription | PlanSource::GracePeriod);
    catalog
        .plans()
        .iter()
        .filter_map(|plan| {
            let PlanKind::Subscription { interval } = plan.kind else { return None };
            let is_current = plan.id == current.id;
            let per = match interval {
                Interval::Month => t.per_month,
                Interval::Year => t.per_year,
            };
            let mut lines: Vec<PlanLine> = catalog
                .limit_declarations()
                .iter()
                .map(|(name, declaration)| {
                    let value = plan.limits.get(name).copied().unwrap_or(Limit::Limited(0));
                    let now = current.limits.get(name).copied().unwrap_or(Limit::Limited(0));
                    PlanLine {
                        label: declaration.description.clone(),
                        value: limit_text(t, value),
                        now: (!is_current && now != value).then(|| fill(t.now_is, &[("value", &limit_text(t, now))])),
                    }
                })
                .collect();
            lines.extend(catalog.feature_declarations().iter().map(|(name, description)| {
                let on = |p: &Plan| if p.features.contains(name) { t.included } else { t.not_included };
                PlanLine {
                    label: description.clone(),
                    value: on(plan).to_owned(),
                    now: (!is_current && on(plan) != on(current))
                        .then(|| fill(t.now_is, &[("value", &on(current).to_lowercase())])),
                }
            }));
            // The free plan is reached by canceling; a plan is bought through checkout until a subscription
            // exists, then switched to.
            let action = match () {
                _ if is_current || plan.is_default => None,
                _ if subscribed => Some("change-plan"),
                _ => Some("checkout"),
            };
            let label = if subscribed { t.switch_to } else { t.subscribe_to };
            Some(PlanCard {
                id: plan.id.to_string(),
                name: plan.name.clone(),
                price: format!("{} {per}", money(&plan.price)),
                description: plan.description.clone(),
                current: is_current,
                lines,
                action,
                button: fill(label, &[("plan", &plan.name)]),
                preview: g.previews.get(&plan.id).filter(|_| action.is_some()).map(|m| preview_text(t, m, proration)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use billing_domain::money::Currency;

    use super::*;

    #[test]
    fn the_previous_period_is_the_month_or_year_before() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let december = previous_start(at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
        assert_eq!(december, at("2026-11-01T00:00:00Z"), "November has 30 days, not December's 31");
        let march = previous_start(at("2027-03-04T10:00:00Z"), at("2027-04-04T10:00:00Z"));
        assert_eq!(march, at("2027-02-04T10:00:00Z"));
        let year = previous_start(at("2027-01-15T00:00:00Z"), at("2028-01-15T00:00:00Z"));
        assert_eq!(year, at("2026-01-15T00:00:00Z"));
        let week = previous_start(at("2027-01-08T00:00:00Z"), at("2027-01-15T00:00:00Z"));
        assert_eq!(week, at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn money_is_shown_in_major_units_of_its_currency() {
        let usd = |minor| Money::new(minor, Currency::parse("USD").unwrap());
        assert_eq!(money(&usd(1900)), "19.00 USD");
        assert_eq!(money(&usd(-5)), "-0.05 USD");
        assert_eq!(money(&Money::new(500, Currency::parse("JPY").unwrap())), "500 JPY");
        assert_eq!(money(&Money::new(1234, Currency::parse("KWD").unwrap())), "1.234 KWD");
    }

    #[test]
    fn flashes_round_trip_through_the_query_and_unknown_ones_show_nothing() {
        for flash in [Flash::PlanChanged, Flash::CouponInvalid, Flash::Ours] {
            assert_eq!(Flash::from_query(&flash.query()), Some(flash));
        }
        assert_eq!(Flash::from_query("notice=%3Cscript%3E"), None);
        assert_eq!(Flash::from_query("problem=plan_changed"), None, "a notice is never shown as a problem");
        assert!(Flash::CouponExhausted.is_problem() && !Flash::Resumed.is_problem());
    }
}
