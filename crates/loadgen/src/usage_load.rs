//! `tollgate-loadgen usage`: creates workspaces through the API, builds every batch of usage events up front (so
//! the client's own work is out of the timing), then posts them to `POST /v1/usage` with N concurrent senders and
//! prints events per second and batch latency as one JSON line.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;
use serde_json::json;

#[derive(clap::Args)]
pub struct UsageLoad {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// An API key with billing:write and usage:write.
    #[arg(long, default_value = "tg_dev_local_only")]
    api_key: String,
    /// Workspaces the events are spread over.
    #[arg(long, default_value_t = 100)]
    workspaces: usize,
    /// Events in all.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per batch (the API takes at most 1,000).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Prefix of workspace and event ids, so runs against one database never collide.
    #[arg(long, default_value = "usage")]
    prefix: String,
}

const METRICS: [&str; 4] = ["alerts", "compute_hours", "bandwidth_gb", "storage_gb"];

pub async fn run(load: UsageLoad) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(load.senders).build()?;
    let workspaces: Vec<String> = (0..load.workspaces).map(|i| format!("{}-ws-{i}", load.prefix)).collect();
    crate::create_workspaces(&client, &load.base_url, &load.api_key, &workspaces).await?;
    // Unix seconds, a minute ago: inside any late window and clock skew.
    let timestamp = tollgate_loadgen::unix_now() - 60;
    let bodies: Vec<Vec<u8>> = (0..load.events)
        .collect::<Vec<_>>()
        .chunks(load.batch.max(1))
        .map(|chunk| {
            let events: Vec<_> = chunk
                .iter()
                .map(|&n| {
                    json!({
                        "id": format!("{}-{n}", load.prefix),
                        "workspace_id": workspaces[n % workspaces.len()],
                        "metric": METRICS[n % METRICS.len()],
                        "quantity": format!("{}.{}", n % 7, n % 100),
                        "timestamp": timestamp,
                    })
                })
                .collect();
            serde_json::to_vec(&json!({"events": events})).expect("a batch serializes")
        })
        .collect();
    let batches = bodies.len();
    let queue = Arc::new(Mutex::new(bodies));
    let url = format!("{}/v1/usage", load.base_url);
    let started = Instant::now();
    let senders: Vec<_> = (0..load.senders)
        .map(|_| {
            let (queue, client, url, key) = (queue.clone(), client.clone(), url.clone(), load.api_key.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut accepted = 0u64;
                let mut failed = 0usize;
                loop {
                    let Some(body) = queue.lock().expect("queue").pop() else { break };
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let answer: serde_json::Value = r.json().await.unwrap_or_default();
                            accepted += answer["accepted"].as_u64().unwrap_or(0);
                        }
                        _ => failed += 1,
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, accepted, failed)
            })
        })
        .collect();
    let (mut latencies, mut accepted, mut failed) = (Vec::with_capacity(batches), 0, 0);
    for sender in senders {
        let (mine, ok, not_ok) = sender.await?;
        latencies.extend(mine);
        accepted += ok;
        failed += not_ok;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let quantile = |q: f64| crate::quantile_ms(&latencies, q);
    let summary = json!({
        "events": load.events,
        "batches": batches,
        "senders": load.senders,
        "seconds": elapsed.as_secs_f64(),
        "events_per_sec": load.events as f64 / elapsed.as_secs_f64(),
        "accepted": accepted,
        "batch_p50_ms": quantile(0.50),
        "batch_p99_ms": quantile(0.99),
        "failed_batches": failed,
    });
    println!("{summary}");
    if failed > 0 || accepted != load.events as u64 {
        bail!("{failed} batches failed; {accepted} of {} events accepted", load.events);
    }
    Ok(())
}
