//! Misuse of `#[mcp_tool]` fails to compile with an error that points at the mistake and names the
//! fix; every supported form compiles.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/fail/*.rs");
    cases.pass("tests/pass/*.rs");
}
