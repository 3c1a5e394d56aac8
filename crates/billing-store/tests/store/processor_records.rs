//! A processor's own records (the sandbox's): upserted by processor, kind and id; read back per processor;
//! every write moves the processor's version by compare-and-set.

use billing_domain::ids::ProcessorId;
use billing_domain::ports::{ProcessorRecord, ProcessorRecords};
use billing_store::Store;

use crate::helpers::at;

fn record(kind: &str, id: &str, body: &str) -> ProcessorRecord {
    ProcessorRecord { kind: kind.into(), id: id.into(), body: body.into() }
}

both!(records_are_upserted_and_read_back_per_processor, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    let records: &dyn ProcessorRecords = &store;
    assert_eq!(records.records_version(&sandbox).await.unwrap(), 0);
    assert!(records.save_records(&sandbox, &[], 0, at(0)).await.unwrap());
    assert!(records.load_records(&sandbox).await.unwrap().records.is_empty());
    let first = [record("checkout_session", "cs_1", "{\"status\":\"open\"}"), record("customer", "ws_1", "\"cus_1\"")];
    assert!(records.save_records(&sandbox, &first, 1, at(1)).await.unwrap());
    let paid = [record("checkout_session", "cs_1", "{\"status\":\"paid\"}")];
    assert!(records.save_records(&sandbox, &paid, 2, at(2)).await.unwrap());
    // A writer whose copy is at version 2 lost to the one above: nothing of its write is kept.
    let stale = [record("checkout_session", "cs_1", "{\"status\":\"declined\"}"), record("customer", "ws_2", "\"c\"")];
    assert!(!records.save_records(&sandbox, &stale, 2, at(2)).await.unwrap());
    assert_eq!(records.records_version(&sandbox).await.unwrap(), 3);
    let other = ProcessorId::new("other");
    assert!(records.save_records(&other, &[record("customer", "ws_1", "\"cus_x\"")], 0, at(3)).await.unwrap());
    assert_eq!(records.records_version(&other).await.unwrap(), 1, "each processor has its own version");
    let stored = records.load_records(&sandbox).await.unwrap();
    assert_eq!(stored.version, 3);
    let mut loaded = stored.records;
    loaded.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    assert_eq!(
        loaded,
        [record("checkout_session", "cs_1", "{\"status\":\"paid\"}"), record("customer", "ws_1", "\"cus_1\"")],
        "the later write replaced the session; the other processor's customer is its own"
    );
    // Some ids are idempotency keys a caller chose: any length is kept.
    let long = format!("payment:acme:key:backend:{}", "k".repeat(600));
    assert!(records.save_records(&sandbox, &[record("payment_key", &long, "\"pi_1\"")], 3, at(4)).await.unwrap());
    assert!(records.load_records(&sandbox).await.unwrap().records.iter().any(|r| r.id == long));
});

both!(of_writers_racing_from_one_version_exactly_one_writes, |store: Store| async move {
    let sandbox = ProcessorId::new("sandbox");
    let writes = (0..8).map(|n| {
        let store = store.clone();
        let sandbox = sandbox.clone();
        async move {
            let records: &dyn ProcessorRecords = &store;
            records.save_records(&sandbox, &[record("customer", &format!("ws_{n}"), "\"cus\"")], 0, at(1)).await
        }
    });
    let outcomes = futures::future::join_all(writes).await;
    let won = outcomes.into_iter().map(Result::unwrap).filter(|wrote| *wrote).count();
    assert_eq!(won, 1, "one writer moves version 0 to 1; the others' copies are stale");
    let stored = (&store as &dyn ProcessorRecords).load_records(&sandbox).await.unwrap();
    assert_eq!((stored.version, stored.records.len()), (1, 1), "only the winner's record is kept");
});
