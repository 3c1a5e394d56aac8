//! The hosted billing page as configured (`[billing_page]`): its signer, branding and the reads it makes.

use std::sync::Arc;

use anyhow::Context as _;
use billing_domain::ports::{CreditHistory, PageLinks, UsageHistory};
use billing_http::billing_page::{Accent, BillingPage, Branding, Locale, PageSettings, Signer};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// The page, or `None` when `billing_page.enabled` is off.
pub fn start<S>(settings: &Settings, public_url: &str, store: Arc<S>) -> anyhow::Result<Option<Arc<BillingPage>>>
where
    S: PageLinks + CreditHistory + UsageHistory + 'static,
{
    let config = &settings.billing_page;
    if !config.enabled {
        return Ok(None);
    }
    let configured = config.secret.expose_secret().as_bytes();
    let secret = if configured.is_empty() {
        tracing::warn!(
            "billing_page.secret is not set: links and sessions are signed with a random secret of this process, \
             so they end when it stops and no other replica accepts them"
        );
        random_secret()
    } else {
        configured.to_vec()
    };
    let signer = Signer::new(&secret).context("billing_page.secret is empty")?;
    let page_settings = PageSettings {
        link_ttl: chrono::Duration::seconds(i64::try_from(config.link_ttl_secs)?),
        session_ttl: chrono::Duration::seconds(i64::try_from(config.session_ttl_secs)?),
        default_locale: Locale::parse(&config.default_locale).context("billing_page.default_locale")?,
        branding: Branding {
            product_name: config.product_name.clone(),
            logo_url: config.logo_url.clone(),
            accent: Accent::parse(&config.accent_color).context("billing_page.accent_color")?,
        },
        public_url: public_url.trim_end_matches('/').to_owned(),
        proration: settings.stripe.proration,
        dunning: settings.dunning.schedule(),
        trial: settings.billing_policy().trial,
    };
    let links: Arc<dyn PageLinks> = store.clone();
    let ledger: Arc<dyn CreditHistory> = store.clone();
    let usage_days: Arc<dyn UsageHistory> = store;
    Ok(Some(Arc::new(BillingPage::new(page_settings, signer, links, ledger, usage_days))))
}

/// 32 bytes from the operating system's generator (through uuid v4, which draws on it).
fn random_secret() -> Vec<u8> {
    [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()].iter().flat_map(|id| id.as_bytes().to_vec()).collect()
}
