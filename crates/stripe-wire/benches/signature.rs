//! Webhook signature verification (SPEC §11) beside its floor, one raw HMAC-SHA256 of the same body: what header
//! parsing, several secrets and the constant-time comparison add. `cargo bench -p stripe-wire`.

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;

fn signature(c: &mut Criterion) {
    let body = vec![b'x'; 3_000]; // about the size of a subscription event
    let secrets = [SecretString::from("whsec_new"), SecretString::from("whsec_old")];
    let now = Utc::now();
    let header = stripe_wire::signature::sign(&secrets[1], now.timestamp(), &body);
    c.bench_function("raw HMAC-SHA256 of a 3 kB body (floor)", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_old").expect("any key length");
            mac.update(black_box(&body));
            mac.finalize()
        })
    });
    c.bench_function("verify a 3 kB delivery, second of two secrets", |b| {
        b.iter(|| stripe_wire::signature::verify(black_box(&header), black_box(&body), &secrets, now, 300))
    });
}

criterion_group!(benches, signature);
criterion_main!(benches);
