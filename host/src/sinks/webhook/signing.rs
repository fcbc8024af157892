//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): each request carries
//! `webhook-id`, `webhook-timestamp` (seconds since the epoch) and `webhook-signature`, a
//! space-separated list of `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per secret, so
//! that a receiver verifies with whichever secret it holds while secrets rotate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::signing_key;

/// The keys requests are signed with, decoded from their `whsec_` secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SigningKeys(Vec<Vec<u8>>);

impl SigningKeys {
    /// Decodes `whsec_<base64>` secrets; `Err` names the first that is not one (by position,
    /// never by value).
    pub fn parse<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let key = signing_key(secret)
                .ok_or_else(|| format!("signing secret {} is not `whsec_` followed by base64", index + 1))?;
            keys.push(key);
        }
        Ok(SigningKeys(keys))
    }

    /// Whether requests are signed at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `webhook-signature` value for a request, or `None` without keys.
    pub fn signature(&self, id: &str, timestamp: u64, body: &[u8]) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let signatures: Vec<String> = self
            .0
            .iter()
            .map(|key| {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
                mac.update(id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
            })
            .collect();
        Some(signatures.join(" "))
    }
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({} keys)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification, checked with Python's `hmac` too.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SIGNED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specifications_example_signs_as_published() {
        let keys = SigningKeys::parse([SECRET]).unwrap();
        let signature =
            keys.signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(signature.as_deref(), Some(SIGNED));
    }

    #[test]
    fn during_a_rotation_each_secret_signs() {
        let keys = SigningKeys::parse([SECRET, "whsec_c2Vjb25k"]).unwrap();
        let signature = keys
            .signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#)
            .unwrap();
        let signatures: Vec<&str> = signature.split(' ').collect();
        assert_eq!(signatures.len(), 2);
        assert_eq!(signatures[0], SIGNED);
        assert!(signatures[1].starts_with("v1,") && signatures[1] != SIGNED);
    }

    #[test]
    fn without_secrets_nothing_is_signed_and_bad_secrets_are_named_by_position() {
        assert_eq!(SigningKeys::default().signature("id", 1, b"{}"), None);
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_***"] {
            let error = SigningKeys::parse([SECRET, bad]).unwrap_err();
            assert_eq!(error, "signing secret 2 is not `whsec_` followed by base64");
        }
        assert_eq!(format!("{:?}", SigningKeys::parse([SECRET]).unwrap()), "SigningKeys(1 keys)");
    }
}
