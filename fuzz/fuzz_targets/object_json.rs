//! The JSON object kinds: runs, notes, model-registry events and tag-journal events.
//!
//! The first byte picks the kind, the rest is the content. Asserts: whatever decodes
//! re-encodes to bytes that decode to an equal object, and that encoding is a fixed point
//! (encode, decode, encode gives the same bytes); decoded objects never claim a newer format
//! than this build reads; a run's references and subject are computed without panicking.
#![no_main]

use cairn::object::{ModelEvent, Note, Run, TagEvent, RUN_FORMAT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, content)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            let Ok(run) = Run::decode(content) else {
                return;
            };
            assert!(run.format <= RUN_FORMAT);
            let bytes = run.encode();
            let again = Run::decode(&bytes).expect("an encoded run must decode");
            assert_eq!(again, run);
            assert_eq!(again.encode(), bytes, "run encoding is not a fixed point");
            let refs = run.references();
            assert!(refs.len() >= run.parents.len() + run.data.len());
            assert!(run.message.starts_with(run.subject()));
        }
        1 => {
            let Ok(note) = Note::decode(content) else {
                return;
            };
            assert!(note.format <= 1);
            let bytes = note.encode();
            let again = Note::decode(&bytes).expect("an encoded note must decode");
            assert_eq!(again, note);
            assert_eq!(again.encode(), bytes, "note encoding is not a fixed point");
        }
        3 => {
            let Ok(event) = TagEvent::decode(content) else {
                return;
            };
            assert!(event.format <= 1);
            let bytes = event.encode();
            let again = TagEvent::decode(&bytes).expect("an encoded tag event must decode");
            assert_eq!(again, event);
            assert_eq!(
                again.encode(),
                bytes,
                "tag event encoding is not a fixed point"
            );
        }
        _ => {
            let Ok(event) = ModelEvent::decode(content) else {
                return;
            };
            assert!(event.format <= 1);
            let bytes = event.encode();
            let again = ModelEvent::decode(&bytes).expect("an encoded model event must decode");
            assert_eq!(again, event);
            assert_eq!(
                again.encode(),
                bytes,
                "model event encoding is not a fixed point"
            );
        }
    }
});
