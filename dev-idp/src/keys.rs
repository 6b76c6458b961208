use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

use crate::error::DevIdpError;
use crate::util::{b64url, random_token};

pub(crate) struct SigningKey {
    pub(crate) kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: RsaPublicKey,
}

impl SigningKey {
    pub(crate) fn generate() -> Result<Self, DevIdpError> {
        let private =
            RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| DevIdpError::Key(e.to_string()))?;
        let public = private.to_public_key();
        let der = private
            .to_pkcs1_der()
            .map_err(|e| DevIdpError::Key(e.to_string()))?;
        let decoding = DecodingKey::from_rsa_raw_components(
            &public.n().to_bytes_be(),
            &public.e().to_bytes_be(),
        );
        Ok(Self {
            kid: random_token(12),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding,
            public,
        })
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("RS256 signing of JSON claims with a freshly generated key cannot fail")
    }

    pub(crate) fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(&self.public.n().to_bytes_be()),
            "e": b64url(&self.public.e().to_bytes_be()),
        })
    }

    pub(crate) fn public_key_pem(&self) -> String {
        self.public
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding an RSA public key as SPKI PEM cannot fail")
    }

    pub(crate) fn public_key_pkcs1_der(&self) -> Vec<u8> {
        self.public
            .to_pkcs1_der()
            .expect("encoding an RSA public key as PKCS#1 DER cannot fail")
            .as_bytes()
            .to_vec()
    }
}

/// Every key made this run, newest last; old keys stay so tokens they signed still verify.
#[derive(Default)]
pub(crate) struct KeyRing {
    keys: Vec<Arc<SigningKey>>,
}

impl KeyRing {
    pub(crate) fn push(&mut self, key: SigningKey) {
        self.keys.push(Arc::new(key));
    }

    pub(crate) fn current(&self) -> Arc<SigningKey> {
        self.keys
            .last()
            .cloned()
            .expect("the key ring always holds a key after start")
    }

    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
    }

    pub(crate) fn verify(&self, token: &str, validation: &Validation) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("token header has no kid")?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or("token signed by an unknown key")?;
        jsonwebtoken::decode::<Value>(token, &key.decoding, validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}
