//! Tollgate's billing core. Pure rules and use-case services over ports; no runtime, database, web or processor
//! crate may appear here (CI checks `cargo tree -p billing-domain`).

pub mod catalog;
pub mod commands;
pub mod coupon;
pub mod credits;
pub mod dunning;
pub mod email;
pub mod entitlements;
pub mod error;
pub mod events;
pub mod ids;
pub mod lifecycle;
pub mod money;
pub mod payment;
pub mod ports;
pub mod records;
pub mod services;
pub mod subscription;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trial;
pub mod usage;
pub mod workspace;
