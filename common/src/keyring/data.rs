//! Trade data at rest: payment details, receipts, evidence and dispute messages are stored
//! sealed with an AEAD under a key of their own offer, so a database dump or backup holds none
//! of their plaintext.
//!
//! `DATA_SECRETS=id:hex,...` lists the secrets by key id (1–32767), the first one current: new
//! writes use it, reads use the id stored beside each value, and the retention job re-seals
//! what an older id (or none: id 0, rows written before encryption) holds, after which the old
//! secret can be dropped. Each offer's key is HKDF-SHA256 of the secret with the offer's id, so
//! one offer's key opens nothing else. The AEAD is AES-256-GCM (already in the build for the
//! workers' sealed tokens): a key seals the few values of one offer, far below the random
//! 96-bit nonce's limit. The offer's id and the field are bound in as associated data, so a
//! sealed value cannot be moved to another offer or field.
//!
//! Layout: version byte `1` ‖ nonce (12) ‖ ciphertext and tag.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use uuid::Uuid;

const VERSION: u8 = 1;
const HEADER: usize = 1 + 12;

/// Key id 0: a value stored before encryption, in plaintext.
pub const PLAINTEXT: i16 = 0;

/// Which value of an offer is sealed (bound into the ciphertext).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    PaymentDetails,
    ReceiptImage,
    ReceiptNote,
    Evidence,
    Message,
}

impl Field {
    fn label(self) -> &'static [u8] {
        match self {
            Self::PaymentDetails => b"payment_details",
            Self::ReceiptImage => b"receipt_image",
            Self::ReceiptNote => b"receipt_note",
            Self::Evidence => b"evidence",
            Self::Message => b"message",
        }
    }
}

/// A value as stored: sealed under `key_id`, or plaintext when the key id is [`PLAINTEXT`]
/// (rows from before encryption, fixtures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The `DATA_SECRETS` id it is sealed under.
    pub key_id: i16,
    /// The sealed bytes.
    pub bytes: Vec<u8>,
}

impl Sealed {
    /// A value stored in plaintext (key id 0), as rows were before encryption.
    pub fn plaintext(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            key_id: PLAINTEXT,
            bytes: bytes.into(),
        }
    }
}

/// A sealed value could not be opened: its key id is not configured, or it was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataKeyError {
    /// The stored key id is not in `DATA_SECRETS` (dropped before the re-sealing finished?).
    #[error("trade data sealed under key id {0}, which DATA_SECRETS does not list")]
    UnknownKey(i16),
    /// The ciphertext or its context does not authenticate.
    #[error("sealed trade data does not authenticate")]
    Corrupt,
}

/// The trade-data secrets by key id; the current one seals.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKeys {
    current: i16,
    secrets: BTreeMap<i16, [u8; 32]>,
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKeys")
            .field("current", &self.current)
            .field("ids", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DataKeys {
    /// Parses `DATA_SECRETS`: `id:hex` entries separated by commas, ids 1–32767 and distinct,
    /// each secret 32 bytes of hex; the first is current. The error says what is wrong without
    /// repeating a secret.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut secrets = BTreeMap::new();
        let mut current = None;
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, hex) = entry
                .split_once(':')
                .ok_or("each entry is id:hex (e.g. 1:<64 hex characters>)")?;
            let id: i16 = id
                .trim()
                .parse()
                .ok()
                .filter(|i| *i > 0)
                .ok_or("key ids are whole numbers from 1 to 32767")?;
            let hex = hex.trim();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "the secret of key id {id} must be 32 bytes of hex (64 characters)"
                ));
            }
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
            }
            if secrets.insert(id, bytes).is_some() {
                return Err(format!("key id {id} is listed twice"));
            }
            current.get_or_insert(id);
        }
        let current = current.ok_or("at least one id:hex entry is required")?;
        Ok(Self { current, secrets })
    }

    /// The key id new writes use.
    pub fn current(&self) -> i16 {
        self.current
    }

    fn cipher(&self, key_id: i16, offer: Uuid) -> Result<Aes256Gcm, DataKeyError> {
        let secret = self
            .secrets
            .get(&key_id)
            .ok_or(DataKeyError::UnknownKey(key_id))?;
        let hk = Hkdf::<Sha256>::new(Some(b"openpleb/trade-data/v1"), secret);
        let mut key = [0u8; 32];
        hk.expand(offer.as_bytes(), &mut key)
            .map_err(|_| DataKeyError::Corrupt)?;
        Aes256Gcm::new_from_slice(&key).map_err(|_| DataKeyError::Corrupt)
    }

    fn aad(offer: Uuid, field: Field) -> Vec<u8> {
        let mut aad = offer.as_bytes().to_vec();
        aad.extend_from_slice(field.label());
        aad
    }

    /// `plaintext` sealed under the current key for `field` of `offer`.
    pub fn seal(&self, offer: Uuid, field: Field, plaintext: &[u8]) -> Sealed {
        let nonce: [u8; 12] = {
            let r = Uuid::new_v4().into_bytes();
            let mut n = [0u8; 12];
            n.copy_from_slice(&r[..12]);
            n
        };
        let aad = Self::aad(offer, field);
        let sealed = self.cipher(self.current, offer).and_then(|c| {
            c.encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| DataKeyError::Corrupt)
        });
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        // The current key is always configured and AES-GCM encryption of an in-memory buffer
        // cannot fail; an empty tail would fail to open, never leak.
        out.extend(sealed.unwrap_or_default());
        Sealed {
            key_id: self.current,
            bytes: out,
        }
    }

    /// Opens what [`DataKeys::seal`] made under `key_id` for `field` of `offer`; a value of
    /// key id [`PLAINTEXT`] is returned as it is.
    pub fn open(
        &self,
        key_id: i16,
        offer: Uuid,
        field: Field,
        stored: &[u8],
    ) -> Result<Vec<u8>, DataKeyError> {
        if key_id == PLAINTEXT {
            return Ok(stored.to_vec());
        }
        if stored.len() < HEADER || stored[0] != VERSION {
            return Err(DataKeyError::Corrupt);
        }
        let nonce: [u8; 12] = stored[1..HEADER]
            .try_into()
            .map_err(|_| DataKeyError::Corrupt)?;
        let aad = Self::aad(offer, field);
        self.cipher(key_id, offer)?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &stored[HEADER..],
                    aad: &aad,
                },
            )
            .map_err(|_| DataKeyError::Corrupt)
    }

    /// Opens a stored value.
    pub fn open_stored(
        &self,
        offer: Uuid,
        field: Field,
        stored: &Sealed,
    ) -> Result<Vec<u8>, DataKeyError> {
        self.open(stored.key_id, offer, field, &stored.bytes)
    }

    /// [`DataKeys::open`] for text.
    pub fn open_text(
        &self,
        key_id: i16,
        offer: Uuid,
        field: Field,
        stored: &[u8],
    ) -> Result<String, DataKeyError> {
        String::from_utf8(self.open(key_id, offer, field, stored)?)
            .map_err(|_| DataKeyError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn sealed_values_open_only_for_their_offer_field_and_key() {
        let keys = DataKeys::parse(&format!("1:{A}")).expect("keys");
        let offer = Uuid::new_v4();
        let Sealed {
            key_id,
            bytes: sealed,
        } = keys.seal(offer, Field::PaymentDetails, b"IBAN DE89 3704");
        assert_eq!(key_id, 1);
        assert!(!sealed.windows(4).any(|w| w == b"IBAN"));
        assert_eq!(
            keys.open(1, offer, Field::PaymentDetails, &sealed),
            Ok(b"IBAN DE89 3704".to_vec())
        );
        assert_eq!(
            keys.open(1, Uuid::new_v4(), Field::PaymentDetails, &sealed),
            Err(DataKeyError::Corrupt)
        );
        assert_eq!(
            keys.open(1, offer, Field::Message, &sealed),
            Err(DataKeyError::Corrupt)
        );
        assert_eq!(
            keys.open(2, offer, Field::PaymentDetails, &sealed),
            Err(DataKeyError::UnknownKey(2))
        );
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert_eq!(
            keys.open(1, offer, Field::PaymentDetails, &changed),
            Err(DataKeyError::Corrupt)
        );
        // Two seals of one value differ (fresh nonces).
        assert_ne!(
            keys.seal(offer, Field::PaymentDetails, b"x"),
            keys.seal(offer, Field::PaymentDetails, b"x")
        );
        // Plaintext rows from before encryption read as they are.
        assert_eq!(
            keys.open(PLAINTEXT, offer, Field::Message, b"hi"),
            Ok(b"hi".to_vec())
        );
    }

    #[test]
    fn rotation_reads_old_ids_and_seals_with_the_first() {
        let old = DataKeys::parse(&format!("1:{A}")).expect("old");
        let offer = Uuid::new_v4();
        let sealed = old.seal(offer, Field::ReceiptNote, b"paid").bytes;
        let rotated = DataKeys::parse(&format!("2:{B}, 1:{A}")).expect("rotated");
        assert_eq!(rotated.current(), 2);
        assert_eq!(
            rotated.open_text(1, offer, Field::ReceiptNote, &sealed),
            Ok("paid".to_owned())
        );
        assert_eq!(rotated.seal(offer, Field::ReceiptNote, b"paid").key_id, 2);
    }

    #[test]
    fn bad_settings_are_refused_without_echoing_secrets() {
        for bad in [
            String::new(),
            "1".to_owned(),
            format!("0:{A}"),
            format!("x:{A}"),
            "1:abc".to_owned(),
            format!("1:{A},1:{B}"),
            format!("40000:{A}"),
        ] {
            let e = DataKeys::parse(&bad).expect_err(&bad);
            assert!(!e.contains(A) && !e.contains(B), "{e}");
        }
        let keys = DataKeys::parse(&format!("7:{A}")).expect("keys");
        assert!(!format!("{keys:?}").contains("1111"));
    }
}
