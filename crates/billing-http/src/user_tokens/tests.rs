//! Token verification against tokens signed here, with keys made for these tests only (`testdata/`).

use std::num::NonZeroU32;

use actix_web::http::StatusCode;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

use super::*;

const SECRET: &[u8] = b"a-test-secret-of-thirty-two-bytes!!";
const RS256_PRIVATE: &[u8] = include_bytes!("testdata/rs256-private.pem");
const RS256_PUBLIC: &[u8] = include_bytes!("testdata/rs256-public.pem");
const ES256_PRIVATE: &[u8] = include_bytes!("testdata/es256-private.pem");
const ES256_PUBLIC: &[u8] = include_bytes!("testdata/es256-public.pem");

fn policy(algorithm: Algorithm) -> TokenPolicy {
    TokenPolicy {
        algorithm,
        issuer: "https://app.test".into(),
        audience: "tollgate".into(),
        leeway_secs: 30,
        rate_limit: None,
    }
}

fn claims() -> Value {
    json!({
        "sub": "user_1", "iss": "https://app.test", "aud": "tollgate", "exp": get_current_timestamp() + 600,
        "workspaces": [{"id": "acme", "role": "owner"}, {"id": "globex", "role": "member"}],
    })
}

fn hs256(claims: &Value) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET).unwrap()).unwrap()
}

fn hs256_verifier() -> TokenVerifier {
    TokenVerifier::new(policy(Algorithm::HS256), &KeyMaterial::Secret(SECRET.to_vec())).unwrap()
}

fn refusal(verifier: &TokenVerifier, token: &str) -> String {
    let error = verifier.verify(token).unwrap_err();
    assert_eq!(error.status, StatusCode::UNAUTHORIZED);
    error.detail
}

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

#[test]
fn a_valid_token_yields_its_user_and_memberships() {
    let user = hs256_verifier().verify(&hs256(&claims())).unwrap();
    assert_eq!(user.id, "user_1");
    assert_eq!(user.role_in(&ws("acme")), Some(Role::Owner));
    assert_eq!(user.role_in(&ws("globex")), Some(Role::Member));
    assert_eq!(user.role_in(&ws("initech")), None);
    assert!(Role::Owner.may_act() && Role::Admin.may_act() && !Role::Member.may_act());
}

#[test]
fn registered_claims_are_validated_with_the_leeway() {
    let verifier = hs256_verifier();
    let now = get_current_timestamp();
    let with = |key: &str, value: Value| {
        let mut c = claims();
        c[key] = value;
        hs256(&c)
    };
    assert!(refusal(&verifier, &with("exp", json!(now - 120))).contains("expired"));
    // Within the 30 s leeway a just-expired token still passes: clocks of two hosts differ.
    assert!(verifier.verify(&with("exp", json!(now - 5))).is_ok());
    assert!(refusal(&verifier, &with("nbf", json!(now + 120))).contains("nbf"));
    assert!(verifier.verify(&with("nbf", json!(now + 5))).is_ok());
    assert!(refusal(&verifier, &with("iss", json!("https://evil.test"))).contains("iss"));
    assert!(refusal(&verifier, &with("aud", json!("another-service"))).contains("aud"));
    let mut no_sub = claims();
    no_sub.as_object_mut().unwrap().remove("sub");
    assert!(refusal(&verifier, &hs256(&no_sub)).contains("required claim"));
    assert!(refusal(&verifier, &with("sub", json!(""))).contains("sub"));
}

#[test]
fn memberships_must_have_known_roles_and_valid_ids() {
    let verifier = hs256_verifier();
    let mut c = claims();
    c["workspaces"] = json!([{"id": "acme", "role": "superuser"}]);
    assert!(refusal(&verifier, &hs256(&c)).contains("shape"));
    c["workspaces"] = json!([{"id": "not a valid id!", "role": "owner"}]);
    assert!(refusal(&verifier, &hs256(&c)).contains("workspaces"));
    // No memberships at all: a valid user who reaches no workspace.
    c.as_object_mut().unwrap().remove("workspaces");
    assert_eq!(verifier.verify(&hs256(&c)).unwrap().role_in(&ws("acme")), None);
}

#[test]
fn forged_and_malformed_tokens_are_refused() {
    let verifier = hs256_verifier();
    let forged =
        encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(b"another-secret").unwrap())
            .unwrap();
    assert!(refusal(&verifier, &forged).contains("signature"));
    // `alg: none` and another algorithm than the configured one are refused whatever the key.
    let unsigned = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims().to_string()));
    assert!(verifier.verify(&unsigned).is_err());
    let es =
        encode(&Header::new(Algorithm::ES256), &claims(), &EncodingKey::from_ec_pem(ES256_PRIVATE).unwrap()).unwrap();
    assert!(refusal(&verifier, &es).contains("algorithm"));
    for garbage in ["a.b.c", "..", "x", "eyJ.eyJ.sig"] {
        assert!(verifier.verify(garbage).is_err(), "{garbage}");
    }
    // A refusal never echoes the token.
    assert!(!refusal(&verifier, &forged).contains(&forged));
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn rs256_and_es256_verify_with_public_pem_keys() {
    let rs = TokenVerifier::new(policy(Algorithm::RS256), &KeyMaterial::PublicKeyPem(RS256_PUBLIC.to_vec())).unwrap();
    let token =
        encode(&Header::new(Algorithm::RS256), &claims(), &EncodingKey::from_rsa_pem(RS256_PRIVATE).unwrap()).unwrap();
    assert_eq!(rs.verify(&token).unwrap().id, "user_1");
    let es = TokenVerifier::new(policy(Algorithm::ES256), &KeyMaterial::PublicKeyPem(ES256_PUBLIC.to_vec())).unwrap();
    let token =
        encode(&Header::new(Algorithm::ES256), &claims(), &EncodingKey::from_ec_pem(ES256_PRIVATE).unwrap()).unwrap();
    assert_eq!(es.verify(&token).unwrap().id, "user_1");
    // An HS256 token signed with the public key as its secret (the classic key-confusion forgery) is refused.
    let confused =
        encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(RS256_PUBLIC).unwrap()).unwrap();
    assert!(rs.verify(&confused).is_err());
}

#[test]
fn misconfigured_keys_are_startup_errors() {
    let err = |p, m| TokenVerifier::new(p, &m).err().unwrap();
    assert!(err(policy(Algorithm::RS256), KeyMaterial::Secret(SECRET.to_vec())).contains("public keys"));
    assert!(err(policy(Algorithm::HS256), KeyMaterial::PublicKeyPem(RS256_PUBLIC.to_vec())).contains("secret"));
    assert!(err(policy(Algorithm::ES256), KeyMaterial::PublicKeyPem(RS256_PUBLIC.to_vec())).contains("PEM"));
    assert!(err(policy(Algorithm::RS256), KeyMaterial::Jwks(b"{\"keys\": []}".to_vec())).contains("no usable"));
    assert!(err(policy(Algorithm::RS256), KeyMaterial::Jwks(b"not json".to_vec())).contains("JWKS"));
    assert!(err(policy(Algorithm::HS512), KeyMaterial::Secret(SECRET.to_vec())).contains("not supported"));
}

fn jwks(keys: &[(&str, &[u8])]) -> Vec<u8> {
    let keys = keys
        .iter()
        .map(|(kid, private)| {
            let mut jwk =
                Jwk::from_encoding_key(&EncodingKey::from_ec_pem(private).unwrap(), Algorithm::ES256).unwrap();
            jwk.common.key_id = Some((*kid).to_owned());
            jwk
        })
        .collect();
    serde_json::to_vec(&JwkSet { keys }).unwrap()
}

fn es256_with_kid(kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    encode(&header, &claims(), &EncodingKey::from_ec_pem(ES256_PRIVATE).unwrap()).unwrap()
}

#[test]
fn a_jwks_picks_the_key_by_kid_and_can_be_swapped_while_serving() {
    let verifier =
        TokenVerifier::new(policy(Algorithm::ES256), &KeyMaterial::Jwks(jwks(&[("k1", ES256_PRIVATE)]))).unwrap();
    assert!(verifier.verify(&es256_with_kid(Some("k1"))).is_ok());
    // The only key also serves a token naming none.
    assert!(verifier.verify(&es256_with_kid(None)).is_ok());
    assert!(refusal(&verifier, &es256_with_kid(Some("k2"))).contains("kid"));
    // A rotation: the same key published as k2; k1 tokens are now refused.
    verifier.reload(&KeyMaterial::Jwks(jwks(&[("k2", ES256_PRIVATE)]))).unwrap();
    assert!(verifier.verify(&es256_with_kid(Some("k2"))).is_ok());
    assert!(verifier.verify(&es256_with_kid(Some("k1"))).is_err());
    // A broken file, or one holding only keys of another type, keeps the keys in use.
    assert!(verifier.reload(&KeyMaterial::Jwks(b"{".to_vec())).is_err());
    let rsa = Jwk::from_encoding_key(&EncodingKey::from_rsa_pem(RS256_PRIVATE).unwrap(), Algorithm::RS256).unwrap();
    let rsa_only = serde_json::to_vec(&JwkSet { keys: vec![rsa] }).unwrap();
    assert!(verifier.reload(&KeyMaterial::Jwks(rsa_only)).unwrap_err().contains("ES256"));
    assert!(verifier.verify(&es256_with_kid(Some("k2"))).is_ok());
}

#[test]
fn each_user_has_their_own_rate_limit() {
    let limit = RateLimit { per_second: NonZeroU32::new(1).unwrap(), burst: NonZeroU32::new(2).unwrap() };
    let verifier = TokenVerifier::new(
        TokenPolicy { rate_limit: Some(limit), ..policy(Algorithm::HS256) },
        &KeyMaterial::Secret(SECRET.to_vec()),
    )
    .unwrap();
    let alice = hs256(&claims());
    let mut bob = claims();
    bob["sub"] = json!("user_2");
    let bob = hs256(&bob);
    assert!(verifier.verify(&alice).is_ok());
    assert!(verifier.verify(&alice).is_ok());
    let refused = verifier.verify(&alice).unwrap_err();
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(verifier.verify(&bob).is_ok(), "another user's budget is their own");
}

#[test]
fn only_three_part_values_are_taken_for_tokens() {
    assert!(looks_like_jwt("a.b.c"));
    assert!(!looks_like_jwt("tg_live_0123456789abcdef"));
    assert!(!looks_like_jwt("a.b"));
    assert!(!looks_like_jwt("a.b.c.d"));
}
