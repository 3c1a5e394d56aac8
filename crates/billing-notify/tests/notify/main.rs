//! The adapters against real peers: an SMTP server (aiosmtpd, started by `scripts/test`) and an HTTP receiver
//! started by the test.

mod smtp;
mod webhooks;
