//! Where AWS Config delivery files live, and what their names say.
//!
//! [`DeliveryStore`] is the only thing that differs between reading deliveries from a
//! local directory and from the S3 bucket AWS delivers to: list the objects, open one.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use flate2::read::MultiGzDecoder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryKind {
    /// Past changes of one resource type: replayed, never used to infer deletions.
    History,
    /// Everything recorded in one account and region at one time.
    Snapshot,
    /// A single change notification saved to a file.
    Notification,
}

/// One delivery file, with what its name tells about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryObject {
    /// A path, or an S3 URL, shown in errors.
    pub location: String,
    pub kind: DeliveryKind,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The time in the name (snapshot time, or end of the history window), else the
    /// object's modification time.
    pub time: Option<DateTime<Utc>>,
}

/// A place delivery files can be listed and read from.
pub trait DeliveryStore {
    fn describe(&self) -> String;
    /// Every delivery file, in no particular order. An `Err` is a listing failure.
    fn list(&self) -> Result<Vec<DeliveryObject>, String>;
    /// The decompressed bytes of one file.
    fn open(&self, object: &DeliveryObject) -> std::io::Result<Box<dyn Read + Send>>;
}

/// What a delivery file's name says.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryName {
    pub kind: DeliveryKind,
    pub account: Option<String>,
    pub region: Option<String>,
    pub time: Option<DateTime<Utc>>,
}

/// Parses `<acct>_Config_<region>_ConfigSnapshot_<yyyymmddThhmmssZ>_<uuid>.json[.gz]`
/// and `<acct>_Config_<region>_ConfigHistory_<Type>_<start>_<end>_<seq>.json[.gz]`.
/// Returns `None` for anything that is not a delivery file.
pub fn parse_delivery_name(file_name: &str) -> Option<DeliveryName> {
    let stem = file_name
        .strip_suffix(".json.gz")
        .or_else(|| file_name.strip_suffix(".json"))?;
    let parse_t = |s: &str| {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|n| n.and_utc())
    };
    let parts: Vec<&str> = stem.split('_').collect();
    let kind_at = parts
        .iter()
        .position(|p| *p == "ConfigSnapshot" || *p == "ConfigHistory")?;
    let (account, region) = if kind_at >= 3 && parts[kind_at - 2] == "Config" {
        (
            Some(parts[kind_at - 3].to_owned()),
            Some(parts[kind_at - 1].to_owned()),
        )
    } else {
        (None, None)
    };
    if parts[kind_at] == "ConfigSnapshot" {
        let time = parts.get(kind_at + 1).and_then(|s| parse_t(s));
        Some(DeliveryName {
            kind: DeliveryKind::Snapshot,
            account,
            region,
            time,
        })
    } else {
        // The type keeps its "::", and the window's end is the last parseable time.
        let time = parts[kind_at + 1..].iter().rev().find_map(|s| parse_t(s));
        Some(DeliveryName {
            kind: DeliveryKind::History,
            account,
            region,
            time,
        })
    }
}

/// Delivery files under a local directory (or one file), as AWS lays them out.
pub struct LocalDirectory {
    root: PathBuf,
}

impl LocalDirectory {
    pub fn new(root: impl Into<PathBuf>) -> LocalDirectory {
        LocalDirectory { root: root.into() }
    }

    fn classify(path: &Path) -> Option<DeliveryObject> {
        let name = path.file_name()?.to_str()?;
        let modified = || {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .map(DateTime::<Utc>::from)
        };
        let parsed = match parse_delivery_name(name) {
            Some(parsed) => parsed,
            // Saved change notifications and hand-made files: accepted if JSON.
            None if name.ends_with(".json") || name.ends_with(".json.gz") => DeliveryName {
                kind: DeliveryKind::Notification,
                account: None,
                region: None,
                time: None,
            },
            None => return None,
        };
        Some(DeliveryObject {
            location: path.display().to_string(),
            kind: parsed.kind,
            account: parsed.account,
            region: parsed.region,
            time: parsed.time.or_else(modified),
        })
    }
}

impl DeliveryStore for LocalDirectory {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self) -> Result<Vec<DeliveryObject>, String> {
        let meta = std::fs::metadata(&self.root).map_err(|e| {
            format!(
                "cannot read {}: {e}; give a directory of AWS Config delivery files (or one file)",
                self.root.display()
            )
        })?;
        if meta.is_file() {
            return LocalDirectory::classify(&self.root)
                .map(|o| vec![o])
                .ok_or_else(|| format!("{} is not a .json or .json.gz file", self.root.display()));
        }
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&self.root).follow_links(true) {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", self.root.display()))?;
            if entry.file_type().is_file() {
                out.extend(LocalDirectory::classify(entry.path()));
            }
        }
        Ok(out)
    }

    fn open(&self, object: &DeliveryObject) -> std::io::Result<Box<dyn Read + Send>> {
        let file = File::open(&object.location)?;
        decompressing(Box::new(file))
    }
}

/// Wraps `input` in a gzip decoder when it starts with the gzip magic bytes, whatever
/// the file is called.
pub fn decompressing(input: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(buffered),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_and_history_names() {
        let n = parse_delivery_name(
            "123456789012_Config_eu-west-1_ConfigSnapshot_20261120T101500Z_2c1b7d2e-0f6d-4b0e-9a59-1d7c7f3c2a11.json.gz",
        )
        .unwrap();
        assert_eq!(n.kind, DeliveryKind::Snapshot);
        assert_eq!(n.account.as_deref(), Some("123456789012"));
        assert_eq!(n.region.as_deref(), Some("eu-west-1"));
        assert_eq!(n.time.unwrap().to_rfc3339(), "2026-11-20T10:15:00+00:00");
        let n = parse_delivery_name(
            "123456789012_Config_us-east-1_ConfigHistory_AWS::EC2::SecurityGroup_20261120T000000Z_20261120T060000Z_1.json.gz",
        )
        .unwrap();
        assert_eq!(n.kind, DeliveryKind::History);
        assert_eq!(n.region.as_deref(), Some("us-east-1"));
        assert_eq!(n.time.unwrap().to_rfc3339(), "2026-11-20T06:00:00+00:00");
        assert!(parse_delivery_name("notes.txt").is_none());
        assert!(parse_delivery_name("random.json").is_none());
    }
}
