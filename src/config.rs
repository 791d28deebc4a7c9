//! The repository configuration file, `.cairn/config` (TOML).
//!
//! It records the store format and user settings: the author identity and compression.
//! Unknown keys are ignored, so older versions of cairn can read newer files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings read from `.cairn/config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Core settings.
    #[serde(default)]
    pub core: Core,
    /// Identity recorded as run author.
    #[serde(default)]
    pub user: User,
}

/// `[core]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Core {
    /// Store format version.
    pub format: u32,
    /// zstd level for new content (0 stores raw).
    #[serde(default = "default_level")]
    pub compression_level: i32,
}

fn default_level() -> i32 {
    1
}

impl Default for Core {
    fn default() -> Self {
        Core {
            format: crate::store::STORE_FORMAT,
            compression_level: default_level(),
        }
    }
}

/// `[user]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    /// Name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
}

impl Config {
    /// Reads the config at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
        let cfg: Config =
            toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))?;
        if cfg.core.format > crate::store::STORE_FORMAT {
            return Err(Error::Store(crate::store::StoreError::NewerFormat {
                found: cfg.core.format,
                supported: crate::store::STORE_FORMAT,
            }));
        }
        Ok(cfg)
    }

    /// The text `init` writes.
    pub fn initial_text() -> String {
        format!(
            "# cairn repository configuration\n\
             [core]\n\
             # Store format version; do not edit.\n\
             format = {}\n\
             # zstd level for new content; 0 stores everything raw.\n\
             compression_level = 1\n\n\
             [user]\n\
             # Recorded as the author of runs; git's user.name/user.email are used when unset.\n\
             # name = \"Ada Lovelace\"\n\
             # email = \"ada@example.com\"\n",
            crate::store::STORE_FORMAT
        )
    }
}

/// The config file of a `.cairn` folder.
pub fn config_path(dot: &Path) -> PathBuf {
    dot.join("config")
}
