//! The SMTP server `scripts/test` starts (aiosmtpd) and the Maildir it writes every accepted message into. Tests
//! run at once and share it, so each sends to addresses of its own and reads back only those.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The port of the SMTP server `scripts/test` started; a run without it fails loudly rather than skipping.
pub fn smtp_port() -> u16 {
    std::env::var("TOLLGATE_SMTP_PORT")
        .expect("TOLLGATE_SMTP_PORT is unset: run the tests with scripts/test, which starts the SMTP server")
        .parse()
        .expect("TOLLGATE_SMTP_PORT is a port")
}

fn maildir() -> PathBuf {
    PathBuf::from(std::env::var("TOLLGATE_SMTP_MAILDIR").expect("TOLLGATE_SMTP_MAILDIR is unset: run scripts/test"))
}

/// One message as the server stored it.
pub struct Received {
    pub raw: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&self.raw).expect("a parsable message")
    }
}

/// Every message to `recipient` so far.
pub fn messages_to(recipient: &str) -> Vec<Received> {
    let Ok(entries) = std::fs::read_dir(maildir().join("new")) else { return Vec::new() };
    let mut found: Vec<(std::time::SystemTime, Received)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let raw = std::fs::read(entry.path()).ok()?;
            let message = mail_parser::MessageParser::default().parse(&raw)?;
            let to_them = message.to()?.iter().any(|a| a.address().is_some_and(|a| a.eq_ignore_ascii_case(recipient)));
            let modified = entry.metadata().ok()?.modified().ok()?;
            to_them.then_some((modified, Received { raw }))
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, r)| r).collect()
}

/// Waits until `count` messages to `recipient` arrived (at most 10 s), then returns them.
pub fn wait_for(recipient: &str, count: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = messages_to(recipient);
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
