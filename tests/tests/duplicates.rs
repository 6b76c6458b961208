//! Two tools with one name in one binary: the server refuses to start and names both fns. (In one
//! module the macro catches it at compile time; across modules only the registry can.)

mod first {
    #[toolgate::mcp_tool(name = "lookup", description = "first")]
    pub async fn lookup_users() -> String {
        String::new()
    }
}

mod second {
    #[toolgate::mcp_tool(name = "lookup", description = "second")]
    pub async fn lookup_orders() -> String {
        String::new()
    }
}

#[test]
fn a_duplicate_name_stops_the_server_and_names_both_fns() {
    let error = toolgate::Server::builder()
        .build()
        .err()
        .expect("the duplicate must be refused");
    let message = error.to_string();
    assert!(message.contains("`lookup`"), "{message}");
    assert!(message.contains("first::lookup_users"), "{message}");
    assert!(message.contains("second::lookup_orders"), "{message}");
}

#[test]
fn an_explicit_set_without_the_clash_builds() {
    let server = toolgate::Server::builder()
        .tool::<first::lookup_users>()
        .build()
        .unwrap();
    assert_eq!(server.registry().len(), 1);
}
