//! pkt-line framing of a request body: `PktReader::next_packet` until the end or an error,
//! and `Packet::text` on every packet.
#![no_main]

use forge::protocol::pktline::{Packet, PktReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = PktReader::new(data);
    let mut consumed = 0;
    loop {
        match reader.next_packet() {
            Ok(Some(packet)) => {
                let pos = reader.position();
                // Every packet consumes its 4-byte header and exactly its payload, and the
                // header says how long the whole packet is.
                let header = std::str::from_utf8(&data[consumed..consumed + 4]).unwrap();
                let len = usize::from_str_radix(header, 16).unwrap();
                match packet {
                    Packet::Data(payload) => {
                        assert!(!payload.is_empty());
                        assert_eq!(len, payload.len() + 4);
                        assert_eq!(pos, consumed + len);
                        assert_eq!(payload, &data[consumed + 4..pos]);
                        let text = packet.text().expect("data has text");
                        assert!(text == payload || (text.len() + 1 == payload.len() && payload.ends_with(b"\n")));
                    }
                    Packet::Flush | Packet::Delim | Packet::ResponseEnd => {
                        assert!(len <= 2);
                        assert_eq!(pos, consumed + 4);
                        assert_eq!(packet.text(), None);
                    }
                }
                consumed = pos;
            }
            Ok(None) => {
                assert!(reader.at_end());
                assert_eq!(consumed, data.len());
                break;
            }
            Err(_) => break,
        }
    }
});
