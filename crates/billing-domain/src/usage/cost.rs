//! What a period's usage costs on a plan: per metered metric, the quantity beyond the included one times the unit
//! price, in exact decimals, rounded half-even to minor units once per line at the end; the total is the sum of
//! the lines, as an invoice adds up.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::{TotalOverflow, UsageTotals};
use crate::catalog::{Aggregation, Catalog, Plan};
use crate::money::Currency;

/// One metric's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostLine {
    pub metric: String,
    pub aggregation: Aggregation,
    /// The period's total (`sum`) or peak (`max`).
    pub quantity: Decimal,
    /// `None` when the plan does not meter this metric (nothing is billed for it).
    pub included: Option<Decimal>,
    pub billable: Decimal,
    pub unit_price: Option<Decimal>,
    /// `billable × unit_price` in major units, unrounded.
    pub amount: Decimal,
    /// `amount` in minor units, rounded half-even.
    pub amount_minor: i64,
}

/// Every declared metric's line, and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCost {
    pub currency: Currency,
    pub lines: Vec<CostLine>,
    pub total_minor: i64,
}

/// The cost of `totals` on `plan`, one line per metric the catalog declares.
pub fn cost_of(catalog: &Catalog, plan: &Plan, totals: &UsageTotals) -> Result<UsageCost, TotalOverflow> {
    let currency = plan.price.currency.clone();
    let exponent = currency.minor_exponent();
    let mut lines = Vec::with_capacity(catalog.metric_declarations().len());
    let mut total_minor: i64 = 0;
    for (metric, declaration) in catalog.metric_declarations() {
        let quantity = totals.get(metric).map_or(Decimal::ZERO, |t| t.value(declaration.aggregation));
        let component = plan.metered.iter().find(|c| &c.metric == metric);
        let (included, billable, unit_price, amount) = match component {
            Some(c) => {
                let billable = (quantity - c.included).max(Decimal::ZERO);
                let amount = billable.checked_mul(c.unit_price).ok_or(TotalOverflow)?;
                (Some(c.included), billable, Some(c.unit_price), amount)
            }
            None => (None, Decimal::ZERO, None, Decimal::ZERO),
        };
        let amount_minor = round_to_minor(amount, exponent).ok_or(TotalOverflow)?;
        total_minor = total_minor.checked_add(amount_minor).ok_or(TotalOverflow)?;
        lines.push(CostLine {
            metric: metric.clone(),
            aggregation: declaration.aggregation,
            quantity,
            included,
            billable,
            unit_price,
            amount,
            amount_minor,
        });
    }
    Ok(UsageCost { currency, lines, total_minor })
}

/// `amount` (major units) in minor units of a currency with `exponent` decimal places, rounded half to even;
/// `None` beyond `i64`.
pub fn round_to_minor(amount: Decimal, exponent: u32) -> Option<i64> {
    let scaled = amount.checked_mul(Decimal::from(10u64.pow(exponent)))?;
    scaled.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven).to_i64()
}
