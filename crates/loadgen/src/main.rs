//! `tollgate-loadgen usage` posts batches of usage events (`usage_load.rs`).
//!
//! `tollgate-loadgen webhooks`: creates the workspaces of generated lifecycles through the API, pre-signs every
//! event, then delivers them to `POST /webhooks/stripe` with N concurrent senders and prints throughput and latency
//! as one JSON line. The server must run with `processor = "stripe"` and the same webhook secret.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use tollgate_loadgen::{generate, shuffled_with_duplicates, sign, unix_now, workspace_ids};

mod usage_load;

#[derive(Parser)]
#[command(about = "Load for a running tollgate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deliver generated Stripe lifecycles to /webhooks/stripe.
    Webhooks(WebhookLoad),
    /// Post batches of usage events to /v1/usage.
    Usage(usage_load::UsageLoad),
}

#[derive(clap::Args)]
struct WebhookLoad {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The server's Stripe webhook signing secret.
    #[arg(long)]
    secret: String,
    /// An API key with billing:write, to create the workspaces first.
    #[arg(long, default_value = "tg_dev_local_only")]
    api_key: String,
    /// Lifecycles (workspaces); each has 4–7 events.
    #[arg(long, default_value_t = 200)]
    workspaces: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 8)]
    senders: usize,
    /// Prefix of the workspace ids, so runs against one database never collide.
    #[arg(long, default_value = "load")]
    prefix: String,
    /// Seed of the delivery order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of events delivered twice, in percent.
    #[arg(long, default_value_t = 0)]
    duplicates: u64,
    /// Processor time of the first event, unix seconds (default: 20 days ago). Two runs that must generate the same
    /// events (a shuffled run and its in-order reference) pass the same value.
    #[arg(long)]
    base_time: Option<i64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Webhooks(load) => webhooks(load).await,
        Command::Usage(load) => usage_load::run(load).await,
    }
}

/// The `q` quantile of sorted `latencies`, in milliseconds.
fn quantile_ms(latencies: &[Duration], q: f64) -> f64 {
    let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
    latencies.get(index).copied().unwrap_or(Duration::ZERO).as_secs_f64() * 1000.0
}

/// Creates each workspace through the API (`PUT /v1/workspaces/{id}`).
async fn create_workspaces(
    client: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    ids: &[String],
) -> anyhow::Result<()> {
    for id in ids {
        let response = client
            .put(format!("{base_url}/v1/workspaces/{id}"))
            .bearer_auth(api_key)
            .json(&json!({"name": id, "owner_email": format!("owner@{id}.test")}))
            .send()
            .await
            .context("creating a workspace")?;
        if !response.status().is_success() {
            bail!("creating workspace {id}: {}", response.status());
        }
    }
    Ok(())
}

async fn webhooks(load: WebhookLoad) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(load.senders).build()?;
    create_workspaces(&client, &load.base_url, &load.api_key, &workspace_ids(&load.prefix, load.workspaces)).await?;
    let base = load.base_time.unwrap_or_else(|| unix_now() - 20 * 86_400);
    let events = generate(&load.prefix, load.workspaces, base);
    let now = unix_now();
    let signed: VecDeque<(String, String)> = shuffled_with_duplicates(&events, load.seed, load.duplicates)
        .into_iter()
        .map(|e| (sign(&load.secret, &e.body, now), e.body))
        .collect();
    let deliveries = signed.len();
    let queue = Arc::new(Mutex::new(signed));
    let url = format!("{}/webhooks/stripe", load.base_url);
    let started = Instant::now();
    let senders: Vec<_> = (0..load.senders)
        .map(|_| {
            let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut refused = 0usize;
                loop {
                    let Some((signature, body)) = queue.lock().expect("queue").pop_front() else { break };
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("Stripe-Signature", signature)
                        .body(body)
                        .send()
                        .await;
                    latencies.push(sent.elapsed());
                    if !response.is_ok_and(|r| r.status().is_success()) {
                        refused += 1;
                    }
                }
                (latencies, refused)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(deliveries);
    let mut refused = 0;
    for sender in senders {
        let (mine, not_ok) = sender.await?;
        latencies.extend(mine);
        refused += not_ok;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let quantile = |q: f64| quantile_ms(&latencies, q);
    let summary = json!({
        "deliveries": deliveries,
        "senders": load.senders,
        "seconds": elapsed.as_secs_f64(),
        "events_per_sec": deliveries as f64 / elapsed.as_secs_f64(),
        "p50_ms": quantile(0.50),
        "p99_ms": quantile(0.99),
        "max_ms": quantile(1.0),
        "not_2xx": refused,
    });
    println!("{summary}");
    if refused > 0 {
        bail!("{refused} deliveries were not acknowledged with a 2xx");
    }
    Ok(())
}
