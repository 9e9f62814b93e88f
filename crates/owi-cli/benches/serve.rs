//! `cargo bench -p owi-cli --bench serve`: the bundled server taking a
//! large export by each upload path, on loopback.
//!
//! For each path a fresh `owi serve` runs as a child process (so its peak
//! RSS is its own): the upload is timed (curl for direct and presigned POST,
//! as a user would send them; streamed parts for multipart), then the
//! server-side import is followed to the end through `/sync/runs`. Reports
//! upload MB/s, processing items/s (the server's own start and end times)
//! and the server's peak RSS over the whole run.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::server::ChildServer;
use common::{BenchExport, Result, bench_export, peak_rss_bytes, settle_disk};
use serde_json::{Value, json};

fn main() {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let export = bench_export()?;
    let mb = export.xml_bytes as f64 / 1e6;
    println!(
        "export: {mb:.0} MB of XML, {} records, {} workouts",
        export.records, export.workouts
    );
    println!(
        "{:<28} {:>9} {:>9} {:>11} {:>11} {:>10}",
        "path", "upload s", "MB/s", "process s", "items/s", "peak RSS"
    );
    for path in ["direct", "s3-post", "s3-multipart"] {
        let server = ChildServer::start(&export.dir)?;
        let user = server.create_user().await?;
        // The previous path's gigabyte is written back before this one.
        settle_disk()?;
        let started = Instant::now();
        match path {
            // curl's own peak RSS is the upload bench's business.
            "direct" => {
                server.curl_direct(&user, &export.xml)?;
            }
            "s3-post" => {
                server.curl_post(&user, &export).await?;
            }
            _ => multipart(&server, &user, &export).await?,
        }
        let upload = started.elapsed().as_secs_f64();
        let run = wait_for_import(&server, &user).await?;
        let secs = seconds_between(&run["started_at"], &run["ended_at"]).unwrap_or(f64::NAN);
        let items = run["items_processed"].as_u64().unwrap_or(0);
        let rss = peak_rss_bytes(server.child.id()).unwrap_or(0);
        println!(
            "{path:<28} {upload:>9.2} {:>9.0} {secs:>11.1} {:>11.0} {:>7.0} MB",
            mb / upload,
            items as f64 / secs,
            rss as f64 / 1e6
        );
        if run["status"] != "success" {
            return Err(format!(
                "the {path} import ended {}: {}",
                run["status"], run["error"]
            )
            .into());
        }
    }
    Ok(())
}

fn seconds_between(start: &Value, end: &Value) -> Option<f64> {
    let start: jiff::Timestamp = start.as_str()?.parse().ok()?;
    let end: jiff::Timestamp = end.as_str()?.parse().ok()?;
    Some(end.duration_since(start).as_secs_f64())
}

/// A multipart upload as a client sends one: parts streamed from the file,
/// four in flight.
async fn multipart(server: &ChildServer, user: &str, export: &BenchExport) -> Result<()> {
    let base = format!("/users/{user}/import/apple/xml/s3/multipart");
    let created = server
        .call(
            &format!("{base}/create"),
            Some(json!({ "filename": "bench.xml", "file_size": export.xml_bytes })),
        )
        .await?;
    let part_size = created["part_size"].as_u64().ok_or("no part size")?;
    let parts = export.xml_bytes.div_ceil(part_size);
    let signed = server
        .call(
            &format!("{base}/sign"),
            Some(
                json!({ "key": created["key"], "upload_id": created["upload_id"],
                         "part_numbers": (1..=parts).collect::<Vec<_>>() }),
            ),
        )
        .await?;
    let urls = signed["urls"].as_array().ok_or("no urls")?;
    let mut uploads = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let url = url["url"].as_str().ok_or("no url")?.to_string();
        let offset = i as u64 * part_size;
        let len = part_size.min(export.xml_bytes - offset);
        let (http, path) = (server.http.clone(), export.xml.clone());
        uploads.push(async move {
            let body = file_range(&path, offset, len).await?;
            let res = http
                .put(url)
                .header("content-length", len)
                .body(body)
                .send()
                .await?;
            let etag = res
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("part {}: {}", i + 1, res.status()))?
                .to_string();
            Ok::<_, Box<dyn std::error::Error>>(json!({ "part_number": i + 1, "etag": etag }))
        });
    }
    // Four parts in flight, as a client would.
    let mut etags = Vec::new();
    let mut pending = uploads.into_iter();
    loop {
        let batch: Vec<_> = pending.by_ref().take(4).collect();
        if batch.is_empty() {
            break;
        }
        for result in futures_util::future::join_all(batch).await {
            etags.push(result?);
        }
    }
    server
        .call(
            &format!("{base}/complete"),
            Some(
                json!({ "key": created["key"], "upload_id": created["upload_id"], "parts": etags }),
            ),
        )
        .await?;
    Ok(())
}

/// Polls `/sync/runs` until the newest run has ended.
async fn wait_for_import(server: &ChildServer, user: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while Instant::now() < deadline {
        let runs = server
            .call(&format!("/users/{user}/sync/runs"), None)
            .await?;
        if let Some(run) = runs.as_array().and_then(|r| r.first())
            && matches!(run["status"].as_str(), Some("success" | "failed"))
        {
            return Ok(run.clone());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err("the import did not end within 30 minutes".into())
}

async fn file_range(path: &Path, offset: u64, len: u64) -> Result<reqwest::Body> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let reader = file.take(len);
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; 1 << 20];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}
