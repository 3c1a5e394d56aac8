//! Validation lines, and the checks several sections share.

use std::net::IpAddr;

#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    pub(super) fn add(&mut self, setting: &str, why: &str) {
        self.0.push(format!("{setting}: {why}"));
    }

    /// Lines already naming their setting.
    pub(super) fn extend(&mut self, lines: impl IntoIterator<Item = String>) {
        self.0.extend(lines);
    }

    pub(super) fn into_lines(self) -> Vec<String> {
        self.0
    }
}

pub(super) fn check_http_url(p: &mut Problems, setting: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
        _ => p.add(setting, &format!("must be an absolute http:// or https:// URL, got {value:?}")),
    }
}

pub(super) fn is_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
