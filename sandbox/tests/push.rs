//! OneTouch push scenarios: manual decisions, decisions after N polls, requests that never
//! resolve, expiry, scoping, and poll counting.

mod common;

use std::time::Duration;

use authy_sandbox::{FaultScope, PushScenario, PushStatus, Sandbox};
use common::*;

fn create(sb: &Sandbox, id: u64, extra: &str) -> String {
    let r = post_form(sb, &format!("/onetouch/json/users/{id}/approval_requests"), &format!("message=Login{extra}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["approval_request"]["uuid"].as_str().expect("uuid").to_owned()
}

fn poll(sb: &Sandbox, uuid: &str) -> String {
    let r = get(sb, &format!("/onetouch/json/approval_requests/{uuid}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["approval_request"]["status"].as_str().expect("status").to_owned()
}

#[test]
fn manual_requests_stay_pending_until_decided() {
    let (sb, id) = sandbox_with_user();
    let uuid = create(&sb, id, "");
    assert_eq!(poll(&sb, &uuid), "pending");
    assert_eq!(poll(&sb, &uuid), "pending");
    assert!(sb.decide_push(&uuid, PushStatus::Approved));
    assert_eq!(poll(&sb, &uuid), "approved");
    let v = get(&sb, &format!("/onetouch/json/approval_requests/{uuid}")).json();
    assert!(v["approval_request"]["processed_at"].is_string());
    let rec = &sb.approval_requests()[0];
    assert_eq!(rec.polls, 4);
    assert!(rec.decided_at.is_some());
    assert!(!sb.decide_push("no-such-uuid", PushStatus::Denied));

    let other = create(&sb, id, "2");
    assert!(sb.decide_push(&other, PushStatus::Denied));
    assert_eq!(poll(&sb, &other), "denied");
    let third = create(&sb, id, "3");
    assert!(sb.decide_push(&third, PushStatus::Expired));
    assert_eq!(poll(&sb, &third), "expired");
}

#[test]
fn after_polls_reveals_the_status_on_the_nth_poll() {
    let (sb, id) = sandbox_with_user();
    sb.set_push_scenario(FaultScope::Global, PushScenario::AfterPolls { status: PushStatus::Denied, polls: 3 });
    let uuid = create(&sb, id, "");
    assert_eq!(poll(&sb, &uuid), "pending");
    assert_eq!(poll(&sb, &uuid), "pending");
    assert_eq!(poll(&sb, &uuid), "denied");
    assert_eq!(poll(&sb, &uuid), "denied");
    assert_eq!(sb.approval_requests()[0].polls, 4);

    sb.set_push_scenario(FaultScope::Global, PushScenario::AfterPolls { status: PushStatus::Approved, polls: 0 });
    let uuid = create(&sb, id, "b");
    assert_eq!(poll(&sb, &uuid), "approved");
}

#[test]
fn never_stays_pending_and_ignores_decisions_and_expiry() {
    let (sb, id) = sandbox_with_user();
    sb.set_push_scenario(FaultScope::User(id), PushScenario::Never);
    let uuid = create(&sb, id, "&seconds_to_expire=1");
    assert!(!sb.decide_push(&uuid, PushStatus::Approved));
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..5 {
        assert_eq!(poll(&sb, &uuid), "pending");
    }
    // Back to manual: now the (overdue) request expires.
    sb.set_push_scenario(FaultScope::User(id), PushScenario::Manual);
    assert_eq!(poll(&sb, &uuid), "expired");
}

#[test]
fn requests_expire_after_seconds_to_expire() {
    let (sb, id) = sandbox_with_user();
    let short = create(&sb, id, "&seconds_to_expire=1");
    let forever = create(&sb, id, "&seconds_to_expire=0");
    assert_eq!(poll(&sb, &short), "pending");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(poll(&sb, &short), "expired");
    assert_eq!(poll(&sb, &forever), "pending");
    let recs = sb.approval_requests();
    assert_eq!(recs[0].status, PushStatus::Expired);
    assert!(recs[0].decided_at.is_some());
    // An expired request stays expired.
    assert_eq!(poll(&sb, &short), "expired");
}

#[test]
fn expiry_is_visible_without_polling() {
    let (sb, id) = sandbox_with_user();
    let uuid = create(&sb, id, "&seconds_to_expire=1");
    std::thread::sleep(Duration::from_millis(1100));
    let rec = sb.approval_requests().into_iter().find(|a| a.uuid == uuid).expect("record");
    assert_eq!(rec.status, PushStatus::Expired);
    assert_eq!(rec.polls, 0);
}

#[test]
fn a_user_scenario_overrides_the_global_one() {
    let (sb, alice) = sandbox_with_user();
    let bob = sb.add_user("bob@example.com", "555-000-0002", 1);
    sb.set_push_scenario(FaultScope::Global, PushScenario::AfterPolls { status: PushStatus::Approved, polls: 1 });
    sb.set_push_scenario(FaultScope::User(bob), PushScenario::AfterPolls { status: PushStatus::Denied, polls: 1 });
    let a = create(&sb, alice, "");
    let b = create(&sb, bob, "");
    assert_eq!(poll(&sb, &a), "approved");
    assert_eq!(poll(&sb, &b), "denied");
}

#[test]
fn unknown_uuid_polls_are_404_60049() {
    let (sb, _) = sandbox_with_user();
    let r = get(&sb, "/onetouch/json/approval_requests/00000000-0000-4000-8000-000000000000");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        r#"{"message":"Approval request not found: 00000000-0000-4000-8000-000000000000","success":false,"errors":{},"error_code":"60049"}"#
    );
}
