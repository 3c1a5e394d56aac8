//! Load for Tollgate's webhook path: generated Stripe-format lifecycles ([`lifecycles`]), signed the way Stripe
//! signs ([`sign`]), shuffled with duplicates ([`Rng`]). The race harness (`tests/e2e/race`) delivers them to check
//! convergence; the `tollgate-loadgen` binary delivers them to measure throughput and latency.

pub mod lifecycles;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use lifecycles::{Event, generate, workspace_ids};

/// A `Stripe-Signature` header for `body` at unix time `t`: `t=…,v1=hex(HMAC-SHA256(secret, "{t}.{body}"))`.
pub fn sign(secret: &str, body: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// splitmix64: a seeded shuffle needs nothing better, and the seed alone reproduces an order.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.next_u64() % (i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

/// Every event once, `duplicate_percent` of them twice, in a seeded random order.
pub fn shuffled_with_duplicates(events: &[Event], seed: u64, duplicate_percent: u64) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut stream: Vec<Event> = events.to_vec();
    stream.extend(events.iter().filter(|_| rng.next_u64() % 100 < duplicate_percent).cloned());
    rng.shuffle(&mut stream);
    stream
}
