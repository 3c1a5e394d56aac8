//! Owner emails: rendered from `templates/` (one text and one HTML file per kind, askama-checked at compile
//! time), then logged ([`LogNotifier`]) or sent ([`SmtpNotifier`]).

mod smtp;
mod views;

use async_trait::async_trait;
use billing_domain::ports::{Notification, Notifier, NotifyError};
use billing_domain::records::NotificationKind;

pub use smtp::SmtpNotifier;
use views::View;

/// An email ready for a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders `notification`: subject, text body and HTML body.
pub fn render(notification: &Notification) -> Result<RenderedEmail, NotifyError> {
    let view = View::of(notification);
    let subject = subject(notification.kind, &view);
    let (text, html) = views::bodies(notification.kind, &view).map_err(|e| NotifyError(format!("template: {e}")))?;
    Ok(RenderedEmail { subject, text, html })
}

fn subject(kind: NotificationKind, view: &View) -> String {
    let workspace = &view.workspace;
    match kind {
        NotificationKind::PaymentSucceeded => {
            format!("Receipt for {workspace}: {} paid", view.amount_or("your payment"))
        }
        NotificationKind::PaymentFailed => format!("Action needed: the payment for {workspace} failed"),
        NotificationKind::CancellationScheduled => format!("Your {} plan for {workspace} will end", view.plan_or("")),
        NotificationKind::SubscriptionEnded => {
            format!("Your {} subscription for {workspace} has ended", view.plan_or(""))
        }
        NotificationKind::TrialEnding => {
            format!("Your trial of {} for {workspace} ends in 3 days", view.plan_or("the plan"))
        }
        NotificationKind::DunningStep => match view.step.as_deref() {
            Some("urgent") => format!("Urgent: {workspace} has an unpaid invoice"),
            Some("restrict") => format!("{workspace} is limited to the free plan until the invoice is paid"),
            Some("final_warning") => format!("Final notice: the subscription of {workspace} will be canceled"),
            Some("cancel") => format!("The subscription of {workspace} was canceled for non-payment"),
            _ => format!("Reminder: the payment for {workspace} is still due"),
        },
    }
    .replace("  ", " ")
}

/// The default notifier: renders each email (so a template problem shows) and logs that it would have been sent,
/// without the address or the body.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let email = render(notification)?;
        tracing::info!(
            outbox_id = notification.outbox_id,
            kind = ?notification.kind,
            subject = %email.subject,
            "email not sent: the log notifier is configured (notifications.email.transport = \"smtp\" sends it)"
        );
        Ok(())
    }
}
