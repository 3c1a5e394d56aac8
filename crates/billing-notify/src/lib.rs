//! Delivering the outbox's messages, behind the domain's ports: owner emails ([`LogNotifier`] by default,
//! [`SmtpNotifier`] over lettre), rendered from the text and HTML templates in `templates/`; outbound webhooks to
//! the product backend ([`HttpPublisher`]), signed the way Stripe signs; and the [`Backoff`] that spaces retries.
//! Nothing here retries on its own: a failure goes back to the outbox worker, which reschedules the message.

mod config;
mod email;
mod retry;
mod webhooks;

pub use config::{EmailConfig, EmailTransport, EndpointConfig, OutboundConfig, SmtpConfig, TlsMode};
pub use email::{LogNotifier, RenderedEmail, SmtpNotifier, render};
pub use retry::Backoff;
pub use webhooks::{HttpPublisher, SIGNATURE_HEADER};
