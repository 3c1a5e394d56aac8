//! Billing over time through the binary, on a test clock, with a real SMTP server and a webhook receiver: a
//! subscription renews at period end (a second receipt), then the card declines at the next renewal and the
//! dunning schedule runs day by day to day 21 — each step's email and webhook exactly once, the paid plan kept
//! through the grace period, free from the restrict step, canceled at day 21 — while a second workspace pays its
//! open invoice on day 10 and is lifted back at once with no later step. On SQLite, on PostgreSQL with two
//! replicas making every advance at the same time, and with one of the two killed (SIGKILL) mid-run.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::mailbox::messages_to;
use tollgate_e2e::{Server, postgres_database};

use crate::outbox::{Receiver, delivering_to, eventually, owner_of, subscribe, unique};
use crate::time_travel::{call, clock_now, plan};

fn on_a_test_clock(receiver: &Receiver, database: String) -> Vec<(&'static str, String)> {
    let mut env = delivering_to(receiver, database);
    env.push(("TOLLGATE__CLOCK__MODE", "test".into()));
    // Only the advances renew, so each renewal's dunning step runs at the stop that made it.
    env.push(("TOLLGATE__SANDBOX__RENEWAL_INTERVAL_SECS", "0".into()));
    env
}

/// Advances every replica to `to` at once: each stop's renewals and steps are raced for by all of them. A replica
/// that starts after another already got there is told `clock_not_forward`, which is the shared clock working.
async fn advance_all(client: &reqwest::Client, bases: &[String], to: DateTime<Utc>) {
    let advance =
        |base: &String| call(client, Method::POST, format!("{base}/v1/admin/clock/advance"), Some(json!({"to": to})));
    let answers = join_all(bases.iter().map(advance)).await;
    assert!(answers.iter().any(|(status, _)| *status == 200), "one replica advanced: {answers:?}");
    for (status, answer) in &answers {
        assert!(*status == 200 || answer["code"] == "clock_not_forward", "{answer}");
    }
}

async fn workspace(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let (status, workspace) = call(client, Method::GET, format!("{base}/v1/workspaces/{id}"), None).await;
    assert_eq!(status, 200, "{workspace}");
    workspace
}

fn period_end(workspace: &Value) -> DateTime<Utc> {
    workspace["current_period_end"].as_str().unwrap_or_else(|| panic!("no period: {workspace}")).parse().unwrap()
}

async fn invoice_statuses(client: &reqwest::Client, base: &str, id: &str) -> Vec<String> {
    let (status, page) = call(client, Method::GET, format!("{base}/v1/workspaces/{id}/invoices"), None).await;
    assert_eq!(status, 200, "{page}");
    page["invoices"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap().to_owned()).collect()
}

/// How many emails the owner of `id` got, by subject: distinct messages (by `Message-ID`, which a message sent again
/// keeps), and all that arrived.
fn subjects_and_arrivals(id: &str) -> (BTreeMap<String, usize>, usize) {
    let received = messages_to(&owner_of(id));
    let mut seen = std::collections::BTreeSet::new();
    let mut counts = BTreeMap::new();
    for message in &received {
        let parsed = message.parsed();
        if seen.insert(parsed.message_id().unwrap_or("").to_owned()) {
            *counts.entry(parsed.subject().unwrap_or("").to_owned()).or_default() += 1;
        }
    }
    (counts, received.len())
}

fn subjects(id: &str) -> BTreeMap<String, usize> {
    subjects_and_arrivals(id).0
}

/// The subjects (and counts) a team's owner must have received, whatever else came.
fn expected(id: &str, receipts: usize, steps: &[&str]) -> Vec<(String, usize)> {
    let team = format!("Team {id}");
    let mut wanted = vec![
        (format!("Receipt for {team}: 49.00 USD paid"), receipts),
        (format!("Action needed: the payment for {team} failed"), 1),
    ];
    for step in steps {
        wanted.push((
            match *step {
                "reminder" => format!("Reminder: the payment for {team} is still due"),
                "urgent" => format!("Urgent: {team} has an unpaid invoice"),
                "restrict" => format!("{team} is limited to the free plan until the invoice is paid"),
                "final_warning" => format!("Final notice: the subscription of {team} will be canceled"),
                "cancel" => format!("The subscription of {team} was canceled for non-payment"),
                other => panic!("unknown step {other}"),
            },
            1,
        ));
    }
    wanted
}

fn has_all(id: &str, wanted: &[(String, usize)]) -> bool {
    let got = subjects(id);
    wanted.iter().all(|(subject, n)| got.get(subject).copied().unwrap_or(0) >= *n)
}

/// The events the backend received for workspace `id`, each once by its `id` (a redelivery keeps it).
fn events_of(receiver: &Receiver, id: &str) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    receiver
        .events("ok")
        .into_iter()
        .filter(|e| e["data"]["workspace_id"] == id && seen.insert(e["id"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// The `billing.dunning.step` webhooks `id`'s backend received, by step, in the order received.
fn steps_announced(receiver: &Receiver, id: &str) -> Vec<String> {
    events_of(receiver, id)
        .iter()
        .filter(|e| e["type"] == "billing.dunning.step")
        .map(|e| e["data"]["step"].as_str().unwrap().to_owned())
        .collect()
}

fn topic_count(receiver: &Receiver, id: &str, topic: &str) -> usize {
    events_of(receiver, id).iter().filter(|e| e["type"] == topic).count()
}

/// The scenario on `bases`; with `doomed` (the last replica), that replica is killed (SIGKILL) in the middle of the
/// day-12 advance and the rest runs on the others: nothing is lost, nothing done twice — an email a dead worker may
/// have handed to the SMTP server before it could mark it is sent again with its `Message-ID`, so it is counted
/// once by that id.
async fn the_whole_dunning_path(bases: &[String], receiver: &Receiver, mut doomed: Option<&mut Server>) {
    let client = reqwest::Client::new();
    let killing = doomed.is_some();
    let mut live = bases.to_vec();
    let first = &bases[0];
    let last = bases.last().unwrap();
    let (failing, recovering) = (unique("dun"), unique("rec"));
    subscribe(&client, first, &failing).await;
    subscribe(&client, last, &recovering).await;

    // A month on: the sandbox renews both at period end and each owner gets a second receipt.
    let renewal_at = period_end(&workspace(&client, first, &failing).await)
        .max(period_end(&workspace(&client, first, &recovering).await));
    // Exactly to the period end the API shows, as the README does: the renewal is due then, not a moment later.
    advance_all(&client, bases, renewal_at).await;
    for id in [&failing, &recovering] {
        let receipt = (format!("Receipt for Team {id}: 49.00 USD paid"), 2);
        eventually("the renewal's receipt", || has_all(id, std::slice::from_ref(&receipt)));
        assert_eq!(invoice_statuses(&client, first, id).await, ["paid", "paid"], "{id}: renewed once");
        let renewed = workspace(&client, last, id).await;
        assert_eq!(renewed["subscription_status"], "active");
        assert!(period_end(&renewed) > renewal_at, "the next period: {renewed}");
    }

    // Both cards decline at the next renewal (a sandbox control): past due, a case opened, its day-0 step run.
    for id in [&failing, &recovering] {
        let url = format!("{first}/v1/admin/sandbox/workspaces/{id}/card");
        let (status, card) = call(&client, Method::PUT, url, Some(json!({"decline_next_charge": true}))).await;
        assert_eq!((status, card["decline_next_charge"].as_bool()), (200, Some(true)), "{card}");
    }
    let decline_at = period_end(&workspace(&client, first, &failing).await)
        .max(period_end(&workspace(&client, first, &recovering).await));
    advance_all(&client, bases, decline_at).await;
    let mut opened = BTreeMap::new();
    for id in [&failing, &recovering] {
        let declined = workspace(&client, last, id).await;
        assert_eq!(declined["subscription_status"], "past_due", "{declined}");
        let case = &declined["dunning"];
        assert_eq!(case["steps_run"], 1, "the day-0 reminder ran at once: {declined}");
        opened.insert(id.clone(), case["opened_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap());
        let (_, card) =
            call(&client, Method::GET, format!("{first}/v1/admin/sandbox/workspaces/{id}/card"), None).await;
        assert_eq!(card["decline_next_charge"], false, "used up: {card}");
        assert_eq!(card["open_invoices"].as_array().unwrap().len(), 1, "{card}");
        assert_eq!(plan(&client, first, id).await.0, "pro", "the grace period keeps the paid plan");
    }

    // Day by day to day 21, from the failing workspace's case.
    let day_zero = opened[&failing];
    for day in 1..=21 {
        let to = day_zero + chrono::Duration::days(day) + chrono::Duration::minutes(1);
        match doomed.take_if(|_| day == 12) {
            Some(server) => {
                let dying = client
                    .post(format!("{}/v1/admin/clock/advance", live[live.len() - 1]))
                    .bearer_auth(crate::KEY)
                    .json(&json!({"to": to}))
                    .send();
                let kill = async {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    server.child.kill().unwrap();
                    server.child.wait().unwrap();
                };
                let survivors = live[..live.len() - 1].to_vec();
                let (_, _, ()) = tokio::join!(advance_all(&client, &survivors, to), dying, kill);
                live = survivors;
            }
            None => advance_all(&client, &live, to).await,
        }
        let base = &live[usize::try_from(day).unwrap() % live.len()];
        let failing_plan = plan(&client, base, &failing).await.0;
        match day {
            ..=6 => assert_eq!(failing_plan, "pro", "day {day}: still in the grace period"),
            7..=20 => assert_eq!(failing_plan, "free", "day {day}: restricted from day 7"),
            _ => {}
        }
        if day == 10 {
            let url = format!("{base}/v1/admin/sandbox/workspaces/{recovering}/pay-open-invoice");
            let (status, paid) = call(&client, Method::POST, url, None).await;
            assert_eq!(status, 200, "{paid}");
            let types: Vec<&str> =
                paid["deliveries"].as_array().unwrap().iter().map(|d| d["event_type"].as_str().unwrap()).collect();
            assert_eq!(types, ["invoice.paid", "customer.subscription.updated"], "{paid}");
            assert_eq!(plan(&client, base, &recovering).await.0, "pro", "lifted at once");
            let lifted = workspace(&client, base, &recovering).await;
            assert_eq!((lifted["dunning"].is_null(), lifted["subscription_status"].as_str()), (true, Some("active")));
        }
        if day > 10 {
            assert_eq!(plan(&client, base, &recovering).await.0, "pro", "day {day}: recovered stays recovered");
        }
    }
    let (first, last) = (&live[0], live.last().unwrap());
    let ended = workspace(&client, first, &failing).await;
    assert_eq!(ended["subscription_status"], "canceled", "canceled at day 21: {ended}");
    assert!(ended["dunning"].is_null(), "the case closed with the cancel: {ended}");
    assert_eq!(plan(&client, last, &failing).await.0, "free");

    // Every step's email and webhook, exactly once; none after the recovery.
    let all_steps = ["reminder", "urgent", "restrict", "final_warning", "cancel"];
    let failing_mail = expected(&failing, 2, &all_steps);
    let recovering_mail = expected(&recovering, 3, &all_steps[..3]);
    eventually("every email", || has_all(&failing, &failing_mail) && has_all(&recovering, &recovering_mail));
    eventually("every step's webhook", || {
        steps_announced(receiver, &failing).len() >= 5
            && topic_count(receiver, &recovering, "billing.dunning.closed") >= 1
    });
    // Give the workers time to (wrongly) send anything twice, then count exactly.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (id, wanted) in [(&failing, &failing_mail), (&recovering, &recovering_mail)] {
        let (got, arrivals) = subjects_and_arrivals(id);
        for (subject, n) in wanted {
            assert_eq!(got.get(subject), Some(n), "{id}: {subject:?} in {got:#?}");
        }
        assert!(got.values().all(|n| *n <= 3), "{id}: nothing repeated: {got:#?}");
        if !killing {
            assert_eq!(arrivals, got.values().sum::<usize>(), "{id}: no message arrived twice");
        }
    }
    assert_eq!(steps_announced(receiver, &failing), all_steps, "each step announced once, in order");
    assert_eq!(steps_announced(receiver, &recovering), all_steps[..3], "no step after the payment");
    assert_eq!(topic_count(receiver, &recovering, "billing.dunning.closed"), 1);
    assert_eq!(topic_count(receiver, &failing, "billing.dunning.closed"), 0, "its case ended with the cancel");
    if !killing {
        let mut ids: Vec<String> = receiver.events("ok").iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        let all = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all, "no webhook delivered twice");
    }
}

#[test]
fn renewal_decline_and_every_dunning_step_run_once_on_a_test_clock() {
    let receiver = Receiver::start();
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let server = Server::start(&on_a_test_clock(&receiver, format!("sqlite://{}?mode=rwc", db.display())));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(the_whole_dunning_path(std::slice::from_ref(&server.base_url), &receiver, None));
    assert!(server.stop().success());
}

#[test]
fn two_replicas_on_postgres_racing_every_advance_run_each_renewal_and_step_once() {
    let receiver = Receiver::start();
    let env = on_a_test_clock(&receiver, postgres_database());
    let first = Server::start(&env);
    let second = Server::start(&env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bases = [first.base_url.clone(), second.base_url.clone()];
    runtime.block_on(the_whole_dunning_path(&bases, &receiver, None));
    assert!(first.stop().success());
    assert!(second.stop().success());
}

#[test]
fn a_replica_killed_mid_run_loses_no_step_email_or_webhook_and_repeats_none() {
    let receiver = Receiver::start();
    let mut env = on_a_test_clock(&receiver, postgres_database());
    // What the killed replica held is free again within seconds: a short lease, and timeouts within it.
    env.push(("TOLLGATE__OUTBOX__LEASE_SECS", "2".into()));
    env.push(("TOLLGATE__OUTBOUND_WEBHOOKS__TIMEOUT_MS", "1000".into()));
    env.push(("TOLLGATE__NOTIFICATIONS__EMAIL__SMTP__TIMEOUT_MS", "1000".into()));
    let first = Server::start(&env);
    let mut second = Server::start(&env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bases = [first.base_url.clone(), second.base_url.clone()];
    runtime.block_on(the_whole_dunning_path(&bases, &receiver, Some(&mut second)));
    assert!(first.stop().success());
}

/// The controls answer in problem+json: a workspace the sandbox never saw, no open invoice, a bad body.
#[test]
fn sandbox_controls_refuse_what_they_cannot_do_by_name() {
    let receiver = Receiver::start();
    let db = std::env::temp_dir().join(format!("tollgate-e2e-{}.db", uuid::Uuid::new_v4().simple()));
    let server = Server::start(&on_a_test_clock(&receiver, format!("sqlite://{}?mode=rwc", db.display())));
    let base = server.base_url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |id: &str, rest: &str| format!("{base}/v1/admin/sandbox/workspaces/{id}/{rest}");
        let (status, problem) = call(&client, Method::GET, url("nobody", "card"), None).await;
        assert_eq!((status, problem["code"].as_str()), (404, Some("sandbox_customer_not_found")), "{problem}");
        let id = unique("ctl");
        subscribe(&client, &base, &id).await;
        let (status, problem) = call(&client, Method::POST, url(&id, "pay-open-invoice"), None).await;
        assert_eq!((status, problem["code"].as_str()), (409, Some("no_open_invoice")), "{problem}");
        let (status, problem) = call(&client, Method::PUT, url(&id, "card"), Some(json!({"decline": "yes"}))).await;
        assert_eq!(status, 400, "{problem}");
        let (status, renewed) = call(&client, Method::POST, format!("{base}/v1/admin/sandbox/renew"), None).await;
        assert_eq!((status, renewed["renewal_deliveries"].as_u64()), (200, Some(0)), "nothing is due yet");
        let now = clock_now(&client, &base).await;
        assert!(period_end(&workspace(&client, &base, &id).await) > now);
        let anonymous = client.get(url(&id, "card")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);
    });
    assert!(server.stop().success());
}
