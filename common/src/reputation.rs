//! The reputation token issuer: Chaumian blind signatures on a non-monetary unit `rep`, the
//! same BDHKE as Cashu (cdk's `dhke` and NUT-12 DLEQ code), so any Cashu library can unblind and
//! verify them.
//!
//! Keysets derive from `REPUTATION_SECRET`, one per rotation (`REPUTATION_KEYSET`): the active
//! one signs, all of them verify. Every key signs amount 1 only. Pure computation, no I/O: the
//! trade steps decide when to sign and record what was signed or spent.

use std::collections::BTreeMap;

use cdk_common::bitcoin::bip32::{ChildNumber, DerivationPath};
use cdk_common::dhke::{hash_to_curve, sign_message, verify_message};
use cdk_common::nuts::nut02::KeySetVersion;
use cdk_common::nuts::{
    BlindSignature, BlindedMessage, CurrencyUnit, Id, KeySet, MintKeySet, Proof, PublicKey,
};
use cdk_common::{Amount, SECP256K1};

/// The unit reputation keysets are issued in.
pub const UNIT: &str = "rep";

/// Why a reputation output or token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReputationError {
    /// A keyset this issuer never had.
    #[error("unknown reputation keyset")]
    UnknownKeyset,
    /// An output for a keyset that no longer signs.
    #[error("outputs must name the active keyset")]
    InactiveKeyset,
    /// Reputation tokens are worth 1, always.
    #[error("reputation outputs and tokens have amount 1")]
    WrongAmount,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Forged,
    /// A point or scalar the curve refused.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// One issuer: every keyset up to the active rotation.
#[derive(Debug, Clone)]
pub struct Issuer {
    keysets: Vec<MintKeySet>,
}

impl Issuer {
    /// The issuer of `secret` with keysets `0..=active`.
    pub fn new(secret: &[u8], active: u32) -> Self {
        let keysets = (0..=active)
            .map(|rotation| {
                let path = DerivationPath::from(
                    [
                        ChildNumber::Hardened { index: 0 },
                        ChildNumber::Hardened { index: rotation },
                    ]
                    .as_slice(),
                );
                MintKeySet::generate_from_seed(
                    &SECP256K1,
                    secret,
                    &[1],
                    CurrencyUnit::Custom(UNIT.into()),
                    path,
                    0,
                    None,
                    KeySetVersion::Version01,
                )
            })
            .collect();
        Self { keysets }
    }

    fn active(&self) -> &MintKeySet {
        // `new` always makes at least keyset 0.
        &self.keysets[self.keysets.len() - 1]
    }

    /// The keyset that signs now.
    pub fn active_id(&self) -> Id {
        self.active().id
    }

    /// Every keyset's public keys, NUT-01 form; the last is the active one.
    pub fn keysets(&self) -> Vec<KeySet> {
        let active = self.active_id();
        self.keysets
            .iter()
            .map(|k| KeySet {
                id: k.id,
                unit: k.unit.clone(),
                active: Some(k.id == active),
                keys: k.keys.clone().into(),
                input_fee_ppk: 0,
                final_expiry: None,
            })
            .collect()
    }

    fn key_of(&self, id: &Id) -> Result<&cdk_common::nuts::nut01::MintKeyPair, ReputationError> {
        let keyset = self
            .keysets
            .iter()
            .find(|k| &k.id == id)
            .ok_or(ReputationError::UnknownKeyset)?;
        keyset
            .keys
            .get(&Amount::from(1))
            .ok_or(ReputationError::UnknownKeyset)
    }

    /// Checks a blinded output the client wants signed later: amount 1, the active keyset.
    pub fn check_output(&self, m: &BlindedMessage) -> Result<(), ReputationError> {
        if m.amount != Amount::from(1) {
            return Err(ReputationError::WrongAmount);
        }
        self.key_of(&m.keyset_id)?;
        if m.keyset_id != self.active_id() {
            return Err(ReputationError::InactiveKeyset);
        }
        Ok(())
    }

    /// Signs an output with its keyset's key, with the NUT-12 DLEQ proof.
    pub fn sign(&self, m: &BlindedMessage) -> Result<BlindSignature, ReputationError> {
        if m.amount != Amount::from(1) {
            return Err(ReputationError::WrongAmount);
        }
        let pair = self.key_of(&m.keyset_id)?;
        let c = sign_message(&pair.secret_key, &m.blinded_secret)
            .map_err(|e| ReputationError::Malformed(e.to_string()))?;
        BlindSignature::new(
            m.amount,
            c,
            m.keyset_id,
            &m.blinded_secret,
            &pair.secret_key,
        )
        .map_err(|e| ReputationError::Malformed(e.to_string()))
    }

    /// Verifies an unblinded token of any of this issuer's keysets; its `Y`
    /// (`hash_to_curve(secret)`), which identifies it once spent.
    pub fn verify(&self, p: &Proof) -> Result<PublicKey, ReputationError> {
        if p.amount != Amount::from(1) {
            return Err(ReputationError::WrongAmount);
        }
        let pair = self.key_of(&p.keyset_id)?;
        verify_message(&pair.secret_key, p.c, p.secret.as_bytes())
            .map_err(|_| ReputationError::Forged)?;
        hash_to_curve(p.secret.as_bytes()).map_err(|e| ReputationError::Malformed(e.to_string()))
    }

    /// The public key of `id`'s amount-1 key (what a client unblinds and verifies with).
    pub fn public_key(&self, id: &Id) -> Result<PublicKey, ReputationError> {
        Ok(self.key_of(id)?.public_key)
    }
}

/// Every keyset's keys as NUT-01 maps of amount → public key (hex).
pub fn keys_map(k: &KeySet) -> BTreeMap<String, String> {
    k.keys
        .iter()
        .map(|(amount, key)| (amount.to_string(), key.to_hex()))
        .collect()
}

#[cfg(test)]
mod tests {
    use cdk_common::dhke::{blind_message, construct_proofs};
    use cdk_common::nuts::Keys;
    use cdk_common::secret::Secret;

    use super::*;

    /// What a client does: blind a fresh secret for the active keyset.
    fn blind(issuer: &Issuer) -> (BlindedMessage, Secret, cdk_common::nuts::SecretKey) {
        let secret = Secret::generate();
        let (b, r) = blind_message(secret.as_bytes(), None).expect("blind");
        (
            BlindedMessage::new(Amount::from(1), issuer.active_id(), b),
            secret,
            r,
        )
    }

    fn unblind(
        issuer: &Issuer,
        sig: BlindSignature,
        secret: Secret,
        r: cdk_common::nuts::SecretKey,
    ) -> Proof {
        let keyset = issuer
            .keysets()
            .into_iter()
            .find(|k| k.id == sig.keyset_id)
            .expect("keyset");
        let keys: Keys = keyset.keys;
        construct_proofs(vec![sig], vec![r], vec![secret], &keys)
            .expect("unblind")
            .remove(0)
    }

    #[test]
    fn a_blind_signature_unblinds_into_a_token_that_verifies() {
        let issuer = Issuer::new(&[7u8; 32], 0);
        let (out, secret, r) = blind(&issuer);
        issuer.check_output(&out).expect("acceptable output");
        let sig = issuer.sign(&out).expect("sign");
        let key = issuer.public_key(&sig.keyset_id).expect("key");
        sig.verify_dleq(key, out.blinded_secret).expect("DLEQ");
        let token = unblind(&issuer, sig, secret.clone(), r);
        let y = issuer.verify(&token).expect("verifies");
        assert_eq!(y, hash_to_curve(secret.as_bytes()).expect("Y"));
    }

    #[test]
    fn forged_tokens_wrong_amounts_and_unknown_keysets_are_refused() {
        let issuer = Issuer::new(&[7u8; 32], 0);
        let (out, secret, r) = blind(&issuer);
        let token = unblind(&issuer, issuer.sign(&out).expect("sign"), secret, r);
        let mut forged = token.clone();
        forged.secret = Secret::generate();
        assert_eq!(issuer.verify(&forged), Err(ReputationError::Forged));
        let mut two = token.clone();
        two.amount = Amount::from(2);
        assert_eq!(issuer.verify(&two), Err(ReputationError::WrongAmount));
        let other = Issuer::new(&[8u8; 32], 0);
        assert_eq!(other.verify(&token), Err(ReputationError::UnknownKeyset));
        let mut big = out.clone();
        big.amount = Amount::from(4);
        assert_eq!(issuer.check_output(&big), Err(ReputationError::WrongAmount));
    }

    #[test]
    fn old_keysets_still_verify_but_only_the_active_one_takes_outputs() {
        let old = Issuer::new(&[9u8; 32], 0);
        let (out, secret, r) = blind(&old);
        let token = unblind(&old, old.sign(&out).expect("sign"), secret, r);
        let rotated = Issuer::new(&[9u8; 32], 1);
        assert_ne!(rotated.active_id(), old.active_id());
        assert_eq!(rotated.keysets().len(), 2);
        rotated.verify(&token).expect("an old token still verifies");
        assert_eq!(
            rotated.check_output(&out),
            Err(ReputationError::InactiveKeyset)
        );
        let keysets = rotated.keysets();
        assert!(
            keysets.iter().all(|k| k.verify_id().is_ok()),
            "ids are canonical"
        );
        assert_eq!(keysets.iter().filter(|k| k.active == Some(true)).count(), 1);
    }
}
