//! No log line, error message, receipt or fake record carries vault content,
//! even when every kind of fault strikes. In its own test binary so that its
//! global log subscriber sees every event (a per-thread one misses events
//! whose callsites other tests registered first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use childsafe_cybertip::{
    fake::{Endpoint, Fault, FaultRule},
    outbox::DriveOutcome,
};
use common::world::*;

/// Captures log lines in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_log_line_error_or_receipt_carries_vault_content() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let world = world().await;
    let case = confirmed_case(&world, "user-1").await;
    world
        .fake
        .add_fault(FaultRule::nth(Endpoint::Upload, 1, Fault::WrongMd5));
    world
        .fake
        .add_fault(FaultRule::nth(Endpoint::Upload, 2, Fault::DropAfterAct));
    world.fake.add_fault(FaultRule::nth(
        Endpoint::Fileinfo,
        1,
        Fault::ResponseCode {
            code: 4100,
            http_status: 400,
        },
    ));
    let outcome = submit(&world, case).await;
    let DriveOutcome::Failed { error } = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(!error.contains(CONTENT_MARKER));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("outcome unknown"),
        "the faults were logged:\n{logs}"
    );
    assert!(!logs.contains(CONTENT_MARKER), "{logs}");
    let outbox = world.store.report_for_case(case).await.unwrap().unwrap();
    for receipt in world.store.report_receipts(outbox.id).await.unwrap() {
        assert!(!receipt.receipt.body.contains(CONTENT_MARKER));
    }
    assert!(!outbox.state.to_string().contains(CONTENT_MARKER));
    assert!(
        !serde_json::to_string(&world.fake.records())
            .unwrap()
            .contains(CONTENT_MARKER)
    );
}
