//! The audit log: append and list newest first, paged by id.

use billing_domain::ports::AuditLog;
use billing_store::Store;

use crate::helpers::{at, audit_record, ws_id};

both!(lists_newest_first_with_paging, |store: Store| async move {
    let audit: &dyn AuditLog = &store;
    for i in 0..5 {
        audit.append(&audit_record("team_1", &format!("action.{i}")), at(i)).await.unwrap();
    }
    audit.append(&audit_record("team_2", "other.workspace"), at(9)).await.unwrap();

    let page = audit.list(&ws_id("team_1"), 3, None).await.unwrap();
    let actions: Vec<&str> = page.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(actions, ["action.4", "action.3", "action.2"]);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(page[0].record, audit_record("team_1", "action.4"));
    assert_eq!(page[0].at, at(4));

    let rest = audit.list(&ws_id("team_1"), 3, Some(page[2].id)).await.unwrap();
    let actions: Vec<&str> = rest.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(actions, ["action.1", "action.0"]);
    assert!(audit.list(&ws_id("team_1"), 3, Some(rest[1].id)).await.unwrap().is_empty());

    let mut bare = audit_record("team_3", "bare");
    bare.before = None;
    bare.after = None;
    bare.request_id = None;
    audit.append(&bare, at(10)).await.unwrap();
    assert_eq!(audit.list(&ws_id("team_3"), 10, None).await.unwrap()[0].record, bare);
});
