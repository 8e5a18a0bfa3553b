//! The sealed item format and the envelope encryption behind it.
//!
//! ```text
//! "CSVAULT1"                      8 bytes: magic and format version
//! header length                   u32, little endian
//! header                          JSON (Header below): metadata, key id, wrapped data key, nonces
//! content ciphertext || GCM tag   size + 16 bytes
//! ```
//!
//! Each item gets a fresh random 256-bit data key. The content is encrypted
//! with AES-256-GCM under the data key with a fresh random 96-bit nonce; the
//! data key is encrypted ("wrapped") with AES-256-GCM under the master key,
//! again with a fresh random nonce. Associated data binds the content to the
//! item's immutable metadata (id, creation time, size, SHA-256, MD5), so
//! editing the cleartext header is detected on decryption, and binds the
//! wrapped key to the item id and master key id, so a wrapped key cannot be
//! moved to another item. Rotation rewrites only the wrap: the content
//! ciphertext is copied unchanged and never decrypted.
//!
//! The header is readable without any key (hashes, size, dates and key id are
//! not content); it is only *trusted* once an item has been opened or
//! verified, which authenticates it.

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Payload},
};
use childsafe_core::{Md5, Sha256};
use md5::Md5 as Md5Hasher;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256 as Sha256Hasher};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use zeroize::Zeroizing;

use crate::{
    error::{Error, Result},
    item::{ItemId, ItemMeta, Plaintext},
    key::{KEY_LEN, KeyId, Keyring, MasterKey},
};

const MAGIC: &[u8; 8] = b"CSVAULT1";
const FORMAT: u32 = 1;
/// Headers are a few hundred bytes; anything much larger is not ours.
const MAX_HEADER: usize = 16 * 1024;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// AES-GCM's plaintext limit under one nonce (2^36 - 32 bytes).
const MAX_CONTENT: u64 = (1 << 36) - 32;

/// The cleartext header of a sealed item.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: u32,
    id: ItemId,
    /// RFC 3339, exactly as bound into the associated data.
    created_at: String,
    size: u64,
    sha256: Sha256,
    md5: Md5,
    key_id: KeyId,
    wrap_nonce: String,
    wrapped_key: String,
    content_nonce: String,
}

/// A sealed item split into its header and its content ciphertext.
struct Parsed<'a> {
    header: Header,
    body: &'a [u8],
}

/// Encrypts `content` as a new item wrapped with the keyring's current key.
pub(crate) fn seal(
    keys: &Keyring,
    id: ItemId,
    content: &[u8],
    created_at: OffsetDateTime,
) -> Result<(Vec<u8>, ItemMeta)> {
    let size = content.len() as u64;
    if size > MAX_CONTENT {
        return Err(Error::TooLarge { size });
    }
    let created_at_text = created_at.format(&Rfc3339).map_err(|e| Error::Malformed {
        id,
        reason: format!("creation time cannot be written as RFC 3339: {e}"),
    })?;
    let sha256 = Sha256(Sha256Hasher::digest(content).into());
    let md5 = Md5(Md5Hasher::digest(content).into());

    let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
    crate::random::fill(data_key.as_mut())?;
    let mut content_nonce = [0u8; NONCE_LEN];
    crate::random::fill(&mut content_nonce)?;

    let master = keys.current();
    let (wrap_nonce, wrapped_key) = wrap(master, id, &data_key)?;
    let header = Header {
        format: FORMAT,
        id,
        created_at: created_at_text,
        size,
        sha256,
        md5,
        key_id: master.id(),
        wrap_nonce: hex::encode(wrap_nonce),
        wrapped_key: hex::encode(wrapped_key),
        content_nonce: hex::encode(content_nonce),
    };
    let aad = content_aad(&header);
    let body = Aes256Gcm::new(&(*data_key).into())
        .encrypt(
            &content_nonce.into(),
            Payload {
                msg: content,
                aad: &aad,
            },
        )
        .map_err(|_| Error::TooLarge { size })?;
    let meta = ItemMeta {
        id,
        sha256,
        md5,
        size,
        created_at,
        key_id: master.id(),
    };
    Ok((assemble(&header, &body)?, meta))
}

/// Decrypts and checks an item: both GCM tags, then size, SHA-256 and MD5
/// against the (now authenticated) header.
pub(crate) fn open(keys: &Keyring, id: ItemId, sealed: &[u8]) -> Result<(Plaintext, ItemMeta)> {
    let parsed = parse(id, sealed)?;
    let header = &parsed.header;
    let master = keys.get(header.key_id).ok_or(Error::UnknownKey {
        id,
        key_id: header.key_id,
    })?;
    let data_key = unwrap(master, header)?;
    let aad = content_aad(header);
    let nonce = nonce_from_hex(id, &header.content_nonce)?;
    let content = Aes256Gcm::new(&(*data_key).into())
        .decrypt(
            &nonce.into(),
            Payload {
                msg: parsed.body,
                aad: &aad,
            },
        )
        .map_err(|_| Error::Tampered {
            id,
            part: "content",
        })?;
    let content = Zeroizing::new(content);
    check_hashes(header, &content)?;
    let meta = meta_of(header)?;
    Ok((Plaintext::new(content), meta))
}

/// Re-wraps an item's data key with the keyring's current key. Returns
/// `None` when the item already uses the current key. The content
/// ciphertext is copied as it is: rotation never decrypts content.
pub(crate) fn rewrap(keys: &Keyring, id: ItemId, sealed: &[u8]) -> Result<Option<Vec<u8>>> {
    let parsed = parse(id, sealed)?;
    let current = keys.current();
    if parsed.header.key_id == current.id() {
        return Ok(None);
    }
    let old = keys.get(parsed.header.key_id).ok_or(Error::UnknownKey {
        id,
        key_id: parsed.header.key_id,
    })?;
    let data_key = unwrap(old, &parsed.header)?;
    let (wrap_nonce, wrapped_key) = wrap(current, id, &data_key)?;
    let header = Header {
        key_id: current.id(),
        wrap_nonce: hex::encode(wrap_nonce),
        wrapped_key: hex::encode(wrapped_key),
        ..parsed.header
    };
    Ok(Some(assemble(&header, parsed.body)?))
}

/// Reads the metadata from the header without decrypting (unauthenticated).
pub(crate) fn peek(id: ItemId, sealed: &[u8]) -> Result<ItemMeta> {
    meta_of(&parse(id, sealed)?.header)
}

/// The length of the header prefix (magic, length and header), or `None`
/// when `sealed` is too short to say.
pub(crate) fn header_span(sealed: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(sealed.get(8..12)?.try_into().ok()?) as usize;
    Some(12 + len.min(MAX_HEADER))
}

fn wrap(
    master: &MasterKey,
    id: ItemId,
    data_key: &[u8; KEY_LEN],
) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill(&mut nonce)?;
    let aad = wrap_aad(id, master.id());
    let wrapped = Aes256Gcm::new(&(*master.bytes()).into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: data_key,
                aad: &aad,
            },
        )
        .map_err(|_| Error::TooLarge {
            size: KEY_LEN as u64,
        })?;
    Ok((nonce, wrapped))
}

fn unwrap(master: &MasterKey, header: &Header) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let id = header.id;
    let nonce = nonce_from_hex(id, &header.wrap_nonce)?;
    let wrapped = hex::decode(&header.wrapped_key).map_err(|_| Error::Malformed {
        id,
        reason: "wrapped_key: expected hex".to_owned(),
    })?;
    let aad = wrap_aad(id, master.id());
    let key = Aes256Gcm::new(&(*master.bytes()).into())
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &wrapped,
                aad: &aad,
            },
        )
        .map_err(|_| Error::Tampered {
            id,
            part: "data key",
        })?;
    let key = Zeroizing::new(key);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if key.len() != KEY_LEN {
        return Err(Error::Malformed {
            id,
            reason: format!("data key: expected {KEY_LEN} bytes, got {}", key.len()),
        });
    }
    out.copy_from_slice(&key);
    Ok(out)
}

fn check_hashes(header: &Header, content: &[u8]) -> Result<()> {
    let id = header.id;
    if content.len() as u64 != header.size {
        return Err(Error::HashMismatch {
            id,
            which: "size",
            recorded: header.size.to_string(),
            computed: content.len().to_string(),
        });
    }
    let sha256 = Sha256(Sha256Hasher::digest(content).into());
    if sha256 != header.sha256 {
        return Err(Error::HashMismatch {
            id,
            which: "sha256",
            recorded: header.sha256.to_string(),
            computed: sha256.to_string(),
        });
    }
    let md5 = Md5(Md5Hasher::digest(content).into());
    if md5 != header.md5 {
        return Err(Error::HashMismatch {
            id,
            which: "md5",
            recorded: header.md5.to_string(),
            computed: md5.to_string(),
        });
    }
    Ok(())
}

fn meta_of(header: &Header) -> Result<ItemMeta> {
    let created_at =
        OffsetDateTime::parse(&header.created_at, &Rfc3339).map_err(|_| Error::Malformed {
            id: header.id,
            reason: "created_at: expected an RFC 3339 time".to_owned(),
        })?;
    Ok(ItemMeta {
        id: header.id,
        sha256: header.sha256,
        md5: header.md5,
        size: header.size,
        created_at,
        key_id: header.key_id,
    })
}

fn parse(id: ItemId, sealed: &[u8]) -> Result<Parsed<'_>> {
    let malformed = |reason: String| Error::Malformed { id, reason };
    if sealed.len() < 12 || &sealed[..8] != MAGIC {
        return Err(malformed("not a vault item (bad magic)".to_owned()));
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&sealed[8..12]);
    let header_len = u32::from_le_bytes(len) as usize;
    if header_len > MAX_HEADER || 12 + header_len > sealed.len() {
        return Err(malformed(format!(
            "header length {header_len} exceeds the file ({} bytes)",
            sealed.len()
        )));
    }
    let header: Header = serde_json::from_slice(&sealed[12..12 + header_len])
        .map_err(|e| malformed(format!("header: {e}")))?;
    if header.format != FORMAT {
        return Err(malformed(format!(
            "format {}: this build reads format {FORMAT}",
            header.format
        )));
    }
    if header.id != id {
        return Err(malformed(format!("header names item {}", header.id)));
    }
    let body = &sealed[12 + header_len..];
    if body.len() as u64 != header.size.saturating_add(TAG_LEN as u64) {
        return Err(malformed(format!(
            "content is {} bytes, header says {} plus a {TAG_LEN}-byte tag",
            body.len(),
            header.size
        )));
    }
    Ok(Parsed { header, body })
}

fn assemble(header: &Header, body: &[u8]) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(header).map_err(|e| Error::Malformed {
        id: header.id,
        reason: format!("header: {e}"),
    })?;
    let header_len = u32::try_from(json.len()).map_err(|_| Error::Malformed {
        id: header.id,
        reason: "header too long".to_owned(),
    })?;
    let mut out = Vec::with_capacity(12 + json.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(body);
    Ok(out)
}

fn nonce_from_hex(id: ItemId, text: &str) -> Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    hex::decode_to_slice(text, &mut nonce).map_err(|_| Error::Malformed {
        id,
        reason: format!("nonce: expected {} hex digits", 2 * NONCE_LEN),
    })?;
    Ok(nonce)
}

/// Length-prefixed fields, so that no two different headers give the same bytes.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u64).to_le_bytes());
    out.extend_from_slice(field);
}

fn content_aad(header: &Header) -> Vec<u8> {
    let mut aad = b"childsafe-vault content v1\0".to_vec();
    push_field(&mut aad, header.id.to_string().as_bytes());
    push_field(&mut aad, header.created_at.as_bytes());
    push_field(&mut aad, &header.size.to_le_bytes());
    push_field(&mut aad, header.sha256.as_bytes());
    push_field(&mut aad, header.md5.as_bytes());
    aad
}

fn wrap_aad(id: ItemId, key_id: KeyId) -> Vec<u8> {
    let mut aad = b"childsafe-vault wrap v1\0".to_vec();
    push_field(&mut aad, id.to_string().as_bytes());
    push_field(&mut aad, key_id.to_string().as_bytes());
    aad
}
