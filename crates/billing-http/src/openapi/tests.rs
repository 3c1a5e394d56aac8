use std::collections::BTreeSet;

use billing_domain::testing::test_catalog as catalog;

use super::document;

/// (METHOD, path) of every operation the document describes.
fn operations(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    super::operations(doc).map(|(path, method, _)| (method.to_uppercase(), path.to_owned())).collect()
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

#[test]
fn every_link_leads_to_an_operation_and_fills_one_of_its_parameters() {
    let doc = document(&catalog());
    let all: Vec<&serde_json::Value> = super::operations(&doc).map(|(_, _, operation)| operation).collect();
    let mut links = 0;
    for operation in &all {
        for response in operation["responses"].as_object().unwrap().values() {
            for link in response["links"].as_object().into_iter().flatten().map(|(_, link)| link) {
                let target = all.iter().find(|op| op["operationId"] == link["operationId"]);
                let target = target.unwrap_or_else(|| panic!("a link to nothing: {link}"));
                for name in link["parameters"].as_object().unwrap().keys() {
                    let parameters = target["parameters"].as_array().unwrap();
                    assert!(parameters.iter().any(|p| p["name"] == name.as_str()), "{link}: no parameter {name}");
                }
                links += 1;
            }
        }
    }
    // The workspace's PUT alone leads to every route of the workspace.
    assert!(links > 40, "only {links} links");
}
