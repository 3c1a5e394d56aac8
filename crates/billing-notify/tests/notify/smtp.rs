//! The SMTP notifier against a real SMTP server: what arrives, to whom, with which headers and bodies.

use billing_domain::email::Email;
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{Notification, NotificationFacts, Notifier};
use billing_domain::records::NotificationKind;
use billing_notify::{EmailConfig, EmailTransport, SmtpConfig, SmtpNotifier, TlsMode};
use chrono::{TimeZone, Utc};
use mail_parser::MimeHeaders;
use secrecy::SecretString;

use tollgate_e2e::mailbox::{smtp_port, wait_for};

fn config(port: u16) -> EmailConfig {
    EmailConfig {
        transport: EmailTransport::Smtp,
        from: "Tollgate Billing <billing@tollgate.test>".into(),
        smtp: SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            username: String::new(),
            password: SecretString::from(""),
            timeout_ms: 5_000,
        },
    }
}

/// An address no other test sends to.
fn owner(test: &str) -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{test}-{}-{nanos}@example.com", std::process::id())
}

fn notification(outbox_id: i64, kind: NotificationKind, to: &str) -> Notification {
    Notification {
        outbox_id,
        kind,
        to: Email::parse(to).unwrap(),
        workspace_name: "Acme <Labs>".into(),
        facts: NotificationFacts {
            amount: Some(Money::new(4900, Currency::parse("USD").unwrap())),
            plan: Some("Pro".into()),
            invoice_url: Some("https://pay.example/invoices/in_1?x=1&y=2".into()),
            manage_url: Some("https://app.example/billing/acme".into()),
            date: Some(Utc.with_ymd_and_hms(2026, 3, 14, 0, 0, 0).unwrap()),
            attempt: Some(2),
            step: None,
        },
    }
}

#[tokio::test]
async fn a_receipt_arrives_as_text_and_html_with_its_amount_plan_and_invoice_link() {
    let to = owner("receipt");
    let notifier = SmtpNotifier::new(&config(smtp_port())).unwrap();
    notifier.send(&notification(41, NotificationKind::PaymentSucceeded, &to)).await.unwrap();

    let received = wait_for(&to, 1);
    assert_eq!(received.len(), 1, "one message to {to}");
    let message = received[0].parsed();
    assert_eq!(message.subject(), Some("Receipt for Acme <Labs>: 49.00 USD paid"));
    assert_eq!(message.from().and_then(|f| f.first()).and_then(|a| a.address()), Some("billing@tollgate.test"));
    assert_eq!(message.message_id(), Some("outbox-41@tollgate.test"), "derived from the outbox id");
    let text = message.body_text(0).expect("a text part");
    assert!(text.contains("49.00 USD was paid for Acme <Labs> (Pro plan)"), "{text}");
    assert!(text.contains("Your invoice: https://pay.example/invoices/in_1?x=1&y=2"), "{text}");
    let html = message.body_html(0).expect("an HTML part");
    assert!(html.contains("<strong>49.00 USD</strong>"), "{html}");
    assert!(html.contains("Acme &#60;Labs&#62;") || html.contains("Acme &lt;Labs&gt;"), "escaped in HTML: {html}");
    assert!(
        html.contains(r#"href="https://pay.example/invoices/in_1?x=1&#38;y=2""#) || html.contains("x=1&amp;y=2"),
        "{html}"
    );
    let parts: Vec<_> = message.parts.iter().filter_map(|p| p.content_type()).map(|c| c.c_type.to_string()).collect();
    assert!(parts.iter().any(|t| t == "multipart"), "text and HTML alternatives: {parts:?}");
}

#[tokio::test]
async fn every_kind_renders_its_own_subject_and_link() {
    let notifier = SmtpNotifier::new(&config(smtp_port())).unwrap();
    let cases = [
        (
            NotificationKind::PaymentFailed,
            "Action needed: the payment for Acme <Labs> failed",
            "Update your payment method: https://app.example/billing/acme",
        ),
        (NotificationKind::CancellationScheduled, "Your Pro plan for Acme <Labs> will end", "ends on March 14, 2026"),
        (
            NotificationKind::SubscriptionEnded,
            "Your Pro subscription for Acme <Labs> has ended",
            "on the free plan now",
        ),
        (
            NotificationKind::TrialEnding,
            "Your trial of Pro for Acme <Labs> ends in 3 days",
            "ends in 3 days, on March 14, 2026",
        ),
    ];
    for (i, (kind, subject, line)) in cases.into_iter().enumerate() {
        let to = owner(&format!("kind{i}"));
        notifier.send(&notification(100 + i as i64, kind, &to)).await.unwrap();
        let received = wait_for(&to, 1);
        assert_eq!(received.len(), 1, "{kind:?}");
        let message = received[0].parsed();
        assert_eq!(message.subject(), Some(subject), "{kind:?}");
        let text = message.body_text(0).unwrap();
        assert!(text.contains(line), "{kind:?}: {text}");
        assert!(message.body_html(0).is_some(), "{kind:?} has an HTML part");
    }
}

#[tokio::test]
async fn a_redelivered_message_carries_the_same_message_id() {
    let to = owner("again");
    let notifier = SmtpNotifier::new(&config(smtp_port())).unwrap();
    let message = notification(77, NotificationKind::PaymentFailed, &to);
    notifier.send(&message).await.unwrap();
    notifier.send(&message).await.unwrap();
    let received = wait_for(&to, 2);
    let ids: Vec<_> = received.iter().map(|r| r.parsed().message_id().map(str::to_owned)).collect();
    assert_eq!(ids, [Some("outbox-77@tollgate.test".to_owned()), Some("outbox-77@tollgate.test".to_owned())]);
}

#[tokio::test]
async fn an_unreachable_relay_is_an_error_for_the_worker_to_retry() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let notifier = SmtpNotifier::new(&config(closed)).unwrap();
    let error = notifier.send(&notification(1, NotificationKind::PaymentFailed, &owner("down"))).await.unwrap_err();
    assert!(error.to_string().contains("smtp"), "{error}");
}
