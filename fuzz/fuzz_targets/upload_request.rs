//! What a client asks of upload-pack: the arguments of a v2 `fetch`
//! (`upload::request::parse_v2_fetch`), a v0/v1 stateless request (`parse_v0`), and an
//! object filter spec (`Filter::parse`), each on the whole input.
#![no_main]

use forge::protocol::pktline::PktReader;
use forge::upload::request::{
    FetchArgs, Filter, MAX_DEEPEN_NOT, MAX_HAVES, MAX_SHALLOWS, MAX_WANTS, parse_v0,
    parse_v2_fetch,
};
use libfuzzer_sys::fuzz_target;

fn check(args: &FetchArgs) {
    assert!(args.wants.len() <= MAX_WANTS);
    assert!(args.haves.len() <= MAX_HAVES);
    assert!(args.shallows.len() <= MAX_SHALLOWS);
    assert!(args.deepen_not.len() <= MAX_DEEPEN_NOT);
    assert!(args.depth.is_none_or(|d| d > 0 && d <= i32::MAX as u32));
    // `check` refuses depth together with deepen-since / deepen-not.
    assert!(args.depth.is_none() || (args.deepen_since.is_none() && args.deepen_not.is_empty()));
    let _ = args.deepens();
}

fuzz_target!(|data: &[u8]| {
    let mut reader = PktReader::new(data);
    if let Ok(args) = parse_v2_fetch(&mut reader) {
        check(&args);
        assert!(reader.position() <= data.len());
    }
    if let Ok(args) = parse_v0(data) {
        check(&args);
    }
    match Filter::parse(data) {
        Ok(Filter::NoBlobs) => assert_eq!(data, b"blob:none"),
        Ok(Filter::BlobLimit(_)) => assert!(data.starts_with(b"blob:limit=")),
        Ok(Filter::TreeDepth(_)) => {
            assert!(data.starts_with(b"tree:") && data[5..].iter().all(u8::is_ascii_digit))
        }
        Err(_) => {}
    }
});
