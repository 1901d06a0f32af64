//! A small checker of the box's OpenAPI 3.1 document against what the box answers: which
//! path+method pairs it documents, which statuses each may answer, and whether a JSON body fits
//! a documented schema (the subset of JSON Schema the document uses: `$ref`, `type`, `enum`,
//! `required`, `properties`, `additionalProperties: false`, `items`, `minimum`, `maximum`,
//! `minLength`, `maxLength`, `minItems`).

use anyhow::{bail, Context};
use serde_json::Value;

/// The document's own `#/...` reference resolved (a non-`$ref` value as it is).
pub fn resolve<'a>(doc: &'a Value, v: &'a Value) -> anyhow::Result<&'a Value> {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.strip_prefix('#').context("only local references")?;
            let target = doc
                .pointer(ptr)
                .with_context(|| format!("dangling $ref {r}"))?;
            resolve(doc, target)
        }
        None => Ok(v),
    }
}

/// Every (method, path template) the document names.
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Checks that `status` is documented for the operation and that `body` fits its schema.
pub fn check_response(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    body: &str,
) -> anyhow::Result<()> {
    let op = &doc["paths"][path][method.to_lowercase()];
    let Some(resp) = op["responses"].get(status.to_string()) else {
        bail!("{method} {path}: status {status} is not documented (body {body})");
    };
    let resp = resolve(doc, resp)?;
    let schema = &resp["content"]["application/json"]["schema"];
    let v: Value = serde_json::from_str(body)
        .with_context(|| format!("{method} {path} {status}: not JSON: {body}"))?;
    validate(doc, schema, &v, "$").with_context(|| format!("{method} {path} {status}: {body}"))
}

/// Whether `v` fits `schema` (the subset above).
pub fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> anyhow::Result<()> {
    let s = resolve(doc, schema)?;
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => bail!("{at}: type {t} not supported by the checker"),
        };
        if !ok {
            bail!("{at}: {v} is not of type {t}");
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            bail!("{at}: {v} is not one of {allowed:?}");
        }
    }
    if let Some(n) = v.as_f64() {
        if s.get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
        {
            bail!("{at}: {n} below its minimum");
        }
        if s.get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n > m)
        {
            bail!("{at}: {n} above its maximum");
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
            || s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
        {
            bail!("{at}: {text:?} has a length out of bounds");
        }
    }
    if let Some(items) = v.as_array() {
        if s.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| (items.len() as u64) < m)
        {
            bail!("{at}: too few items");
        }
        if let Some(item) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                validate(doc, item, x, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().context("required names are strings")?;
            if !obj.contains_key(r) {
                bail!("{at}: required {r:?} missing");
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(doc, ps, x, &format!("{at}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    bail!("{at}: {k:?} is not documented")
                }
                None => {}
            }
        }
    }
    Ok(())
}

#[test]
fn the_checker_can_fail() {
    let doc = serde_json::json!({"components": {"schemas": {"A": {
        "type": "object", "required": ["n"], "additionalProperties": false,
        "properties": {"n": {"type": "integer", "minimum": 1}, "s": {"enum": ["x"]}}
    }}}});
    let a = serde_json::json!({"$ref": "#/components/schemas/A"});
    assert!(validate(&doc, &a, &serde_json::json!({"n": 1, "s": "x"}), "$").is_ok());
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"n": 0}),
        serde_json::json!({"n": "1"}),
        serde_json::json!({"n": 1, "s": "y"}),
        serde_json::json!({"n": 1, "extra": true}),
    ] {
        assert!(validate(&doc, &a, &bad, "$").is_err(), "{bad}");
    }
}
