//! End-user tokens beside the service keys: JWTs the product's own login issues, verified here with the key the
//! settings name (an HS256 secret, or RS256/ES256 public keys as PEM or a JWKS). A token names its user (`sub`)
//! and the workspaces it may reach with a role in each:
//!
//! ```json
//! {"sub": "user_42", "iss": "https://app.example", "aud": "tollgate", "exp": 1767225600,
//!  "workspaces": [{"id": "acme", "role": "owner"}, {"id": "globex", "role": "member"}]}
//! ```
//!
//! `exp`, `iss`, `aud` and `sub` are required, `nbf` is honoured, all with a small leeway for clock skew. What a
//! role may do is `access.rs`'s.

use std::sync::{Arc, RwLock};

use billing_domain::ids::WorkspaceId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::error::ApiError;
use crate::rate_limit::{KeyedBuckets, RateLimit};

/// A user's role in one workspace: owners and admins act, members read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// May start checkouts, open the portal, change, cancel or resume.
    pub fn may_act(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// A verified end user: the token's subject and memberships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub id: String,
    memberships: Vec<(WorkspaceId, Role)>,
}

impl EndUser {
    /// The user's role in `workspace`, `None` when the token does not name it.
    pub fn role_in(&self, workspace: &WorkspaceId) -> Option<Role> {
        self.memberships.iter().find(|(id, _)| id == workspace).map(|(_, role)| *role)
    }
}

/// The claims Tollgate reads; the registered ones it checks are read by jsonwebtoken's validation.
#[derive(Deserialize)]
struct Claims {
    // Defaulted so a token without one is refused by the validation's required claims, which names it.
    #[serde(default)]
    sub: String,
    #[serde(default)]
    workspaces: Vec<MembershipClaim>,
}

#[derive(Deserialize)]
struct MembershipClaim {
    id: String,
    role: Role,
}

/// Where the verifying key comes from.
pub enum KeyMaterial {
    /// HS256's shared secret.
    Secret(Vec<u8>),
    /// One RS256 or ES256 public key, PEM.
    PublicKeyPem(Vec<u8>),
    /// A JWKS document (JSON), its signing keys chosen by the token's `kid`.
    Jwks(Vec<u8>),
}

/// How tokens are checked.
pub struct TokenPolicy {
    pub algorithm: Algorithm,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
    /// Each user's own limit; `None`: not limited.
    pub rate_limit: Option<RateLimit>,
}

/// The keys in use: one, or a JWKS by key id.
enum Keys {
    One(DecodingKey),
    ById(Vec<(Option<String>, DecodingKey)>),
}

impl Keys {
    fn load(algorithm: Algorithm, material: &KeyMaterial) -> Result<Self, String> {
        let pem = |bytes: &[u8]| match algorithm {
            Algorithm::ES256 => DecodingKey::from_ec_pem(bytes),
            _ => DecodingKey::from_rsa_pem(bytes),
        };
        match material {
            KeyMaterial::Secret(secret) if algorithm == Algorithm::HS256 => DecodingKey::from_secret(secret)
                .map(Self::One)
                .map_err(|e| format!("the HS256 secret is not usable: {e}")),
            KeyMaterial::Secret(_) => Err(format!("{algorithm:?} verifies with public keys, not a secret")),
            KeyMaterial::PublicKeyPem(_) | KeyMaterial::Jwks(_) if algorithm == Algorithm::HS256 => {
                Err("HS256 verifies with a shared secret, not public keys".into())
            }
            KeyMaterial::PublicKeyPem(bytes) => {
                pem(bytes).map(Self::One).map_err(|e| format!("the public key is not a {algorithm:?} PEM key: {e}"))
            }
            KeyMaterial::Jwks(json) => {
                let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("the JWKS is not valid: {e}"))?;
                let signing = set.keys.iter().filter(|jwk| jwk.common.public_key_use != Some(PublicKeyUse::Encryption));
                // Only keys of the configured algorithm's family: a rotation to keys of another type is refused
                // here (the keys in use stay) instead of refusing every token afterwards.
                let keys = signing
                    .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok().map(|key| (jwk.common.key_id.clone(), key)))
                    .filter(|(_, key)| key.family() == algorithm.family())
                    .collect::<Vec<_>>();
                if keys.is_empty() {
                    return Err(format!("the JWKS holds no usable {algorithm:?} signing key"));
                }
                Ok(Self::ById(keys))
            }
        }
    }

    /// The key for a token with key id `kid`: by id in a JWKS (the only key when the token names none).
    fn for_kid(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        match (self, kid) {
            (Self::One(key), _) => Some(key),
            (Self::ById(keys), Some(kid)) => keys.iter().find(|(id, _)| id.as_deref() == Some(kid)).map(|(_, k)| k),
            (Self::ById(keys), None) => match keys.as_slice() {
                [(_, only)] => Some(only),
                _ => None,
            },
        }
    }
}

/// Verifies end-user tokens. Shared by every worker; the JWKS may be swapped while it serves ([`Self::reload`]).
pub struct TokenVerifier {
    algorithm: Algorithm,
    validation: Validation,
    keys: RwLock<Arc<Keys>>,
    limits: Option<KeyedBuckets>,
}

impl TokenVerifier {
    /// A verifier for `policy` with `material`; an unusable key or algorithm is a startup error.
    pub fn new(policy: TokenPolicy, material: &KeyMaterial) -> Result<Self, String> {
        if !matches!(policy.algorithm, Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256) {
            return Err(format!("algorithm {:?} is not supported (HS256, RS256 or ES256)", policy.algorithm));
        }
        let keys = Keys::load(policy.algorithm, material)?;
        let mut validation = Validation::new(policy.algorithm);
        validation.set_issuer(&[policy.issuer]);
        validation.set_audience(&[policy.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = policy.leeway_secs;
        let limits = policy.rate_limit.map(KeyedBuckets::new);
        Ok(Self { algorithm: policy.algorithm, validation, keys: RwLock::new(Arc::new(keys)), limits })
    }

    /// Swaps in new key material (a JWKS file that changed); on error the keys in use stay.
    pub fn reload(&self, material: &KeyMaterial) -> Result<(), String> {
        let keys = Keys::load(self.algorithm, material)?;
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// The user `token` proves, after its user's rate limit; 401 naming what is wrong with it otherwise.
    pub fn verify(&self, token: &str) -> Result<EndUser, ApiError> {
        let user = self.decode(token)?;
        if let Some(limits) = &self.limits {
            limits.take(&user.id, "this user")?;
        }
        Ok(user)
    }

    fn decode(&self, token: &str) -> Result<EndUser, ApiError> {
        let header = decode_header(token).map_err(|_| invalid("it is not a well-formed JWT"))?;
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let key = keys.for_kid(header.kid.as_deref()).ok_or_else(|| invalid("no configured key has its `kid`"))?;
        let claims = decode::<Claims>(token, key, &self.validation).map_err(|e| invalid(reason(e.kind())))?.claims;
        if claims.sub.is_empty() {
            return Err(invalid("its `sub` is empty"));
        }
        let memberships = claims
            .workspaces
            .into_iter()
            .map(|m| WorkspaceId::parse(&m.id).map(|id| (id, m.role)))
            .collect::<Result<_, _>>()
            .map_err(|_| invalid("a `workspaces[].id` is not a workspace id"))?;
        Ok(EndUser { id: claims.sub, memberships })
    }
}

/// Why a token was refused, in words safe to send back (nothing of the token or the key).
fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "it has expired",
        ErrorKind::ImmatureSignature => "it is not valid yet (`nbf`)",
        ErrorKind::InvalidIssuer => "its issuer (`iss`) is not the configured one",
        ErrorKind::InvalidAudience => "its audience (`aud`) is not this service",
        ErrorKind::InvalidSignature => "its signature does not verify",
        ErrorKind::InvalidAlgorithm => "it is signed with another algorithm",
        ErrorKind::MissingRequiredClaim(_) => "it lacks a required claim (exp, iss, aud, sub)",
        ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => "its claims do not have the expected shape",
        _ => "it is not a valid token",
    }
}

fn invalid(why: &str) -> ApiError {
    ApiError::unauthorized(format!("the bearer token is not valid: {why}"))
}

/// Whether `token` has a JWT's shape (three base64url parts), so it is checked as one rather than as an API key.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests;
