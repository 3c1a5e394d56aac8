//! Stripe's webhook signature scheme: `t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 over `"{t}.{raw body}"`. Kept free of
//! sandbox specifics so the Stripe adapter can reuse it.

use billing_domain::ports::WebhookError;
use chrono::{DateTime, Utc};
use hmac::digest::{Digest, KeyInit};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of an HMAC-SHA256 tag; shorter or longer `v1` values can never match.
const TAG_LEN: usize = 32;

/// The header value signing `body` at `timestamp` (unix seconds) with `secret`.
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let tag = keyed_mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks `header` against `body`: some `v1` must match some secret (several are active during rotation), compared in
/// constant time, and `t` must lie within `tolerance_secs` of `now` in either direction.
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[SecretString],
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<(), WebhookError> {
    let parsed = parse_header(header)?;
    let matched = secrets.iter().any(|secret| {
        let mac = keyed_mac(secret, parsed.timestamp, body);
        parsed.signatures.iter().any(|candidate| mac.clone().verify_slice(candidate).is_ok())
    });
    if !matched {
        return Err(WebhookError::BadSignature);
    }
    // Checked only after the signature so an unauthenticated caller learns nothing about our clock or tolerance.
    let tolerance = tolerance_secs.max(0);
    let fresh =
        now.timestamp().checked_sub(parsed.timestamp).is_some_and(|age| age.unsigned_abs() <= tolerance.unsigned_abs());
    if fresh { Ok(()) } else { Err(WebhookError::StaleTimestamp { tolerance_secs: tolerance }) }
}

/// A header split into its timestamp and the decoded `v1` tags.
struct ParsedHeader {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

/// Exactly one integer `t`, and at least one `v1` that decodes to a tag; other schemes (`v0`, future ones) are ignored.
fn parse_header(header: &str) -> Result<ParsedHeader, WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item.trim().split_once('=').ok_or(WebhookError::MalformedSignature)?;
        match key {
            "t" => {
                let t = value.parse::<i64>().map_err(|_| WebhookError::MalformedSignature)?;
                if timestamp.replace(t).is_some() {
                    return Err(WebhookError::MalformedSignature);
                }
            }
            "v1" => {
                // An undecodable value cannot match; dropping it keeps a rotation header with one odd entry usable.
                if let Ok(tag) = hex::decode(value)
                    && tag.len() == TAG_LEN
                {
                    signatures.push(tag);
                }
            }
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !signatures.is_empty() => Ok(ParsedHeader { timestamp, signatures }),
        _ => Err(WebhookError::MalformedSignature),
    }
}

/// The MAC state after absorbing `"{t}.{body}"`, ready to finalize or compare.
fn keyed_mac(secret: &SecretString, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = hmac_with_key(secret.expose_secret().as_bytes());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// HMAC-SHA256 keyed with `key` of any length. RFC 2104 zero-pads keys up to the block size and hashes longer ones;
/// doing that here lets us use the infallible block-sized constructor instead of `new_from_slice(..).expect(..)`.
fn hmac_with_key(key: &[u8]) -> HmacSha256 {
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <HmacSha256 as KeyInit>::new(&block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    const T: i64 = 1_700_000_000;

    fn secret(raw: &str) -> SecretString {
        SecretString::from(raw)
    }

    fn at(unix: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(unix, 0).unwrap()
    }

    #[test]
    fn matches_rfc_4231_vectors_for_short_and_long_keys() {
        // Test cases 2 and 6 of RFC 4231: a key shorter than the block and one longer than it.
        let mut short = hmac_with_key(b"Jefe");
        short.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(short.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut long = hmac_with_key(&[0xaa; 131]);
        long.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(long.finalize().into_bytes()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn matches_a_signature_computed_the_documented_way() {
        let header = sign(&secret("whsec_test"), T, BODY);
        let mut expected = <HmacSha256 as Mac>::new_from_slice(b"whsec_test").unwrap();
        expected.update(format!("{T}.").as_bytes());
        expected.update(BODY);
        let expected = hex::encode(expected.finalize().into_bytes());
        assert_eq!(header, format!("t={T},v1={expected}"));
    }

    #[test]
    fn round_trips() {
        let s = secret("whsec_test");
        let header = sign(&s, T, BODY);
        assert_eq!(verify(&header, BODY, &[s], at(T), 300), Ok(()));
    }

    #[test]
    fn rejects_a_tampered_body() {
        let s = secret("whsec_test");
        let header = sign(&s, T, BODY);
        let tampered = br#"{"id":"evt_1","type":"invoice.paid "}"#;
        assert_eq!(verify(&header, tampered, &[s], at(T), 300), Err(WebhookError::BadSignature));
    }

    #[test]
    fn rejects_a_wrong_secret_and_an_empty_secret_list() {
        let header = sign(&secret("whsec_a"), T, BODY);
        assert_eq!(verify(&header, BODY, &[secret("whsec_b")], at(T), 300), Err(WebhookError::BadSignature));
        assert_eq!(verify(&header, BODY, &[], at(T), 300), Err(WebhookError::BadSignature));
    }

    #[test]
    fn accepts_the_second_of_two_active_secrets() {
        let header = sign(&secret("whsec_old"), T, BODY);
        let active = [secret("whsec_new"), secret("whsec_old")];
        assert_eq!(verify(&header, BODY, &active, at(T), 300), Ok(()));
    }

    #[test]
    fn accepts_any_of_several_v1_values() {
        let good = sign(&secret("whsec_a"), T, BODY);
        let good_tag = good.split_once(",v1=").unwrap().1;
        let bad_tag = "00".repeat(TAG_LEN);
        let header = format!("t={T},v1={bad_tag},v0=ignored,v1={good_tag},v1={bad_tag}");
        assert_eq!(verify(&header, BODY, &[secret("whsec_a")], at(T), 300), Ok(()));
        let none_match = format!("t={T},v1={bad_tag},v1={bad_tag}");
        assert_eq!(verify(&none_match, BODY, &[secret("whsec_a")], at(T), 300), Err(WebhookError::BadSignature));
    }

    #[test]
    fn rejects_stale_and_future_timestamps_but_accepts_the_edges() {
        let s = [secret("whsec_a")];
        let header = sign(&s[0], T, BODY);
        let stale = Err(WebhookError::StaleTimestamp { tolerance_secs: 300 });
        assert_eq!(verify(&header, BODY, &s, at(T + 300), 300), Ok(()));
        assert_eq!(verify(&header, BODY, &s, at(T - 300), 300), Ok(()));
        assert_eq!(verify(&header, BODY, &s, at(T + 301), 300), stale);
        assert_eq!(verify(&header, BODY, &s, at(T - 301), 300), stale);
        let ancient = sign(&s[0], i64::MIN, BODY);
        assert!(matches!(verify(&ancient, BODY, &s, at(T), 300), Err(WebhookError::StaleTimestamp { .. })));
    }

    #[test]
    fn rejects_malformed_headers() {
        let tag = "ab".repeat(TAG_LEN);
        let malformed = [
            String::new(),
            "garbage".to_owned(),
            format!("v1={tag}"),
            format!("t=,v1={tag}"),
            format!("t=12x,v1={tag}"),
            format!("t=99999999999999999999999,v1={tag}"),
            format!("t={T},t={T},v1={tag}"),
            format!("t={T}"),
            format!("t={T},v1=not-hex"),
            format!("t={T},v1=abcd"),
            format!("t={T},v0={tag}"),
            format!("t={T},,v1={tag}"),
        ];
        for header in malformed {
            assert_eq!(
                verify(&header, BODY, &[secret("whsec_a")], at(T), 300),
                Err(WebhookError::MalformedSignature),
                "{header:?}"
            );
        }
    }

    #[test]
    fn tolerates_spaces_after_commas() {
        let s = secret("whsec_a");
        let header = sign(&s, T, BODY).replace(',', ", ");
        assert_eq!(verify(&header, BODY, &[s], at(T), 300), Ok(()));
    }

    #[test]
    fn never_shows_the_secret() {
        let s = secret("whsec_super_private");
        assert!(!format!("{s:?}").contains("super_private"));
        let header = sign(&s, T, BODY);
        assert!(!header.contains("super_private"));
        let error = verify(&header, b"x", &[s], at(T), 300).unwrap_err();
        assert!(!format!("{error:?} {error}").contains("super_private"));
    }
}
