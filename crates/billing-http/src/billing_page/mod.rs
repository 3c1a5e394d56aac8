//! The hosted billing page for workspace owners and admins (SPEC §1's browser user): opened by a signed,
//! single-use link the product backend mints (`POST /v1/workspaces/{id}/billing-page-sessions`), then held by its
//! own session cookie. Everything here is the page's own: tokens (`tokens`), words (`strings`), what one view shows
//! (`view`), its charts (`chart`) and templates (`templates`); the routes are `routes/billing_page*.rs`, and every
//! action goes through the same services, with the same rules, as the API's routes.

mod chart;
pub(crate) mod strings;
pub(crate) mod templates;
pub(crate) mod tokens;
pub(crate) mod view;

use std::sync::Arc;

use billing_domain::dunning::DunningSchedule;
use billing_domain::ports::{CreditHistory, PageLinks, Proration, UsageHistory};

pub use strings::Locale;
pub use tokens::Signer;

/// A `#rrggbb` accent colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accent([u8; 3]);

impl Accent {
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix('#').filter(|h| h.len() == 6)?;
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        Some(Self([byte(0)?, byte(2)?, byte(4)?]))
    }

    fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }

    /// Black or white, whichever reads better on the accent (WCAG relative luminance).
    fn ink(self) -> &'static str {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        let [r, g, b] = self.0;
        let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
        // Contrast against white is 1.05 / (L + 0.05), against black (L + 0.05) / 0.05; equal at L ≈ 0.179.
        if luminance > 0.179 { "#000000" } else { "#ffffff" }
    }
}

/// The product as the page shows it.
#[derive(Debug, Clone)]
pub struct Branding {
    pub product_name: String,
    pub logo_url: Option<String>,
    pub accent: Accent,
}

/// The page's settings.
#[derive(Debug, Clone)]
pub struct PageSettings {
    pub link_ttl: chrono::Duration,
    pub session_ttl: chrono::Duration,
    pub default_locale: Locale,
    pub branding: Branding,
    /// Where browsers reach Tollgate (links and redirects are built on it); `https` makes the cookie `Secure`.
    pub public_url: String,
    /// How the processor prorates plan changes made here (`stripe.proration`).
    pub proration: Proration,
    pub dunning: DunningSchedule,
    /// The one trial each workspace may start (`billing.trial_*`).
    pub trial: billing_domain::trial::TrialPolicy,
}

/// What the page's routes share.
pub struct BillingPage {
    pub(crate) settings: PageSettings,
    pub(crate) signer: Signer,
    pub(crate) links: Arc<dyn PageLinks>,
    pub(crate) ledger: Arc<dyn CreditHistory>,
    pub(crate) usage_days: Arc<dyn UsageHistory>,
    /// `/assets/billing-page.css`, with the accent filled in once.
    pub(crate) stylesheet: String,
}

impl BillingPage {
    pub fn new(
        settings: PageSettings,
        signer: Signer,
        links: Arc<dyn PageLinks>,
        ledger: Arc<dyn CreditHistory>,
        usage_days: Arc<dyn UsageHistory>,
    ) -> Self {
        let accent = settings.branding.accent;
        let stylesheet =
            templates::STYLESHEET.replace("__ACCENT__", &accent.css()).replace("__ACCENT_INK__", accent.ink());
        Self { settings, signer, links, ledger, usage_days, stylesheet }
    }

    pub(crate) fn secure_cookie(&self) -> bool {
        self.settings.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_parse_and_pick_a_readable_ink() {
        assert_eq!(Accent::parse("#4338CA").map(Accent::css).as_deref(), Some("#4338ca"));
        assert_eq!(Accent::parse("4338ca"), None);
        assert_eq!(Accent::parse("#43g8ca"), None);
        assert_eq!(Accent::parse("#4338c"), None);
        assert_eq!(Accent::parse("#4338ca").unwrap().ink(), "#ffffff");
        assert_eq!(Accent::parse("#facc15").unwrap().ink(), "#000000");
    }
}
