//! Sending owner emails through an SMTP relay with lettre.

use std::time::Duration;

use async_trait::async_trait;
use billing_domain::ports::{Notification, Notifier, NotifyError};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::render;
use crate::config::{EmailConfig, TlsMode};

/// Sends each email as text and HTML alternatives, one SMTP transaction each (connections pooled).
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The whole delivery's budget: connect, TLS, the dialogue, a pooled connection's check.
    deadline: Duration,
    from: Mailbox,
    /// The right-hand side of every `Message-ID`: the sender's domain.
    id_domain: String,
}

impl SmtpNotifier {
    /// A notifier for a validated configuration; fails only on a relay name lettre cannot use for TLS.
    pub fn new(config: &EmailConfig) -> Result<Self, String> {
        let smtp = &config.smtp;
        let from: Mailbox = config.from.parse().map_err(|e| format!("notifications.email.from: {e}"))?;
        let builder = match smtp.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .map_err(|e| format!("notifications.email.smtp.host: {e}"))?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                .map_err(|e| format!("notifications.email.smtp.host: {e}"))?,
        };
        let mut builder = builder.port(smtp.port).timeout(Some(Duration::from_millis(smtp.timeout_ms)));
        if !smtp.username.is_empty() {
            builder =
                builder.credentials(Credentials::new(smtp.username.clone(), smtp.password.expose_secret().to_owned()));
        }
        let id_domain = from.email.domain().to_owned();
        let deadline = Duration::from_millis(smtp.timeout_ms);
        Ok(Self { transport: builder.build(), deadline, from, id_domain })
    }

    /// The `Message-ID` of the email an outbox message becomes: the same on every redelivery of that message.
    pub fn message_id(&self, outbox_id: i64) -> String {
        format!("<outbox-{outbox_id}@{}>", self.id_domain)
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let email = render(notification)?;
        let to: Mailbox = notification
            .to
            .as_str()
            .parse()
            .map_err(|e| NotifyError(format!("the owner's address is not deliverable: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(self.message_id(notification.outbox_id)))
            .multipart(MultiPart::alternative_plain_html(email.text, email.html))
            .map_err(|e| NotifyError(format!("building the message: {e}")))?;
        // lettre's error names the relay's answer, never the credentials. Its timeout covers only the connect:
        // a relay that stalls later must not hold the outbox worker (and the message's lease) forever.
        match tokio::time::timeout(self.deadline, self.transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(|e| NotifyError(format!("smtp: {e}"))),
            Err(_) => Err(NotifyError(format!("smtp: no answer within {} ms", self.deadline.as_millis()))),
        }
    }
}
