//! The live preview in the real window: a large export's summary is on
//! screen, marked "so far" and growing, while the read goes on beside it;
//! the tabs answer meanwhile; the finished numbers take over in place.

use owi_e2e::Result;
use owi_e2e::preview::{COVERS_LABEL, RECORDS, figure};

use crate::{Stage, en_count};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "drives the built app in a real window; scripts/test.sh builds it and runs these"]
async fn a_large_export_shows_its_summary_while_it_is_read() -> Result<()> {
    // Large enough that reading takes seconds in the release build.
    let stage = Stage::new(1_200_000, 200, "en_US", &[])?;
    let total = stage.manifest.records;
    let app = stage.launch(true).await?;

    // The read's own strip and the summary, on screen together.
    app.wait_for(".strip").await?;
    let first = app
        .wait_for_text(RECORDS, |t| figure(t) > 0)
        .await
        .map(|t| figure(&t))?;
    let label = app.wait_for_text(COVERS_LABEL, |_| true).await?;
    assert!(
        first < total && label.to_lowercase().contains("so far"),
        "a live summary before the end: {first} of {total} records, {label:?}"
    );
    app.screenshot("live-1-reading").await?;

    // The tabs answer while the read goes on.
    app.click_button("Workouts").await?;
    app.wait_for("[role='grid'][aria-label^='Workouts']")
        .await?;
    app.click_button("Summary").await?;

    // The finished figure replaces the live one (the label is upper-cased
    // by CSS, which innerText follows).
    app.wait_for_text(COVERS_LABEL, |t| t.eq_ignore_ascii_case("Covers"))
        .await?;
    let records = app.wait_for_text(RECORDS, |_| true).await?;
    assert_eq!(records, en_count(total), "the finished count");
    assert!(
        app.client()
            .find(owi_e2e::fantoccini::Locator::Css(".strip"))
            .await
            .is_err(),
        "the read's strip is gone"
    );
    app.screenshot("live-2-read").await?;
    app.close().await?;
    Ok(())
}
