//! The test clock's shared offset: 0 at first, moved only by compare-and-set (of racing movers one wins).

use billing_domain::ports::ClockOffsets;
use billing_store::Store;

use crate::helpers::at;

both!(the_offset_moves_by_compare_and_set, |store: Store| async move {
    let clock: &dyn ClockOffsets = &store;
    assert_eq!(clock.offset_ms().await.unwrap(), 0, "no advance yet");
    assert!(clock.move_offset(0, 3_600_000, at(1)).await.unwrap());
    assert!(!clock.move_offset(0, 7_200_000, at(2)).await.unwrap(), "moved by another meanwhile");
    assert_eq!(clock.offset_ms().await.unwrap(), 3_600_000);
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.move_offset(3_600_000, 3_600_001 + i, at(3)).await.unwrap() })
        })
        .collect();
    let won = futures::future::join_all(racers).await.into_iter().filter(|w| *w.as_ref().unwrap()).count();
    assert_eq!(won, 1, "one mover wins");
    assert!(clock.offset_ms().await.unwrap() >= 3_600_000);
});
