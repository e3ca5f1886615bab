//! Any bytes as a server API or rooms API body: decoding never panics, and what it
//! accepts obeys the rules a client's frames and connect parameters obey.
#![no_main]
use hubbub_core::protocol::{
    member_role, CreateRoomBody, DisconnectRequest, PublishRequest, UnsubscribeRequest,
    UpdateRoomBody, MAX_CONTENT_CHARS,
};
use hubbub_core::upgrade::{valid_room, MAX_USERNAME_CHARS, MAX_USER_ID_CHARS};
use hubbub_core::{MAX_ROOM_MEMBERS, MAX_ROOM_NAME_CHARS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = PublishRequest::decode(data) {
        assert!(valid_room(&p.room_id));
        assert!(p.content.chars().count() <= MAX_CONTENT_CHARS);
        assert!(p.content.chars().any(|c| !c.is_whitespace()));
        assert!(!p.user_id.is_empty() && p.user_id.chars().count() <= MAX_USER_ID_CHARS);
        let name = p.username.chars().count();
        assert!(name > 0 && name <= MAX_USERNAME_CHARS);
        assert!(!p.username.chars().any(char::is_control));
    }
    if let Ok(d) = DisconnectRequest::decode(data) {
        assert!(!d.user_id.is_empty());
    }
    if let Ok(u) = UnsubscribeRequest::decode(data) {
        assert!(valid_room(&u.room_id) && !u.user_id.is_empty());
    }
    let name_ok = |n: &str| {
        let chars = n.chars().count();
        chars > 0 && chars <= MAX_ROOM_NAME_CHARS && !n.chars().any(char::is_control)
    };
    if let Ok(c) = CreateRoomBody::decode(data) {
        assert!(c.room_id.as_deref().is_none_or(valid_room));
        assert!(name_ok(&c.name));
        assert!(c.members.len() <= MAX_ROOM_MEMBERS);
        for (i, m) in c.members.iter().enumerate() {
            assert!(!m.is_empty() && m.chars().count() <= MAX_USER_ID_CHARS);
            assert!(!c.members[..i].contains(m), "members are distinct");
        }
    }
    if let Ok(u) = UpdateRoomBody::decode(data) {
        assert!(u.name.is_some() || u.visibility.is_some());
        assert!(u.name.as_deref().is_none_or(name_ok));
    }
    let _ = member_role(data);
});
