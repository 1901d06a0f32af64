//! Embeds the built pages (`appliance/web/dist`, committed, rebuilt by `scripts/build-web.sh`)
//! into docketd: writes `$OUT_DIR/assets.rs`, a table of every file with its URL path, content
//! type, bytes, gzip copy and ETag. A plain `cargo build` needs no Node.js.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    assert!(
        files.iter().any(|(rel, _)| rel == "tablet.html"),
        "{} holds no built pages: run scripts/build-web.sh",
        dist.display()
    );
    files.sort();
    let mut out = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (rel, path) in &files {
        if rel.ends_with(".gz") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(path).expect("readable asset");
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        let url = match rel.strip_suffix(".html") {
            Some("index") => "/".to_owned(),
            Some(page) => format!("/{page}"),
            None => format!("/{rel}"),
        };
        let gz = path.with_file_name(format!(
            "{}.gz",
            path.file_name().expect("a file").to_string_lossy()
        ));
        let gz = if gz.exists() {
            format!("Some(include_bytes!({:?}))", gz.display().to_string())
        } else {
            "None".to_owned()
        };
        writeln!(
            out,
            "    Asset {{ path: {url:?}, mime: {:?}, body: include_bytes!({:?}), gzip: {gz}, etag: \"\\\"{:016x}\\\"\" }},",
            mime(rel),
            path.display().to_string(),
            h.finish()
        )
        .expect("string write");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("assets.rs");
    std::fs::write(dest, out).expect("writable OUT_DIR");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, files);
        } else {
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            files.push((rel, p));
        }
    }
}

fn mime(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}
