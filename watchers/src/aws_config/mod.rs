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
}

impl<S: DeliveryStore> ConfigDeliveries<S> {
    pub fn new(store: S) -> Self {
        ConfigDeliveries { store }
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
            read_object(&self.store, object, c, progress)?;
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
    })?;
    let mut reader = ItemReader {
        origin: &object.location,
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
    observed_at: DateTime<Utc>,
    use_capture_time: bool,
    count: usize,
    progress: &'a dyn Progress,
}

impl ItemReader<'_> {
    fn deliver(&mut self, raw: Value, c: &mut dyn Collector) -> Result<(), CollectError> {
        self.count += 1;
        self.progress.item();
        match read_item(raw, self.count, self.observed_at, self.use_capture_time) {
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
        while let Some(raw) = seq.next_element::<Value>()? {
            self.reader
                .deliver(raw, self.collector)
                .map_err(|e| A::Error::custom(format!("{COLLECTOR_FAILED}{e}")))?;
        }
        Ok(())
    }
}
