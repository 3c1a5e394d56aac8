//! Service API keys: configured as SHA-256 hashes with scopes; a request proves itself with `Authorization: Bearer`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use actix_web::{HttpRequest, http::StatusCode, web};
use billing_domain::records::Actor;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};
use crate::rate_limit::{Bucket, RateLimit};

/// What a key may do. `admin` implies every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    BillingRead,
    BillingWrite,
    UsageWrite,
    Admin,
}

impl Scope {
    /// Every scope, in the order the docs list them.
    pub const ALL: [Scope; 4] = [Self::BillingRead, Self::BillingWrite, Self::UsageWrite, Self::Admin];

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "billing:read" => Some(Self::BillingRead),
            "billing:write" => Some(Self::BillingWrite),
            "usage:write" => Some(Self::UsageWrite),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BillingRead => "billing:read",
            Self::BillingWrite => "billing:write",
            Self::UsageWrite => "usage:write",
            Self::Admin => "admin",
        }
    }
}

/// A configured key: its name (for audit), scopes and rate limit. The key itself is never held, only its hash.
#[derive(Debug, Clone)]
struct KeyEntry {
    name: String,
    scopes: BTreeSet<Scope>,
    /// `None`: not limited.
    bucket: Option<Bucket>,
}

/// The configured keys, indexed by the SHA-256 of the key.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Arc<KeyEntry>>,
}

/// The digest of a configured key hash, `sha256:` and 64 hex digits (either case); the one rule for both the
/// settings' validation and the key index.
pub fn parse_key_hash(raw: &str) -> Result<[u8; 32], &'static str> {
    raw.strip_prefix("sha256:")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("must be \"sha256:\" followed by 64 hex digits (printf %s \"$KEY\" | sha256sum)")
}

/// Hex SHA-256 of a key, as written in configuration after `sha256:`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    /// Builds the index from `(name, "sha256:<hex>", scopes)`; a malformed entry is a startup error.
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a str, &'a [String])>) -> Result<Self, String> {
        let mut by_hash = HashMap::new();
        for (name, hash, scopes) in keys {
            let digest = parse_key_hash(hash).map_err(|why| format!("api key `{name}`: hash {why}"))?;
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s).ok_or_else(|| format!("api key `{name}`: unknown scope `{s}`")))
                .collect::<Result<BTreeSet<_>, _>>()?;
            by_hash.insert(digest, Arc::new(KeyEntry { name: name.to_owned(), scopes, bucket: None }));
        }
        Ok(Self { by_hash })
    }

    /// Gives every key its own bucket of `limit` (a key's requests never spend another's).
    pub fn with_rate_limit(self, limit: RateLimit) -> Self {
        let by_hash = self
            .by_hash
            .into_iter()
            .map(|(digest, entry)| {
                let entry = KeyEntry { bucket: Some(Bucket::new(limit)), ..(*entry).clone() };
                (digest, Arc::new(entry))
            })
            .collect();
        Self { by_hash }
    }

    /// The caller holding `key`, if it is configured. Comparing digests of a hash lookup reveals nothing useful
    /// about the key through timing.
    fn authenticate(&self, key: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.by_hash.get(&digest).map(|entry| Caller(entry.clone()))
    }
}

/// An authenticated service caller: its configured entry, shared (a request copies no name or scope set).
#[derive(Debug, Clone)]
pub struct Caller(Arc<KeyEntry>);

impl Caller {
    /// The key's configured name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// 403 unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.scopes.contains(&scope) || self.0.scopes.contains(&Scope::Admin) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::InsufficientScope,
                "Forbidden",
                format!("this API key lacks the `{}` scope", scope.as_str()),
            ))
        }
    }

    /// The audit actor for this caller.
    pub fn actor(&self) -> Actor {
        Actor::ApiKey { name: self.0.name.clone() }
    }
}

/// The token of an `Authorization: Bearer <token>` header value (either case of `Bearer`), if it holds one.
pub(crate) fn bearer_token(header: &actix_web::http::header::HeaderValue) -> Option<&str> {
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The caller of `req` by its `Authorization: Bearer` key; the access extractors (`access.rs`) call it.
pub(crate) fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let keys =
        req.app_data::<web::Data<ApiKeys>>().ok_or_else(|| ApiError::internal("ApiKeys missing from app data"))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <api key>` header"))?;
    let token = bearer_token(header)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <api key>`"))?;
    let caller = keys.authenticate(token).ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
    if let Some(bucket) = &caller.0.bucket {
        bucket.take()?;
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        let hash = format!("sha256:{}", hash_key("secret-key"));
        let scopes = vec!["billing:read".to_string()];
        ApiKeys::new([("backend", hash.as_str(), scopes.as_slice())]).unwrap()
    }

    #[test]
    fn authenticates_by_hash_and_checks_scopes() {
        let caller = keys().authenticate("secret-key").unwrap();
        assert_eq!(caller.name(), "backend");
        assert!(caller.require(Scope::BillingRead).is_ok());
        assert_eq!(caller.require(Scope::BillingWrite).unwrap_err().status, StatusCode::FORBIDDEN);
        assert!(keys().authenticate("secret-key ").is_none());
        assert!(keys().authenticate("other").is_none());
    }

    #[test]
    fn malformed_configuration_is_refused_with_the_key_name() {
        let none: Vec<String> = vec![];
        let err = ApiKeys::new([("k1", "md5:abc", none.as_slice())]).unwrap_err();
        assert!(err.contains("k1"));
        let short = ApiKeys::new([("k2", "sha256:abcd", none.as_slice())]).unwrap_err();
        assert!(short.contains("64 hex"));
        let upper = format!("sha256:{}", hash_key("x").to_ascii_uppercase());
        assert_eq!(parse_key_hash(&upper), parse_key_hash(&format!("sha256:{}", hash_key("x"))));
        let bad_scope = vec!["root".to_string()];
        let hash = format!("sha256:{}", hash_key("x"));
        assert!(ApiKeys::new([("k3", hash.as_str(), bad_scope.as_slice())]).unwrap_err().contains("root"));
    }
}
