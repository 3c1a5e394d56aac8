//! A processor's own records (the sandbox's): upserted by processor, kind and id; read back per processor.

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
    records.save_records(&sandbox, &[], at(0)).await.unwrap();
    assert!(records.load_records(&sandbox).await.unwrap().is_empty());
    let first = [record("checkout_session", "cs_1", "{\"status\":\"open\"}"), record("customer", "ws_1", "\"cus_1\"")];
    records.save_records(&sandbox, &first, at(1)).await.unwrap();
    records
        .save_records(&sandbox, &[record("checkout_session", "cs_1", "{\"status\":\"paid\"}")], at(2))
        .await
        .unwrap();
    records.save_records(&ProcessorId::new("other"), &[record("customer", "ws_1", "\"cus_x\"")], at(3)).await.unwrap();
    let mut loaded = records.load_records(&sandbox).await.unwrap();
    loaded.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    assert_eq!(
        loaded,
        [record("checkout_session", "cs_1", "{\"status\":\"paid\"}"), record("customer", "ws_1", "\"cus_1\"")],
        "the later write replaced the session; the other processor's customer is its own"
    );
    // Some ids are idempotency keys a caller chose: any length is kept.
    let long = format!("payment:acme:key:backend:{}", "k".repeat(600));
    records.save_records(&sandbox, &[record("payment_key", &long, "\"pi_1\"")], at(4)).await.unwrap();
    assert!(records.load_records(&sandbox).await.unwrap().iter().any(|r| r.id == long));
});
