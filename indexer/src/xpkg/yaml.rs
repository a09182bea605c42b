//! YAML streams to JSON values, with limits for untrusted input.
//!
//! The parser is `serde-saphyr` (a maintained successor of the deprecated `serde_yaml`, built on
//! a YAML 1.2 parser). Documents are split by the parser, never on the text, because block
//! scalars (inline templates in Compositions) contain `---` lines. Its budget enforces our
//! document count, nesting depth and alias limits while parsing; the input size is checked
//! before.
//!
//! Conversion follows what Kubernetes' non-strict YAML decoding (sigs.k8s.io/yaml over a YAML
//! 1.1 resolver) makes of the same text, so a digest means what the API server would store:
//! - duplicate mapping keys are accepted, the last one wins;
//! - `yes`/`no`/`on`/`off` are booleans and `0755` is octal, as in YAML 1.1;
//! - integers stay JSON integers, `1.0` stays a float, timestamps stay strings, `.inf`/`.nan`
//!   become the strings `.inf`/`.nan` (JSON has no such numbers), `!!binary` decodes to text;
//! - non-string keys become strings: `1` → `"1"`, `true` → `"true"`, `null` → `"null"`, and a
//!   collection key → its compact JSON text;
//! - empty documents (and documents that are only `null`) are skipped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::options::{DuplicateKeyPolicy, NonFiniteFloatPolicy};
use serde_saphyr::{Budget, MessageFormatter, Options};

use super::limits::YamlLimits;
use super::rejection::{Limit, Rejection, Stream};

/// Parses a YAML stream into its non-empty documents, in order.
///
/// `stream` only names the input in a [`Rejection`]. Documents are numbered from 0 in errors,
/// counting empty ones, so the number matches a reader's count of `---` separators.
pub fn parse_stream(
    input: &[u8],
    limits: &YamlLimits,
    stream: Stream,
) -> Result<Vec<Value>, Rejection> {
    parse_stream_into(input, limits, stream)
}

/// [`parse_stream`], handing each document to `C` as soon as it is parsed, so a collection that
/// keeps less than the `Value` (a digest, the canonical encoding) never holds every document's
/// tree at once. Same limits, same rejections.
pub fn parse_stream_into<C>(
    input: &[u8],
    limits: &YamlLimits,
    stream: Stream,
) -> Result<C, Rejection>
where
    C: Default + Extend<Value> + Send,
{
    let size_limit = match stream {
        Stream::PackageYaml => Limit::PackageYamlBytes,
        Stream::ExamplesYaml => Limit::ExamplesYamlBytes,
    };
    if input.len() as u64 > limits.max_input_bytes {
        return Err(Rejection::limit(
            size_limit,
            limits.max_input_bytes,
            format!("{stream} is {} bytes", input.len()),
        ));
    }
    let text = std::str::from_utf8(input).map_err(|e| {
        let (line, column) = line_column(&input[..e.valid_up_to()]);
        Rejection::InvalidYaml {
            stream,
            document: document_at(&String::from_utf8_lossy(&input[..e.valid_up_to()]), line),
            line,
            column,
            message: format!("not UTF-8 ({e})"),
        }
    })?;
    // The deserializer recurses once per nesting level, with large frames in debug builds; a
    // thread of our own makes `max_depth` safe whatever stack the caller runs on.
    let stack = 1024 * 1024 + limits.max_depth.saturating_mul(STACK_PER_LEVEL);
    let parsed = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("xpkg-yaml".to_owned())
            .stack_size(stack)
            .spawn_scoped(scope, || {
                serde_saphyr::from_bytes_multiple_with_options::<Document, Documents<C>>(
                    input,
                    options(limits, input.len()),
                )
                .map_err(|e| rejection(&e, text, limits, stream))
            })
            .expect("spawning the YAML parser thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    Ok(parsed.0)
}

/// The parser's collection: passes each document's value on to `C` as it arrives.
#[derive(Default)]
struct Documents<C>(C);

impl<C: Extend<Value>> Extend<Document> for Documents<C> {
    fn extend<I: IntoIterator<Item = Document>>(&mut self, documents: I) {
        self.0.extend(documents.into_iter().map(|d| d.0));
    }
}

/// Stack reserved per allowed nesting level for the parser thread (measured: well under 32 KiB
/// per level in debug builds).
const STACK_PER_LEVEL: usize = 64 * 1024;

fn options(limits: &YamlLimits, input_len: usize) -> Options {
    let mut budget = Budget::default();
    // Input size bounds events, nodes and scalar text already; only aliases can amplify.
    budget.max_events = usize::MAX;
    budget.max_nodes = usize::MAX;
    budget.max_reader_input_bytes = None;
    budget.max_documents = limits.max_documents;
    budget.max_depth = limits.max_depth;
    budget.max_recorded_anchor_events = limits.max_alias_events;
    budget.max_total_scalar_bytes = input_len
        .saturating_add(usize::try_from(limits.max_alias_expanded_bytes).unwrap_or(usize::MAX));
    // Many aliases of one anchor (`<<: *defaults` in every resource) is normal, not an attack:
    // the event budget above is what bounds expansion.
    budget.enforce_alias_anchor_ratio = false;

    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = limits.max_alias_events;
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    options.legacy_octal_numbers = true;
    options.strict_booleans = false;
    options.non_finite_float_policy = NonFiniteFloatPolicy::AsString;
    options.with_snippet = false;
    options
}

fn rejection(
    err: &serde_saphyr::Error,
    text: &str,
    limits: &YamlLimits,
    stream: Stream,
) -> Rejection {
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let document = document_at(text, line);
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let message = clean(serde_saphyr::DefaultMessageFormatter.format_message(inner));
    let at = format!("{stream} document {document}, line {line}, column {column}: {message}");
    let alias = |max: usize| Rejection::limit(Limit::YamlAliasExpansion, max as u64, at.clone());
    match inner {
        serde_saphyr::Error::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => {
                Rejection::limit(Limit::YamlDepth, limits.max_depth as u64, at)
            }
            BudgetBreach::Documents { .. } => {
                Rejection::limit(Limit::YamlDocuments, limits.max_documents as u64, at)
            }
            BudgetBreach::ScalarBytes { .. } => Rejection::limit(
                Limit::YamlAliasExpansion,
                limits.max_alias_expanded_bytes,
                at,
            ),
            _ => alias(limits.max_alias_events),
        },
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => alias(limits.max_alias_events),
        _ => Rejection::InvalidYaml {
            stream,
            document,
            line,
            column,
            message,
        },
    }
}

/// The 0-based index of the document that contains `line`, counting empty documents. Only run
/// on the error path: it scans the stream's events up to that line once more.
fn document_at(text: &str, line: u64) -> usize {
    let mut starts = 0usize;
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        if span.start.line() as u64 > line {
            break;
        }
        if matches!(event, Event::DocumentStart(..)) {
            starts += 1;
        }
    }
    starts.saturating_sub(1)
}

fn line_column(prefix: &[u8]) -> (u64, u64) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let column = prefix.iter().rev().take_while(|&&b| b != b'\n').count() as u64 + 1;
    (line, column)
}

/// Messages can quote input; keep them on one line and free of control characters.
fn clean(message: Cow<'_, str>) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One document as a `serde_json::Value`, with the key and scalar conversions described above.
struct Document(Value);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(Document)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(float(v as f64))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(float(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        no_nul(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        no_nul(&v)?;
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        let v = String::from_utf8_lossy(v);
        no_nul(&v)?;
        Ok(Value::String(v.into_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Document(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Document(key)) = map.next_key()? {
            let key = match key {
                Value::String(s) => s,
                Value::Null => "null".to_owned(),
                other => other.to_string(),
            };
            let Document(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("unexpected enum value"))
    }
}

/// Refuses a string (value or key) holding U+0000, which YAML writes as `"\0"` or `"\u0000"`:
/// PostgreSQL stores no NUL in text or `jsonb`, so the package would fail at the database with
/// no word of where. Refused here, it is an invalid-YAML rejection with its line and column.
fn no_nul<E: de::Error>(v: &str) -> Result<(), E> {
    if v.contains('\0') {
        return Err(E::custom(
            "a string holds a NUL character (U+0000), which cannot be stored",
        ));
    }
    Ok(())
}

/// A float, or its YAML spelling where JSON has no number for it (serde-saphyr passes those as
/// strings already; this covers integers too large for `i64`/`u64` that overflow `f64`).
fn float(v: f64) -> Value {
    Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(v.to_string()))
}

#[cfg(test)]
mod tests;
