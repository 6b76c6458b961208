//! Records: typed values under (kind, id) names, HMAC-named and Fernet-encrypted over any `Store`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use fernet::Fernet;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{MAX_TTL, Store, StoreError};
use crate::time::since_epoch as unix_now;

type HmacSha256 = Hmac<Sha256>;

/// Fernet keys are url-safe base64; keys written with or without the trailing `=` are both common.
const FERNET_KEY_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What is wrong with `STORAGE_ENCRYPTION_KEY` (or the key-naming secret). Never holds a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageKeyError {
    /// The variable holds no key at all.
    #[error(
        "STORAGE_ENCRYPTION_KEY is empty; set it to a Fernet key (32 random bytes in url-safe base64), or several separated by commas"
    )]
    Empty,
    /// Two commas in a row, or a comma at either end.
    #[error(
        "STORAGE_ENCRYPTION_KEY: key {position} of {count} is empty; separate the keys with single commas"
    )]
    EmptyKey {
        /// 1-based position in the list.
        position: usize,
        /// How many keys the list has.
        count: usize,
    },
    /// A key that is not url-safe base64.
    #[error(
        "STORAGE_ENCRYPTION_KEY: key {position} of {count} is not url-safe base64; a Fernet key is 32 random bytes in url-safe base64 (44 characters)"
    )]
    NotBase64 {
        /// 1-based position in the list.
        position: usize,
        /// How many keys the list has.
        count: usize,
    },
    /// A key that decodes to anything but 32 bytes.
    #[error(
        "STORAGE_ENCRYPTION_KEY: key {position} of {count} decodes to {length} bytes; a Fernet key is exactly 32 bytes"
    )]
    WrongLength {
        /// 1-based position in the list.
        position: usize,
        /// How many keys the list has.
        count: usize,
        /// The decoded length.
        length: usize,
    },
    /// The key records are named with is empty, so names would be guessable.
    #[error("the key storage records are named with is empty (it comes from JWT_SIGNING_KEY)")]
    EmptyNamingSecret,
}

/// A held cross-instance lock: the store key and the random nonce that proves it is ours.
#[derive(Debug)]
#[must_use = "a lock is held until it is unlocked or its TTL passes"]
pub struct StoreLock {
    key: String,
    nonce: String,
}

impl StoreLock {
    /// The store key the lock lives under.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The plaintext of a record as written. `key` binds the ciphertext to its place in the store, and
/// `expires_at` makes expiry hold even if the store forgot the TTL.
#[derive(Serialize)]
struct SealedRecord<'a, T> {
    key: &'a str,
    expires_at: u64,
    value: &'a T,
}

#[derive(Deserialize)]
struct OpenedRecord<T> {
    key: String,
    expires_at: u64,
    value: T,
}

struct Opened<T> {
    value: T,
    /// Decrypted under a key other than the first, so it should be re-encrypted.
    under_old_key: bool,
    plaintext: Vec<u8>,
    expires_at: u64,
}

struct EncryptedInner {
    inner: Arc<dyn Store>,
    /// The first encrypts; all decrypt, in order.
    ciphers: Vec<Fernet>,
    naming: HmacSha256,
}

/// Records: typed values under (kind, id) names. Key = `toolgate:{kind}:{hex(HMAC-SHA256(naming_key, kind ‖ 0x00 ‖ id))}`.
/// Plaintext = JSON `{"key": <the full store key>, "expires_at": <unix seconds>, "value": <T as JSON>}`, then Fernet.
///
/// A record that does not decrypt, does not parse, names another key (it was copied or moved), or is
/// past its `expires_at` reads as absent and is logged with its kind and store key only. Errors of the
/// store itself are passed on unchanged, never turned into "absent".
#[derive(Clone)]
pub struct EncryptedStore(Arc<EncryptedInner>);

impl EncryptedStore {
    /// `encryption_keys`: the STORAGE_ENCRYPTION_KEY value, comma-separated Fernet keys (url-safe base64 of
    /// 32 bytes); the first encrypts, all decrypt. `naming_key`: the HMAC key records are named with,
    /// used as given (the server passes one derived from JWT_SIGNING_KEY with HKDF, so rotating
    /// Fernet keys never renames records).
    pub fn new(
        inner: Arc<dyn Store>,
        encryption_keys: &str,
        naming_key: &[u8],
    ) -> Result<Self, StorageKeyError> {
        let ciphers = parse_encryption_keys(encryption_keys)?;
        if naming_key.is_empty() {
            return Err(StorageKeyError::EmptyNamingSecret);
        }
        let naming = HmacSha256::new_from_slice(naming_key).expect("HMAC takes keys of any length");
        Ok(Self(Arc::new(EncryptedInner {
            inner,
            ciphers,
            naming,
        })))
    }

    /// A fresh random Fernet key (dev mode, and docs telling users how to make one).
    pub fn generate_key() -> String {
        Fernet::generate_key()
    }

    /// The store key a record lives under (tests use this to find and tamper with records).
    pub fn key(&self, kind: &str, id: &str) -> String {
        format!("toolgate:{kind}:{}", self.name_hash(kind, id))
    }

    /// The store key of the lock on (kind, id); a different key from the record's, so a lock never
    /// overwrites the record it guards.
    fn lock_key(&self, kind: &str, id: &str) -> String {
        format!("toolgate:lock:{kind}:{}", self.name_hash(kind, id))
    }

    fn name_hash(&self, kind: &str, id: &str) -> String {
        let mut mac = self.0.naming.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The record, unless absent, expired, or not to be trusted (which is logged, and the record
    /// deleted). A record read under an old encryption key is rewritten under the first one.
    pub async fn get<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = self.key(kind, id);
        let Some(sealed) = self.0.inner.get(&key).await? else {
            return Ok(None);
        };
        match self.open::<T>(&key, &sealed) {
            Ok(opened) => {
                if opened.under_old_key {
                    self.reencrypt(kind, &key, &sealed, &opened).await;
                }
                Ok(Some(opened.value))
            }
            Err(reason) => {
                reject(kind, &key, reason);
                // Only the bad value goes: a good one written since the read stays.
                if let Err(error) = self.0.inner.delete_if_equals(&key, &sealed).await {
                    tracing::warn!(kind, key = %key, %error, "could not delete a rejected record");
                }
                Ok(None)
            }
        }
    }

    /// Writes the record with a TTL; a zero TTL deletes it.
    pub async fn put<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key(kind, id);
        if ttl.is_zero() {
            return self.0.inner.delete(&key).await;
        }
        let ttl = ttl.min(MAX_TTL);
        let sealed = self.seal(kind, &key, value, ttl)?;
        self.0.inner.put(&key, sealed, ttl).await
    }

    /// Writes the record only when none is there (SET NX): true when this call wrote it. Of several
    /// concurrent writers exactly one succeeds, and the others read the winner's record.
    pub async fn put_if_absent<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.key(kind, id);
        let ttl = ttl.min(MAX_TTL);
        let sealed = self.seal(kind, &key, value, ttl)?;
        self.0.inner.put_if_absent(&key, sealed, ttl).await
    }

    /// The bytes stored for `value` under `key`: the record, bound to its key and expiry, encrypted
    /// under the first key.
    fn seal<T: Serialize>(
        &self,
        kind: &str,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<Vec<u8>, StoreError> {
        let expires_at = (unix_now() + ttl).as_secs_f64().ceil() as u64;
        let plaintext = serde_json::to_vec(&SealedRecord {
            key,
            expires_at,
            value,
        })
        .map_err(|error| {
            // Only a type whose Serialize impl fails (a map with non-string keys) gets here: a bug
            // in the caller, reported without the value.
            tracing::error!(kind, key = %key, %error, "a record could not be encoded as JSON");
            StoreError::Unavailable(format!("a {kind} record could not be encoded: {error}"))
        })?;
        Ok(self.0.ciphers[0].encrypt(&plaintext).into_bytes())
    }

    /// Removes the record and returns it, atomically: of two concurrent takes, at most one gets it.
    pub async fn take<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = self.key(kind, id);
        let Some(sealed) = self.0.inner.take(&key).await? else {
            return Ok(None);
        };
        match self.open::<T>(&key, &sealed) {
            Ok(opened) => Ok(Some(opened.value)),
            Err(reason) => {
                reject(kind, &key, reason);
                Ok(None)
            }
        }
    }

    /// Removes the record, if any.
    pub async fn delete(&self, kind: &str, id: &str) -> Result<(), StoreError> {
        self.0.inner.delete(&self.key(kind, id)).await
    }

    /// A cross-instance lock: `Some` when acquired (value is a random nonce, not encrypted); expires after `ttl`.
    pub async fn try_lock(
        &self,
        kind: &str,
        id: &str,
        ttl: Duration,
    ) -> Result<Option<StoreLock>, StoreError> {
        let key = self.lock_key(kind, id);
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let acquired = self
            .0
            .inner
            .put_if_absent(&key, nonce.clone().into_bytes(), ttl)
            .await?;
        Ok(acquired.then_some(StoreLock { key, nonce }))
    }

    /// Releases a lock only if still ours.
    pub async fn unlock(&self, lock: StoreLock) -> Result<(), StoreError> {
        let released = self
            .0
            .inner
            .delete_if_equals(&lock.key, lock.nonce.as_bytes())
            .await?;
        if !released {
            tracing::debug!(key = %lock.key, "a lock had expired before it was released");
        }
        Ok(())
    }

    /// The store underneath.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.0.inner
    }

    fn open<T: DeserializeOwned>(
        &self,
        key: &str,
        sealed: &[u8],
    ) -> Result<Opened<T>, &'static str> {
        let token = std::str::from_utf8(sealed).map_err(|_| "not a Fernet token")?;
        let (index, plaintext) = self
            .0
            .ciphers
            .iter()
            .enumerate()
            .find_map(|(index, cipher)| cipher.decrypt(token).ok().map(|p| (index, p)))
            .ok_or("does not decrypt under any STORAGE_ENCRYPTION_KEY key")?;
        let record: OpenedRecord<T> =
            serde_json::from_slice(&plaintext).map_err(|_| "decrypts to something not a record")?;
        if record.key != key {
            return Err("names another store key: it was copied or moved");
        }
        if unix_now() >= Duration::from_secs(record.expires_at) {
            return Err("past its expiry time");
        }
        Ok(Opened {
            value: record.value,
            under_old_key: index > 0,
            plaintext,
            expires_at: record.expires_at,
        })
    }

    /// Best effort: the caller has the value either way.
    async fn reencrypt<T>(&self, kind: &str, key: &str, sealed: &[u8], opened: &Opened<T>) {
        let Some(remaining) = Duration::from_secs(opened.expires_at).checked_sub(unix_now()) else {
            return;
        };
        let resealed = self.0.ciphers[0].encrypt(&opened.plaintext);
        match self
            .0
            .inner
            .replace_if_equals(key, sealed, resealed.into_bytes(), remaining)
            .await
        {
            Ok(true) => {
                tracing::debug!(kind, key = %key, "re-encrypted a record under the first key")
            }
            // Taken or rewritten meanwhile: nothing left to re-encrypt.
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(kind, key = %key, %error, "could not re-encrypt a record under the first key")
            }
        }
    }
}

fn reject(kind: &str, key: &str, reason: &str) {
    tracing::warn!(kind, key = %key, reason, "a stored record was rejected and counts as absent");
}

impl fmt::Debug for EncryptedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedStore")
            .field(
                "encryption_keys",
                &format!("{} [redacted]", self.0.ciphers.len()),
            )
            .field("naming_key", &"[redacted]")
            .finish()
    }
}

fn parse_encryption_keys(value: &str) -> Result<Vec<Fernet>, StorageKeyError> {
    if value.trim().is_empty() {
        return Err(StorageKeyError::Empty);
    }
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    let count = entries.len();
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let position = index + 1;
            if entry.is_empty() {
                return Err(StorageKeyError::EmptyKey { position, count });
            }
            let bytes = FERNET_KEY_ENCODING
                .decode(entry)
                .map_err(|_| StorageKeyError::NotBase64 { position, count })?;
            if bytes.len() != 32 {
                return Err(StorageKeyError::WrongLength {
                    position,
                    count,
                    length: bytes.len(),
                });
            }
            Fernet::new(&URL_SAFE.encode(&bytes)).ok_or(StorageKeyError::WrongLength {
                position,
                count,
                length: bytes.len(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::storage::MemoryStore;

    const HOUR: Duration = Duration::from_secs(3600);
    const NAMING: &[u8] = b"naming secret for tests";

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Grant {
        subject: String,
        upstream_token: String,
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn store() -> EncryptedStore {
            EncryptedStore::new(memory(), &EncryptedStore::generate_key(), NAMING).unwrap()
        }

        fn sealed(store: &EncryptedStore, kind: &str, id: &str, value: &Grant) -> Vec<u8> {
            store.seal(kind, &store.key(kind, id), value, HOUR).unwrap()
        }

        fn any_grant() -> impl Strategy<Value = Grant> {
            (".{0,40}", ".{0,200}").prop_map(|(subject, upstream_token)| Grant {
                subject,
                upstream_token,
            })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let store = store();
                prop_assert!(store.open::<Grant>(&store.key("grant", "g"), &bytes).is_err());
            }

            #[test]
            fn a_record_opens_where_it_was_sealed(value in any_grant(), id in ".{0,30}") {
                let store = store();
                let bytes = sealed(&store, "grant", &id, &value);
                let opened = store.open::<Grant>(&store.key("grant", &id), &bytes);
                prop_assert_eq!(opened.map(|o| o.value).ok(), Some(value));
            }

            #[test]
            fn a_tampered_record_never_opens(
                value in any_grant(),
                at in any::<prop::sample::Index>(),
                flip in 1u8..=255,
            ) {
                let store = store();
                let mut bytes = sealed(&store, "grant", "g", &value);
                let at = at.index(bytes.len());
                bytes[at] ^= flip;
                prop_assert!(store.open::<Grant>(&store.key("grant", "g"), &bytes).is_err());
            }

            #[test]
            fn a_truncated_record_never_opens(value in any_grant(), keep in any::<prop::sample::Index>()) {
                let store = store();
                let bytes = sealed(&store, "grant", "g", &value);
                let (cut, dropped) = bytes.split_at(keep.index(bytes.len()));
                // The fernet crate reads its base64 with or without the trailing `=`: cutting
                // only that padding leaves the same authenticated bytes, so it is no truncation.
                prop_assume!(dropped.iter().any(|b| *b != b'='));
                prop_assert!(store.open::<Grant>(&store.key("grant", "g"), cut).is_err());
            }

            #[test]
            fn a_moved_record_never_opens(
                value in any_grant(),
                (id, other_kind, other_id) in (".{0,20}", "grant|code|refresh", ".{0,20}"),
            ) {
                prop_assume!(other_kind != "grant" || other_id != id);
                let store = store();
                let bytes = sealed(&store, "grant", &id, &value);
                let elsewhere = store.key(&other_kind, &other_id);
                prop_assert!(store.open::<Grant>(&elsewhere, &bytes).is_err());
            }
        }
    }

    fn grant() -> Grant {
        Grant {
            subject: "auth0|alice".into(),
            upstream_token: "upstream-secret-token-value".into(),
        }
    }

    fn store_with(inner: &Arc<MemoryStore>, keys: &str) -> EncryptedStore {
        EncryptedStore::new(inner.clone(), keys, NAMING).unwrap()
    }

    fn memory() -> Arc<MemoryStore> {
        Arc::new(MemoryStore::new())
    }

    async fn raw(inner: &MemoryStore, key: &str) -> Option<Vec<u8>> {
        inner.get(key).await.unwrap()
    }

    #[tokio::test]
    async fn a_record_round_trips_and_take_consumes_it() {
        let inner = memory();
        let store = store_with(&inner, &EncryptedStore::generate_key());
        assert_eq!(store.get::<Grant>("grant", "g1").await.unwrap(), None);

        store.put("grant", "g1", &grant(), HOUR).await.unwrap();
        assert_eq!(store.get("grant", "g1").await.unwrap(), Some(grant()));
        assert_eq!(store.get("grant", "g1").await.unwrap(), Some(grant()));

        assert_eq!(store.take("grant", "g1").await.unwrap(), Some(grant()));
        assert_eq!(store.take::<Grant>("grant", "g1").await.unwrap(), None);
        assert_eq!(store.get::<Grant>("grant", "g1").await.unwrap(), None);

        store.put("grant", "g2", &grant(), HOUR).await.unwrap();
        store.delete("grant", "g2").await.unwrap();
        assert_eq!(store.get::<Grant>("grant", "g2").await.unwrap(), None);

        store.put("grant", "g3", &grant(), HOUR).await.unwrap();
        store
            .put("grant", "g3", &grant(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(store.get::<Grant>("grant", "g3").await.unwrap(), None);
    }

    #[tokio::test]
    async fn neither_the_id_nor_the_value_appears_in_the_store() {
        let inner = memory();
        let store = store_with(&inner, &EncryptedStore::generate_key());
        let id = "authorization-code-8d1f0c";
        store.put("code", id, &grant(), HOUR).await.unwrap();

        let key = store.key("code", id);
        let hash = key.strip_prefix("toolgate:code:").expect("the key format");
        assert_eq!(hash.len(), 64, "{key}");
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(!key.contains(id));

        let sealed = String::from_utf8(raw(&inner, &key).await.unwrap()).unwrap();
        for secret in [id, "upstream-secret-token-value", "alice"] {
            assert!(!sealed.contains(secret), "{secret} in the stored value");
        }
    }

    #[test]
    fn names_depend_on_kind_id_and_naming_secret_but_not_on_encryption_keys() {
        let inner = memory();
        let first = store_with(&inner, &EncryptedStore::generate_key());
        let rotated = store_with(&inner, &EncryptedStore::generate_key());
        let other_naming =
            EncryptedStore::new(inner.clone(), &EncryptedStore::generate_key(), b"another")
                .unwrap();

        assert_eq!(first.key("code", "x"), rotated.key("code", "x"));
        assert_ne!(first.key("code", "x"), other_naming.key("code", "x"));
        assert_ne!(first.key("code", "x"), first.key("code", "y"));
        assert_ne!(first.key("code", "x"), first.key("state", "x"));
        // The separator keeps (kind, id) pairs that concatenate alike apart.
        assert_ne!(
            first.key("ab", "c").rsplit(':').next(),
            first.key("a", "bc").rsplit(':').next()
        );
    }

    #[tokio::test]
    async fn a_record_copied_under_another_key_is_rejected_and_deleted() {
        let inner = memory();
        let store = store_with(&inner, &EncryptedStore::generate_key());
        store
            .put(
                "refresh",
                "victim",
                &json!({"subject": "auth0|bob", "upstream_token": "bobs"}),
                HOUR,
            )
            .await
            .unwrap();
        store
            .put("refresh", "attacker", &grant(), HOUR)
            .await
            .unwrap();

        // Someone with write access to the store moves a ciphertext they cannot read.
        let stolen = raw(&inner, &store.key("refresh", "attacker"))
            .await
            .unwrap();
        inner
            .put(&store.key("refresh", "victim"), stolen, HOUR)
            .await
            .unwrap();

        assert_eq!(store.get::<Grant>("refresh", "victim").await.unwrap(), None);
        assert_eq!(raw(&inner, &store.key("refresh", "victim")).await, None);
        assert_eq!(
            store.get("refresh", "attacker").await.unwrap(),
            Some(grant())
        );

        let stolen = raw(&inner, &store.key("refresh", "attacker"))
            .await
            .unwrap();
        inner
            .put(&store.key("code", "attacker"), stolen, HOUR)
            .await
            .unwrap();
        assert_eq!(store.take::<Grant>("code", "attacker").await.unwrap(), None);
    }

    #[tokio::test]
    async fn tampered_or_truncated_values_count_as_absent() {
        let inner = memory();
        let store = store_with(&inner, &EncryptedStore::generate_key());
        store.put("grant", "g", &grant(), HOUR).await.unwrap();
        let key = store.key("grant", "g");
        let sealed = raw(&inner, &key).await.unwrap();

        let mut flipped = sealed.clone();
        let middle = flipped.len() / 2;
        flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("one character changed", flipped),
            ("last bytes cut", sealed[..sealed.len() - 5].to_vec()),
            ("cut in half", sealed[..sealed.len() / 2].to_vec()),
            ("a single byte", sealed[..1].to_vec()),
            ("empty", Vec::new()),
            ("not UTF-8", vec![0xff, 0xfe, 0x80, 0x00]),
            ("not base64", b"hello, world".to_vec()),
            (
                "plain JSON",
                br#"{"key":"x","expires_at":1,"value":{}}"#.to_vec(),
            ),
        ];
        for (case, bytes) in cases {
            inner.put(&key, bytes.clone(), HOUR).await.unwrap();
            assert_eq!(
                store.get::<Grant>("grant", "g").await.unwrap(),
                None,
                "{case}"
            );
            assert_eq!(raw(&inner, &key).await, None, "{case}: get deletes it");

            inner.put(&key, bytes, HOUR).await.unwrap();
            assert_eq!(
                store.take::<Grant>("grant", "g").await.unwrap(),
                None,
                "{case}"
            );
        }
    }

    #[tokio::test]
    async fn authentic_plaintexts_that_are_not_valid_records_count_as_absent() {
        let inner = memory();
        let key_text = EncryptedStore::generate_key();
        let store = store_with(&inner, &key_text);
        let cipher = Fernet::new(&key_text).unwrap();
        let key = store.key("grant", "g");
        let now = unix_now().as_secs();
        let cases = [
            ("not JSON", b"not json at all".to_vec()),
            (
                "not a record",
                serde_json::to_vec(&json!([1, 2, 3])).unwrap(),
            ),
            (
                "the value has the wrong shape",
                serde_json::to_vec(&json!({"key": key, "expires_at": now + 3600, "value": 7}))
                    .unwrap(),
            ),
            (
                "past its expiry time",
                serde_json::to_vec(&json!({"key": key, "expires_at": now - 1, "value": grant()}))
                    .unwrap(),
            ),
        ];
        for (case, plaintext) in cases {
            inner
                .put(&key, cipher.encrypt(&plaintext).into_bytes(), HOUR)
                .await
                .unwrap();
            assert_eq!(
                store.get::<Grant>("grant", "g").await.unwrap(),
                None,
                "{case}"
            );
            assert_eq!(raw(&inner, &key).await, None, "{case}: get deletes it");
        }

        let valid = json!({"key": key, "expires_at": now + 3600, "value": grant()});
        inner
            .put(
                &key,
                cipher
                    .encrypt(&serde_json::to_vec(&valid).unwrap())
                    .into_bytes(),
                HOUR,
            )
            .await
            .unwrap();
        assert_eq!(store.get("grant", "g").await.unwrap(), Some(grant()));
    }

    #[tokio::test]
    async fn a_record_read_under_an_old_key_is_rewritten_under_the_first() {
        let inner = memory();
        let old_key = EncryptedStore::generate_key();
        let new_key = EncryptedStore::generate_key();
        let before = store_with(&inner, &old_key);
        before.put("grant", "g", &grant(), HOUR).await.unwrap();
        let key = before.key("grant", "g");
        let old_sealed = String::from_utf8(raw(&inner, &key).await.unwrap()).unwrap();
        let old_plaintext = Fernet::new(&old_key).unwrap().decrypt(&old_sealed).unwrap();

        let rotated = store_with(&inner, &format!("{new_key}, {old_key}"));
        assert_eq!(rotated.get("grant", "g").await.unwrap(), Some(grant()));

        let new_sealed = String::from_utf8(raw(&inner, &key).await.unwrap()).unwrap();
        assert!(Fernet::new(&old_key).unwrap().decrypt(&new_sealed).is_err());
        let new_plaintext = Fernet::new(&new_key)
            .unwrap()
            .decrypt(&new_sealed)
            .expect("rewritten under the new key");
        // Same record, same expiry: rotation neither renames nor extends it.
        assert_eq!(new_plaintext, old_plaintext);

        let only_new = store_with(&inner, &new_key);
        assert_eq!(only_new.get("grant", "g").await.unwrap(), Some(grant()));
        assert_eq!(before.get::<Grant>("grant", "g").await.unwrap(), None);
    }

    #[tokio::test]
    async fn take_reads_records_under_old_keys_without_keeping_them() {
        let inner = memory();
        let old_key = EncryptedStore::generate_key();
        store_with(&inner, &old_key)
            .put("code", "c", &grant(), HOUR)
            .await
            .unwrap();
        let rotated = store_with(
            &inner,
            &format!("{},{old_key}", EncryptedStore::generate_key()),
        );
        assert_eq!(rotated.take("code", "c").await.unwrap(), Some(grant()));
        assert_eq!(raw(&inner, &rotated.key("code", "c")).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_is_exclusive_released_only_by_its_holder_and_expires() {
        let inner = memory();
        let store = store_with(&inner, &EncryptedStore::generate_key());
        let ttl = Duration::from_secs(10);

        let held = store.try_lock("refresh", "family-1", ttl).await.unwrap();
        let held = held.expect("the first lock is granted");
        assert_ne!(held.key(), store.key("refresh", "family-1"));
        assert!(
            store
                .try_lock("refresh", "family-1", ttl)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .try_lock("refresh", "family-2", ttl)
                .await
                .unwrap()
                .is_some()
        );

        store.unlock(held).await.unwrap();
        let second = store.try_lock("refresh", "family-1", ttl).await.unwrap();
        let second = second.expect("free again after unlock");

        tokio::time::advance(ttl).await;
        let third = store.try_lock("refresh", "family-1", ttl).await.unwrap();
        let third = third.expect("free again after the TTL");
        // The expired holder's unlock must not release the new holder's lock.
        store.unlock(second).await.unwrap();
        assert!(
            store
                .try_lock("refresh", "family-1", ttl)
                .await
                .unwrap()
                .is_none()
        );
        store.unlock(third).await.unwrap();
    }

    #[test]
    fn bad_encryption_keys_are_named_without_their_value() {
        let good = EncryptedStore::generate_key();
        let short = URL_SAFE.encode(b"sixteen byte key");
        let cases = [
            ("", "is empty"),
            ("  ", "is empty"),
            (",", "key 1 of 2 is empty"),
            (&format!("{good},") as &str, "key 2 of 2 is empty"),
            ("not+base64/at=all!", "key 1 of 1 is not url-safe base64"),
            (&short, "decodes to 16 bytes"),
            (&format!("{good},{short}"), "key 2 of 2 decodes to 16 bytes"),
        ];
        for (value, problem) in cases {
            let error = EncryptedStore::new(memory(), value, NAMING).unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with("STORAGE_ENCRYPTION_KEY"), "{message}");
            assert!(message.contains(problem), "{message}");
            for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                assert!(!message.contains(part), "{message} echoes the value");
                assert!(!format!("{error:?}").contains(part));
            }
        }
        assert_eq!(
            EncryptedStore::new(memory(), &good, b"").unwrap_err(),
            StorageKeyError::EmptyNamingSecret
        );
    }

    #[test]
    fn keys_are_accepted_with_or_without_padding_and_generated_fresh() {
        let a = EncryptedStore::generate_key();
        let b = EncryptedStore::generate_key();
        assert_ne!(a, b);
        let unpadded = a.trim_end_matches('=');
        assert!(EncryptedStore::new(memory(), unpadded, NAMING).is_ok());
        assert!(EncryptedStore::new(memory(), &format!(" {a} , {b} "), NAMING).is_ok());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = EncryptedStore::generate_key();
        let store = EncryptedStore::new(memory(), &key, NAMING).unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains(&key), "{debug}");
        assert!(!debug.contains(key.trim_end_matches('=')), "{debug}");
        assert!(!debug.contains("naming secret"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }
}
