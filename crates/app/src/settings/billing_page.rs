//! `[billing_page]`: the hosted billing page for workspace admins — how its links and sessions are signed, how long
//! they live, and the product's name, logo and colour on it.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::problems::{Problems, check_http_url};

/// The shortest signing secret accepted: as many bytes as the HMAC-SHA256 hash.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingPageSettings {
    pub enabled: bool,
    /// Signs links and sessions (HS256). Empty: a random secret per process, so links and sessions neither
    /// survive a restart nor work across replicas; refused in production.
    pub secret: SecretString,
    pub link_ttl_secs: u64,
    pub session_ttl_secs: u64,
    pub product_name: String,
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub accent_color: String,
    /// The language of links that name none: `en`, `pt-BR` or `es`.
    pub default_locale: String,
}

impl BillingPageSettings {
    pub(super) fn validate(&self, p: &mut Problems, production: bool) {
        let secret = self.secret.expose_secret();
        if !secret.is_empty() && secret.len() < MIN_SECRET_BYTES {
            p.add("billing_page.secret", "must be at least 32 bytes (set TOLLGATE__BILLING_PAGE__SECRET)");
        }
        if production && self.enabled && secret.is_empty() {
            p.add(
                "billing_page.secret",
                "must be set when TOLLGATE_ENV=production: without it every replica signs links with its own random \
                 secret, and a restart ends every open page (set TOLLGATE__BILLING_PAGE__SECRET)",
            );
        }
        if !(60..=86_400).contains(&self.link_ttl_secs) {
            p.add("billing_page.link_ttl_secs", "must be between 60 and 86400 (a day)");
        }
        if !(60..=86_400).contains(&self.session_ttl_secs) {
            p.add("billing_page.session_ttl_secs", "must be between 60 and 86400 (a day)");
        }
        if self.product_name.trim().is_empty() || self.product_name.chars().count() > 80 {
            p.add("billing_page.product_name", "must be 1 to 80 characters");
        }
        // The page's CSP loads images from itself and over https only.
        if let Some(url) = &self.logo_url
            && !url.starts_with("https://")
        {
            p.add("billing_page.logo_url", &format!("must be an absolute https:// URL, got {url:?}"));
        } else if let Some(url) = &self.logo_url {
            check_http_url(p, "billing_page.logo_url", url);
        }
        if billing_http::billing_page::Accent::parse(&self.accent_color).is_none() {
            p.add("billing_page.accent_color", &format!("must be a #rrggbb colour, got {:?}", self.accent_color));
        }
        if billing_http::billing_page::Locale::parse(&self.default_locale).is_none() {
            p.add(
                "billing_page.default_locale",
                &format!("must be one of {}, got {:?}", billing_http::billing_page::Locale::NAMES, self.default_locale),
            );
        }
    }
}
