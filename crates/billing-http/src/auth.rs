//! Who is calling: a service API key (configured as a SHA-256 hash with scopes) or an end user's token
//! (`user_tokens.rs`), either sent as `Authorization: Bearer`. What each may reach is `access.rs`'s.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use actix_web::{HttpMessage as _, HttpRequest, http::StatusCode, web};
use billing_domain::ids::WorkspaceId;
use billing_domain::records::Actor;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};
use crate::rate_limit::{Bucket, RateLimit};
use crate::user_tokens::{EndUser, TokenVerifier, looks_like_jwt};

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
pub struct KeyEntry {
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
        self.by_hash.get(&digest).map(|entry| Caller::Service(entry.clone()))
    }
}

/// An authenticated caller: a service key's configured entry or a verified end user, shared (a request copies no
/// name, scope set or membership list).
#[derive(Debug, Clone)]
pub enum Caller {
    Service(Arc<KeyEntry>),
    User(Arc<EndUser>),
}

impl Caller {
    /// Who owns what this caller sends under an `Idempotency-Key`: the key's name, or `user:` and the user id.
    pub fn owner(&self) -> String {
        match self {
            Self::Service(entry) => entry.name.clone(),
            Self::User(user) => format!("user:{}", user.id),
        }
    }

    /// 403 unless the caller is a key with `scope` (or `admin`). An end user passes only where a route lets them
    /// in: on their own workspaces ([`Self::require_on`]) and on the catalog (`access::Catalog`).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match self {
            Self::Service(entry) if entry.scopes.contains(&scope) || entry.scopes.contains(&Scope::Admin) => Ok(()),
            Self::Service(_) => Err(forbidden(format!("this API key lacks the `{}` scope", scope.as_str()))),
            Self::User(_) => Err(forbidden(format!("an end-user token cannot use `{}` routes", scope.as_str()))),
        }
    }

    pub fn is_end_user(&self) -> bool {
        matches!(self, Self::User(_))
    }

    /// [`Self::require`] on `workspace`. A user who is not a member gets the 404 of a missing workspace — a token
    /// learns nothing of workspaces not its own, not even that they exist; a member reads, owners and admins
    /// also write.
    pub fn require_on(&self, workspace: &WorkspaceId, scope: Scope) -> Result<(), ApiError> {
        let Self::User(user) = self else { return self.require(scope) };
        let role = user.role_in(workspace).ok_or_else(ApiError::workspace_not_found)?;
        match scope {
            Scope::BillingRead => Ok(()),
            Scope::BillingWrite if role.may_act() => Ok(()),
            Scope::BillingWrite => Err(forbidden("members read; only an owner or admin may change billing".into())),
            Scope::UsageWrite | Scope::Admin => self.require(scope),
        }
    }

    /// The audit actor for this caller.
    pub fn actor(&self) -> Actor {
        match self {
            Self::Service(entry) => Actor::ApiKey { name: entry.name.clone() },
            Self::User(user) => Actor::User { id: user.id.clone() },
        }
    }
}

fn forbidden(detail: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::InsufficientScope, "Forbidden", detail)
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

/// The caller of `req` by its `Authorization: Bearer` key or token; the access extractors (`access.rs`) and the
/// idempotency guard call it. Known once, a caller is kept on the request: its limit is spent and a token's
/// signature checked once per request, however many extractors ask.
pub(crate) fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    if let Some(caller) = req.extensions().get::<Caller>() {
        return Ok(caller.clone());
    }
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <api key or token>` header"))?;
    let token = bearer_token(header)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <api key or token>`"))?;
    let caller = match req.app_data::<web::Data<TokenVerifier>>() {
        Some(verifier) if looks_like_jwt(token) => Caller::User(Arc::new(verifier.verify(token)?)),
        _ => authenticate_key(req, token)?,
    };
    req.extensions_mut().insert(caller.clone());
    Ok(caller)
}

fn authenticate_key(req: &HttpRequest, key: &str) -> Result<Caller, ApiError> {
    let keys =
        req.app_data::<web::Data<ApiKeys>>().ok_or_else(|| ApiError::internal("ApiKeys missing from app data"))?;
    let caller = keys.authenticate(key).ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
    if let Caller::Service(entry) = &caller
        && let Some(bucket) = &entry.bucket
    {
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
        assert_eq!(caller.owner(), "backend");
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
