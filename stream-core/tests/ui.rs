//! Compile-fail and compile-pass tests for `#[bindery::processor]`, `#[bindery::sink]` and
//! `#[bindery::source]`: every error the macros emit has a case under `tests/ui/fail` with its
//! expected `.stderr`. Regenerate with `TRYBUILD=overwrite` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
