//! The README's code stays true: every fenced block marked `<!-- from: <path> -->` must appear
//! verbatim in that file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn readme_excerpts_match_their_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md at the workspace root");
    let mut checked = 0;
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("<!-- from: ") {
        rest = &rest[at + "<!-- from: ".len()..];
        let (path, after) = rest.split_once(" -->").expect("`<!-- from: <path> -->`");
        let fence = after.find("```").expect("a fenced block after the marker");
        let body_start = fence + after[fence..].find('\n').expect("a fence line") + 1;
        let body_len = after[body_start..].find("```").expect("a closing fence");
        let excerpt = &after[body_start..body_start + body_len];
        let source = std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(source.contains(excerpt), "README excerpt is not in {path} any more:\n{excerpt}");
        checked += 1;
        rest = &after[body_start + body_len..];
    }
    assert!(checked >= 4, "expected the tour's excerpts, found {checked}");
}
