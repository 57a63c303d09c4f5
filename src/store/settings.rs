//! A repository's settings, typed. Every setting has one key, one type and one default here;
//! the CLI (`forge repo config`), the push path and later REST read and write them through
//! these types instead of string keys. `public` lives in the registry record (listing reads
//! it without opening the repository); the others in the repository's own database.

use std::fmt;

/// What a repository allows, as the push path and the server read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoSettings {
    /// Non-fast-forward updates of the default branch (other refs may always be forced).
    pub allow_force: bool,
    /// Pushed objects pass git's fsck checks (`git::fsck`); off for a repository that
    /// mirrors old history git's fsck would refuse.
    pub fsck_objects: bool,
}

impl Default for RepoSettings {
    fn default() -> RepoSettings {
        RepoSettings {
            allow_force: Setting::AllowForce.default_value(),
            fsck_objects: Setting::FsckObjects.default_value(),
        }
    }
}

impl RepoSettings {
    /// Reads the settings kept in a repository's database from its `(key, value)` rows;
    /// a value other than `true` or `false` (never written by the forge) counts as unset.
    pub(super) fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut settings = RepoSettings::default();
        for (key, value) in rows {
            let Ok(setting) = Setting::parse(key) else {
                continue;
            };
            let Ok(value) = setting.parse_value(value) else {
                continue;
            };
            match setting {
                Setting::AllowForce => settings.allow_force = value,
                Setting::FsckObjects => settings.fsck_objects = value,
                Setting::Public => {}
            }
        }
        settings
    }
}

/// One setting `forge repo config` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    AllowForce,
    FsckObjects,
    Public,
}

/// A key or value `forge repo config` does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("unknown setting '{0}' (known: {known})", known = Setting::known())]
    UnknownKey(String),
    #[error("{key} is true or false, not '{value}'")]
    BadValue { key: &'static str, value: String },
}

impl SettingError {
    /// The stable code the CLI's `--json` output and REST share.
    pub fn code(&self) -> &'static str {
        "bad_config"
    }
}

impl Setting {
    pub const ALL: [Setting; 3] = [Setting::AllowForce, Setting::FsckObjects, Setting::Public];

    pub fn key(self) -> &'static str {
        match self {
            Setting::AllowForce => "allow-force",
            Setting::FsckObjects => "fsck-objects",
            Setting::Public => "public",
        }
    }

    pub fn parse(key: &str) -> Result<Setting, SettingError> {
        Setting::ALL
            .into_iter()
            .find(|s| s.key() == key)
            .ok_or_else(|| SettingError::UnknownKey(key.to_owned()))
    }

    /// Every setting is a flag today; its value as text is `true` or `false`.
    pub fn parse_value(self, value: &str) -> Result<bool, SettingError> {
        match value {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(SettingError::BadValue {
                key: self.key(),
                value: other.to_owned(),
            }),
        }
    }

    pub fn default_value(self) -> bool {
        match self {
            Setting::AllowForce | Setting::Public => false,
            Setting::FsckObjects => true,
        }
    }

    fn known() -> String {
        Setting::ALL.map(Setting::key).join(", ")
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_and_errors_read_as_the_cli_shows_them() {
        for setting in Setting::ALL {
            assert_eq!(Setting::parse(setting.key()), Ok(setting));
        }
        assert_eq!(
            Setting::parse("colour").unwrap_err().to_string(),
            "unknown setting 'colour' (known: allow-force, fsck-objects, public)"
        );
        assert_eq!(
            Setting::AllowForce
                .parse_value("yes")
                .unwrap_err()
                .to_string(),
            "allow-force is true or false, not 'yes'"
        );
    }

    #[test]
    fn rows_read_as_settings_with_defaults_for_the_rest() {
        assert_eq!(RepoSettings::from_rows([]), RepoSettings::default());
        assert!(!RepoSettings::default().allow_force && RepoSettings::default().fsck_objects);
        let read = RepoSettings::from_rows([
            ("allow-force", "true"),
            ("fsck-objects", "false"),
            ("public", "true"),
            ("unknown", "x"),
        ]);
        assert_eq!(
            read,
            RepoSettings {
                allow_force: true,
                fsck_objects: false
            }
        );
        // Text the forge never writes counts as unset.
        let odd = RepoSettings::from_rows([("allow-force", "yes"), ("fsck-objects", "0")]);
        assert_eq!(odd, RepoSettings::default());
    }
}
