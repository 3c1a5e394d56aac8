//! The page's signed tokens, HS256 JWTs under the page's own secret: a **link** (single use, by its `jti`, which
//! `PageLinks` redeems) and the **session** the link opens (the cookie). Each names its purpose in `aud`, so a
//! session never passes as a link. Expiry is judged on Tollgate's clock, not jsonwebtoken's, so a test clock moves
//! links and sessions too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::user_tokens::Role;

const LINK: &str = "tollgate:billing-page:link";
const SESSION: &str = "tollgate:billing-page:session";

/// Who the page is open for, carried from the link into the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// The workspace.
    pub sub: String,
    pub role: Role,
    /// The end user, when the product named one (or an end-user token minted the link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The API key that minted the link, when no user is named: actions are audited as that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where "Back" leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    pub locale: String,
    /// Current values of count limits, as the product knows them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    aud: String,
    exp: i64,
    /// The link's nonce, or the session's id.
    jti: String,
    /// The session's form token (sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
    #[serde(flatten)]
    viewer: Viewer,
}

/// A verified link: redeem `nonce` before opening a session.
#[derive(Debug)]
pub struct Link {
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
    pub viewer: Viewer,
}

/// A verified session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
    pub viewer: Viewer,
}

/// Why a token is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not one of ours, tampered with, or of another purpose.
    Invalid,
    Expired,
}

/// Signs and verifies with one secret.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Signer {
    /// `None` for an empty secret, which signs nothing.
    pub fn new(secret: &[u8]) -> Option<Self> {
        Some(Self {
            encoding: EncodingKey::from_secret(secret).ok()?,
            decoding: DecodingKey::from_secret(secret).ok()?,
        })
    }

    pub fn link(&self, nonce: &str, expires_at: DateTime<Utc>, viewer: &Viewer) -> String {
        self.sign(LINK, nonce, None, expires_at, viewer)
    }

    pub fn session(&self, id: &str, csrf: &str, expires_at: DateTime<Utc>, viewer: &Viewer) -> String {
        self.sign(SESSION, id, Some(csrf), expires_at, viewer)
    }

    pub fn verify_link(&self, token: &str, now: DateTime<Utc>) -> Result<Link, Refused> {
        let claims = self.verify(LINK, token, now)?;
        Ok(Link { nonce: claims.jti, expires_at: expiry(claims.exp)?, viewer: claims.viewer })
    }

    pub fn verify_session(&self, token: &str, now: DateTime<Utc>) -> Result<Session, Refused> {
        let claims = self.verify(SESSION, token, now)?;
        let csrf = claims.csrf.ok_or(Refused::Invalid)?;
        Ok(Session { id: claims.jti, csrf, expires_at: expiry(claims.exp)?, viewer: claims.viewer })
    }

    fn sign(&self, aud: &str, jti: &str, csrf: Option<&str>, expires_at: DateTime<Utc>, viewer: &Viewer) -> String {
        let claims = Claims {
            aud: aud.to_owned(),
            exp: expires_at.timestamp(),
            jti: jti.to_owned(),
            csrf: csrf.map(str::to_owned),
            viewer: viewer.clone(),
        };
        // HS256 over serde_json output: encoding cannot fail for these claims.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    fn verify(&self, aud: &str, token: &str, now: DateTime<Utc>) -> Result<Claims, Refused> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[aud]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.validate_exp = false;
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|_| Refused::Invalid)?.claims;
        if claims.exp <= now.timestamp() { Err(Refused::Expired) } else { Ok(claims) }
    }
}

fn expiry(exp: i64) -> Result<DateTime<Utc>, Refused> {
    DateTime::from_timestamp(exp, 0).ok_or(Refused::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Viewer {
        Viewer {
            sub: "team_1".into(),
            role: Role::Admin,
            user: Some("u_1".into()),
            key: None,
            return_url: None,
            locale: "en".into(),
            counts: BTreeMap::from([("workspace_members".into(), 3)]),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_link_verifies_until_it_expires_and_carries_its_viewer() {
        let signer = Signer::new(&[7; 32]).unwrap();
        let token = signer.link("n1", at(900), &viewer());
        let link = signer.verify_link(&token, at(899)).unwrap();
        assert_eq!((link.nonce.as_str(), link.viewer), ("n1", viewer()));
        assert_eq!(link.expires_at, at(900));
        assert_eq!(signer.verify_link(&token, at(900)).unwrap_err(), Refused::Expired);
    }

    #[test]
    fn purposes_and_secrets_do_not_mix() {
        let signer = Signer::new(&[7; 32]).unwrap();
        let link = signer.link("n1", at(900), &viewer());
        let session = signer.session("s1", "c1", at(900), &viewer());
        assert_eq!(signer.verify_session(&link, at(0)).unwrap_err(), Refused::Invalid);
        assert_eq!(signer.verify_link(&session, at(0)).unwrap_err(), Refused::Invalid);
        assert_eq!(signer.verify_session(&session, at(0)).unwrap().csrf, "c1");
        assert_eq!(Signer::new(&[8; 32]).unwrap().verify_link(&link, at(0)).unwrap_err(), Refused::Invalid);
        let mut tampered = link.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert_eq!(signer.verify_link(&tampered, at(0)).unwrap_err(), Refused::Invalid);
    }
}
