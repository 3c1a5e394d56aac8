//! SeaORM entities, one per table. They mirror the migrations; JSON columns are text the mapping layer
//! (de)serializes with the domain types' serde representations.

pub mod audit_log;
pub mod billing_page_link;
pub mod coupon;
pub mod coupon_redemption;
pub mod credit_ledger;
pub mod dunning_case;
pub mod idempotency_key;
pub mod inbox_event;
pub mod meter_cursor;
pub mod outbox;
pub mod parked_event;
pub mod payment;
pub mod processor_customer;
pub mod processor_record;
pub mod refund;
pub mod subscription;
pub mod test_clock;
pub mod usage_event;
pub mod usage_period;
pub mod usage_total;
pub mod workspace;
