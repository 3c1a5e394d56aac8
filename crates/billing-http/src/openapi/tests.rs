use std::collections::BTreeSet;

use billing_domain::testing::test_catalog as catalog;

use super::document;

/// (METHOD, path) of every operation the document describes.
fn operations(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().into_iter().flatten().map(|(method, _)| method);
            methods
                .filter(|method| ["get", "put", "post", "delete", "patch"].contains(&method.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

#[test]
fn the_document_describes_every_route_and_no_other() {
    let doc = document(&catalog());
    let routes: BTreeSet<(String, String)> = crate::route_table()
        .into_iter()
        .flat_map(|(path, methods)| methods.into_iter().map(move |m| (m.to_string(), path.to_owned())))
        .collect();
    let described = operations(&doc);
    let missing: Vec<_> = routes.difference(&described).collect();
    let invented: Vec<_> = described.difference(&routes).collect();
    assert!(missing.is_empty() && invented.is_empty(), "missing: {missing:?}; invented: {invented:?}");
}
