//! How sources read samples: which fields hold the URL and the texts, which
//! column holds image bytes, and how large a member may be held in memory.

/// Field and column names, and the per-member memory limit, shared by every source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadConfig {
    /// JSON field or Parquet column holding the sample's URL. Default: `url`
    /// (img2dataset; `URL` is also tried for Parquet).
    pub url_field: String,
    /// JSON fields or Parquet columns holding text to check. Default:
    /// `caption` and `txt` (img2dataset), `text` (JSON lines corpora), and
    /// `TEXT` (LAION metadata).
    pub text_fields: Vec<String>,
    /// Parquet column holding image bytes (a binary column, or a struct with
    /// a `bytes` field as Hugging Face `datasets` writes). Default: the first
    /// of `jpg`, `png`, `webp`, `image`, `img` that exists.
    pub image_column: Option<String>,
    /// Largest member or image held in memory, in bytes. Larger ones are
    /// skipped (and reported as a problem of the sample). Default: 64 MiB,
    /// the hasher's own file limit.
    pub max_member_bytes: u64,
}

impl Default for ReadConfig {
    fn default() -> ReadConfig {
        ReadConfig {
            url_field: "url".to_owned(),
            text_fields: vec![
                "caption".to_owned(),
                "txt".to_owned(),
                "text".to_owned(),
                "TEXT".to_owned(),
            ],
            image_column: None,
            max_member_bytes: 64 << 20,
        }
    }
}
