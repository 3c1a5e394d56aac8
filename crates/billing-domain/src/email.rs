//! The owner's email address, checked enough to catch typos without pretending to implement RFC 5322.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// A plausible email address: `local@domain.tld`, no spaces, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
        let raw = raw.into().trim().to_owned();
        let invalid = || ValidationError::new("owner_email", "must be an email address like name@example.com");
        if raw.len() > 254 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = raw.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        assert_eq!(Email::parse(" ana@example.com ").unwrap().as_str(), "ana@example.com");
        assert!(Email::parse("a.b+tag@sub.example.co").is_ok());
    }

    #[test]
    fn rejects_what_cannot_be_delivered() {
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "ana@ex..com", "a@b@c.com"] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "owner_email", "{bad}");
        }
    }
}
