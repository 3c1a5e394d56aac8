//! The sandbox's billing meters: usage reported to it (the domain's `UsageReportingOps`) is tallied per customer
//! and meter, each identifier counted once as Stripe's meters deduplicate on it, so a test or a developer can see
//! what reached the processor (`GET /v1/admin/sandbox/workspaces/{id}/meter-events`).

use std::collections::VecDeque;

use billing_domain::error::ProcessorError;
use billing_domain::ids::CustomerId;
use billing_domain::ports::SandboxMeterTally;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::state::{Kind, State};

/// Identifiers remembered per tally for deduplication. A reporter repeats only what it sent since its last saved
/// cursor (at most 50 sends), so the newest 200 of a tally always hold the repeats it can make.
const REMEMBERED: usize = 200;

/// What one meter received from one customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MeterTally {
    pub customer_id: CustomerId,
    pub meter: String,
    pub events: u64,
    pub value: Decimal,
    pub repeats: u64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The newest identifiers taken, oldest first.
    pub recent: VecDeque<String>,
}

impl MeterTally {
    pub fn to_domain(&self) -> SandboxMeterTally {
        SandboxMeterTally {
            meter: self.meter.clone(),
            events: self.events,
            value: self.value,
            repeats: self.repeats,
            first_at: self.first_at,
            last_at: self.last_at,
        }
    }
}

/// The record id of a tally: one per customer and meter.
pub(crate) fn tally_id(customer: &CustomerId, meter: &str) -> String {
    format!("{customer}|{meter}")
}

impl State {
    /// Takes one meter event: added to its tally unless its identifier was taken before. The customer must be one
    /// the sandbox made, as a Stripe meter event must name an existing customer.
    pub fn record_meter_event(
        &mut self,
        customer: &CustomerId,
        meter: &str,
        value: Decimal,
        at: DateTime<Utc>,
        identifier: &str,
    ) -> Result<(), ProcessorError> {
        if !self.customers.values().any(|known| known == customer) {
            return Err(ProcessorError::Rejected(format!("no customer `{customer}`")));
        }
        if value.is_sign_negative() {
            return Err(ProcessorError::Rejected("a meter event's value must not be negative".to_owned()));
        }
        let id = tally_id(customer, meter);
        let tally = self.meters.entry(id.clone()).or_insert_with(|| MeterTally {
            customer_id: customer.clone(),
            meter: meter.to_owned(),
            events: 0,
            value: Decimal::ZERO,
            repeats: 0,
            first_at: at,
            last_at: at,
            recent: VecDeque::new(),
        });
        if tally.recent.iter().any(|seen| seen == identifier) {
            tally.repeats += 1;
        } else {
            tally.events += 1;
            tally.value += value;
            tally.first_at = tally.first_at.min(at);
            tally.last_at = tally.last_at.max(at);
            if tally.recent.len() == REMEMBERED {
                tally.recent.pop_front();
            }
            tally.recent.push_back(identifier.to_owned());
        }
        self.touch(Kind::Meter, &id);
        Ok(())
    }

    /// The tallies of `customer`, by meter name.
    pub fn meter_tallies(&self, customer: &CustomerId) -> Vec<SandboxMeterTally> {
        let mut tallies: Vec<SandboxMeterTally> =
            self.meters.values().filter(|t| &t.customer_id == customer).map(MeterTally::to_domain).collect();
        tallies.sort_by(|a, b| a.meter.cmp(&b.meter));
        tallies
    }
}
