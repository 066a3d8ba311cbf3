//! The Authy endpoints over real HTTPS: success and error bodies byte for byte, statuses,
//! authentication, parameter sources, the dot-segment emulation and the request log.

mod common;

use authy_sandbox::{Sandbox, SandboxConfig};
use common::*;

/// A mid-step instant, so ±1-step arithmetic below never straddles a boundary.
const T: u64 = 1_700_000_115;

fn user_not_found_body() -> &'static str {
    r#"{"message":"User not found.","success":false,"errors":{"message":"User not found."},"error_code":"60026"}"#
}

#[test]
fn users_new_creates_a_user_and_the_same_phone_gives_the_same_id() {
    let sb = Sandbox::start(SandboxConfig::default()).expect("start");
    let r = post_form(
        &sb,
        "/protected/json/users/new",
        "user%5Bemail%5D=bob%40example.com&user%5Bcellphone%5D=555-987-6543&user%5Bcountry_code%5D=1",
    );
    assert_eq!(r.status, 200);
    let id = r.json()["user"]["id"].as_u64().expect("numeric id");
    assert_eq!(r.body, format!(r#"{{"message":"User created successfully.","user":{{"id":{id}}},"success":true}}"#));
    // JSON body, other email, same phone with other separators: same id (docs/authy-api.md §1).
    let r = post_json(
        &sb,
        "/protected/json/users/new",
        r#"{"user":{"email":"bob2@example.com","cellphone":"555.987.6543","country_code":"1"}}"#,
    );
    assert_eq!(r.json()["user"]["id"].as_u64(), Some(id));
    // PHP-style: the fields in the query string of a POST.
    let r = send(
        &sb,
        "POST",
        "/protected/json/users/new?user[email]=c%40example.com&user[cellphone]=5559876543&user[country_code]=1",
        Some(sb.api_key()),
        None,
    );
    assert_eq!(r.json()["user"]["id"].as_u64(), Some(id));
    assert_eq!(sb.add_user("d@example.com", "555 987 6543", 1), id);
    assert_ne!(sb.add_user("d@example.com", "555 987 6543", 44), id);
}

#[test]
fn users_new_rejects_invalid_fields_with_60027() {
    let sb = Sandbox::start(SandboxConfig::default()).expect("start");
    let r = post_form(
        &sb,
        "/protected/json/users/new",
        "user[email]=ok%40example.com&user[cellphone]=12ab&user[country_code]=1",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        r#"{"message":"User was not valid","success":false,"errors":{"cellphone":"is invalid","message":"User was not valid"},"cellphone":"is invalid","error_code":"60027"}"#
    );
    let r = post_form(&sb, "/protected/json/users/new", "");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        r#"{"message":"User was not valid","success":false,"errors":{"email":"is invalid","cellphone":"is invalid","country_code":"is invalid","message":"User was not valid"},"email":"is invalid","cellphone":"is invalid","country_code":"is invalid","error_code":"60027"}"#
    );
}

#[test]
fn user_status_has_the_documented_shape() {
    let (sb, id) = sandbox_with_user();
    let r = get(&sb, &format!("/protected/json/users/{id}/status"));
    assert_eq!(r.status, 200);
    let prefix = format!(
        r#"{{"status":{{"authy_id":{id},"confirmed":false,"registered":true,"country_code":1,"phone_number":"XXX-XXX-1185","email":"alice@example.com","devices":["android"],"has_hard_token":false,"account_disabled":false,"detailed_devices":[{{"device_type":"authy","os_type":"android","registration_device_id":null,"registration_method":null,"device_id":"#
    );
    assert!(r.body.starts_with(&prefix), "{}", r.body);
    assert!(r.body.ends_with(r#"}],"deleted_devices":[]},"message":"User status.","success":true}"#), "{}", r.body);
    sb.set_user_has_app(id, false);
    let v = get(&sb, &format!("/protected/json/users/{id}/status")).json();
    assert_eq!(v["status"]["devices"], serde_json::json!([]));

    for unknown in ["999", "tony", "%2e%2e"] {
        let r = get(&sb, &format!("/protected/json/users/{unknown}/status"));
        assert_eq!(r.status, 404, "{unknown}");
        assert_eq!(r.body, user_not_found_body());
    }
}

#[test]
fn remove_and_its_legacy_aliases() {
    let (sb, id) = sandbox_with_user();
    let r = post_form(&sb, &format!("/protected/json/users/{id}/remove"), "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"{"message":"User was added to remove.","success":true}"#);
    let v = get(&sb, &format!("/protected/json/users/{id}/status")).json();
    assert_eq!(v["status"]["account_disabled"], true);
    // Tokens keep verifying until the real deletion (docs/authy-api.md §3).
    let tok = sb.current_token(id).expect("token");
    let r = get(&sb, &format!("/protected/json/verify/{tok}/{id}?force=true"));
    assert_eq!(r.status, 200);

    let r = post_form(&sb, &format!("/protected/json/users/{id}/delete"), "");
    assert_eq!(r.body, r#"{"message":"User was added to remove.","success":true}"#);
    let r = post_form(&sb, &format!("/protected/json/users/delete/{id}"), "");
    assert_eq!(r.body, r#"{"message":"User removed from application","success":true}"#);
    let r = post_form(&sb, "/protected/json/users/4242/remove", "");
    assert_eq!((r.status, r.body.as_str()), (404, user_not_found_body()));
    // Re-registering the phone re-activates the same id.
    assert_eq!(sb.add_user("alice@example.com", "5551231185", 1), id);
    let v = get(&sb, &format!("/protected/json/users/{id}/status")).json();
    assert_eq!(v["status"]["account_disabled"], false);
}

#[test]
fn sms_is_sent_with_force_and_ignored_for_app_users_without_it() {
    let (sb, id) = sandbox_with_user();
    let r = get(&sb, &format!("/protected/json/sms/{id}?force=true"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"{"success":true,"message":"SMS token was sent","cellphone":"+1-XXX-XXX-XX85"}"#);
    let r = get(&sb, &format!("/protected/json/sms/{id}"));
    assert_eq!(
        r.body,
        r#"{"success":true,"ignored":true,"device":"android","cellphone":"+1-XXX-XXX-XX85","message":"Ignored: SMS is not needed for smartphones. Pass force=true if you want to actually send it anyway."}"#
    );
    sb.set_user_has_app(id, false);
    let r = get(&sb, &format!("/protected/json/sms/{id}"));
    assert_eq!(r.json()["message"], "SMS token was sent");
    assert!(r.json().get("ignored").is_none());

    sb.set_sms_enabled(false);
    let r = get(&sb, &format!("/protected/json/sms/{id}?force=true"));
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        r#"{"success":false,"message":"The text-message addon is not enabled for this app. Upgrade at least to Starter Plan to use SMS, see https://www.authy.com/pricing","errors":{"message":"The text-message addon is not enabled for this app."},"error_code":"60007"}"#
    );
    let r = get(&sb, "/protected/json/sms/31337?force=true");
    assert_eq!((r.status, r.body.as_str()), (404, user_not_found_body()));
}

#[test]
fn call_is_started_with_force_and_ignored_for_app_users_without_it() {
    let (sb, id) = sandbox_with_user();
    let r = get(&sb, &format!("/protected/json/call/{id}?force=true"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"success":true,"message":"Call started...","cellphone":"+1-XXX-XXX-XX85"}"#)
    );
    let r = get(&sb, &format!("/protected/json/call/{id}"));
    assert_eq!(
        r.body,
        r#"{"success":true,"ignored":true,"device":"android","cellphone":"+1-XXX-XXX-XX85","message":"Call ignored. User is using  App Tokens and this call is not necessary. Pass force=true if you still want to call users that are using the App."}"#
    );
    sb.set_calls_enabled(false);
    let r = get(&sb, &format!("/protected/json/call/{id}?force=true"));
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error_code"], "60006");
    assert_eq!(
        r.json()["message"],
        "The calls add-on is not enabled on this App. To enable please contact support@authy.com"
    );
    let r = get(&sb, "/protected/json/call/31337?force=true");
    assert_eq!(r.status, 404);
}

#[test]
fn verify_accepts_the_current_token_with_string_success_in_documented_order() {
    let (sb, id) = sandbox_with_user();
    sb.set_clock(Some(T));
    let tok = sb.token_at(id, T).expect("token");
    assert_eq!(tok.len(), 7);
    assert_eq!(sb.current_token(id).as_deref(), Some(tok.as_str()));
    let r = get(&sb, &format!("/protected/json/verify/{tok}/{id}?force=true"));
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .starts_with(r#"{"message":"Token is valid.","token":"is valid","success":"true","device":{"id":null,"os_type":"android","registration_date":"#),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#""token":"is valid""#));
    assert_eq!(r.json()["success"], serde_json::json!("true"));
    assert!(r.header("content-type").expect("ct").starts_with("application/json"));
    // A successful verify marks the user confirmed.
    let v = get(&sb, &format!("/protected/json/users/{id}/status")).json();
    assert_eq!(v["status"]["confirmed"], true);
}

#[test]
fn verify_rejects_a_reused_token_with_60019() {
    let (sb, id) = sandbox_with_user();
    sb.set_clock(Some(T));
    let tok = sb.token_at(id, T).expect("token");
    let path = format!("/protected/json/verify/{tok}/{id}?force=true");
    assert_eq!(get(&sb, &path).status, 200);
    let r = get(&sb, &path);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        r#"{"message":"Token is invalid. Token was used recently.","token":"is invalid","success":false,"errors":{"message":"Token is invalid. Token was used recently."},"error_code":"60019"}"#
    );
}

#[test]
fn verify_window_is_one_step_each_side() {
    let (sb, id) = sandbox_with_user();
    sb.set_clock(Some(T));
    let window: Vec<String> =
        [-30i64, 0, 30].iter().map(|o| sb.token_at(id, T.checked_add_signed(*o).expect("t")).expect("token")).collect();
    for (offset, ok) in [(-30i64, true), (30, true), (-60, false), (60, false), (-3600, false)] {
        let tok = sb.token_at(id, T.checked_add_signed(offset).expect("time")).expect("token");
        if !ok && window.contains(&tok) {
            continue; // a 1-in-10^7 collision with a window code; nothing to test
        }
        let r = get(&sb, &format!("/protected/json/verify/{tok}/{id}?force=true"));
        assert_eq!(r.status == 200, ok, "offset {offset}: {}", r.body);
    }
}

#[test]
fn verify_rejects_wrong_and_malformed_tokens_with_60020() {
    let (sb, id) = sandbox_with_user();
    sb.set_clock(Some(T));
    let expected = r#"{"message":"Token is invalid","token":"is invalid","success":false,"errors":{"message":"Token is invalid"},"error_code":"60020"}"#;
    let good = sb.token_at(id, T).expect("token");
    let malformed = [
        wrong_token(&sb, id, T),
        good[..6].to_owned(),
        format!("{good}0"),
        "abcdefg".to_owned(),
        "%2B123456".to_owned(),
        "0000000".to_owned(),
        "..".to_owned(),
    ];
    for tok in malformed {
        if tok == good {
            continue;
        }
        let r = get(&sb, &format!("/protected/json/verify/{tok}/{id}?force=true"));
        assert_eq!((r.status, r.body.as_str()), (401, expected), "token {tok}");
    }
    let r = get(&sb, &format!("/protected/json/verify/{good}/98765?force=true"));
    assert_eq!((r.status, r.body.as_str()), (404, user_not_found_body()));
}

#[test]
fn verify_without_force_lets_unregistered_users_in_with_any_digits() {
    let (sb, id) = sandbox_with_user();
    sb.set_clock(Some(T));
    sb.set_user_registered(id, false);
    let wrong = wrong_token(&sb, id, T);
    let r = get(&sb, &format!("/protected/json/verify/{wrong}/{id}"));
    assert_eq!(r.status, 200, "legacy behaviour: {}", r.body);
    assert_eq!(r.json()["token"], "is valid");
    // force=true enforces the check; letters are never "valid".
    let r = get(&sb, &format!("/protected/json/verify/{wrong}/{id}?force=true"));
    assert_eq!(r.status, 401);
    let r = get(&sb, &format!("/protected/json/verify/abc/{id}"));
    assert_eq!(r.status, 401);
    // A registered user is checked with or without force.
    sb.set_user_registered(id, true);
    let r = get(&sb, &format!("/protected/json/verify/{wrong}/{id}"));
    assert_eq!(r.status, 401);
}

#[test]
fn api_key_is_required_in_header_or_legacy_query() {
    let (sb, id) = sandbox_with_user();
    let expected =
        r#"{"message":"Invalid API key","success":false,"errors":{"message":"Invalid API key"},"error_code":"60001"}"#;
    let path = format!("/protected/json/users/{id}/status");
    let r = send(&sb, "GET", &path, None, None);
    assert_eq!((r.status, r.body.as_str()), (401, expected));
    let r = send(&sb, "GET", &path, Some("not-the-key"), None);
    assert_eq!((r.status, r.body.as_str()), (401, expected));
    let r = send(&sb, "GET", &format!("{path}?api_key={}", sb.api_key()), None, None);
    assert_eq!(r.status, 200);
    // Even unknown routes and onetouch want the key first.
    let r = send(&sb, "GET", "/nope", None, None);
    assert_eq!(r.status, 401);
    let keys: Vec<Option<String>> = sb.requests().into_iter().map(|r| r.api_key).collect();
    assert_eq!(keys, vec![None, Some("not-the-key".to_owned()), Some(sb.api_key().to_owned()), None]);
}

#[test]
fn app_details_and_stats() {
    let (sb, _id) = sandbox_with_user();
    let r = get(&sb, "/protected/json/app/details");
    assert_eq!(
        r.body,
        r#"{"app":{"name":"Authy Sandbox","plan":"pay_as_you_go","sms_enabled":true,"phone_calls_enabled":true,"app_id":1234,"onetouch_enabled":true},"message":"Application information.","success":true}"#
    );
    sb.set_sms_enabled(false);
    assert_eq!(get(&sb, "/protected/json/app/details").json()["app"]["sms_enabled"], false);
    let v = get(&sb, "/protected/json/app/stats").json();
    assert_eq!(v["message"], "Monthly statistics.");
    assert_eq!(v["total_users"], 1);
    assert_eq!(v["stats"][0]["api_calls_count"], 3);
}

#[test]
fn unknown_routes_and_xml_are_404() {
    let (sb, id) = sandbox_with_user();
    for path in [
        "/".to_owned(),
        "/protected/json/nothing".to_owned(),
        "/protected/xml/app/details".to_owned(),
        format!("/protected/json/sms/{id}/"),
        format!("/protected/json/verify/../sms/{id}"),
    ] {
        let r = get(&sb, &path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.body,
            r#"{"message":"Resource not found","success":false,"errors":{"message":"Resource not found"},"error_code":"60000"}"#
        );
    }
    // A wrong method is an unknown route too.
    assert_eq!(post_form(&sb, &format!("/protected/json/sms/{id}"), "").status, 404);
    // Without the 2015 emulation an encoded "../sms" is just a bad token.
    let r = get(&sb, &format!("/protected/json/verify/%2e%2e%2fsms/{id}"));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error_code"], "60020");
}

#[test]
fn dot_segment_mode_routes_verify_dot_dot_sms_to_sms() {
    let sb = Sandbox::start(SandboxConfig { normalize_dot_segments: true, ..SandboxConfig::default() }).expect("start");
    let id = sb.add_user("alice@example.com", "555-123-1185", 1);
    sb.set_user_has_app(id, false);
    for raw in [
        format!("/protected/json/verify/../sms/{id}"),
        format!("/protected/json/verify/%2e%2e%2fsms/{id}"),
        format!("/protected/json/verify/%2E%2E%2Fsms/{id}"),
        format!("/protected/json/verify/..%2fsms/{id}"),
    ] {
        sb.clear_requests();
        let r = get(&sb, &raw);
        assert_eq!(r.status, 200, "{raw}: {}", r.body);
        assert_eq!(r.body, r#"{"success":true,"message":"SMS token was sent","cellphone":"+1-XXX-XXX-XX85"}"#);
        let rec = sb.requests();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].raw_path, raw);
        assert_eq!(rec[0].route_path, format!("/protected/json/sms/{id}"));
    }
    // The app-user answer is 200 too, which is exactly why "200 alone" is not a verdict.
    sb.set_user_has_app(id, true);
    let r = get(&sb, &format!("/protected/json/verify/..%2Fsms/{id}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ignored"], true);
}

#[test]
fn onetouch_create_accepts_form_and_json_details() {
    let (sb, id) = sandbox_with_user();
    let r = post_form(
        &sb,
        &format!("/onetouch/json/users/{id}/approval_requests"),
        "message=Login+to+host&details%5BUsername%5D=alice&details[Host]=web1&hidden_details[ip]=10.0.0.1&seconds_to_expire=120&logos[][res]=default&logos[][url]=https%3A%2F%2Fx.example%2Fl.png",
    );
    assert_eq!(r.status, 200);
    let uuid = r.json()["approval_request"]["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(r.body, format!(r#"{{"approval_request":{{"uuid":"{uuid}"}},"success":true}}"#));
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4");

    let r = post_json(
        &sb,
        &format!("/onetouch/json/users/{id}/approval_requests"),
        r#"{"message":"sudo on web1","details":{"Command":"ls"},"hidden_details":{"tty":"pts/1"}}"#,
    );
    assert_eq!(r.status, 200);
    let recs = sb.approval_requests();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].message, "Login to host");
    assert_eq!(recs[0].details.get("Username").map(String::as_str), Some("alice"));
    assert_eq!(recs[0].details.get("Host").map(String::as_str), Some("web1"));
    assert_eq!(recs[0].hidden_details.get("ip").map(String::as_str), Some("10.0.0.1"));
    assert_eq!(recs[0].seconds_to_expire, 120);
    assert_eq!(recs[1].details.get("Command").map(String::as_str), Some("ls"));
    assert_eq!(recs[1].seconds_to_expire, 86_400);
    assert_eq!(recs[1].authy_id, id);
}

#[test]
fn onetouch_errors() {
    let (sb, id) = sandbox_with_user();
    let r = post_form(&sb, &format!("/onetouch/json/users/{id}/approval_requests"), "details[a]=b");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error_code"], "60004");
    assert_eq!(r.json()["success"], false);
    let r = post_form(&sb, &format!("/onetouch/json/users/{id}/approval_requests"), "message=x&seconds_to_expire=soon");
    assert_eq!(r.status, 400);
    let r = post_form(&sb, "/onetouch/json/users/55555/approval_requests", "message=x");
    assert_eq!((r.status, r.body.as_str()), (404, user_not_found_body()));
    let r = get(&sb, "/onetouch/json/approval_requests/nope-nope");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        r#"{"message":"Approval request not found: nope-nope","success":false,"errors":{},"error_code":"60049"}"#
    );
    let r = post_json(&sb, &format!("/onetouch/json/users/{id}/approval_requests"), "{broken");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error_code"], "60002");
}

#[test]
fn approval_status_has_the_documented_keys() {
    let (sb, id) = sandbox_with_user();
    let uuid = post_form(
        &sb,
        &format!("/onetouch/json/users/{id}/approval_requests"),
        "message=hi",
    )
    .json()["approval_request"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let r = get(&sb, &format!("/onetouch/json/approval_requests/{uuid}"));
    assert_eq!(r.status, 200);
    let v = r.json();
    let keys: Vec<&str> = r
        .body
        .trim_start_matches(r#"{"approval_request":{"#)
        .split(",\"")
        .filter_map(|kv| kv.trim_start_matches('"').split('"').next())
        .collect();
    assert_eq!(
        &keys[..14],
        &[
            "_app_name",
            "_app_serial_id",
            "_authy_id",
            "_id",
            "_user_email",
            "app_id",
            "created_at",
            "updated_at",
            "processed_at",
            "notified",
            "seconds_to_expire",
            "status",
            "user_id",
            "uuid"
        ]
    );
    let a = &v["approval_request"];
    assert_eq!(a["status"], "pending");
    assert_eq!(a["processed_at"], serde_json::Value::Null);
    assert_eq!(a["_authy_id"].as_u64(), Some(id));
    assert_eq!(a["uuid"], uuid.as_str());
    assert_eq!(a["_user_email"], "alice@example.com");
    assert!(a["created_at"].as_str().expect("created_at").ends_with('Z'));
    assert_eq!(v["success"], true);
}

#[test]
fn every_request_is_recorded_as_sent() {
    let (sb, id) = sandbox_with_user();
    get(&sb, &format!("/protected/json/sms/{id}?force=true&locale=pt-BR&action_message=hi+there"));
    post_form(&sb, &format!("/onetouch/json/users/{id}/approval_requests"), "message=m%C3%A9");
    let rec = sb.requests();
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].method, "GET");
    assert_eq!(rec[0].raw_path, format!("/protected/json/sms/{id}"));
    assert_eq!(rec[0].route_path, rec[0].raw_path);
    assert_eq!(
        rec[0].query,
        vec![
            ("force".to_owned(), "true".to_owned()),
            ("locale".to_owned(), "pt-BR".to_owned()),
            ("action_message".to_owned(), "hi there".to_owned()),
        ]
    );
    assert_eq!(rec[0].user_agent.as_deref(), Some("AuthySandboxTest/1.0 (tests)"));
    assert_eq!(rec[1].method, "POST");
    assert_eq!(rec[1].body, "message=m%C3%A9");
    sb.clear_requests();
    assert!(sb.requests().is_empty());
}
