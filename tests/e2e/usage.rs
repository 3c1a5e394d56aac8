//! Usage metering against the binary: the atomic check-and-consume with two replicas on one PostgreSQL, and a
//! stream of batches with duplicates, late and invalid events sent by concurrent clients, the server killed
//! (SIGKILL) mid-stream and the whole stream sent again — every valid event counted once, totals exact.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tollgate_e2e::{Server, postgres_database};

const KEY: &str = "tg_dev_local_only";

fn database_env(url: String) -> Vec<(&'static str, String)> {
    vec![("TOLLGATE__DATABASE__URL", url)]
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> reqwest::Result<(u16, Value)> {
    let response = client.post(format!("{base}{path}")).bearer_auth(KEY).json(&body).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn put_workspace(client: &reqwest::Client, base: &str, id: &str) {
    let body = json!({"name": id, "owner_email": format!("owner@{id}.test")});
    let response = client.put(format!("{base}/v1/workspaces/{id}")).bearer_auth(KEY).json(&body).send().await.unwrap();
    assert!(response.status().is_success());
}

async fn alerts_used(client: &reqwest::Client, base: &str) -> Value {
    post(client, base, "/v1/workspaces/acme/entitlements/check", json!({"key": "alerts_per_month"})).await.unwrap().1
}

#[test]
fn two_replicas_on_postgres_give_the_last_ten_units_to_exactly_ten_of_fifty_consumers() {
    let env = database_env(postgres_database());
    let first = Server::start(&env);
    let second = Server::start(&env);
    let bases = [first.base_url.clone(), second.base_url.clone()];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        put_workspace(&client, &bases[0], "acme").await;
        let at = Utc::now().timestamp() - 60;
        let bulk = json!({"events": [{"id": "bulk", "workspace_id": "acme", "metric": "alerts", "quantity": 490, "timestamp": at}]});
        assert_eq!(post(&client, &bases[1], "/v1/usage", bulk).await.unwrap().1["accepted"], 1);
        // Free: 500 alerts a month; 10 are left. Fifty consumers, alternating replicas, all at once.
        let racers = (0..50).map(|i| {
            let (client, base) = (client.clone(), bases[i % 2].clone());
            async move {
            let body = json!({"key": "alerts_per_month", "consume": 1, "idempotency_key": format!("c-{i}")});
                post(&client, &base, "/v1/workspaces/acme/entitlements/check", body).await.unwrap()
            }
        });
        let answers = futures::future::join_all(racers).await;
        assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
        let allowed = answers.iter().filter(|(_, a)| a["allowed"] == true && a["consumed"] == true).count();
        let refused = answers.iter().filter(|(_, a)| a["allowed"] == false && a["remaining"] == 0).count();
        assert_eq!((allowed, refused), (10, 40), "{answers:?}");
        // Both replicas see the limit reached (the other one within its cache's staleness bound, 1 s).
        for base in &bases {
            let mut used = alerts_used(&client, base).await;
            for _ in 0..30 {
                if used["used"] == 500 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                used = alerts_used(&client, base).await;
            }
            assert_eq!((used["used"].as_u64(), used["allowed"].as_bool()), (Some(500), Some(false)), "{base}");
        }
    });
    assert!(first.stop().success());
    assert!(second.stop().success());
}

/// One event of the stream, and what it should come to.
struct Planned {
    body: Value,
    /// Counted when sent (valid and first of its id).
    counts: bool,
    rejected: bool,
}

/// 30 batches of 500 over 20 workspaces and three metrics: every tenth event repeats one of an earlier batch,
/// one in twenty is late within the window, one in fifty beyond it, one in fifty has a negative quantity.
fn stream() -> Vec<Vec<Planned>> {
    let now = Utc::now();
    let mut batches = Vec::new();
    let mut sent: Vec<Value> = Vec::new();
    for b in 0..30 {
        let mut batch = Vec::new();
        for i in 0..500 {
            let n = b * 500 + i;
            if n % 10 == 9 && !sent.is_empty() {
                batch.push(Planned { body: sent[(n * 7) % sent.len()].clone(), counts: false, rejected: false });
                continue;
            }
            let (age, rejected) = match n % 100 {
                5 | 25 | 45 | 65 | 85 => (Duration::days(3), false),
                13 | 63 => (Duration::days(8), true),
                _ => (Duration::minutes(1), false),
            };
            let quantity = if n % 50 == 17 { json!("-2") } else { json!(format!("{}.{:02}", n % 9, n % 100)) };
            let metric = ["alerts", "compute_hours", "bandwidth_gb"][n % 3];
            let body = json!({
                "id": format!("s-{n}"),
                "workspace_id": format!("ws-{}", n % 20),
                "metric": metric,
                "quantity": quantity,
                "timestamp": (now - age).timestamp(),
            });
            let rejected = rejected || n % 50 == 17;
            if !rejected {
                sent.push(body.clone());
            }
            batch.push(Planned { body, counts: !rejected, rejected });
        }
        batches.push(batch);
    }
    batches
}

/// The exact total of each (workspace, metric) over the valid events, computed here in integer cents of a unit.
fn expected_totals(batches: &[Vec<Planned>]) -> BTreeMap<(String, String), i64> {
    let mut totals = BTreeMap::new();
    for planned in batches.iter().flatten().filter(|p| p.counts) {
        let quantity = planned.body["quantity"].as_str().unwrap();
        let (whole, cents) = quantity.split_once('.').unwrap();
        let hundredths = whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap();
        let key = (
            planned.body["workspace_id"].as_str().unwrap().to_owned(),
            planned.body["metric"].as_str().unwrap().to_owned(),
        );
        *totals.entry(key).or_default() += hundredths;
    }
    totals
}

async fn send_all(
    client: &reqwest::Client,
    base: &str,
    batches: &[Vec<Planned>],
    clients: usize,
) -> Vec<Option<Value>> {
    let chunks: Vec<Vec<(usize, Value)>> = (0..clients)
        .map(|c| {
            batches
                .iter()
                .enumerate()
                .filter(|(i, _)| i % clients == c)
                .map(|(i, b)| (i, json!({"events": b.iter().map(|p| p.body.clone()).collect::<Vec<_>>()})))
                .collect()
        })
        .collect();
    let runs = chunks.into_iter().map(|chunk| {
        let (client, base) = (client.clone(), base.to_owned());
        async move {
            let mut answers = Vec::new();
            for (i, body) in chunk {
                let answer = post(&client, &base, "/v1/usage", body).await.ok().filter(|(s, _)| *s == 200);
                answers.push((i, answer.map(|(_, a)| a)));
            }
            answers
        }
    });
    let mut answers: Vec<(usize, Option<Value>)> =
        futures::future::join_all(runs).await.into_iter().flatten().collect();
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, a)| a).collect()
}

#[test]
fn a_stream_sent_again_after_a_kill_counts_every_event_once_to_the_cent() {
    let env = database_env(postgres_database());
    let batches = stream();
    let expected = expected_totals(&batches);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut server = Server::start(&env);
    let client = reqwest::Client::new();
    runtime.block_on(async {
        for w in 0..20 {
            put_workspace(&client, &server.base_url, &format!("ws-{w}")).await;
        }
    });
    // Three clients send; the server is killed once about a third of the batches went out.
    let base = server.base_url.clone();
    let (killer_client, killer_base) = (client.clone(), base.clone());
    runtime.block_on(async {
        let sending = send_all(&client, &base, &batches, 3);
        let killing = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let usage =
                    killer_client.get(format!("{killer_base}/v1/workspaces/ws-0/usage")).bearer_auth(KEY).send().await;
                let events: u64 = match usage {
                    Ok(r) => r.json::<Value>().await.map_or(0, |u| {
                        u["metrics"].as_array().map_or(0, |m| m.iter().map(|l| l["events"].as_u64().unwrap_or(0)).sum())
                    }),
                    Err(_) => 0,
                };
                if events >= 200 {
                    break;
                }
            }
        };
        let (_, ()) = tokio::join!(sending, async {
            killing.await;
            server.child.kill().expect("kill -9");
        });
    });
    let _ = server.child.wait();
    let server = Server::start(&env);
    let answers = runtime.block_on(send_all(&client, &server.base_url, &batches, 3));
    // Sent again whole: each batch is answered, every valid event is now a duplicate or accepted (if the first
    // run never got it in), each invalid one rejected — and the totals are exact.
    let rejected: u64 =
        answers.iter().map(|a| a.as_ref().expect("every batch answered")["rejected"].as_u64().unwrap()).sum();
    assert_eq!(rejected, batches.iter().flatten().filter(|p| p.rejected).count() as u64);
    runtime.block_on(async {
        for w in 0..20 {
            let workspace = format!("ws-{w}");
            let url = format!(
                "{}/v1/workspaces/{workspace}/usage?from={}&to={}",
                server.base_url,
                (Utc::now() - Duration::days(30))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    .replace('+', "%2B"),
                (Utc::now() + Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true).replace('+', "%2B")
            );
            let usage: Value = client.get(url).bearer_auth(KEY).send().await.unwrap().json().await.unwrap();
            for line in usage["metrics"].as_array().unwrap() {
                let metric = line["metric"].as_str().unwrap().to_owned();
                let want = expected.get(&(workspace.clone(), metric.clone())).copied().unwrap_or(0);
                let got: f64 = line["quantity"].as_str().unwrap().parse().unwrap();
                assert_eq!((got * 100.0).round() as i64, want, "{workspace} {metric}: {usage}");
            }
        }
    });
    assert!(server.stop().success());
}
