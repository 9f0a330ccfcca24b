//! AWS Config as a source: snapshot, history and notification files as AWS delivers
//! them, read from any [`DeliveryStore`] (a local directory here; the delivery S3
//! bucket is the same watcher over another store).
//!
//! Snapshots are streamed item by item, so memory does not grow with their size. A
//! snapshot read to its end without error vouches for everything AWS Config records in
//! its account and region; anything less vouches for nothing.

mod delivery;
mod item;

pub use delivery::{
    decompressing, parse_delivery_name, DeliveryKind, DeliveryName, DeliveryObject, DeliveryStore,
    LocalDirectory,
};
pub use item::{parse_time, read_item, ItemError, ItemState};

use std::fmt;
use std::io::Read;

use chrono::{DateTime, Utc};
use guardrail_model::{Cause, CollectError, Collector, Coverage, Listing, SourceError};
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use crate::{Progress, Watcher};

/// Reads every delivery file in a store, oldest first.
pub struct ConfigDeliveries<S: DeliveryStore> {
    store: S,
    max_item_bytes: usize,
}

/// The default cap on one configuration item's JSON text (AWS Config's own items stay
/// far below it; a runaway one must not cost the process its memory).
pub const MAX_ITEM_BYTES: usize = 16 * 1024 * 1024;

impl<S: DeliveryStore> ConfigDeliveries<S> {
    pub fn new(store: S) -> Self {
        ConfigDeliveries {
            store,
            max_item_bytes: MAX_ITEM_BYTES,
        }
    }

    /// Items larger than this are reported and skipped (the rest of the file is read).
    pub fn with_max_item_bytes(mut self, bytes: usize) -> Self {
        self.max_item_bytes = bytes.max(1);
        self
    }
}

impl<S: DeliveryStore> Watcher for ConfigDeliveries<S> {
    fn describe(&self) -> String {
        format!("AWS Config deliveries in {}", self.store.describe())
    }

    fn sweep(
        &mut self,
        c: &mut dyn Collector,
        progress: &dyn Progress,
    ) -> Result<(), CollectError> {
        let origin = self.store.describe();
        let listing_failed = |c: &mut dyn Collector, message: String| -> Result<(), CollectError> {
            c.begin_listing(Listing {
                origin: origin.clone(),
                cause: Cause::Sweep,
                observed_at: Utc::now(),
                actor: None,
            })?;
            c.error(SourceError {
                origin: origin.clone(),
                item: None,
                scope: None,
                message,
            });
            c.end_listing(Coverage::Nothing)
        };
        let mut objects = match self.store.list() {
            Ok(objects) => objects,
            Err(message) => return listing_failed(c, message),
        };
        if objects.is_empty() {
            return listing_failed(
                c,
                "no AWS Config delivery files found (expected names like \
                 <account>_Config_<region>_ConfigSnapshot_<time>_<id>.json.gz)"
                    .into(),
            );
        }
        // Oldest first, so history replays in order and the newest snapshot wins.
        objects.sort_by(|a, b| (a.time, a.kind, &a.location).cmp(&(b.time, b.kind, &b.location)));
        progress.begin(objects.len() as u64);
        for object in &objects {
            progress.file(&object.location);
            read_object(&self.store, object, c, progress, self.max_item_bytes)?;
        }
        progress.finish();
        Ok(())
    }
}

fn read_object(
    store: &dyn DeliveryStore,
    object: &DeliveryObject,
    c: &mut dyn Collector,
    progress: &dyn Progress,
    max_item_bytes: usize,
) -> Result<(), CollectError> {
    let observed_at = object.time.unwrap_or_else(Utc::now);
    let cause = match object.kind {
        DeliveryKind::Snapshot => Cause::Sweep,
        DeliveryKind::History => Cause::Backfill,
        DeliveryKind::Notification => Cause::Event,
    };
    c.begin_listing(Listing {
        origin: object.location.clone(),
        cause,
        observed_at,
        actor: None,
    })?;
    let mut reader = ItemReader {
        origin: &object.location,
        path_region: item::delivery_region(&object.location),
        max_item_bytes,
        observed_at,
        use_capture_time: object.kind != DeliveryKind::Snapshot,
        count: 0,
        progress,
    };
    let outcome = match store.open(object) {
        Err(e) => Err(format!("cannot open: {e}")),
        Ok(input) if object.kind == DeliveryKind::History => reader.history(input, c),
        Ok(input) => reader.stream(input, c),
    };
    let read_whole = match outcome {
        Ok(found_items) => found_items,
        Err(message) => {
            if let Some(collect) = reader_failure(&message) {
                return Err(collect);
            }
            c.error(SourceError {
                origin: object.location.clone(),
                item: (reader.count > 0).then(|| format!("after item #{}", reader.count)),
                scope: None,
                message,
            });
            false
        }
    };
    let coverage = match (object.kind, &object.account, &object.region, read_whole) {
        (DeliveryKind::Snapshot, Some(account), Some(region), true) => Coverage::Recorded {
            account: account.clone(),
            region: region.clone(),
        },
        _ => Coverage::Nothing,
    };
    c.end_listing(coverage)
}

/// Marker in an error message for "the collector failed", which must stop the sweep
/// rather than be recorded as a problem with the file.
const COLLECTOR_FAILED: &str = "\u{0}collector failed: ";

fn reader_failure(message: &str) -> Option<CollectError> {
    message
        .find(COLLECTOR_FAILED)
        .map(|i| message[i + COLLECTOR_FAILED.len()..].to_owned().into())
}

struct ItemReader<'a> {
    origin: &'a str,
    /// The region the delivery's path names, for items without `awsRegion`.
    path_region: Option<String>,
    max_item_bytes: usize,
    observed_at: DateTime<Utc>,
    use_capture_time: bool,
    count: usize,
    progress: &'a dyn Progress,
}

impl ItemReader<'_> {
    /// One item of a snapshot as its own text: too large, or nested too deeply to
    /// parse, costs that item (reported), never the rest of the file.
    fn deliver_text(
        &mut self,
        raw: &serde_json::value::RawValue,
        c: &mut dyn Collector,
    ) -> Result<(), CollectError> {
        let text = raw.get();
        let problem = if text.len() > self.max_item_bytes {
            Some(format!(
                "configuration item of {} bytes is over the limit of {} bytes; skipped (raise max_item_bytes if items this large are expected)",
                text.len(),
                self.max_item_bytes
            ))
        } else {
            match serde_json::from_str::<Value>(text) {
                Ok(v) => return self.deliver(v, c),
                Err(e) => Some(format!("configuration item cannot be read: {e}")),
            }
        };
        self.count += 1;
        let message = problem.unwrap_or_default();
        c.error(SourceError {
            origin: self.origin.to_owned(),
            item: Some(format!("item #{}", self.count)),
            // Which scope is unknown without reading it: the whole listing is unsure.
            scope: None,
            message,
        });
        Ok(())
    }

    fn deliver(&mut self, raw: Value, c: &mut dyn Collector) -> Result<(), CollectError> {
        self.count += 1;
        self.progress.item();
        match item::read_item_from(
            raw,
            self.count,
            self.observed_at,
            self.use_capture_time,
            self.path_region.as_deref(),
        ) {
            Ok(ItemState::Present(obs)) => c.observe(obs),
            Ok(ItemState::Deleted { key, at }) => c.deleted(key, at),
            Ok(ItemState::NotRecorded(key)) => c.present(key),
            Err(e) => {
                c.error(SourceError {
                    origin: self.origin.to_owned(),
                    item: Some(e.item),
                    scope: e.scope,
                    message: e.message,
                });
                Ok(())
            }
        }
    }

    /// Streams the items of a snapshot or notification file. `Ok(true)` when the file
    /// was read to its end and held a list of configuration items.
    fn stream(
        &mut self,
        input: Box<dyn Read + Send>,
        c: &mut dyn Collector,
    ) -> Result<bool, String> {
        let input = decompressing(input).map_err(|e| format!("cannot read: {e}"))?;
        // serde_json reads byte by byte; std serves that from the buffer only when it
        // can see a concrete BufReader, so give it one rather than a `dyn Read`.
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
            64 * 1024,
            input,
        ));
        let mut shape = FileShape::default();
        let visitor = FileVisitor {
            reader: self,
            collector: c,
            shape: &mut shape,
        };
        de.deserialize_map(visitor)
            .map_err(|e| describe_json_error(&e))?;
        de.end().map_err(|e| describe_json_error(&e))?;
        if shape.oversized {
            return Err("oversized change notification: it carries only a summary; read the full item from the S3 key it names".into());
        }
        if !shape.items && !shape.single {
            return Err("not an AWS Config delivery file: no \"configurationItems\" list and no \"configurationItem\"".into());
        }
        Ok(shape.items)
    }

    /// History files are small (one type, a few hours) and not guaranteed to be in
    /// order: read whole, replay by capture time.
    fn history(
        &mut self,
        input: Box<dyn Read + Send>,
        c: &mut dyn Collector,
    ) -> Result<bool, String> {
        let input = decompressing(input).map_err(|e| format!("cannot read: {e}"))?;
        let doc: Value = serde_json::from_reader(std::io::BufReader::new(input))
            .map_err(|e| describe_json_error(&e))?;
        let Some(Value::Array(mut items)) = doc.get("configurationItems").cloned() else {
            return Err("not an AWS Config history file: no \"configurationItems\" list".into());
        };
        items.sort_by_key(|i| i.get("configurationItemCaptureTime").and_then(parse_time));
        for raw in items {
            self.deliver(raw, c)
                .map_err(|e| format!("{COLLECTOR_FAILED}{e}"))?;
        }
        Ok(true)
    }
}

fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains(COLLECTOR_FAILED) {
        return text;
    }
    match e.classify() {
        serde_json::error::Category::Io => {
            format!("cannot read the file ({text}); a gzip file may be truncated or corrupt")
        }
        serde_json::error::Category::Eof => format!(
            "file ends early ({text}): it is truncated; items before this point were kept, \
             and nothing in it is used to infer deletions"
        ),
        _ => format!(
            "malformed JSON ({text}); items before this point were kept, and nothing in it \
             is used to infer deletions"
        ),
    }
}

#[derive(Default)]
struct FileShape {
    items: bool,
    single: bool,
    oversized: bool,
}

struct FileVisitor<'r, 'a, 'c> {
    reader: &'r mut ItemReader<'a>,
    collector: &'c mut dyn Collector,
    shape: &'r mut FileShape,
}

impl<'de> Visitor<'de> for FileVisitor<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AWS Config snapshot, history or notification object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "configurationItems" => {
                    self.shape.items = true;
                    map.next_value_seed(ItemsSeed {
                        reader: &mut *self.reader,
                        collector: &mut *self.collector,
                    })?;
                }
                "configurationItem" => {
                    self.shape.single = true;
                    let raw: Value = map.next_value()?;
                    self.reader
                        .deliver(raw, self.collector)
                        .map_err(|e| A::Error::custom(format!("{COLLECTOR_FAILED}{e}")))?;
                }
                "configurationItemSummary" => {
                    self.shape.oversized = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ItemsSeed<'r, 'a, 'c> {
    reader: &'r mut ItemReader<'a>,
    collector: &'c mut dyn Collector,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of configuration items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<serde_json::value::RawValue>>()? {
            self.reader
                .deliver_text(&raw, self.collector)
                .map_err(|e| A::Error::custom(format!("{COLLECTOR_FAILED}{e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardrail_model::{ItemKey, Observation};

    #[derive(Default)]
    struct Recorder {
        seen: Vec<String>,
        errors: Vec<String>,
    }

    impl Collector for Recorder {
        fn begin_listing(&mut self, _: Listing) -> Result<(), CollectError> {
            Ok(())
        }
        fn observe(&mut self, o: Observation) -> Result<(), CollectError> {
            self.seen.push(o.key.resource_id);
            Ok(())
        }
        fn deleted(&mut self, _: ItemKey, _: DateTime<Utc>) -> Result<(), CollectError> {
            Ok(())
        }
        fn present(&mut self, _: ItemKey) -> Result<(), CollectError> {
            Ok(())
        }
        fn error(&mut self, e: SourceError) {
            self.errors.push(e.message);
        }
        fn end_listing(&mut self, _: Coverage) -> Result<(), CollectError> {
            Ok(())
        }
    }

    fn item(id: &str, configuration: &str) -> String {
        format!(
            r#"{{"accountId":"111111111111","awsRegion":"eu-west-1","resourceType":"AWS::SNS::Topic","resourceId":"{id}","configurationItemCaptureTime":"2026-11-20T00:00:00Z","configuration":{configuration}}}"#
        )
    }

    #[test]
    fn one_deep_or_huge_item_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir
            .path()
            .join("AWSLogs/111111111111/Config/eu-west-1/2026/11/20/ConfigSnapshot");
        std::fs::create_dir_all(&folder).unwrap();
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let huge = format!("{{\"blob\":\"{}\"}}", "x".repeat(200_000));
        let items = [
            item("a", "{}"),
            item("deep", &deep),
            item("b", "{}"),
            item("huge", &huge),
            item("c", "{}"),
        ];
        std::fs::write(
            folder.join("111111111111_Config_eu-west-1_ConfigSnapshot_20261120T000000Z_x.json"),
            format!(
                r#"{{"fileVersion":"1.0","configSnapshotId":"s","configurationItems":[{}]}}"#,
                items.join(",")
            ),
        )
        .unwrap();
        let mut w = ConfigDeliveries::new(LocalDirectory::new(dir.path().to_path_buf()))
            .with_max_item_bytes(100_000);
        let mut r = Recorder::default();
        w.sweep(&mut r, &crate::Quiet).unwrap();
        assert_eq!(r.seen, ["a", "b", "c"], "{:?}", r.errors);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(
            r.errors.iter().any(|e| e.contains("recursion limit")),
            "{:?}",
            r.errors
        );
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains("over the limit of 100000 bytes")),
            "{:?}",
            r.errors
        );
    }
}
