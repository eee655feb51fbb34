//! What `wasmgate check` reads: files, directories (walked for `.yaml`, `.yml` and `.json`) and
//! stdin; JSON documents and multi-document YAML streams; `kind: List` (and any `*List` with
//! `items`) expanded, as [`crate::manifest::parse_objects`] does for the inventory. Each object
//! keeps its source file and line, and the lines of its components, for the diagnostics.
//!
//! Lines come from the YAML parser's spans (serde-saphyr), read in a second, lenient pass that
//! only looks at `items`, `spec`, `template`, `components`, `service` and `name`; when that pass
//! cannot place something, the enclosing object's (or document's) line is used.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// The name stdin goes by in the output.
pub const STDIN_NAME: &str = "<stdin>";

/// The file extensions read when walking a directory.
pub const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// An input that cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path as given (or found while walking).
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid JSON or YAML.
    #[error("cannot parse {path}: {message}")]
    Parse {
        /// The path.
        path: String,
        /// The parser's message.
        message: String,
    },
}

/// Where one input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// The name used in diagnostics: the path as given, or [`STDIN_NAME`].
    pub fn display_name(&self) -> String {
        match self {
            Source::Stdin => STDIN_NAME.to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// One object read from the inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct InputObject {
    /// The file it came from (as given on the command line, or [`STDIN_NAME`]).
    pub file: Arc<str>,
    /// 1-based line where the object starts.
    pub line: usize,
    /// The object.
    pub value: Value,
    /// 1-based lines of its components' entries (`spec.components[]`, or the template's) by
    /// component name, and of `service` under the key `service`.
    pub component_lines: BTreeMap<String, usize>,
}

impl InputObject {
    /// The line of a finding about `component` (the component's entry when known).
    pub fn line_of(&self, component: Option<&str>) -> usize {
        component
            .and_then(|c| self.component_lines.get(c))
            .copied()
            .unwrap_or(self.line)
    }
}

/// Expands `paths` into sources: `-` is stdin, files are taken as given (whatever their
/// extension), directories are walked recursively in name order for `.yaml`, `.yml` and `.json`
/// files, skipping hidden entries (names starting with `.`) and not following symlinked
/// directories.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            out.push(Source::Stdin);
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| InputError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(Source::File(path.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<Source>) -> Result<(), InputError> {
    let read_err = |path: &Path, source| InputError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| read_err(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| read_err(&path, e))?;
        let is_file = if file_type.is_symlink() {
            // A symlinked file counts; a symlinked directory is not followed (no loops).
            std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        } else {
            file_type.is_file()
        };
        if file_type.is_dir() {
            walk(&path, out)?;
        } else if is_file
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(Source::File(path));
        }
    }
    Ok(())
}

/// Reads one source (stdin from `stdin`).
pub fn read(source: &Source, stdin: &mut dyn Read) -> Result<String, InputError> {
    let mut bytes = Vec::new();
    let result = match source {
        Source::Stdin => stdin.read_to_end(&mut bytes).map(|_| ()),
        Source::File(p) => std::fs::read(p).map(|b| bytes = b),
    };
    result.map_err(|e| InputError::Read {
        path: source.display_name(),
        source: e,
    })?;
    String::from_utf8(bytes).map_err(|e| InputError::Parse {
        path: source.display_name(),
        message: format!("not UTF-8 text: {e}"),
    })
}

/// Parses every object of one file's text, with its lines.
pub fn parse(file: &str, text: &str) -> Result<Vec<InputObject>, InputError> {
    let file: Arc<str> = Arc::from(file);
    let parse_err = |message: String| InputError::Parse {
        path: file.to_string(),
        message,
    };
    // Best effort: positions only; never an error of its own.
    let outlines: Option<Vec<Outline>> =
        serde_saphyr::from_str_multiple::<Spanned<Outline>, Vec<_>>(text)
            .ok()
            .map(|docs| {
                docs.into_iter()
                    .map(|d| {
                        let mut o = d.value;
                        o.line = line(&d.referenced);
                        o
                    })
                    .collect()
            });

    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let first_line = 1 + text[..text.len() - trimmed.len()].matches('\n').count();
        let value: Value =
            serde_json::from_str(text).map_err(|e| parse_err(format!("invalid JSON: {e}")))?;
        let outline = outlines
            .filter(|o| o.len() == 1)
            .and_then(|o| o.into_iter().next());
        let docs = match value {
            // A JSON array of objects, as `parse_objects` reads it.
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let o = outline.as_ref().and_then(|o| o.items.get(i)).cloned();
                    let line = o.as_ref().map_or(first_line, |o| o.line);
                    (item, line, o)
                })
                .collect(),
            v => vec![(v, first_line, outline)],
        };
        return Ok(expand_all(&file, docs));
    }
    let docs: Vec<(Value, usize)> = serde_saphyr::from_str_multiple::<Spanned<Value>, Vec<_>>(text)
        .map_err(|e| parse_err(format!("invalid YAML: {e}")))?
        .into_iter()
        .map(|d| {
            let l = line(&d.referenced);
            (d.value, l)
        })
        .collect();
    let outlines = outlines.filter(|o| o.len() == docs.len());
    let with_outlines = docs
        .into_iter()
        .enumerate()
        .map(|(i, (value, line))| {
            let o = outlines.as_ref().map(|o| o[i].clone());
            (value, line, o)
        })
        .collect();
    Ok(expand_all(&file, with_outlines))
}

fn line(location: &serde_saphyr::Location) -> usize {
    usize::try_from(location.line()).unwrap_or(0).max(1)
}

fn expand_all(file: &Arc<str>, docs: Vec<(Value, usize, Option<Outline>)>) -> Vec<InputObject> {
    let mut out = Vec::new();
    for (value, line, outline) in docs {
        expand(file, value, line, outline.as_ref(), &mut out);
    }
    out
}

fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && map.get("items").is_some_and(Value::is_array)
}

fn expand(
    file: &Arc<str>,
    value: Value,
    line: usize,
    outline: Option<&Outline>,
    out: &mut Vec<InputObject>,
) {
    match value {
        Value::Null => {}
        Value::Object(mut map) if is_list(&map) => {
            let Some(Value::Array(items)) = map.remove("items") else {
                return;
            };
            for (i, item) in items.into_iter().enumerate() {
                let o = outline.and_then(|o| o.items.get(i));
                expand(file, item, o.map_or(line, |o| o.line), o, out);
            }
        }
        value => {
            let component_lines = outline.map(component_lines).unwrap_or_default();
            out.push(InputObject {
                file: file.clone(),
                line,
                value,
                component_lines,
            });
        }
    }
}

/// Component name -> line, from `spec` or `spec.template.spec`.
fn component_lines(outline: &Outline) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let Some(spec) = outline.spec.as_deref() else {
        return out;
    };
    let spec = match spec.template.as_deref().and_then(|t| t.spec.as_deref()) {
        Some(template_spec) if spec.components.is_empty() && spec.service.is_none() => {
            template_spec
        }
        _ => spec,
    };
    for c in &spec.components {
        if let Some(name) = &c.name {
            out.entry(name.clone()).or_insert(c.line);
        }
    }
    if let Some(s) = &spec.service {
        out.insert(crate::resolve::SERVICE_KEY.to_string(), s.line);
    }
    out
}

/// The parts of a document whose positions the diagnostics use. Deserializes from anything:
/// what it does not look at (or cannot read) is skipped.
#[derive(Clone, Debug, Default, PartialEq)]
struct Outline {
    line: usize,
    /// `items` of a List, or the elements of a sequence.
    items: Vec<Outline>,
    spec: Option<Box<Outline>>,
    template: Option<Box<Outline>>,
    components: Vec<Outline>,
    service: Option<Box<Outline>>,
    name: Option<String>,
}

/// A sequence of spanned outlines (anything else reads as empty).
struct Elements(Vec<Outline>);

/// A string (anything else reads as `None`).
struct Text(Option<String>);

/// A mapping key: its text when it is a string.
struct Key(Option<String>);

fn spanned(s: Spanned<Outline>) -> Outline {
    let mut o = s.value;
    o.line = line(&s.referenced);
    o
}

/// Implements the scalar visits of a lenient visitor as "nothing".
macro_rules! ignore_scalars {
    ($out:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_i128<E: de::Error>(self, _: i128) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_u128<E: de::Error>(self, _: u128) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
    };
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> Deserialize<'de> for Outline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Outline;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            ignore_scalars!(Outline::default());
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Outline, E> {
                Ok(Outline::default())
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Outline, D2::Error> {
                Outline::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outline, A::Error> {
                let mut out = Outline::default();
                while let Some(item) = seq.next_element::<Spanned<Outline>>()? {
                    out.items.push(spanned(item));
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outline, A::Error> {
                let mut out = Outline::default();
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    match key.as_deref() {
                        Some("items") => out.items = map.next_value::<Elements>()?.0,
                        Some("components") => out.components = map.next_value::<Elements>()?.0,
                        Some("spec") => {
                            out.spec = Some(Box::new(spanned(map.next_value()?)));
                        }
                        Some("template") => {
                            out.template = Some(Box::new(spanned(map.next_value()?)));
                        }
                        Some("service") => {
                            out.service = Some(Box::new(spanned(map.next_value()?)));
                        }
                        Some("name") => out.name = map.next_value::<Text>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Elements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Elements;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            ignore_scalars!(Elements(Vec::new()));
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Elements, E> {
                Ok(Elements(Vec::new()))
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Elements, D2::Error> {
                Elements::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Elements, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Outline>>()? {
                    out.push(spanned(item));
                }
                Ok(Elements(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Elements, A::Error> {
                drain_map(map)?;
                Ok(Elements(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML node")
            }
            ignore_scalars!(Text(None));
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text(Some(s.to_string())))
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Text, D2::Error> {
                Text::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
                drain_seq(seq)?;
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
                drain_map(map)?;
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(|t| Key(t.0))
    }
}

/// Reads and parses every source; all failures are returned together.
pub fn load(sources: &[Source], stdin: &mut dyn Read) -> Result<Vec<InputObject>, Vec<InputError>> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for source in sources {
        match read(source, stdin).and_then(|text| parse(&source.display_name(), &text)) {
            Ok(mut objs) => objects.append(&mut objs),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stream_lines_lists_and_components() {
        let text = "\
# a comment
apiVersion: v1
kind: List
items:
- kind: Host
  hostId: a
-   kind: Host
    hostId: b
---
---
# x

apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata: {name: w}
spec:
  hostInterfaces:
    - name: api
      namespace: wasi
  components:
    - image: x
      name: api
    - name: db
      image: y
  service:
    image: z
";
        let objs = parse("f.yaml", text).unwrap();
        let lines: Vec<_> = objs.iter().map(|o| o.line).collect();
        assert_eq!(lines, [5, 7, 13]);
        assert_eq!(objs[0].value["hostId"], "a");
        let w = &objs[2];
        assert_eq!(w.component_lines["api"], 21);
        assert_eq!(w.component_lines["db"], 23);
        assert_eq!(w.component_lines["service"], 26);
        assert_eq!(w.line_of(Some("db")), 23);
        assert_eq!(w.line_of(Some("nope")), 13);
        assert_eq!(w.line_of(None), 13);
        assert_eq!(&*w.file, "f.yaml");
    }

    #[test]
    fn template_components_and_odd_shapes() {
        let text = "\
kind: WorkloadReplicaSet
spec:
  template:
    spec:
      components:
      - name: h
        image: i
---
kind: Workload
spec: \"not a map\"
---
- just
- a list
---
kind: Workload
spec:
  components: {name: odd}
";
        let objs = parse("f.yaml", text).unwrap();
        assert_eq!(objs.len(), 4);
        assert_eq!(objs[0].component_lines["h"], 6);
        assert!(objs[1].component_lines.is_empty());
        assert_eq!(objs[2].line, 12);
        assert_eq!(objs[3].line, 15);
    }

    #[test]
    fn json_documents() {
        let text = "\n\n{\n \"kind\": \"List\",\n \"items\": [\n  {\"kind\": \"A\"},\n\t{\"kind\": \"B\",\n   \"spec\": {\"components\": [{\"name\": \"c\"}]}}\n ]\n}\n";
        let objs = parse("f.json", text).unwrap();
        assert_eq!(objs.iter().map(|o| o.line).collect::<Vec<_>>(), [6, 7]);
        assert_eq!(objs[1].component_lines["c"], 8);
        let objs = parse("a.json", "[{\"kind\":\"A\"},\n{\"kind\":\"B\"}]").unwrap();
        assert_eq!(objs.iter().map(|o| o.line).collect::<Vec<_>>(), [1, 2]);
        let objs = parse("a.json", "  {\"kind\":\"A\"}").unwrap();
        assert_eq!(objs[0].line, 1);
    }

    #[test]
    fn parse_errors_name_the_file() {
        let e = parse("bad.yaml", "a: [1,\n").unwrap_err().to_string();
        assert!(e.starts_with("cannot parse bad.yaml: invalid YAML"), "{e}");
        let e = parse("bad.json", "{nope").unwrap_err().to_string();
        assert!(e.starts_with("cannot parse bad.json: invalid JSON"), "{e}");
        assert!(parse("empty.yaml", "").unwrap().is_empty());
        assert!(parse("comments.yaml", "# only\n---\n").unwrap().is_empty());
    }

    #[test]
    fn walks_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("b/c")).unwrap();
        std::fs::create_dir_all(d.join(".hidden")).unwrap();
        for f in [
            "a.yaml",
            "b/x.yml",
            "b/c/y.json",
            "b/z.txt",
            ".hidden/h.yaml",
            "README.md",
        ] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let got = collect(&[d.to_path_buf(), PathBuf::from("-"), d.join("b/z.txt")]).unwrap();
        let want = vec![
            Source::File(d.join("a.yaml")),
            Source::File(d.join("b/c/y.json")),
            Source::File(d.join("b/x.yml")),
            Source::Stdin,
            Source::File(d.join("b/z.txt")),
        ];
        assert_eq!(got, want);
        let e = collect(&[d.join("missing.yaml")]).unwrap_err().to_string();
        assert!(e.contains("missing.yaml"), "{e}");
    }
}
